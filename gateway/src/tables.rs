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

/// The catalog name of every session (what `current_database()` answers).
pub const CATALOG: &str = "tessera";

/// How many time-travel snapshots stay open.
const MAX_VERSIONS: usize = 64;

/// Time-travel providers by (location, version), with when they were opened.
type Versions = BTreeMap<(String, u64), (Arc<dyn TableProvider>, Instant)>;

/// Delta tables and their providers, shared by all sessions.
#[derive(Debug)]
pub struct TableCache {
    storage: Vec<StorageLocation>,
    staleness: Duration,
    latest: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    versions: Mutex<Versions>,
    /// In-memory copies of hot tables' latest versions, when configured.
    accelerator: Option<Arc<Accelerator>>,
}

#[derive(Debug, Default)]
struct Slot {
    table: Option<deltalake::DeltaTable>,
    provider: Option<Arc<dyn TableProvider>>,
    checked: Option<Instant>,
}

impl TableCache {
    pub fn new(storage: Vec<StorageLocation>, staleness: Duration, accelerator: Option<Arc<Accelerator>>) -> Self {
        Self {
            storage,
            staleness,
            latest: Mutex::default(),
            versions: Mutex::default(),
            accelerator,
        }
    }

    pub fn accelerator(&self) -> Option<&Arc<Accelerator>> {
        self.accelerator.as_ref()
    }

    fn options(&self, location: &str) -> HashMap<String, String> {
        tessera_lake::storage_options_for(&self.storage, location)
    }

    /// The provider of the table's latest version, at most `staleness` old
    /// (its in-memory copy when the table is accelerated); `None` when there is
    /// no Delta table at the location (yet).
    pub async fn latest(&self, location: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some((files, version)) = self.latest_files(location).await? else {
            return Ok(None);
        };
        Ok(Some(match (&self.accelerator, version) {
            (Some(accelerator), Some(version)) => accelerator.serve(location, version, &files),
            _ => files,
        }))
    }

    /// The Delta provider of the table's latest version and that version.
    async fn latest_files(&self, location: &str) -> Result<Option<(Arc<dyn TableProvider>, Option<u64>)>> {
        let slot = {
            let mut latest = self.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(latest.entry(location.to_string()).or_default())
        };
        let mut slot = slot.lock().await;
        if let (Some(provider), Some(checked)) = (&slot.provider, slot.checked)
            && checked.elapsed() < self.staleness
        {
            return Ok(Some((
                Arc::clone(provider),
                slot.table.as_ref().and_then(|t| t.version()),
            )));
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
        let version = table.version();
        slot.provider = Some(Arc::clone(&provider));
        slot.table = Some(table);
        slot.checked = Some(Instant::now());
        Ok(Some((provider, version)))
    }

    /// The provider of one version of the table; `None` when it does not exist.
    pub async fn at_version(&self, location: &str, version: u64) -> Result<Option<Arc<dyn TableProvider>>> {
        let key = (location.to_string(), version);
        if let Some((provider, _)) = self.versions().get(&key) {
            return Ok(Some(Arc::clone(provider)));
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
        let mut versions = self.versions();
        if versions.len() >= MAX_VERSIONS
            && let Some(oldest) = versions.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| k.clone())
        {
            versions.remove(&oldest);
        }
        versions.insert(key, (Arc::clone(&provider), Instant::now()));
        Ok(Some(provider))
    }

    fn versions(&self) -> std::sync::MutexGuard<'_, Versions> {
        self.versions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A principal's catalog: its domains as schemas, plus the system schemas a
/// protocol adds (PostgreSQL wire adds `pg_catalog`). SQL cannot register
/// schemas (DDL is refused), so only the gateway's own code adds them.
#[derive(Debug)]
pub struct SessionCatalog {
    domains: BTreeMap<String, Arc<DomainSchema>>,
    system: std::sync::RwLock<BTreeMap<String, Arc<dyn SchemaProvider>>>,
}

impl SessionCatalog {
    pub fn new(domains: BTreeMap<String, Arc<DomainSchema>>) -> Self {
        Self {
            domains,
            system: std::sync::RwLock::default(),
        }
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

/// A table of a principal's session: where it is, and the policy it is read under.
#[derive(Debug, Clone)]
pub struct SessionTable {
    pub location: String,
    pub policy: Option<Arc<CompiledPolicy>>,
}

/// One domain's tables in a principal's session, by table name.
#[derive(Debug)]
pub struct DomainSchema {
    pub tables: BTreeMap<String, SessionTable>,
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
    /// `name@v<N>` -> (`name`, N).
    fn split_version(name: &str) -> Option<(&str, u64)> {
        let (base, version) = name.rsplit_once("@v")?;
        Some((base, version.parse().ok()?))
    }
}

#[async_trait]
impl SchemaProvider for DomainSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables.keys().cloned().collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        if let Some(table) = self.tables.get(name) {
            return Ok(governed(table, self.cache.latest(&table.location).await?));
        }
        match Self::split_version(name) {
            Some((base, version)) => match self.tables.get(base) {
                Some(table) => Ok(governed(table, self.cache.at_version(&table.location, version).await?)),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.contains_key(name)
            || Self::split_version(name).is_some_and(|(base, _)| self.tables.contains_key(base))
    }
}
