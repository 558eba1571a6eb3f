//! Principals and API keys on both backends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, Postgres, Sqlite};
use tessera_contracts::api::{ApiKey, Attributes, Principal, PrincipalKind, PrincipalUpdate, Role};

use super::{Entry, PgStore, SqliteStore, Tx, Written, check_revision, constraint, corrupt};
use crate::store::{NewApiKey, NewPrincipal, PageRequest, PrincipalStore, Result, StoreError, StoredKey};

#[derive(FromRow)]
pub(super) struct PrincipalRow {
    name: String,
    kind: String,
    display_name: String,
    email: Option<String>,
    admin: bool,
    roles: Json<Vec<Role>>,
    attributes: Json<Attributes>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    revision: i64,
}

impl PrincipalRow {
    pub(super) fn into_api(self) -> Result<Principal> {
        Ok(Principal {
            kind: PrincipalKind::parse(&self.kind).ok_or_else(|| corrupt("principal kind", &self.kind))?,
            name: self.name,
            display_name: self.display_name,
            email: self.email,
            admin: self.admin,
            roles: self.roles.0,
            attributes: self.attributes.0,
            created_at: self.created_at,
            updated_at: self.updated_at,
            revision: self.revision,
        })
    }
}

#[derive(FromRow)]
pub(super) struct KeyRow {
    id: String,
    principal: String,
    secret_hash: String,
    description: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl KeyRow {
    pub(super) fn into_stored(self) -> StoredKey {
        StoredKey {
            secret_hash: self.secret_hash,
            key: ApiKey {
                id: self.id,
                principal: self.principal,
                description: self.description,
                created_at: self.created_at,
                expires_at: self.expires_at,
                revoked_at: self.revoked_at,
            },
        }
    }
}

/// A gateway's principal is a service principal and never an admin: its key
/// sits on gateway hosts and must open nothing but bundles.
pub(crate) fn check_roles(kind: PrincipalKind, admin: bool, roles: &[Role]) -> Result<()> {
    for role in roles {
        if kind != PrincipalKind::Service || admin {
            let name = match role {
                Role::Gateway => "gateway",
                Role::Metrics => "metrics",
            };
            return Err(StoreError::Invalid(format!(
                "roles: the {name} role is for a service principal that is not an admin"
            )));
        }
    }
    Ok(())
}

const ADMIN_COUNT: &str = "SELECT COUNT(*) FROM principals WHERE admin = TRUE";

macro_rules! principal_store {
    ($store:ty, $db:ty) => {
        impl $store {
            pub(super) async fn principal_in<'e, E>(exec: E, name: &str) -> Result<Option<Principal>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                sqlx::query_as::<_, PrincipalRow>("SELECT * FROM principals WHERE name = $1")
                    .bind(name)
                    .fetch_optional(exec)
                    .await?
                    .map(PrincipalRow::into_api)
                    .transpose()
            }

            /// The principal, which must exist.
            async fn principal(tx: &mut Tx<$db>, name: &str) -> Result<Principal> {
                Self::principal_in(&mut **tx, name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("principal {name:?}")))
            }

            /// Refuses to leave the mesh without a platform admin.
            async fn keep_an_admin(tx: &mut Tx<$db>, name: &str) -> Result<()> {
                let admins: i64 = sqlx::query_scalar(ADMIN_COUNT).fetch_one(&mut **tx).await?;
                if admins <= 1 {
                    return Err(StoreError::Conflict(format!("{name:?} is the last platform admin")));
                }
                Ok(())
            }
        }

        #[async_trait]
        impl PrincipalStore for $store {
            async fn admin_exists(&self) -> Result<bool> {
                let n: i64 = sqlx::query_scalar(ADMIN_COUNT).fetch_one(&self.pool).await?;
                Ok(n > 0)
            }

            async fn create_principal(&self, actor: &str, new: &NewPrincipal) -> Result<Principal> {
                check_roles(new.kind, new.admin, &new.roles)?;
                self.write(actor, move |mut tx| async move {
                    sqlx::query(
                        "INSERT INTO principals (name, kind, display_name, email, admin, attributes, created_at, updated_at, revision, roles) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1, $8)",
                    )
                    .bind(&new.name)
                    .bind(new.kind.as_str())
                    .bind(&new.display_name)
                    .bind(&new.email)
                    .bind(new.admin)
                    .bind(Json(&new.attributes))
                    .bind(Utc::now())
                    .bind(Json(&new.roles))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| constraint(e, &format!("principal {:?}", new.name)))?;
                    let created = Self::principal(&mut tx, &new.name).await?;
                    let entry = Entry::new("create", "principal", format!("/principals/{}", new.name)).after(&created);
                    Ok((tx, entry.of(created)))
                })
                .await
            }

            async fn get_principal(&self, name: &str) -> Result<Option<Principal>> {
                Self::principal_in(&self.pool, name).await
            }

            async fn list_principals(&self, page: &PageRequest) -> Result<Vec<Principal>> {
                sqlx::query_as::<_, PrincipalRow>("SELECT * FROM principals WHERE name > $1 ORDER BY name LIMIT $2")
                    .bind(page.after.as_deref().unwrap_or(""))
                    .bind(page.limit + 1)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(PrincipalRow::into_api)
                    .collect()
            }

