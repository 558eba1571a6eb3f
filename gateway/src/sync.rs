//! Keeping the bundle current: fetch it, then follow the catalog's change
//! sequence (long-poll) and fetch again whenever it moves. A bundle that does
//! not check out is refused and the previous one stays in force.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tessera_contracts::bundle::Bundle;

use crate::engine::Engine;

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
    /// The current bundle; `None` when its hash is `held`.
    async fn fetch(&self, held: Option<&str>) -> Result<Option<Bundle>, SyncError>;
}

/// The catalog's REST API: `GET /api/v1/version/watch` and `GET /api/v1/bundle`.
#[derive(Debug, Clone)]
pub struct HttpSource {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl HttpSource {
    /// `base` is the catalog's URL (`http://host:8080`); `key` an admin's API key.
    pub fn new(base: &str, key: &str) -> Result<Self, SyncError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(40))
            .build()
            .map_err(|e| SyncError(e.to_string()))?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
        })
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
                "{}/api/v1/version/watch?after={after}&timeout_secs=20",
                self.base
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

    async fn fetch(&self, held: Option<&str>) -> Result<Option<Bundle>, SyncError> {
        let mut request = self
            .client
            .get(format!("{}/api/v1/bundle", self.base))
            .bearer_auth(&self.key);
        if let Some(hash) = held {
            request = request.header(reqwest::header::IF_NONE_MATCH, format!("\"{hash}\""));
        }
        let response = request.send().await.map_err(failed)?;
        match response.status() {
            reqwest::StatusCode::NOT_MODIFIED => Ok(None),
            s if s.is_success() => Ok(Some(response.json().await.map_err(failed)?)),
            s => Err(SyncError(format!(
                "the catalog refused the bundle request: {s} {}",
                response.text().await.unwrap_or_default()
            ))),
        }
    }
}

/// Fetches and installs the current bundle; `Ok(true)` when a new one went in.
pub async fn refresh(engine: &Engine, source: &dyn BundleSource) -> Result<bool, SyncError> {
    let Some(bundle) = source.fetch(engine.bundle_hash().as_deref()).await? else {
        return Ok(false);
    };
    let version = bundle.version;
    match engine.install(bundle) {
        Ok(()) => {
            tracing::info!(version, "policy bundle installed");
            Ok(true)
        }
        Err(e) => {
            tracing::warn!(version, error = %e, "policy bundle refused; keeping the previous one");
            Err(SyncError(e.to_string()))
        }
    }
}

/// Follows the catalog for ever (run it as a task; drop the task to stop).
pub async fn follow(engine: Engine, source: Arc<dyn BundleSource>) {
    let mut backoff = Duration::from_millis(100);
    let mut seen = 0;
    loop {
        match refresh(&engine, source.as_ref()).await {
            Ok(_) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot refresh the policy bundle");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        }
        match source.wait(seen).await {
            Ok(version) => seen = version,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the catalog");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
