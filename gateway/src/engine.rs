//! The gateway's engine: one per process, shared by HTTP, PostgreSQL wire and
//! Flight SQL. It holds the current bundle, the shared table providers and
//! caches, and runs every query through the same steps: size check, admission
//! (a concurrency limit with a bounded queue), parsing with a depth limit and
//! only queries allowed, planning on a thread with a large stack, then
//! execution under a per-query memory pool, spill cap, deadline and result caps.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::Utc;
use datafusion::catalog::{CatalogProviderList, MemoryCatalogProviderList};
use datafusion::common::ParamValues;
use datafusion::error::DataFusionError;
use datafusion::execution::context::{SQLOptions, SessionState};
use datafusion::execution::disk_manager::DiskManagerBuilder;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use futures::Stream;
use tessera_contracts::api::Attributes;
use tessera_contracts::bundle::{Bundle, BundleError};
use tessera_contracts::policy::effective_purpose;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::accel::{AcceleratedTable, Accelerator, CopyState};
use crate::config::{GatewayConfig, Limits};
use crate::error::QueryError;
use crate::policy::{CompiledPolicy, GovernedTable};
use crate::tables::{CATALOG, DomainSchema, SessionCatalog, SessionTable, TableCache};

/// Stack of the engine's threads (planning and execution): deep (but
/// depth-limited) queries plan and run without any risk of overflowing it.
const PLANNER_STACK: usize = 64 << 20;

/// An authenticated caller, as the engine knows it from the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub admin: bool,
    pub attributes: Attributes,
    pub teams: Vec<String>,
}

/// Which endpoint a query came through (for the audit record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Postgres,
    FlightSql,
    InProcess,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Postgres => "postgres",
            Self::FlightSql => "flight",
            Self::InProcess => "in_process",
        }
    }
}

/// What a query read, and under which policies (from its optimized plan).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// `domain.product`
    pub products: BTreeSet<String>,
    /// `domain.table.column`
    pub columns: BTreeSet<String>,
    /// `mask:domain.table.column`
    pub masks: BTreeSet<String>,
    /// `filter:domain.table`
    pub filters: BTreeSet<String>,
}

/// What the engine reports of every query, whatever its outcome.
#[derive(Debug, Clone)]
pub struct QueryRecord {
    pub id: uuid::Uuid,
    pub principal: String,
    pub protocol: Protocol,
    /// The purpose the query counted with, and one declared but refused.
    pub purpose: Option<String>,
    pub refused_purpose: Option<String>,
    pub touched: Touched,
    pub sql: String,
    pub bundle_version: i64,
    pub rows: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub outcome: Result<(), QueryError>,
}

/// Where query records go; the governance work sends them to the catalog.
pub trait AuditSink: Send + Sync + 'static {
    fn record(&self, record: QueryRecord);
}

/// The engine's extension points.
#[derive(Clone)]
pub struct Hooks {
    pub audit: Arc<dyn AuditSink>,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            audit: Arc::new(LogAudit),
        }
    }
}

/// The default sink: one log line per query.
#[derive(Debug, Default)]
pub struct LogAudit;

impl AuditSink for LogAudit {
    fn record(&self, r: QueryRecord) {
        match &r.outcome {
            Ok(()) => tracing::info!(query_id = %r.id, principal = %r.principal, protocol = ?r.protocol,
                rows = r.rows, bytes = r.bytes, elapsed_ms = r.elapsed.as_millis() as u64,
                bundle = r.bundle_version, "query"),
            Err(e) => tracing::info!(query_id = %r.id, principal = %r.principal, protocol = ?r.protocol,
                elapsed_ms = r.elapsed.as_millis() as u64, bundle = r.bundle_version,
                error = %e, sqlstate = e.sqlstate(), "query failed"),
        }
    }
}

/// A bundle checked and indexed for serving.
#[derive(Debug)]
struct Compiled {
    bundle: Bundle,
    /// Key id -> index of its principal.
    keys: HashMap<String, usize>,
}

