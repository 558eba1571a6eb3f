//! The SQL backends. SQLite and PostgreSQL run the same statements (numbered `$N`
//! parameters work on both), so one implementation is stamped out for each by the
//! `sql_store!` macro; what differs (connection set-up, migrations, column types)
//! lives outside it.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::types::Json;
use sqlx::{FromRow, Pool, Postgres, QueryBuilder, Sqlite};
use tessera_contracts::api::{
    ApiKey, Attributes, Change, Compatibility, ContractVersion, ContractVersionSummary, Domain, DomainCreate,
    DomainUpdate, Health, OutputPort, Principal, PrincipalKind, PrincipalUpdate, Product, ProductCreate, ProductStatus,
    ProductUpdate, QualityResult, QualityRun, QualityRunCreate, Team, TeamCreate, TeamUpdate, Violation, Visibility,
};
use tessera_contracts::policy::Target;
use tokio::sync::{Mutex, MutexGuard, watch};

mod governance;

use super::{
    CatalogStore, Edge, NewApiKey, NewContract, NewPrincipal, PageRequest, ProductQuery, ProductScope, Result,
    StoreError, StoredKey,
};

/// The catalog on SQLite: one file, WAL mode, writers serialized in-process so that
/// concurrent requests queue instead of failing with `SQLITE_BUSY`.
pub struct SqliteStore {
    pool: Pool<Sqlite>,
    write_lock: Option<Mutex<()>>,
    version: watch::Sender<i64>,
}

/// The catalog on PostgreSQL: writers serialize on the `catalog_state` row lock.
pub struct PgStore {
    pool: Pool<Postgres>,
    write_lock: Option<Mutex<()>>,
    version: watch::Sender<i64>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file of a `sqlite:` URL.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        let current: i64 = sqlx::query_scalar(VERSION_SQL).fetch_one(&pool).await?;
        Ok(Self {
            pool,
            write_lock: Some(Mutex::new(())),
            version: watch::channel(current).0,
        })
    }
}

impl PgStore {
    /// Connects to a `postgres://` URL.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?;
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        let current: i64 = sqlx::query_scalar(VERSION_SQL).fetch_one(&pool).await?;
        Ok(Self {
            pool,
            write_lock: None,
            version: watch::channel(current).0,
        })
    }
}

const VERSION_SQL: &str = "SELECT version FROM catalog_state WHERE id = 1";

// ---------------------------------------------------------------- rows

#[derive(FromRow)]
struct PrincipalRow {
    name: String,
    kind: String,
    display_name: String,
    email: Option<String>,
    admin: bool,
    attributes: Json<Attributes>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    revision: i64,
}

impl PrincipalRow {
    fn into_api(self) -> Result<Principal> {
        Ok(Principal {
            kind: PrincipalKind::parse(&self.kind).ok_or_else(|| corrupt("principal kind", &self.kind))?,
            name: self.name,
            display_name: self.display_name,
            email: self.email,
            admin: self.admin,
            attributes: self.attributes.0,
            created_at: self.created_at,
            updated_at: self.updated_at,
            revision: self.revision,
        })
    }
}

