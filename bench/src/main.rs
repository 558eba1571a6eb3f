//! `tessera-bench`: Tessera's benchmarks in one command (issue #8).
//!
//! `tessera-bench run --scale 1` starts the demo mesh at that scale factor
//! (`tessera demo`, a separate process), then measures, side by side and
//! alternating (shared/bench.md): the 22 TPC-H queries in raw DataFusion, in
//! the gateway's engine in process (no policy applying, then as the governed
//! analyst), over Flight SQL, PostgreSQL wire and HTTP from this process, and in
//! DuckDB; then small-query latency, result streaming, policy propagation,
//! the platform's peak RSS, and catalog REST throughput. It writes
//! `results.json`, `RESULTS.md` and `chart.png` into `--out` (default `bench/`).
//!
//! `tessera-bench load` is the catalog load generator, run by `run` as a
//! separate process.

mod catalog;
mod latency;
mod mesh;
mod propagation;
mod report;
mod streaming;
mod tpch;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::mesh::{Mesh, Options};

#[derive(Debug, Parser)]
#[command(
    name = "tessera-bench",
    version,
    about = "Tessera's benchmarks (see shared/bench.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Generates the demo mesh and runs every measurement; writes results.json,
    /// RESULTS.md and chart.png.
    Run(RunArgs),
    /// The catalog REST load generator (run by `run` in a separate process).
    Load(catalog::LoadArgs),
}

/// What `--skip` accepts.
const SKIPPABLE: [&str; 13] = [
    "duckdb",
    "governed",
    "accelerated",
    "flight",
    "pg",
    "http",
    "latency",
    "streaming",
    "catalog",
    "catalog-sqlite",
    "catalog-postgres",
    "propagation",
    "native-pg",
];

#[derive(Debug, Args)]
struct RunArgs {
    /// TPC-H scale factor of the demo mesh (the headline figures are at SF 1).
    #[arg(long, value_name = "SF", default_value_t = 1.0)]
    scale: f64,
    /// Measured rounds; medians are taken over them.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Rounds run first and discarded.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Where results.json, RESULTS.md and chart.png go [default: the bench/ folder].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Scratch directory for the demo's data (kept: the same scale factor is
    /// reused by the next run) [default: tessera-bench/ in the target directory].
    #[arg(long, value_name = "DIR")]
    work: Option<PathBuf>,
    /// The `tessera` binary [default: the one next to this executable].
    #[arg(long, value_name = "FILE")]
    tessera: Option<PathBuf>,
    /// Measurements and configurations to leave out, comma-separated: duckdb,
    /// governed, flight, pg, http (everywhere: TPC-H, latency, streaming),
    /// latency, streaming, catalog (or only catalog-sqlite / catalog-postgres),
    /// propagation, native-pg (streaming's PostgreSQL reference).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    skip: Vec<String>,
    /// A quick run that checks the harness works (few samples, small results).
    #[arg(long)]
    smoke: bool,
}

/// The directory of this executable, above `deps/` when run as a test's helper.
fn exe_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    Some(if dir.ends_with("deps") { dir.parent()? } else { dir }.to_path_buf())
}

impl RunArgs {
    fn options(&self) -> anyhow::Result<Options> {
        if !(self.scale > 0.0 && self.scale <= 100.0) {
            bail!("--scale {} is out of range: above 0 and at most 100", self.scale);
        }
        if self.rounds == 0 {
            bail!("--rounds must be at least 1");
        }
        for s in &self.skip {
            if !SKIPPABLE.contains(&s.as_str()) {
                bail!("--skip {s}: not one of {}", SKIPPABLE.join(", "));
            }
        }
        let tessera = match &self.tessera {
            Some(t) => t.clone(),
            None => exe_dir().context("cannot find this executable")?.join("tessera"),
        };
        let work = match &self.work {
            Some(w) => w.clone(),
            None => exe_dir()
                .and_then(|d| d.parent().map(Path::to_path_buf))
                .unwrap_or_else(std::env::temp_dir)
                .join("tessera-bench"),
        };
        std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
        Ok(Options {
            scale: self.scale,
            rounds: self.rounds,
            warmup: self.warmup,
            smoke: self.smoke,
            tessera,
            work: std::fs::canonicalize(&work)?,
            skip: self.skip.iter().cloned().collect::<BTreeSet<_>>(),
        })
    }

    fn out(&self) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
    }
}

/// A shell word, quoted when it needs to be.
fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// This run's command line, and the commands that build and run it again: a
/// wrapper script that ran it says how in `TESSERA_BENCH_COMMAND`; else the
/// workspace is built whole (a partial build resolves features differently and
/// rebuilds DataFusion) in this binary's profile, and this binary run again.
fn commands() -> (String, String) {
    let args: Vec<String> = std::env::args().map(|a| shell_word(&a)).collect();
    let command = args.join(" ");
    if let Ok(wrapper) = std::env::var("TESSERA_BENCH_COMMAND")
        && !wrapper.trim().is_empty()
    {
        return (command, wrapper);
    }
    let profile = match report::profile().as_str() {
        "debug" => "dev".to_string(),
        other => other.to_string(),
    };
    (
        command.clone(),
        format!("cargo build --profile {profile} --workspace --bins && {command}"),
    )
}

