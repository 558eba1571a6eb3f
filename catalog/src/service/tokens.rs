//! Callers authenticated by OpenID Connect access tokens, and the issuers'
//! keys kept in the store.

use std::sync::Arc;

use tessera_contracts::api::{Principal, PrincipalKind};
use tessera_contracts::tokens::{TokenError, TokenIdentity};

use super::{Catalog, Error, Result};
use crate::authz::Caller;
use crate::identity::{Identity, Provision, REFRESH_EVERY, RETRY_EVERY};
use crate::store::{NewPrincipal, StoreError};

impl Catalog {
    /// The same catalog accepting the tokens of `identity`'s issuers.
    pub fn with_identity(mut self, identity: Arc<Identity>) -> Self {
        self.identity = identity;
        self
    }

    pub fn identity(&self) -> &Arc<Identity> {
        &self.identity
    }

    /// Stores the configured issuers (with the keys held for them), dropping
    /// those no longer configured; logged only when something changed.
    pub async fn store_issuers(&self) -> Result<()> {
        self.store.put_issuers("system", &self.identity.issuers()).await?;
        Ok(())
    }

    /// Fetches the issuers' keys (all, or `only`'s) and stores them when they
    /// changed; the failures, one line each.
    pub async fn refresh_issuer_keys(&self, only: Option<&str>) -> Vec<String> {
        let (changed, mut failures) = self.identity.fetch(only).await;
        if changed {
            tracing::info!(issuer = only.unwrap_or("all"), "the issuers' signing keys changed");
            if let Err(e) = self.store_issuers().await {
                failures.push(format!("cannot store the issuers' keys: {e}"));
            }
        }
        failures
    }

    /// Keeps the issuers' keys fresh while the server runs.
    pub async fn fetch_issuer_keys(self) {
        loop {
            let failures = self.refresh_issuer_keys(None).await;
            for failure in &failures {
                tracing::warn!("{failure}");
            }
            let pause = if failures.is_empty() {
                REFRESH_EVERY
            } else {
                RETRY_EVERY
            };
            tokio::time::sleep(pause).await;
        }
    }

    /// The caller a token stands for; [`Error::Unauthenticated`] says why not.
    pub(super) async fn authenticate_token(&self, token: &str) -> Result<Caller> {
        let verified = match self.identity.verify(token) {
            // Maybe the issuer rotated its keys since the last fetch.
            Err(TokenError::UnknownKey { issuer, .. }) if self.identity.may_refetch(&issuer) => {
                for failure in self.refresh_issuer_keys(Some(&issuer)).await {
                    tracing::warn!("{failure}");
                }
                self.identity.verify(token)
            }
            other => other,
        };
        let (identity, provision) = verified.map_err(|e| Error::Unauthenticated(e.to_string()))?;
        let mut principal = match self.store.get_principal(&identity.name).await? {
            Some(principal) => principal,
            None if provision == Provision::Create => self.provision(&identity).await?,
            None => {
                return Err(Error::Unauthenticated(format!(
                    "the token stands for the principal {:?}, which the catalog does not have: an admin creates it",
                    identity.name
                )));
            }
        };
        principal.attributes = identity.attributes_over(Some(&principal.attributes));
        self.caller(principal).await
    }

    /// Creates the principal of a token seen for the first time.
    async fn provision(&self, identity: &TokenIdentity) -> Result<Principal> {
        // An address the catalog would refuse is left out rather than failing the sign-in.
        let email = identity.email.clone().filter(|e| {
            let mut errors = Vec::new();
            super::validate::check_email(&mut errors, Some(e));
            errors.is_empty()
        });
        let new = NewPrincipal {
            name: identity.name.clone(),
            kind: if identity.service {
                PrincipalKind::Service
            } else {
                PrincipalKind::User
            },
            display_name: identity
                .display_name
                .clone()
                .filter(|d| d.chars().count() <= 200)
                .unwrap_or_else(|| identity.name.clone()),
            email,
            admin: false,
            roles: Vec::new(),
            attributes: identity.attributes_over(None),
        };
        match self.store.create_principal(&identity.issuer, &new).await {
            Ok(principal) => {
                tracing::info!(principal = %principal.name, issuer = %identity.issuer, "principal created from a token");
                Ok(principal)
            }
            // Another request made it meanwhile.
            Err(StoreError::Conflict(_)) => self
                .store
                .get_principal(&identity.name)
                .await?
                .ok_or_else(|| Error::Unauthenticated("the token's principal could not be created".into())),
            Err(e) => Err(e.into()),
        }
    }
}