/// Checks that every row filter of a bundle parses and names only columns of
/// its product's ports (where the contract lists them): a bundle that fails is
/// refused whole and the previous one stays in force.
fn compile_policies(content: &tessera_contracts::bundle::BundleContent) -> Result<(), BundleError> {
    for filter in &content.row_filters {
        let fail = |e: String| BundleError::Compile(format!("row filter {}: {e}", filter.name));
        let parsed = tessera_lake::policy::parse(&filter.expression).map_err(fail)?;
        let product = content
            .products
            .iter()
            .find(|p| p.domain == filter.domain && p.name == filter.product);
        for port in product.map(|p| p.output_ports.as_slice()).unwrap_or_default() {
            if port.columns.is_empty() {
                continue;
            }
            for column in tessera_lake::policy::columns(&parsed) {
                if !port.columns.iter().any(|c| c.name == column) {
                    return Err(fail(format!(
                        "major version {} of {}.{} has no column {column:?}",
                        port.major_version, filter.domain, filter.product
                    )));
                }
            }
        }
    }
    Ok(())
}

impl Compiled {
    fn new(bundle: Bundle) -> Result<Self, BundleError> {
        bundle.check()?;
        compile_policies(&bundle.content)?;
        let mut keys = HashMap::new();
        for (i, p) in bundle.content.principals.iter().enumerate() {
            for k in &p.keys {
                keys.insert(k.id.clone(), i);
            }
        }
        Ok(Self { bundle, keys })
    }
}

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
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    planner: Option<tokio::runtime::Runtime>,
    hooks: Hooks,
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
        let template = SessionStateBuilder::new()
            .with_config(session_config(cores))
            .with_runtime_env(Arc::clone(&runtime))
            .with_default_features()
            // generate_series/range are the only default table functions; they
            // read no files but can run away, so untrusted SQL does without them.
            .with_table_functions(HashMap::new())
            .with_catalog_list(Arc::new(MemoryCatalogProviderList::new()))
            .build();
        let planner = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores.min(4))
            .thread_name("tessera-engine")
            .thread_stack_size(PLANNER_STACK)
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
                slots: Arc::new(Semaphore::new(config.limits.max_concurrent_queries.max(1))),
                waiting: AtomicUsize::new(0),
                planner: Some(planner),
                hooks,
            }),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
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

    /// Checks a bundle just received from the catalog and swaps it in whole;
    /// the previous one stays on error.
    pub fn install(&self, bundle: Bundle) -> Result<(), BundleError> {
        self.install_confirmed_at(bundle, std::time::SystemTime::now())
    }

    /// Installs a bundle the catalog confirmed at `confirmed_at` (a saved one:
    /// its age counts against `max_staleness` from then).
    pub fn install_confirmed_at(&self, bundle: Bundle, confirmed_at: std::time::SystemTime) -> Result<(), BundleError> {
        let version = bundle.version;
        let compiled = Arc::new(Compiled::new(bundle)?);
        let mut current = self
            .inner
            .bundle
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = Some(compiled);
        *self
            .inner
            .confirmed
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(confirmed_at);
        drop(current);
        self.inner.installed.send_replace(version);
        Ok(())
    }

    fn current(&self) -> Result<Arc<Compiled>, QueryError> {
        let compiled = self
            .inner
            .bundle
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or(QueryError::NotReady)?;
        if let Some(max) = self.inner.max_staleness {
            let age = self
                .confirmed_at()
                .and_then(|at| std::time::SystemTime::now().duration_since(at).ok())
                .unwrap_or(Duration::MAX);
            if age > max {
                return Err(QueryError::Stale {
                    version: compiled.bundle.version,
                    age_secs: age.as_secs(),
                    max_secs: max.as_secs(),
                });
            }
        }
        Ok(compiled)
    }

    /// Records that the catalog confirmed the bundle in force at `at` (the
    /// source of the `max_staleness` clock; restored from disk after a restart).
    pub fn confirm(&self, at: std::time::SystemTime) {
        let mut confirmed = self
            .inner
            .confirmed
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if confirmed.is_none_or(|c| c < at) {
            *confirmed = Some(at);
        }
    }

    /// When the catalog last confirmed the bundle in force.
    pub fn confirmed_at(&self) -> Option<std::time::SystemTime> {
        *self
            .inner
            .confirmed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The bundle in force, whatever its age (for saving it and reporting it).
    pub fn bundle(&self) -> Option<Bundle> {
        self.inner
            .bundle
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|c| c.bundle.clone())
    }

    /// The version of the bundle in force, 0 before the first.
    pub fn bundle_version(&self) -> i64 {
        *self.inner.installed.borrow()
    }

    /// The hash of the bundle in force.
    pub fn bundle_hash(&self) -> Option<String> {
        self.bundle().map(|b| b.hash)
    }

    /// Follows the installed bundle version.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.inner.installed.subscribe()
    }

    /// The principal holding a presented API key.
    pub fn authenticate(&self, key: &str) -> Result<Principal, QueryError> {
        let compiled = self.current()?;
        let parsed = tessera_contracts::keys::parse(key).ok_or(QueryError::Unauthenticated)?;
        let index = *compiled.keys.get(parsed.id).ok_or(QueryError::Unauthenticated)?;
        let principal = &compiled.bundle.content.principals[index];
        let now = Utc::now();
        let live = principal.keys.iter().any(|k| {
            k.id == parsed.id
                && k.expires_at.is_none_or(|at| at > now)
                && tessera_contracts::keys::verify(parsed.secret, &k.secret_hash)
        });
        if !live {
            return Err(QueryError::Unauthenticated);
        }
        Ok(Principal {
            name: principal.name.clone(),
            admin: principal.admin,
            attributes: principal.attributes.clone(),
            teams: principal.teams.clone(),
        })
    }

    /// A session for `principal` declaring `purpose`: a view over the shared
    /// providers holding only the tables the principal may query, each under
    /// its policy. Cheap: no table is opened here.
    pub fn session(
        &self,
        principal: &Principal,
        protocol: Protocol,
        purpose: Option<&str>,
    ) -> Result<Session, QueryError> {
        let compiled = self.current()?;
        let content = &compiled.bundle.content;
        // Resolved from the current bundle, so a principal removed since
        // authentication has no session.
        let holder = content.principal(&principal.name).ok_or(QueryError::Unauthenticated)?;
        let (purpose, refused_purpose) = match effective_purpose(&holder.attributes, purpose) {
            Ok(p) => (p.map(str::to_string), None),
            Err(refused) => (None, Some(refused.to_string())),
        };
        let mut schemas = BTreeMap::new();
        for (domain, entries) in content.schemas_for(&holder.asker(purpose.as_deref()), Utc::now()) {
            let mut tables = BTreeMap::new();
            for e in entries {
                let policy = if e.policy.is_empty() {
                    None
                } else {
                    let name = format!("{domain}.{}", e.table);
                    let compiled = CompiledPolicy::new(name, &e.policy, &holder.name, &holder.attributes)
                        .map_err(QueryError::Internal)?;
                    Some(Arc::new(compiled))
                };
                tables.insert(
                    e.table,
                    SessionTable {
                        location: e.location.to_string(),
                        policy,
                    },
                );
            }
            schemas.insert(
                domain.to_string(),
                Arc::new(DomainSchema {
                    tables,
                    cache: Arc::clone(&self.inner.tables),
                }),
            );
        }
        let catalogs = MemoryCatalogProviderList::new();
        catalogs.register_catalog(CATALOG.to_string(), Arc::new(SessionCatalog::new(schemas)));
        let mut state = self.inner.template.clone();
        state.register_catalog_list(Arc::new(catalogs));
        Ok(Session {
            engine: self.clone(),
            principal: principal.clone(),
            protocol,
            purpose,
            refused_purpose,
            bundle_version: compiled.bundle.version,
            state: Arc::new(state),
        })
    }
}

