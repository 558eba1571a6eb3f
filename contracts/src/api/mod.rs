//! Bodies of the catalog's REST API (`/api/v1`), shared by the catalog and the SDK,
//! and in [`query`] those of the gateway's SQL endpoint, shared by the gateway
//! and the SDK.
//!
//! Request bodies refuse unknown fields, so that a typo never passes silently.

pub mod query;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

pub use self::query::{Column, NOTICE_HEADER, PURPOSE_HEADER, QUERY_ID_HEADER, QueryRequest, QueryResult};
pub use crate::lifecycle::ProductStatus;
pub use crate::odcs::arrow::Mismatch;
pub use crate::odcs::compat::{Mode as Compatibility, Verdict, Violation};

/// One page of a listing; pass `next_cursor` back as `cursor` for the next one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// RFC 9457 problem details, the body of every error.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A stable URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The request id, to quote when reporting a problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The PostgreSQL error code of a failed query (the same one PostgreSQL-wire clients get).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<String>,
    /// The id of the failed query, as in its audit record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_id: Option<String>,
    /// Per-field errors, where the request body was at fault.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Breaking changes that refused a contract version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
    /// How a Delta table differs from the contract that refused it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<Mismatch>,
}

impl Problem {
    /// A problem with no detail yet.
    pub fn new(kind: impl Into<String>, title: impl Into<String>, status: u16) -> Self {
        Self {
            kind: kind.into(),
            title: title.into(),
            status,
            detail: None,
            instance: None,
            request_id: None,
            sqlstate: None,
            query_id: None,
            errors: Vec::new(),
            violations: Vec::new(),
            mismatches: Vec::new(),
        }
    }
}

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// Where in the request, e.g. `name` or `output_ports[0].location`.
    pub path: String,
    pub message: String,
}

/// The catalog's version: the latest value of its change sequence.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct CatalogVersion {
    pub version: i64,
}

/// One entry of the append-only change log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Change {
    /// Position in the change sequence; the catalog's version after this change.
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// The principal who made the change (`system` for the catalog itself).
    pub actor: String,
    /// `create`, `update`, `delete`, `revoke`, ...
    pub action: String,
    /// `domain`, `team`, `principal`, `api_key`, `product`, `contract`, `team_member`.
    pub resource_type: String,
    /// The resource's path under `/api/v1`.
    pub resource: String,
    #[serde(default)]
    pub before: Option<Value>,
    #[serde(default)]
    pub after: Option<Value>,
}

// ---------------------------------------------------------------- principals

/// serde's derive also reads a struct from a JSON array of its fields in order;
/// nested request objects must be objects, so they are read through a map.
macro_rules! object_only {
    ($ty:ident { $($field:ident: $fty:ty $(= $default:ident)?),* $(,)? }) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Fields {
                    $($(#[serde($default)])? $field: $fty,)*
                }
                let map = serde_json::Map::<String, Value>::deserialize(deserializer)?;
                let f: Fields = serde_json::from_value(Value::Object(map)).map_err(serde::de::Error::custom)?;
                Ok(Self { $($field: f.$field,)* })
            }
        }
    };
}

object_only!(Attributes {
    groups: Vec<String> = default,
    regions: Vec<String> = default,
    purposes: Vec<String> = default,
});

object_only!(OutputPort {
    major_version: u32,
    location: Option<String> = default,
});

/// A user or a service account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    User,
    Service,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Service => "service",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Self::User),
            "service" => Some(Self::Service),
            _ => None,
        }
    }
}

/// What policies know of a principal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attributes {
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    /// The purposes this principal may declare for a query.
    #[serde(default)]
    pub purposes: Vec<String>,
}

/// What a principal is for besides querying and owning data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A standalone gateway's service principal: it reads policy bundles,
    /// reports its state and posts audit batches, and may do nothing else
    /// (a service principal, never an admin). Admins' keys are not accepted
    /// for those calls.
    Gateway,
    /// A monitoring system's service principal: it reads `/metrics` (of the
    /// catalog and of gateways) and may do nothing else.
    Metrics,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Principal {
    pub name: String,
    pub kind: PrincipalKind,
    pub display_name: String,
    #[serde(default)]
    pub email: Option<String>,
    /// Platform admins manage domains, teams, principals and keys.
    pub admin: bool,
    /// Roles (`gateway`).
    #[serde(default)]
    pub roles: Vec<Role>,
    pub attributes: Attributes,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Increases with every update; the resource's ETag.
    pub revision: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrincipalCreate {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub name: String,
    pub kind: PrincipalKind,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub display_name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 320, format = Email)]
    pub email: Option<String>,
    #[serde(default)]
    pub admin: bool,
    /// `gateway`: a standalone gateway's principal (kind `service`, not admin).
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub attributes: Attributes,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrincipalUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200)]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 320, format = Email)]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<Role>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Attributes>,
}

