//! Catalog REST throughput and latency, on the embedded SQLite and on
//! PostgreSQL: product reads (`GET /api/v1/domains/{d}/products/{p}`) and
//! contract registrations (`POST .../contracts`, each a new contract version).
//!
//! Each backend is a `tessera serve` child process with a fresh catalog seeded
//! with one domain of 100 products. The load comes from a separate process
//! (`tessera-bench load`, this binary), so that the client's work does not
//! share a runtime with the measured server and shows in neither's figures;
//! both processes still share the machine's cores, as any single-host
//! measurement does. The two backends alternate round by round (A B A B).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tessera_contracts::api::{DomainCreate, ProductCreate, TeamCreate};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStdout;

use crate::latency::{Percentiles, median, pg_connect_config, round3};
use crate::mesh::Options;

/// The seeded domain and its team.
const DOMAIN: &str = "bench";
const TEAM: &str = "bench_team";
/// Products of the seeded domain: `p000` .. `p099`.
const PRODUCTS: usize = 100;
/// Concurrent requests of the load generator.
const CONCURRENCY: usize = 32;
/// The PostgreSQL database of the catalog under test, dropped and created anew.
const PG_DATABASE: &str = "tessera_bench_catalog";
/// The goal of issue #8: product reads on SQLite.
const GOAL_READS_PER_S: f64 = 10_000.0;

fn product_name(i: usize) -> String {
    format!("p{i:03}")
}

/// A small ODCS v3.1.0 contract for a product of the bench domain: a few
/// columns with quality rules, enough for validation and the compatibility
/// check to do their real work. The products have no output port, so no
/// Delta table is read on registration.
fn contract(product: &str, version: &str) -> String {
    format!(
        "apiVersion: v3.1.0
kind: DataContract
id: bench-{product}
name: {product}
version: {version}
status: active
domain: {DOMAIN}
dataProduct: {product}
description:
  purpose: A product of the catalog benchmark.
tags:
  - bench
schema:
  - name: {product}
    physicalName: {product}
    physicalType: table
    logicalType: object
    description: One row per event.
    properties:
      - name: id
        logicalType: integer
        physicalType: bigint
        required: true
        unique: true
        primaryKey: true
        primaryKeyPosition: 1
        description: Event identifier.
        quality:
          - metric: duplicateValues
            mustBe: 0
      - name: amount
        logicalType: number
        physicalType: decimal(15,2)
        required: true
        description: Amount of the event.
      - name: created
        logicalType: date
        physicalType: date
        description: Day of the event.
"
    )
}

/// What the load generator does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Op {
    /// GET a product, round-robin over the domain's products.
    Read,
    /// POST a new contract version; each worker registers on its own
    /// products, so that versions rise without conflicts between workers.
    Register,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Register => "register",
        }
    }
}

/// `tessera-bench load`: a closed-loop HTTP load generator against a catalog;
/// prints one JSON object `{requests, errors, seconds, rps, p50_ms, p99_ms}`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// The catalog's root URL.
    #[arg(long)]
    pub url: String,
    /// An API key allowed to read and register (the environment keeps it out of `ps`).
    #[arg(long, env = "TESSERA_BENCH_KEY", hide_env_values = true)]
    pub key: String,
    #[arg(long, value_enum)]
    pub op: Op,
    /// Requests in flight at once (one worker each, sharing a keep-alive pool).
    #[arg(long, default_value_t = CONCURRENCY)]
    pub concurrency: usize,
    /// Measured time.
    #[arg(long, default_value_t = 10.0)]
    pub duration_secs: f64,
    /// Unmeasured load first (connections, caches, the server's pools).
    #[arg(long, default_value_t = 1.0)]
    pub warmup_secs: f64,
    /// The domain whose products are read or registered on.
    #[arg(long, default_value = DOMAIN)]
    pub domain: String,
    /// Its products, named `p000`, `p001`, ...
    #[arg(long, default_value_t = PRODUCTS)]
    pub products: usize,
}

