//! The catalog's version, its watch, the change log, and the policy bundle
//! gateways build their sessions from.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use tessera_contracts::api::{CatalogVersion, Change, ContractVersion, Page};
use tessera_contracts::bundle::{Bundle, BundleContent, BundleKey, BundlePrincipal, BundleProduct, MaskKey};

use super::governance::{bundle_policies, bundle_ports};
use super::validate::page_limit;
use super::{Catalog, Error, Result};
use crate::authz::Caller;
use crate::store::Snapshot;

/// Longest a watch may wait before answering with the unchanged version.
pub const MAX_WATCH: Duration = Duration::from_secs(25);

/// Counts a watch as parked while it lives.
struct Parked<'a>(&'a AtomicUsize);

impl<'a> Parked<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Catalog {
    pub async fn version(&self) -> Result<CatalogVersion> {
        Ok(CatalogVersion {
            version: self.store.version().await?,
        })
    }

    /// Long-poll: answers as soon as the version exceeds `after`, or at the timeout
    /// with the unchanged version. Polls the database once a second as well, so a
    /// change committed by another catalog replica is seen too.
    pub async fn watch(&self, after: i64, timeout: Duration) -> Result<CatalogVersion> {
        if after < 0 {
            return Err(Error::field("after", "must be 0 or more"));
        }
        let deadline = tokio::time::Instant::now() + timeout.min(MAX_WATCH);
        let mut local = self.store.subscribe();
        let mut stopping = self.stopping.subscribe();
        loop {
            let version = self.store.version().await?;
            if version > after || tokio::time::Instant::now() >= deadline || *stopping.borrow() {
                return Ok(CatalogVersion { version });
            }
            let tick = (tokio::time::Instant::now() + Duration::from_secs(1)).min(deadline);
            let _parked = Parked::new(&self.parked);
            tokio::select! {
                _ = tokio::time::timeout_at(tick, local.wait_for(|v| *v > after)) => {}
                _ = stopping.wait_for(|s| *s) => {}
            }
        }
    }

    /// How many watches wait for a change at this moment (the `watches`
    /// metric; tests wait for one to park before they change something).
    pub fn parked_watches(&self) -> usize {
        self.parked.load(Ordering::SeqCst)
    }

    /// The policy bundle, for gateways' principals only (it holds every key's hash).
    pub async fn bundle(&self, caller: &Caller) -> Result<Bundle> {
        self.authz.require_gateway(caller)?;
        self.build_bundle().await
    }

    /// The bundle of the catalog's current version: read in one database
    /// snapshot, so its version labels exactly its content, and built once
    /// per version (gateways asking meanwhile wait for that one build and
    /// share it).
    pub async fn build_bundle(&self) -> Result<Bundle> {
        let mut built = self.bundle.lock().await;
        let version = self.store.version().await?;
        if let Some(bundle) = built.as_ref().filter(|b| b.version == version) {
            return Ok(Bundle::clone(bundle));
        }
        let started = std::time::Instant::now();
        let mut snapshot = self.store.snapshot().await?;
        if snapshot.mask_key.is_none() {
            // A catalog started before mask keys existed: the key is made once.
            self.ensure_mask_key().await?;
            snapshot = self.store.snapshot().await?;
        }
        let mask_key = snapshot
            .mask_key
            .take()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("the mask key was not stored")))?;
        let version = snapshot.version;
        let bundle = Arc::new(Bundle::new(version, bundle_content(snapshot, mask_key)?, Utc::now()));
        tracing::debug!(
            version,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "policy bundle built"
        );
        *built = Some(Arc::clone(&bundle));
        Ok(Bundle::clone(&bundle))
    }

    pub async fn changes(&self, caller: &Caller, after: i64, limit: Option<i64>) -> Result<Page<Change>> {
        self.authz.require_admin(caller)?;
        if after < 0 {
            return Err(Error::field("after", "must be 0 or more"));
        }
        let limit = page_limit(limit)?;
        let mut items = self.store.changes(after, limit + 1).await?;
        let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        // The cursor of the change log is simply the last sequence number (`after`).
        let next_cursor = if more {
            items.last().map(|c| c.seq.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}

/// A bundle's content, from one snapshot of the catalog.
fn bundle_content(snapshot: Snapshot, mask_key: MaskKey) -> Result<BundleContent> {
    let Snapshot {
        version: _,
        mask_key: _,
        domains,
        products,
        contracts,
        memberships,
        principals,
        keys: live_keys,
        policies,
        issuers,
    } = snapshot;
    let domains: BTreeMap<String, String> = domains.into_iter().map(|d| (d.name, d.owner_team)).collect();
    let mut contracts_of: BTreeMap<(String, String), Vec<ContractVersion>> = BTreeMap::new();
    for contract in contracts {
        contracts_of
            .entry((contract.domain.clone(), contract.product.clone()))
            .or_default()
            .push(contract);
    }
    let products = products
        .into_iter()
        .map(|p| {
            let contracts = contracts_of
                .get(&(p.domain.clone(), p.name.clone()))
                .map_or(&[][..], Vec::as_slice);
            BundleProduct {
                output_ports: bundle_ports(&p, contracts),
                domain_owner_team: domains.get(&p.domain).cloned().unwrap_or_default(),
                domain: p.domain,
                name: p.name,
                owner_team: p.owner_team,
                visibility: p.visibility,
                status: p.status,
                sunset_date: p.sunset_date,
                tags: p.tags,
            }
        })
        .collect();
    let mut teams: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (team, principal) in memberships {
        teams.entry(principal).or_default().push(team);
    }
    let mut keys: BTreeMap<String, Vec<BundleKey>> = BTreeMap::new();
    for stored in live_keys {
        keys.entry(stored.key.principal).or_default().push(BundleKey {
            id: stored.key.id,
            secret_hash: stored.secret_hash,
            expires_at: stored.key.expires_at,
        });
    }
    let principals = principals
        .into_iter()
        .map(|p| BundlePrincipal {
            teams: teams.remove(&p.name).unwrap_or_default(),
            keys: keys.remove(&p.name).unwrap_or_default(),
            name: p.name,
            admin: p.admin,
            roles: p.roles,
            attributes: p.attributes,
        })
        .collect();
    let (grants, masks, row_filters) = bundle_policies(policies)?;
    let mut content = BundleContent {
        products,
        principals,
        grants,
        masks,
        row_filters,
        mask_key,
        issuers,
    };
    content.canonicalize();
    Ok(content)
}
