//! The catalog's persistence port: one trait per resource, gathered by
//! [`CatalogStore`], and two backends (SQLite and PostgreSQL).
//!
//! Every mutation runs in one transaction that also bumps the catalog's change
//! sequence and appends its change-log entry, so the log and the data never
//! disagree and watchers see a gapless, commit-ordered sequence.

mod contracts;
mod domains;
mod governance;
mod principals;
mod products;
mod sql;
mod teams;

use std::sync::Arc;

use async_trait::async_trait;
use tessera_contracts::api::{Change, ContractVersion, Domain, Principal, Product};
use tessera_contracts::bundle::{BundleIssuer, MaskKey};
use tokio::sync::watch;

pub use contracts::{ContractStore, NewContract};
pub use domains::DomainStore;
pub use governance::{
    AccessDecision, AccessRequestQuery, GatewayRow, GovernanceStore, NewPolicy, PolicyKind, StoredPolicy,
};
pub use principals::{NewApiKey, NewPrincipal, PrincipalStore, StoredKey};
#[doc(hidden)]
pub use products::like_pattern;
pub use products::{Edge, ProductQuery, ProductScope, ProductStore, find_cycle};
pub use sql::{PgStore, SqliteStore};
pub use teams::TeamStore;

/// An error of the database itself, kept opaque so that no backend type shows
/// in the store's interface.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The `If-Match` revision is not the current one.
    #[error("the resource has changed: its current revision is {current}")]
    PreconditionFailed { current: i64 },
    /// A lifecycle transition that the rules refuse.
    #[error("{0}")]
    IllegalTransition(String),
    /// The request names something that does not exist or breaks a rule.
    #[error("{0}")]
    Invalid(String),
    /// An output port's location equals, or nests with, the location of
    /// another product (`owner`, as `domain.product`, which only admins may
    /// be told).
    #[error("{port}: the location overlaps another product's storage")]
    LocationOverlap { port: String, owner: String },
    /// The database cannot be reached now (connection lost, pool exhausted or
    /// closed): the same request may succeed when retried.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] BackendError),
    /// Any other failure of the database or of its migrations.
    #[error("database error: {0}")]
    Backend(#[source] BackendError),
}

impl StoreError {
    /// Whether retrying later may succeed: the database was out of reach.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Keyset pagination: rows strictly after `after`, at most `limit` of them (the
/// store returns up to `limit + 1` so the caller can tell whether more follow).
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub after: Option<String>,
    pub limit: i64,
}

/// The catalog's store: every resource, the change sequence and its log.
#[async_trait]
pub trait CatalogStore:
    PrincipalStore + TeamStore + DomainStore + ProductStore + ContractStore + GovernanceStore + Send + Sync + 'static
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Follows the catalog's version as this process commits changes.
    fn subscribe(&self) -> watch::Receiver<i64>;
    async fn ping(&self) -> Result<()>;
    async fn version(&self) -> Result<i64>;
    async fn changes(&self, after: i64, limit: i64) -> Result<Vec<Change>>;
    /// Everything a policy bundle is made of, read in one transaction.
    async fn snapshot(&self) -> Result<Snapshot>;
    /// The mesh's key for `hash` masks, once created.
    async fn mask_key(&self) -> Result<Option<MaskKey>>;
    /// Stores the mesh's mask key, logged without the key: at first start
    /// (`replace` false: a key already there stays, and `false` is returned),
    /// or rotating it (`replace` true).
    async fn put_mask_key(&self, actor: &str, key: &MaskKey, replace: bool) -> Result<bool>;
    /// The OpenID Connect issuers with their key sets, as last stored.
    async fn issuers(&self) -> Result<Vec<BundleIssuer>>;
    /// Replaces the stored issuers with `issuers` when they differ (settings
    /// or keys), logging which issuers changed but no key; `false` when
    /// nothing did (the version stays).
    async fn put_issuers(&self, actor: &str, issuers: &[BundleIssuer]) -> Result<bool>;
}

/// What a policy bundle is built from: one version of the catalog, every
/// part of it read in the same database snapshot, so that the version labels
/// exactly the content (no later change half in, no earlier one missing).
pub struct Snapshot {
    pub version: i64,
    pub mask_key: Option<MaskKey>,
    pub domains: Vec<Domain>,
    pub products: Vec<Product>,
    /// Every version of every contract.
    pub contracts: Vec<ContractVersion>,
    /// `(team, principal)` pairs.
    pub memberships: Vec<(String, String)>,
    pub principals: Vec<Principal>,
    /// The keys not revoked (expired ones included: gateways check expiry).
    pub keys: Vec<StoredKey>,
    pub policies: Vec<StoredPolicy>,
    pub issuers: Vec<BundleIssuer>,
}

/// Opens the store a database URL names (`sqlite:` or `postgres:`), applying
/// migrations.
pub async fn connect(url: &str) -> Result<Arc<dyn CatalogStore>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else {
        Err(StoreError::Invalid(format!(
            "unsupported database URL scheme in {}: use sqlite:PATH or postgres://...",
            redact_url(url)
        )))
    }
}

/// A database URL with its passwords hidden, for logs and errors: the one of
/// its user information (`postgres://u:***@h/db`) and those of its query
/// (`?password=***`, `?sslpassword=***`).
pub fn redact_url(url: &str) -> String {
    // The user information first, up to the last `@`: a password with an
    // unencoded `?` or `/` is hidden whole.
    let redacted = match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    };
    let Some((base, query)) = redacted.split_once('?') else {
        return redacted;
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, _)) if name.to_ascii_lowercase().contains("password") => format!("{name}=***"),
            _ => param.to_string(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

/// Whether a database URL carries a password (in its user information or its
/// query): such a URL is a secret, better read from a file or the environment
/// than given on a command line.
pub fn url_has_password(url: &str) -> bool {
    redact_url(url) != url
}
