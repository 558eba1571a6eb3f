//! Acceleration: hot tables held in memory, keyed by their Delta version.
//!
//! A table read often enough (`hot_after` plannings of its latest version) is
//! copied into memory in the background: every row of that version, decoded
//! once into Arrow batches spread over the engine's partitions. Queries keep
//! reading the Delta files until the copy is complete, then read the copy for
//! as long as the table stays at that version. A commit moves the version the
//! table cache sees (within its staleness bound): the stale copy is dropped at
//! once, the files are read again, and a new copy is made. So a copy never
//! answers for a version other than its own.
//!
//! Copies share one memory budget. A copy that does not fit evicts the least
//! recently read ones; a table larger than the whole budget is not copied
//! (and not tried again at that version). Policies are unaffected: masks and
//! row filters wrap whatever provider the table cache hands out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::physical_plan::execute_stream;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

/// Settings of in-memory acceleration (`[gateway.acceleration]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Acceleration {
    /// Memory the in-memory copies may hold together, in bytes of Arrow
    /// memory; 0 (the default) turns acceleration off.
    pub memory_bytes: u64,
    /// How many plannings over a table's latest version make it hot.
    pub hot_after: u64,
    /// A copy read within this long is not evicted to make room for another
    /// (which waits instead): two hot tables that do not fit together must
    /// not evict each other on every query.
    pub evict_idle_ms: u64,
}

impl Default for Acceleration {
    fn default() -> Self {
        Self {
            memory_bytes: 0,
            hot_after: 2,
            evict_idle_ms: 10_000,
        }
    }
}

/// How long a copy that failed, or found no room, waits before another try.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// Where a table stands, as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyState {
    /// Held in memory: queries over this version read the copy.
    Held,
    /// Being copied; queries read the files meanwhile.
    Loading,
    /// Larger than the whole memory budget: read from the files.
    TooLarge,
    /// Fits the budget, but the copies held were all read too recently to
    /// be evicted; tried again after a minute.
    NoRoom,
    /// The copy failed; tried again after a minute.
    Failed { error: String },
}

/// One table known to the accelerator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AcceleratedTable {
    pub location: String,
    /// The version held, being copied, or refused.
    pub version: u64,
    pub state: CopyState,
    /// Plannings over the table's latest version so far.
    pub reads: u64,
    pub rows: u64,
    pub bytes: u64,
    /// How long the copy took, in milliseconds.
    pub load_ms: u64,
}

/// The in-memory copies of one engine.
pub struct Accelerator {
    config: Acceleration,
    partitions: usize,
    /// What scans run with: the engine's settings and shared runtime.
    state: SessionState,
    tables: Mutex<Tables>,
    /// One copy at a time: copying is a full scan, and two at once would
    /// double the transient memory and take both cores from queries.
    loads: Semaphore,
}

impl std::fmt::Debug for Accelerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accelerator")
            .field("config", &self.config)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Tables {
    by_location: HashMap<String, Entry>,
    /// Bytes of every copy held.
    used: u64,
}

#[derive(Default)]
struct Entry {
    reads: u64,
    copy: Option<Held>,
    /// The version being copied.
    loading: Option<u64>,
    /// A version not to copy (again, or before `retry_at`).
    refused: Option<Refused>,
}

struct Refused {
    version: u64,
    why: CopyState,
    retry_at: Option<Instant>,
}

impl Refused {
    fn new(version: u64, why: CopyState) -> Self {
        let retry_at = (why != CopyState::TooLarge).then(|| Instant::now() + RETRY_AFTER);
        Self { version, why, retry_at }
    }
}

struct Held {
    version: u64,
    provider: Arc<dyn TableProvider>,
    rows: u64,
    bytes: u64,
    load: Duration,
    last_read: Instant,
}

