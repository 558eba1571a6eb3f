//! Running the gateway: in the same process as the catalog (`tessera serve`)
//! or alone against a remote catalog (`tessera gateway`).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use tessera_catalog::service::{Catalog, MAX_WATCH};
use tessera_contracts::api::{AuditBatch, GatewayReport};
use tessera_gateway::sync::{BundleSource, Fetched, SyncError};
use tessera_gateway::{Endpoints, Gateway, GatewayConfig};

/// The catalog in the same process: bundles without a network hop. Set once
/// the catalog is built (the gateway, whose query endpoint the catalog serves,
/// comes first).
#[derive(Default)]
pub struct InProcess(pub std::sync::OnceLock<Catalog>);

impl InProcess {
    fn catalog(&self) -> Result<&Catalog, SyncError> {
        self.0
            .get()
            .ok_or_else(|| SyncError("the catalog is still starting".into()))
    }
}

#[async_trait]
impl BundleSource for InProcess {
    async fn wait(&self, after: i64) -> Result<i64, SyncError> {
        self.catalog()?
            .watch(after, MAX_WATCH)
            .await
            .map(|v| v.version)
            .map_err(|e| SyncError(e.to_string()))
    }

    async fn fetch(&self, held: Option<&str>) -> Result<Fetched, SyncError> {
        let bundle = self
            .catalog()?
            .build_bundle()
            .await
            .map_err(|e| SyncError(e.to_string()))?;
        Ok(Fetched::unless_held(bundle, held))
    }

    async fn report(&self, gateway: &str, report: &GatewayReport) -> Result<(), SyncError> {
        self.catalog()?
            .record_gateway_report(gateway, report)
            .await
            .map_err(|e| SyncError(e.to_string()))
    }

    async fn audit(&self, batch: &AuditBatch) -> Result<(), SyncError> {
        self.catalog()?
            .add_audit_batch(batch)
            .await
            .map(|_| ())
            .map_err(|e| SyncError(e.to_string()))
    }
}

/// Prints where clients connect to a gateway (plain stdout: scripts and tests read them).
pub fn print_endpoints(endpoints: &Endpoints, http: &str, key: Option<&str>, flight_tls: bool) {
    let key = key.unwrap_or("<API key>");
    println!("Tessera gateway");
    println!(
        "  SQL over HTTP:    curl -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' -d '{{\"sql\": \"SELECT 1\"}}' {http}/api/v1/query"
    );
    println!(
        "  PostgreSQL wire:  psql \"host={} port={} dbname=tessera user=me password={key}\"",
        endpoints.pg.ip(),
        endpoints.pg.port()
    );
    let scheme = if flight_tls { "grpc+tls" } else { "grpc" };
    println!(
        "  Flight SQL:       {scheme}://{} (Bearer token or Basic auth: the API key)",
        endpoints.flight
    );
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (layered: defaults < file < TESSERA_* env < flags).
    #[arg(long, env = "TESSERA_CONFIG", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Directory of the embedded database and other local state [default: .tessera].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// `postgres://user@host/db` to use PostgreSQL instead of the embedded SQLite
    /// (a URL with a password shows in `ps` output: prefer --database-url-file).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// File holding the database URL (read at start, trimmed); also
    /// TESSERA_DATABASE_URL_FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "database_url")]
    pub database_url_file: Option<std::path::PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// PostgreSQL wire address of the gateway [default: 127.0.0.1:5433].
    #[arg(long, value_name = "ADDR")]
    pub pg_listen: Option<SocketAddr>,
    /// Arrow Flight SQL address of the gateway [default: 127.0.0.1:50051].
    #[arg(long, value_name = "ADDR")]
    pub flight_listen: Option<SocketAddr>,
    /// TLS certificate chain (PEM) of every listener; with --tls-key-file.
    #[arg(long, value_name = "FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<std::path::PathBuf>,
    /// TLS private key (PEM) of every listener; with --tls-cert-file.
    #[arg(long, value_name = "FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<std::path::PathBuf>,
    /// Refuse cleartext connections on every listener (with a certificate).
    #[arg(long, requires = "tls_cert_file")]
    pub require_tls: bool,
    /// Mutual TLS: verify client certificates signed by this CA (PEM); a
    /// standalone gateway's principal must then connect with one.
    #[arg(long, value_name = "FILE", requires = "tls_cert_file")]
    pub tls_client_ca_file: Option<std::path::PathBuf>,
}

impl ServeArgs {
    /// The catalog configuration's layer of these flags.
    pub fn overrides(&self) -> tessera_catalog::config::Overrides {
        tessera_catalog::config::Overrides {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            database_url_file: self.database_url_file.clone(),
            tls: self.tls(),
        }
    }

    /// The `[tls]` these flags give, if any.
    pub fn tls(&self) -> Option<tessera_http::TlsConfig> {
        Some(tessera_http::TlsConfig {
            cert_file: self.tls_cert_file.clone()?,
            key_file: self.tls_key_file.clone()?,
            require: self.require_tls,
            client_ca_file: self.tls_client_ca_file.clone(),
        })
    }
}