/// An OpenID Connect issuer people may sign in to the portal with
/// (authorization code with PKCE, a public client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignInIssuer {
    /// The issuer identifier.
    pub issuer: String,
    /// Where the browser is sent to sign in.
    pub authorization_endpoint: String,
    /// Where the portal exchanges the code for an access token.
    pub token_endpoint: String,
    /// The portal's client id at the issuer.
    pub client_id: String,
    /// The scopes asked for.
    pub scope: String,
    /// The resource indicator (RFC 8707) naming Tessera as the audience, if
    /// the issuer wants one.
    #[serde(default)]
    pub resource: Option<String>,
}

/// The caller: its principal and what it owns.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub principal: Principal,
    pub teams: Vec<String>,
    /// Domains whose owning team the caller belongs to.
    pub owned_domains: Vec<String>,
}

/// An API key, without its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    /// The public key id, the middle part of `tsk_<id>_<secret>`.
    pub id: String,
    pub principal: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyCreate {
    #[serde(default)]
    #[schema(max_length = 200)]
    pub description: Option<String>,
    /// When the key stops working; never, if absent.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A new key: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyCreated {
    /// `tsk_<id>_<secret>`: keep it, it cannot be shown again.
    pub key: String,
    pub api_key: ApiKey,
}

// ---------------------------------------------------------------- teams

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Team {
    pub name: String,
    pub title: String,
    pub description: String,
    /// Principal names, sorted.
    pub members: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revision: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamCreate {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub title: Option<String>,
    #[serde(default)]
    #[schema(max_length = 10000)]
    pub description: Option<String>,
    /// Initial members (principal names).
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200)]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 10000)]
    pub description: Option<String>,
}

// ---------------------------------------------------------------- domains

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Domain {
    pub name: String,
    pub title: String,
    pub description: String,
    /// Members of this team own the domain's products and contracts.
    pub owner_team: String,
    /// Where the domain's products keep their tables: URL prefixes (ending in
    /// `/`) that every output port's location lies under. Shown to the
    /// domain's owners and to admins only (empty for everyone else).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage_roots: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revision: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainCreate {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub title: Option<String>,
    #[serde(default)]
    #[schema(max_length = 10000)]
    pub description: Option<String>,
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub owner_team: String,
    /// Storage roots (admins only): absolute URLs or paths; by default
    /// `<lake root>/<domain>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_roots: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200)]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 10000)]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub owner_team: Option<String>,
    /// Storage roots (admins only); products' existing locations must stay under them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_roots: Option<Vec<String>>,
}

// ---------------------------------------------------------------- products

/// Who sees a product (see design.md, "Products, ports and names").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Metadata listed for every signed-in principal; data only with a grant.
    #[default]
    Discoverable,
    /// Invisible, in the catalog and in SQL, without a grant.
    Restricted,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Discoverable => "discoverable",
            Self::Restricted => "restricted",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "discoverable" => Some(Self::Discoverable),
            "restricted" => Some(Self::Restricted),
            _ => None,
        }
    }
}

