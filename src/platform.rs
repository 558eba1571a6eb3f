//! Running the gateway: in the same process as the catalog (`tessera serve`)
//! or alone against a remote catalog (`tessera gateway`).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use tessera_catalog::service::{Catalog, MAX_WATCH};
use tessera_contracts::api::{AuditBatch, GatewayReport};
use tessera_contracts::bundle::Bundle;
use tessera_gateway::sync::{BundleSource, Link, Refresh, Store, SyncError};
use tessera_gateway::{Engine, GatewayConfig};
use tokio::net::{TcpListener, TcpStream};

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

    async fn fetch(&self, held: Option<&str>) -> Result<Option<Bundle>, SyncError> {
        let bundle = self
            .catalog()?
            .build_bundle()
            .await
            .map_err(|e| SyncError(e.to_string()))?;
        Ok((Some(bundle.hash.as_str()) != held).then_some(bundle))
    }

    async fn report(&self, gateway: &str, report: &GatewayReport) -> Result<(), SyncError> {
        self.catalog()?
            .store
            .report_gateway(gateway, report)
            .await
            .map_err(|e| SyncError(e.to_string()))
    }

    async fn audit(&self, batch: &AuditBatch) -> Result<(), SyncError> {
        self.catalog()?
            .store
            .add_audit(&batch.gateway, &batch.records)
            .await
            .map(|_| ())
            .map_err(|e| SyncError(e.to_string()))
    }
}

/// The gateway's protocol listeners, bound.
pub struct Listeners {
    pg: TcpListener,
    flight: TcpListener,
}

/// Where clients connect.
pub struct Endpoints {
    pub http: String,
    pub pg: SocketAddr,
    pub flight: SocketAddr,
}

impl Listeners {
    pub async fn bind(config: &GatewayConfig) -> anyhow::Result<Self> {
        let pg = TcpListener::bind(config.pg_listen)
            .await
            .with_context(|| format!("cannot listen for PostgreSQL wire on {}", config.pg_listen))?;
        let flight = TcpListener::bind(config.flight_listen)
            .await
            .with_context(|| format!("cannot listen for Flight SQL on {}", config.flight_listen))?;
        Ok(Self { pg, flight })
    }

    pub fn endpoints(&self, http: &str) -> anyhow::Result<Endpoints> {
        Ok(Endpoints {
            http: http.to_string(),
            pg: self.pg.local_addr()?,
            flight: self.flight.local_addr()?,
        })
    }
}

impl Endpoints {
    /// Plain stdout lines: scripts and tests read them.
    pub fn print(&self, key: Option<&str>) {
        let key = key.unwrap_or("<API key>");
        println!("Tessera gateway");
        println!(
            "  SQL over HTTP:    curl -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' -d '{{\"sql\": \"SELECT 1\"}}' {}/api/v1/query",
            self.http
        );
        println!(
            "  PostgreSQL wire:  psql \"host={} port={} dbname=tessera user=me password={key}\"",
            self.pg.ip(),
            self.pg.port()
        );
        println!(
            "  Flight SQL:       grpc://{} (Bearer token or Basic auth: the API key)",
            self.flight
        );
    }
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
    let hooks = tessera_gateway::Hooks {
        audit: tessera_gateway::sync::Shipper::start(source.clone(), gateway_config.name.clone()),
    };
    let engine = Engine::with_hooks(&gateway_config, hooks).context("cannot start the gateway")?;
    let extension = tessera_catalog::Extension {
        router: tessera_gateway::http::router(engine.clone()),
        openapi: tessera_gateway::http::openapi(),
        web: Some(crate::portal::router()),
    };
    let app = tessera_catalog::Application::build_with(config.clone(), Some(extension)).await?;
    let url = format!("http://{}", app.local_addr()?);
    let database = if config.uses_embedded_database() {
        format!("embedded SQLite at {}", config.data_dir.join("catalog.db").display())
    } else {
        format!("PostgreSQL ({})", app.backend())
    };
    let listeners = Listeners::bind(&gateway_config).await?;
    let endpoints = listeners.endpoints(&url)?;
    let catalog = app.catalog().clone();
    let _ = control.0.set(catalog.clone());
    // In process, the catalog is never away: no last-known-good bundle to keep.
    let link = Link {
        engine: engine.clone(),
        source,
        name: gateway_config.name.clone(),
        store: None,
    };
    start_gateway(link, listeners).await;
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

/// Installs the first bundle (from the catalog, or else the last-known-good one
/// saved on disk), then keeps following the catalog and serves PostgreSQL wire
/// and Flight SQL in the background.
pub async fn start_gateway(link: Link, listeners: Listeners) {
    let engine = &link.engine;
    match link.refresh().await {
        Ok(Refresh::Installed(_) | Refresh::Unchanged) => {}
        Ok(Refresh::Refused(e)) => tracing::warn!(error = %e, "the catalog's bundle was refused"),
        Err(e) => match link.store.as_ref().map(|s| s.restore(engine)) {
            Some(Ok(Some(version))) => tracing::warn!(error = %e, version,
                "the catalog is unreachable: serving the last-known-good bundle"),
            Some(Err(saved)) => tracing::warn!(error = %e, saved = %saved,
                "the catalog is unreachable and the saved bundle is unusable: the gateway answers 'not ready'"),
            _ => tracing::warn!(error = %e, "no policy bundle yet: the gateway answers 'not ready' until it gets one"),
        },
    }
    tokio::spawn(link.clone().follow());
    let pg = engine.clone();
    tokio::spawn(async move {
        if let Err(e) = tessera_gateway::pg::serve(pg, listeners.pg).await {
            tracing::error!(error = %e, "the PostgreSQL wire endpoint stopped");
        }
    });
    let flight = engine.clone();
    tokio::spawn(async move {
        if let Err(e) = tessera_gateway::flight::serve(flight, listeners.flight).await {
            tracing::error!(error = %e, "the Flight SQL endpoint stopped");
        }
    });
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
    let hooks = tessera_gateway::Hooks {
        audit: tessera_gateway::sync::Shipper::start(Arc::clone(&source), config.name.clone()),
    };
    let engine = Engine::with_hooks(&config, hooks).context("cannot start the gateway")?;
    let link = Link {
        engine: engine.clone(),
        source,
        name: config.name.clone(),
        store: Some(Store::new(&config.data_dir)),
    };
    let http = TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_listen))?;
    let url = format!("http://{}", http.local_addr()?);
    let listeners = Listeners::bind(&config).await?;
    let endpoints = listeners.endpoints(&url)?;
    start_gateway(link, listeners).await;
    endpoints.print(None);
    let http = axum::serve::ListenerExt::tap_io(http, |tcp: &mut TcpStream| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(http, tessera_gateway::http::router(engine))
        .with_graceful_shutdown(crate::shutdown_signal())
        .await?;
    Ok(())
}
