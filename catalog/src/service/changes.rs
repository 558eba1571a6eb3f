//! The catalog's version, its watch, the change log, and the policy bundle
//! gateways build their sessions from.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use tessera_contracts::api::{CatalogVersion, Change, Domain, Page, Principal, Product};
use tessera_contracts::bundle::{Bundle, BundleContent, BundleKey, BundlePrincipal, BundleProduct};

use super::validate::{drain, page_limit};
use super::{Catalog, Error, Result};
use crate::authz::Caller;
use crate::store::{ProductQuery, ProductScope};

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

/// Reads of the catalog a bundle gets to find one version unchanged.
const CONSISTENT_TRIES: u32 = 3;

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

    /// The policy bundle, for gateways (admins only: it holds every key's hash).
    pub async fn bundle(&self, caller: &Caller) -> Result<Bundle> {
        self.authz.require_admin(caller)?;
        self.build_bundle().await
    }

    /// Reads everything, and reads again if the catalog's version moved
    /// meanwhile (every mutation moves it), for a snapshot of one version.
    ///
    /// Under steady writes that may never happen, and a bundle must still go
    /// out (the old loop kept gateways on an old bundle for as long as writes
    /// kept coming). After [`CONSISTENT_TRIES`] reads the last one is sent,
    /// labelled with the version read *before* it: it holds every change up
    /// to that version (all read after it) and perhaps some later ones; since
    /// the catalog is past that label, gateways fetch again at once, and a
    /// quiet moment gives them the exact snapshot.
    pub async fn build_bundle(&self) -> Result<Bundle> {
        let mut tries = 0;
        loop {
            let version = self.store.version().await?;
            let content = self.bundle_content().await?;
            tries += 1;
            if tries >= CONSISTENT_TRIES || self.store.version().await? == version {
                return Ok(Bundle::new(version, content, Utc::now()));
            }
        }
    }

    async fn bundle_content(&self) -> Result<BundleContent> {
        let domains: BTreeMap<String, String> = drain(
            |page| async move { self.store.list_domains(&page).await },
            |d: &Domain| d.name.clone(),
        )
        .await?
        .into_iter()
        .map(|d| (d.name, d.owner_team))
        .collect();
        let products = drain(
            |page| async move {
                self.store
                    .list_products(&ProductQuery::unfiltered(ProductScope::All, page))
                    .await
            },
            |p: &Product| format!("{}.{}", p.domain, p.name),
        )
        .await?;
        let mut bundle_products = Vec::with_capacity(products.len());
        for p in products {
            let output_ports = self.bundle_ports(&p).await?;
            bundle_products.push(BundleProduct {
                domain_owner_team: domains.get(&p.domain).cloned().unwrap_or_default(),
                domain: p.domain,
                name: p.name,
                owner_team: p.owner_team,
                visibility: p.visibility,
                status: p.status,
                sunset_date: p.sunset_date,
                tags: p.tags,
                output_ports,
            });
        }
        let mut teams: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (team, principal) in self.store.memberships().await? {
            teams.entry(principal).or_default().push(team);
        }
        let mut keys: BTreeMap<String, Vec<BundleKey>> = BTreeMap::new();
        for stored in self.store.live_keys().await? {
            keys.entry(stored.key.principal).or_default().push(BundleKey {
                id: stored.key.id,
                secret_hash: stored.secret_hash,
                expires_at: stored.key.expires_at,
            });
        }
        let principals = drain(
            |page| async move { self.store.list_principals(&page).await },
            |p: &Principal| p.name.clone(),
        )
        .await?
        .into_iter()
        .map(|p| BundlePrincipal {
            teams: teams.remove(&p.name).unwrap_or_default(),
            keys: keys.remove(&p.name).unwrap_or_default(),
            name: p.name,
            admin: p.admin,
            attributes: p.attributes,
        })
        .collect();
        let (grants, masks, row_filters) = self.bundle_policies().await?;
        let mut content = BundleContent {
            products: bundle_products,
            principals,
            grants,
            masks,
            row_filters,
            mask_key: self.mask_key().await?,
            // Token issuers come with the identity work.
            issuers: Vec::new(),
        };
        content.canonicalize();
        Ok(content)
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
