//! Principals and their API keys, the caller's own view, and the bootstrap admin.

use chrono::Utc;
use tessera_contracts::api::{
    ApiKey, ApiKeyCreate, ApiKeyCreated, FieldError, Page, Principal, PrincipalCreate, PrincipalKind, PrincipalUpdate,
    WhoAmI,
};

use super::validate::{check_email, check_len, check_name, finish, page};
use super::{Catalog, Error, Paging, Result};
use crate::authz::Caller;
use crate::keys;
use crate::store::{NewApiKey, NewPrincipal};

impl Catalog {
    pub async fn whoami(&self, caller: &Caller) -> Result<WhoAmI> {
        Ok(WhoAmI {
            principal: caller.principal.clone(),
            teams: caller.teams.clone(),
            owned_domains: self.store.owned_domains(caller.name()).await?,
        })
    }

    pub async fn create_principal(&self, caller: &Caller, body: PrincipalCreate) -> Result<Principal> {
        self.authz.require_admin(caller)?;
        let mut errors = Vec::new();
        if let Err(e) = check_name("name", &body.name) {
            errors.push(e);
        }
        check_len(&mut errors, "display_name", body.display_name.as_ref(), 200);
        check_email(&mut errors, body.email.as_ref());
        finish(errors)?;
        let new = NewPrincipal {
            display_name: body.display_name.unwrap_or_else(|| body.name.clone()),
            name: body.name,
            kind: body.kind,
            email: body.email,
            admin: body.admin,
            roles: body.roles,
            attributes: body.attributes,
        };
        Ok(self.store.create_principal(caller.name(), &new).await?)
    }

    pub async fn get_principal(&self, caller: &Caller, name: &str) -> Result<Principal> {
        self.authz.require_self_or_admin(caller, name)?;
        self.store
            .get_principal(name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("principal {name:?} not found")))
    }

    pub async fn list_principals(&self, caller: &Caller, paging: &Paging) -> Result<Page<Principal>> {
        self.authz.require_admin(caller)?;
        let request = paging.request()?;
        let rows = self.store.list_principals(&request).await?;
        Ok(page(rows, &request, |p| p.name.clone()))
    }

    pub async fn update_principal(
        &self,
        caller: &Caller,
        name: &str,
        if_match: Option<i64>,
        body: PrincipalUpdate,
    ) -> Result<Principal> {
        self.authz.require_admin(caller)?;
        let mut errors = Vec::new();
        check_len(&mut errors, "display_name", body.display_name.as_ref(), 200);
        check_email(&mut errors, body.email.as_ref());
        finish(errors)?;
        Ok(self
            .store
            .update_principal(caller.name(), name, if_match, &body)
            .await?)
    }

    pub async fn delete_principal(&self, caller: &Caller, name: &str, if_match: Option<i64>) -> Result<()> {
        self.authz.require_admin(caller)?;
        Ok(self.store.delete_principal(caller.name(), name, if_match).await?)
    }

    // ------------------------------------------------------------ API keys

    pub async fn create_api_key(&self, caller: &Caller, principal: &str, body: ApiKeyCreate) -> Result<ApiKeyCreated> {
        self.authz.require_self_or_admin(caller, principal)?;
        let mut errors = Vec::new();
        check_len(&mut errors, "description", body.description.as_ref(), 200);
        if body.expires_at.is_some_and(|at| at <= Utc::now()) {
            errors.push(FieldError {
                path: "expires_at".into(),
                message: "must be in the future".into(),
            });
        }
        finish(errors)?;
        let generated = keys::generate();
        let stored = self
            .store
            .create_api_key(
                caller.name(),
                &NewApiKey {
                    id: generated.id.clone(),
                    principal: principal.to_string(),
                    secret_hash: generated.secret_hash.clone(),
                    description: body.description.unwrap_or_default(),
                    expires_at: body.expires_at,
                },
            )
            .await?;
        Ok(ApiKeyCreated {
            key: generated.key,
            api_key: stored,
        })
    }

    pub async fn list_api_keys(&self, caller: &Caller, principal: &str, paging: &Paging) -> Result<Page<ApiKey>> {
        self.authz.require_self_or_admin(caller, principal)?;
        if self.store.get_principal(principal).await?.is_none() {
            return Err(Error::NotFound(format!("principal {principal:?} not found")));
        }
        let request = paging.request()?;
        let rows = self.store.list_api_keys(principal, &request).await?;
        Ok(page(rows, &request, |k| k.id.clone()))
    }

    pub async fn revoke_api_key(&self, caller: &Caller, principal: &str, id: &str) -> Result<ApiKey> {
        self.authz.require_self_or_admin(caller, principal)?;
        Ok(self.store.revoke_api_key(caller.name(), principal, id).await?)
    }

    /// Issues a key for `principal` on behalf of the platform's own process
    /// (`actor` names it in the change log), without a caller: for in-process
    /// tools such as the demo, like the bootstrap. Returns the full key.
    pub async fn issue_key(&self, actor: &str, principal: &str, description: &str) -> Result<String> {
        let generated = keys::generate();
        self.store
            .create_api_key(
                actor,
                &NewApiKey {
                    id: generated.id.clone(),
                    principal: principal.to_string(),
                    secret_hash: generated.secret_hash.clone(),
                    description: description.to_string(),
                    expires_at: None,
                },
            )
            .await?;
        Ok(generated.key)
    }

    /// Installs the first platform admin and its key, once. Returns the key when
    /// it was generated here (and must be shown), `None` when nothing was done or
    /// the key came from the configuration.
    pub async fn bootstrap(&self, configured: Option<&str>) -> anyhow::Result<Option<String>> {
        if self.store.admin_exists().await? {
            return Ok(None);
        }
        let (key, generated) = match configured {
            Some(key) => {
                let parsed = keys::parse(key).ok_or_else(|| {
                    anyhow::anyhow!("the configured bootstrap key is not of the form tsk_<12 hex>_<64 hex>")
                })?;
                (
                    keys::GeneratedKey {
                        id: parsed.id.to_string(),
                        key: key.to_string(),
                        secret_hash: keys::hash_secret(parsed.secret),
                    },
                    false,
                )
            }
            None => (keys::generate(), true),
        };
        let admin = match self.store.get_principal("admin").await? {
            Some(existing) => existing.name,
            None => {
                self.store
                    .create_principal(
                        "system",
                        &NewPrincipal {
                            name: "admin".into(),
                            kind: PrincipalKind::User,
                            display_name: "Platform admin".into(),
                            email: None,
                            admin: true,
                            roles: Vec::new(),
                            attributes: Default::default(),
                        },
                    )
                    .await?
                    .name
            }
        };
        self.store
            .create_api_key(
                "system",
                &NewApiKey {
                    id: key.id.clone(),
                    principal: admin,
                    secret_hash: key.secret_hash.clone(),
                    description: "bootstrap admin key".into(),
                    expires_at: None,
                },
            )
            .await?;
        Ok(generated.then_some(key.key))
    }
}
