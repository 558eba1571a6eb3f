//! The session's namespace: one catalog (`tessera`), a schema per domain, a table
//! per product the principal may query, over Delta table providers shared by
//! every session and refreshed within the staleness bound.
//!
//! Time travel: `<domain>."<table>@v<N>"` reads version N of the table
//! (quoted, since `@` is not an identifier character), e.g.
//! `SELECT count(*) FROM sales."orders@v3"`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result};
use tessera_lake::StorageLocation;

use crate::accel::Accelerator;
use crate::error::QueryError;
use crate::policy::{CompiledPolicy, GovernedTable};
use crate::served::{Check, Drifts, Served};

/// The catalog name of every session (what `current_database()` answers).
pub const CATALOG: &str = "tessera";

/// How many time-travel snapshots stay open.
const MAX_VERSIONS: usize = 64;

/// Time-travel providers by (location, version), with when they were opened.
type Versions = BTreeMap<(String, u64), (Opened, Instant)>;

/// How many earlier versions are looked at for one that matches the contract,
/// when the latest does not.
const MAX_LOOKBACK: u64 = 100;

/// The largest version number a Delta log can hold.
const MAX_VERSION: u64 = i64::MAX as u64;

/// One version of a table, opened: its provider and what its contract check needs.
#[derive(Debug, Clone)]
struct Opened {
    provider: Arc<dyn TableProvider>,
    schema: arrow::datatypes::SchemaRef,
    partition_columns: Vec<String>,
}

/// The contract check of a table's latest version.
#[derive(Debug, Clone)]
struct Serving {
    version: u64,
    contract: Arc<Served>,
    check: Check,
    /// When the check blocks the version: the last version that matched,
    /// projected (`None`: there is none).
    fallback: Option<(u64, Arc<dyn TableProvider>)>,
}

/// Delta tables and their providers, shared by all sessions.
#[derive(Debug)]
pub struct TableCache {
    storage: Vec<StorageLocation>,
    staleness: Duration,
    latest: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    versions: Mutex<Versions>,
    /// In-memory copies of hot tables' latest versions, when configured.
    accelerator: Option<Arc<Accelerator>>,
    /// What each table's latest version is served as, by location.
    serving: Mutex<HashMap<String, Serving>>,
    /// Tables found not matching their contracts.
    drifts: Drifts,
}

#[derive(Debug, Default)]
struct Slot {
    table: Option<deltalake::DeltaTable>,
    provider: Option<Arc<dyn TableProvider>>,
    checked: Option<Instant>,
}

/// The latest version of a table: its provider, version, schema and partitioning.
struct Latest {
    provider: Arc<dyn TableProvider>,
    version: Option<u64>,
    schema: arrow::datatypes::SchemaRef,
    partition_columns: Vec<String>,
}

impl TableCache {
    pub fn new(storage: Vec<StorageLocation>, staleness: Duration, accelerator: Option<Arc<Accelerator>>) -> Self {
        Self {
            storage,
            staleness,
            latest: Mutex::default(),
            versions: Mutex::default(),
            accelerator,
            serving: Mutex::default(),
            drifts: Drifts::default(),
        }
    }

    /// The tables found not matching their contracts.
    pub fn drifts(&self) -> &Drifts {
        &self.drifts
    }

    pub fn accelerator(&self) -> Option<&Arc<Accelerator>> {
        self.accelerator.as_ref()
    }

    fn options(&self, location: &str) -> HashMap<String, String> {
        tessera_lake::storage_options_for(&self.storage, location)
    }

    /// The provider of the table's latest version, at most `staleness` old
    /// (its in-memory copy when the table is accelerated), seen through its
    /// contract when it has one (see [`crate::served`]); `None` when there is
    /// no Delta table at the location (yet).
    pub async fn latest(
        &self,
        location: &str,
        contract: Option<&Arc<Served>>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(latest) = self.latest_files(location).await? else {
            return Ok(None);
        };
        let files = match (&self.accelerator, latest.version) {
            (Some(accelerator), Some(version)) => accelerator.serve(location, version, &latest.provider),
            _ => Arc::clone(&latest.provider),
        };
        let (Some(contract), Some(version)) = (contract, latest.version) else {
            return Ok(Some(files));
        };
        let serving = match self.serving_of(location) {
            Some(serving) if serving.version == version && Arc::ptr_eq(&serving.contract, contract) => serving,
            _ => {
                let check = contract.check(&latest.schema, &latest.partition_columns);
                let fallback = if check.blocking {
                    self.last_matching(location, version, contract).await?
                } else {
                    None
                };
                let drift = (!check.matches()).then(|| contract.drift(version, fallback.as_ref().map(|f| f.0), &check));
                self.drifts.record(location, drift);
                let serving = Serving {
                    version,
                    contract: Arc::clone(contract),
                    check,
                    fallback,
                };
                self.serving
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(location.to_string(), serving.clone());
                serving
            }
        };
        match (serving.check.blocking, serving.fallback) {
            (false, _) => Ok(Some(contract.project(files)?)),
            (true, Some((_, provider))) => Ok(Some(provider)),
            (true, None) => Err(QueryError::NotServed(format!(
                "{} is not served: its table (version {version}) no longer matches its contract ({}), \
                 and no earlier version does",
                contract.name(),
                serving.check.describe()
            ))
            .into_datafusion()),
        }
    }

