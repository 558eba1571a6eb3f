//! The system under test: `tessera demo` run as a child process, as a user would
//! run it, so that the protocol clients of the benchmark (this process) talk to
//! it over real sockets from a separate process, and its peak RSS is its own.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// What a benchmark run was asked to do (shared by every measurement module).
#[derive(Debug, Clone)]
pub struct Options {
    /// TPC-H scale factor of the demo mesh.
    pub scale: f64,
    /// Measured rounds (after the warm-up ones).
    pub rounds: usize,
    /// Rounds run first and discarded: caches, page cache and JIT-free but
    /// lazily initialised state (object stores, metadata caches) warm up.
    pub warmup: usize,
    /// A quick run that checks the harness works (the test suite's), not speed.
    pub smoke: bool,
    /// The `tessera` binary to run the demo mesh with.
    pub tessera: PathBuf,
    /// Scratch directory: the demo's data directory and logs live under it.
    pub work: PathBuf,
    /// Measurements and configurations not to run (`duckdb`, `flight`, ...).
    pub skip: BTreeSet<String>,
}

impl Options {
    /// Whether `what` is to be run.
    pub fn runs(&self, what: &str) -> bool {
        !self.skip.contains(what)
    }
}

/// A running demo mesh: the platform (catalog and gateway) in a child process.
#[derive(Debug)]
pub struct Mesh {
    /// The catalog's (and the gateway's HTTP) root URL.
    pub url: String,
    /// The gateway's PostgreSQL wire address.
    pub pg: SocketAddr,
    /// The gateway's Flight SQL address.
    pub flight: SocketAddr,
    /// Persona -> API key (`admin`, `ana`, `fred`, ...).
    pub keys: BTreeMap<String, String>,
    /// Root of the Delta tables: `<lake>/<domain>/<product>`.
    pub lake: PathBuf,
    /// The platform's process id (for its peak RSS).
    pub pid: u32,
    /// Whether the process's peak RSS was reset once it was ready (else it
    /// counts from its start).
    pub peak_reset: bool,
    child: Child,
}

/// SF 1 generation in a release build takes a minute or two; a dev build or a
/// larger scale factor much longer.
const START_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The last line `tessera demo` prints once every persona's lines work.
const READY_LINE: &str = "Stop with Ctrl-C";

/// What the demo's start-up output says about where it listens.
#[derive(Debug, Default, PartialEq, Eq)]
struct Banner {
    url: Option<String>,
    pg: Option<SocketAddr>,
    flight: Option<SocketAddr>,
    /// Persona -> key, from the `cli:` lines (personas.json is the source; this
    /// is the fallback and the cross-check).
    keys: BTreeMap<String, String>,
    persona: Option<String>,
}

impl Banner {
    /// Takes in one line of the demo's stdout.
    fn read(&mut self, line: &str) {
        if let Some(url) = line.strip_prefix("Tessera catalog listening on ") {
            self.url = Some(url.trim().to_string());
        } else if let Some(rest) = line.strip_prefix("  psql:") {
            if self.pg.is_none() {
                self.pg = pg_address(rest);
            }
        } else if let Some(rest) = line.strip_prefix("  flight:") {
            if self.flight.is_none() {
                self.flight = rest
                    .trim()
                    .strip_prefix("grpc://")
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|a| a.parse().ok());
            }
        } else if let Some(rest) = line.strip_prefix("  cli:") {
            if let (Some(persona), Some(key)) = (&self.persona, rest.split("--key ").nth(1)) {
                self.keys.insert(persona.clone(), key.trim().to_string());
            }
        } else if let Some((name, _role)) = line.split_once(": ")
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            // A persona block starts with `name: role` at the start of a line.
            self.persona = Some(name.to_string());
        }
    }
}

/// The address in a `psql "host=H port=P ..."` line.
fn pg_address(line: &str) -> Option<SocketAddr> {
    let field = |name: &str| {
        line.split(|c: char| c.is_whitespace() || c == '"')
            .find_map(|w| w.strip_prefix(name))
            .map(str::to_string)
    };
    let host = field("host=")?;
    let port: u16 = field("port=")?.parse().ok()?;
    let ip: std::net::IpAddr = host.parse().ok()?;
    Some(SocketAddr::new(ip, port))
}

/// The keys file the demo writes: `{"scale": .., "keys": {"admin": "tsk_..", ...}}`.
#[derive(Debug, serde::Deserialize)]
struct Personas {
    #[serde(default)]
    scale: Option<f64>,
    #[serde(default)]
    keys: BTreeMap<String, String>,
}