/// The tabular output port of one major version: a Delta table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputPort {
    #[schema(minimum = 1)]
    pub major_version: u32,
    /// The Delta table's location. When registering: a URL (`file:///...`,
    /// `s3://bucket/prefix`), an absolute path, or a path relative to the
    /// domain's first storage root; it must lie under one of the domain's
    /// storage roots, and no other product's location may equal or nest with
    /// it. Stored, and answered, as an absolute URL, to the product's owners
    /// and admins only (absent for everyone else). Required when registering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 2048)]
    pub location: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Product {
    pub domain: String,
    pub name: String,
    pub title: String,
    pub description: String,
    pub owner_team: String,
    pub tags: Vec<String>,
    pub visibility: Visibility,
    pub status: ProductStatus,
    /// When a deprecated product stops being served.
    #[serde(default)]
    pub sunset_date: Option<NaiveDate>,
    pub output_ports: Vec<OutputPort>,
    /// Upstream products, as `domain.product`.
    pub input_ports: Vec<String>,
    #[serde(default)]
    pub latest_contract_version: Option<String>,
    /// How contract versions of a major must stay compatible.
    pub compatibility: Compatibility,
    /// From the latest quality run.
    pub health: Health,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revision: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductCreate {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub title: Option<String>,
    #[serde(default)]
    #[schema(max_length = 10000)]
    pub description: Option<String>,
    /// Defaults to the domain's owning team.
    #[serde(default)]
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub owner_team: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub visibility: Visibility,
    #[serde(default)]
    pub output_ports: Vec<OutputPort>,
    #[serde(default)]
    pub input_ports: Vec<String>,
    #[serde(default)]
    pub compatibility: Compatibility,
}

/// A partial update; a lifecycle change is a change of `status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200)]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 10000)]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub owner_team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_ports: Option<Vec<OutputPort>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_ports: Option<Vec<String>>,
    /// `draft -> published -> deprecated -> retired`; deprecation needs `sunset_date`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ProductStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatibility: Option<Compatibility>,
}

/// Product-level lineage: products as nodes, input ports as edges.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Lineage {
    pub nodes: Vec<LineageNode>,
    pub edges: Vec<LineageEdge>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub struct LineageNode {
    /// `domain.product`
    pub id: String,
    pub domain: String,
    pub name: String,
    pub status: ProductStatus,
}

/// Data flows from `from` (upstream) to `to` (the product that reads it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub struct LineageEdge {
    pub from: String,
    pub to: String,
}

// ---------------------------------------------------------------- contracts

/// The semantic-version pattern of semver.org.
pub const SEMVER_PATTERN: &str = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$";

/// A contract document (ODCS v3) as the catalog reads it on submission: a mapping
/// whose `version` is a semantic version. Every other field is kept as given.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContractDocument {
    /// The ODCS version: `v3.1.0` or `v3.2.0`.
    #[serde(rename = "apiVersion")]
    #[schema(example = "v3.1.0")]
    pub api_version: String,
    /// `DataContract`.
    #[schema(example = "DataContract")]
    pub kind: String,
    #[schema(example = "orders")]
    pub id: String,
    /// Required by ODCS v3.1.0 (e.g. `active`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "active")]
    pub status: Option<String>,
    /// The contract's own semantic version.
    #[schema(
        pattern = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$",
        example = "1.0.0"
    )]
    pub version: String,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

/// One immutable version of a product's contract.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContractVersion {
    pub domain: String,
    pub product: String,
    /// The document's semantic version.
    pub version: String,
    /// The document's `apiVersion` (ODCS version), if given.
    #[serde(default)]
    pub api_version: Option<String>,
    /// `application/yaml` or `application/json`: the format it was submitted in.
    pub media_type: String,
    /// The document exactly as submitted.
    pub document: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// What changed since the previous version of the same major, with verdicts.
    #[serde(default)]
    pub changes: Vec<Violation>,
}

/// A contract version without its document, as listed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContractVersionSummary {
    pub version: String,
    #[serde(default)]
    pub api_version: Option<String>,
    pub media_type: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// What changed since the previous version of the same major.
    #[serde(default)]
    pub changes: Vec<Violation>,
}

/// How a product's Delta table compares with one of its contract versions.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Verification {
    pub contract_version: String,
    /// The output port checked (the contract's major version).
    pub location: String,
    /// The Delta table's version, when there is a table.
    #[serde(default)]
    pub table_version: Option<u64>,
    pub table_exists: bool,
    /// Empty when the table matches.
    pub mismatches: Vec<Mismatch>,
}

