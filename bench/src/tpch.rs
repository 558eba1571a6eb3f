//! The 22 TPC-H queries of the demo mesh through every configuration, side by
//! side: for each query, each configuration in turn (the order reversed every
//! other round to cancel order effects), warm-up rounds discarded, medians
//! reported (shared/bench.md: every figure is a ratio measured in the same run).

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use serde_json::{Value, json};
use tessera_gateway::{Engine, GatewayConfig, Limits, Protocol};

use crate::mesh::{Mesh, Options};

/// The Parquet metadata cache of the gateway's shared runtime
/// (`Engine::with_hooks`), given to the raw baseline too.
const METADATA_CACHE_BYTES: usize = 256 << 20;

/// Configurations whose answers must be the same rows as raw DataFusion's: the
/// principal they run as is exempt from every demo policy.
pub const UNGOVERNED: [&str; 6] = ["raw", "inproc", "accelerated", "flight", "pg", "http"];

/// Memory the accelerated configuration may hold its copies in: TPC-H SF 1
/// takes about 1.5 GiB as Arrow; this leaves room up to SF 4 or so, beyond
/// which the largest tables stay on disk (and the report says how many were held).
const ACCELERATION_BYTES: u64 = 8 << 30;

/// One TPC-H query.
#[derive(Debug, Clone)]
pub struct Query {
    /// `q01` .. `q22`
    pub name: String,
    /// Without its trailing `;` (one statement per query, whatever the protocol).
    pub sql: String,
}

/// The folder of the suite, shipped with the crate.
pub fn queries_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tpch")
}