/// The platform running in this process: catalog, and a gateway following it.
pub struct Running {
    pub url: String,
    pub catalog: Catalog,
    pub endpoints: Endpoints,
    /// The admin key generated at this start, if this was the first start.
    pub bootstrap_key: Option<String>,
    database: String,
    /// Where `/metrics` is served, and to whom.
    metrics: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts `tessera serve`'s platform: the catalog (with `bootstrap_key` as the
/// first admin's key when given and the catalog is new) and an in-process
/// gateway, serving until SIGTERM or Ctrl-C.
pub async fn start(args: &ServeArgs, bootstrap_key: Option<String>) -> anyhow::Result<Running> {
    use tessera_catalog::config::{Config, Secret};
    let overrides = args.overrides();
    if args
        .database_url
        .as_deref()
        .is_some_and(tessera_catalog::store::url_has_password)
    {
        crate::cli::warn_secret_flag(
            "--database-url with a password",
            "--database-url-file FILE, TESSERA_DATABASE_URL_FILE or TESSERA_DATABASE_URL",
        );
    }
    let mut config = Config::load(args.config.as_deref(), &overrides).context("invalid configuration")?;
    if let Some(key) = bootstrap_key {
        config.bootstrap_key.get_or_insert(Secret::new(key));
    }
    let gateway_overrides = tessera_gateway::config::Overrides {
        pg_listen: args.pg_listen,
        flight_listen: args.flight_listen,
        http_listen: None,
    };
    let mut gateway_config =
        GatewayConfig::load(args.config.as_deref(), &gateway_overrides).context("invalid gateway configuration")?;
    if gateway_config.data_dir == GatewayConfig::default().data_dir {
        // The embedded gateway's state (its audit spool) lives with the catalog's.
        gateway_config.data_dir = config.data_dir.join("gateway");
    }
    if gateway_config.tls.is_none() {
        // One certificate for every listener unless `[gateway.tls]` gives its own.
        gateway_config.tls.clone_from(&config.tls);
    }
    if gateway_config.throttle == tessera_http::ThrottleConfig::default() {
        // `[throttle]` holds for the embedded gateway's listeners too, unless
        // `[gateway.throttle]` says otherwise.
        gateway_config.throttle = config.throttle;
    }
    crate::init_logging(&config.log_format);
    tracing::info!(?config, ?gateway_config, "starting");
    let control = Arc::new(InProcess::default());
    let source: Arc<dyn BundleSource> = control.clone();
    let gateway = Gateway::build_embedded(gateway_config, source)
        .await
        .context("cannot start the gateway")?;
    let extension = tessera_catalog::Extension {
        router: gateway.router(),
        openapi: tessera_gateway::server::http::openapi(),
        web: Some(crate::portal::router()),
    };
    let app = tessera_catalog::Application::build_with(config.clone(), Some(extension)).await?;
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", app.local_addr()?);
    let metrics = match app.metrics_addr() {
        Some(addr) => format!("http://{addr}/metrics (no authentication)"),
        None => format!("{url}/metrics (for the metrics role)"),
    };
    let database = if config.uses_embedded_database() {
        format!("embedded SQLite at {}", config.data_dir.join("catalog.db").display())
    } else {
        format!("PostgreSQL ({})", app.backend())
    };
    let endpoints = gateway.endpoints();
    let catalog = app.catalog().clone();
    let _ = control.0.set(catalog.clone());
    // The gateway's first bundle is in force before the banner is printed.
    let serving = gateway.start().await.context("cannot start the gateway")?;
    tokio::spawn(serving.stop_when(crate::shutdown_signal()));
    let bootstrap_key = app.bootstrap_key().map(str::to_string);
    let server = tokio::spawn(app.run_until(crate::shutdown_signal()));
    Ok(Running {
        url,
        catalog,
        endpoints,
        bootstrap_key,
        database,
        metrics,
        server,
    })
}

impl Running {
    /// The catalog's lines of the start banner (plain stdout: scripts and tests read them).
    pub fn print_banner(&self) {
        let url = &self.url;
        println!("Tessera catalog listening on {url}");
        println!("  portal:           {url}/");
        println!("  catalog database: {}", self.database);
        println!("  REST API:         {url}/api/v1");
        println!("  API docs:         {url}/api/v1/docs/");
        println!("  metrics:          {}", self.metrics);
        println!("  OpenAPI:          {url}/api/v1/openapi.json");
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes the requests in flight.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.server.await.context("the server task failed")??;
        tracing::info!("stopped");
        Ok(())
    }
}

#[derive(Debug, clap::Args)]
pub struct GatewayArgs {
    /// TOML configuration file (its `[gateway]` section).
    #[arg(long, env = "TESSERA_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// File holding the gateway principal's API key (a service principal with
    /// the gateway role), read at start and
    /// trimmed: the way to give it in production (--key shows in `ps` output).
    #[arg(long, env = "TESSERA_GATEWAY_KEY_FILE", value_name = "FILE")]
    key_file: Option<std::path::PathBuf>,
    /// HTTP address of the query endpoint [default: 127.0.0.1:8081].
    #[arg(long, value_name = "ADDR")]
    http_listen: Option<SocketAddr>,
    /// PostgreSQL wire address [default: 127.0.0.1:5433].
    #[arg(long, value_name = "ADDR")]
    pg_listen: Option<SocketAddr>,
    /// Arrow Flight SQL address [default: 127.0.0.1:50051].
    #[arg(long, value_name = "ADDR")]
    flight_listen: Option<SocketAddr>,
    /// Mutual TLS with the catalog: this gateway's client certificate chain
    /// (PEM), presented to the catalog; with --client-key-file.
    #[arg(
        long,
        env = "TESSERA_GATEWAY_CLIENT_CERT_FILE",
        value_name = "FILE",
        requires = "client_key_file"
    )]
    client_cert_file: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM); with --client-cert-file.
    #[arg(
        long,
        env = "TESSERA_GATEWAY_CLIENT_KEY_FILE",
        value_name = "FILE",
        requires = "client_cert_file"
    )]
    client_key_file: Option<std::path::PathBuf>,
}

