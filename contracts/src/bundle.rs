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

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::api::{Attributes, Visibility};
use crate::keys;
use crate::lifecycle::ProductStatus;
use crate::policy::{Asker, GrantSpec, MaskSpec, PolicyColumn, RowFilterSpec, TablePolicy, table_policy};

/// The bundle format this build reads and writes (2: policies and port columns).
pub const FORMAT: u32 = 2;

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
}

/// A data product as gateways see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BundlePort {
    pub major_version: u32,
    pub location: String,
    /// The columns of the latest contract of this major version, with their
    /// classifications (what masks select on); empty before any contract.
    #[serde(default)]
    pub columns: Vec<PolicyColumn>,
}

/// A principal as gateways see it: who it is, what it belongs to, its live keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BundlePrincipal {
    pub name: String,
    pub admin: bool,
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

impl Bundle {
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
    }

    /// The principal holding a presented API key, if the key is live at `now`.
    pub fn authenticate(&self, presented: &str, now: DateTime<Utc>) -> Option<&BundlePrincipal> {
        let parsed = keys::parse(presented)?;
        self.principals.iter().find(|p| {
            p.keys.iter().any(|k| {
                k.id == parsed.id
                    && k.expires_at.is_none_or(|at| at > now)
                    && keys::verify(parsed.secret, &k.secret_hash)
            })
        })
    }

    pub fn principal(&self, name: &str) -> Option<&BundlePrincipal> {
        self.principals
            .binary_search_by(|p| p.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.principals[i])
    }

    /// The tables of a session for `asker` at `now`, with their policies.
    ///
    /// A product is served while it is published, or deprecated up to its sunset
    /// date; a draft only to its owners; a retired one to no one. Its data is in
    /// the session of admins, of its owners (members of its team or of its
    /// domain's team), and of principals holding a live grant for the query's
    /// purpose (see [`crate::policy`]).
    pub fn tables_for<'a>(&'a self, asker: &Asker<'_>, now: DateTime<Utc>) -> Vec<TableEntry<'a>> {
        let mut out = Vec::new();
        for product in &self.products {
            if !self.may_query(asker, product, now) {
                continue;
            }
            let owner = owns(asker.teams, product);
            let current = product.output_ports.iter().map(|p| p.major_version).max();
            for port in &product.output_ports {
                let table = if Some(port.major_version) == current {
                    product.name.clone()
                } else {
                    format!("{}__v{}", product.name, port.major_version)
                };
                let policy = table_policy(
                    asker,
                    owner,
                    &product.domain,
                    &product.name,
                    &product.tags,
                    &port.columns,
                    &self.masks,
                    &self.row_filters,
                );
                out.push(TableEntry {
                    domain: &product.domain,
                    table,
                    product,
                    major_version: port.major_version,
                    location: &port.location,
                    policy,
                });
            }
        }
        out
    }

    /// Tables by domain, for building a session's schemas.
    pub fn schemas_for<'a>(&'a self, asker: &Asker<'_>, now: DateTime<Utc>) -> BTreeMap<&'a str, Vec<TableEntry<'a>>> {
        let mut schemas: BTreeMap<&str, Vec<TableEntry<'a>>> = BTreeMap::new();
        for entry in self.tables_for(asker, now) {
            schemas.entry(entry.domain).or_default().push(entry);
        }
        schemas
    }

    /// Whether `asker` may query `product` at `now` (see [`BundleContent::tables_for`]).
    pub fn may_query(&self, asker: &Asker<'_>, product: &BundleProduct, now: DateTime<Utc>) -> bool {
        let owner = asker.admin || owns(asker.teams, product);
        let served = match product.status {
            ProductStatus::Draft => owner,
            ProductStatus::Published => true,
            ProductStatus::Deprecated => product.sunset_date.is_none_or(|sunset| now.date_naive() <= sunset),
            ProductStatus::Retired => false,
        };
        served
            && (owner
                || self
                    .grants
                    .iter()
                    .any(|g| g.gives(asker, &product.domain, &product.name, &product.tags, now, false)))
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

fn owns(teams: &[String], product: &BundleProduct) -> bool {
    teams
        .iter()
        .any(|t| *t == product.owner_team || *t == product.domain_owner_team)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Subject, Target};

    fn product(name: &str, status: ProductStatus, visibility: Visibility, majors: &[u32]) -> BundleProduct {
        BundleProduct {
            domain: "sales".into(),
            name: name.into(),
            owner_team: "sales_team".into(),
            domain_owner_team: "sales_team".into(),
            visibility,
            status,
            sunset_date: None,
            tags: vec![],
            output_ports: majors
                .iter()
                .map(|m| BundlePort {
                    major_version: *m,
                    location: format!("/lake/sales/{name}/v{m}"),
                    columns: vec![],
                })
                .collect(),
        }
    }

    fn principal(name: &str, teams: &[&str]) -> BundlePrincipal {
        BundlePrincipal {
            name: name.into(),
            admin: false,
            attributes: Attributes::default(),
            teams: teams.iter().map(|t| (*t).into()).collect(),
            keys: vec![],
        }
    }

    fn names(content: &BundleContent, p: &BundlePrincipal, now: DateTime<Utc>) -> Vec<String> {
        content
            .tables_for(&p.asker(None), now)
            .iter()
            .map(|t| format!("{}.{}", t.domain, t.table))
            .collect()
    }

    #[test]
    fn sessions_hold_what_the_principal_may_query() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let today = now.date_naive();
        let mut deprecated = product("old", ProductStatus::Deprecated, Visibility::Discoverable, &[1]);
        deprecated.sunset_date = Some(today);
        let mut gone = product("gone", ProductStatus::Deprecated, Visibility::Discoverable, &[1]);
        gone.sunset_date = today.pred_opt();
        let mut content = BundleContent {
            products: vec![
                product("orders", ProductStatus::Published, Visibility::Discoverable, &[1, 2]),
                product("secret", ProductStatus::Published, Visibility::Restricted, &[1]),
                product("wip", ProductStatus::Draft, Visibility::Discoverable, &[1]),
                product("dead", ProductStatus::Retired, Visibility::Discoverable, &[1]),
                deprecated,
                gone,
            ],
            principals: vec![],
            grants: vec![GrantSpec {
                name: "everyone-sales".into(),
                subject: Subject::Group { name: "staff".into() },
                target: Target::Domain { domain: "sales".into() },
                purposes: vec![],
                expires_at: None,
            }],
            ..BundleContent::default()
        };
        content.canonicalize();
        let analyst = principal("ana", &["staff"]);
        assert_eq!(
            names(&content, &analyst, now),
            ["sales.old", "sales.orders__v1", "sales.orders", "sales.secret"]
        );
        let stranger = principal("sam", &[]);
        assert!(names(&content, &stranger, now).is_empty(), "no grant, no data");
        let owner = principal("olga", &["sales_team"]);
        assert_eq!(
            names(&content, &owner, now),
            [
                "sales.old",
                "sales.orders__v1",
                "sales.orders",
                "sales.secret",
                "sales.wip"
            ]
        );
    }

    #[test]
    fn hash_covers_content_and_check_finds_tampering() {
        let now = Utc::now();
        let mut content = BundleContent::default();
        content
            .products
            .push(product("b", ProductStatus::Published, Visibility::Discoverable, &[1]));
        content
            .products
            .push(product("a", ProductStatus::Published, Visibility::Discoverable, &[1]));
        content.canonicalize();
        let bundle = Bundle::new(7, content.clone(), now);
        assert_eq!(bundle.check(), Ok(()));
        assert_eq!(
            Bundle::new(8, content, now).hash,
            bundle.hash,
            "the version is not content"
        );

        let mut tampered = bundle.clone();
        tampered.content.products[0].visibility = Visibility::Restricted;
        assert!(matches!(tampered.check(), Err(BundleError::Hash { .. })));

        let mut unordered = bundle.clone();
        unordered.content.products.swap(0, 1);
        unordered.hash = unordered.content.hash();
        assert!(matches!(unordered.check(), Err(BundleError::Order(_))));

        let mut future = bundle;
        future.format = FORMAT + 1;
        assert_eq!(future.check(), Err(BundleError::Format(FORMAT + 1)));
    }

    #[test]
    fn keys_authenticate_until_they_expire() {
        let now = Utc::now();
        let secret = "d".repeat(64);
        let mut p = principal("ana", &[]);
        p.keys.push(BundleKey {
            id: "a".repeat(12),
            secret_hash: keys::hash_secret(&secret),
            expires_at: Some(now + chrono::Duration::hours(1)),
        });
        let content = BundleContent {
            principals: vec![p],
            ..BundleContent::default()
        };
        let key = format!("tsk_{}_{secret}", "a".repeat(12));
        assert_eq!(content.authenticate(&key, now).map(|p| p.name.as_str()), Some("ana"));
        assert!(content.authenticate(&key, now + chrono::Duration::hours(2)).is_none());
        assert!(
            content
                .authenticate(&format!("tsk_{}_{}", "a".repeat(12), "e".repeat(64)), now)
                .is_none()
        );
    }
}