    fn serving_of(&self, location: &str) -> Option<Serving> {
        self.serving
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(location)
            .cloned()
    }

    /// The latest version before `version` that `contract` may serve, projected.
    async fn last_matching(
        &self,
        location: &str,
        version: u64,
        contract: &Arc<Served>,
    ) -> Result<Option<(u64, Arc<dyn TableProvider>)>> {
        for v in (version.saturating_sub(MAX_LOOKBACK)..version).rev() {
            let Some(opened) = self.open_version(location, v).await? else {
                continue;
            };
            if !contract.check(&opened.schema, &opened.partition_columns).blocking {
                return Ok(Some((v, contract.project(opened.provider)?)));
            }
        }
        Ok(None)
    }

    /// The Delta provider of the table's latest version, with its version and schema.
    async fn latest_files(&self, location: &str) -> Result<Option<Latest>> {
        let slot = {
            let mut latest = self.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(latest.entry(location.to_string()).or_default())
        };
        let mut slot = slot.lock().await;
        if let (Some(provider), Some(checked), Some(table)) = (&slot.provider, slot.checked, &slot.table)
            && checked.elapsed() < self.staleness
        {
            return latest_of(location, table, Arc::clone(provider)).map(Some);
        }
        let storage = |e: tessera_lake::LakeError| QueryError::Storage(e.to_string()).into_datafusion();
        let refreshed = match slot.table.take() {
            Some(mut table) => {
                let before = table.version();
                table
                    .update_incremental(None)
                    .await
                    .map_err(|e| QueryError::Storage(format!("Delta table at {location}: {e}")).into_datafusion())?;
                let moved = table.version() != before;
                (table, moved)
            }
            None => match tessera_lake::open_table(location, &self.options(location))
                .await
                .map_err(storage)?
            {
                Some(table) => (table, true),
                None => return Ok(None),
            },
        };
        let (table, moved) = refreshed;
        let provider = match (&slot.provider, moved) {
            (Some(provider), false) => Arc::clone(provider),
            _ => table.table_provider().await?,
        };
        let latest = latest_of(location, &table, Arc::clone(&provider))?;
        slot.provider = Some(provider);
        slot.table = Some(table);
        slot.checked = Some(Instant::now());
        Ok(Some(latest))
    }

    /// The provider of one version of the table, seen through its contract
    /// when it has one; `None` when the version does not exist. A version the
    /// contract may not serve is refused.
    pub async fn at_version(
        &self,
        location: &str,
        version: u64,
        contract: Option<&Arc<Served>>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(opened) = self.open_version(location, version).await? else {
            return Ok(None);
        };
        let Some(contract) = contract else {
            return Ok(Some(opened.provider));
        };
        let check = contract.check(&opened.schema, &opened.partition_columns);
        if check.blocking {
            return Err(QueryError::NotServed(format!(
                "version {version} of {} is not served: it does not match the product's contract ({})",
                contract.name(),
                check.describe()
            ))
            .into_datafusion());
        }
        Ok(Some(contract.project(opened.provider)?))
    }

    /// One version of the table, opened (or from the cache of opened versions).
    async fn open_version(&self, location: &str, version: u64) -> Result<Option<Opened>> {
        if version > MAX_VERSION {
            return Err(QueryError::Data {
                sqlstate: "22003",
                message: format!("version {version} is out of range (at most {MAX_VERSION})"),
            }
            .into_datafusion());
        }
        let key = (location.to_string(), version);
        if let Some((opened, _)) = self.versions().get(&key) {
            return Ok(Some(opened.clone()));
        }
        let table = match tessera_lake::open_table_at(location, &self.options(location), Some(version)).await {
            Ok(Some(table)) => table,
            Ok(None) => return Ok(None),
            // A version that was never committed (or was vacuumed) does not exist.
            Err(tessera_lake::LakeError::Delta { source, .. })
                if matches!(*source, deltalake::DeltaTableError::InvalidVersion(_))
                    || source.to_string().contains("version") =>
            {
                return Ok(None);
            }
            Err(e) => return Err(QueryError::Storage(e.to_string()).into_datafusion()),
        };
        let provider = table.table_provider().await?;
        let Latest {
            schema,
            partition_columns,
            ..
        } = latest_of(location, &table, Arc::clone(&provider))?;
        let opened = Opened {
            provider,
            schema,
            partition_columns,
        };
        let mut versions = self.versions();
        if versions.len() >= MAX_VERSIONS
            && let Some(oldest) = versions.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| k.clone())
        {
            versions.remove(&oldest);
        }
        versions.insert(key, (opened.clone(), Instant::now()));
        Ok(Some(opened))
    }

    fn versions(&self) -> std::sync::MutexGuard<'_, Versions> {
        self.versions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What an opened table's snapshot says of itself.
