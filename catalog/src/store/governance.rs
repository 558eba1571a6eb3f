//! Storing governance: policies, access requests, gateway reports, query audit.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_contracts::api::{
    AccessRequest, AccessRequestCreate, AccessRequestStatus, AuditRecord, Drift, GatewayReport, UsageRecord,
};

use super::{PageRequest, Result};

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
    /// The non-empty drift lists of gateways' latest reports, with when each
    /// was reported (none at all, the usual case, reads no row).
    async fn gateway_drift(&self) -> Result<Vec<(DateTime<Utc>, Vec<Drift>)>>;

    /// Stores audit records (each query id once); returns how many were new.
    async fn add_audit(&self, gateway: &str, records: &[AuditRecord]) -> Result<u64>;
    /// A product's usage, newest first.
    async fn list_usage(&self, domain: &str, product: &str, page: &PageRequest) -> Result<Vec<UsageRecord>>;
}