/// What one worker of the load generator saw.
#[derive(Debug, Default)]
struct WorkerResult {
    /// Latencies (ms) of the requests sent in the measured window.
    latencies: Vec<f64>,
    errors: usize,
    first_error: Option<String>,
    /// When its last measured request was answered.
    last: Option<Instant>,
}

/// A minor version unique to this load run and rising between runs, so that a
/// later run's contract versions sort above an earlier one's.
fn run_id() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

async fn worker(
    w: usize,
    client: reqwest::Client,
    args: Arc<LoadArgs>,
    measure_from: Instant,
    end: Instant,
    run: u128,
) -> WorkerResult {
    let base = args.url.trim_end_matches('/');
    let mine: Vec<usize> = match args.op {
        Op::Read => (0..args.products).collect(),
        Op::Register => (w..args.products).step_by(args.concurrency).collect(),
    };
    let mut sequence = vec![0u64; mine.len()];
    let mut result = WorkerResult::default();
    let mut i = w;
    while Instant::now() < end {
        let sent = Instant::now();
        let outcome = match args.op {
            Op::Read => {
                let product = product_name(i % args.products);
                i += args.concurrency;
                let url = format!("{base}/api/v1/domains/{}/products/{product}", args.domain);
                send(client.get(url)).await
            }
            Op::Register => {
                let j = i % mine.len();
                i += 1;
                sequence[j] += 1;
                let product = product_name(mine[j]);
                let url = format!("{base}/api/v1/domains/{}/products/{product}/contracts", args.domain);
                let body = contract(&product, &format!("1.{run}.{}", sequence[j]));
                send(
                    client
                        .post(url)
                        .header(reqwest::header::CONTENT_TYPE, "application/yaml")
                        .body(body),
                )
                .await
            }
        };
        if sent >= measure_from {
            let now = Instant::now();
            result.latencies.push((now - sent).as_secs_f64() * 1000.0);
            result.last = Some(now);
            if let Err(e) = outcome {
                result.errors += 1;
                result.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    result
}

/// Sends a request and reads the whole answer (so the connection is reused).
async fn send(request: reqwest::RequestBuilder) -> anyhow::Result<()> {
    let response = request.send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("{status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}

/// The load generator's entry point (`tessera-bench load`).
pub async fn load_main(args: LoadArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.concurrency > 0 && args.products > 0,
        "give at least one worker and one product"
    );
    if args.op == Op::Register {
        anyhow::ensure!(
            args.concurrency <= args.products,
            "registering needs a product per worker at least: {} workers, {} products",
            args.concurrency,
            args.products
        );
    }
    use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
    let mut headers = HeaderMap::new();
    let mut auth = HeaderValue::from_str(&format!("Bearer {}", args.key)).context("the key is not a header value")?;
    auth.set_sensitive(true);
    headers.insert(AUTHORIZATION, auth);
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(args.concurrency)
        .tcp_nodelay(true)
        .build()?;
    let run = run_id();
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup_secs.max(0.0));
    let end = measure_from + Duration::from_secs_f64(args.duration_secs.max(0.0));
    let args = Arc::new(args);
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|w| tokio::spawn(worker(w, client.clone(), args.clone(), measure_from, end, run)))
        .collect();
    let mut latencies = Vec::new();
    let (mut errors, mut first_error, mut last) = (0, None, measure_from);
    for task in tasks {
        let r = task.await.context("a load worker failed")?;
        latencies.extend(r.latencies);
        errors += r.errors;
        if first_error.is_none() {
            first_error = r.first_error;
        }
        if let Some(t) = r.last {
            last = last.max(t);
        }
    }
    let seconds = (last - measure_from).as_secs_f64();
    let requests = latencies.len();
    let p = Percentiles::of(&mut latencies);
    if let Some(e) = &first_error {
        eprintln!("load: {errors} of {requests} requests failed; the first: {e}");
    }
    println!(
        "{}",
        json!({
            "op": args.op.name(),
            "requests": requests,
            "errors": errors,
            "seconds": round3(seconds),
            "rps": if seconds > 0.0 { (requests as f64 / seconds).round() } else { 0.0 },
            "p50_ms": round3(p.p50),
            "p99_ms": round3(p.p99),
            "first_error": first_error,
        })
    );
    Ok(())
}

/// A `tessera serve` under test.
struct Server {
    backend: &'static str,
    url: String,
    key: String,
    child: tokio::process::Child,
}

/// A key of the catalog's format `tsk_<12 hex>_<64 hex>`, from the kernel's
/// random source (the harness runs on Linux: it reads /proc too).
fn generate_key() -> anyhow::Result<String> {
    use std::fmt::Write as _;
    use std::io::Read;
    use tessera_contracts::keys::{ID_HEX, PREFIX, SECRET_HEX};
    let mut bytes = vec![0u8; (ID_HEX + SECRET_HEX) / 2];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom")?;
    let mut hex = String::with_capacity(ID_HEX + SECRET_HEX);
    for b in &bytes {
        let _ = write!(hex, "{b:02x}");
    }
    Ok(format!("{PREFIX}{}_{}", &hex[..ID_HEX], &hex[ID_HEX..]))
}

impl Server {
    /// Starts `tessera serve` on a fresh data directory (and `database_url`'s
    /// database when given) with a known bootstrap admin key, and waits for its
    /// banner.
    async fn start(opts: &Options, backend: &'static str, database_url: Option<&str>) -> anyhow::Result<Self> {
        let dir = opts.work.join(format!("catalog-{backend}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let log_path = opts.work.join(format!("catalog-{backend}.log"));
        let log = std::fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
        let key = generate_key()?;
        let mut command = tokio::process::Command::new(&opts.tessera);
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(&dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(["--pg-listen", "127.0.0.1:0"])
            .args(["--flight-listen", "127.0.0.1:0"]);
        if let Some(url) = database_url {
            command.arg("--database-url").arg(url);
        }
        let mut child = command
            .env("TESSERA_BOOTSTRAP_KEY", &key)
            // The gateway's relative default data directory lands in the scratch dir.
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot run {}", opts.tessera.display()))?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let banner = tokio::time::timeout(Duration::from_secs(120), listening_url(&mut lines)).await;
        let url = match banner {
            Ok(Ok(url)) => url,
            Ok(Err(e)) => return Err(e.context(format!("see {}:\n{}", log_path.display(), tail(&log_path)))),
            Err(_) => bail!("the server did not listen within 120 s; see {}", log_path.display()),
        };
        // Keep draining its stdout, so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            backend,
            url,
            key,
            child,
        })
    }

    /// One team, one domain, [`PRODUCTS`] draft products without output ports.
    async fn seed(&self) -> anyhow::Result<()> {
        let admin = tessera_sdk::Client::new(self.url.clone(), &self.key)?;
        admin
            .create_team(&TeamCreate {
                name: TEAM.into(),
                title: Some("Benchmark team".into()),
                description: Some("Owns the benchmark's domain.".into()),
                members: Vec::new(),
            })
            .await
            .context("cannot create the benchmark team")?;
        admin
            .create_domain(&DomainCreate {
                name: DOMAIN.into(),
                title: Some("Benchmark".into()),
                description: Some("Products of the catalog benchmark.".into()),
                owner_team: TEAM.into(),
                storage_roots: None,
            })
            .await
            .context("cannot create the benchmark domain")?;
        for i in 0..PRODUCTS {
            admin
                .create_product(
                    DOMAIN,
                    &ProductCreate {
                        name: product_name(i),
                        title: Some(format!("Benchmark product {i}")),
                        description: Some("A product of the catalog benchmark.".into()),
                        owner_team: None,
                        tags: vec!["bench".into()],
                        visibility: Default::default(),
                        output_ports: Vec::new(),
                        input_ports: Vec::new(),
                        compatibility: Default::default(),
                    },
                )
                .await
                .with_context(|| format!("cannot create product {}", product_name(i)))?;
        }
        Ok(())
    }

    /// Runs the load generator as a separate process and reads its result.
    async fn load(&self, op: Op, opts: &Options) -> anyhow::Result<Value> {
        let exe = this_exe()?;
        let (duration, warmup) = if opts.smoke { (1.0, 0.0) } else { (10.0, 2.0) };
        let output = tokio::process::Command::new(exe)
            .arg("load")
            .args(["--url", &self.url])
            .args(["--op", op.name()])
            .args(["--concurrency", &CONCURRENCY.to_string()])
            .args(["--duration-secs", &duration.to_string()])
            .args(["--warmup-secs", &warmup.to_string()])
            .args(["--domain", DOMAIN])
            .args(["--products", &PRODUCTS.to_string()])
            .env("TESSERA_BENCH_KEY", &self.key)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .await
            .context("cannot run the load generator")?;
        anyhow::ensure!(output.status.success(), "the load generator failed ({})", output.status);
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<Value>(l.trim()).ok().filter(Value::is_object))
            .with_context(|| format!("the load generator printed no JSON: {stdout}"))
    }

    /// Stops the server as Ctrl-C would, and kills it if it lingers.
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Reads the server's stdout up to its banner line; returns the URL it names.
async fn listening_url(lines: &mut Lines<BufReader<ChildStdout>>) -> anyhow::Result<String> {
    while let Some(line) = lines.next_line().await? {
        if let Some(url) = line.strip_prefix("Tessera catalog listening on ") {
            return Ok(url.trim().to_string());
        }
    }
    bail!("the server exited before it listened")
}

/// This binary, to run as the load generator. When it was rebuilt while
/// running, Linux names the old file `... (deleted)`: the new one at the same
/// path serves as well.
fn this_exe() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this benchmark's binary")?;
    if exe.is_file() {
        return Ok(exe);
    }
    let rebuilt = exe
        .to_str()
        .and_then(|p| p.strip_suffix(" (deleted)"))
        .map(PathBuf::from)
        .filter(|p| p.is_file());
    rebuilt.with_context(|| format!("this benchmark's binary {} is gone", exe.display()))
}

/// The last lines of a log, for an error message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// `url` with its database replaced by `database` (query parameters kept).
fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let (scheme, rest) = url.split_once("://").context("not a URL")?;
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let authority = rest.split_once('/').map_or(rest, |(authority, _)| authority);
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    Ok(format!("{scheme}://{authority}/{database}{query}"))
}

/// Drops and creates the catalog's PostgreSQL database; returns its URL.
async fn fresh_database(server_url: &str) -> anyhow::Result<String> {
    let mut config: tokio_postgres::Config = server_url
        .parse()
        .with_context(|| format!("TESSERA_TEST_PG_URL ({server_url}) is not a PostgreSQL URL"))?;
    config.connect_timeout(Duration::from_secs(5));
    let client = pg_connect_config(&config)
        .await
        .with_context(|| format!("PostgreSQL at {server_url} is unreachable"))?;
    // Two statements: several in one query string run in a transaction, which
    // DROP and CREATE DATABASE refuse.
    for statement in [
        format!("DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"),
        format!("CREATE DATABASE {PG_DATABASE}"),
    ] {
        client
            .batch_execute(&statement)
            .await
            .with_context(|| format!("cannot create the database {PG_DATABASE}: {statement}"))?;
    }
    with_database(server_url, PG_DATABASE)
}

/// Drops the catalog's database after the run (best effort).
async fn drop_database(server_url: &str) {
    let Ok(config) = server_url.parse::<tokio_postgres::Config>() else {
        return;
    };
    if let Ok(client) = pg_connect_config(&config).await {
        let _ = client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))
            .await;
    }
}

