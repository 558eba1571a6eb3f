//! The gateway's side of the control plane: keep the bundle current, report
//! on it, and ship query audit.
//!
//! - Follow: fetch the bundle, then follow the catalog's change sequence
//!   (long-poll) and fetch again whenever it moves.
//! - Check and swap: a new bundle is checked and compiled before it replaces
//!   the old one, whole; one that fails is refused (NACK, with the error) and the
//!   previous one stays in force. Each outcome is reported to the catalog
//!   (`PUT /api/v1/gateways/{name}`), at least once per watch cycle.
//! - Last known good: every bundle installed is written to the data directory,
//!   with when the catalog last confirmed it; a gateway that starts while the
//!   catalog is away serves from it. The engine refuses queries once that
//!   confirmation is older than `max_staleness`.
//! - Audit: query records are batched (up to 500, or every second) and posted
//!   to the catalog off the query path; while it is away they wait in a bounded
//!   buffer.

use std::sync::Arc;
use std::time::Duration;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_contracts::api::{AuditBatch, AuditRecord, GatewayReport};
use tessera_contracts::bundle::{Bundle, BundleError};

use crate::engine::{Engine, QueryRecord};

/// Why the catalog could not be reached or understood.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SyncError(pub String);

/// Where bundles come from: the catalog over HTTP, or in process.
#[async_trait]
pub trait BundleSource: Send + Sync + 'static {
    /// Waits, for a bounded time, until the catalog's version exceeds `after`;
    /// returns the version seen.
    async fn wait(&self, after: i64) -> Result<i64, SyncError>;
    /// The current bundle, unless its hash is `held`.
    async fn fetch(&self, held: Option<&str>) -> Result<Fetched, SyncError>;
    /// Reports the bundle this gateway serves (and one it refused).
    async fn report(&self, gateway: &str, report: &GatewayReport) -> Result<(), SyncError>;
    /// Stores a batch of query records.
    async fn audit(&self, batch: &AuditBatch) -> Result<(), SyncError>;
}

/// What a source answered for the current bundle.
#[derive(Debug)]
pub enum Fetched {
    /// The bundle in force (its hash is the one held) is the current one.
    Unchanged,
    Bundle(Box<Bundle>),
    /// A bundle this gateway cannot read (another format, or not a bundle):
    /// refused, and reported as such (NACK), rather than misread.
    Unreadable {
        version: Option<i64>,
        error: BundleError,
    },
}

impl Fetched {
    /// A bundle, unless its hash is `held`.
    pub fn unless_held(bundle: Bundle, held: Option<&str>) -> Self {
        if Some(bundle.hash.as_str()) == held {
            Self::Unchanged
        } else {
            Self::Bundle(Box::new(bundle))
        }
    }

    /// A bundle as JSON bytes from the catalog, read format first.
    pub fn from_json(bytes: &[u8]) -> Self {
        match Bundle::from_json(bytes) {
            Ok(bundle) => Self::Bundle(Box::new(bundle)),
            Err(error) => {
                #[derive(serde::Deserialize)]
                struct Version {
                    version: Option<i64>,
                }
                let version = serde_json::from_slice::<Version>(bytes).ok().and_then(|v| v.version);
                Self::Unreadable { version, error }
            }
        }
    }
}

/// The catalog's REST API: `GET /api/v1/version/watch` and `GET /api/v1/bundle`.
#[derive(Debug, Clone)]
pub struct HttpSource {
    client: reqwest::Client,
    base: String,
    key: String,
    /// How long one watch waits; each answer confirms the bundle in force, so
    /// it stays well under `max_staleness`.
    watch_secs: u64,
}

impl HttpSource {
    /// `base` is the catalog's URL (`http://host:8080`); `key` a gateway principal's API key.
    pub fn new(base: &str, key: &str) -> Result<Self, SyncError> {
        Self::trusting(base, key, None, None)
    }