/// A principal's view of the mesh, for one query or one connection.
#[derive(Clone)]
pub struct Session {
    engine: Engine,
    principal: Principal,
    protocol: Protocol,
    purpose: Option<String>,
    refused_purpose: Option<String>,
    bundle_version: i64,
    state: Arc<SessionState>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("principal", &self.principal.name)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

/// The statements untrusted SQL may contain: queries, their EXPLAIN, and SHOW TABLES/COLUMNS.
fn check_statement(statement: &DfStatement) -> Result<(), QueryError> {
    let refuse = |what: &str| {
        Err(QueryError::NotAllowed(format!(
            "{what} is not allowed: the gateway answers queries only (SELECT, WITH, VALUES, EXPLAIN, SHOW TABLES)"
        )))
    };
    match statement {
        DfStatement::Statement(s) => match s.as_ref() {
            SqlStatement::Query(_) | SqlStatement::ShowTables { .. } | SqlStatement::ShowColumns { .. } => Ok(()),
            SqlStatement::Explain { statement, .. } => match statement.as_ref() {
                SqlStatement::Query(_) => Ok(()),
                _ => refuse("EXPLAIN of anything but a query"),
            },
            other => {
                let text = other.to_string();
                let verb: String = text.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
                refuse(&verb)
            }
        },
        DfStatement::Explain(e) => check_statement(&e.statement),
        DfStatement::CreateExternalTable(_) => refuse("CREATE EXTERNAL TABLE"),
        DfStatement::CopyTo(_) => refuse("COPY"),
        DfStatement::Reset(_) => refuse("RESET"),
    }
}

/// The gateway's second fence: whatever the parser let through, a plan that
/// defines, changes or writes anything is refused.
fn lockdown() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

impl Session {
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    pub fn bundle_version(&self) -> i64 {
        self.bundle_version
    }