/// The suite, by name.
pub fn queries() -> anyhow::Result<Vec<Query>> {
    let dir = queries_dir();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_none_or(|x| x != "sql") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .context("a query file name is not UTF-8")?
            .to_string();
        let sql = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        out.push(Query {
            name,
            sql: sql.trim().trim_end_matches(';').trim_end().to_string(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    if out.len() != 22 {
        bail!("{} holds {} queries, not TPC-H's 22", dir.display(), out.len());
    }
    Ok(out)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, NonZeroUsize::get)
}

/// The engine's configuration for the in-process columns: the defaults of a
/// served gateway (the demo's), except what would stop a long SF 1 run: no
/// staleness limit (the bundle is fetched once, and a run outlasts the default
/// 15 minutes), no caps on results, an hour per query.
pub fn engine_config() -> GatewayConfig {
    GatewayConfig {
        max_staleness_ms: None,
        limits: Limits {
            query_timeout_ms: 60 * 60 * 1000,
            max_result_rows: u64::MAX,
            max_result_bytes: u64::MAX,
            ..Limits::default()
        },
        ..GatewayConfig::default()
    }
}

/// The settings both DataFusion sessions run with, for the report.
pub fn engine_settings() -> Value {
    let cores = cores();
    let config = tessera_gateway::engine::session_config(cores);
    let options = config.options();
    let gateway = engine_config();
    json!({
        "source": "tessera_gateway::engine::session_config, shared by raw and the gateway",
        "target_partitions": config.target_partitions(),
        "batch_size": config.batch_size(),
        "collect_statistics": options.execution.collect_statistics,
        "parquet_pruning": options.execution.parquet.pruning,
        "parquet_pushdown_filters": options.execution.parquet.pushdown_filters,
        "parquet_reorder_filters": options.execution.parquet.reorder_filters,
        "metadata_cache_bytes": METADATA_CACHE_BYTES,
        "gateway_planner_threads": cores.min(4),
        "gateway_query_memory_bytes": gateway.limits.query_memory_bytes,
        "gateway_table_staleness_ms": gateway.table_staleness_ms,
        "raw_memory_pool": "unbounded (DataFusion's default)",
        "result_cache": "none (Tessera has no result cache yet)",
    })
}

async fn count(stream: SendableRecordBatchStream) -> anyhow::Result<usize> {
    Ok(stream.try_fold(0, |n, b| async move { Ok(n + b.num_rows()) }).await?)
}

/// DataFusion directly over the same Delta tables, with the gateway's session
/// settings: the physical limit of the design.
pub struct Raw {
    ctx: SessionContext,
}

impl Raw {
    pub async fn open(lake: &Path) -> anyhow::Result<Self> {
        let runtime = RuntimeEnvBuilder::new()
            .with_metadata_cache_limit(METADATA_CACHE_BYTES)
            .build_arc()?;
        let config = tessera_gateway::engine::session_config(cores())
            .with_create_default_catalog_and_schema(true)
            .with_default_catalog_and_schema("datafusion", "public");
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let catalog = ctx.catalog("datafusion").context("the default catalog")?;
        for (domain, product) in tessera_testkit::tpch::MESH {
            if catalog.schema(domain).is_none() {
                catalog.register_schema(domain, Arc::new(MemorySchemaProvider::new()))?;
            }
            let path = lake.join(domain).join(product);
            let location = path.to_str().context("the lake's path is not UTF-8")?;
            let table = tessera_lake::open_table(location, &HashMap::new())
                .await?
                .with_context(|| format!("no Delta table at {location}"))?;
            table.update_datafusion_session(&ctx.state())?;
            ctx.register_table(format!("{domain}.{product}"), table.table_provider().await?)?;
        }
        Ok(Self { ctx })
    }

    pub async fn run(&self, sql: &str) -> anyhow::Result<usize> {
        count(self.ctx.sql(sql).await?.execute_stream().await?).await
    }
}

/// The gateway's engine in this process, entered as the protocols enter it:
/// the API key checked against the bundle, the principal's session built for
/// its purpose, then `Session::sql` (as HTTP, simple PostgreSQL queries and
/// Flight SQL statements do) under the engine's limits.
pub struct InProcess {
    engine: Engine,
    key: String,
    purpose: &'static str,
}

impl InProcess {
    pub fn new(engine: Engine, key: &str, purpose: &'static str) -> Self {
        Self {
            engine,
            key: key.to_string(),
            purpose,
        }
    }

    pub async fn run(&self, sql: &str) -> anyhow::Result<usize> {
        let principal = self.engine.authenticate(&self.key)?;
        let session = self
            .engine
            .session(&principal, Protocol::InProcess, Some(self.purpose))?;
        if session.purpose() != Some(self.purpose) {
            bail!("{} may not declare the purpose {}", principal.name, self.purpose);
        }
        let stream = session.sql(sql).await?;
        Ok(stream.try_fold(0, |n, b| async move { Ok(n + b.num_rows()) }).await?)
    }
}

/// An engine holding the demo's current policy bundle (fetched by a gateway's principal).
pub async fn engine(mesh: &Mesh) -> anyhow::Result<Engine> {
    engine_with(mesh, &engine_config()).await
}

async fn engine_with(mesh: &Mesh, config: &GatewayConfig) -> anyhow::Result<Engine> {
    let admin = mesh.keys.get("admin").context("no admin key")?;
    let admin = tessera_sdk::Client::new(mesh.url.clone(), admin)?;
    // Bundles are read by a gateway's principal (an admin's key is refused).
    let principal: tessera_contracts::api::PrincipalCreate =
        serde_json::from_value(serde_json::json!({"name": "bench_gateway", "kind": "service", "roles": ["gateway"]}))?;
    if let Err(e) = admin.create_principal(&principal).await
        && e.status().map(|s| s.as_u16()) != Some(409)
    {
        return Err(e.into());
    }
    let key: tessera_contracts::api::ApiKeyCreate = serde_json::from_value(serde_json::json!({}))?;
    let key = admin.create_api_key("bench_gateway", &key).await?.key;
    let bundle = tessera_sdk::Client::new(mesh.url.clone(), &key)?
        .bundle(None)
        .await?
        .context("the catalog sent no bundle")?
        .value;
    let engine = Engine::new(config)?;
    engine.install(bundle)?;
    Ok(engine)
}

/// The best configuration a user would run: the same engine with hot products
/// held in memory. Every product is read once and the copies awaited, so that
/// the rounds measure the steady state (as a gateway serving the same products
/// all day would be in), not the copying.
pub async fn accelerated(mesh: &Mesh, key: &str, purpose: &'static str) -> anyhow::Result<(InProcess, Value)> {
    let config = GatewayConfig {
        acceleration: tessera_gateway::Acceleration {
            memory_bytes: ACCELERATION_BYTES,
            hot_after: 1,
            ..tessera_gateway::Acceleration::default()
        },
        ..engine_config()
    };
    let engine = engine_with(mesh, &config).await?;
    let runner = InProcess::new(engine.clone(), key, purpose);
    let started = Instant::now();
    for (domain, product) in tessera_testkit::tpch::MESH {
        runner.run(&format!("SELECT count(*) FROM {domain}.{product}")).await?;
    }
    let wanted = tessera_testkit::tpch::MESH.len();
    let deadline = started + std::time::Duration::from_secs(30 * 60);
    while engine.accelerated().len() < wanted && Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let held = engine.accelerated();
    eprintln!(
        "accelerated: {} of {wanted} products in memory ({:.0} MiB) after {:.1} s",
        held.len(),
        held.iter().map(|t| t.bytes).sum::<u64>() as f64 / f64::from(1 << 20),
        started.elapsed().as_secs_f64()
    );
    let report = json!({
        "memory_budget_bytes": ACCELERATION_BYTES,
        "tables": held,
        "bytes": held.iter().map(|t| t.bytes).sum::<u64>(),
        "ready_after_s": started.elapsed().as_secs_f64(),
    });
    Ok((runner, report))
}

/// Flight SQL from this (separate) process.
pub struct Flight {
    client: tessera_sdk::flight::FlightClient,
}

impl Flight {
    pub async fn connect(mesh: &Mesh, key: &str, purpose: &str) -> anyhow::Result<Self> {
        let client = tessera_sdk::flight::FlightClient::connect(&format!("grpc://{}", mesh.flight), key)
            .await?
            .with_purpose(purpose);
        Ok(Self { client })
    }

    pub async fn run(&self, sql: &str) -> anyhow::Result<usize> {
        let stream = self.client.query_stream(sql).await?;
        Ok(stream.try_fold(0, |n, b| async move { Ok(n + b.num_rows()) }).await?)
    }
}

/// PostgreSQL wire, extended protocol (Parse/Describe, then Bind/Execute, rows
/// streamed in binary format), as drivers such as JDBC and tokio-postgres query.
pub struct Pg {
    client: tokio_postgres::Client,
}

impl Pg {
    pub async fn connect(mesh: &Mesh, user: &str, key: &str, purpose: &str) -> anyhow::Result<Self> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(mesh.pg.ip().to_string())
            .port(mesh.pg.port())
            .user(user)
            .dbname("tessera")
            .password(key)
            .options(format!("-c tessera.purpose={purpose}"));
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("PostgreSQL wire connection ended: {e}");
            }
        });
        Ok(Self { client })
    }

    pub async fn run(&self, sql: &str) -> anyhow::Result<usize> {
        let rows = self.client.query_raw(sql, std::iter::empty::<i32>()).await?;
        Ok(rows.try_fold(0, |n, _| async move { Ok(n + 1) }).await?)
    }
}

