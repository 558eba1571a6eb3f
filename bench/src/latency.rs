//! Small-query latency: `SELECT * FROM sales.orders WHERE o_orderkey = ?` over
//! PostgreSQL wire (a prepared statement, extended protocol, one connection per
//! client) and over HTTP (`POST /api/v1/query`, one keep-alive client per
//! worker; HTTP has no parameters, so the key is inlined), at 1 and 32
//! concurrent clients. The two protocols alternate round by round (A B A B) so
//! that a noisy neighbour hits both alike; every request's latency is kept and
//! the percentiles are taken over all measured rounds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use tokio_postgres::types::Type;

use crate::mesh::{Mesh, Options};

/// The persona of the protocol measurements: exempt from every demo policy
/// (purpose fraud), so that the figures are the protocols' and the engine's.
pub const PERSONA: &str = "fred";
/// The purpose `fred` declares.
pub const PURPOSE: &str = "fraud";

/// The statement prepared on each PostgreSQL connection.
const PG_SQL: &str = "SELECT * FROM sales.orders WHERE o_orderkey = $1";

/// Concurrency levels: one client alone (pure latency), and 32 at once (the
/// gateway's queueing and scheduling under load: it runs a bounded number of
/// queries at once and queues the rest).
const CLIENTS: [usize; 2] = [1, 32];

/// The goal of issue #8 for the point query over PostgreSQL wire, one client.
const GOAL_PG_P50_MS: f64 = 2.0;

/// The persona's API key.
pub fn key<'a>(mesh: &'a Mesh, persona: &str) -> anyhow::Result<&'a str> {
    mesh.keys
        .get(persona)
        .map(String::as_str)
        .with_context(|| format!("the demo issued no key for {persona}"))
}

/// A PostgreSQL wire connection to the gateway (or any server) as `user` with
/// `password`, declaring `purpose` at startup as psql's `options` would.
pub async fn pg_connect(
    addr: SocketAddr,
    dbname: &str,
    user: &str,
    password: &str,
    purpose: Option<&str>,
) -> anyhow::Result<tokio_postgres::Client> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(addr.ip().to_string())
        .port(addr.port())
        .user(user)
        .password(password)
        .dbname(dbname)
        .connect_timeout(Duration::from_secs(10));
    if let Some(purpose) = purpose {
        config.options(format!("-c tessera.purpose={purpose}"));
    }
    pg_connect_config(&config).await
}

/// Connects with a ready configuration; the connection is driven by its own task.
pub async fn pg_connect_config(config: &tokio_postgres::Config) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .context("cannot connect over PostgreSQL wire")?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("a PostgreSQL wire connection failed: {e}");
        }
    });
    Ok(client)
}

/// Latency percentiles of a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Nearest-rank percentile `p` (0-100) of ascending `sorted`; 0 when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Percentiles {
    /// Sorts `samples` and reads their percentiles.
    pub fn of(samples: &mut [f64]) -> Self {
        samples.sort_by(f64::total_cmp);
        Self {
            p50: percentile(samples, 50.0),
            p90: percentile(samples, 90.0),
            p99: percentile(samples, 99.0),
            max: samples.last().copied().unwrap_or_default(),
        }
    }
}

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => f64::midpoint(sorted[n / 2 - 1], sorted[n / 2]),
    }
}

/// Rounds to 3 decimals, so that the JSON and the tables stay readable.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// What one batch of requests gave.
#[derive(Debug, Default)]
struct Samples {
    /// Every request's latency in milliseconds, failed ones included.
    latencies: Vec<f64>,
    errors: usize,
    /// Wall-clock time of the batches, for the throughput.
    elapsed: Duration,
    first_error: Option<String>,
}