/// `tessera gateway`: a gateway alone, following a remote catalog.
/// The catalog is `--endpoint`; the key (a gateway principal's, to read policy bundles)
/// is [`gateway_key`]'s.
pub async fn gateway(global: &crate::cli::Global, args: GatewayArgs) -> anyhow::Result<()> {
    let catalog = global.endpoint.clone().ok_or_else(|| {
        crate::cli::Hinted::new(
            "no catalog to follow",
            "pass --endpoint <URL> or set TESSERA_CATALOG_URL",
        )
    })?;
    let key = gateway_key(global, args.key_file.as_deref())?;
    let overrides = tessera_gateway::config::Overrides {
        pg_listen: args.pg_listen,
        flight_listen: args.flight_listen,
        http_listen: args.http_listen,
    };
    let config = GatewayConfig::load(args.config.as_deref(), &overrides).context("invalid gateway configuration")?;
    // The client certificate and its key, as one PEM (what the HTTP client takes).
    let identity = match (&args.client_cert_file, &args.client_key_file) {
        (Some(cert), Some(key)) => {
            let mut pem = std::fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?;
            pem.push(b'\n');
            pem.extend(std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?);
            Some(pem)
        }
        _ => None,
    };
    crate::init_logging("text");
    let source: Arc<dyn BundleSource> = Arc::new(
        tessera_gateway::sync::HttpSource::trusting(&catalog, &key, global.ca_pem()?.as_deref(), identity.as_deref())?
            .with_max_staleness(config.max_staleness_ms.map(std::time::Duration::from_millis)),
    );
    let tls = config.http_tls.is_some() || config.tls.is_some();
    let flight_tls = config.flight_tls.is_some() || config.tls.is_some();
    let gateway = Gateway::build(config, source).await?;
    let endpoints = gateway.endpoints();
    let serving = gateway.start().await?;
    let scheme = if tls { "https" } else { "http" };
    let http = endpoints.http.map(|a| format!("{scheme}://{a}")).unwrap_or_default();
    print_endpoints(&endpoints, &http, None, flight_tls);
    serving.stop_when(crate::shutdown_signal()).await;
    Ok(())
}

/// The standalone gateway's key, from the first of: `--key` on the command
/// line (development only: it shows in `ps` output), `--key-file` or
/// `TESSERA_GATEWAY_KEY_FILE` (read and trimmed), `TESSERA_GATEWAY_KEY`,
/// `TESSERA_API_KEY`. `--key` with a key file is refused: one key, one place.
fn gateway_key(global: &crate::cli::Global, key_file: Option<&std::path::Path>) -> anyhow::Result<String> {
    use crate::cli::Hinted;
    match (global.key_on_command_line, key_file) {
        (true, Some(_)) => {
            return Err(Hinted::new(
                "both --key and a key file are given",
                "keep --key-file (or TESSERA_GATEWAY_KEY_FILE) and drop --key",
            )
            .into());
        }
        (true, None) => return global.key.clone().context("--key without a value"),
        (false, Some(path)) => return read_key_file(path),
        (false, None) => {}
    }
    std::env::var("TESSERA_GATEWAY_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
        .map(|k| k.trim().to_string())
        .or_else(|| global.key.clone())
        .ok_or_else(|| {
            Hinted::new(
                "no API key",
                "give the key of a gateway's principal in a file with --key-file FILE (or TESSERA_GATEWAY_KEY_FILE), or set TESSERA_GATEWAY_KEY",
            )
            .into()
        })
}

/// A key kept in a file: its content, trimmed. A file that others may read
/// is used, with a warning.
fn read_key_file(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the key file {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            eprintln!(
                "warning: the key file {} may be read by other users (mode {:o}): `chmod 600` it",
                path.display(),
                meta.permissions().mode() & 0o777
            );
        }
    }
    let key = text.trim();
    if key.is_empty() {
        return Err(crate::cli::Hinted::new(
            format!("the key file {} is empty", path.display()),
            "write the API key of a gateway's principal (kind service, role gateway) into it",
        )
        .into());
    }
    Ok(key.to_string())
}
