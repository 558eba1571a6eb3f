//! The gateway's engine: one per process, shared by HTTP, PostgreSQL wire and
//! Flight SQL. It holds the current bundle, the shared table providers and
//! caches, and runs every query through the same steps: size check, admission
//! (a concurrency limit with a bounded queue), parsing with a depth limit and
//! only queries allowed, planning on a thread with a large stack, then
//! execution under a per-query memory pool, spill cap, deadline and result caps.
//!
//! - [`bundle`]: the bundle in force, checked and indexed; API keys checked against it.
//! - [`session`]: a principal's view of the mesh, and a statement's way from
//!   text to a physical plan.
//! - [`complexity`]: bounds on a statement's shape, before it is planned.
//! - [`admission`]: the concurrency limit and its bounded queue.
//! - [`audit`]: what a query read and under which policies, reported once.
//! - [`explain`]: EXPLAIN without storage paths for non-admins.
//! - [`memory`]: each query's pool within the process's; capped large-value functions.
//! - [`stream`]: a running query's results under its deadline and result caps.

mod admission;
mod audit;
mod bundle;
mod complexity;
mod explain;
mod memory;
mod session;
mod stream;
mod tokens;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use datafusion::catalog::MemoryCatalogProviderList;
use datafusion::error::DataFusionError;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::context::SessionState;
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionConfig;
use tokio::sync::{Semaphore, watch};

pub use self::audit::{AuditSink, Hooks, LogAudit, QueryRecord, Saving, Touched};
use self::bundle::Compiled;
pub use self::session::{Principal, Protocol, Session};
pub use self::stream::QueryStream;
use crate::accel::{AcceleratedTable, Accelerator, CopyState};
use crate::config::{GatewayConfig, Limits};
use crate::error::QueryError;
use crate::tables::{CATALOG, TableCache};

/// Stack of the engine's threads (planning and execution): deep (but
/// depth-limited) queries plan and run without any risk of overflowing it.
const PLANNER_STACK: usize = 64 << 20;

/// The engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    limits: Limits,
    /// Past this long without word from the catalog, queries are refused.
    max_staleness: Option<Duration>,
    /// When the catalog last confirmed the bundle in force.
    confirmed: RwLock<Option<std::time::SystemTime>>,
    bundle: RwLock<Option<Arc<Compiled>>>,
    installed: watch::Sender<i64>,
    tables: Arc<TableCache>,
    template: SessionState,
    runtime: Arc<RuntimeEnv>,
    /// What all queries together may hold (the total, less acceleration's budget).
    memory: Arc<dyn MemoryPool>,
    slots: Arc<Semaphore>,
    shares: admission::Shares,
    waiting: AtomicUsize,
    planner: Option<tokio::runtime::Runtime>,
    hooks: Hooks,
    /// The issuers' keys as this gateway fetches them itself.
    issuer_keys: tokens::DirectKeys,
    /// Failed-authentication throttling, shared by every listener.
    throttle: tessera_http::Throttle,
}

impl Inner {
    fn runtime(&self) -> Result<&tokio::runtime::Runtime, QueryError> {
        self.planner
            .as_ref()
            .ok_or_else(|| QueryError::Internal("the engine has stopped".into()))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping a runtime from async code panics; let its threads wind down.
        if let Some(planner) = self.planner.take() {
            planner.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("bundle_version", &self.bundle_version())
            .finish_non_exhaustive()
    }
}

/// The serving configuration of every session. Each setting was measured with
/// `cargo run --profile measure -p tessera-gateway --example settings -- 1 3`
/// (the 22 TPC-H queries over the demo mesh at SF 1, A B A B, median of the
/// suite's total, 2 cores, local disk, 2026-11-26): the ratio is the suite's time
/// with the setting switched the other way.
pub fn session_config(target_partitions: usize) -> SessionConfig {
    let mut config = SessionConfig::new()
        // information_schema is per session, so it lists only what the principal may query.
        .with_information_schema(true)
        // Sessions see one catalog, built per principal: no default catalog to create.
        .with_create_default_catalog_and_schema(false)
        .with_default_catalog_and_schema(CATALOG, "public")
        // One partition per core: 1.32x slower with a single partition.
        .with_target_partitions(target_partitions)
        // Row-group and page pruning from Parquet statistics and the page index:
        // 1.02x slower without.
        .with_parquet_pruning(true)
        .with_collect_statistics(true);
    let options = config.options_mut();
    // Late materialization (evaluating filters inside the Parquet decoder) is
    // left off: with it on, the suite was 1.07x slower at SF 1 (1.02x at SF 0.1);
    // TPC-H's filters are not selective enough to pay for it.
    options.execution.parquet.pushdown_filters = false;
    options.execution.parquet.reorder_filters = false;
    config
}

impl Engine {
    pub fn new(config: &GatewayConfig) -> Result<Self, QueryError> {
        Self::with_hooks(config, Hooks::default())
    }