/// The platform's peak and current resident set (VmHWM, VmRSS), in KiB.
fn memory(pid: u32) -> Value {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    json!({ "vm_hwm_kib": field("VmHWM:"), "vm_rss_kib": field("VmRSS:") })
}

/// A measurement's result, or why it is missing; failures are counted.
fn outcome(name: &str, result: anyhow::Result<Value>, problems: &mut usize) -> Value {
    match result {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{name} FAILED: {e:#}");
            *problems += 1;
            json!({ "error": format!("{e:#}") })
        }
    }
}

fn skipped(name: &str) -> Value {
    json!({ "skipped": format!("--skip {name}") })
}

/// Everything `run` does; returns how many measurements failed.
async fn run(args: RunArgs) -> anyhow::Result<usize> {
    let opts = options_checked(&args)?;
    let (command, reproduce) = commands();
    let date = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    eprintln!(
        "starting the demo mesh at scale factor {} ({}; data under {})",
        opts.scale,
        opts.tessera.display(),
        opts.work.display()
    );
    let started = std::time::Instant::now();
    let mesh = {
        let opts = opts.clone();
        tokio::task::spawn_blocking(move || Mesh::start(&opts)).await??
    };
    eprintln!(
        "demo mesh ready in {:.0} s at {} (PostgreSQL wire {}, Flight SQL {})",
        started.elapsed().as_secs_f64(),
        mesh.url,
        mesh.pg,
        mesh.flight
    );

    let suite = tpch::run(&mesh, &opts).await?;
    let mut problems = suite.problems();
    let after_tpch = memory(mesh.pid);

    let latency = if opts.runs("latency") {
        eprintln!("small-query latency");
        outcome("latency", latency::run(&mesh, &opts).await, &mut problems)
    } else {
        skipped("latency")
    };
    let streaming = if opts.runs("streaming") {
        eprintln!("result streaming");
        outcome("streaming", streaming::run(&mesh, &opts).await, &mut problems)
    } else {
        skipped("streaming")
    };
    let propagation = if opts.runs("propagation") {
        eprintln!("policy propagation");
        outcome("propagation", propagation::run(&mesh, &opts).await, &mut problems)
    } else {
        skipped("propagation")
    };
    let after_all = memory(mesh.pid);
    let rss = peak_rss(&mesh, &after_tpch, &after_all);
    // Stopped before the catalog's load test, which must not share the machine with it.
    tokio::task::spawn_blocking(move || drop(mesh)).await?;
    let catalog = if opts.runs("catalog") {
        eprintln!("catalog REST throughput");
        outcome("catalog", catalog::run(&opts).await, &mut problems)
    } else {
        skipped("catalog")
    };

    let results = json!({
        "tool": "tessera-bench",
        "date": date,
        "command": command,
        "reproduce": reproduce,
        "machine": report::machine(),
        "build": report::build(),
        "options": {
            "scale": opts.scale,
            "rounds": opts.rounds,
            "warmup": opts.warmup,
            "smoke": opts.smoke,
            "skip": opts.skip,
        },
        "engine": tpch::engine_settings(),
        "tpch": suite.to_json(),
        "latency": latency,
        "streaming": streaming,
        "propagation": propagation,
        "catalog": catalog,
        "rss": rss,
        "problems": problems,
    });
    report::write(&args.out(), &results)?;
    Ok(problems)
}

fn options_checked(args: &RunArgs) -> anyhow::Result<Options> {
    let opts = args.options()?;
    if !opts.tessera.is_file() {
        bail!(
            "{} does not exist: build it with the same profile (`cargo build -p tessera -p tessera-bench`) or pass --tessera",
            opts.tessera.display()
        );
    }
    Ok(opts)
}

/// The platform process's peak RSS: after the TPC-H suite and after every
/// measurement against it (streaming a large result included).
fn peak_rss(mesh: &Mesh, after_tpch: &Value, after_all: &Value) -> Value {
    let mib = |v: &Value, key: &str| v.get(key).and_then(Value::as_f64).map(|k| (k / 1024.0).round());
    let since = if mesh.peak_reset {
        "the demo being ready (VmHWM reset through /proc/<pid>/clear_refs); it did not generate the data"
    } else {
        "the process's start (VmHWM could not be reset)"
    };
    json!({
        "process": format!("tessera demo (pid {}): catalog and gateway in one process", mesh.pid),
        "peak_since": since,
        "vm_hwm_mib_after_tpch": mib(after_tpch, "vm_hwm_kib"),
        "vm_hwm_mib": mib(after_all, "vm_hwm_kib"),
        "vm_rss_mib_at_end": mib(after_all, "vm_rss_kib"),
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(args) => run(args).await.inspect(|&problems| {
            if problems > 0 {
                eprintln!("{problems} measurement(s) failed or disagreed: see RESULTS.md");
            }
        }),
        Cmd::Load(args) => catalog::load_main(args).await.map(|()| 0),
    };
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