/// `POST /api/v1/query` answered as an Arrow IPC stream.
pub struct Http {
    client: tessera_sdk::Client,
    purpose: &'static str,
}

impl Http {
    pub fn new(mesh: &Mesh, key: &str, purpose: &'static str) -> anyhow::Result<Self> {
        Ok(Self {
            client: tessera_sdk::Client::new(mesh.url.clone(), key)?,
            purpose,
        })
    }

    pub async fn run(&self, sql: &str) -> anyhow::Result<usize> {
        Ok(self.client.query_arrow(sql, Some(self.purpose)).await?.num_rows())
    }
}

/// One configuration that runs one query at a time.
pub enum Runner {
    Raw(Raw),
    InProcess(InProcess),
    Flight(Box<Flight>),
    Pg(Box<Pg>),
    Http(Http),
}

impl Runner {
    /// Runs `sql` to its last row; the number of rows.
    pub async fn run(&self, sql: &str) -> anyhow::Result<usize> {
        match self {
            Self::Raw(r) => r.run(sql).await,
            Self::InProcess(r) => r.run(sql).await,
            Self::Flight(r) => r.run(sql).await,
            Self::Pg(r) => r.run(sql).await,
            Self::Http(r) => r.run(sql).await,
        }
    }
}

/// What each configuration is, for the report.
pub fn describe(config: &str) -> &'static str {
    match config {
        "raw" => {
            "DataFusion 55 directly over the same Delta tables (deltalake's table provider), same session settings"
        }
        "inproc" => {
            "the gateway's engine in this process: key checked, fred's session (purpose fraud: no policy applies)"
        }
        "accelerated" => {
            "the gateway's engine in this process as fred, with hot products held in memory (acceleration on, no result cache)"
        }
        "governed" => {
            "the gateway's engine in this process as ana (purpose analytics: PII hashed, confidential nulled, customers filtered by region)"
        }
        "flight" => "Arrow Flight SQL to the demo gateway from this process, as fred",
        "pg" => "PostgreSQL wire (extended protocol, binary rows) to the demo gateway, as fred",
        "http" => "HTTP POST /api/v1/query, Arrow IPC answer, to the demo gateway, as fred",
        "duckdb" => "DuckDB with its delta extension over the same Delta tables (bench/duckdb_tpch.py)",
        _ => "",
    }
}

