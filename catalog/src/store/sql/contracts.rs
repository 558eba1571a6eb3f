//! Contract versions and quality runs on both backends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use sqlx::types::Json;
use tessera_contracts::api::{
    ContractVersion, ContractVersionSummary, Health, Product, QualityResult, QualityRun, QualityRunCreate, Violation,
};

use super::{Entry, PgStore, SqliteStore, constraint, corrupt};
use crate::store::{ContractStore, NewContract, PageRequest, Result, StoreError};

#[derive(FromRow)]
pub(super) struct ContractRow {
    domain: String,
    product: String,
    version: String,
    api_version: Option<String>,
    media_type: String,
    document: String,
    created_at: DateTime<Utc>,
    created_by: String,
    changes: Json<Vec<Violation>>,
}

impl From<ContractRow> for ContractVersion {
    fn from(r: ContractRow) -> Self {
        ContractVersion {
            domain: r.domain,
            product: r.product,
            version: r.version,
            api_version: r.api_version,
            media_type: r.media_type,
            document: r.document,
            created_at: r.created_at,
            created_by: r.created_by,
            changes: r.changes.0,
        }
    }
}

#[derive(FromRow)]
struct QualityRunRow {
    id: i64,
    domain: String,
    product: String,
    contract_version: String,
    table_version: Option<i64>,
    ran_at: DateTime<Utc>,
    reported_by: String,
    health: String,
    results: Json<Vec<QualityResult>>,
}

impl QualityRunRow {
    fn into_api(self) -> Result<QualityRun> {
        Ok(QualityRun {
            health: Health::parse(&self.health).ok_or_else(|| corrupt("health", &self.health))?,
            id: self.id,
            domain: self.domain,
            product: self.product,
            contract_version: self.contract_version,
            table_version: self.table_version.and_then(|v| u64::try_from(v).ok()),
            ran_at: self.ran_at,
            reported_by: self.reported_by,
            results: self.results.0,
        })
    }
}

/// Versions only move forward, and never take a retired product.
fn check_new_version(product: &Product, new: &NewContract) -> Result<()> {
    let (domain, name) = (&product.domain, &product.name);
    if product.status == tessera_contracts::api::ProductStatus::Retired {
        return Err(StoreError::IllegalTransition(format!(
            "{domain}.{name} is retired: it takes no new contract versions"
        )));
    }
    if let Some(latest) = &product.latest_contract_version {
        let latest = semver::Version::parse(latest).map_err(|_| corrupt("contract version", latest))?;
        if new.version == latest {
            return Err(StoreError::Conflict(format!(
                "contract version {} of {domain}.{name} already exists: versions are immutable, submit a new version",
                new.version
            )));
        }
        if new.version < latest {
            return Err(StoreError::Conflict(format!(
                "contract version {} is older than the latest, {latest}: versions only move forward",
                new.version
            )));
        }
    }
    Ok(())
}

