//! The gateway's servers, started the same way by `tessera serve`, `tessera
//! gateway`, `tessera demo` and the tests: [`Gateway::build`] binds every
//! listener up front and [`Gateway::run_until`] serves them.
//!
//! - [`http`]: SQL over HTTP (`POST /api/v1/query`).
//! - [`pg`]: PostgreSQL wire.
//! - [`flight`]: Arrow Flight SQL.
//! - [`credentials`]: how each of them presents a credential to the engine.
//! - [`system`]: a standalone gateway's `/health`, `/ready` and `/metrics`.

pub mod credentials;
pub mod flight;
pub mod http;
pub mod pg;
pub mod system;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tessera_http::tls::{self, Tls};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::GatewayConfig;
use crate::engine::AuditSink;
use crate::engine::{Engine, Hooks};
use crate::error::QueryError;
use crate::spool::Spool;
use crate::sync::{BundleSource, Link, Refresh, Store};

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the engine: {0}")]
    Engine(#[from] QueryError),
    #[error("cannot open the audit spool in {dir}: {source}")]
    Spool {
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the control thread: {0}")]
    Control(std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] tessera_http::tls::TlsError),
}

/// Each listener's TLS, when configured: its own certificate
/// (`http_tls`, `pg_tls`, `flight_tls`), else the gateway's (`tls`), offered
/// with the protocol names the listener speaks.
#[derive(Default)]
struct ListenerTls {
    http: Option<Arc<Tls>>,
    pg: Option<Arc<Tls>>,
    flight: Option<Arc<Tls>>,
}

/// The TLS settings of a gateway's listeners.
#[derive(Debug, Clone, Default)]
struct TlsSettings {
    all: Option<tessera_http::TlsConfig>,
    http: Option<tessera_http::TlsConfig>,
    pg: Option<tessera_http::TlsConfig>,
    flight: Option<tessera_http::TlsConfig>,
}

impl TlsSettings {
    fn of(config: &GatewayConfig) -> Self {
        Self {
            all: config.tls.clone(),
            http: config.http_tls.clone(),
            pg: config.pg_tls.clone(),
            flight: config.flight_tls.clone(),
        }
    }
}

impl ListenerTls {
    fn load(settings: &TlsSettings) -> Result<Self, StartError> {
        let load = |own: &Option<tessera_http::TlsConfig>, alpn| {
            own.as_ref()
                .or(settings.all.as_ref())
                .map(|config| Tls::load(config, alpn))
                .transpose()
        };
        let tls = Self {
            http: load(&settings.http, tls::ALPN_HTTP)?,
            pg: load(&settings.pg, tls::ALPN_POSTGRES)?,
            flight: load(&settings.flight, tls::ALPN_GRPC)?,
        };
        let reloaded: Vec<Arc<Tls>> = [&tls.http, &tls.pg, &tls.flight]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if !reloaded.is_empty() {
            tls::reload_on_hangup(reloaded);
        }
        Ok(tls)
    }
}

/// Where clients connect.
#[derive(Debug, Clone, Copy)]
pub struct Endpoints {
    /// `None` when another server serves the HTTP routes.
    pub http: Option<SocketAddr>,
    pub pg: SocketAddr,
    pub flight: SocketAddr,
}

/// A gateway with its listeners bound, not yet serving.
pub struct Gateway {
    engine: Engine,
    link: Link,
    /// Where every query's audit record is kept until the catalog has it.
    spool: Arc<Spool>,
    http: Option<(TcpListener, axum::Router)>,
    pg: TcpListener,
    flight: TcpListener,
    tls: TlsSettings,
    /// `/metrics` without authentication (`metrics_listen`), when configured.
    metrics: Option<(TcpListener, axum::Router)>,
}

/// How long past the query timeout an HTTP request may take to its answer's
/// head before the middleware's own timeout answers 503 (a backstop: the
/// engine's deadline answers first).
const HTTP_SLACK: Duration = Duration::from_secs(5);

impl Gateway {
    /// A gateway of its own: HTTP, PostgreSQL wire and Flight SQL listeners,
    /// bundles from `source`, its last-known-good bundle kept in
    /// `config.data_dir` (served while `source` is away, until `max_staleness`).
    pub async fn build(config: GatewayConfig, source: Arc<dyn BundleSource>) -> Result<Self, StartError> {
        let store = Store::new(&config.data_dir);
        let mut gateway = Self::bind(&config, source, Some(store)).await?;
        let http = bind("HTTP", config.http_listen).await?;
        let router = gateway
            .router()
            .merge(system::router(gateway.engine.clone(), Arc::clone(&gateway.spool)));
        gateway.http = Some((http, router));
        if let Some(addr) = config.metrics_listen {
            let listener = bind("metrics", addr).await?;
            gateway.metrics = Some((
                listener,
                system::metrics_router(gateway.engine.clone(), Arc::clone(&gateway.spool)),
            ));
        }
        Ok(gateway)
    }

    /// A gateway whose HTTP routes another server serves (`tessera serve`
    /// merges them into the catalog's): binds PostgreSQL wire and Flight SQL.
    /// It keeps no last-known-good bundle: its catalog runs in the same process.
    pub async fn build_embedded(config: GatewayConfig, source: Arc<dyn BundleSource>) -> Result<Self, StartError> {
        Self::bind(&config, source, None).await
    }

