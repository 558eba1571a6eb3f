//! The catalog's use cases: authorization, validation, then the store.
//!
//! Handlers translate HTTP into calls here and back; nothing here knows HTTP:
//! failures are [`Error`]s, which the API layer maps to statuses and problems.
//! This module holds the [`Catalog`] itself and authentication; each resource's
//! use cases are in their own module.

mod access;
mod changes;
mod contracts;
mod domains;
mod error;
mod gateways;
mod governance;
mod principals;
mod products;
mod secrets;
mod teams;
mod tokens;
mod validate;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use chrono::Utc;

pub use changes::MAX_WATCH;
pub use error::{Error, Result, Stage};
pub use governance::{PolicySpec, Typed};
pub use validate::{DEFAULT_LIMIT, MAX_LIMIT, Paging};

use crate::authz::{Authz, Caller};
use crate::keys;
use crate::store::CatalogStore;

/// The catalog: its store and its authorization rules.
#[derive(Clone)]
pub struct Catalog {
    store: Arc<dyn CatalogStore>,
    /// Credentials per storage location, for reading tables' metadata.
    storage: Arc<Vec<tessera_lake::StorageLocation>>,
    /// The lake root as a `file` URL ending in `/`: new domains' default
    /// storage root is `<lake root><domain>/`.
    lake_root: Arc<String>,
    pub authz: Authz,
    /// Turns true when the server shuts down, so that parked watches answer at
    /// once instead of holding the shutdown up.
    stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// How many watches wait for a change right now.
    parked: Arc<AtomicUsize>,
    /// Callers resolved from API keys, by key id.
    callers: Arc<std::sync::Mutex<HashMap<String, KnownCaller>>>,
    /// The last policy bundle built, reused while the version stands; the
    /// lock also makes concurrent fetches share one build.
    bundle: Arc<tokio::sync::Mutex<Option<Arc<tessera_contracts::bundle::Bundle>>>>,
    /// The OpenID Connect issuers whose tokens stand for principals.
    identity: Arc<crate::identity::Identity>,
}

/// How long a resolved caller is reused at most. Within this process every
/// change to keys, principals, teams or grants moves the catalog version and
/// drops the reuse at once; a change made through another replica is seen
/// within this bound.
const CALLER_TTL: Duration = Duration::from_secs(1);
/// Callers kept at most (the map is emptied beyond it).
const CALLERS_KEPT: usize = 10_000;

/// A caller resolved from an API key, with what is needed to check the key
/// again without the store.
#[derive(Clone)]
struct KnownCaller {
    secret_hash: String,
    expires_at: Option<chrono::DateTime<Utc>>,
    caller: Caller,
    /// The catalog version it was resolved at.
    version: i64,
    at: std::time::Instant,
}

impl Catalog {
    pub fn new(store: Arc<dyn CatalogStore>) -> Self {
        Self {
            store,
            storage: Arc::default(),
            lake_root: Arc::new(
                crate::storage::root_of_path(std::path::Path::new(".tessera/lake"))
                    .unwrap_or_else(|_| "file:///tessera/lake/".into()),
            ),
            authz: Authz,
            stopping: Arc::new(tokio::sync::watch::channel(false).0),
            parked: Arc::default(),
            callers: Arc::default(),
            bundle: Arc::default(),
            identity: Arc::default(),
        }
    }

    /// The same catalog reading tables with these storage credentials.
    pub fn with_storage(mut self, storage: Vec<tessera_lake::StorageLocation>) -> Self {
        self.storage = Arc::new(storage);
        self
    }

    /// The same catalog giving new domains their default storage root under
    /// `lake_root` (an absolute directory; see [`crate::config::Config::lake_root`]).
    pub fn with_lake_root(mut self, lake_root: &std::path::Path) -> anyhow::Result<Self> {
        let root = crate::storage::root_of_path(lake_root)
            .map_err(|e| anyhow::anyhow!("the lake root {}: {e}", lake_root.display()))?;
        self.lake_root = Arc::new(root);
        Ok(self)
    }

    /// Releases every parked watch; called when the server begins to shut down.
    pub fn stop_watches(&self) {
        self.stopping.send_replace(true);
    }

    /// The database behind the catalog: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<()> {
        Ok(self.store.ping().await?)
    }

    /// Resolves a presented API key to its caller; `None` when it does not hold.
    /// A key resolved before is checked against its stored hash again and its
    /// caller reused while the catalog has not changed (at most [`CALLER_TTL`]):
    /// a read then costs no query for authentication.
    ///
    /// A JWT is an OpenID Connect access token instead: a refused one is
    /// [`Error::Unauthenticated`], saying why.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Caller>> {
        if tessera_contracts::tokens::looks_like_jwt(presented) {
            return self.authenticate_token(presented).await.map(Some);
        }
        let Some(parsed) = keys::parse(presented) else {
            return Ok(None);
        };
        // Read before resolving: a change made meanwhile leaves the entry stale.
        let version = *self.store.subscribe().borrow();
        let known = self.known_callers().get(parsed.id).cloned();
        if let Some(known) = known
            && known.version == version
            && known.at.elapsed() < CALLER_TTL
        {
            let live = known.expires_at.is_none_or(|at| at > Utc::now());
            return Ok((live && keys::verify(parsed.secret, &known.secret_hash)).then_some(known.caller));
        }
        let Some(stored) = self.store.find_api_key(parsed.id).await? else {
            return Ok(None);
        };
        let live = stored.key.revoked_at.is_none() && stored.key.expires_at.is_none_or(|at| at > Utc::now());
        if !live || !keys::verify(parsed.secret, &stored.secret_hash) {
            return Ok(None);
        }
        let Some(principal) = self.store.get_principal(&stored.key.principal).await? else {
            return Ok(None);
        };
        let caller = self.caller(principal).await?;
        let mut callers = self.known_callers();
        if callers.len() >= CALLERS_KEPT {
            callers.clear();
        }
        callers.insert(
            parsed.id.to_string(),
            KnownCaller {
                secret_hash: stored.secret_hash,
                expires_at: stored.key.expires_at,
                caller: caller.clone(),
                version,
                at: std::time::Instant::now(),
            },
        );
        Ok(Some(caller))
    }

    /// The caller `principal` is: its teams and what its grants cover.
    async fn caller(&self, principal: tessera_contracts::api::Principal) -> Result<Caller> {
        let teams = self.store.principal_teams(&principal.name).await?;
        let granted = self.granted_targets(&principal, &teams).await?;
        Ok(Caller {
            principal,
            teams,
            granted,
        })
    }

    fn known_callers(&self) -> std::sync::MutexGuard<'_, HashMap<String, KnownCaller>> {
        self.callers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
