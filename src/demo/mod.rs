//! `tessera demo`: the demo mesh of design.md in one command.
//!
//! Generates TPC-H as Delta tables split into the domains customers, sales and
//! supply; registers the domains and their teams, the eight products with their
//! ODCS contracts (`src/demo/contracts/`), the personas with API keys, and the
//! example policies; runs every product's quality checks; then serves the
//! platform and prints how to connect as each persona.
//!
//! Everything after the bootstrap goes through the SDK over the platform's own
//! REST API, as a domain team's tooling would. Re-running is safe: what exists
//! is kept, the data is regenerated only when the scale factor changes, and the
//! personas' keys are read back from a file only the user can read (a key that
//! no longer works is replaced, and the persona's other demo keys revoked).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tessera_sdk::Client;

use crate::cli::{self, write_private};
use crate::platform::{self, Running, ServeArgs};

mod mesh;
mod seed;

use mesh::*;
use seed::*;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// TPC-H scale factor of the generated data (1 is about 1 GB of CSV; 0.1 builds in seconds).
    #[arg(long, value_name = "SF", default_value_t = 0.1)]
    pub scale: f64,
    /// Serve every listener over TLS only, with a local CA and certificate
    /// made into `<data dir>/tls/` (kept for later runs); the connection
    /// lines printed verify them.
    #[arg(long, conflicts_with_all = ["tls_cert_file", "tls_key_file"])]
    pub tls: bool,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Marks the keys the demo issued, so that a re-run revokes only its own.
const KEY_DESCRIPTION: &str = "tessera demo";

/// What the demo keeps in `<data dir>/demo/` (its `Debug` names the personas
/// only, never their keys).
#[derive(Default, Serialize, Deserialize)]
struct State {
    /// The scale factor the lake was generated at.
    #[serde(default)]
    scale: Option<f64>,
    /// Persona -> API key.
    #[serde(default)]
    keys: BTreeMap<String, String>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("scale", &self.scale)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl State {
    fn path(dir: &Path) -> PathBuf {
        dir.join("personas.json")
    }

    fn read(dir: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(Self::path(dir)) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is damaged: delete it to issue new keys", Self::path(dir).display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", Self::path(dir).display())),
        }
    }

    fn write(&self, dir: &Path) -> anyhow::Result<()> {
        write_private(&Self::path(dir), serde_json::to_string_pretty(self)?.as_bytes())
    }
}

pub async fn run(mut args: DemoArgs) -> anyhow::Result<()> {
    if !(args.scale > 0.0 && args.scale <= 100.0) {
        return Err(cli::Hinted::new(
            format!("scale factor {} is out of range", args.scale),
            "use a scale factor above 0 and at most 100, e.g. --scale 0.1",
        )
        .into());
    }
    let overrides = args.serve.overrides();
    let config = tessera_catalog::config::Config::load(args.serve.config.as_deref(), &overrides)
        .context("invalid configuration")?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data directory {}", config.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&config.data_dir)?;
    let demo_dir = data_dir.join("demo");
    tessera_lake::private_dir(&demo_dir).with_context(|| format!("cannot create {}", demo_dir.display()))?;
    let mut state = State::read(&demo_dir)?;
    // Where the catalog's domains keep their tables by default (`[lake] root`).
    let lake = config.lake_root();
    std::fs::create_dir_all(&lake).with_context(|| format!("cannot create the lake {}", lake.display()))?;
    let lake = std::fs::canonicalize(&lake)?;
    let lake_root = lake
        .to_str()
        .context("the data directory's path is not UTF-8")?
        .to_string();

    if state.scale != Some(args.scale) || !lake.join("sales/lineitem/_delta_log").exists() {
        generate(&lake_root, args.scale).await?;
        state.scale = Some(args.scale);
        state.write(&demo_dir)?;
    } else {
        eprintln!("demo data at scale factor {} already in {lake_root}: kept", args.scale);
    }

    let ca = if args.tls {
        let tls = crate::tls::demo_certificates(&data_dir.join("tls"))?;
        args.serve.tls_cert_file = Some(tls.cert);
        args.serve.tls_key_file = Some(tls.key);
        args.serve.require_tls = true;
        Some(tls.ca)
    } else {
        None
    };
    let ca_pem = match &ca {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?),
        None => None,
    };
    let admin_key = state
        .keys
        .get(ADMIN)
        .cloned()
        .unwrap_or_else(|| tessera_catalog::keys::generate().key);
    let running = platform::start(&args.serve, Some(admin_key.clone())).await?;
    let admin_key = ensure_admin_key(&running, admin_key).await?;
    state.keys.insert(ADMIN.into(), admin_key.clone());
    state.write(&demo_dir)?;
    let admin = Client::trusting(running.url.clone(), &admin_key, ca_pem.as_deref())?;

    seed(&admin).await?;
    for persona in PERSONAS.iter().filter(|p| p.name != ADMIN) {
        let key = persona_key(&running, &admin, persona.name, state.keys.get(persona.name)).await?;
        state.keys.insert(persona.name.into(), key);
    }
    state.write(&demo_dir)?;
    check_quality(&admin).await?;
    wait_until_served(&running, &state, ca_pem.as_deref()).await?;

    running.print_banner();
    print_personas(&running, &state, &State::path(&demo_dir), args.scale, ca.as_deref());
    running.wait().await
}