macro_rules! contract_store {
    ($store:ty) => {
        #[async_trait]
        impl ContractStore for $store {
            async fn add_contract(
                &self,
                actor: &str,
                domain: &str,
                product: &str,
                new: &NewContract,
            ) -> Result<ContractVersion> {
                self.write(actor, move |mut tx| async move {
                    let before = Self::product(&mut tx, domain, product).await?;
                    check_new_version(&before, new)?;
                    let created = ContractVersion {
                        domain: domain.to_string(),
                        product: product.to_string(),
                        version: new.version.to_string(),
                        api_version: new.api_version.clone(),
                        media_type: new.media_type.clone(),
                        document: new.document.clone(),
                        created_at: Utc::now(),
                        created_by: actor.to_string(),
                        changes: new.changes.clone(),
                    };
                    sqlx::query(
                        "INSERT INTO contract_versions (domain, product, version, api_version, media_type, document, created_at, created_by, changes) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(domain)
                    .bind(product)
                    .bind(&created.version)
                    .bind(&created.api_version)
                    .bind(&created.media_type)
                    .bind(&created.document)
                    .bind(created.created_at)
                    .bind(actor)
                    .bind(Json(&created.changes))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| constraint(e, &format!("contract version {}", created.version)))?;
                    sqlx::query(
                        "UPDATE products SET latest_contract_version = $3, updated_at = $4, revision = revision + 1 \
                         WHERE domain = $1 AND name = $2",
                    )
                    .bind(domain)
                    .bind(product)
                    .bind(&created.version)
                    .bind(created.created_at)
                    .execute(&mut *tx)
                    .await?;
                    let path = format!("/domains/{domain}/products/{product}/contracts/{}", created.version);
                    Ok((tx, Entry::new("create", "contract", path).after(&created).of(created)))
                })
                .await
            }

            async fn list_contracts(
                &self,
                domain: &str,
                product: &str,
                page: &PageRequest,
            ) -> Result<Vec<ContractVersionSummary>> {
                // Semantic-version order needs parsing: a product has few versions, so
                // sort them here rather than in SQL.
                let rows = sqlx::query_as::<_, ContractRow>(
                    "SELECT * FROM contract_versions WHERE domain = $1 AND product = $2",
                )
                .bind(domain)
                .bind(product)
                .fetch_all(&self.pool)
                .await?;
                let mut versions: Vec<(semver::Version, ContractRow)> = rows
                    .into_iter()
                    .filter_map(|r| semver::Version::parse(&r.version).ok().map(|v| (v, r)))
                    .collect();
                versions.sort_by(|a, b| a.0.cmp(&b.0));
                let after = page.after.as_deref().and_then(|a| semver::Version::parse(a).ok());
                Ok(versions
                    .into_iter()
                    .filter(|(v, _)| after.as_ref().is_none_or(|a| v > a))
                    .take(usize::try_from(page.limit + 1).unwrap_or(usize::MAX))
                    .map(|(_, r)| ContractVersionSummary {
                        version: r.version,
                        api_version: r.api_version,
                        media_type: r.media_type,
                        created_at: r.created_at,
                        created_by: r.created_by,
                        changes: r.changes.0,
                    })
                    .collect())
            }

            async fn get_contract(&self, domain: &str, product: &str, version: &str) -> Result<Option<ContractVersion>> {
                Ok(sqlx::query_as::<_, ContractRow>(
                    "SELECT * FROM contract_versions WHERE domain = $1 AND product = $2 AND version = $3",
                )
                .bind(domain)
                .bind(product)
                .bind(version)
                .fetch_optional(&self.pool)
                .await?
                .map(ContractVersion::from))
            }

            async fn all_contracts(&self, domain: &str, product: &str) -> Result<Vec<ContractVersion>> {
                Ok(sqlx::query_as::<_, ContractRow>("SELECT * FROM contract_versions WHERE domain = $1 AND product = $2")
                    .bind(domain)
                    .bind(product)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(ContractVersion::from)
                    .collect())
            }

            async fn add_quality_run(
                &self,
                actor: &str,
                domain: &str,
                product: &str,
                run: &QualityRunCreate,
                health: Health,
            ) -> Result<QualityRun> {
                self.write(actor, move |mut tx| async move {
                    let before = Self::product(&mut tx, domain, product).await?;
                    let known: Option<String> = sqlx::query_scalar(
                        "SELECT version FROM contract_versions WHERE domain = $1 AND product = $2 AND version = $3",
                    )
                    .bind(domain)
                    .bind(product)
                    .bind(&run.contract_version)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if known.is_none() {
                        return Err(StoreError::Invalid(format!(
                            "contract_version: {domain}.{product} has no contract version {}",
                            run.contract_version
                        )));
                    }
                    let table_version = run.table_version.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO quality_runs (domain, product, contract_version, table_version, ran_at, reported_by, health, results) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    )
                    .bind(domain)
                    .bind(product)
                    .bind(&run.contract_version)
                    .bind(table_version)
                    .bind(run.ran_at.unwrap_or_else(Utc::now))
                    .bind(actor)
                    .bind(health.as_str())
                    .bind(Json(&run.results))
                    .fetch_one(&mut *tx)
                    .await?;
                    sqlx::query("UPDATE products SET health = $3 WHERE domain = $1 AND name = $2")
                        .bind(domain)
                        .bind(product)
                        .bind(health.as_str())
                        .execute(&mut *tx)
                        .await?;
                    let stored = sqlx::query_as::<_, QualityRunRow>("SELECT * FROM quality_runs WHERE id = $1")
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?
                        .into_api()?;
                    let path = format!("/domains/{domain}/products/{product}/quality/{id}");
                    let entry = Entry::new("create", "quality_run", path)
                        .before(&serde_json::json!({"health": before.health.as_str()}))
                        .after(&serde_json::json!({"health": health.as_str(), "contract_version": run.contract_version,
                            "table_version": run.table_version, "results": run.results.len()}));
                    Ok((tx, entry.of(stored)))
                })
                .await
            }

            async fn list_quality_runs(&self, domain: &str, product: &str, page: &PageRequest) -> Result<Vec<QualityRun>> {
                // Newest first; the cursor is the last id seen.
                let before: i64 = page.after.as_deref().and_then(|a| a.parse().ok()).unwrap_or(i64::MAX);
                sqlx::query_as::<_, QualityRunRow>(
                    "SELECT * FROM quality_runs WHERE domain = $1 AND product = $2 AND id < $3 ORDER BY id DESC LIMIT $4",
                )
                .bind(domain)
                .bind(product)
                .bind(before)
                .bind(page.limit + 1)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(QualityRunRow::into_api)
                .collect()
            }
        }
    };
}

contract_store!(SqliteStore);
contract_store!(PgStore);