/// DuckDB over the same tables, through `bench/duckdb_tpch.py`: one process
/// per round runs every query and reports its own timings.
pub struct DuckDb {
    python: PathBuf,
    lake: PathBuf,
    /// Runs of each query in the script's process before the timed one.
    warmup: usize,
}

/// One DuckDB round: per query its seconds and rows, or why it failed; and
/// what the script says of itself (DuckDB and extension versions, threads).
struct DuckDbRound {
    times: BTreeMap<String, Result<(f64, Option<usize>), String>>,
    info: serde_json::Map<String, Value>,
}

impl DuckDb {
    /// The interpreter named by `TESSERA_BENCH_PYTHON`; `Err` says why DuckDB is skipped.
    /// With warm-up rounds, each query also runs once unmeasured in the
    /// script's fresh process (a new process per round starts DuckDB cold, while
    /// the Rust configurations keep their caches from round to round).
    pub fn find(lake: &Path, warmup: bool) -> Result<Self, String> {
        match std::env::var_os("TESSERA_BENCH_PYTHON") {
            Some(python) if !python.is_empty() => Ok(Self {
                python: python.into(),
                lake: lake.to_path_buf(),
                warmup: usize::from(warmup),
            }),
            _ => Err("TESSERA_BENCH_PYTHON is not set (a Python with duckdb==1.5.5 and duckdb-extension-delta)".into()),
        }
    }

    /// One run of the whole suite, or why the script could not run.
    async fn round(&self) -> Result<DuckDbRound, String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("duckdb_tpch.py");
        let output = tokio::process::Command::new(&self.python)
            .arg(&script)
            .arg("--lake")
            .arg(&self.lake)
            .arg("--queries")
            .arg(queries_dir())
            .args(["--rounds", "1", "--warmup", &self.warmup.to_string()])
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot run {} {}: {e}", self.python.display(), script.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let lines: Vec<&str> = stderr.lines().collect();
            return Err(format!(
                "{} exited with {}: {}",
                script.display(),
                output.status,
                lines[lines.len().saturating_sub(5)..].join(" | ")
            ));
        }
        parse_duckdb(&stdout)
    }
}