/// Whether the demo data is there at this scale factor (as the demo itself
/// decides whether to generate it).
fn generated(data_dir: &Path, scale: f64) -> bool {
    let personas = std::fs::read_to_string(data_dir.join("demo/personas.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Personas>(&text).ok());
    personas.is_some_and(|p| p.scale == Some(scale)) && data_dir.join("lake/sales/lineitem/_delta_log").is_dir()
}

impl Mesh {
    /// Starts `tessera demo` at the options' scale factor under `<work>/mesh`
    /// (listening on ephemeral ports) and waits until it says it is ready.
    ///
    /// The demo generates the data in its own process; a process that did so
    /// would report that as its peak RSS. So when the data is not there yet at
    /// this scale factor, a first demo generates it and is stopped, and the
    /// measured one starts over data already generated (which it keeps). Its
    /// peak RSS is then reset, so that it counts from the moment it is ready.
    pub fn start(opts: &Options) -> anyhow::Result<Mesh> {
        std::fs::create_dir_all(&opts.work).with_context(|| format!("cannot create {}", opts.work.display()))?;
        let work = std::fs::canonicalize(&opts.work)?;
        let data_dir = work.join("mesh");
        if !generated(&data_dir, opts.scale) {
            let generating = Self::launch(opts, &work, "mesh-generate")?;
            drop(generating);
        }
        let mut mesh = Self::launch(opts, &work, "mesh")?;
        // Linux: writing 5 to clear_refs resets the process's VmHWM.
        mesh.peak_reset = std::fs::write(format!("/proc/{}/clear_refs", mesh.pid), "5").is_ok();
        Ok(mesh)
    }

    /// Runs the demo with its stderr in `<work>/<name>.log` and its stdout
    /// copied to `<work>/<name>.out`.
    fn launch(opts: &Options, work: &Path, name: &str) -> anyhow::Result<Mesh> {
        let data_dir = work.join("mesh");
        let log_path = work.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
        let mut child = Command::new(&opts.tessera)
            .arg("demo")
            .arg("--scale")
            .arg(opts.scale.to_string())
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(["--pg-listen", "127.0.0.1:0"])
            .args(["--flight-listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot run {} (build it with `cargo build --workspace`)",
                    opts.tessera.display()
                )
            })?;
        let stdout = child.stdout.take().context("the demo's stdout")?;
        let lines = forward_lines(stdout, work.join(format!("{name}.out")));
        let pid = child.id();
        // From here on the child is killed on every error path.
        let mut mesh = Mesh {
            url: String::new(),
            pg: SocketAddr::from(([127, 0, 0, 1], 0)),
            flight: SocketAddr::from(([127, 0, 0, 1], 0)),
            keys: BTreeMap::new(),
            lake: data_dir.join("lake"),
            pid,
            peak_reset: false,
            child,
        };
        let banner = mesh.wait_ready(&lines, &log_path)?;
        mesh.url = banner.url.context("the demo printed no catalog URL")?;
        mesh.pg = banner.pg.context("the demo printed no psql line")?;
        mesh.flight = banner.flight.context("the demo printed no flight line")?;
        mesh.keys = read_keys(&data_dir.join("demo/personas.json"))?;
        for (persona, key) in banner.keys {
            mesh.keys.entry(persona).or_insert(key);
        }
        for persona in ["admin", "ana", "fred"] {
            if !mesh.keys.contains_key(persona) {
                bail!("the demo issued no key for {persona}");
            }
        }
        Ok(mesh)
    }

    /// Reads the demo's stdout until its last start-up line.
    fn wait_ready(&mut self, lines: &mpsc::Receiver<String>, log: &Path) -> anyhow::Result<Banner> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut banner = Banner::default();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.starts_with(READY_LINE) => return Ok(banner),
                Ok(line) => banner.read(&line),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bail!(
                        "the demo was not ready within {} s; its log: {}\n{}",
                        START_TIMEOUT.as_secs(),
                        log.display(),
                        tail(log)
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    bail!(
                        "the demo stopped before it was ready ({status:?}); its log: {}\n{}",
                        log.display(),
                        tail(log)
                    )
                }
            }
        }
    }
}

/// Sends each stdout line of the demo to the receiver and copies it to `copy`;
/// keeps draining after the receiver is gone, so that the demo never blocks on a
/// full pipe.
fn forward_lines(stdout: std::process::ChildStdout, copy: PathBuf) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut copy = std::fs::File::create(copy).ok();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(file) = copy.as_mut() {
                let _ = writeln!(file, "{line}");
            }
            let _ = tx.send(line);
        }
    });
    rx
}

fn read_keys(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let personas: Personas = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    Ok(personas.keys)
}

/// The last lines of a log, for an error message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

impl Drop for Mesh {
    /// Stops the demo as Ctrl-C would (SIGTERM: it finishes requests in flight),
    /// and kills it if it lingers.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