#[derive(FromRow)]
struct KeyRow {
    id: String,
    principal: String,
    secret_hash: String,
    description: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl KeyRow {
    fn into_stored(self) -> StoredKey {
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

#[derive(FromRow)]
struct TeamRow {
    name: String,
    title: String,
    description: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    revision: i64,
}

impl TeamRow {
    fn into_api(self, members: Vec<String>) -> Team {
        Team {
            name: self.name,
            title: self.title,
            description: self.description,
            members,
            created_at: self.created_at,
            updated_at: self.updated_at,
            revision: self.revision,
        }
    }
}

#[derive(FromRow)]
struct DomainRow {
    name: String,
    title: String,
    description: String,
    owner_team: String,
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
            created_at: r.created_at,
            updated_at: r.updated_at,
            revision: r.revision,
        }
    }
}

#[derive(FromRow)]
struct ProductRow {
    domain: String,
    name: String,
    title: String,
    description: String,
    owner_team: String,
    visibility: String,
    status: String,
    sunset_date: Option<NaiveDate>,
    tags: Json<Vec<String>>,
    output_ports: Json<Vec<OutputPort>>,
    input_ports: Json<Vec<String>>,
    latest_contract_version: Option<String>,
    compatibility: String,
    health: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    revision: i64,
}

impl ProductRow {
    fn into_api(self) -> Result<Product> {
        Ok(Product {
            visibility: Visibility::parse(&self.visibility).ok_or_else(|| corrupt("visibility", &self.visibility))?,
            status: ProductStatus::parse(&self.status).ok_or_else(|| corrupt("status", &self.status))?,
            domain: self.domain,
            name: self.name,
            title: self.title,
            description: self.description,
            owner_team: self.owner_team,
            sunset_date: self.sunset_date,
            tags: self.tags.0,
            output_ports: self.output_ports.0,
            input_ports: self.input_ports.0,
            latest_contract_version: self.latest_contract_version,
            compatibility: Compatibility::parse(&self.compatibility)
                .ok_or_else(|| corrupt("compatibility", &self.compatibility))?,
            health: Health::parse(&self.health).ok_or_else(|| corrupt("health", &self.health))?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            revision: self.revision,
        })
    }
}

#[derive(FromRow)]
struct ContractRow {
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

#[derive(FromRow)]
struct ChangeRow {
    seq: i64,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    resource_type: String,
    resource: String,
    before: Option<Json<Value>>,
    after: Option<Json<Value>>,
}

impl From<ChangeRow> for Change {
    fn from(r: ChangeRow) -> Self {
        Change {
            seq: r.seq,
            at: r.at,
            actor: r.actor,
            action: r.action,
            resource_type: r.resource_type,
            resource: r.resource,
            before: r.before.map(|j| j.0),
            after: r.after.map(|j| j.0),
        }
    }
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Invalid(format!("stored {what} {value:?} is not understood"))
}

fn json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Maps constraint violations to conflicts, saying what collided.
fn constraint(err: sqlx::Error, what: &str) -> StoreError {
    if let sqlx::Error::Database(db) = &err {
        if db.is_unique_violation() {
            return StoreError::Conflict(format!("{what} already exists"));
        }
        if db.is_foreign_key_violation() {
            return StoreError::Conflict(format!("{what} is still referenced, or references something missing"));
        }
    }
    StoreError::Database(err)
}

fn check_revision(if_match: Option<i64>, current: i64) -> Result<()> {
    match if_match {
        Some(expected) if expected != current => Err(StoreError::PreconditionFailed { current }),
        _ => Ok(()),
    }
}

fn split_product_cursor(after: &str) -> (String, String) {
    match after.split_once('.') {
        Some((d, p)) => (d.to_string(), p.to_string()),
        None => (after.to_string(), String::new()),
    }
}

fn like_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Returns a cycle, as a path of `domain.product`, if `node` reading `inputs` would
/// close one in the lineage graph.
fn find_cycle(edges: &[Edge], node: &(String, String), inputs: &[(String, String)]) -> Option<Vec<String>> {
    let mut upstream: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    for e in edges {
        if (&e.domain, &e.product) == (&node.0, &node.1) {
            continue; // replaced by `inputs`
        }
        upstream
            .entry((e.domain.clone(), e.product.clone()))
            .or_default()
            .push((e.up_domain.clone(), e.up_product.clone()));
    }
    upstream.insert(node.clone(), inputs.to_vec());
    // Depth-first search from `node` along upstream edges, looking for `node`.
    let mut stack = vec![(node.clone(), vec![format!("{}.{}", node.0, node.1)])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in upstream.get(&at).map(Vec::as_slice).unwrap_or_default() {
            let mut path = path.clone();
            path.push(format!("{}.{}", next.0, next.1));
            if next == node {
                return Some(path);
            }
            if seen.insert(next.clone()) {
                stack.push((next.clone(), path));
            }
        }
    }
    None
}

macro_rules! sql_store {
    ($store:ty, $db:ty, $backend:literal) => {
        impl $store {
            /// Starts a write: takes the writer lock, opens a transaction and advances
            /// the change sequence, returning the new sequence number.
            async fn begin(&self) -> Result<(Option<MutexGuard<'_, ()>>, sqlx::Transaction<'static, $db>, i64)> {
                let guard = match &self.write_lock {
                    Some(lock) => Some(lock.lock().await),
                    None => None,
                };
                let mut tx = self.pool.begin().await?;
                let seq: i64 =
                    sqlx::query_scalar("UPDATE catalog_state SET version = version + 1 WHERE id = 1 RETURNING version")
                        .fetch_one(&mut *tx)
                        .await?;
                Ok((guard, tx, seq))
            }

            /// Appends the change-log entry and commits.
            #[allow(clippy::too_many_arguments)]
            async fn commit(
                &self,
                mut tx: sqlx::Transaction<'static, $db>,
                seq: i64,
                actor: &str,
                action: &str,
                resource_type: &str,
                resource: &str,
                before: Option<Value>,
                after: Option<Value>,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO changes (seq, at, actor, action, resource_type, resource, before, after) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(seq)
                .bind(Utc::now())
                .bind(actor)
                .bind(action)
                .bind(resource_type)
                .bind(resource)
                .bind(before.map(Json))
                .bind(after.map(Json))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                self.version.send_replace(seq);
                Ok(())
            }

            async fn principal_in<'e, E>(exec: E, name: &str) -> Result<Option<Principal>>
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

            async fn team_in(tx: &mut sqlx::Transaction<'static, $db>, name: &str) -> Result<Option<Team>> {
                let Some(row) = sqlx::query_as::<_, TeamRow>("SELECT * FROM teams WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&mut **tx)
                    .await?
                else {
                    return Ok(None);
                };
                let members: Vec<String> =
                    sqlx::query_scalar("SELECT principal FROM team_members WHERE team = $1 ORDER BY principal")
                        .bind(name)
                        .fetch_all(&mut **tx)
                        .await?;
                Ok(Some(row.into_api(members)))
            }

            /// A membership changed: the team's revision moves, and it is read back.
            async fn touch_team(tx: &mut sqlx::Transaction<'static, $db>, team: &str) -> Result<Team> {
                sqlx::query("UPDATE teams SET updated_at = $2, revision = revision + 1 WHERE name = $1")
                    .bind(team)
                    .bind(Utc::now())
                    .execute(&mut **tx)
                    .await?;
                Self::team_in(tx, team)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("team {team:?}")))
            }

            async fn domain_in<'e, E>(exec: E, name: &str) -> Result<Option<Domain>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                Ok(sqlx::query_as::<_, DomainRow>("SELECT * FROM domains WHERE name = $1")
                    .bind(name)
                    .fetch_optional(exec)
                    .await?
                    .map(Domain::from))
            }