/// The script's JSON object (the whole output, or its last line that is one):
/// `{"q01": {"seconds": s, "rows": n, ...} | seconds | null, ..., "duckdb_version": ..}`.
fn parse_duckdb(stdout: &str) -> Result<DuckDbRound, String> {
    let object = serde_json::from_str::<Value>(stdout.trim()).ok().or_else(|| {
        stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<Value>(l.trim()).ok().filter(Value::is_object))
    });
    let Some(Value::Object(map)) = object else {
        return Err(format!(
            "duckdb_tpch.py printed no JSON object: {}",
            stdout.chars().take(200).collect::<String>()
        ));
    };
    let mut round = DuckDbRound {
        times: BTreeMap::new(),
        info: serde_json::Map::new(),
    };
    for (name, v) in map {
        let is_query = name.len() == 3 && name.starts_with('q') && name[1..].chars().all(|c| c.is_ascii_digit());
        if !is_query {
            round.info.insert(name, v);
            continue;
        }
        let seconds = v
            .as_f64()
            .or_else(|| v.get("seconds").and_then(Value::as_f64))
            .filter(|s| s.is_finite() && *s >= 0.0);
        let rows = v
            .get("rows")
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok());
        let result = match seconds {
            Some(s) => Ok((s, rows)),
            None if v.is_null() => Err("failed in DuckDB (see the script's stderr)".to_string()),
            None => Err(format!("no time: {v}")),
        };
        round.times.insert(name, result);
    }
    Ok(round)
}

/// One (configuration, query) cell across rounds.
#[derive(Debug, Default, Clone)]
struct Cell {
    /// Seconds of each measured round.
    samples: Vec<f64>,
    /// Rows of the last successful run.
    rows: Option<usize>,
}

/// One failure, kept in the results.
#[derive(Debug, Clone, serde::Serialize)]
struct Failure {
    config: String,
    query: String,
    round: usize,
    error: String,
}

/// The suite's measurements.
pub struct Suite {
    configs: Vec<String>,
    queries: Vec<String>,
    cells: BTreeMap<(String, String), Cell>,
    failures: Vec<Failure>,
    skipped: BTreeMap<String, String>,
    order: Vec<Vec<String>>,
    /// What DuckDB's script reported of itself (versions, threads).
    duckdb: Value,
    /// What the accelerated configuration held in memory.
    acceleration: Value,
}

impl Suite {
    /// Keeps one run's time (measured rounds only) and row count, or its failure.
    fn record(
        &mut self,
        config: &str,
        query: &str,
        round: usize,
        measured: bool,
        result: anyhow::Result<(f64, Option<usize>)>,
    ) {
        match result {
            Ok((seconds, rows)) => {
                let cell = self.cells.entry((config.to_string(), query.to_string())).or_default();
                if measured {
                    cell.samples.push(seconds);
                }
                if rows.is_some() {
                    cell.rows = rows;
                }
            }
            Err(e) => self.failures.push(Failure {
                config: config.to_string(),
                query: query.to_string(),
                round,
                error: format!("{e:#}"),
            }),
        }
    }

    /// How many runs of Tessera or raw DataFusion failed, or answered other
    /// rows than raw DataFusion where they must not: the run's exit status.
    /// (DuckDB is a peer, not under test: its failures are recorded only.)
    pub fn problems(&self) -> usize {
        self.failures.iter().filter(|f| f.config != "duckdb").count() + self.mismatches().len()
    }

    fn cell(&self, config: &str, query: &str) -> Option<&Cell> {
        self.cells.get(&(config.to_string(), query.to_string()))
    }

    fn median(&self, config: &str, query: &str) -> Option<f64> {
        self.cell(config, query).and_then(|c| median(&c.samples))
    }