/// Starts and seeds one backend; `Err` says why it is not measured.
async fn backend(opts: &Options, name: &'static str, database_url: Option<&str>) -> Result<Server, String> {
    let server = Server::start(opts, name, database_url)
        .await
        .map_err(|e| format!("cannot start: {e:#}"))?;
    match server.seed().await {
        Ok(()) => Ok(server),
        Err(e) => {
            server.stop().await;
            Err(format!("cannot seed: {e:#}"))
        }
    }
}

pub async fn run(opts: &Options) -> anyhow::Result<Value> {
    let mut servers = Vec::new();
    let mut skipped = Vec::new();
    match backend(opts, "sqlite", None).await {
        Ok(server) => servers.push(server),
        Err(why) => skipped.push(json!({ "backend": "sqlite", "reason": why })),
    }
    let pg_url = std::env::var("TESSERA_TEST_PG_URL").ok().filter(|u| !u.is_empty());
    match &pg_url {
        None => skipped.push(json!({
            "backend": "postgres",
            "reason": "TESSERA_TEST_PG_URL is not set (bench/run sets it when PostgreSQL answers on 127.0.0.1:5432)",
        })),
        Some(url) => match fresh_database(url).await {
            Err(e) => skipped.push(json!({ "backend": "postgres", "reason": format!("{e:#}") })),
            Ok(database_url) => match backend(opts, "postgres", Some(&database_url)).await {
                Ok(server) => servers.push(server),
                Err(why) => skipped.push(json!({ "backend": "postgres", "reason": why })),
            },
        },
    }

    // (backend, op) -> the load generator's result of each measured round.
    let mut results: Vec<(&'static str, Op, Vec<Value>)> = Vec::new();
    let mut errors = Vec::new();
    for op in [Op::Read, Op::Register] {
        for server in &servers {
            results.push((server.backend, op, Vec::new()));
        }
        for _ in 0..opts.rounds.max(1) {
            for server in &servers {
                match server.load(op, opts).await {
                    Ok(r) => {
                        if let Some(entry) = results.iter_mut().find(|(b, o, _)| *b == server.backend && *o == op) {
                            entry.2.push(r);
                        }
                    }
                    Err(e) => {
                        errors.push(json!({ "backend": server.backend, "op": op.name(), "error": format!("{e:#}") }));
                    }
                }
            }
        }
    }
    for server in servers {
        server.stop().await;
    }
    if let Some(url) = &pg_url {
        drop_database(url).await;
    }

    let mut rows = Vec::new();
    let mut sqlite_reads = None;
    for (backend, op, rounds) in &results {
        let field = |k: &str| {
            rounds
                .iter()
                .filter_map(|r| r.get(k).and_then(Value::as_f64))
                .collect::<Vec<_>>()
        };
        let sum = |k: &str| {
            rounds
                .iter()
                .filter_map(|r| r.get(k).and_then(Value::as_u64))
                .sum::<u64>()
        };
        // Medians of the rounds; none at all when no round ran.
        let mid = |k: &str| (!rounds.is_empty()).then(|| median(&field(k)));
        let rps = mid("rps");
        if *backend == "sqlite" && *op == Op::Read {
            sqlite_reads = rps;
        }
        rows.push(json!({
            "backend": backend,
            "op": op.name(),
            "rounds": rounds.len(),
            "rps": rps.map(f64::round),
            "p50_ms": mid("p50_ms").map(round3),
            "p99_ms": mid("p99_ms").map(round3),
            "requests": sum("requests"),
            "errors": sum("errors"),
            "first_error": rounds.iter().find_map(|r| r.get("first_error").filter(|e| !e.is_null()).cloned()),
        }));
    }
    let mut out = json!({
        "load": format!(
            "tessera-bench load: {CONCURRENCY} concurrent keep-alive clients in a separate process, {} s per round after {} s of warm-up; medians of the rounds",
            if opts.smoke { 1 } else { 10 },
            if opts.smoke { 0 } else { 2 }
        ),
        "read": format!("GET /api/v1/domains/{DOMAIN}/products/{{p}}, round-robin over {PRODUCTS} products"),
        "register": "POST /api/v1/domains/bench/products/{p}/contracts: a new ODCS v3.1.0 contract version (3 columns), each worker on its own products",
        "goal": "catalog reads ≥ 10k/s on SQLite",
        "goal_measured": sqlite_reads.map(|r| format!("{} reads/s", r.round())),
        "goal_met": sqlite_reads.map(|r| r >= GOAL_READS_PER_S),
        "rows": rows,
    });
    // Only when there is something to say: the report reads a `skipped` key as
    // "the whole measurement was skipped", hence `not_run` for one backend.
    if !skipped.is_empty() {
        out["not_run"] = Value::Array(skipped);
    }
    if !errors.is_empty() {
        out["errors"] = Value::Array(errors);
    }
    Ok(out)
}
