//! Governance storage for both backends: policies, access requests, gateway
//! reports and query audit. Policies and access requests are configuration
//! (each change is in the change log and moves the catalog's version); gateway
//! reports and audit records are observations, written without either.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{FromRow, Postgres, QueryBuilder, Sqlite};
use tessera_contracts::api::{
    AccessRequest, AccessRequestCreate, AccessRequestStatus, AuditRecord, Drift, GatewayReport, UsageRecord,
};

use super::{Entry, PgStore, SqliteStore, Tx, check_revision, constraint, corrupt};
use crate::store::{
    AccessDecision, AccessRequestQuery, GatewayRow, GovernanceStore, NewPolicy, PageRequest, PolicyKind, Result,
    StoreError, StoredPolicy,
};

#[derive(FromRow)]
pub(super) struct PolicyRow {
    kind: String,
    name: String,
    domain: Option<String>,
    spec: Json<Value>,
    created_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    revision: i64,
}

impl PolicyRow {
    pub(super) fn into_stored(self) -> Result<StoredPolicy> {
        Ok(StoredPolicy {
            kind: PolicyKind::parse(&self.kind).ok_or_else(|| corrupt("policy kind", &self.kind))?,
            name: self.name,
            domain: self.domain,
            spec: self.spec.0,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            revision: self.revision,
        })
    }
}

#[derive(FromRow)]
struct AccessRow {
    id: i64,
    domain: String,
    product: String,
    requester: String,
    purpose: String,
    justification: String,
    status: String,
    created_at: DateTime<Utc>,
    decided_by: Option<String>,
    decided_at: Option<DateTime<Utc>>,
    note: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    grant_name: Option<String>,
}

impl AccessRow {
    fn into_api(self) -> Result<AccessRequest> {
        Ok(AccessRequest {
            status: AccessRequestStatus::parse(&self.status).ok_or_else(|| corrupt("request status", &self.status))?,
            id: self.id,
            domain: self.domain,
            product: self.product,
            requester: self.requester,
            purpose: self.purpose,
            justification: self.justification,
            created_at: self.created_at,
            decided_by: self.decided_by,
            decided_at: self.decided_at,
            note: self.note,
            expires_at: self.expires_at,
            grant_name: self.grant_name,
        })
    }
}

#[derive(FromRow)]
struct GatewayDbRow {
    name: String,
    version: i64,
    hash: String,
    rejected_version: Option<i64>,
    error: Option<String>,
    drift: Json<Vec<Drift>>,
    reported_at: DateTime<Utc>,
}

#[derive(FromRow)]
struct UsageRow {
    id: i64,
    gateway: String,
    record: Json<AuditRecord>,
}

fn policy_path(kind: PolicyKind, name: &str) -> String {
    format!("/{}/{name}", kind.collection())
}

fn summary(p: &StoredPolicy) -> Value {
    serde_json::json!({"spec": p.spec, "revision": p.revision})
}