    /// Queries whose row counts differ between the ungoverned configurations.
    fn mismatches(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for q in &self.queries {
            let counts: BTreeMap<&str, usize> = UNGOVERNED
                .iter()
                .filter_map(|c| Some((*c, self.cell(c, q)?.rows?)))
                .collect();
            let distinct: std::collections::BTreeSet<usize> = counts.values().copied().collect();
            if distinct.len() > 1 {
                out.push(json!({ "query": q, "rows": counts }));
            }
        }
        out
    }

    /// Everything measured, with medians, geometric means and ratios.
    pub fn to_json(&self) -> Value {
        let mut samples = serde_json::Map::new();
        let mut rows = serde_json::Map::new();
        let mut medians = serde_json::Map::new();
        let mut geomeans = serde_json::Map::new();
        let mut counted = serde_json::Map::new();
        for c in &self.configs {
            let mut s = serde_json::Map::new();
            let mut r = serde_json::Map::new();
            let mut m = serde_json::Map::new();
            for q in &self.queries {
                if let Some(cell) = self.cell(c, q) {
                    s.insert(q.clone(), json!(cell.samples));
                    r.insert(q.clone(), json!(cell.rows));
                }
                if let Some(median) = self.median(c, q) {
                    m.insert(q.clone(), json!(median));
                }
            }
            let values: Vec<f64> = m.values().filter_map(Value::as_f64).collect();
            geomeans.insert(c.clone(), json!(geomean(&values)));
            counted.insert(c.clone(), json!(values.len()));
            samples.insert(c.clone(), Value::Object(s));
            rows.insert(c.clone(), Value::Object(r));
            medians.insert(c.clone(), Value::Object(m));
        }
        let (vs_raw, geo_vs_raw) = self.ratios("raw");
        let (vs_duckdb, geo_vs_duckdb) = self.ratios("duckdb");
        let governed_differs = self.differs("governed");
        json!({
            "configs": self.configs,
            "descriptions": self.configs.iter().map(|c| (c.clone(), json!(describe(c)))).collect::<serde_json::Map<_, _>>(),
            "skipped": self.skipped,
            "queries": self.queries,
            "order": self.order,
            "samples": samples,
            "rows": rows,
            "medians": medians,
            "geomean": geomeans,
            "geomean_queries": counted,
            "ratio_vs_raw": vs_raw,
            "geomean_ratio_vs_raw": geo_vs_raw,
            "ratio_vs_duckdb": vs_duckdb,
            "geomean_ratio_vs_duckdb": geo_vs_duckdb,
            "errors": self.failures,
            "row_mismatches": self.mismatches(),
            "governed_rows_differ": governed_differs,
            "duckdb": self.duckdb,
            "duckdb_rows_differ": self.differs("duckdb"),
            "acceleration": self.acceleration,
        })
    }

    /// The queries where `config` answered another number of rows than raw.
    fn differs(&self, config: &str) -> Vec<&String> {
        self.queries
            .iter()
            .filter(|q| {
                let rows = |c: &str| self.cell(c, q).and_then(|cell| cell.rows);
                rows(config).is_some() && rows(config) != rows("raw")
            })
            .collect()
    }

    /// Per query and as a geometric mean (over the queries both have), each
    /// configuration's median against `base`'s.
    fn ratios(&self, base: &str) -> (Value, Value) {
        let mut per_query = serde_json::Map::new();
        let mut geo = serde_json::Map::new();
        if !self.configs.iter().any(|c| c == base) {
            return (Value::Object(per_query), Value::Object(geo));
        }
        for c in self.configs.iter().filter(|c| *c != base) {
            let mut ratios = serde_json::Map::new();
            for q in &self.queries {
                if let (Some(x), Some(b)) = (self.median(c, q), self.median(base, q))
                    && b > 0.0
                {
                    ratios.insert(q.clone(), json!(x / b));
                }
            }
            let values: Vec<f64> = ratios.values().filter_map(Value::as_f64).collect();
            geo.insert(c.clone(), json!(geomean(&values)));
            per_query.insert(c.clone(), Value::Object(ratios));
        }
        (Value::Object(per_query), Value::Object(geo))
    }
}