    /// The purpose the session's queries count with.
    pub fn purpose(&self) -> Option<&str> {
        self.purpose.as_deref()
    }

    /// The purpose declared for the session, counted or refused.
    pub fn declared_purpose(&self) -> Option<&str> {
        self.purpose.as_deref().or(self.refused_purpose.as_deref())
    }

    /// The same session over another DataFusion state derived from this one's
    /// (the PostgreSQL endpoint adds `pg_catalog` to it).
    pub fn with_state(mut self, state: SessionState) -> Self {
        self.state = Arc::new(state);
        self
    }

    /// The session's DataFusion state (its catalog holds only what the principal
    /// may query); for protocol adapters that need catalog metadata.
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// Parses, checks and plans one statement, on the planner's threads.
    pub async fn plan(&self, sql: &str) -> Result<LogicalPlan, QueryError> {
        let limits = &self.engine.inner.limits;
        if sql.len() > limits.max_sql_bytes {
            return Err(QueryError::TooLong {
                len: sql.len(),
                max: limits.max_sql_bytes,
            });
        }
        let deadline = tokio::time::Instant::now() + limits.query_timeout();
        self.plan_until(sql, deadline).await
    }

    async fn plan_until(&self, sql: &str, deadline: tokio::time::Instant) -> Result<LogicalPlan, QueryError> {
        let depth = self.engine.inner.limits.max_parse_depth;
        let state = Arc::clone(&self.state);
        let sql = sql.to_string();
        self.on_engine(deadline, async move {
            let mut statements = DFParserBuilder::new(sql.as_str())
                .with_dialect(&PostgreSqlDialect {})
                .with_recursion_limit(depth)
                .build()
                .and_then(|mut p| p.parse_statements())
                .map_err(|e| QueryError::Syntax(e.to_string().trim_start_matches("SQL error: ").to_string()))?;
            let statement = match (statements.pop_front(), statements.is_empty()) {
                (Some(s), true) => s,
                (None, _) => return Err(QueryError::Syntax("the SQL text holds no statement".into())),
                (Some(_), false) => {
                    return Err(QueryError::NotAllowed("one statement per query, please".into()));
                }
            };
            check_statement(&statement)?;
            let plan = state.statement_to_plan(statement).await?;
            lockdown()
                .verify_plan(&plan)
                .map_err(|e| QueryError::NotAllowed(e.to_string()))?;
            if matches!(plan, LogicalPlan::Analyze(_)) && touched(&plan)?.governed() {
                // Its metrics (rows per operator, pruned files) would describe hidden rows.
                Err(QueryError::NotAllowed(
                    "EXPLAIN ANALYZE is not allowed over governed products: its figures would describe rows the policy hides"
                        .into(),
                ))
            } else {
                Ok(plan)
            }
        })
        .await
    }

