//! The policy bundle: everything a gateway needs to serve queries, as one
//! versioned, content-hashed snapshot of the catalog.
//!
//! The catalog builds it (`GET /api/v1/bundle`); gateways fetch it whenever the
//! catalog's version moves, check it, and swap it in whole. Its `hash` covers the
//! content only, so a catalog change that does not concern gateways (a quality
//! run, a description) yields the same hash and no reload.
//!
//! Entitlements are evaluated here, once, for every gateway: [`BundleContent::tables_for`]
//! answers which SQL tables a principal's session holds, and with which masks
//! and row filters (see [`crate::policy`]).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

pub use self::access::Unqueryable;
pub use self::identity::{BundleIssuer, ClaimMapping, MaskKey};
use crate::api::{Attributes, Visibility};
use crate::lifecycle::ProductStatus;
use crate::odcs::SchemaObject;
use crate::policy::{Asker, GrantSpec, MaskSpec, PolicyColumn, RowFilterSpec, TablePolicy};

/// The bundle format this build reads and writes (3: the mesh's mask key, each
/// port's contract schema, and token issuers; 2 had policies and port columns).
/// A gateway refuses any other format (NACK) rather than misread it.
pub const FORMAT: u32 = 3;

/// A versioned, content-hashed snapshot of what gateways enforce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Bundle {
    /// The bundle format; a gateway refuses a format it does not know.
    pub format: u32,
    /// The catalog version the snapshot was taken at.
    pub version: i64,
    /// Lower-case hex SHA-256 of the canonical JSON of `content`.
    pub hash: String,
    pub generated_at: DateTime<Utc>,
    pub content: BundleContent,
}

/// What a bundle holds, in a canonical order (sorted by name), so that equal
/// content always hashes the same.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BundleContent {
    pub products: Vec<BundleProduct>,
    pub principals: Vec<BundlePrincipal>,
    #[serde(default)]
    pub grants: Vec<GrantSpec>,
    #[serde(default)]
    pub masks: Vec<MaskSpec>,
    #[serde(default)]
    pub row_filters: Vec<RowFilterSpec>,
    /// The mesh's secret key for `hash` masks (HMAC-SHA-256): only gateways
    /// get it, in the bundle.
    #[serde(default)]
    pub mask_key: MaskKey,
    /// The OpenID Connect issuers whose tokens gateways accept, each with its
    /// key set, so that gateways verify tokens offline.
    #[serde(default)]
    pub issuers: Vec<BundleIssuer>,
}

/// A data product as gateways see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BundleProduct {
    pub domain: String,
    pub name: String,
    pub owner_team: String,
    /// The owning team of the product's domain: its members own the product too.
    pub domain_owner_team: String,
    pub visibility: Visibility,
    pub status: ProductStatus,
    #[serde(default)]
    pub sunset_date: Option<NaiveDate>,
    pub tags: Vec<String>,
    /// One Delta table per major version.
    pub output_ports: Vec<BundlePort>,
}

/// The Delta table of one major version, with its contract's columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BundlePort {
    pub major_version: u32,
    /// The table's absolute URL.
    pub location: String,
    /// The columns of the latest contract of this major version, with their
    /// classifications (what masks select on); empty before any contract.
    #[serde(default)]
    pub columns: Vec<PolicyColumn>,
    /// The schema object of that contract, as gateways serve it: only its
    /// columns, in its order, and only while the table matches it. `None`
    /// before any contract (the table is served as it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub schema: Option<SchemaObject>,
}

/// A principal as gateways see it: who it is, what it belongs to, its live keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BundlePrincipal {
    pub name: String,
    pub admin: bool,
    /// Roles (`gateway`, `metrics`): a gateway's `/metrics` needs `metrics`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<crate::api::Role>,
    pub attributes: Attributes,
    pub teams: Vec<String>,
    /// Keys that are not revoked (expired ones are kept: expiry is checked at use).
    pub keys: Vec<BundleKey>,
}

/// An API key's public id and the SHA-256 of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BundleKey {
    pub id: String,
    pub secret_hash: String,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A SQL table of a principal's session: `<domain>.<table>` reading `location`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableEntry<'a> {
    pub domain: &'a str,
    /// `<product>` for the current major version, `<product>__v<N>` for older ones.
    pub table: String,
    pub product: &'a BundleProduct,
    pub major_version: u32,
    pub location: &'a str,
    /// The masks and row filters the principal's queries get on this table.
    pub policy: TablePolicy,
}