            async fn product_in<'e, E>(exec: E, domain: &str, name: &str) -> Result<Option<Product>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                sqlx::query_as::<_, ProductRow>("SELECT * FROM products WHERE domain = $1 AND name = $2")
                    .bind(domain)
                    .bind(name)
                    .fetch_optional(exec)
                    .await?
                    .map(ProductRow::into_api)
                    .transpose()
            }

            async fn require_team(tx: &mut sqlx::Transaction<'static, $db>, team: &str) -> Result<()> {
                let found: Option<String> = sqlx::query_scalar("SELECT name FROM teams WHERE name = $1")
                    .bind(team)
                    .fetch_optional(&mut **tx)
                    .await?;
                found.map(|_| ()).ok_or_else(|| StoreError::Invalid(format!("team {team:?} does not exist")))
            }

            /// Checks and writes a product's input ports (the lineage index).
            async fn write_inputs(
                tx: &mut sqlx::Transaction<'static, $db>,
                domain: &str,
                name: &str,
                inputs: &[String],
            ) -> Result<()> {
                let mut parsed = Vec::with_capacity(inputs.len());
                for input in inputs {
                    let (d, p) = tessera_contracts::names::parse_product_ref(input).map_err(StoreError::Invalid)?;
                    if (d, p) == (domain, name) {
                        return Err(StoreError::Invalid(format!("{input} cannot be an input port of itself")));
                    }
                    if Self::product_in(&mut **tx, d, p).await?.is_none() {
                        return Err(StoreError::Invalid(format!("input port {input}: no such product")));
                    }
                    parsed.push((d.to_string(), p.to_string()));
                }
                let edges = Self::edges_in(&mut **tx).await?;
                if let Some(cycle) = find_cycle(&edges, &(domain.to_string(), name.to_string()), &parsed) {
                    return Err(StoreError::Invalid(format!("input ports would form a cycle: {}", cycle.join(" <- "))));
                }
                sqlx::query("DELETE FROM product_inputs WHERE domain = $1 AND product = $2")
                    .bind(domain)
                    .bind(name)
                    .execute(&mut **tx)
                    .await?;
                for (d, p) in parsed {
                    sqlx::query("INSERT INTO product_inputs (domain, product, up_domain, up_product) VALUES ($1, $2, $3, $4)")
                        .bind(domain)
                        .bind(name)
                        .bind(d)
                        .bind(p)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            }

            async fn write_tags(tx: &mut sqlx::Transaction<'static, $db>, domain: &str, name: &str, tags: &[String]) -> Result<()> {
                sqlx::query("DELETE FROM product_tags WHERE domain = $1 AND product = $2")
                    .bind(domain)
                    .bind(name)
                    .execute(&mut **tx)
                    .await?;
                for tag in tags {
                    sqlx::query("INSERT INTO product_tags (domain, product, tag) VALUES ($1, $2, $3)")
                        .bind(domain)
                        .bind(name)
                        .bind(tag)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            }

            async fn edges_in<'e, E>(exec: E) -> Result<Vec<Edge>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let rows: Vec<(String, String, String, String)> = sqlx::query_as(
                    "SELECT up_domain, up_product, domain, product FROM product_inputs \
                     ORDER BY domain, product, up_domain, up_product",
                )
                .fetch_all(exec)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(up_domain, up_product, domain, product)| Edge { up_domain, up_product, domain, product })
                    .collect())
            }

            async fn members_of(&self, teams: &[String]) -> Result<BTreeMap<String, Vec<String>>> {
                let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
                let (Some(first), Some(last)) = (teams.first(), teams.last()) else {
                    return Ok(out);
                };
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT team, principal FROM team_members WHERE team >= $1 AND team <= $2 ORDER BY team, principal",
                )
                .bind(first)
                .bind(last)
                .fetch_all(&self.pool)
                .await?;
                for (team, principal) in rows {
                    out.entry(team).or_default().push(principal);
                }
                Ok(out)
            }
        }

        #[async_trait]
        impl CatalogStore for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            fn subscribe(&self) -> watch::Receiver<i64> {
                self.version.subscribe()
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn version(&self) -> Result<i64> {
                let v: i64 = sqlx::query_scalar(VERSION_SQL).fetch_one(&self.pool).await?;
                // Another replica may have moved it: let local watchers know.
                self.version.send_if_modified(|seen| {
                    let moved = v > *seen;
                    if moved {
                        *seen = v;
                    }
                    moved
                });
                Ok(v)
            }

            async fn changes(&self, after: i64, limit: i64) -> Result<Vec<Change>> {
                let rows = sqlx::query_as::<_, ChangeRow>("SELECT * FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2")
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.into_iter().map(Change::from).collect())
            }

            // -------------------------------------------------------- principals

            async fn admin_exists(&self) -> Result<bool> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM principals WHERE admin = TRUE")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(n > 0)
            }

            async fn create_principal(&self, actor: &str, new: &NewPrincipal) -> Result<Principal> {
                let (_guard, mut tx, seq) = self.begin().await?;
                let now = Utc::now();
                sqlx::query(
                    "INSERT INTO principals (name, kind, display_name, email, admin, attributes, created_at, updated_at, revision) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1)",
                )
                .bind(&new.name)
                .bind(new.kind.as_str())
                .bind(&new.display_name)
                .bind(&new.email)
                .bind(new.admin)
                .bind(Json(&new.attributes))
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| constraint(e, &format!("principal {:?}", new.name)))?;
                let created = Self::principal_in(&mut *tx, &new.name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("principal {:?}", new.name)))?;
                let path = format!("/principals/{}", new.name);
                self.commit(tx, seq, actor, "create", "principal", &path, None, Some(json(&created))).await?;
                Ok(created)
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
                let (_guard, mut tx, seq) = self.begin().await?;
                let before = Self::principal_in(&mut *tx, name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("principal {name:?}")))?;
                check_revision(if_match, before.revision)?;
                if before.admin && patch.admin == Some(false) {
                    let admins: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM principals WHERE admin = TRUE")
                        .fetch_one(&mut *tx)
                        .await?;
                    if admins <= 1 {
                        return Err(StoreError::Conflict(format!("{name:?} is the last platform admin")));
                    }
                }
                sqlx::query(
                    "UPDATE principals SET display_name = $2, email = $3, admin = $4, attributes = $5, \
                     updated_at = $6, revision = revision + 1 WHERE name = $1",
                )
                .bind(name)
                .bind(patch.display_name.as_ref().unwrap_or(&before.display_name))
                .bind(patch.email.as_ref().or(before.email.as_ref()))
                .bind(patch.admin.unwrap_or(before.admin))
                .bind(Json(patch.attributes.as_ref().unwrap_or(&before.attributes)))
                .bind(Utc::now())
                .execute(&mut *tx)
                .await?;
                let after = Self::principal_in(&mut *tx, name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("principal {name:?}")))?;
                let path = format!("/principals/{name}");
                self.commit(tx, seq, actor, "update", "principal", &path, Some(json(&before)), Some(json(&after)))
                    .await?;
                Ok(after)
            }

            async fn delete_principal(&self, actor: &str, name: &str, if_match: Option<i64>) -> Result<()> {
                let (_guard, mut tx, seq) = self.begin().await?;
                let before = Self::principal_in(&mut *tx, name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("principal {name:?}")))?;
                check_revision(if_match, before.revision)?;
                if before.admin {
                    let admins: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM principals WHERE admin = TRUE")
                        .fetch_one(&mut *tx)
                        .await?;
                    if admins <= 1 {
                        return Err(StoreError::Conflict(format!("{name:?} is the last platform admin")));
                    }
                }
                // Keys and team memberships go with the principal (ON DELETE CASCADE).
                sqlx::query("DELETE FROM principals WHERE name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| constraint(e, &format!("principal {name:?}")))?;
                let path = format!("/principals/{name}");
                self.commit(tx, seq, actor, "delete", "principal", &path, Some(json(&before)), None).await
            }

            async fn principal_teams(&self, name: &str) -> Result<Vec<String>> {
                Ok(sqlx::query_scalar("SELECT team FROM team_members WHERE principal = $1 ORDER BY team")
                    .bind(name)
                    .fetch_all(&self.pool)
                    .await?)
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

            // -------------------------------------------------------- API keys

            async fn create_api_key(&self, actor: &str, new: &NewApiKey) -> Result<ApiKey> {
                let (_guard, mut tx, seq) = self.begin().await?;
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
                self.commit(tx, seq, actor, "create", "api_key", &path, None, Some(json(&key))).await?;
                Ok(key)
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
                let (_guard, mut tx, seq) = self.begin().await?;
                let before = sqlx::query_as::<_, KeyRow>("SELECT * FROM api_keys WHERE id = $1 AND principal = $2")
                    .bind(id)
                    .bind(principal)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("API key {id:?} of {principal:?}")))?
                    .into_stored()
                    .key;
                if before.revoked_at.is_some() {
                    return Ok(before); // revoking twice changes nothing
                }
                let mut after = before.clone();
                after.revoked_at = Some(Utc::now());
                sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(after.revoked_at)
                    .execute(&mut *tx)
                    .await?;
                let path = format!("/principals/{principal}/keys/{id}");
                self.commit(tx, seq, actor, "revoke", "api_key", &path, Some(json(&before)), Some(json(&after)))
                    .await?;
                Ok(after)
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

            async fn memberships(&self) -> Result<Vec<(String, String)>> {
                Ok(sqlx::query_as("SELECT team, principal FROM team_members ORDER BY team, principal")
                    .fetch_all(&self.pool)
                    .await?)
            }

            // -------------------------------------------------------- teams

            async fn create_team(&self, actor: &str, new: &TeamCreate) -> Result<Team> {
                let (_guard, mut tx, seq) = self.begin().await?;
                let now = Utc::now();
                sqlx::query(
                    "INSERT INTO teams (name, title, description, created_at, updated_at, revision) \
                     VALUES ($1, $2, $3, $4, $4, 1)",
                )
                .bind(&new.name)
                .bind(new.title.as_deref().unwrap_or(&new.name))
                .bind(new.description.as_deref().unwrap_or(""))
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| constraint(e, &format!("team {:?}", new.name)))?;
                for member in &new.members {
                    if Self::principal_in(&mut *tx, member).await?.is_none() {
                        return Err(StoreError::Invalid(format!("member {member:?}: no such principal")));
                    }
                    sqlx::query("INSERT INTO team_members (team, principal) VALUES ($1, $2)")
                        .bind(&new.name)
                        .bind(member)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| constraint(e, &format!("member {member:?}")))?;
                }
                let created = Self::team_in(&mut tx, &new.name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("team {:?}", new.name)))?;
                let path = format!("/teams/{}", new.name);
                self.commit(tx, seq, actor, "create", "team", &path, None, Some(json(&created))).await?;
                Ok(created)
            }

            async fn get_team(&self, name: &str) -> Result<Option<Team>> {
                let Some(row) = sqlx::query_as::<_, TeamRow>("SELECT * FROM teams WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
                else {
                    return Ok(None);
                };
                let mut members = self.members_of(&[name.to_string()]).await?;
                Ok(Some(row.into_api(members.remove(name).unwrap_or_default())))
            }

            async fn list_teams(&self, page: &PageRequest) -> Result<Vec<Team>> {
                let rows = sqlx::query_as::<_, TeamRow>("SELECT * FROM teams WHERE name > $1 ORDER BY name LIMIT $2")
                    .bind(page.after.as_deref().unwrap_or(""))
                    .bind(page.limit + 1)
                    .fetch_all(&self.pool)
                    .await?;
                let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
                let mut members = self.members_of(&names).await?;
                Ok(rows
                    .into_iter()
                    .map(|r| {
                        let m = members.remove(&r.name).unwrap_or_default();
                        r.into_api(m)
                    })
                    .collect())
            }

            async fn update_team(&self, actor: &str, name: &str, if_match: Option<i64>, patch: &TeamUpdate) -> Result<Team> {
                let (_guard, mut tx, seq) = self.begin().await?;
                let before = Self::team_in(&mut tx, name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("team {name:?}")))?;
                check_revision(if_match, before.revision)?;
                sqlx::query(
                    "UPDATE teams SET title = $2, description = $3, updated_at = $4, revision = revision + 1 WHERE name = $1",
                )
                .bind(name)
                .bind(patch.title.as_ref().unwrap_or(&before.title))
                .bind(patch.description.as_ref().unwrap_or(&before.description))
                .bind(Utc::now())
                .execute(&mut *tx)
                .await?;
                let after = Self::team_in(&mut tx, name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("team {name:?}")))?;
                let path = format!("/teams/{name}");
                self.commit(tx, seq, actor, "update", "team", &path, Some(json(&before)), Some(json(&after))).await?;
                Ok(after)
            }

            async fn delete_team(&self, actor: &str, name: &str, if_match: Option<i64>) -> Result<()> {
                let (_guard, mut tx, seq) = self.begin().await?;
                let before = Self::team_in(&mut tx, name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("team {name:?}")))?;
                check_revision(if_match, before.revision)?;
                sqlx::query("DELETE FROM teams WHERE name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| match constraint(e, &format!("team {name:?}")) {
                        StoreError::Conflict(_) => {
                            StoreError::Conflict(format!("team {name:?} still owns domains or products"))
                        }
                        other => other,
                    })?;
                let path = format!("/teams/{name}");
                self.commit(tx, seq, actor, "delete", "team", &path, Some(json(&before)), None).await
            }

            async fn add_team_member(&self, actor: &str, team: &str, principal: &str) -> Result<Team> {
                let (_guard, mut tx, seq) = self.begin().await?;
                let before = Self::team_in(&mut tx, team)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("team {team:?}")))?;
                if Self::principal_in(&mut *tx, principal).await?.is_none() {
                    return Err(StoreError::NotFound(format!("principal {principal:?}")));
                }
                if before.members.iter().any(|m| m == principal) {
                    return Ok(before); // already a member: nothing changes
                }
                sqlx::query("INSERT INTO team_members (team, principal) VALUES ($1, $2)")
                    .bind(team)
                    .bind(principal)
                    .execute(&mut *tx)
                    .await?;
                let after = Self::touch_team(&mut tx, team).await?;
                let path = format!("/teams/{team}/members/{principal}");
                self.commit(tx, seq, actor, "create", "team_member", &path, Some(json(&before)), Some(json(&after)))
                    .await?;
                Ok(after)
            }

            async fn remove_team_member(&self, actor: &str, team: &str, principal: &str) -> Result<Team> {
                let (_guard, mut tx, seq) = self.begin().await?;
                let before = Self::team_in(&mut tx, team)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("team {team:?}")))?;
                if !before.members.iter().any(|m| m == principal) {
                    return Err(StoreError::NotFound(format!("member {principal:?} of team {team:?}")));
                }
                sqlx::query("DELETE FROM team_members WHERE team = $1 AND principal = $2")
                    .bind(team)
                    .bind(principal)
                    .execute(&mut *tx)
                    .await?;
                let after = Self::touch_team(&mut tx, team).await?;
                let path = format!("/teams/{team}/members/{principal}");
                self.commit(tx, seq, actor, "delete", "team_member", &path, Some(json(&before)), Some(json(&after)))
                    .await?;
                Ok(after)
            }

            // -------------------------------------------------------- domains

            async fn create_domain(&self, actor: &str, new: &DomainCreate) -> Result<Domain> {
                let (_guard, mut tx, seq) = self.begin().await?;
                Self::require_team(&mut tx, &new.owner_team).await?;
                let now = Utc::now();
                sqlx::query(
                    "INSERT INTO domains (name, title, description, owner_team, created_at, updated_at, revision) \
                     VALUES ($1, $2, $3, $4, $5, $5, 1)",
                )
                .bind(&new.name)
                .bind(new.title.as_deref().unwrap_or(&new.name))
                .bind(new.description.as_deref().unwrap_or(""))
                .bind(&new.owner_team)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| constraint(e, &format!("domain {:?}", new.name)))?;
                let created = Self::domain_in(&mut *tx, &new.name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("domain {:?}", new.name)))?;
                let path = format!("/domains/{}", new.name);
                self.commit(tx, seq, actor, "create", "domain", &path, None, Some(json(&created))).await?;
                Ok(created)
            }

            async fn get_domain(&self, name: &str) -> Result<Option<Domain>> {
                Self::domain_in(&self.pool, name).await
            }

            async fn list_domains(&self, page: &PageRequest) -> Result<Vec<Domain>> {
                Ok(sqlx::query_as::<_, DomainRow>("SELECT * FROM domains WHERE name > $1 ORDER BY name LIMIT $2")
                    .bind(page.after.as_deref().unwrap_or(""))
                    .bind(page.limit + 1)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(Domain::from)
                    .collect())
            }

            async fn update_domain(
                &self,
                actor: &str,
                name: &str,
                if_match: Option<i64>,
                patch: &DomainUpdate,
            ) -> Result<Domain> {
                let (_guard, mut tx, seq) = self.begin().await?;
                let before = Self::domain_in(&mut *tx, name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("domain {name:?}")))?;
                check_revision(if_match, before.revision)?;
                if let Some(team) = &patch.owner_team {
                    Self::require_team(&mut tx, team).await?;
                }
                sqlx::query(
                    "UPDATE domains SET title = $2, description = $3, owner_team = $4, updated_at = $5, \
                     revision = revision + 1 WHERE name = $1",
                )
                .bind(name)
                .bind(patch.title.as_ref().unwrap_or(&before.title))
                .bind(patch.description.as_ref().unwrap_or(&before.description))
                .bind(patch.owner_team.as_ref().unwrap_or(&before.owner_team))
                .bind(Utc::now())
                .execute(&mut *tx)
                .await?;
                let after = Self::domain_in(&mut *tx, name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("domain {name:?}")))?;
                let path = format!("/domains/{name}");
                self.commit(tx, seq, actor, "update", "domain", &path, Some(json(&before)), Some(json(&after))).await?;
                Ok(after)
            }

            async fn delete_domain(&self, actor: &str, name: &str, if_match: Option<i64>) -> Result<()> {
                let (_guard, mut tx, seq) = self.begin().await?;
                let before = Self::domain_in(&mut *tx, name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("domain {name:?}")))?;
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
                sqlx::query("DELETE FROM domains WHERE name = $1").bind(name).execute(&mut *tx).await?;
                let path = format!("/domains/{name}");
                self.commit(tx, seq, actor, "delete", "domain", &path, Some(json(&before)), None).await
            }

            // -------------------------------------------------------- products

            async fn create_product(&self, actor: &str, domain: &str, new: &ProductCreate) -> Result<Product> {
                let (_guard, mut tx, seq) = self.begin().await?;
                let owning_domain = Self::domain_in(&mut *tx, domain)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("domain {domain:?}")))?;
                let owner_team = new.owner_team.clone().unwrap_or(owning_domain.owner_team);
                Self::require_team(&mut tx, &owner_team).await?;
                let now = Utc::now();
                sqlx::query(
                    "INSERT INTO products (domain, name, title, description, owner_team, visibility, status, sunset_date, \
                     tags, output_ports, input_ports, latest_contract_version, compatibility, created_at, updated_at, revision) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'draft', NULL, $7, $8, $9, NULL, $11, $10, $10, 1)",
                )
                .bind(domain)
                .bind(&new.name)
                .bind(new.title.as_deref().unwrap_or(&new.name))
                .bind(new.description.as_deref().unwrap_or(""))
                .bind(&owner_team)
                .bind(new.visibility.as_str())
                .bind(Json(&new.tags))
                .bind(Json(&new.output_ports))
                .bind(Json(&new.input_ports))
                .bind(now)
                .bind(new.compatibility.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| constraint(e, &format!("product {domain}.{}", new.name)))?;
                Self::write_tags(&mut tx, domain, &new.name, &new.tags).await?;
                Self::write_inputs(&mut tx, domain, &new.name, &new.input_ports).await?;
                let created = Self::product_in(&mut *tx, domain, &new.name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("product {domain}.{}", new.name)))?;
                let path = format!("/domains/{domain}/products/{}", new.name);
                self.commit(tx, seq, actor, "create", "product", &path, None, Some(json(&created))).await?;
                Ok(created)
            }

            async fn get_product(&self, domain: &str, name: &str) -> Result<Option<Product>> {
                Self::product_in(&self.pool, domain, name).await
            }

            async fn list_products(&self, q: &ProductQuery) -> Result<Vec<Product>> {
                let mut qb = QueryBuilder::<$db>::new("SELECT p.* FROM products p WHERE 1 = 1");
                if let ProductScope::VisibleTo { principal: who, granted } = &q.scope {
                    qb.push(" AND (p.visibility = 'discoverable' OR p.owner_team IN (SELECT team FROM team_members WHERE principal = ")
                        .push_bind(who.clone())
                        .push(") OR p.domain IN (SELECT d.name FROM domains d JOIN team_members m ON m.team = d.owner_team WHERE m.principal = ")
                        .push_bind(who.clone())
                        .push(")");
                    for target in granted {
                        match target {
                            Target::Product { domain, product } => {
                                qb.push(" OR (p.domain = ").push_bind(domain.clone()).push(" AND p.name = ").push_bind(product.clone()).push(")");
                            }
                            Target::Domain { domain } => {
                                qb.push(" OR p.domain = ").push_bind(domain.clone());
                            }
                            Target::Tag { tag } => {
                                qb.push(" OR EXISTS (SELECT 1 FROM product_tags t WHERE t.domain = p.domain AND t.product = p.name AND t.tag = ")
                                    .push_bind(tag.clone())
                                    .push(")");
                            }
                            Target::All => {
                                qb.push(" OR 1 = 1");
                            }
                        }
                    }
                    qb.push(")");
                }
                if let Some(domain) = &q.domain {
                    qb.push(" AND p.domain = ").push_bind(domain.clone());
                }
                if let Some(tag) = &q.tag {
                    qb.push(" AND EXISTS (SELECT 1 FROM product_tags t WHERE t.domain = p.domain AND t.product = p.name AND t.tag = ")
                        .push_bind(tag.clone())
                        .push(")");
                }
                if let Some(status) = q.status {
                    qb.push(" AND p.status = ").push_bind(status.as_str());
                }
                if let Some(team) = &q.owner_team {
                    qb.push(" AND p.owner_team = ").push_bind(team.clone());
                }
                if let Some(visibility) = q.visibility {
                    qb.push(" AND p.visibility = ").push_bind(visibility.as_str());
                }
                if let Some(text) = &q.text {
                    let pattern = like_pattern(text);
                    qb.push(" AND (LOWER(p.name) LIKE ").push_bind(pattern.clone()).push(" ESCAPE '\\'");
                    qb.push(" OR LOWER(p.title) LIKE ").push_bind(pattern.clone()).push(" ESCAPE '\\'");
                    qb.push(" OR LOWER(p.description) LIKE ").push_bind(pattern.clone()).push(" ESCAPE '\\'");
                    qb.push(" OR EXISTS (SELECT 1 FROM product_tags t WHERE t.domain = p.domain AND t.product = p.name AND LOWER(t.tag) LIKE ")
                        .push_bind(pattern)
                        .push(" ESCAPE '\\'))");
                }
                if let Some(after) = &q.page.after {
                    let (d, p) = split_product_cursor(after);
                    qb.push(" AND (p.domain > ").push_bind(d.clone());
                    qb.push(" OR (p.domain = ").push_bind(d).push(" AND p.name > ").push_bind(p).push("))");
                }
                qb.push(" ORDER BY p.domain, p.name LIMIT ").push_bind(q.page.limit + 1);
                qb.build_query_as::<ProductRow>()
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(ProductRow::into_api)
                    .collect()
            }

            async fn update_product(
                &self,
                actor: &str,
                domain: &str,
                name: &str,
                if_match: Option<i64>,
                patch: &ProductUpdate,
            ) -> Result<Product> {
                let (_guard, mut tx, seq) = self.begin().await?;
                let before = Self::product_in(&mut *tx, domain, name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("product {domain}.{name}")))?;
                check_revision(if_match, before.revision)?;
                let status = patch.status.unwrap_or(before.status);
                before.status.transition_to(status).map_err(StoreError::IllegalTransition)?;
                let mut sunset_date = patch.sunset_date.or(before.sunset_date);
                match status {
                    ProductStatus::Draft | ProductStatus::Published | ProductStatus::Retired if patch.sunset_date.is_some() => {
                        return Err(StoreError::Invalid("sunset_date applies only to deprecated products".into()));
                    }
                    ProductStatus::Published if before.status != ProductStatus::Published => {
                        if before.latest_contract_version.is_none() {
                            return Err(StoreError::IllegalTransition(format!(
                                "{domain}.{name} cannot be published without a contract: register one first"
                            )));
                        }
                        sunset_date = None;
                    }
                    ProductStatus::Deprecated if sunset_date.is_none() => {
                        return Err(StoreError::IllegalTransition(format!(
                            "deprecating {domain}.{name} needs a sunset_date"
                        )));
                    }
                    _ => {}
                }
                let owner_team = patch.owner_team.as_ref().unwrap_or(&before.owner_team);
                if patch.owner_team.is_some() {
                    Self::require_team(&mut tx, owner_team).await?;
                }
                let tags = patch.tags.as_ref().unwrap_or(&before.tags);
                let output_ports = patch.output_ports.as_ref().unwrap_or(&before.output_ports);
                let input_ports = patch.input_ports.as_ref().unwrap_or(&before.input_ports);
                sqlx::query(
                    "UPDATE products SET title = $3, description = $4, owner_team = $5, visibility = $6, status = $7, \
                     sunset_date = $8, tags = $9, output_ports = $10, input_ports = $11, updated_at = $12, \
                     compatibility = $13, revision = revision + 1 WHERE domain = $1 AND name = $2",
                )
                .bind(domain)
                .bind(name)
                .bind(patch.title.as_ref().unwrap_or(&before.title))
                .bind(patch.description.as_ref().unwrap_or(&before.description))
                .bind(owner_team)
                .bind(patch.visibility.unwrap_or(before.visibility).as_str())
                .bind(status.as_str())
                .bind(sunset_date)
                .bind(Json(tags))
                .bind(Json(output_ports))
                .bind(Json(input_ports))
                .bind(Utc::now())
                .bind(patch.compatibility.unwrap_or(before.compatibility).as_str())
                .execute(&mut *tx)
                .await?;
                if patch.tags.is_some() {
                    Self::write_tags(&mut tx, domain, name, tags).await?;
                }
                if patch.input_ports.is_some() {
                    Self::write_inputs(&mut tx, domain, name, input_ports).await?;
                }
                let after = Self::product_in(&mut *tx, domain, name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("product {domain}.{name}")))?;
                let path = format!("/domains/{domain}/products/{name}");
                let action = if before.status == after.status { "update" } else { after.status.as_str() };
                self.commit(tx, seq, actor, action, "product", &path, Some(json(&before)), Some(json(&after)))
                    .await?;
                Ok(after)
            }

            async fn delete_product(&self, actor: &str, domain: &str, name: &str, if_match: Option<i64>) -> Result<()> {
                let (_guard, mut tx, seq) = self.begin().await?;
                let before = Self::product_in(&mut *tx, domain, name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("product {domain}.{name}")))?;
                check_revision(if_match, before.revision)?;
                if !matches!(before.status, ProductStatus::Draft | ProductStatus::Retired) {
                    return Err(StoreError::IllegalTransition(format!(
                        "{domain}.{name} is {}: only draft or retired products can be deleted (deprecate and retire it first)",
                        before.status.as_str()
                    )));
                }
                let readers: Vec<(String, String)> = sqlx::query_as(
                    "SELECT domain, product FROM product_inputs WHERE up_domain = $1 AND up_product = $2 ORDER BY domain, product",
                )
                .bind(domain)
                .bind(name)
                .fetch_all(&mut *tx)
                .await?;
                if !readers.is_empty() {
                    let names: Vec<String> = readers.iter().map(|(d, p)| format!("{d}.{p}")).collect();
                    return Err(StoreError::Conflict(format!(
                        "{domain}.{name} is an input port of {}",
                        names.join(", ")
                    )));
                }
                sqlx::query("DELETE FROM products WHERE domain = $1 AND name = $2")
                    .bind(domain)
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| constraint(e, &format!("product {domain}.{name}")))?;
                let path = format!("/domains/{domain}/products/{name}");
                self.commit(tx, seq, actor, "delete", "product", &path, Some(json(&before)), None).await
            }

            async fn lineage_edges(&self) -> Result<Vec<Edge>> {
                Self::edges_in(&self.pool).await
            }

            // -------------------------------------------------------- contracts

            async fn add_contract(
                &self,
                actor: &str,
                domain: &str,
                product: &str,
                new: &NewContract,
            ) -> Result<ContractVersion> {
                let (_guard, mut tx, seq) = self.begin().await?;
                let before = Self::product_in(&mut *tx, domain, product)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("product {domain}.{product}")))?;
                if before.status == ProductStatus::Retired {
                    return Err(StoreError::IllegalTransition(format!(
                        "{domain}.{product} is retired: it takes no new contract versions"
                    )));
                }
                if let Some(latest) = &before.latest_contract_version {
                    let latest = semver::Version::parse(latest)
                        .map_err(|_| corrupt("contract version", latest))?;
                    if new.version == latest {
                        return Err(StoreError::Conflict(format!(
                            "contract version {} of {domain}.{product} already exists: versions are immutable, submit a new version",
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
                self.commit(tx, seq, actor, "create", "contract", &path, None, Some(json(&created))).await?;
                Ok(created)
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

            // -------------------------------------------------------- quality

            async fn add_quality_run(
                &self,
                actor: &str,
                domain: &str,
                product: &str,
                run: &QualityRunCreate,
                health: Health,
            ) -> Result<QualityRun> {
                let (_guard, mut tx, seq) = self.begin().await?;
                let before = Self::product_in(&mut *tx, domain, product)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("product {domain}.{product}")))?;
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
                let summary = serde_json::json!({"health": health.as_str(), "contract_version": run.contract_version,
                    "table_version": run.table_version, "results": run.results.len()});
                self.commit(tx, seq, actor, "create", "quality_run", &path, Some(serde_json::json!({"health": before.health.as_str()})), Some(summary))
                    .await?;
                Ok(stored)
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

sql_store!(SqliteStore, Sqlite, "sqlite");
sql_store!(PgStore, Postgres, "postgres");

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(up: &str, down: &str) -> Edge {
        let (ud, up) = up.split_once('.').expect("ref");
        let (d, p) = down.split_once('.').expect("ref");
        Edge {
            up_domain: ud.into(),
            up_product: up.into(),
            domain: d.into(),
            product: p.into(),
        }
    }

    fn key(s: &str) -> (String, String) {
        let (d, p) = s.split_once('.').expect("ref");
        (d.into(), p.into())
    }

    #[test]
    fn finds_cycles_through_the_new_inputs() {
        let edges = vec![edge("a.x", "a.y"), edge("a.y", "a.z")];
        assert_eq!(
            find_cycle(&edges, &key("a.x"), &[key("a.z")]),
            Some(vec!["a.x".into(), "a.z".into(), "a.y".into(), "a.x".into()])
        );
        assert_eq!(find_cycle(&edges, &key("a.w"), &[key("a.z")]), None);
        // Replacing a product's inputs drops its old edges.
        assert_eq!(find_cycle(&edges, &key("a.y"), &[]), None);
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_Off"), "%50\\%\\_off%");
    }
}