    /// Runs `work` on the engine's threads (large stacks, apart from the
    /// threads serving connections), within the query's deadline.
    async fn on_engine<T: Send + 'static>(
        &self,
        deadline: tokio::time::Instant,
        work: impl Future<Output = Result<T, QueryError>> + Send + 'static,
    ) -> Result<T, QueryError> {
        let task = self.engine.inner.runtime()?.spawn(work);
        let secs = self.engine.inner.limits.query_timeout().as_secs_f64();
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(done)) => done,
            Ok(Err(join)) => Err(QueryError::Internal(format!("the query's task failed: {join}"))),
            Err(_) => Err(QueryError::Timeout { secs }),
        }
    }

    /// Runs one SQL statement: admission, planning, execution under the limits.
    pub async fn sql(&self, sql: &str) -> Result<QueryStream, QueryError> {
        self.run(sql, None).await
    }

    /// Runs a prepared statement with parameters. It is planned again, under
    /// this session: a plan made earlier holds the tables and policies of the
    /// session it was made in, which a new bundle or purpose may have changed.
    pub async fn execute(&self, sql: &str, params: ParamValues) -> Result<QueryStream, QueryError> {
        self.run(sql, Some(params)).await
    }

    async fn run(&self, sql: &str, params: Option<ParamValues>) -> Result<QueryStream, QueryError> {
        let started = Instant::now();
        let id = uuid::Uuid::new_v4();
        let inner = &self.engine.inner;
        let limits = &inner.limits;
        let deadline = tokio::time::Instant::now() + limits.query_timeout();
        let audit = Audit {
            sink: Arc::clone(&inner.hooks.audit),
            record: Some(QueryRecord {
                id,
                principal: self.principal.name.clone(),
                protocol: self.protocol,
                purpose: self.purpose.clone(),
                refused_purpose: self.refused_purpose.clone(),
                touched: Touched::default(),
                sql: sql.to_string(),
                bundle_version: self.bundle_version,
                rows: 0,
                bytes: 0,
                elapsed: Duration::ZERO,
                outcome: Ok(()),
            }),
            started,
        };
        let mut audit = audit;
        let result = async {
            if sql.len() > limits.max_sql_bytes {
                return Err(QueryError::TooLong {
                    len: sql.len(),
                    max: limits.max_sql_bytes,
                });
            }
            let permit = self.admit(deadline).await?;
            let plan = self.plan_until(sql, deadline).await?;
            let plan = match params {
                Some(params) => plan.with_param_values(params)?,
                None => plan,
            };
            let (physical, touched) = self.physical(plan, deadline).await?;
            let task = self.task_context()?;
            let stream = execute_stream(physical, task)?;
            Ok((permit, self.drive(stream)?, touched))
        }
        .await;
        match result {
            Ok((permit, stream, touched)) => Ok(QueryStream {
                id,
                schema: stream.schema(),
                inner: stream,
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                timeout_secs: limits.query_timeout().as_secs_f64(),
                max_rows: limits.max_result_rows,
                max_bytes: limits.max_result_bytes,
                rows: 0,
                bytes: 0,
                done: false,
                _permit: permit,
                audit: {
                    audit.touched(touched);
                    audit
                },
            }),
            Err(e) => {
                audit.finish(0, 0, Err(e.clone()));
                Err(e)
            }
        }
    }

    /// Executes on the engine's own threads and hands batches over through a
    /// small channel: CPU-heavy operators never hold up the threads that serve
    /// connections and timers, so a deadline fires on time even while a runaway
    /// join is busy; dropping the receiver stops the query at its next batch.
    fn drive(&self, mut stream: SendableRecordBatchStream) -> Result<SendableRecordBatchStream, QueryError> {
        use futures::StreamExt;
        let schema = stream.schema();
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        self.engine.inner.runtime()?.spawn(async move {
            loop {
                let next = tokio::select! {
                    next = stream.next() => next,
                    () = tx.closed() => break,
                };
                let Some(item) = next else { break };
                if tx.send(item).await.is_err() {
                    break;
                }
            }
        });
        let batches = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        Ok(Box::pin(
            datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(schema, batches),
        ))
    }

    /// Waits for an execution slot, within the queue's bounds.
    async fn admit(&self, deadline: tokio::time::Instant) -> Result<OwnedSemaphorePermit, QueryError> {
        let inner = &self.engine.inner;
        if let Ok(permit) = Arc::clone(&inner.slots).try_acquire_owned() {
            return Ok(permit);
        }
        let busy = || QueryError::Busy {
            running: inner.limits.max_concurrent_queries,
            queued: inner.waiting.load(Ordering::Relaxed),
        };
        if inner.waiting.fetch_add(1, Ordering::AcqRel) >= inner.limits.max_queued_queries {
            inner.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(busy());
        }
        let wait_until = deadline.min(tokio::time::Instant::now() + inner.limits.queue_timeout());
        let acquired = tokio::time::timeout_at(wait_until, Arc::clone(&inner.slots).acquire_owned()).await;
        let result = match acquired {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(QueryError::Internal("the engine is shutting down".into())),
            Err(_) => Err(busy()),
        };
        inner.waiting.fetch_sub(1, Ordering::AcqRel);
        result
    }

    /// Optimizes and plans for execution; says what the query reads.
    async fn physical(
        &self,
        plan: LogicalPlan,
        deadline: tokio::time::Instant,
    ) -> Result<(Arc<dyn ExecutionPlan>, Touched), QueryError> {
        // Each query gets its own start time: `now()`, `current_date` and the
        // like are folded to it while optimizing (and fail if it is unset).
        let mut state = SessionState::clone(&self.state);
        state.mark_start_execution();
        self.on_engine(deadline, async move {
            let optimized = state.optimize(&plan)?;
            let touched = touched(&optimized)?;
            let physical = state.query_planner().create_physical_plan(&optimized, &state).await?;
            Ok((physical, touched))
        })
        .await
    }

    /// The query's own runtime: its memory pool and spill cap over the shared
    /// caches and object stores.
    fn task_context(&self) -> Result<Arc<TaskContext>, QueryError> {
        let inner = &self.engine.inner;
        let pool = TrackConsumersPool::new(
            FairSpillPool::new(inner.limits.query_memory_bytes),
            NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
        );
        let runtime = RuntimeEnvBuilder::from_runtime_env(&inner.runtime)
            .with_memory_pool(Arc::new(pool))
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_max_temp_directory_size(inner.limits.query_spill_bytes),
            )
            .build_arc()?;
        Ok(Arc::new(TaskContext::from(self.state.as_ref()).with_runtime(runtime)))
    }
}