fn latest_of(location: &str, table: &deltalake::DeltaTable, provider: Arc<dyn TableProvider>) -> Result<Latest> {
    let meta =
        tessera_lake::meta_of(location, table).map_err(|e| QueryError::Storage(e.to_string()).into_datafusion())?;
    Ok(Latest {
        provider,
        version: table.version(),
        schema: meta.schema,
        partition_columns: meta.partition_columns,
    })
}

/// A principal's catalog: its domains as schemas, plus the system schemas a
/// protocol adds (PostgreSQL wire adds `pg_catalog`). SQL cannot register
/// schemas (DDL is refused), so only the gateway's own code adds them.
#[derive(Debug)]
pub struct SessionCatalog {
    domains: BTreeMap<String, Arc<DomainSchema>>,
    system: std::sync::RwLock<BTreeMap<String, Arc<dyn SchemaProvider>>>,
}

/// Session catalogs alive now (a leak shows as a count that only grows).
static LIVE_SESSIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many sessions' catalogs are alive in this process.
pub fn live_sessions() -> usize {
    LIVE_SESSIONS.load(std::sync::atomic::Ordering::Relaxed)
}

impl Drop for SessionCatalog {
    fn drop(&mut self) {
        LIVE_SESSIONS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl SessionCatalog {
    pub fn new(domains: BTreeMap<String, Arc<DomainSchema>>) -> Self {
        LIVE_SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self {
            domains,
            system: std::sync::RwLock::default(),
        }
    }

    /// Drops the system schemas a protocol added. PostgreSQL's `pg_catalog`
    /// holds the session's catalog list, which holds this catalog: a cycle
    /// that keeps the whole session alive until this breaks it.
    pub fn clear_system(&self) {
        self.system
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    fn system(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<dyn SchemaProvider>>> {
        self.system.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl CatalogProvider for SessionCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.domains.keys().cloned().collect();
        names.extend(self.system().keys().cloned());
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        match self.domains.get(name) {
            Some(s) => Some(Arc::clone(s) as Arc<dyn SchemaProvider>),
            None => self.system().get(name).cloned(),
        }
    }

    fn register_schema(&self, name: &str, schema: Arc<dyn SchemaProvider>) -> Result<Option<Arc<dyn SchemaProvider>>> {
        if self.domains.contains_key(name) {
            return Err(DataFusionError::Plan(format!("schema {name} is a domain")));
        }
        Ok(self
            .system
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_string(), schema))
    }
}

/// A table of a principal's session: where it is, the contract it is served
/// through, and the policy it is read under.
#[derive(Debug, Clone)]
pub struct SessionTable {
    pub location: String,
    pub served: Option<Arc<Served>>,
    pub policy: Option<Arc<CompiledPolicy>>,
}

/// One domain's tables in a principal's session, by table name.
#[derive(Debug)]
pub struct DomainSchema {
    pub domain: String,
    pub tables: BTreeMap<String, SessionTable>,
    /// Tables of products the principal sees in the catalog but may not query
    /// (for the purpose declared): why, and how to ask for access. They are not
    /// listed; naming one is refused with this message instead of "not found".
    pub unqueryable: BTreeMap<String, String>,
    pub cache: Arc<TableCache>,
}

/// The provider as the session sees it: governed when a policy applies, to
/// every version alike (time travel reads old data under today's policy).
fn governed(table: &SessionTable, raw: Option<Arc<dyn TableProvider>>) -> Option<Arc<dyn TableProvider>> {
    let raw = raw?;
    Some(match &table.policy {
        Some(policy) => Arc::new(GovernedTable::new(raw, Arc::clone(policy))),
        None => raw,
    })
}

impl DomainSchema {
    /// `name@v<N>` -> (`name`, N); a version of digits too large for any Delta
    /// log is out of range.
    fn split_version(name: &str) -> Result<Option<(&str, u64)>> {
        let Some((base, version)) = name.rsplit_once("@v") else {
            return Ok(None);
        };
        if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        match version.parse() {
            Ok(v) => Ok(Some((base, v))),
            Err(_) => Err(QueryError::Data {
                sqlstate: "22003",
                message: format!("version {version} is out of range"),
            }
            .into_datafusion()),
        }
    }
}

#[async_trait]
impl SchemaProvider for DomainSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables.keys().cloned().collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        if let Some(table) = self.tables.get(name) {
            return Ok(governed(
                table,
                self.cache.latest(&table.location, table.served.as_ref()).await?,
            ));
        }
        let versioned = Self::split_version(name)?;
        if let Some((base, version)) = versioned
            && let Some(table) = self.tables.get(base)
        {
            return match self
                .cache
                .at_version(&table.location, version, table.served.as_ref())
                .await?
            {
                Some(provider) => Ok(governed(table, Some(provider))),
                None => Err(
                    QueryError::NotFound(format!("{}.{base} has no version {version}", self.domain)).into_datafusion(),
                ),
            };
        }
        let base = versioned.map_or(name, |(base, _)| base);
        match self.unqueryable.get(base) {
            Some(why) => Err(QueryError::NotAllowed(why.clone()).into_datafusion()),
            None => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.contains_key(name)
            || Self::split_version(name)
                .ok()
                .flatten()
                .is_some_and(|(base, _)| self.tables.contains_key(base))
    }
}