impl Accelerator {
    /// `None` when the configuration turns acceleration off.
    pub fn new(config: &Acceleration, state: SessionState) -> Option<Arc<Self>> {
        if config.memory_bytes == 0 {
            return None;
        }
        let partitions = state.config().target_partitions().max(1);
        Some(Arc::new(Self {
            config: config.clone(),
            partitions,
            state,
            tables: Mutex::default(),
            loads: Semaphore::new(1),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The provider a query should read `version` of the table at `location`
    /// through: the in-memory copy of that version if there is one, else
    /// `files` (the Delta provider of that version), starting a copy when the
    /// table has become hot. Must be called within a Tokio runtime.
    pub fn serve(
        self: &Arc<Self>,
        location: &str,
        version: u64,
        files: &Arc<dyn TableProvider>,
    ) -> Arc<dyn TableProvider> {
        let mut tables = self.lock();
        let Tables { by_location, used } = &mut *tables;
        let entry = by_location.entry(location.to_string()).or_default();
        entry.reads += 1;
        if let Some(held) = entry.copy.as_mut().filter(|c| c.version == version) {
            held.last_read = Instant::now();
            return Arc::clone(&held.provider);
        }
        // A copy of another version answers for nothing now: the table has moved on.
        if let Some(stale) = entry.copy.take() {
            *used -= stale.bytes;
        }
        let refused = entry
            .refused
            .as_ref()
            .is_some_and(|r| r.version == version && r.retry_at.is_none_or(|at| Instant::now() < at));
        if entry.reads >= self.config.hot_after && entry.loading != Some(version) && !refused {
            entry.loading = Some(version);
            let this = Arc::clone(self);
            let location = location.to_string();
            let files = Arc::clone(files);
            tokio::spawn(async move { this.load(location, version, files).await });
        }
        Arc::clone(files)
    }

    async fn load(self: Arc<Self>, location: String, version: u64, files: Arc<dyn TableProvider>) {
        let Ok(_permit) = self.loads.acquire().await else {
            return;
        };
        if self.lock().by_location.get(&location).and_then(|e| e.loading) != Some(version) {
            return; // superseded while waiting
        }
        let started = Instant::now();
        let copied = copy(&self.state, files.as_ref(), self.partitions, self.config.memory_bytes).await;
        let mut tables = self.lock();
        let Tables { by_location, used } = &mut *tables;
        let entry = by_location.entry(location.clone()).or_default();
        if entry.loading != Some(version) {
            return;
        }
        entry.loading = None;
        let (table, rows, bytes) = match copied {
            Ok(Some(copied)) => copied,
            Ok(None) => {
                tracing::warn!(
                    location,
                    version,
                    budget = self.config.memory_bytes,
                    "table larger than the acceleration memory: read from its files"
                );
                entry.refused = Some(Refused::new(version, CopyState::TooLarge));
                return;
            }
            Err(e) => {
                tracing::warn!(location, version, error = %e, "could not copy the table into memory");
                entry.refused = Some(Refused::new(version, CopyState::Failed { error: e.to_string() }));
                return;
            }
        };
        // Make room: copies idle long enough go, least recently read first,
        // and only if that makes enough room.
        let budget = self.config.memory_bytes;
        let idle = Duration::from_millis(self.config.evict_idle_ms);
        let mut evictable: Vec<(Instant, String, u64)> = by_location
            .iter()
            .filter(|(l, _)| **l != location)
            .filter_map(|(l, e)| e.copy.as_ref().map(|c| (c.last_read, l.clone(), c.bytes)))
            .filter(|(last_read, _, _)| last_read.elapsed() >= idle)
            .collect();
        evictable.sort();
        let needed = (*used + bytes).saturating_sub(budget);
        let (mut freed, mut victims) = (0, Vec::new());
        for (_, l, b) in evictable {
            if freed >= needed {
                break;
            }
            freed += b;
            victims.push(l);
        }
        if freed < needed {
            tracing::info!(location, version, bytes, "no room in the acceleration memory yet");
            if let Some(entry) = by_location.get_mut(&location) {
                entry.refused = Some(Refused::new(version, CopyState::NoRoom));
            }
            return;
        }
        for victim in victims {
            if let Some(evicted) = by_location.get_mut(&victim).and_then(|e| e.copy.take()) {
                *used -= evicted.bytes;
                tracing::info!(location = victim, bytes = evicted.bytes, "evicted from memory");
            }
        }
        let entry = by_location.entry(location.clone()).or_default();
        let load = started.elapsed();
        tracing::info!(
            location,
            version,
            rows,
            bytes,
            ms = load.as_millis() as u64,
            "table held in memory"
        );
        *used += bytes;
        entry.refused = None;
        entry.copy = Some(Held {
            version,
            provider: Arc::new(table),
            rows,
            bytes,
            load,
            last_read: Instant::now(),
        });
    }

    /// Every table the accelerator has seen read, with where it stands.
    pub fn tables(&self) -> Vec<AcceleratedTable> {
        let tables = self.lock();
        let mut out: Vec<AcceleratedTable> = tables
            .by_location
            .iter()
            .filter_map(|(location, e)| {
                let known = |version, state| AcceleratedTable {
                    location: location.clone(),
                    version,
                    state,
                    reads: e.reads,
                    rows: 0,
                    bytes: 0,
                    load_ms: 0,
                };
                if let Some(c) = &e.copy {
                    return Some(AcceleratedTable {
                        rows: c.rows,
                        bytes: c.bytes,
                        load_ms: c.load.as_millis() as u64,
                        ..known(c.version, CopyState::Held)
                    });
                }
                if let Some(version) = e.loading {
                    return Some(known(version, CopyState::Loading));
                }
                let r = e.refused.as_ref()?;
                Some(known(r.version, r.why.clone()))
            })
            .collect();
        out.sort_by(|a, b| a.location.cmp(&b.location));
        out
    }
}

/// Every row of `files` as a [`MemTable`] of `partitions` partitions balanced
/// by rows, with its row count and bytes; `None` as soon as it exceeds `budget`.
async fn copy(
    state: &SessionState,
    files: &dyn TableProvider,
    partitions: usize,
    budget: u64,
) -> Result<Option<(MemTable, u64, u64)>> {
    let schema = files.schema();
    let plan = files.scan(state, None, &[], None).await?;
    let mut stream = execute_stream(plan, state.task_ctx())?;
    let mut parts: Vec<(u64, Vec<RecordBatch>)> = vec![(0, Vec::new()); partitions];
    let (mut rows, mut bytes) = (0u64, 0u64);
    while let Some(batch) = stream.try_next().await? {
        if batch.num_rows() == 0 {
            continue;
        }
        let batch = own(&schema, &batch)?;
        rows += batch.num_rows() as u64;
        bytes += batch.get_array_memory_size() as u64;
        if bytes > budget {
            return Ok(None);
        }
        if let Some(part) = parts.iter_mut().min_by_key(|(n, _)| *n) {
            part.0 += batch.num_rows() as u64;
            part.1.push(batch);
        }
    }
    let table = MemTable::try_new(schema, parts.into_iter().map(|(_, b)| b).collect())?;
    Ok(Some((table, rows, bytes)))
}

/// `batch` with the table's schema (as the Delta provider declares it), its
/// columns owning only their own data: string and binary views are compacted
/// out of the decoder's page buffers, which they would otherwise keep alive
/// (and which `get_array_memory_size` would count once per batch).
fn own(schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| {
            let column: ArrayRef = if column.data_type() == field.data_type() {
                Arc::clone(column)
            } else {
                cast(column, field.data_type())?
            };
            Ok(crate::compact::own_views(&column))
        })
        .collect::<Result<Vec<_>>>()?;
    if columns.len() != schema.fields().len() {
        return Err(DataFusionError::Internal(format!(
            "a scan answered {} columns for a table of {}",
            batch.num_columns(),
            schema.fields().len()
        )));
    }
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}