    async fn bind(
        config: &GatewayConfig,
        source: Arc<dyn BundleSource>,
        store: Option<Store>,
    ) -> Result<Self, StartError> {
        let spool = Spool::open(&config.data_dir, config.audit.clone()).map_err(|source| StartError::Spool {
            dir: config.data_dir.join("audit"),
            source,
        })?;
        let hooks = Hooks {
            audit: Arc::clone(&spool) as Arc<dyn AuditSink>,
        };
        let engine = Engine::with_hooks(config, hooks)?;
        let link = Link {
            engine: engine.clone(),
            source,
            name: config.name.clone(),
            store,
        };
        Ok(Self {
            engine,
            link,
            spool,
            http: None,
            pg: bind("PostgreSQL wire", config.pg_listen).await?,
            flight: bind("Flight SQL", config.flight_listen).await?,
            tls: TlsSettings::of(config),
            metrics: None,
        })
    }

    /// The gateway's HTTP routes with the standard middleware (what an
    /// embedded gateway's host serves).
    pub fn router(&self) -> axum::Router {
        http::router(self.engine.clone(), self.engine.limits().query_timeout() + HTTP_SLACK)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The bound addresses.
    pub fn endpoints(&self) -> Endpoints {
        let addr = |l: &TcpListener| l.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        Endpoints {
            http: self.http.as_ref().map(|(l, _)| addr(l)),
            pg: addr(&self.pg),
            flight: addr(&self.flight),
        }
    }

    /// Installs the first bundle (from the source, or else the last-known-good
    /// one), then follows the source and serves every listener in the
    /// background until [`Serving::stop_when`].
    pub async fn start(self) -> Result<Serving, StartError> {
        let Self {
            engine,
            link,
            spool,
            http,
            pg,
            flight,
            tls,
            metrics,
        } = self;
        // Certificates are read before anything is served: a bad one stops the start.
        let ListenerTls {
            http: http_tls,
            pg: pg_tls,
            flight: flight_tls,
        } = ListenerTls::load(&tls)?;
        first_bundle(&link).await;
        let control = Control::start().map_err(StartError::Control)?;
        control.spawn(spool.ship(Arc::clone(&link.source), link.name.clone()));
        let follow = control.spawn(link.follow());
        control.spawn(engine.clone().fetch_issuer_keys());
        let (stop, stopped) = watch::channel(false);
        let signal = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            }
        };
        let mut endpoints = vec![
            (
                "PostgreSQL wire",
                tokio::spawn(pg::serve(engine.clone(), pg, pg_tls, signal())),
            ),
            (
                "Flight SQL",
                tokio::spawn(flight::serve(engine.clone(), flight, flight_tls, signal())),
            ),
        ];
        if let Some((listener, router)) = http {
            endpoints.push((
                "HTTP",
                tokio::spawn(tessera_http::serve(listener, http_tls, router, signal())),
            ));
        }
        if let Some((listener, router)) = metrics {
            // Plain HTTP on a private network: no TLS, no authentication, `/metrics` only.
            let stopped = signal();
            endpoints.push((
                "metrics",
                tokio::spawn(async move { axum::serve(listener, router).with_graceful_shutdown(stopped).await }),
            ));
        }
        Ok(Serving {
            engine,
            stop,
            follow,
            _control: control,
            endpoints,
        })
    }

    /// [`Gateway::start`], then serves until `shutdown` resolves.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), StartError> {
        self.start().await?.stop_when(shutdown).await;
        Ok(())
    }
}

/// The control plane's work in a gateway (following the catalog, compiling
/// and installing bundles, shipping audit) on a thread of its own: a policy
/// change is enforced as fast under full query load as when idle, since no
/// query's task stands in its way.
struct Control(Option<tokio::runtime::Runtime>);

impl Control {
    fn start() -> std::io::Result<Self> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tessera-control")
            .enable_all()
            .build()
            .map(|runtime| Self(Some(runtime)))
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, work: F) -> tokio::task::JoinHandle<()> {
        match &self.0 {
            Some(runtime) => runtime.spawn(work),
            None => tokio::spawn(work),
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        // Dropped from async code too: its tasks are abandoned, not awaited.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A gateway serving in the background.
pub struct Serving {
    engine: Engine,
    stop: watch::Sender<bool>,
    follow: tokio::task::JoinHandle<()>,
    _control: Control,
    endpoints: Vec<(&'static str, tokio::task::JoinHandle<std::io::Result<()>>)>,
}

impl Serving {
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Serves until `shutdown` resolves, then stops following the catalog and
    /// closes the listeners, letting HTTP requests in flight finish.
    pub async fn stop_when(self, shutdown: impl Future<Output = ()> + Send) {
        shutdown.await;
        let _ = self.stop.send(true);
        self.follow.abort();
        for (what, task) in self.endpoints {
            match task.await {
                Ok(Err(e)) => tracing::error!(error = %e, "the {what} endpoint failed"),
                Err(e) => tracing::error!(error = %e, "the {what} endpoint's task failed"),
                Ok(Ok(())) => {}
            }
        }
    }
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { what, addr, source })
}

/// The first bundle: the source's, or else the last-known-good one saved on disk.
async fn first_bundle(link: &Link) {
    match link.refresh().await {
        Ok(Refresh::Installed(_) | Refresh::Unchanged) => {}
        Ok(Refresh::Refused(e)) => tracing::warn!(error = %e, "the catalog's bundle was refused"),
        Err(e) => match link.store.as_ref().map(|s| s.restore(&link.engine)) {
            Some(Ok(Some(version))) => tracing::warn!(error = %e, version,
                "the catalog is unreachable: serving the last-known-good bundle"),
            Some(Err(saved)) => tracing::warn!(error = %e, saved = %saved,
                "the catalog is unreachable and the saved bundle is unusable: the gateway answers 'not ready'"),
            _ => tracing::warn!(error = %e, "no policy bundle yet: the gateway answers 'not ready' until it gets one"),
        },
    }
}