    /// As [`HttpSource::new`], an `https://` catalog verified against the
    /// system's CAs and those of `ca_pem` (PEM: a private CA).
    ///
    /// With `identity` (a client certificate chain and its key, PEM), the
    /// gateway presents it to the catalog (mutual TLS).
    pub fn trusting(base: &str, key: &str, ca_pem: Option<&[u8]>, identity: Option<&[u8]>) -> Result<Self, SyncError> {
        let failed = |e: reqwest::Error| SyncError(e.to_string());
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(40));
        if let Some(pem) = ca_pem {
            for ca in reqwest::Certificate::from_pem_bundle(pem).map_err(failed)? {
                builder = builder.add_root_certificate(ca);
            }
        }
        if let Some(pem) = identity {
            builder = builder.identity(reqwest::Identity::from_pem(pem).map_err(failed)?);
        }
        let client = builder.build().map_err(failed)?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
            watch_secs: 20,
        })
    }

    /// Watches answer at least a third of `max_staleness` apart (1 to 20 s).
    pub fn with_max_staleness(mut self, max_staleness: Option<Duration>) -> Self {
        if let Some(max) = max_staleness {
            self.watch_secs = (max.as_secs() / 3).clamp(1, 20);
        }
        self
    }
}

fn failed(e: impl std::fmt::Display) -> SyncError {
    SyncError(e.to_string())
}

#[async_trait]
impl BundleSource for HttpSource {
    async fn wait(&self, after: i64) -> Result<i64, SyncError> {
        #[derive(serde::Deserialize)]
        struct Version {
            version: i64,
        }
        let response = self
            .client
            .get(format!(
                "{}/api/v1/version/watch?after={after}&timeout_secs={}",
                self.base, self.watch_secs
            ))
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(failed)?;
        if !response.status().is_success() {
            return Err(SyncError(format!("watch answered {}", response.status())));
        }
        Ok(response.json::<Version>().await.map_err(failed)?.version)
    }

    async fn fetch(&self, held: Option<&str>) -> Result<Fetched, SyncError> {
        let mut request = self
            .client
            .get(format!("{}/api/v1/bundle", self.base))
            .bearer_auth(&self.key);
        if let Some(hash) = held {
            request = request.header(reqwest::header::IF_NONE_MATCH, format!("\"{hash}\""));
        }
        let response = request.send().await.map_err(failed)?;
        match response.status() {
            reqwest::StatusCode::NOT_MODIFIED => Ok(Fetched::Unchanged),
            s if s.is_success() => Ok(Fetched::from_json(&response.bytes().await.map_err(failed)?)),
            s => Err(SyncError(format!(
                "the catalog refused the bundle request: {s} {}",
                response.text().await.unwrap_or_default()
            ))),
        }
    }

    async fn report(&self, gateway: &str, report: &GatewayReport) -> Result<(), SyncError> {
        let response = self
            .client
            .put(format!("{}/api/v1/gateways/{gateway}", self.base))
            .bearer_auth(&self.key)
            .json(report)
            .send()
            .await
            .map_err(failed)?;
        accepted(response, "report").await
    }

    async fn audit(&self, batch: &AuditBatch) -> Result<(), SyncError> {
        let response = self
            .client
            .post(format!("{}/api/v1/audit", self.base))
            .bearer_auth(&self.key)
            .json(batch)
            .send()
            .await
            .map_err(failed)?;
        accepted(response, "audit batch").await
    }
}

