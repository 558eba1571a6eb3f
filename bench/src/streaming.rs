//! Result streaming: `SELECT * FROM sales.lineitem` (6,001,215 rows at SF 1)
//! over each protocol, counting rows and the bytes each protocol put on the
//! wire, and the same rows from native PostgreSQL over its own wire protocol as
//! the reference: read with the very same tokio-postgres code as the gateway's
//! PostgreSQL wire, so that the ratio of the two is the gateway's cost alone.
//!
//! Rounds alternate the protocols (gateway PG wire, native PostgreSQL, Flight
//! SQL, HTTP Arrow, then again), and the medians of the rounds are reported.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use arrow::datatypes::{DataType, Schema};
use arrow_flight::decode::DecodedPayload;
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::{SinkExt, TryStreamExt};
use serde_json::{Value, json};
use tonic::transport::{Channel, Endpoint};

use crate::latency::{self, PERSONA, PURPOSE, median, pg_connect, pg_connect_config, round3};
use crate::mesh::{Mesh, Options};

/// The streamed query.
const SQL: &str = "SELECT * FROM sales.lineitem";
/// Rows of a smoke run: enough to cross several batches of every protocol.
const SMOKE_ROWS: usize = 5000;
/// Where the reference PostgreSQL is, unless `TESSERA_TEST_PG_URL` says.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The reference's database, created when missing and kept between runs
/// (loading SF 1's lineitem takes a minute).
const DATABASE: &str = "tessera_bench";
/// The goal of issue #8: the gateway's PostgreSQL wire against native PostgreSQL.
const GOAL_RATIO: f64 = 1.15;
/// The Arrow IPC stream media type of the HTTP endpoint.
const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// One streamed result.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    rows: u64,
    /// Bytes of the protocol's payload: PostgreSQL DataRow bodies, Flight
    /// data headers and bodies, the HTTP body.
    bytes: u64,
    seconds: f64,
}

/// Streams `sql` over a PostgreSQL wire connection (extended protocol, binary
/// results, as tokio-postgres always asks), counting rows and each row's raw
/// bytes without decoding the values: the client's own cost stays the same
/// for both servers and as small as a client's can be.
async fn pg_stream(client: &tokio_postgres::Client, sql: &str) -> anyhow::Result<(Run, Vec<String>)> {
    let started = Instant::now();
    let stream = client.query_raw(sql, std::iter::empty::<i64>()).await?;
    futures::pin_mut!(stream);
    let (mut rows, mut bytes) = (0u64, 0u64);
    let mut types = Vec::new();
    while let Some(row) = stream.try_next().await? {
        if rows == 0 {
            types = row.columns().iter().map(|c| c.type_().name().to_string()).collect();
        }
        rows += 1;
        bytes += row.raw_size_bytes() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok((Run { rows, bytes, seconds }, types))
}

/// A Flight SQL client of the gateway as `fred` (the connection is made once,
/// before any timing: a client keeps its channel).
async fn flight_client(addr: SocketAddr, key: &str) -> anyhow::Result<FlightSqlServiceClient<Channel>> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await
        .with_context(|| format!("cannot connect to Flight SQL at {addr}"))?;
    let mut client = FlightSqlServiceClient::new(channel);
    client.set_token(key.to_string());
    client.set_header("tessera-purpose", PURPOSE);
    Ok(client)
}

