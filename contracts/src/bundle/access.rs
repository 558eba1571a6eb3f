//! What a bundle grants: the principal a key stands for, the tables of a
//! principal's session with their policies, and when that answer next changes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{BundleContent, BundlePrincipal, BundleProduct, TableEntry};
use crate::keys;
use crate::lifecycle::ProductStatus;
use crate::policy::{Asker, table_policy};

impl BundleContent {
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

    /// The principal an OpenID Connect token stands for: the bundle's, with
    /// the attributes the issuer's claims set, or, for a subject the catalog
    /// does not have yet, a claims-only principal (no admin, no team; grants
    /// to its groups and attribute values apply). It holds no key.
    pub fn token_principal(&self, identity: &crate::tokens::TokenIdentity) -> BundlePrincipal {
        let stored = self.principal(&identity.name);
        BundlePrincipal {
            name: identity.name.clone(),
            admin: stored.is_some_and(|p| p.admin),
            roles: stored.map(|p| p.roles.clone()).unwrap_or_default(),
            attributes: identity.attributes_over(stored.map(|p| &p.attributes)),
            teams: stored.map(|p| p.teams.clone()).unwrap_or_default(),
            keys: Vec::new(),
        }
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
            for port in &product.output_ports {
                let table = product.table_name(port.major_version);
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

fn owns(teams: &[String], product: &BundleProduct) -> bool {
    teams
        .iter()
        .any(|t| *t == product.owner_team || *t == product.domain_owner_team)
}

/// Why a product that a principal sees in the catalog is not in its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unqueryable {
    /// No grant covers the principal for this product.
    NoGrant,
    /// Grants cover it only for these purposes, and the query declares none.
    PurposeRequired(Vec<String>),
    /// The declared purpose is not one the principal holds.
    PurposeNotHeld(String),
    /// Grants cover it only for these purposes, not the declared one.
    OtherPurposes { declared: String, needed: Vec<String> },
}

impl std::fmt::Display for Unqueryable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoGrant => f.write_str("you hold no grant on it"),
            Self::PurposeRequired(needed) => write!(
                f,
                "your grants on it count only for the purpose {}, and the query declares none",
                needed.join(" or ")
            ),
            Self::PurposeNotHeld(p) => write!(f, "you may not declare the purpose {p:?}"),
            Self::OtherPurposes { declared, needed } => write!(
                f,
                "your grants on it count for the purpose {}, not {declared:?}",
                needed.join(" or ")
            ),
        }
    }
}

impl BundleContent {
    /// The products `asker` sees in the catalog (discoverable ones, and
    /// restricted ones it holds a grant on for some purpose) and that are served
    /// now, but that its session lacks: each with why. `refused` is a purpose
    /// the query declared that the principal may not declare (it counts as none).
    pub fn unqueryable<'a>(
        &'a self,
        asker: &Asker<'_>,
        refused: Option<&str>,
        now: DateTime<Utc>,
    ) -> Vec<(&'a BundleProduct, Unqueryable)> {
        let mut out = Vec::new();
        for product in &self.products {
            let served = match product.status {
                ProductStatus::Published => true,
                ProductStatus::Deprecated => product.sunset_date.is_none_or(|sunset| now.date_naive() <= sunset),
                ProductStatus::Draft | ProductStatus::Retired => false,
            };
            if !served || self.may_query(asker, product, now) {
                continue;
            }
            let grants: Vec<_> = self
                .grants
                .iter()
                .filter(|g| g.gives(asker, &product.domain, &product.name, &product.tags, now, true))
                .collect();
            if grants.is_empty() && product.visibility == crate::api::Visibility::Restricted {
                // Invisible without a grant: it does not exist for the asker.
                continue;
            }
            let mut needed: Vec<String> = grants.iter().flat_map(|g| g.purposes.iter().cloned()).collect();
            needed.sort();
            needed.dedup();
            let reason = match (refused, asker.purpose) {
                _ if grants.is_empty() => Unqueryable::NoGrant,
                (Some(refused), _) => Unqueryable::PurposeNotHeld(refused.to_string()),
                (None, None) => Unqueryable::PurposeRequired(needed),
                (None, Some(declared)) => Unqueryable::OtherPurposes {
                    declared: declared.to_string(),
                    needed,
                },
            };
            out.push((product, reason));
        }
        out
    }

    /// The first instant after `now` at which what `asker`'s session holds may
    /// change without a new bundle: its key's expiry (`key_expires_at`), a
    /// grant of its expiring, a deprecated product reaching the end of its
    /// sunset date. A session built now is good until then.
    pub fn valid_until(
        &self,
        asker: &Asker<'_>,
        key_expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let grants = self
            .grants
            .iter()
            .filter(|g| g.subject.matches(asker))
            .filter_map(|g| g.expires_at);
        let sunsets = self
            .products
            .iter()
            .filter(|p| p.status == ProductStatus::Deprecated)
            .filter_map(|p| p.sunset_date?.succ_opt()?.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc());
        key_expires_at
            .into_iter()
            .chain(grants)
            .chain(sunsets)
            .filter(|t| *t > now)
            .min()
    }
}
