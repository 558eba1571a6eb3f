//! The catalog's persistence port: one trait, two backends (SQLite and PostgreSQL).
//!
//! Every mutation runs in one transaction that also bumps the catalog's change
//! sequence and appends its change-log entry, so the log and the data never
//! disagree and watchers see a gapless, commit-ordered sequence.

mod sql;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_contracts::api::{
    AccessRequest, AccessRequestCreate, AccessRequestStatus, AuditRecord, GatewayReport, UsageRecord,
};
use tessera_contracts::api::{
    ApiKey, Attributes, Change, ContractVersion, ContractVersionSummary, Domain, DomainCreate, DomainUpdate, Health,
    Principal, PrincipalKind, PrincipalUpdate, Product, ProductCreate, ProductStatus, ProductUpdate, QualityRun,
    QualityRunCreate, Team, TeamCreate, TeamUpdate, Violation, Visibility,
};
use tokio::sync::watch;

pub use sql::{PgStore, SqliteStore};

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
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Keyset pagination: rows strictly after `after`, at most `limit` of them (the
/// store returns up to `limit + 1` so the caller can tell whether more follow).
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub after: Option<String>,
    pub limit: i64,
}

/// Which products a listing may return; produced by [`crate::authz::Authz`].
#[derive(Debug, Clone)]
pub enum ProductScope {
    All,
    /// Discoverable products, the restricted ones the principal owns, and those its grants cover.
    VisibleTo {
        principal: String,
        granted: Vec<tessera_contracts::policy::Target>,
    },
}

/// Filters of the product listing.
#[derive(Debug, Clone)]
pub struct ProductQuery {
    pub scope: ProductScope,
    pub domain: Option<String>,
    pub tag: Option<String>,
    pub status: Option<ProductStatus>,
    pub owner_team: Option<String>,
    pub visibility: Option<Visibility>,
    /// Case-insensitive text search over name, title, description and tags.
    pub text: Option<String>,
    pub page: PageRequest,
}

impl ProductQuery {
    /// Every product in `scope`, one page of them, no filter.
    pub fn unfiltered(scope: ProductScope, page: PageRequest) -> Self {
        Self {
            scope,
            domain: None,
            tag: None,
            status: None,
            owner_team: None,
            visibility: None,
            text: None,
            page,
        }
    }
}

/// A principal to create.
#[derive(Debug, Clone)]
pub struct NewPrincipal {
    pub name: String,
    pub kind: PrincipalKind,
    pub display_name: String,
    pub email: Option<String>,
    pub admin: bool,
    pub attributes: Attributes,
}

/// An API key to store: only the hash of its secret.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: String,
    pub principal: String,
    pub secret_hash: String,
    pub description: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A stored key, as authentication needs it.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub key: ApiKey,
    pub secret_hash: String,
}

/// A contract version to store.
#[derive(Debug, Clone)]
pub struct NewContract {
    pub version: semver::Version,
    pub api_version: Option<String>,
    pub media_type: String,
    pub document: String,
    /// What changed since the previous version of the same major.
    pub changes: Vec<Violation>,
}

/// One lineage edge: `(up_domain, up_product) -> (domain, product)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub up_domain: String,
    pub up_product: String,
    pub domain: String,
    pub product: String,
}

/// The three kinds of governance policy, stored alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PolicyKind {
    Grant,
    Mask,
    RowFilter,
}

impl PolicyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Mask => "mask",
            Self::RowFilter => "row_filter",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "grant" => Some(Self::Grant),
            "mask" => Some(Self::Mask),
            "row_filter" => Some(Self::RowFilter),
            _ => None,
        }
    }
    /// The REST collection.
    pub fn collection(self) -> &'static str {
        match self {
            Self::Grant => "grants",
            Self::Mask => "masks",
            Self::RowFilter => "row-filters",
        }
    }
    /// How messages name one.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Mask => "mask",
            Self::RowFilter => "row filter",
        }
    }
}

/// A policy to store: its spec as JSON, and the one domain it lies in (if any).
#[derive(Debug, Clone)]
pub struct NewPolicy {
    pub kind: PolicyKind,
    pub name: String,
    pub domain: Option<String>,
    pub spec: serde_json::Value,
}

