//! The bundle in force: checked and compiled before it is swapped in whole,
//! confirmed by the catalog (the `max_staleness` clock), and the API keys it
//! carries.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tessera_contracts::api::Drift;
use tessera_contracts::bundle::{Bundle, BundleError};
use tokio::sync::watch;

use super::{Engine, Principal};
use crate::error::QueryError;
use crate::served::Served;

/// A bundle checked and indexed for serving.
#[derive(Debug)]
pub(super) struct Compiled {
    pub(super) bundle: Bundle,
    /// Key id -> index of its principal.
    pub(super) keys: HashMap<String, usize>,
    /// Each port's contract as served, by table location.
    pub(super) served: HashMap<String, Arc<Served>>,
    /// The `hash` mask's key.
    pub(super) mask_key: Vec<u8>,
    /// The issuers' keys the bundle carries.
    pub(super) issuer_keys: super::tokens::BundleKeys,
}

/// Checks that every row filter of a bundle parses and names only columns of
/// its product's ports (where the contract lists them): a bundle that fails is
/// refused whole and the previous one stays in force.
fn compile_policies(content: &tessera_contracts::bundle::BundleContent) -> Result<(), BundleError> {
    for filter in &content.row_filters {
        let fail = |e: String| BundleError::Compile(format!("row filter {}: {e}", filter.name));
        let parsed = tessera_policy::parse(&filter.expression).map_err(fail)?;
        let product = content
            .products
            .iter()
            .find(|p| p.domain == filter.domain && p.name == filter.product);
        for port in product.map(|p| p.output_ports.as_slice()).unwrap_or_default() {
            if port.columns.is_empty() {
                continue;
            }
            for column in tessera_policy::columns(&parsed) {
                if !port.columns.iter().any(|c| c.name == column) {
                    return Err(fail(format!(
                        "major version {} of {}.{} has no column {column:?}",
                        port.major_version, filter.domain, filter.product
                    )));
                }
            }
        }
    }
    Ok(())
}

impl Compiled {
    pub(super) fn new(bundle: Bundle) -> Result<Self, BundleError> {
        bundle.check()?;
        compile_policies(&bundle.content)?;
        let mut keys = HashMap::new();
        for (i, p) in bundle.content.principals.iter().enumerate() {
            for k in &p.keys {
                keys.insert(k.id.clone(), i);
            }
        }
        let served = bundle
            .content
            .products
            .iter()
            .flat_map(|p| p.output_ports.iter().map(move |port| (p, port)))
            .filter_map(|(p, port)| Some((port.location.clone(), Arc::new(Served::of(&p.domain, &p.name, port)?))))
            .collect();
        let mask_key = bundle.content.mask_key.bytes();
        let issuer_keys = super::tokens::BundleKeys::of(&bundle.content.issuers);
        Ok(Self {
            bundle,
            keys,
            served,
            mask_key,
            issuer_keys,
        })
    }
}

impl Engine {
    /// Checks a bundle just received from the catalog and swaps it in whole;
    /// the previous one stays on error.
    pub fn install(&self, bundle: Bundle) -> Result<(), BundleError> {
        self.install_confirmed_at(bundle, std::time::SystemTime::now())
    }

    /// Installs a bundle the catalog confirmed at `confirmed_at` (a saved one:
    /// its age counts against `max_staleness` from then).
    pub fn install_confirmed_at(&self, bundle: Bundle, confirmed_at: std::time::SystemTime) -> Result<(), BundleError> {
        let version = bundle.version;
        let compiled = Arc::new(Compiled::new(bundle)?);
        let mut current = self
            .inner
            .bundle
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = Some(compiled);
        *self
            .inner
            .confirmed
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(confirmed_at);
        drop(current);
        self.inner.installed.send_replace(version);
        Ok(())
    }

    pub(super) fn current(&self) -> Result<Arc<Compiled>, QueryError> {
        let compiled = self
            .inner
            .bundle
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or(QueryError::NotReady)?;
        if let Some(max) = self.inner.max_staleness {
            let age = self
                .confirmed_at()
                .and_then(|at| std::time::SystemTime::now().duration_since(at).ok())
                .unwrap_or(Duration::MAX);
            if age > max {
                return Err(QueryError::Stale {
                    version: compiled.bundle.version,
                    age_secs: age.as_secs(),
                    max_secs: max.as_secs(),
                });
            }
        }
        Ok(compiled)
    }

    /// Whether queries can be answered now: a bundle is installed and, with a
    /// `max_staleness`, confirmed recently enough; its version if so.
    pub fn ready(&self) -> Result<i64, QueryError> {
        self.current().map(|c| c.bundle.version)
    }

    /// Records that the catalog confirmed the bundle in force at `at` (the
    /// source of the `max_staleness` clock; restored from disk after a restart).
    pub fn confirm(&self, at: std::time::SystemTime) {
        let mut confirmed = self
            .inner
            .confirmed
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if confirmed.is_none_or(|c| c < at) {
            *confirmed = Some(at);
        }
    }

    /// When the catalog last confirmed the bundle in force.
    pub fn confirmed_at(&self) -> Option<std::time::SystemTime> {
        *self
            .inner
            .confirmed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The bundle in force, whatever its age (for saving it and reporting it).
    pub fn bundle(&self) -> Option<Bundle> {
        self.inner
            .bundle
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|c| c.bundle.clone())
    }

    /// The version of the bundle in force, 0 before the first.
    pub fn bundle_version(&self) -> i64 {
        *self.inner.installed.borrow()
    }

    /// The hash of the bundle in force.
    pub fn bundle_hash(&self) -> Option<String> {
        self.bundle().map(|b| b.hash)
    }

    /// Follows the installed bundle version.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.inner.installed.subscribe()
    }

    /// The principal holding a presented API key, or standing for a
    /// presented OpenID Connect token (see [`super::tokens`]).
    pub fn authenticate(&self, key: &str) -> Result<Principal, QueryError> {
        let compiled = self.current()?;
        if tessera_contracts::tokens::looks_like_jwt(key) {
            return self.authenticate_token(&compiled, key);
        }
        let parsed = tessera_contracts::keys::parse(key).ok_or(QueryError::Unauthenticated)?;
        let index = *compiled.keys.get(parsed.id).ok_or(QueryError::Unauthenticated)?;
        let principal = &compiled.bundle.content.principals[index];
        let now = Utc::now();
        let key = principal
            .keys
            .iter()
            .find(|k| {
                k.id == parsed.id
                    && k.expires_at.is_none_or(|at| at > now)
                    && tessera_contracts::keys::verify(parsed.secret, &k.secret_hash)
            })
            .ok_or(QueryError::Unauthenticated)?;
        Ok(Principal {
            name: principal.name.clone(),
            admin: principal.admin,
            roles: principal.roles.clone(),
            attributes: principal.attributes.clone(),
            teams: principal.teams.clone(),
            credential_expires_at: key.expires_at,
            token: None,
        })
    }

    /// The products this gateway found drifting from their contracts (among
    /// those of the bundle in force), for its reports to the catalog.
    pub fn drift(&self) -> Vec<Drift> {
        let live: std::collections::HashSet<String> = self
            .inner
            .bundle
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|c| c.served.keys().cloned().collect())
            .unwrap_or_default();
        self.inner.tables.drifts().current(|location| live.contains(location))
    }

    /// Moves whenever the drift found changes (the link reports at once).
    pub fn drift_changes(&self) -> watch::Receiver<u64> {
        self.inner.tables.drifts().subscribe()
    }
}