/// Reports a query once, when its stream ends or is dropped.
struct Audit {
    sink: Arc<dyn AuditSink>,
    record: Option<QueryRecord>,
    started: Instant,
}

impl Touched {
    /// Whether any table read is under a mask or row filter.
    pub fn governed(&self) -> bool {
        !self.masks.is_empty() || !self.filters.is_empty()
    }
}

/// What a plan reads (its table scans, in subqueries too) and under which policies.
fn touched(plan: &LogicalPlan) -> Result<Touched, QueryError> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::datasource::source_as_provider;
    let mut out = Touched::default();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let domain = scan.table_name.schema().unwrap_or("public");
            let table = scan.table_name.table();
            let product = table.split("@v").next().unwrap_or(table);
            let product = product.split("__v").next().unwrap_or(product);
            out.products.insert(format!("{domain}.{product}"));
            let schema = scan.source.schema();
            let columns: Vec<usize> = match &scan.projection {
                Some(p) => p.clone(),
                None => (0..schema.fields().len()).collect(),
            };
            let provider = source_as_provider(&scan.source).ok();
            let governed = provider
                .as_ref()
                .and_then(|p| p.downcast_ref::<GovernedTable>().map(GovernedTable::policy));
            for i in columns {
                let column = schema.field(i).name();
                out.columns.insert(format!("{domain}.{table}.{column}"));
                if let Some(policy) = governed
                    && let Some((_, _, mask)) = policy.masks.iter().find(|(c, _, _)| c == column)
                {
                    out.masks.insert(format!("{mask}:{domain}.{table}.{column}"));
                }
            }
            if let Some(policy) = governed {
                for filter in &policy.filter_names {
                    out.filters.insert(format!("{filter}:{domain}.{table}"));
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(out)
}

impl Audit {
    fn touched(&mut self, touched: Touched) {
        if let Some(record) = self.record.as_mut() {
            record.touched = touched;
        }
    }

    fn finish(mut self, rows: u64, bytes: u64, outcome: Result<(), QueryError>) {
        self.report(rows, bytes, outcome);
    }

    fn report(&mut self, rows: u64, bytes: u64, outcome: Result<(), QueryError>) {
        if let Some(mut record) = self.record.take() {
            record.rows = rows;
            record.bytes = bytes;
            record.elapsed = self.started.elapsed();
            record.outcome = outcome;
            self.sink.record(record);
        }
    }
}

/// A running query's results: Arrow batches under the query's deadline and
/// result caps. Dropping it cancels the query.
pub struct QueryStream {
    pub id: uuid::Uuid,
    schema: SchemaRef,
    inner: SendableRecordBatchStream,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout_secs: f64,
    max_rows: u64,
    max_bytes: u64,
    rows: u64,
    bytes: u64,
    done: bool,
    _permit: OwnedSemaphorePermit,
    audit: Audit,
}

impl std::fmt::Debug for QueryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryStream")
            .field("id", &self.id)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl QueryStream {
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn elapsed(&self) -> Duration {
        self.audit.started.elapsed()
    }

    fn fail(&mut self, error: QueryError) -> Poll<Option<datafusion::error::Result<RecordBatch>>> {
        self.done = true;
        self.audit.report(self.rows, self.bytes, Err(error.clone()));
        Poll::Ready(Some(Err(error.into_datafusion())))
    }

    /// Collects the whole result (for tests and small in-process queries).
    pub async fn collect(mut self) -> Result<Vec<RecordBatch>, QueryError> {
        use futures::StreamExt;
        let mut batches = Vec::new();
        while let Some(batch) = self.next().await {
            batches.push(batch.map_err(QueryError::from)?);
        }
        Ok(batches)
    }
}

impl Stream for QueryStream {
    type Item = datafusion::error::Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            let secs = self.timeout_secs;
            return self.fail(QueryError::Timeout { secs });
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.done = true;
                let (rows, bytes) = (self.rows, self.bytes);
                self.audit.report(rows, bytes, Ok(()));
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                let error = QueryError::from(e);
                self.fail(error)
            }
            Poll::Ready(Some(Ok(batch))) => {
                self.rows += batch.num_rows() as u64;
                self.bytes += batch.get_array_memory_size() as u64;
                if self.rows > self.max_rows {
                    let max = self.max_rows;
                    return self.fail(QueryError::TooManyRows { max });
                }
                if self.bytes > self.max_bytes {
                    let max = self.max_bytes;
                    return self.fail(QueryError::TooManyBytes { max });
                }
                Poll::Ready(Some(Ok(batch)))
            }
        }
    }
}