/// A stored policy.
#[derive(Debug, Clone)]
pub struct StoredPolicy {
    pub kind: PolicyKind,
    pub name: String,
    pub domain: Option<String>,
    pub spec: serde_json::Value,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revision: i64,
}

/// Filters of the access-request listing.
#[derive(Debug, Clone)]
pub struct AccessRequestQuery {
    /// Only requests this principal made, or made for products it owns (None: all).
    pub visible_to: Option<String>,
    pub status: Option<AccessRequestStatus>,
    pub product: Option<(String, String)>,
    pub page: PageRequest,
}

/// An owner's decision: approving stores `grant` in the same transaction.
#[derive(Debug, Clone)]
pub struct AccessDecision {
    pub grant: Option<NewPolicy>,
    pub note: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A gateway's latest report.
#[derive(Debug, Clone)]
pub struct GatewayRow {
    pub name: String,
    pub report: GatewayReport,
    pub reported_at: DateTime<Utc>,
}

/// Governance: policies, access requests, gateway reports, query audit.
#[async_trait]
pub trait GovernanceStore: Send + Sync + 'static {
    async fn create_policy(&self, actor: &str, new: &NewPolicy) -> Result<StoredPolicy>;
    async fn replace_policy(&self, actor: &str, new: &NewPolicy, if_match: Option<i64>) -> Result<StoredPolicy>;
    async fn get_policy(&self, kind: PolicyKind, name: &str) -> Result<Option<StoredPolicy>>;
    async fn list_policies(
        &self,
        kind: PolicyKind,
        domain: Option<&str>,
        page: &PageRequest,
    ) -> Result<Vec<StoredPolicy>>;
    /// Every policy, for the bundle.
    async fn all_policies(&self) -> Result<Vec<StoredPolicy>>;
    async fn delete_policy(&self, actor: &str, kind: PolicyKind, name: &str, if_match: Option<i64>) -> Result<()>;

    async fn create_access_request(
        &self,
        actor: &str,
        domain: &str,
        product: &str,
        new: &AccessRequestCreate,
    ) -> Result<AccessRequest>;
    async fn get_access_request(&self, id: i64) -> Result<Option<AccessRequest>>;
    async fn list_access_requests(&self, query: &AccessRequestQuery) -> Result<Vec<AccessRequest>>;
    /// Approves (storing the grant) or denies a pending request; a decided one is a conflict.
    async fn decide_access_request(&self, actor: &str, id: i64, decision: &AccessDecision) -> Result<AccessRequest>;

    async fn report_gateway(&self, name: &str, report: &GatewayReport) -> Result<()>;
    async fn list_gateways(&self) -> Result<Vec<GatewayRow>>;

    /// Stores audit records (each query id once); returns how many were new.
    async fn add_audit(&self, gateway: &str, records: &[AuditRecord]) -> Result<u64>;
    /// A product's usage, newest first.
    async fn list_usage(&self, domain: &str, product: &str, page: &PageRequest) -> Result<Vec<UsageRecord>>;
}