            async fn update_principal(
                &self,
                actor: &str,
                name: &str,
                if_match: Option<i64>,
                patch: &PrincipalUpdate,
            ) -> Result<Principal> {
                self.write(actor, move |mut tx| async move {
                    let before = Self::principal(&mut tx, name).await?;
                    check_revision(if_match, before.revision)?;
                    if before.admin && patch.admin == Some(false) {
                        Self::keep_an_admin(&mut tx, name).await?;
                    }
                    let admin = patch.admin.unwrap_or(before.admin);
                    let roles = patch.roles.as_ref().unwrap_or(&before.roles);
                    check_roles(before.kind, admin, roles)?;
                    sqlx::query(
                        "UPDATE principals SET display_name = $2, email = $3, admin = $4, attributes = $5, \
                         updated_at = $6, revision = revision + 1, roles = $7 WHERE name = $1",
                    )
                    .bind(name)
                    .bind(patch.display_name.as_ref().unwrap_or(&before.display_name))
                    .bind(patch.email.as_ref().or(before.email.as_ref()))
                    .bind(admin)
                    .bind(Json(patch.attributes.as_ref().unwrap_or(&before.attributes)))
                    .bind(Utc::now())
                    .bind(Json(roles))
                    .execute(&mut *tx)
                    .await?;
                    let after = Self::principal(&mut tx, name).await?;
                    let entry = Entry::new("update", "principal", format!("/principals/{name}"))
                        .before(&before)
                        .after(&after);
                    Ok((tx, entry.of(after)))
                })
                .await
            }

            async fn delete_principal(&self, actor: &str, name: &str, if_match: Option<i64>) -> Result<()> {
                self.write(actor, move |mut tx| async move {
                    let before = Self::principal(&mut tx, name).await?;
                    check_revision(if_match, before.revision)?;
                    if before.admin {
                        Self::keep_an_admin(&mut tx, name).await?;
                    }
                    // Keys and team memberships go with the principal (ON DELETE CASCADE).
                    sqlx::query("DELETE FROM principals WHERE name = $1")
                        .bind(name)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| constraint(e, &format!("principal {name:?}")))?;
                    let entry = Entry::new("delete", "principal", format!("/principals/{name}")).before(&before);
                    Ok((tx, entry.of(())))
                })
                .await
            }

            async fn create_api_key(&self, actor: &str, new: &NewApiKey) -> Result<ApiKey> {
                self.write(actor, move |mut tx| async move {
                    if Self::principal_in(&mut *tx, &new.principal).await?.is_none() {
                        return Err(StoreError::NotFound(format!("principal {:?}", new.principal)));
                    }
                    let key = ApiKey {
                        id: new.id.clone(),
                        principal: new.principal.clone(),
                        description: new.description.clone(),
                        created_at: Utc::now(),
                        expires_at: new.expires_at,
                        revoked_at: None,
                    };
                    sqlx::query(
                        "INSERT INTO api_keys (id, principal, secret_hash, description, created_at, expires_at, revoked_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, NULL)",
                    )
                    .bind(&key.id)
                    .bind(&key.principal)
                    .bind(&new.secret_hash)
                    .bind(&key.description)
                    .bind(key.created_at)
                    .bind(key.expires_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| constraint(e, "API key"))?;
                    let path = format!("/principals/{}/keys/{}", key.principal, key.id);
                    Ok((tx, Entry::new("create", "api_key", path).after(&key).of(key)))
                })
                .await
            }

            async fn list_api_keys(&self, principal: &str, page: &PageRequest) -> Result<Vec<ApiKey>> {
                let rows = sqlx::query_as::<_, KeyRow>(
                    "SELECT * FROM api_keys WHERE principal = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(principal)
                .bind(page.after.as_deref().unwrap_or(""))
                .bind(page.limit + 1)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|r| r.into_stored().key).collect())
            }

            async fn revoke_api_key(&self, actor: &str, principal: &str, id: &str) -> Result<ApiKey> {
                self.write(actor, move |mut tx| async move {
                    let before = sqlx::query_as::<_, KeyRow>("SELECT * FROM api_keys WHERE id = $1 AND principal = $2")
                        .bind(id)
                        .bind(principal)
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or_else(|| StoreError::NotFound(format!("API key {id:?} of {principal:?}")))?
                        .into_stored()
                        .key;
                    if before.revoked_at.is_some() {
                        return Ok((tx, Written::Unchanged(before))); // revoking twice changes nothing
                    }
                    let mut after = before.clone();
                    after.revoked_at = Some(Utc::now());
                    sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1")
                        .bind(id)
                        .bind(after.revoked_at)
                        .execute(&mut *tx)
                        .await?;
                    let entry = Entry::new("revoke", "api_key", format!("/principals/{principal}/keys/{id}"))
                        .before(&before)
                        .after(&after);
                    Ok((tx, entry.of(after)))
                })
                .await
            }

            async fn find_api_key(&self, id: &str) -> Result<Option<StoredKey>> {
                Ok(sqlx::query_as::<_, KeyRow>("SELECT * FROM api_keys WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(KeyRow::into_stored))
            }

            async fn live_keys(&self) -> Result<Vec<StoredKey>> {
                Ok(sqlx::query_as::<_, KeyRow>("SELECT * FROM api_keys WHERE revoked_at IS NULL ORDER BY id")
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(KeyRow::into_stored)
                    .collect())
            }
        }
    };
}

principal_store!(SqliteStore, Sqlite);
principal_store!(PgStore, Postgres);
