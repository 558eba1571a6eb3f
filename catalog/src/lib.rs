//! Tessera's catalog: the control plane of the mesh.
//!
//! Layers: [`api`] (routes, bodies, OpenAPI, HTTP errors) over [`service`]
//! (authorization, validation, use cases, domain errors) over [`store`] (the
//! persistence port and its SQLite and PostgreSQL backends).
//!
//! Modules:
//! - [`api`]: the router, its middleware and the OpenAPI document;
//!   - `api::system`: health, readiness, metrics;
//!   - `api::changes`: version, watch, change log, policy bundle;
//!   - `api::principals`, `api::teams`, `api::domains`, `api::products`
//!     (with lineage), `api::contracts` (with quality runs): one resource each;
//!   - `api::governance`: grants, masks, row filters, access requests, gateways, audit;
//!   - `api::extract`: extractors and responders that answer problems;
//!   - [`api::error`]: service errors and HTTP errors as RFC 9457 problems.
//! - [`authz`]: who may see and change what.
//! - [`config`]: the layered configuration.
//! - [`identity`]: OpenID Connect issuers and their signing keys.
//! - [`keys`]: generating API keys.
//! - [`metrics`]: the Prometheus registry and the request metrics middleware.
//! - [`storage`]: storage roots and locations as absolute URLs, and overlap.
//! - [`service`]: the [`service::Catalog`] and authentication;
//!   - `service::principals` (with keys and the bootstrap admin), `service::teams`,
//!     `service::domains`, `service::products` (with lineage), `service::contracts`
//!     (with verification and quality runs): one resource each;
//!   - `service::changes`: version, watch, change log, bundle;
//!   - `service::governance`: policies; `service::access`: access requests and
//!     usage; `service::gateways`: gateways' reports (with their drift) and
//!     query audit; `service::secrets`: the mesh's mask key;
//!   - `service::validate`: paging and field checks;
//!   - `service::error`: the domain error, [`service::Error`].
//! - [`store`]: one trait per resource (`store::principals`, `store::teams`,
//!   `store::domains`, `store::products`, `store::contracts`, `store::governance`)
//!   gathered by [`store::CatalogStore`];
//!   - `store::sql`: both backends and their one write path, with one file per
//!     resource stamping out the implementation for SQLite and PostgreSQL.

pub mod api;
pub mod authz;
pub mod config;
pub mod identity;
pub mod keys;
pub mod metrics;
pub mod service;
pub mod storage;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api::{AppState, HttpSettings};
use crate::config::Config;
use crate::service::{Catalog, MAX_WATCH};

pub use api::{Extension, openapi, openapi_with};

/// A built catalog: store connected and migrated, listener bound, not yet serving.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    catalog: Catalog,
    bootstrap_key: Option<String>,
    backend: &'static str,
    tls: Option<Arc<tessera_http::Tls>>,
    /// The unauthenticated `/metrics` listener, when configured.
    metrics: Option<(TcpListener, axum::Router)>,
}

impl Application {
    /// Connects the store (creating the data directory for the embedded
    /// database, readable by the owner only), installs the bootstrap admin at
    /// first start, and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, None).await
    }

    /// As [`Application::build`], serving `extension`'s routes on the same listener.
    pub async fn build_with(config: Config, extension: Option<Extension>) -> anyhow::Result<Self> {
        if config.uses_embedded_database() {
            tessera_lake::private_dir(&config.data_dir)
                .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
        }
        let url = config.database_url();
        let store = store::connect(&url)
            .await
            .with_context(|| format!("cannot open the catalog database {}", store::redact_url(&url)))?;
        let problems = config.identity.problems();
        if !problems.is_empty() {
            anyhow::bail!("the [identity] section: {}", problems.join("; "));
        }
        let identity = identity::Identity::new(&config.identity, &store.issuers().await?, reqwest::Client::new());
        let catalog = Catalog::new(store)
            .with_storage(config.storage.clone())
            .with_lake_root(&config.lake_root())?
            .with_identity(Arc::new(identity));
        catalog
            .store_issuers()
            .await
            .context("cannot store the OpenID Connect issuers")?;
        let bootstrap_key = catalog
            .bootstrap(config.bootstrap_key.as_ref().map(config::Secret::expose))
            .await
            .context("cannot install the bootstrap admin")?;
        catalog
            .ensure_mask_key()
            .await
            .context("cannot create the mesh's mask key")?;
        let rooted = catalog
            .default_storage_roots()
            .await
            .context("cannot give domains their default storage roots")?;
        if rooted > 0 {
            tracing::info!(domains = rooted, "domains got their default storage root");
        }
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let request_timeout = Duration::from_secs(config.request_timeout_secs.max(2));
        let state = AppState {
            catalog: catalog.clone(),
            metrics: Arc::new(metrics::Metrics::default()),
            throttle: Arc::new(tessera_http::Throttle::new(config.throttle)),
            gateways_need_client_certificates: config.tls.as_ref().is_some_and(|t| t.client_ca_file.is_some()),
            max_watch: MAX_WATCH.min(request_timeout - Duration::from_secs(1)),
        };
        let metrics = match config.metrics_listen {
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (metrics_listen)"))?;
                Some((listener, api::metrics_router(state.clone())))
            }
            None => None,
        };
        let router = api::router(
            state,
            HttpSettings {
                max_body_bytes: config.max_body_bytes,
                request_timeout,
            },
            extension,
        );
        let tls = match &config.tls {
            Some(tls) => {
                let tls = tessera_http::Tls::load(tls, tessera_http::tls::ALPN_HTTP)
                    .context("cannot use the TLS certificate of [tls]")?;
                tessera_http::tls::reload_on_hangup(vec![Arc::clone(&tls)]);
                Some(tls)
            }
            None => None,
        };
        Ok(Self {
            listener,
            router,
            metrics,
            tls,
            backend: catalog.backend(),
            catalog,
            bootstrap_key,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The unauthenticated metrics listener's address, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The admin key generated at this start, if this was the first start.
    pub fn bootstrap_key(&self) -> Option<&str> {
        self.bootstrap_key.as_deref()
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The catalog service, for in-process use.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let catalog = self.catalog.clone();
        let keys = (!catalog.identity().is_empty()).then(|| tokio::spawn(catalog.clone().fetch_issuer_keys()));
        // Plain HTTP on a private network: no TLS, no authentication, `/metrics` only.
        let metrics = self
            .metrics
            .map(|(listener, router)| tokio::spawn(async move { axum::serve(listener, router).await }));
        let served = tessera_http::serve(self.listener, self.tls, self.router, async move {
            shutdown.await;
            catalog.stop_watches();
        })
        .await;
        if let Some(keys) = keys {
            keys.abort();
        }
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        served
    }
}