impl RecordBatchStream for QueryStream {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

impl Drop for QueryStream {
    fn drop(&mut self) {
        if !self.done {
            let (rows, bytes) = (self.rows, self.bytes);
            self.audit
                .report(rows, bytes, Err(QueryError::Internal("cancelled by the client".into())));
        }
    }
}

use std::future::Future;

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tessera_contracts::bundle::{BundleContent, BundleKey, BundlePrincipal};

    use super::*;

    const KEY: &str = "tsk_aaaaaaaaaaaa_1111111111111111111111111111111111111111111111111111111111111111";

    #[derive(Default)]
    struct Recorder(Mutex<Vec<QueryRecord>>);

    impl AuditSink for Arc<Recorder> {
        fn record(&self, record: QueryRecord) {
            self.0.lock().expect("lock").push(record);
        }
    }

    #[tokio::test]
    async fn every_query_is_audited() {
        let recorder = Arc::new(Recorder::default());
        let hooks = Hooks {
            audit: Arc::new(Arc::clone(&recorder)),
        };
        let engine = Engine::with_hooks(&GatewayConfig::default(), hooks).expect("engine");
        let parsed = tessera_contracts::keys::parse(KEY).expect("key");
        let content = BundleContent {
            principals: vec![BundlePrincipal {
                name: "ana".into(),
                admin: false,
                attributes: Attributes::default(),
                teams: vec![],
                keys: vec![BundleKey {
                    id: parsed.id.into(),
                    secret_hash: tessera_contracts::keys::hash_secret(parsed.secret),
                    expires_at: None,
                }],
            }],
            ..BundleContent::default()
        };
        engine.install(Bundle::new(9, content, Utc::now())).expect("installs");
        let principal = engine.authenticate(KEY).expect("authenticates");
        let session = engine
            .session(&principal, Protocol::InProcess, Some("fraud"))
            .expect("session");
        assert_eq!(session.purpose(), None, "ana may not declare fraud");

        let batches = session
            .sql("SELECT x FROM (VALUES (1), (2), (3)) AS t(x) LIMIT 1")
            .await
            .expect("runs")
            .collect()
            .await
            .expect("rows");
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1, "rewritten");
        let error = match session.sql("SELECT 1/0").await {
            Ok(stream) => stream.collect().await.expect_err("fails"),
            Err(e) => e,
        };
        assert_eq!(error.sqlstate(), "22012");

        let records = recorder.0.lock().expect("lock");
        assert_eq!(records.len(), 2, "one record per query");
        assert_eq!((records[0].principal.as_str(), records[0].rows), ("ana", 1));
        assert_eq!((records[0].bundle_version, records[0].outcome.is_ok()), (9, true));
        assert_eq!(records[0].refused_purpose.as_deref(), Some("fraud"));
        assert_eq!(
            records[1].outcome.as_ref().err().map(QueryError::sqlstate),
            Some("22012")
        );
    }
}