/// The median (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

/// The geometric mean of positive values (`None` without any).
pub fn geomean(values: &[f64]) -> Option<f64> {
    let logs: Vec<f64> = values.iter().filter(|v| **v > 0.0).map(|v| v.ln()).collect();
    if logs.is_empty() {
        return None;
    }
    Some((logs.iter().sum::<f64>() / logs.len() as f64).exp())
}

/// The configurations to run, connected, in their A B C order, and what the
/// accelerated one holds in memory.
async fn runners(mesh: &Mesh, opts: &Options) -> anyhow::Result<(Vec<(String, Runner)>, Value)> {
    let key = |persona: &str| {
        mesh.keys
            .get(persona)
            .cloned()
            .with_context(|| format!("no key for {persona}"))
    };
    let fred = key("fred")?;
    let engine = engine(mesh).await.context("cannot start the in-process engine")?;
    let mut acceleration = Value::Null;
    let mut out = vec![
        ("raw".to_string(), Runner::Raw(Raw::open(&mesh.lake).await?)),
        (
            "inproc".to_string(),
            Runner::InProcess(InProcess::new(engine.clone(), &fred, "fraud")),
        ),
    ];
    if opts.runs("accelerated") {
        let (runner, report) = accelerated(mesh, &fred, "fraud")
            .await
            .context("cannot start the accelerated engine")?;
        out.push(("accelerated".into(), Runner::InProcess(runner)));
        acceleration = report;
    }
    if opts.runs("governed") {
        let ana = key("ana")?;
        out.push((
            "governed".into(),
            Runner::InProcess(InProcess::new(engine, &ana, "analytics")),
        ));
    }
    if opts.runs("flight") {
        let flight = Flight::connect(mesh, &fred, "fraud").await.context("Flight SQL")?;
        out.push(("flight".into(), Runner::Flight(Box::new(flight))));
    }
    if opts.runs("pg") {
        let pg = Pg::connect(mesh, "fred", &fred, "fraud")
            .await
            .context("PostgreSQL wire")?;
        out.push(("pg".into(), Runner::Pg(Box::new(pg))));
    }
    if opts.runs("http") {
        out.push(("http".into(), Runner::Http(Http::new(mesh, &fred, "fraud")?)));
    }
    Ok((out, acceleration))
}