    /// An engine whose queries go through `hooks` (audit sink, policy rewrite).
    pub fn with_hooks(config: &GatewayConfig, hooks: Hooks) -> Result<Self, QueryError> {
        let internal = |e: DataFusionError| QueryError::Internal(e.to_string());
        let cores = std::thread::available_parallelism().map_or(2, NonZeroUsize::get);
        // The shared runtime: Parquet footers and page indexes are cached across
        // queries (the file metadata cache: 1.007x slower without it on local
        // disk, where reading a footer is cheap; on object storage every footer
        // is a request), object stores registered once.
        let runtime = RuntimeEnvBuilder::new()
            .with_metadata_cache_limit(256 << 20)
            .build_arc()
            .map_err(internal)?;
        let mut template = SessionStateBuilder::new()
            .with_config(session_config(cores))
            .with_runtime_env(Arc::clone(&runtime))
            .with_default_features()
            // generate_series/range are the only default table functions; they
            // read no files but can run away, so untrusted SQL does without them.
            .with_table_functions(HashMap::new())
            .with_catalog_list(Arc::new(MemoryCatalogProviderList::new()))
            .build();
        let limits = &config.limits;
        let functions = template.scalar_functions().clone();
        for udf in memory::capped(|name| functions.get(name).cloned(), limits.function_output_cap()) {
            template.register_udf(Arc::new(udf)).map_err(internal)?;
        }
        let accelerated = config.acceleration.memory_bytes;
        let Some(for_queries) = limits.query_memory_total(accelerated) else {
            return Err(QueryError::Internal(format!(
                "limits.total_memory_bytes ({:?}) must hold acceleration.memory_bytes ({accelerated}) \
                 and at least one query's limits.query_memory_bytes ({})",
                limits.total_memory_bytes, limits.query_memory_bytes
            )));
        };
        let for_queries = usize::try_from(for_queries).unwrap_or(usize::MAX);
        let planner = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores.min(4))
            .thread_name("tessera-engine")
            .thread_stack_size(PLANNER_STACK)
            .on_thread_start(below_serving)
            // Plannings run on blocking threads (see `Session::on_engine`).
            .max_blocking_threads(64)
            .enable_all()
            .build()
            .map_err(|e| QueryError::Internal(format!("cannot start the planner threads: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                limits: config.limits.clone(),
                max_staleness: config.max_staleness_ms.map(Duration::from_millis),
                confirmed: RwLock::new(None),
                bundle: RwLock::new(None),
                installed: watch::channel(0).0,
                tables: Arc::new(TableCache::new(
                    config.storage.clone(),
                    Duration::from_millis(config.table_staleness_ms),
                    Accelerator::new(&config.acceleration, template.clone()),
                )),
                template,
                runtime,
                memory: Arc::new(GreedyMemoryPool::new(for_queries)),
                slots: Arc::new(Semaphore::new(config.limits.max_concurrent_queries.max(1))),
                shares: admission::Shares::default(),
                waiting: AtomicUsize::new(0),
                planner: Some(planner),
                hooks,
                issuer_keys: tokens::DirectKeys::default(),
                throttle: tessera_http::Throttle::new(config.throttle),
            }),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Failed-authentication throttling of every listener.
    pub fn throttle(&self) -> &tessera_http::Throttle {
        &self.inner.throttle
    }

    /// Checks SQL text that another parser will read before the engine does
    /// (size, then each statement's shape; see [`complexity::screen`]), on the
    /// engine's threads: a statement's syntax tree can be deeper than a
    /// connection thread's stack.
    pub async fn screen(&self, sql: &str) -> Result<(), QueryError> {
        let limits = self.inner.limits.clone();
        limits.check_sql_len(sql)?;
        let sql = sql.to_string();
        self.inner
            .runtime()?
            .spawn_blocking(move || complexity::screen(&sql, &limits))
            .await
            .map_err(|e| QueryError::Internal(format!("screening the statement failed: {e}")))?
    }

    /// Where each table read so far stands with acceleration: held in memory,
    /// being copied, too large, failed (empty unless acceleration is configured).
    pub fn acceleration(&self) -> Vec<AcceleratedTable> {
        self.inner.tables.accelerator().map(|a| a.tables()).unwrap_or_default()
    }

    /// The tables held in memory now.
    pub fn accelerated(&self) -> Vec<AcceleratedTable> {
        let mut tables = self.acceleration();
        tables.retain(|t| t.state == CopyState::Held);
        tables
    }
}

/// Runs the calling thread (one of the engine's) at a lower scheduling
/// priority than the threads serving connections and the control thread:
/// query work never delays a deadline's answer, a bystander's query on the
/// wire or the installation of a new bundle, and still has every CPU when
/// nothing else needs one. Lowering a thread's own priority needs no
/// privilege (on Linux, `nice` is per thread).
fn below_serving() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), ENGINE_NICENESS) {
        tracing::debug!(error = %e, "cannot lower the engine thread's priority");
    }
}

/// How much lower the engine's threads run (`nice`, 0 to 19).
#[cfg(target_os = "linux")]
const ENGINE_NICENESS: i32 = 5;
