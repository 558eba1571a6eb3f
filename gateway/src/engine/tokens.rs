//! OpenID Connect access tokens at the gateway, verified offline.
//!
//! Each issuer's keys come in two copies: the bundle's (as the catalog
//! fetched them, with when it first saw them) and the gateway's own, fetched
//! from the issuer directly every [`REFRESH_EVERY`] and when a token names a
//! key the copy in use lacks (at most once per [`UNKNOWN_KID_PAUSE`]). A token
//! is verified with the fresher copy: a key the issuer rotated out is refused
//! as soon as either copy has seen the rotation, and with the catalog and the
//! issuer both out of reach the bundle's copy still serves. A token whose key
//! neither copy knows is refused.
//!
//! A token's principal need not be in the bundle: a subject the catalog has
//! not seen yet gets a claims-only session (its attributes from the claims;
//! grants to its groups and attribute values apply). Its expiry is checked
//! at every statement, like an API key's.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tessera_contracts::bundle::BundleIssuer;
use tessera_contracts::tokens::{self, KeySet, TokenError, Unverified};

use super::bundle::Compiled;
use super::{Engine, Principal};
use crate::error::QueryError;

/// How often the gateway fetches each issuer's keys itself.
pub const REFRESH_EVERY: Duration = Duration::from_secs(300);
/// After a failed fetch, the next comes sooner.
const RETRY_EVERY: Duration = Duration::from_secs(15);
/// The least time between two fetches of one issuer's keys for unknown key ids.
pub const UNKNOWN_KID_PAUSE: Duration = Duration::from_secs(5);

/// The keys a bundle carries, parsed once when it is installed.
#[derive(Debug, Default)]
pub(super) struct BundleKeys(HashMap<String, KeySet>);

impl BundleKeys {
    pub(super) fn of(issuers: &[BundleIssuer]) -> Self {
        Self(
            issuers
                .iter()
                .map(|i| (i.issuer.clone(), KeySet::from_json(&i.jwks)))
                .collect(),
        )
    }
}

/// The gateway's own copies, fetched from the issuers.
#[derive(Debug, Default)]
pub(super) struct DirectKeys {
    copies: RwLock<HashMap<String, Direct>>,
    fetching: tokio::sync::Mutex<()>,
    client: reqwest::Client,
}

#[derive(Debug)]
struct Direct {
    keys: Option<KeySet>,
    /// When `keys` were fetched.
    fetched_at: DateTime<Utc>,
    /// The last attempt, whether it worked.
    tried: Instant,
}