macro_rules! governance_store {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn policy_in(
                tx: &mut Tx<$db>,
                kind: PolicyKind,
                name: &str,
            ) -> Result<Option<StoredPolicy>> {
                sqlx::query_as::<_, PolicyRow>("SELECT * FROM policies WHERE kind = $1 AND name = $2")
                    .bind(kind.as_str())
                    .bind(name)
                    .fetch_optional(&mut **tx)
                    .await?
                    .map(PolicyRow::into_stored)
                    .transpose()
            }

            async fn insert_policy(
                tx: &mut Tx<$db>,
                actor: &str,
                new: &NewPolicy,
            ) -> Result<StoredPolicy> {
                let now = Utc::now();
                sqlx::query(
                    "INSERT INTO policies (kind, name, domain, spec, created_by, created_at, updated_at, revision) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6, 1)",
                )
                .bind(new.kind.as_str())
                .bind(&new.name)
                .bind(&new.domain)
                .bind(Json(&new.spec))
                .bind(actor)
                .bind(now)
                .execute(&mut **tx)
                .await
                .map_err(|e| constraint(e, &format!("{} {:?}", new.kind.noun(), new.name)))?;
                Self::policy(tx, new.kind, &new.name).await
            }

            /// The policy, which must exist.
            async fn policy(tx: &mut Tx<$db>, kind: PolicyKind, name: &str) -> Result<StoredPolicy> {
                Self::policy_in(tx, kind, name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("{} {name:?}", kind.noun())))
            }

            async fn access_in(tx: &mut Tx<$db>, id: i64) -> Result<Option<AccessRequest>> {
                sqlx::query_as::<_, AccessRow>("SELECT * FROM access_requests WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut **tx)
                    .await?
                    .map(AccessRow::into_api)
                    .transpose()
            }

            /// The access request, which must exist.
            async fn access(tx: &mut Tx<$db>, id: i64) -> Result<AccessRequest> {
                Self::access_in(tx, id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("access request {id}")))
            }
        }

        #[async_trait]
        impl GovernanceStore for $store {
            async fn create_policy(&self, actor: &str, new: &NewPolicy) -> Result<StoredPolicy> {
                self.write(actor, move |mut tx| async move {
                    let stored = Self::insert_policy(&mut tx, actor, new).await?;
                    let entry = Entry::new("create", new.kind.as_str(), policy_path(new.kind, &new.name))
                        .after(&summary(&stored));
                    Ok((tx, entry.of(stored)))
                })
                .await
            }

            async fn replace_policy(
                &self,
                actor: &str,
                new: &NewPolicy,
                if_match: Option<i64>,
            ) -> Result<StoredPolicy> {
                self.write(actor, move |mut tx| async move {
                    let before = Self::policy(&mut tx, new.kind, &new.name).await?;
                    check_revision(if_match, before.revision)?;
                    sqlx::query(
                        "UPDATE policies SET domain = $3, spec = $4, updated_at = $5, revision = revision + 1 \
                         WHERE kind = $1 AND name = $2",
                    )
                    .bind(new.kind.as_str())
                    .bind(&new.name)
                    .bind(&new.domain)
                    .bind(Json(&new.spec))
                    .bind(Utc::now())
                    .execute(&mut *tx)
                    .await?;
                    let after = Self::policy(&mut tx, new.kind, &new.name).await?;
                    let entry = Entry::new("update", new.kind.as_str(), policy_path(new.kind, &new.name))
                        .before(&summary(&before))
                        .after(&summary(&after));
                    Ok((tx, entry.of(after)))
                })
                .await
            }

            async fn get_policy(&self, kind: PolicyKind, name: &str) -> Result<Option<StoredPolicy>> {
                sqlx::query_as::<_, PolicyRow>("SELECT * FROM policies WHERE kind = $1 AND name = $2")
                    .bind(kind.as_str())
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(PolicyRow::into_stored)
                    .transpose()
            }

            async fn list_policies(
                &self,
                kind: PolicyKind,
                domain: Option<&str>,
                page: &PageRequest,
            ) -> Result<Vec<StoredPolicy>> {
                let mut qb = QueryBuilder::<$db>::new("SELECT * FROM policies WHERE kind = ");
                qb.push_bind(kind.as_str());
                if let Some(domain) = domain {
                    qb.push(" AND domain = ").push_bind(domain.to_string());
                }
                if let Some(after) = &page.after {
                    qb.push(" AND name > ").push_bind(after.clone());
                }
                qb.push(" ORDER BY name LIMIT ").push_bind(page.limit + 1);
                qb.build_query_as::<PolicyRow>()
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(PolicyRow::into_stored)
                    .collect()
            }

            async fn all_policies(&self) -> Result<Vec<StoredPolicy>> {
                sqlx::query_as::<_, PolicyRow>("SELECT * FROM policies ORDER BY kind, name")
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(PolicyRow::into_stored)
                    .collect()
            }

            async fn delete_policy(&self, actor: &str, kind: PolicyKind, name: &str, if_match: Option<i64>) -> Result<()> {
                self.write(actor, move |mut tx| async move {
                    let before = Self::policy(&mut tx, kind, name).await?;
                    check_revision(if_match, before.revision)?;
                    sqlx::query("DELETE FROM policies WHERE kind = $1 AND name = $2")
                        .bind(kind.as_str())
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                    let entry = Entry::new("delete", kind.as_str(), policy_path(kind, name)).before(&summary(&before));
                    Ok((tx, entry.of(())))
                })
                .await
            }

            async fn create_access_request(
                &self,
                actor: &str,
                domain: &str,
                product: &str,
                new: &AccessRequestCreate,
            ) -> Result<AccessRequest> {
                self.write(actor, move |mut tx| async move {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO access_requests (domain, product, requester, purpose, justification, status, created_at) \
                         VALUES ($1, $2, $3, $4, $5, 'pending', $6) RETURNING id",
                    )
                    .bind(domain)
                    .bind(product)
                    .bind(actor)
                    .bind(&new.purpose)
                    .bind(&new.justification)
                    .bind(Utc::now())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| constraint(e, "access request"))?;
                    let stored = Self::access(&mut tx, id).await?;
                    let entry = Entry::new("create", "access_request", format!("/access-requests/{id}")).after(&stored);
                    Ok((tx, entry.of(stored)))
                })
                .await
            }

            async fn get_access_request(&self, id: i64) -> Result<Option<AccessRequest>> {
                sqlx::query_as::<_, AccessRow>("SELECT * FROM access_requests WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(AccessRow::into_api)
                    .transpose()
            }

            async fn list_access_requests(&self, q: &AccessRequestQuery) -> Result<Vec<AccessRequest>> {
                let mut qb = QueryBuilder::<$db>::new("SELECT r.* FROM access_requests r WHERE 1 = 1");
                if let Some(who) = &q.visible_to {
                    qb.push(" AND (r.requester = ")
                        .push_bind(who.clone())
                        .push(" OR EXISTS (SELECT 1 FROM products p WHERE p.domain = r.domain AND p.name = r.product AND \
                               (p.owner_team IN (SELECT team FROM team_members WHERE principal = ")
                        .push_bind(who.clone())
                        .push(") OR p.domain IN (SELECT d.name FROM domains d JOIN team_members m ON m.team = d.owner_team WHERE m.principal = ")
                        .push_bind(who.clone())
                        .push("))))");
                }
                if let Some(status) = q.status {
                    qb.push(" AND r.status = ").push_bind(status.as_str());
                }
                if let Some((domain, product)) = &q.product {
                    qb.push(" AND r.domain = ")
                        .push_bind(domain.clone())
                        .push(" AND r.product = ")
                        .push_bind(product.clone());
                }
                if let Some(after) = q.page.after.as_deref().and_then(|a| a.parse::<i64>().ok()) {
                    qb.push(" AND r.id < ").push_bind(after);
                }
                qb.push(" ORDER BY r.id DESC LIMIT ").push_bind(q.page.limit + 1);
                qb.build_query_as::<AccessRow>()
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(AccessRow::into_api)
                    .collect()
            }

            async fn decide_access_request(&self, actor: &str, id: i64, decision: &AccessDecision) -> Result<AccessRequest> {
                self.write(actor, move |mut tx| async move {
                    let before = Self::access(&mut tx, id).await?;
                    if before.status != AccessRequestStatus::Pending {
                        return Err(StoreError::Conflict(format!(
                            "access request {id} was already {}",
                            before.status.as_str()
                        )));
                    }
                    let (status, grant_name) = match &decision.grant {
                        Some(grant) => {
                            Self::insert_policy(&mut tx, actor, grant).await?;
                            (AccessRequestStatus::Approved, Some(grant.name.clone()))
                        }
                        None => (AccessRequestStatus::Denied, None),
                    };
                    sqlx::query(
                        "UPDATE access_requests SET status = $2, decided_by = $3, decided_at = $4, note = $5, \
                         expires_at = $6, grant_name = $7 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(status.as_str())
                    .bind(actor)
                    .bind(Utc::now())
                    .bind(&decision.note)
                    .bind(decision.expires_at)
                    .bind(&grant_name)
                    .execute(&mut *tx)
                    .await?;
                    let after = Self::access(&mut tx, id).await?;
                    let action = if grant_name.is_some() { "approve" } else { "deny" };
                    let entry = Entry::new(action, "access_request", format!("/access-requests/{id}"))
                        .before(&before)
                        .after(&after);
                    Ok((tx, entry.of(after)))
                })
                .await
            }

            async fn report_gateway(&self, name: &str, report: &GatewayReport) -> Result<()> {
                sqlx::query(
                    "INSERT INTO gateways (name, version, hash, rejected_version, error, reported_at, drift) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (name) DO UPDATE SET version = excluded.version, hash = excluded.hash, \
                     rejected_version = excluded.rejected_version, error = excluded.error, \
                     reported_at = excluded.reported_at, drift = excluded.drift",
                )
                .bind(name)
                .bind(report.version)
                .bind(&report.hash)
                .bind(report.rejected_version)
                .bind(&report.error)
                .bind(Utc::now())
                .bind(Json(&report.drift))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn list_gateways(&self) -> Result<Vec<GatewayRow>> {
                Ok(sqlx::query_as::<_, GatewayDbRow>("SELECT * FROM gateways ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|r| GatewayRow {
                        name: r.name,
                        report: GatewayReport {
                            version: r.version,
                            hash: r.hash,
                            rejected_version: r.rejected_version,
                            error: r.error,
                            drift: r.drift.0,
                        },
                        reported_at: r.reported_at,
                    })
                    .collect())
            }

            async fn gateway_drift(&self) -> Result<Vec<(DateTime<Utc>, Vec<Drift>)>> {
                // Reports store an empty list as `[]` (both backends compare it as such).
                let rows: Vec<(DateTime<Utc>, Json<Vec<Drift>>)> =
                    sqlx::query_as("SELECT reported_at, drift FROM gateways WHERE drift <> '[]' ORDER BY name")
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows.into_iter().map(|(at, drift)| (at, drift.0)).collect())
            }

            async fn add_audit(&self, gateway: &str, records: &[AuditRecord]) -> Result<u64> {
                let mut tx = self.pool.begin().await?;
                let mut added = 0;
                for record in records {
                    // A batch sent twice (a retry after a lost response) is stored once.
                    let id: Option<i64> = sqlx::query_scalar(
                        "INSERT INTO audit_records (query_id, gateway, record, at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (query_id) DO NOTHING RETURNING id",
                    )
                    .bind(&record.query_id)
                    .bind(gateway)
                    .bind(Json(record))
                    .bind(record.at)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(id) = id else { continue };
                    added += 1;
                    for product in &record.products {
                        let Some((domain, name)) = product.split_once('.') else { continue };
                        sqlx::query(
                            "INSERT INTO audit_products (domain, product, record_id) VALUES ($1, $2, $3) \
                             ON CONFLICT DO NOTHING",
                        )
                        .bind(domain)
                        .bind(name)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                tx.commit().await?;
                Ok(added)
            }

            async fn list_usage(&self, domain: &str, product: &str, page: &PageRequest) -> Result<Vec<UsageRecord>> {
                let after = page.after.as_deref().and_then(|a| a.parse::<i64>().ok()).unwrap_or(i64::MAX);
                Ok(sqlx::query_as::<_, UsageRow>(
                    "SELECT a.id, a.gateway, a.record FROM audit_products p JOIN audit_records a ON a.id = p.record_id \
                     WHERE p.domain = $1 AND p.product = $2 AND a.id < $3 ORDER BY a.id DESC LIMIT $4",
                )
                .bind(domain)
                .bind(product)
                .bind(after)
                .bind(page.limit + 1)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| UsageRecord {
                    id: r.id,
                    gateway: r.gateway,
                    record: r.record.0,
                })
                .collect())
            }
        }
    };
}

governance_store!(SqliteStore, Sqlite);
governance_store!(PgStore, Postgres);