/// Streams `sql` over Flight SQL from every endpoint of its answer, counting the
/// Flight data messages' bytes as they arrive and decoding each into its batch.
async fn flight_stream(client: &FlightSqlServiceClient<Channel>, sql: &str) -> anyhow::Result<Run> {
    let mut client = client.clone();
    let started = Instant::now();
    let info = client.execute(sql.to_string(), None).await?;
    let (mut rows, mut bytes) = (0u64, 0u64);
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.context("the answer names no ticket")?;
        let mut decoder = client.do_get(ticket).await?.into_inner();
        while let Some(data) = decoder.try_next().await? {
            bytes += (data.inner.data_header.len() + data.inner.data_body.len()) as u64;
            if let DecodedPayload::RecordBatch(batch) = data.payload {
                rows += batch.num_rows() as u64;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Run { rows, bytes, seconds })
}

/// Streams `sql` over HTTP as an Arrow IPC stream, decoding the body as it arrives.
async fn http_stream(client: &reqwest::Client, url: &str, sql: &str) -> anyhow::Result<Run> {
    let started = Instant::now();
    let response = client
        .post(url)
        .header(reqwest::header::ACCEPT, ARROW_STREAM)
        .json(&json!({ "sql": sql }))
        .send()
        .await?;
    let status = response.status();
    if !status.is_success() {
        bail!("{status}: {}", response.text().await.unwrap_or_default());
    }
    let mut decoder = arrow::ipc::reader::StreamDecoder::new();
    let mut body = std::pin::pin!(response.bytes_stream());
    let (mut rows, mut bytes) = (0u64, 0u64);
    while let Some(chunk) = body.try_next().await? {
        bytes += chunk.len() as u64;
        let mut buffer = arrow::buffer::Buffer::from(chunk);
        while !buffer.is_empty() {
            if let Some(batch) = decoder.decode(&mut buffer)? {
                rows += batch.num_rows() as u64;
            }
        }
    }
    decoder
        .finish()
        .context("the Arrow IPC stream ended in the middle of a message")?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Run { rows, bytes, seconds })
}

/// The PostgreSQL type of an Arrow column, for the reference table.
fn pg_type(data_type: &DataType) -> anyhow::Result<String> {
    Ok(match data_type {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 => "bigint".into(),
        DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("numeric({p},{s})"),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        other => bail!("no PostgreSQL column type for Arrow {other}"),
    })
}

/// `CREATE TABLE`'s column list for an Arrow schema.
fn columns_ddl(schema: &Schema) -> anyhow::Result<String> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            let not_null = if f.is_nullable() { "" } else { " NOT NULL" };
            Ok(format!(
                "\"{}\" {}{not_null}",
                f.name().replace('"', "\"\""),
                pg_type(f.data_type())?
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(columns.join(", "))
}

/// Native PostgreSQL holding the same rows: the reference.
struct Native {
    client: tokio_postgres::Client,
    table: String,
    /// What happened to get there (kept, or loaded and in how long).
    note: String,
}

/// The reference table of a scale factor: `lineitem_sf1`, `lineitem_sf0_01`.
fn table_name(scale: f64) -> String {
    format!("lineitem_sf{}", scale.to_string().replace(['.', '-'], "_"))
}

impl Native {
    /// Connects to native PostgreSQL, creates the database if missing, and loads
    /// lineitem unless a table with the gateway's row count is there already.
    async fn prepare(mesh: &Mesh, key: &str, opts: &Options) -> anyhow::Result<Self> {
        let url = std::env::var("TESSERA_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_string());
        let mut config: tokio_postgres::Config = url
            .parse()
            .with_context(|| format!("TESSERA_TEST_PG_URL ({url}) is not a PostgreSQL URL"))?;
        config.connect_timeout(Duration::from_secs(5));
        let server = pg_connect_config(&config)
            .await
            .with_context(|| format!("native PostgreSQL at {url} is unreachable"))?;
        let exists = server
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&DATABASE])
            .await?
            .is_some();
        if !exists {
            server.batch_execute(&format!("CREATE DATABASE {DATABASE}")).await?;
        }
        drop(server);
        config.dbname(DATABASE);
        let client = pg_connect_config(&config).await?;
        let table = table_name(opts.scale);

        let admin = tessera_sdk::Client::new(mesh.url.clone(), key)?;
        let counted = admin
            .query("SELECT count(*) AS n FROM sales.lineitem", Some(PURPOSE))
            .await
            .context("cannot count sales.lineitem")?;
        let expected = counted
            .rows
            .first()
            .and_then(|r| r.get("n"))
            .and_then(Value::as_i64)
            .context("the row count of sales.lineitem is not a number")?;
        let have: Option<i64> = match client.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await {
            Ok(row) => row.try_get(0).ok(),
            Err(_) => None,
        };
        let note = if have == Some(expected) {
            format!("{DATABASE}.{table} kept ({expected} rows)")
        } else {
            let started = Instant::now();
            let loaded = load(&client, &table, mesh, key).await?;
            anyhow::ensure!(
                loaded == expected as u64,
                "loaded {loaded} rows into {table}, the gateway has {expected}"
            );
            format!(
                "{DATABASE}.{table} loaded ({loaded} rows in {:.0} s)",
                started.elapsed().as_secs_f64()
            )
        };
        Ok(Self { client, table, note })
    }
}