/// The catalog's store.
#[async_trait]
pub trait CatalogStore: GovernanceStore + Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Follows the catalog's version as this process commits changes.
    fn subscribe(&self) -> watch::Receiver<i64>;
    async fn ping(&self) -> Result<()>;
    async fn version(&self) -> Result<i64>;
    async fn changes(&self, after: i64, limit: i64) -> Result<Vec<Change>>;

    async fn admin_exists(&self) -> Result<bool>;
    async fn create_principal(&self, actor: &str, new: &NewPrincipal) -> Result<Principal>;
    async fn get_principal(&self, name: &str) -> Result<Option<Principal>>;
    async fn list_principals(&self, page: &PageRequest) -> Result<Vec<Principal>>;
    async fn update_principal(
        &self,
        actor: &str,
        name: &str,
        if_match: Option<i64>,
        patch: &PrincipalUpdate,
    ) -> Result<Principal>;
    async fn delete_principal(&self, actor: &str, name: &str, if_match: Option<i64>) -> Result<()>;
    async fn principal_teams(&self, name: &str) -> Result<Vec<String>>;
    async fn owned_domains(&self, name: &str) -> Result<Vec<String>>;

    /// Stores a key; also used once at start-up for the bootstrap admin key.
    async fn create_api_key(&self, actor: &str, new: &NewApiKey) -> Result<ApiKey>;
    async fn list_api_keys(&self, principal: &str, page: &PageRequest) -> Result<Vec<ApiKey>>;
    async fn revoke_api_key(&self, actor: &str, principal: &str, id: &str) -> Result<ApiKey>;
    async fn find_api_key(&self, id: &str) -> Result<Option<StoredKey>>;
    /// Every key that is not revoked, with its hash (for policy bundles).
    async fn live_keys(&self) -> Result<Vec<StoredKey>>;
    /// Every team membership as `(team, principal)`.
    async fn memberships(&self) -> Result<Vec<(String, String)>>;

    async fn create_team(&self, actor: &str, new: &TeamCreate) -> Result<Team>;
    async fn get_team(&self, name: &str) -> Result<Option<Team>>;
    async fn list_teams(&self, page: &PageRequest) -> Result<Vec<Team>>;
    async fn update_team(&self, actor: &str, name: &str, if_match: Option<i64>, patch: &TeamUpdate) -> Result<Team>;
    async fn delete_team(&self, actor: &str, name: &str, if_match: Option<i64>) -> Result<()>;
    async fn add_team_member(&self, actor: &str, team: &str, principal: &str) -> Result<Team>;
    async fn remove_team_member(&self, actor: &str, team: &str, principal: &str) -> Result<Team>;

    async fn create_domain(&self, actor: &str, new: &DomainCreate) -> Result<Domain>;
    async fn get_domain(&self, name: &str) -> Result<Option<Domain>>;
    async fn list_domains(&self, page: &PageRequest) -> Result<Vec<Domain>>;
    async fn update_domain(
        &self,
        actor: &str,
        name: &str,
        if_match: Option<i64>,
        patch: &DomainUpdate,
    ) -> Result<Domain>;
    async fn delete_domain(&self, actor: &str, name: &str, if_match: Option<i64>) -> Result<()>;

    async fn create_product(&self, actor: &str, domain: &str, new: &ProductCreate) -> Result<Product>;
    async fn get_product(&self, domain: &str, name: &str) -> Result<Option<Product>>;
    async fn list_products(&self, query: &ProductQuery) -> Result<Vec<Product>>;
    async fn update_product(
        &self,
        actor: &str,
        domain: &str,
        name: &str,
        if_match: Option<i64>,
        patch: &ProductUpdate,
    ) -> Result<Product>;
    async fn delete_product(&self, actor: &str, domain: &str, name: &str, if_match: Option<i64>) -> Result<()>;
    async fn lineage_edges(&self) -> Result<Vec<Edge>>;

    async fn add_contract(
        &self,
        actor: &str,
        domain: &str,
        product: &str,
        new: &NewContract,
    ) -> Result<ContractVersion>;
    async fn list_contracts(
        &self,
        domain: &str,
        product: &str,
        page: &PageRequest,
    ) -> Result<Vec<ContractVersionSummary>>;
    async fn get_contract(&self, domain: &str, product: &str, version: &str) -> Result<Option<ContractVersion>>;
    /// Every version of a product's contract, documents included.
    async fn all_contracts(&self, domain: &str, product: &str) -> Result<Vec<ContractVersion>>;

    /// Stores a quality run and sets the product's health from it.
    async fn add_quality_run(
        &self,
        actor: &str,
        domain: &str,
        product: &str,
        run: &QualityRunCreate,
        health: Health,
    ) -> Result<QualityRun>;
    /// Quality runs, newest first.
    async fn list_quality_runs(&self, domain: &str, product: &str, page: &PageRequest) -> Result<Vec<QualityRun>>;
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

/// A database URL with its password hidden, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact_url("sqlite:/tmp/x.db"), "sqlite:/tmp/x.db");
    }
}