impl DirectKeys {
    fn copies(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Direct>> {
        self.copies.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `issuer`'s keys were fetched (or tried) too lately to try again
    /// for an unknown key id.
    fn tried_lately(&self, issuer: &str) -> bool {
        self.copies()
            .get(issuer)
            .is_some_and(|d| d.tried.elapsed() < UNKNOWN_KID_PAUSE)
    }

    /// Fetches `issuer`'s keys; the failure, if any.
    async fn fetch(&self, issuer: &BundleIssuer) -> Result<(), String> {
        let fetched = async {
            let configured = Some(issuer.jwks_uri.as_str()).filter(|u| !u.is_empty());
            let uri = tessera_http::oidc::jwks_uri(&self.client, &issuer.issuer, configured).await?;
            tessera_http::oidc::key_set(&self.client, &uri).await
        }
        .await;
        let mut copies = self.copies.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        match fetched {
            Ok(jwks) => {
                copies.insert(
                    issuer.issuer.clone(),
                    Direct {
                        keys: Some(KeySet::from_json(&jwks)),
                        fetched_at: Utc::now(),
                        tried: now,
                    },
                );
                Ok(())
            }
            Err(e) => {
                copies
                    .entry(issuer.issuer.clone())
                    .and_modify(|d| d.tried = now)
                    .or_insert(Direct {
                        keys: None,
                        fetched_at: DateTime::<Utc>::MIN_UTC,
                        tried: now,
                    });
                Err(e)
            }
        }
    }
}

impl Engine {
    /// The principal a token stands for, verified with the fresher copy of
    /// its issuer's keys.
    pub(super) fn authenticate_token(&self, compiled: &Compiled, token: &str) -> Result<Principal, QueryError> {
        let refused = |e: TokenError| QueryError::TokenRefused(e.to_string());
        let seen = Unverified::parse(token).map_err(refused)?;
        let issuer = tokens::issuer_of(&compiled.bundle.content.issuers, &seen).map_err(refused)?;
        let identity = self
            .with_fresher_keys(compiled, issuer, |keys| issuer.verify(token, &seen, keys))
            .map_err(refused)?;
        let holder = compiled.bundle.content.token_principal(&identity);
        Ok(Principal {
            name: holder.name,
            admin: holder.admin,
            roles: holder.roles,
            attributes: holder.attributes,
            teams: holder.teams,
            credential_expires_at: Some(identity.expires_at),
            token: Some(Arc::new(identity)),
        })
    }

    fn with_fresher_keys<T>(
        &self,
        compiled: &Compiled,
        issuer: &BundleIssuer,
        use_keys: impl FnOnce(&KeySet) -> T,
    ) -> T {
        let empty = KeySet::default();
        let bundled = compiled.issuer_keys.0.get(&issuer.issuer).unwrap_or(&empty);
        let bundled_at = issuer.jwks_seen_at.unwrap_or(DateTime::<Utc>::MIN_UTC);
        let copies = self.inner.issuer_keys.copies();
        match copies.get(&issuer.issuer) {
            Some(Direct {
                keys: Some(keys),
                fetched_at,
                ..
            }) if *fetched_at > bundled_at => use_keys(keys),
            _ => use_keys(bundled),
        }
    }

    /// Before authenticating a presented secret: when it is a token naming a
    /// key the keys in use lack, fetches its issuer's keys (rate-limited), so
    /// that a rotation at the issuer is honoured at once.
    pub async fn prepare_credential(&self, secret: &str) {
        if !tokens::looks_like_jwt(secret) {
            return;
        }
        let (Ok(compiled), Ok(seen)) = (self.current(), Unverified::parse(secret)) else {
            return;
        };
        let Ok(issuer) = tokens::issuer_of(&compiled.bundle.content.issuers, &seen) else {
            return;
        };
        let known = self.with_fresher_keys(&compiled, issuer, |keys| keys.has(seen.kid.as_deref()));
        let direct = &self.inner.issuer_keys;
        if known || direct.tried_lately(&issuer.issuer) {
            return;
        }
        let _one = direct.fetching.lock().await;
        // Another caller may have fetched meanwhile.
        if direct.tried_lately(&issuer.issuer) {
            return;
        }
        if let Err(e) = direct.fetch(issuer).await {
            tracing::warn!(issuer = %issuer.issuer, error = %e, "cannot fetch the issuer's keys");
        }
    }

    /// Fetches the keys of the bundle's issuers for ever (run it as a task).
    pub async fn fetch_issuer_keys(self) {
        let mut installed = self.subscribe();
        loop {
            let issuers = self
                .current()
                .map(|c| c.bundle.content.issuers.clone())
                .unwrap_or_default();
            let mut failed = false;
            for issuer in &issuers {
                let direct = &self.inner.issuer_keys;
                let _one = direct.fetching.lock().await;
                if let Err(e) = direct.fetch(issuer).await {
                    tracing::warn!(issuer = %issuer.issuer, error = %e, "cannot fetch the issuer's keys");
                    failed = true;
                }
            }
            let pause = if failed { RETRY_EVERY } else { REFRESH_EVERY };
            // A bundle naming other issuers is looked at sooner.
            let known: Vec<String> = issuers.into_iter().map(|i| i.issuer).collect();
            let _ = tokio::time::timeout(pause, async {
                while installed.changed().await.is_ok() {
                    let now: Vec<String> = self
                        .current()
                        .map(|c| c.bundle.content.issuers.iter().map(|i| i.issuer.clone()).collect())
                        .unwrap_or_default();
                    if now != known {
                        return;
                    }
                }
                std::future::pending::<()>().await;
            })
            .await;
        }
    }
}