/// (Re)creates the reference table with the Arrow schema's column types and
/// copies sales.lineitem into it: read from the gateway over Flight SQL,
/// written as CSV into `COPY FROM STDIN`, batch by batch. Vacuumed and frozen
/// afterwards, so that reading it never sets hint bits (a write) on the way.
async fn load(client: &tokio_postgres::Client, table: &str, mesh: &Mesh, key: &str) -> anyhow::Result<u64> {
    let mut flight = flight_client(mesh.flight, key).await?;
    let info = flight.execute(SQL.to_string(), None).await?;
    let schema = info.clone().try_decode_schema()?;
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({})",
            columns_ddl(&schema)?
        ))
        .await?;
    let sink = client
        .copy_in::<_, VecDeque<u8>>(&format!("COPY {table} FROM STDIN (FORMAT csv)"))
        .await?;
    futures::pin_mut!(sink);
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.context("the answer names no ticket")?;
        let mut batches = flight.do_get(ticket).await?;
        while let Some(batch) = batches.try_next().await? {
            let mut csv = Vec::new();
            {
                let mut writer = arrow::csv::WriterBuilder::new().with_header(false).build(&mut csv);
                writer.write(&batch)?;
            }
            sink.send(VecDeque::from(csv)).await?;
        }
    }
    let rows = sink.as_mut().finish().await?;
    client
        .batch_execute(&format!("VACUUM (FREEZE, ANALYZE) {table}"))
        .await?;
    Ok(rows)
}

/// The protocols, in the order each round runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Pg,
    Native,
    Flight,
    Http,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Self::Pg => "pg",
            Self::Native => "native-pg",
            Self::Flight => "flight",
            Self::Http => "http",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Pg => "gateway, PostgreSQL wire",
            Self::Native => "native PostgreSQL (reference)",
            Self::Flight => "gateway, Flight SQL",
            Self::Http => "gateway, HTTP Arrow IPC",
        }
    }
}

/// What one protocol gave over the rounds.
#[derive(Debug, Default)]
struct Series {
    runs: Vec<Run>,
    error: Option<String>,
    /// PostgreSQL column types, as the server described them.
    types: Vec<String>,
}

impl Series {
    fn median_seconds(&self) -> f64 {
        median(&self.runs.iter().map(|r| r.seconds).collect::<Vec<_>>())
    }

    fn row(&self, protocol: Protocol) -> Value {
        let seconds = self.median_seconds();
        let last = self.runs.last().copied().unwrap_or_default();
        let per_second = |x: u64| if seconds > 0.0 { x as f64 / seconds } else { 0.0 };
        json!({
            "protocol": protocol.name(),
            "server": protocol.label(),
            "rows": last.rows,
            "mb": round3(last.bytes as f64 / 1e6),
            "median_s": round3(seconds),
            "rows_per_s": per_second(last.rows).round(),
            "mb_per_s": round3(per_second(last.bytes) / 1e6),
            "runs": self.runs.len(),
            "error": self.error,
        })
    }
}