impl Samples {
    fn absorb(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Sends `total` requests from `workers.len()` concurrent clients, each request
/// on the next key from `offset`; each worker sends its next request as soon as
/// its previous one is answered (a closed loop: the latency is not inflated by
/// an arrival rate above what the server sustains).
async fn drive<W, F, Fut>(workers: &[W], keys: &Arc<Vec<i64>>, offset: usize, total: usize, request: F) -> Samples
where
    W: Clone + Send + 'static,
    F: Fn(W, i64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = workers
        .iter()
        .map(|worker| {
            let (worker, keys, next, request) = (worker.clone(), keys.clone(), next.clone(), request.clone());
            tokio::spawn(async move {
                let mut samples = Samples::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let key = keys[(offset + i) % keys.len()];
                    let sent = Instant::now();
                    let result = request(worker.clone(), key).await;
                    samples.latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                    if let Err(e) = result {
                        samples.errors += 1;
                        samples.first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
                samples
            })
        })
        .collect();
    let mut all = Samples::default();
    for task in tasks {
        match task.await {
            Ok(samples) => all.absorb(samples),
            Err(e) => {
                all.errors += 1;
                all.first_error
                    .get_or_insert_with(|| format!("a client task failed: {e}"));
            }
        }
    }
    all.elapsed = started.elapsed();
    all
}

/// One PostgreSQL wire client: its connection and its prepared statement.
type PgWorker = Arc<(tokio_postgres::Client, tokio_postgres::Statement)>;

async fn pg_workers(mesh: &Mesh, key: &str, clients: usize) -> anyhow::Result<Vec<PgWorker>> {
    let mut workers = Vec::with_capacity(clients);
    for _ in 0..clients {
        let client = pg_connect(mesh.pg, "tessera", PERSONA, key, Some(PURPOSE)).await?;
        // Typed, so that the parameter is sent as int8 whatever the server infers.
        let statement = client
            .prepare_typed(PG_SQL, &[Type::INT8])
            .await
            .context("the gateway cannot prepare the point query")?;
        workers.push(Arc::new((client, statement)));
    }
    Ok(workers)
}

async fn pg_request(worker: PgWorker, key: i64) -> anyhow::Result<()> {
    let rows = worker.0.query(&worker.1, &[&key]).await?;
    anyhow::ensure!(rows.len() == 1, "{} rows for o_orderkey = {key}", rows.len());
    Ok(())
}

/// One HTTP client (its own keep-alive connection pool) and the query URL.
type HttpWorker = (reqwest::Client, Arc<str>);

fn http_workers(mesh: &Mesh, key: &str, clients: usize) -> anyhow::Result<Vec<HttpWorker>> {
    let url: Arc<str> = format!("{}/api/v1/query", mesh.url).into();
    (0..clients)
        .map(|_| Ok::<_, anyhow::Error>((http_client(key)?, url.clone())))
        .collect()
}

/// A keep-alive HTTP client sending `key` and `fred`'s purpose with each request.
pub fn http_client(key: &str) -> anyhow::Result<reqwest::Client> {
    use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {key}"))?);
    headers.insert("tessera-purpose", HeaderValue::from_static(PURPOSE));
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .tcp_nodelay(true)
        .build()?)
}

/// The part of the gateway's JSON answer the check needs.
#[derive(serde::Deserialize)]
struct Answer {
    rows: Vec<Value>,
    #[serde(default)]
    error: Option<Value>,
}

async fn http_request(worker: HttpWorker, key: i64) -> anyhow::Result<()> {
    let (client, url) = worker;
    let sql = format!("SELECT * FROM sales.orders WHERE o_orderkey = {key}");
    let response = client
        .post(&*url)
        .header(reqwest::header::ACCEPT, "application/json")
        .json(&json!({ "sql": sql }))
        .send()
        .await?;
    let status = response.status();
    let body = response.bytes().await?;
    anyhow::ensure!(status.is_success(), "{status}: {}", String::from_utf8_lossy(&body));
    let answer: Answer = serde_json::from_slice(&body)?;
    anyhow::ensure!(answer.error.is_none(), "failed while streaming: {:?}", answer.error);
    anyhow::ensure!(
        answer.rows.len() == 1,
        "{} rows for o_orderkey = {key}",
        answer.rows.len()
    );
    Ok(())
}

/// Existing order keys in random order: TPC-H's keys are sparse (8 of every 32),
/// so they are read from the table rather than made up.
async fn sample_keys(mesh: &Mesh, key: &str, n: usize) -> anyhow::Result<Vec<i64>> {
    let client = tessera_sdk::Client::new(mesh.url.clone(), key)?;
    let sql = format!("SELECT o_orderkey FROM sales.orders ORDER BY random() LIMIT {n}");
    let result = client
        .query(&sql, Some(PURPOSE))
        .await
        .context("cannot sample order keys")?;
    let keys: Vec<i64> = result
        .rows
        .iter()
        .filter_map(|row| row.get("o_orderkey").and_then(Value::as_i64))
        .collect();
    anyhow::ensure!(!keys.is_empty(), "sales.orders has no rows");
    Ok(keys)
}

/// One table row: a protocol at a concurrency, over every measured round.
fn row(protocol: &str, clients: usize, mut samples: Samples) -> Value {
    let requests = samples.latencies.len();
    let p = Percentiles::of(&mut samples.latencies);
    let secs = samples.elapsed.as_secs_f64();
    json!({
        "protocol": protocol,
        "clients": clients,
        "requests": requests,
        "errors": samples.errors,
        "p50_ms": round3(p.p50),
        "p90_ms": round3(p.p90),
        "p99_ms": round3(p.p99),
        "max_ms": round3(p.max),
        "rps": if secs > 0.0 { (requests as f64 / secs).round() } else { 0.0 },
        "first_error": samples.first_error,
    })
}

pub async fn run(mesh: &Mesh, opts: &Options) -> anyhow::Result<Value> {
    let key = key(mesh, PERSONA)?;
    // Per concurrency level and protocol, over all measured rounds.
    let per_level: usize = if opts.smoke { 20 } else { 2000 };
    let rounds = opts.rounds.max(1);
    let per_round = per_level.div_ceil(rounds);
    let keys = Arc::new(sample_keys(mesh, key, if opts.smoke { 100 } else { 20_000 }).await?);
    let protocols: Vec<&str> = ["pg", "http"].into_iter().filter(|p| opts.runs(p)).collect();
    let mut rows = Vec::new();
    for clients in CLIENTS {
        let pg = if protocols.contains(&"pg") {
            pg_workers(mesh, key, clients).await?
        } else {
            Vec::new()
        };
        let http = http_workers(mesh, key, clients)?;
        let mut measured: Vec<Samples> = protocols.iter().map(|_| Samples::default()).collect();
        let mut offset = 0;
        // Warm-up rounds (connections, plans, caches), then the measured ones.
        let warmup_requests = clients * if opts.smoke { 1 } else { 10 };
        for round in 0..opts.warmup + rounds {
            let warming = round < opts.warmup;
            let n = if warming { warmup_requests } else { per_round };
            for (i, protocol) in protocols.iter().enumerate() {
                let samples = match *protocol {
                    "pg" => drive(&pg, &keys, offset, n, pg_request).await,
                    _ => drive(&http, &keys, offset, n, http_request).await,
                };
                offset += n;
                if !warming {
                    measured[i].absorb(samples);
                }
            }
        }
        for (protocol, samples) in protocols.iter().zip(measured) {
            rows.push(row(protocol, clients, samples));
        }
    }
    let pg_p50 = rows
        .iter()
        .find(|r| r["protocol"] == "pg" && r["clients"] == 1)
        .and_then(|r| r["p50_ms"].as_f64());
    Ok(json!({
        "sql": PG_SQL,
        "persona": format!("{PERSONA} (purpose {PURPOSE}: no policy applies)"),
        "goal": format!("point query over PostgreSQL wire p50 ≤ {GOAL_PG_P50_MS} ms (1 client)"),
        "goal_measured": pg_p50.map(|p| format!("p50 {p} ms")),
        "goal_met": pg_p50.map(|p| p <= GOAL_PG_P50_MS),
        "rows": rows,
    }))
}