/// Runs the suite: `opts.warmup` rounds discarded, then `opts.rounds` measured.
pub async fn run(mesh: &Mesh, opts: &Options) -> anyhow::Result<Suite> {
    let queries = queries()?;
    let (runners, acceleration) = runners(mesh, opts).await?;
    let mut duckdb = None;
    let mut skipped = BTreeMap::new();
    if opts.runs("duckdb") {
        match DuckDb::find(&mesh.lake, opts.warmup > 0) {
            Ok(d) => duckdb = Some(d),
            Err(why) => {
                skipped.insert("duckdb".to_string(), why);
            }
        }
    } else {
        skipped.insert("duckdb".to_string(), "--skip duckdb".to_string());
    }
    for c in ["accelerated", "governed", "flight", "pg", "http"] {
        if !opts.runs(c) {
            skipped.insert(c.to_string(), format!("--skip {c}"));
        }
    }
    let mut configs: Vec<String> = runners.iter().map(|(c, _)| c.clone()).collect();
    if duckdb.is_some() {
        configs.push("duckdb".into());
    }
    let mut suite = Suite {
        configs,
        queries: queries.iter().map(|q| q.name.clone()).collect(),
        cells: BTreeMap::new(),
        failures: Vec::new(),
        skipped,
        order: Vec::new(),
        duckdb: Value::Null,
        acceleration,
    };
    let total = opts.warmup + opts.rounds;
    for round in 0..total {
        let measured = round >= opts.warmup;
        let label = if measured {
            format!("round {}/{}", round - opts.warmup + 1, opts.rounds)
        } else {
            format!("warm-up {}/{}", round + 1, opts.warmup)
        };
        // Odd rounds run the configurations in reverse: A B C, then C B A.
        let reverse = round % 2 == 1;
        let mut order: Vec<&(String, Runner)> = runners.iter().collect();
        if reverse {
            order.reverse();
        }
        let mut names: Vec<String> = order.iter().map(|(c, _)| c.clone()).collect();
        if duckdb.is_some() {
            if reverse {
                names.push("duckdb".into());
            } else {
                names.insert(0, "duckdb".into());
            }
        }
        if measured {
            suite.order.push(names);
        }
        if !reverse {
            duckdb_round(&mut duckdb, &mut suite, round, measured, &label).await;
        }
        for q in &queries {
            let mut line = format!("[{label}] {}", q.name);
            for (config, runner) in &order {
                let started = Instant::now();
                let result = runner
                    .run(&q.sql)
                    .await
                    .map(|rows| (started.elapsed().as_secs_f64(), Some(rows)));
                match &result {
                    Ok((s, Some(rows))) => line.push_str(&format!("  {config} {s:.3}s/{rows}")),
                    Ok((s, None)) => line.push_str(&format!("  {config} {s:.3}s")),
                    Err(_) => line.push_str(&format!("  {config} FAILED")),
                }
                suite.record(config, &q.name, round, measured, result);
            }
            eprintln!("{line}");
        }
        if reverse {
            duckdb_round(&mut duckdb, &mut suite, round, measured, &label).await;
        }
    }
    for f in &suite.failures {
        eprintln!("FAILED {} {} (round {}): {}", f.config, f.query, f.round, f.error);
    }
    for m in suite.mismatches() {
        eprintln!("ROWS DIFFER: {m}");
    }
    Ok(suite)
}

/// One DuckDB round. A DuckDB that cannot run at all is skipped from then on,
/// with the reason recorded (it is a peer, not the system under test); one that
/// ran before and fails now has this round's failures recorded.
async fn duckdb_round(duckdb: &mut Option<DuckDb>, suite: &mut Suite, round: usize, measured: bool, label: &str) {
    let Some(d) = duckdb.as_ref() else { return };
    let queries = suite.queries.clone();
    match d.round().await {
        Ok(DuckDbRound { times, info }) => {
            let mut line = format!("[{label}] duckdb");
            for q in &queries {
                let result = match times.get(q) {
                    Some(Ok(done)) => Ok(*done),
                    Some(Err(e)) => Err(anyhow::anyhow!("{e}")),
                    None => Err(anyhow::anyhow!("duckdb_tpch.py reported no time")),
                };
                match &result {
                    Ok((s, _)) => line.push_str(&format!(" {q} {s:.3}s")),
                    Err(_) => line.push_str(&format!(" {q} FAILED")),
                }
                suite.record("duckdb", q, round, measured, result);
            }
            suite.duckdb = Value::Object(info);
            eprintln!("{line}");
        }
        Err(why) if suite.cells.keys().any(|(c, _)| c == "duckdb") => {
            eprintln!("[{label}] duckdb failed: {why}");
            for q in &queries {
                suite.record("duckdb", q, round, measured, Err(anyhow::anyhow!("{why}")));
            }
        }
        Err(why) => {
            eprintln!("[{label}] duckdb skipped: {why}");
            suite.skipped.insert("duckdb".into(), why);
            suite.configs.retain(|c| c != "duckdb");
            suite.failures.retain(|f| f.config != "duckdb");
            for names in &mut suite.order {
                names.retain(|c| c != "duckdb");
            }
            *duckdb = None;
        }
    }
}