async fn accepted(response: reqwest::Response, what: &str) -> Result<(), SyncError> {
    if response.status().is_success() {
        Ok(())
    } else {
        Err(SyncError(format!(
            "the catalog refused the {what}: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        )))
    }
}

/// A source offering whatever bundle it was last handed: a gateway serving
/// bundles its owner supplies (tests stand in for the catalog with it,
/// including bundles the catalog would never produce). It keeps the latest
/// report and counts audit records. Nothing confirms an offered bundle after
/// it was offered: such a gateway runs without `max_staleness`, or its owner
/// offers again.
#[derive(Debug)]
pub struct Offered {
    bundle: tokio::sync::watch::Sender<Option<Bundle>>,
    report: std::sync::Mutex<Option<GatewayReport>>,
    audited: std::sync::atomic::AtomicU64,
}

impl Offered {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            bundle: tokio::sync::watch::channel(None).0,
            report: std::sync::Mutex::new(None),
            audited: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Offers `bundle`: a following gateway fetches it at once.
    pub fn offer(&self, bundle: Bundle) {
        self.bundle.send_replace(Some(bundle));
    }

    /// The gateway's latest report (ACK or NACK).
    pub fn last_report(&self) -> Option<GatewayReport> {
        self.report
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many audit records the gateway shipped.
    pub fn audited(&self) -> u64 {
        self.audited.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn version(&self) -> i64 {
        self.bundle.borrow().as_ref().map_or(0, |b| b.version)
    }
}

#[async_trait]
impl BundleSource for Offered {
    async fn wait(&self, after: i64) -> Result<i64, SyncError> {
        let mut offered = self.bundle.subscribe();
        let _ = offered
            .wait_for(|b| b.as_ref().is_some_and(|b| b.version > after))
            .await;
        Ok(self.version().max(after))
    }

    async fn fetch(&self, held: Option<&str>) -> Result<Fetched, SyncError> {
        Ok(match self.bundle.borrow().clone() {
            Some(bundle) => Fetched::unless_held(bundle, held),
            None => Fetched::Unchanged,
        })
    }

    async fn report(&self, _gateway: &str, report: &GatewayReport) -> Result<(), SyncError> {
        *self.report.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(report.clone());
        Ok(())
    }

    async fn audit(&self, batch: &AuditBatch) -> Result<(), SyncError> {
        self.audited
            .fetch_add(batch.records.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// Where a gateway keeps its last-known-good bundle.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf() }
    }

    /// Writes `bytes` to `name` atomically (a temporary file renamed over the
    /// old one), readable by this user only: the bundle holds every key's hash
    /// and the mesh's mask key.
    fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write as _;
        #[cfg(unix)]
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        let mut dir = std::fs::DirBuilder::new();
        dir.recursive(true);
        #[cfg(unix)]
        dir.mode(0o700);
        dir.create(&self.dir)?;
        let tmp = self.dir.join(format!("{name}.tmp"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(tmp, self.dir.join(name))
    }

    /// Saves a bundle just installed.
    pub fn save(&self, bundle: &Bundle, confirmed_at: SystemTime) -> std::io::Result<()> {
        self.write(
            "bundle.json",
            &serde_json::to_vec(bundle).map_err(std::io::Error::other)?,
        )?;
        self.confirm(confirmed_at)
    }

    /// Saves when the catalog last confirmed the saved bundle (a small file,
    /// rewritten on every confirmation: the staleness clock survives restarts).
    pub fn confirm(&self, at: SystemTime) -> std::io::Result<()> {
        let at: DateTime<Utc> = at.into();
        self.write("confirmed_at", at.to_rfc3339().as_bytes())
    }

    /// Installs the saved bundle, if there is one that still checks out.
    pub fn restore(&self, engine: &Engine) -> Result<Option<i64>, SyncError> {
        let bytes = match std::fs::read(self.dir.join("bundle.json")) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(failed(e)),
        };
        let bundle = Bundle::from_json(&bytes).map_err(failed)?;
        let confirmed = std::fs::read_to_string(self.dir.join("confirmed_at")).map_err(failed)?;
        let confirmed = DateTime::parse_from_rfc3339(confirmed.trim()).map_err(failed)?;
        let version = bundle.version;
        engine
            .install_confirmed_at(bundle, confirmed.with_timezone(&Utc).into())
            .map_err(failed)?;
        Ok(Some(version))
    }
}

/// A gateway's link to the catalog: its name, its source, its saved bundle.
#[derive(Clone)]
pub struct Link {
    pub engine: Engine,
    pub source: Arc<dyn BundleSource>,
    pub name: String,
    pub store: Option<Store>,
}

impl Link {
    /// Fetches and installs the current bundle, and reports the outcome.
    pub async fn refresh(&self) -> Result<Refresh, SyncError> {
        let engine = &self.engine;
        let fetched = self.source.fetch(engine.bundle_hash().as_deref()).await?;
        let now = SystemTime::now();
        let bundle = match fetched {
            Fetched::Bundle(bundle) => *bundle,
            Fetched::Unchanged => {
                engine.confirm(now);
                if let Some(store) = &self.store
                    && let Err(e) = store.confirm(now)
                {
                    tracing::warn!(error = %e, "cannot save the bundle's confirmation");
                }
                self.report(None).await;
                return Ok(Refresh::Unchanged);
            }
            Fetched::Unreadable { version, error } => {
                tracing::warn!(?version, %error, "unreadable policy bundle refused; keeping the previous one");
                self.report(Some((version.unwrap_or_default(), error.to_string())))
                    .await;
                return Ok(Refresh::Refused(error.to_string()));
            }
        };
        let version = bundle.version;
        let compiling = std::time::Instant::now();
        match engine.install(bundle.clone()) {
            Ok(()) => {
                let compile_ms = compiling.elapsed().as_millis() as u64;
                tracing::info!(version, compile_ms, "policy bundle installed");
                engine.confirm(now);
                if let Some(store) = &self.store
                    && let Err(e) = store.save(&bundle, now)
                {
                    tracing::warn!(error = %e, "cannot save the last-known-good bundle");
                }
                self.report(None).await;
                Ok(Refresh::Installed(version))
            }
            Err(e) => {
                tracing::warn!(version, error = %e, "policy bundle refused; keeping the previous one");
                self.report(Some((version, e.to_string()))).await;
                Ok(Refresh::Refused(e.to_string()))
            }
        }
    }

    async fn report(&self, rejected: Option<(i64, String)>) {
        let report = GatewayReport {
            version: self.engine.bundle_version(),
            hash: self.engine.bundle_hash().unwrap_or_default(),
            rejected_version: rejected.as_ref().map(|(v, _)| *v),
            error: rejected.map(|(_, e)| e),
            drift: self.engine.drift(),
        };
        if let Err(e) = self.source.report(&self.name, &report).await {
            tracing::warn!(error = %e, "cannot report to the catalog");
        }
    }

    /// Follows the catalog for ever (run it as a task; drop the task to stop).
    pub async fn follow(self) {
        let mut backoff = Duration::from_millis(100);
        let mut seen = 0;
        let mut drift = self.engine.drift_changes();
        loop {
            match self.refresh().await {
                // A refused bundle is not fetched again until the catalog moves on.
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot refresh the policy bundle");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            // Until the catalog moves on: drift found meanwhile is reported at once.
            let waited = loop {
                tokio::select! {
                    waited = self.source.wait(seen) => break waited,
                    Ok(()) = drift.changed() => self.report(None).await,
                }
            };
            match waited {
                Ok(version) => seen = version,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch the catalog");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// What a refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    Installed(i64),
    /// The bundle in force is the catalog's current one.
    Unchanged,
    /// The catalog's bundle was refused (NACK); the previous one stays.
    Refused(String),
}

/// A query record as the catalog stores it.
pub fn audit_record(r: &QueryRecord) -> AuditRecord {
    let at: DateTime<Utc> = (SystemTime::now() - r.elapsed).into();
    AuditRecord {
        query_id: r.id.to_string(),
        principal: r.principal.clone(),
        protocol: r.protocol.as_str().into(),
        purpose: r.purpose.clone(),
        refused_purpose: r.refused_purpose.clone(),
        sql: r.sql.clone(),
        products: r.touched.products.iter().cloned().collect(),
        columns: r.touched.columns.iter().cloned().collect(),
        masks: r.touched.masks.iter().cloned().collect(),
        filters: r.touched.filters.iter().cloned().collect(),
        rows: r.rows,
        bytes: r.bytes,
        duration_ms: u64::try_from(r.elapsed.as_millis()).unwrap_or(u64::MAX),
        bundle_version: r.bundle_version,
        outcome: match &r.outcome {
            Ok(()) => "ok".into(),
            Err(e) => e.sqlstate().into(),
        },
        error: r.outcome.as_ref().err().map(ToString::to_string),
        at,
    }
}