/// Why a bundle cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("bundle format {0} is not supported (this gateway reads format {FORMAT})")]
    Format(u32),
    #[error("bundle hash does not match its content (declared {declared}, computed {computed})")]
    Hash { declared: String, computed: String },
    #[error("bundle content is not in canonical order: {0}")]
    Order(String),
    #[error("bundle cannot be compiled: {0}")]
    Compile(String),
    #[error("the bundle is not a bundle: {0}")]
    Malformed(String),
}

impl Bundle {
    /// Reads a bundle as the catalog sent it, its format first: a bundle of
    /// another format is refused as such, not misread as this one.
    pub fn from_json(bytes: &[u8]) -> Result<Self, BundleError> {
        #[derive(Deserialize)]
        struct Format {
            format: u32,
        }
        let format = serde_json::from_slice::<Format>(bytes)
            .map_err(|e| BundleError::Malformed(e.to_string()))?
            .format;
        if format != FORMAT {
            return Err(BundleError::Format(format));
        }
        serde_json::from_slice(bytes).map_err(|e| BundleError::Malformed(e.to_string()))
    }

    /// Seals content taken at catalog `version`.
    pub fn new(version: i64, content: BundleContent, generated_at: DateTime<Utc>) -> Self {
        Self {
            format: FORMAT,
            version,
            hash: content.hash(),
            generated_at,
            content,
        }
    }

    /// Checks the format, the hash and the canonical order of a received bundle.
    pub fn check(&self) -> Result<(), BundleError> {
        if self.format != FORMAT {
            return Err(BundleError::Format(self.format));
        }
        let computed = self.content.hash();
        if computed != self.hash {
            return Err(BundleError::Hash {
                declared: self.hash.clone(),
                computed,
            });
        }
        let products = &self.content.products;
        if let Some(w) = products
            .windows(2)
            .find(|w| (&w[0].domain, &w[0].name) >= (&w[1].domain, &w[1].name))
        {
            return Err(BundleError::Order(format!(
                "product {}.{} listed before {}.{}",
                w[0].domain, w[0].name, w[1].domain, w[1].name
            )));
        }
        if let Some(w) = self.content.principals.windows(2).find(|w| w[0].name >= w[1].name) {
            return Err(BundleError::Order(format!(
                "principal {} listed before {}",
                w[0].name, w[1].name
            )));
        }
        let c = &self.content;
        let names = [
            ("grant", c.grants.iter().map(|g| g.name.as_str()).collect::<Vec<_>>()),
            ("mask", c.masks.iter().map(|m| m.name.as_str()).collect()),
            ("row filter", c.row_filters.iter().map(|f| f.name.as_str()).collect()),
        ];
        for (kind, names) in names {
            if let Some(w) = names.windows(2).find(|w| w[0] >= w[1]) {
                return Err(BundleError::Order(format!("{kind} {} listed before {}", w[0], w[1])));
            }
        }
        Ok(())
    }
}

impl BundleContent {
    /// Lower-case hex SHA-256 of the canonical JSON.
    pub fn hash(&self) -> String {
        // Serializing plain structs and vectors cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(json))
    }

    /// Sorts products and principals (and their lists) into canonical order.
    pub fn canonicalize(&mut self) {
        self.products
            .sort_by(|a, b| (&a.domain, &a.name).cmp(&(&b.domain, &b.name)));
        for p in &mut self.products {
            p.tags.sort();
            p.output_ports.sort_by_key(|port| port.major_version);
        }
        self.principals.sort_by(|a, b| a.name.cmp(&b.name));
        for p in &mut self.principals {
            p.teams.sort();
            p.keys.sort_by(|a, b| a.id.cmp(&b.id));
        }
        self.grants.sort_by(|a, b| a.name.cmp(&b.name));
        self.masks.sort_by(|a, b| a.name.cmp(&b.name));
        self.row_filters.sort_by(|a, b| a.name.cmp(&b.name));
        self.issuers.sort_by(|a, b| a.issuer.cmp(&b.issuer));
    }
}

impl BundleProduct {
    /// The SQL table name of a major version's port: `<product>` for the
    /// current (highest) major, `<product>__v<N>` for older ones.
    pub fn table_name(&self, major_version: u32) -> String {
        let current = self.output_ports.iter().map(|p| p.major_version).max();
        if Some(major_version) == current {
            self.name.clone()
        } else {
            format!("{}__v{major_version}", self.name)
        }
    }
}

impl BundlePrincipal {
    /// This principal asking, with a checked purpose.
    pub fn asker<'a>(&'a self, purpose: Option<&'a str>) -> Asker<'a> {
        Asker {
            name: &self.name,
            admin: self.admin,
            attributes: &self.attributes,
            teams: &self.teams,
            purpose,
        }
    }
}

mod access;
mod identity;
#[cfg(test)]
mod tests;