/// Writes the eight tables (deterministic: the same scale gives the same rows).
async fn generate(root: &str, scale: f64) -> anyhow::Result<()> {
    let bar = cli::progress(tessera_testkit::tpch::MESH.len() as u64, "generating");
    let started = std::time::Instant::now();
    let mut rows = 0;
    for (domain, product) in tessera_testkit::tpch::MESH {
        bar.set_message(format!("{domain}.{product}"));
        let data = tokio::task::spawn_blocking(move || tessera_testkit::tpch::batches(product, scale)).await??;
        rows += data.iter().map(arrow::array::RecordBatch::num_rows).sum::<usize>();
        let location = format!("{root}/{domain}/{product}");
        tessera_lake::write(
            &location,
            &Default::default(),
            data,
            tessera_lake::WriteMode::Overwrite,
            &[],
        )
        .await
        .with_context(|| format!("cannot write {location}"))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    eprintln!(
        "generated TPC-H at scale factor {scale}: {rows} rows in 8 Delta tables under {root} ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Waits until the gateway serves the mesh to the analyst, so that every
/// printed line works the moment it is printed.
async fn wait_until_served(running: &Running, state: &State, ca_pem: Option<&[u8]>) -> anyhow::Result<()> {
    let key = state.keys.get("ana").context("no key for ana")?;
    let ana = Client::trusting(running.url.clone(), key, ca_pem)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match ana
            .query("SELECT count(*) AS n FROM sales.lineitem", Some("analytics"))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if std::time::Instant::now() > deadline => {
                return Err(anyhow::Error::from(e).context("the gateway did not pick up the demo mesh within 60 s"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

const SAMPLE_SQL: &str = "SELECT n_name, count(*) AS customers FROM customers.customer \
     JOIN customers.nation ON c_nationkey = n_nationkey GROUP BY n_name ORDER BY n_name";

fn print_personas(running: &Running, state: &State, keys_file: &Path, scale: f64, ca: Option<&Path>) {
    let url = &running.url;
    // With TLS every line verifies the demo's CA.
    let (sslmode, cacert, grpc) = match ca {
        Some(ca) => (
            format!(" sslmode=verify-full sslrootcert={}", ca.display()),
            format!(" --cacert {}", ca.display()),
            "grpc+tls",
        ),
        None => (String::new(), String::new(), "grpc"),
    };
    let pg = running.endpoints.pg;
    let flight = running.endpoints.flight;
    println!();
    println!("Tessera demo mesh: 3 domains, 8 products, TPC-H at scale factor {scale}");
    println!("  persona keys: {} (readable by you only)", keys_file.display());
    println!("  sample query: {SAMPLE_SQL}");
    for p in &PERSONAS {
        let Some(key) = state.keys.get(p.name) else { continue };
        println!();
        println!("{}: {}", p.name, p.role);
        let (pg_options, header, flight_header) = match p.purpose {
            Some(purpose) => (
                format!(" options='-c tessera.purpose={purpose}'"),
                format!(" -H 'tessera-purpose: {purpose}'"),
                format!(", tessera-purpose: {purpose}"),
            ),
            None => (String::new(), String::new(), String::new()),
        };
        println!(
            "  psql:   psql \"host={} port={} dbname=tessera user={} password={key}{sslmode}{pg_options}\"",
            pg.ip(),
            pg.port(),
            p.name
        );
        println!(
            "  curl:   curl -s{cacert} -H 'Authorization: Bearer {key}'{header} -H 'Content-Type: application/json' -d '{{\"sql\": \"{SAMPLE_SQL}\"}}' {url}/api/v1/query"
        );
        println!("  flight: {grpc}://{flight} (headers: authorization: Bearer {key}{flight_header})");
        println!("  cli:    tessera login --endpoint {url}{cacert} --key {key}");
    }
    println!();
    println!("Portal (sign in with a key above): {url}/");
    println!("API docs: {url}/api/v1/docs/");
    println!("Stop with Ctrl-C; run `tessera demo` again to come back to the same mesh.");
}
