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
pub fn print_endpoints(endpoints: &Endpoints, http: &str, key: Option<&str>) {
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
    println!(
        "  Flight SQL:       grpc://{} (Bearer token or Basic auth: the API key)",
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
    /// `postgres://user@host/db` to use PostgreSQL instead of the embedded SQLite.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// PostgreSQL wire address of the gateway [default: 127.0.0.1:5433].
    #[arg(long, value_name = "ADDR")]
    pub pg_listen: Option<SocketAddr>,
    /// Arrow Flight SQL address of the gateway [default: 127.0.0.1:50051].
    #[arg(long, value_name = "ADDR")]
    pub flight_listen: Option<SocketAddr>,
}

/// The platform running in this process: catalog, and a gateway following it.
pub struct Running {
    pub url: String,
    pub catalog: Catalog,
    pub endpoints: Endpoints,
    /// The admin key generated at this start, if this was the first start.
    pub bootstrap_key: Option<String>,
    database: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts `tessera serve`'s platform: the catalog (with `bootstrap_key` as the
/// first admin's key when given and the catalog is new) and an in-process
/// gateway, serving until SIGTERM or Ctrl-C.
pub async fn start(args: &ServeArgs, bootstrap_key: Option<String>) -> anyhow::Result<Running> {
    use tessera_catalog::config::{Config, Overrides, Secret};
    let overrides = Overrides {
        listen: args.listen,
        data_dir: args.data_dir.clone(),
        database_url: args.database_url.clone(),
    };
    let mut config = Config::load(args.config.as_deref(), &overrides).context("invalid configuration")?;
    if let Some(key) = bootstrap_key {
        config.bootstrap_key.get_or_insert(Secret::new(key));
    }
    let gateway_overrides = tessera_gateway::config::Overrides {
        pg_listen: args.pg_listen,
        flight_listen: args.flight_listen,
        http_listen: None,
    };
    let gateway_config =
        GatewayConfig::load(args.config.as_deref(), &gateway_overrides).context("invalid gateway configuration")?;
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
    let url = format!("http://{}", app.local_addr()?);
    let database = if config.uses_embedded_database() {
        format!("embedded SQLite at {}", config.data_dir.join("catalog.db").display())
    } else {
        format!("PostgreSQL ({})", app.backend())
    };
    let endpoints = gateway.endpoints();
    let catalog = app.catalog().clone();
    let _ = control.0.set(catalog.clone());
    // The gateway's first bundle is in force before the banner is printed.
    tokio::spawn(gateway.start().await.stop_when(crate::shutdown_signal()));
    let bootstrap_key = app.bootstrap_key().map(str::to_string);
    let server = tokio::spawn(app.run_until(crate::shutdown_signal()));
    Ok(Running {
        url,
        catalog,
        endpoints,
        bootstrap_key,
        database,
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
    /// HTTP address of the query endpoint [default: 127.0.0.1:8081].
    #[arg(long, value_name = "ADDR")]
    http_listen: Option<SocketAddr>,
    /// PostgreSQL wire address [default: 127.0.0.1:5433].
    #[arg(long, value_name = "ADDR")]
    pg_listen: Option<SocketAddr>,
    /// Arrow Flight SQL address [default: 127.0.0.1:50051].
    #[arg(long, value_name = "ADDR")]
    flight_listen: Option<SocketAddr>,
}

/// `tessera gateway`: a gateway alone, following a remote catalog.
/// The catalog is `--endpoint` and the key `--key` (an admin's, to read policy
/// bundles; also taken from `TESSERA_GATEWAY_KEY`).
pub async fn gateway(global: &crate::cli::Global, args: GatewayArgs) -> anyhow::Result<()> {
    let catalog = global.endpoint.clone().ok_or_else(|| {
        crate::cli::Hinted::new(
            "no catalog to follow",
            "pass --endpoint <URL> or set TESSERA_CATALOG_URL",
        )
    })?;
    let key = global
        .key
        .clone()
        .or_else(|| std::env::var("TESSERA_GATEWAY_KEY").ok())
        .ok_or_else(|| {
            crate::cli::Hinted::new(
                "no API key",
                "pass an admin's key with --key or set TESSERA_GATEWAY_KEY",
            )
        })?;
    let overrides = tessera_gateway::config::Overrides {
        pg_listen: args.pg_listen,
        flight_listen: args.flight_listen,
        http_listen: args.http_listen,
    };
    let config = GatewayConfig::load(args.config.as_deref(), &overrides).context("invalid gateway configuration")?;
    crate::init_logging("text");
    let source: Arc<dyn BundleSource> = Arc::new(
        tessera_gateway::sync::HttpSource::new(&catalog, &key)?
            .with_max_staleness(config.max_staleness_ms.map(std::time::Duration::from_millis)),
    );
    let gateway = Gateway::build(config, source).await?;
    let endpoints = gateway.endpoints();
    let serving = gateway.start().await;
    let http = endpoints.http.map(|a| format!("http://{a}")).unwrap_or_default();
    print_endpoints(&endpoints, &http, None);
    serving.stop_when(crate::shutdown_signal()).await;
    Ok(())
}