/// A product's health, from its latest quality run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// No quality run reported yet.
    #[default]
    Unknown,
    /// Every executable rule passed and the data is fresh.
    Healthy,
    /// A warning-level rule failed, or a rule could not run.
    Degraded,
    /// An error-level rule failed, or the data is staler than its SLA.
    Failing,
    /// A gateway found the product's Delta table no longer matching its
    /// contract (a column dropped, retyped or added by another writer): it
    /// serves the contract's columns of the last version that matched.
    Drifted,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Failing => "failing",
            Self::Drifted => "drifted",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Unknown,
            Self::Healthy,
            Self::Degraded,
            Self::Failing,
            Self::Drifted,
        ]
        .into_iter()
        .find(|h| h.as_str() == s)
    }

    /// The health a set of results shows.
    pub fn of(results: &[QualityResult]) -> Self {
        let mut health = Self::Healthy;
        for r in results {
            let error_level = !matches!(r.severity.as_deref(), Some("info" | "warning" | "warn"));
            let h = match r.status {
                CheckStatus::Pass | CheckStatus::NotExecutable => Self::Healthy,
                CheckStatus::Fail if error_level => Self::Failing,
                CheckStatus::Fail | CheckStatus::Error => Self::Degraded,
            };
            if h == Self::Failing || (h == Self::Degraded && health == Self::Healthy) {
                health = h;
            }
        }
        health
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Fail,
    /// The check could not run (its SQL failed).
    Error,
    /// A `text` or `custom` rule: reported, not run.
    NotExecutable,
}

/// One rule's result in a quality run.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QualityResult {
    /// The rule's stable key (id, name, or path).
    #[schema(max_length = 500)]
    pub key: String,
    /// Where the rule is declared, e.g. `orders.o_custkey.quality[0]`; `freshness`
    /// for the freshness check.
    #[schema(max_length = 500)]
    pub path: String,
    /// `library:nullValues`, `sql`, `text`, `custom`, `freshness`.
    #[schema(max_length = 100)]
    pub rule: String,
    pub status: CheckStatus,
    #[serde(default)]
    pub measured: Option<f64>,
    /// The rule's operator and bound, e.g. `mustBeLessThan 5`.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub threshold: Option<String>,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub dimension: Option<String>,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub severity: Option<String>,
    /// Why it could not run, or what failed.
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub message: Option<String>,
}

/// A quality run to report, measured in the data plane.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QualityRunCreate {
    /// The contract version whose rules ran.
    pub contract_version: String,
    /// The Delta table version measured.
    #[serde(default, deserialize_with = "delta_version::optional")]
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    pub table_version: Option<u64>,
    /// When the measurement was taken (default: when reported).
    #[serde(default)]
    pub ran_at: Option<DateTime<Utc>>,
    pub results: Vec<QualityResult>,
}

/// A stored quality run.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QualityRun {
    pub id: i64,
    pub domain: String,
    pub product: String,
    pub contract_version: String,
    #[serde(default)]
    pub table_version: Option<u64>,
    pub ran_at: DateTime<Utc>,
    pub reported_by: String,
    pub health: Health,
    pub results: Vec<QualityResult>,
}

/// Health of the service, for `/ready`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    pub status: String,
    pub checks: BTreeMap<String, String>,
}

// ---------------------------------------------------------------- governance

/// Where an access request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccessRequestStatus {
    Pending,
    Approved,
    Denied,
}

impl AccessRequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "approved" => Some(Self::Approved),
            "denied" => Some(Self::Denied),
            _ => None,
        }
    }
}

/// A request for access to a product's data.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessRequestCreate {
    /// The purpose the data is for; the grant will hold for this purpose only.
    #[schema(min_length = 1, max_length = 64)]
    pub purpose: String,
    #[schema(min_length = 1, max_length = 4000)]
    pub justification: String,
}

/// An owner's approval: it becomes a grant to the requester for the request's purpose.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessApproval {
    /// When the grant ends (none: until revoked).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub note: Option<String>,
}

/// An owner's refusal.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessDenial {
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccessRequest {
    pub id: i64,
    pub domain: String,
    pub product: String,
    pub requester: String,
    pub purpose: String,
    pub justification: String,
    pub status: AccessRequestStatus,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub decided_by: Option<String>,
    #[serde(default)]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// The grant an approval created.
    #[serde(default)]
    pub grant_name: Option<String>,
}