pub async fn run(mesh: &Mesh, opts: &Options) -> anyhow::Result<Value> {
    let key = latency::key(mesh, PERSONA)?;
    let sql = if opts.smoke {
        format!("{SQL} LIMIT {SMOKE_ROWS}")
    } else {
        SQL.to_string()
    };
    let mut protocols: Vec<Protocol> = Vec::new();
    let pg = if opts.runs("pg") {
        protocols.push(Protocol::Pg);
        Some(pg_connect(mesh.pg, "tessera", PERSONA, key, Some(PURPOSE)).await?)
    } else {
        None
    };
    let (native, native_note) = if opts.runs("native-pg") {
        match Native::prepare(mesh, key, opts).await {
            Ok(native) => {
                protocols.push(Protocol::Native);
                let note = native.note.clone();
                (Some(native), note)
            }
            Err(e) => (None, format!("skipped: {e:#}")),
        }
    } else {
        (None, "skipped (--skip native-pg)".into())
    };
    let flight = if opts.runs("flight") {
        protocols.push(Protocol::Flight);
        Some(flight_client(mesh.flight, key).await?)
    } else {
        None
    };
    let http = if opts.runs("http") {
        protocols.push(Protocol::Http);
        Some(latency::http_client(key)?)
    } else {
        None
    };
    let url = format!("{}/api/v1/query", mesh.url);
    let native_sql = native.as_ref().map(|n| {
        let limit = if opts.smoke {
            format!(" LIMIT {SMOKE_ROWS}")
        } else {
            String::new()
        };
        format!("SELECT * FROM {}{limit}", n.table)
    });

    let mut series: Vec<Series> = protocols.iter().map(|_| Series::default()).collect();
    for round in 0..opts.warmup + opts.rounds.max(1) {
        let warming = round < opts.warmup;
        for (protocol, series) in protocols.iter().zip(series.iter_mut()) {
            if series.error.is_some() {
                continue;
            }
            let result = match (protocol, &pg, &native, &native_sql, &flight, &http) {
                (Protocol::Pg, Some(client), ..) => pg_stream(client, &sql).await.map(|(run, types)| {
                    series.types = types;
                    run
                }),
                (Protocol::Native, _, Some(native), Some(native_sql), ..) => {
                    pg_stream(&native.client, native_sql).await.map(|(run, types)| {
                        series.types = types;
                        run
                    })
                }
                (Protocol::Flight, .., Some(client), _) => flight_stream(client, &sql).await,
                (Protocol::Http, .., Some(client)) => http_stream(client, &url, &sql).await,
                _ => Err(anyhow::anyhow!("{} has no client", protocol.name())),
            };
            match result {
                Ok(run) if !warming => series.runs.push(run),
                Ok(_) => {}
                Err(e) => series.error = Some(format!("{e:#}")),
            }
        }
    }

    let find = |p: Protocol| protocols.iter().position(|x| *x == p).map(|i| &series[i]);
    let ratio = match (find(Protocol::Pg), find(Protocol::Native)) {
        (Some(gateway), Some(native)) if !gateway.runs.is_empty() && !native.runs.is_empty() => {
            let n = native.median_seconds();
            (n > 0.0).then(|| round3(gateway.median_seconds() / n))
        }
        _ => None,
    };
    let types_match = match (find(Protocol::Pg), find(Protocol::Native)) {
        (Some(gateway), Some(native)) if !gateway.types.is_empty() => Some(gateway.types == native.types),
        _ => None,
    };
    let rows: Vec<Value> = protocols.iter().zip(&series).map(|(p, s)| s.row(*p)).collect();
    Ok(json!({
        "sql": sql,
        "persona": format!("{PERSONA} (purpose {PURPOSE}: no policy applies)"),
        "rows": rows,
        "pg_wire_over_native": ratio,
        "goal": format!("{SQL} over PostgreSQL wire ≤ {GOAL_RATIO}x native PostgreSQL, same client"),
        "goal_measured": ratio.map(|r| format!("{r}x native")),
        "goal_met": ratio.map(|r| r <= GOAL_RATIO),
        "native": native_note,
        "pg_types": find(Protocol::Pg).map(|s| s.types.join(", ")),
        "native_types": find(Protocol::Native).map(|s| s.types.join(", ")),
        "pg_types_match_native": types_match,
    }))
}
