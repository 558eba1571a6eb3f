//! Domains on both backends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, Postgres, Sqlite};
use tessera_contracts::api::{Domain, DomainCreate, DomainUpdate, OutputPort};

use super::{Entry, PgStore, SqliteStore, Tx, check_revision, constraint};
use crate::storage;
use crate::store::{DomainStore, PageRequest, Result, StoreError};

#[derive(FromRow)]
pub(super) struct DomainRow {
    name: String,
    title: String,
    description: String,
    owner_team: String,
    storage_roots: Json<Vec<String>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    revision: i64,
}

impl From<DomainRow> for Domain {
    fn from(r: DomainRow) -> Self {
        Domain {
            name: r.name,
            title: r.title,
            description: r.description,
            owner_team: r.owner_team,
            storage_roots: r.storage_roots.0,
            created_at: r.created_at,
            updated_at: r.updated_at,
            revision: r.revision,
        }
    }
}

macro_rules! domain_store {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn domain_in<'e, E>(exec: E, name: &str) -> Result<Option<Domain>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                Ok(
                    sqlx::query_as::<_, DomainRow>("SELECT * FROM domains WHERE name = $1")
                        .bind(name)
                        .fetch_optional(exec)
                        .await?
                        .map(Domain::from),
                )
            }

            /// Refuses storage roots equal to, or nesting with, another domain's.
            async fn check_roots(tx: &mut Tx<$db>, name: &str, roots: &[String]) -> Result<()> {
                let others: Vec<(String, Json<Vec<String>>)> =
                    sqlx::query_as("SELECT name, storage_roots FROM domains WHERE name <> $1 ORDER BY name")
                        .bind(name)
                        .fetch_all(&mut **tx)
                        .await?;
                for root in roots {
                    for (other, theirs) in &others {
                        if let Some(taken) = theirs.0.iter().find(|t| storage::overlaps(root, t)) {
                            return Err(StoreError::Conflict(format!(
                                "storage root {root} overlaps {taken}, a storage root of domain {other:?}"
                            )));
                        }
                    }
                }
                Ok(())
            }

            /// Refuses roots that would leave a location of one of the domain's
            /// products outside them.
            async fn check_products_stay(tx: &mut Tx<$db>, name: &str, roots: &[String]) -> Result<()> {
                let products: Vec<(String, Json<Vec<OutputPort>>)> =
                    sqlx::query_as("SELECT name, output_ports FROM products WHERE domain = $1 ORDER BY name")
                        .bind(name)
                        .fetch_all(&mut **tx)
                        .await?;
                for (product, ports) in products {
                    for location in ports.0.iter().filter_map(|p| p.location.as_deref()) {
                        if storage::is_url(location) && !storage::under_roots(location, roots) {
                            return Err(StoreError::Conflict(format!(
                                "the table of {name}.{product} at {location} would lie outside the domain's \
                                 storage roots: move it, or keep a root it lies under"
                            )));
                        }
                    }
                }
                Ok(())
            }

            /// The domain, which must exist.
            pub(super) async fn domain(tx: &mut Tx<$db>, name: &str) -> Result<Domain> {
                Self::domain_in(&mut **tx, name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("domain {name:?}")))
            }
        }

        #[async_trait]
        impl DomainStore for $store {
            async fn create_domain(&self, actor: &str, new: &DomainCreate) -> Result<Domain> {
                self.write(actor, move |mut tx| async move {
                    Self::require_team(&mut tx, &new.owner_team).await?;
                    let roots = new.storage_roots.clone().unwrap_or_default();
                    sqlx::query(
                        "INSERT INTO domains (name, title, description, owner_team, storage_roots, created_at, updated_at, revision) \
                         VALUES ($1, $2, $3, $4, $6, $5, $5, 1)",
                    )
                    .bind(&new.name)
                    .bind(new.title.as_deref().unwrap_or(&new.name))
                    .bind(new.description.as_deref().unwrap_or(""))
                    .bind(&new.owner_team)
                    .bind(Utc::now())
                    .bind(Json(&roots))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| constraint(e, &format!("domain {:?}", new.name)))?;
                    Self::check_roots(&mut tx, &new.name, &roots).await?;
                    let created = Self::domain(&mut tx, &new.name).await?;
                    let entry = Entry::new("create", "domain", format!("/domains/{}", new.name)).after(&created);
                    Ok((tx, entry.of(created)))
                })
                .await
            }

            async fn get_domain(&self, name: &str) -> Result<Option<Domain>> {
                Self::domain_in(&self.pool, name).await
            }

            async fn list_domains(&self, page: &PageRequest) -> Result<Vec<Domain>> {
                Ok(
                    sqlx::query_as::<_, DomainRow>("SELECT * FROM domains WHERE name > $1 ORDER BY name LIMIT $2")
                        .bind(page.after.as_deref().unwrap_or(""))
                        .bind(page.limit + 1)
                        .fetch_all(&self.pool)
                        .await?
                        .into_iter()
                        .map(Domain::from)
                        .collect(),
                )
            }

            async fn update_domain(
                &self,
                actor: &str,
                name: &str,
                if_match: Option<i64>,
                patch: &DomainUpdate,
            ) -> Result<Domain> {
                self.write(actor, move |mut tx| async move {
                    let before = Self::domain(&mut tx, name).await?;
                    check_revision(if_match, before.revision)?;
                    if let Some(team) = &patch.owner_team {
                        Self::require_team(&mut tx, team).await?;
                    }
                    let roots = patch.storage_roots.as_ref().unwrap_or(&before.storage_roots);
                    if patch.storage_roots.is_some() {
                        Self::check_roots(&mut tx, name, roots).await?;
                        Self::check_products_stay(&mut tx, name, roots).await?;
                    }
                    sqlx::query(
                        "UPDATE domains SET title = $2, description = $3, owner_team = $4, updated_at = $5, \
                         storage_roots = $6, revision = revision + 1 WHERE name = $1",
                    )
                    .bind(name)
                    .bind(patch.title.as_ref().unwrap_or(&before.title))
                    .bind(patch.description.as_ref().unwrap_or(&before.description))
                    .bind(patch.owner_team.as_ref().unwrap_or(&before.owner_team))
                    .bind(Utc::now())
                    .bind(Json(roots))
                    .execute(&mut *tx)
                    .await?;
                    let after = Self::domain(&mut tx, name).await?;
                    let entry = Entry::new("update", "domain", format!("/domains/{name}"))
                        .before(&before)
                        .after(&after);
                    Ok((tx, entry.of(after)))
                })
                .await
            }

            async fn delete_domain(&self, actor: &str, name: &str, if_match: Option<i64>) -> Result<()> {
                self.write(actor, move |mut tx| async move {
                    let before = Self::domain(&mut tx, name).await?;
                    check_revision(if_match, before.revision)?;
                    let products: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products WHERE domain = $1")
                        .bind(name)
                        .fetch_one(&mut *tx)
                        .await?;
                    if products > 0 {
                        return Err(StoreError::Conflict(format!(
                            "domain {name:?} still has {products} product(s): delete or move them first"
                        )));
                    }
                    sqlx::query("DELETE FROM domains WHERE name = $1")
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                    let entry = Entry::new("delete", "domain", format!("/domains/{name}")).before(&before);
                    Ok((tx, entry.of(())))
                })
                .await
            }

            async fn owned_domains(&self, name: &str) -> Result<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT d.name FROM domains d JOIN team_members m ON m.team = d.owner_team \
                     WHERE m.principal = $1 ORDER BY d.name",
                )
                .bind(name)
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}

domain_store!(SqliteStore, Sqlite);
domain_store!(PgStore, Postgres);