/// What a gateway reports after each bundle it was offered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayReport {
    /// The bundle it serves (0 and "" before its first).
    pub version: i64,
    pub hash: String,
    /// Set when it refused the last bundle offered (NACK): which, and why.
    #[serde(default)]
    pub rejected_version: Option<i64>,
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub error: Option<String>,
    /// Products whose Delta table this gateway found no longer matching their
    /// contract, as of this report (the whole list: an empty one clears it).
    #[serde(default)]
    #[schema(max_items = 10000)]
    pub drift: Vec<Drift>,
}

/// Delta table versions (and major versions) as clients send them: the Delta
/// log counts versions in an `i64`, so larger numbers are refused rather than
/// stored wrapped.
mod delta_version {
    use serde::{Deserialize, Deserializer};

    const MAX: u64 = i64::MAX as u64;

    fn check<E: serde::de::Error>(v: u64) -> Result<u64, E> {
        if v > MAX {
            Err(E::custom(format!("a Delta version is at most {MAX}, not {v}")))
        } else {
            Ok(v)
        }
    }

    pub fn one<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        check(u64::deserialize(d)?)
    }

    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Option::<u64>::deserialize(d)?.map(check).transpose()
    }

    /// A major version: 1 to `i32::MAX` (what the catalog stores).
    pub fn major<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let v = u32::deserialize(d)?;
        if v == 0 || i32::try_from(v).is_err() {
            return Err(serde::de::Error::custom(format!(
                "a major version is 1 to {}, not {v}",
                i32::MAX
            )));
        }
        Ok(v)
    }
}

/// A product's table that no longer matches its contract, as a gateway found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Drift {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub domain: String,
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub product: String,
    #[serde(deserialize_with = "delta_version::major")]
    #[schema(minimum = 1, maximum = 2_147_483_647)]
    pub major_version: u32,
    /// The Delta version found not matching.
    #[serde(deserialize_with = "delta_version::one")]
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    pub table_version: u64,
    /// The version served instead (the last that matched), if any: only when
    /// a contract column was dropped or retyped; new columns are simply not served.
    #[serde(default, deserialize_with = "delta_version::optional")]
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    pub serving_version: Option<u64>,
    /// What does not match, as `verify` reports it.
    #[schema(max_items = 1000)]
    pub mismatches: Vec<Mismatch>,
}

/// A gateway's bundle as the catalog last heard of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GatewayState {
    /// Serving the catalog's current bundle.
    Synced,
    /// Serving an older bundle, or silent for too long.
    Stale,
    /// Refused the last bundle offered; serving its previous one.
    Nacked,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GatewayStatus {
    pub name: String,
    pub state: GatewayState,
    pub version: i64,
    pub hash: String,
    #[serde(default)]
    pub rejected_version: Option<i64>,
    #[serde(default)]
    pub error: Option<String>,
    /// Products it found drifting from their contract.
    #[serde(default)]
    pub drift: Vec<Drift>,
    pub reported_at: DateTime<Utc>,
}

/// One query, as the gateway that ran it recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    pub query_id: String,
    pub principal: String,
    /// `http`, `postgres` or `flight`.
    pub protocol: String,
    /// The purpose the query counted with.
    #[serde(default)]
    pub purpose: Option<String>,
    /// A purpose declared but refused (the principal may not declare it).
    #[serde(default)]
    pub refused_purpose: Option<String>,
    #[schema(max_length = 262144)]
    pub sql: String,
    /// Products read, as `domain.product`.
    #[serde(default)]
    pub products: Vec<String>,
    /// Columns read, as `domain.table.column`.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Masks applied, as `mask:domain.table.column`.
    #[serde(default)]
    pub masks: Vec<String>,
    /// Row filters applied, as `filter:domain.table`.
    #[serde(default)]
    pub filters: Vec<String>,
    pub rows: u64,
    pub bytes: u64,
    pub duration_ms: u64,
    pub bundle_version: i64,
    /// `ok`, or the error's SQLSTATE.
    pub outcome: String,
    #[serde(default)]
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

/// A batch of audit records from one gateway.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditBatch {
    #[schema(min_length = 1, max_length = 128)]
    pub gateway: String,
    /// At most 10,000 records (and the request body limit).
    pub records: Vec<AuditRecord>,
}

/// A stored audit record, as product owners read their products' usage.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsageRecord {
    pub id: i64,
    pub gateway: String,
    pub record: AuditRecord,
}
