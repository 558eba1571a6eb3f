//! A principal's session, and one statement's way through it: parsing with a
//! depth limit and only queries allowed, planning on the engine's threads,
//! optimizing, then execution under the query's own memory pool and deadline.

use std::collections::BTreeMap;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use datafusion::catalog::{CatalogProviderList, MemoryCatalogProviderList};
use datafusion::common::ParamValues;
use datafusion::execution::TaskContext;
use datafusion::execution::context::{SQLOptions, SessionState};
use datafusion::execution::disk_manager::DiskManagerBuilder;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use tessera_contracts::api::Attributes;
use tessera_contracts::bundle::Unqueryable;
use tessera_contracts::policy::effective_purpose;

use super::Engine;
use super::audit::{Audit, QueryRecord, Touched, touched};
use super::explain::Redactions;
use super::stream::QueryStream;
use crate::error::QueryError;
use crate::policy::CompiledPolicy;
use crate::tables::{CATALOG, DomainSchema, SessionCatalog, SessionTable, TableCache};

/// An authenticated caller, as the engine knows it from the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub admin: bool,
    /// Roles (`metrics` opens a gateway's `/metrics`).
    pub roles: Vec<tessera_contracts::api::Role>,
    pub attributes: Attributes,
    pub teams: Vec<String>,
    /// When the credential it presented stops working (an API key's or a
    /// token's expiry).
    pub credential_expires_at: Option<DateTime<Utc>>,
    /// The OpenID Connect token it presented, verified, if it presented one.
    pub token: Option<Arc<tessera_contracts::tokens::TokenIdentity>>,
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

impl Engine {
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
        // authentication has no session (unless a token stands for it: then
        // its claims do, see `super::tokens`).
        let from_token;
        let holder = match &principal.token {
            None => content.principal(&principal.name).ok_or(QueryError::Unauthenticated)?,
            Some(identity) => {
                from_token = content.token_principal(identity);
                &from_token
            }
        };
        let (purpose, refused_purpose) = match effective_purpose(&holder.attributes, purpose) {
            Ok(p) => (p.map(str::to_string), None),
            Err(refused) => (None, Some(refused.to_string())),
        };
        let now = Utc::now();
        let asker = holder.asker(purpose.as_deref());
        let cache = &self.inner.tables;
        let mut schemas: BTreeMap<String, DomainSchema> = BTreeMap::new();
        for (domain, entries) in content.schemas_for(&asker, now) {
            for e in entries {
                let policy = if e.policy.is_empty() {
                    None
                } else {
                    let name = format!("{domain}.{}", e.table);
                    let policy =
                        CompiledPolicy::new(name, &e.policy, &holder.name, &holder.attributes, &compiled.mask_key)
                            .map_err(QueryError::Internal)?;
                    Some(Arc::new(policy))
                };
                let table = SessionTable {
                    location: e.location.to_string(),
                    served: compiled.served.get(e.location).cloned(),
                    policy,
                };
                domain_schema(&mut schemas, domain, cache).tables.insert(e.table, table);
            }
        }
        for (product, why) in content.unqueryable(&asker, refused_purpose.as_deref(), now) {
            let message = unqueryable_message(&product.domain, &product.name, &why);
            let schema = domain_schema(&mut schemas, &product.domain, cache);
            for port in &product.output_ports {
                schema
                    .unqueryable
                    .insert(product.table_name(port.major_version), message.clone());
            }
        }
        let valid_until = content.valid_until(&asker, principal.credential_expires_at, now);

        let schemas: BTreeMap<String, Arc<DomainSchema>> = schemas.into_iter().map(|(d, s)| (d, Arc::new(s))).collect();
        let domains = schemas.values().cloned().collect();
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
            valid_until,
            domains,
            state: Arc::new(state),
        })
    }
}

/// A domain's schema in a session being built.
fn domain_schema<'a>(
    schemas: &'a mut BTreeMap<String, DomainSchema>,
    domain: &str,
    cache: &Arc<TableCache>,
) -> &'a mut DomainSchema {
    schemas.entry(domain.to_string()).or_insert_with(|| DomainSchema {
        domain: domain.to_string(),
        tables: BTreeMap::new(),
        unqueryable: BTreeMap::new(),
        cache: Arc::clone(cache),
    })
}

/// Why a product the principal sees in the catalog is not in its session, and
/// how to get it there.
fn unqueryable_message(domain: &str, product: &str, why: &Unqueryable) -> String {
    let how = match why {
        Unqueryable::NoGrant | Unqueryable::OtherPurposes { .. } => format!(
            "request access from its owners: `tessera access request {domain}.{product} --purpose <purpose>` \
             (or POST /api/v1/domains/{domain}/products/{product}/access-requests)"
        ),
        Unqueryable::PurposeRequired(_) => "declare the purpose: the `Tessera-Purpose` header (HTTP), \
             `SET tessera.purpose = '...'` (PostgreSQL), the `tessera-purpose` header (Flight SQL)"
            .to_string(),
        Unqueryable::PurposeNotHeld(_) => format!(
            "declare a purpose you hold, or request access for this one: \
             `tessera access request {domain}.{product} --purpose <purpose>`"
        ),
    };
    format!("{domain}.{product} is not queryable for you: {why}; {how}")
}

/// A principal's view of the mesh, for one query or one connection.
#[derive(Clone)]
pub struct Session {
    pub(super) engine: Engine,
    pub(super) principal: Principal,
    pub(super) protocol: Protocol,
    pub(super) purpose: Option<String>,
    pub(super) refused_purpose: Option<String>,
    pub(super) bundle_version: i64,
    /// When what the session holds may change without a new bundle (a key or
    /// grant expiring): it must not be used past this.
    pub(super) valid_until: Option<DateTime<Utc>>,
    /// The session's domains (what EXPLAIN hides from non-admins: where their tables are).
    pub(super) domains: Vec<Arc<DomainSchema>>,
    pub(super) state: Arc<SessionState>,
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

/// Parses one statement of untrusted SQL and measures it: its size, its kind
/// (queries only), its shape (see [`complexity`](super::complexity)). Parsing
/// and measuring run on the engine's threads, whose stacks take the depth
/// the bounds allow.
pub(super) fn parse(sql: &str, limits: &crate::config::Limits) -> Result<DfStatement, QueryError> {
    limits.check_sql_len(sql)?;
    let mut statements = DFParserBuilder::new(sql)
        .with_dialect(&PostgreSqlDialect {})
        .with_recursion_limit(limits.max_parse_depth)
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
    if let Some(inner) = sql_statement(&statement) {
        super::complexity::check(inner, limits)?;
    }
    Ok(statement)
}

/// The SQL statement inside a DataFusion statement (EXPLAIN's included).
fn sql_statement(statement: &DfStatement) -> Option<&SqlStatement> {
    match statement {
        DfStatement::Statement(s) => Some(s),
        DfStatement::Explain(e) => sql_statement(&e.statement),
        _ => None,
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

    /// Whether the session still stands at `now`: its credential and the
    /// grants it was built from have not expired since. A session that does
    /// not is built again (or its credential refused), as a new one would be.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.valid_until.is_none_or(|until| now < until)
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

    /// Drops the system schemas a protocol added to the session's catalog
    /// (see [`SessionCatalog::clear_system`]); its last user calls it.
    pub fn clear_system_schemas(&self) {
        if let Some(catalog) = self.state.catalog_list().catalog(CATALOG)
            && let Some(catalog) = (catalog.as_ref() as &dyn std::any::Any).downcast_ref::<SessionCatalog>()
        {
            catalog.clear_system();
        }
    }

    /// The session's DataFusion state (its catalog holds only what the principal
    /// may query); for protocol adapters that need catalog metadata.
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// Parses, checks and plans one statement, on the planner's threads.
    pub async fn plan(&self, sql: &str) -> Result<LogicalPlan, QueryError> {
        let limits = &self.engine.inner.limits;
        let deadline = tokio::time::Instant::now() + limits.query_timeout();
        self.plan_until(sql, deadline).await
    }

    async fn plan_until(&self, sql: &str, deadline: tokio::time::Instant) -> Result<LogicalPlan, QueryError> {
        let statement = self.parse_until(sql, deadline).await?;
        self.plan_statement(statement, deadline).await
    }

    /// Parses and measures a statement (see [`parse`]) on the engine's threads.
    async fn parse_until(&self, sql: &str, deadline: tokio::time::Instant) -> Result<DfStatement, QueryError> {
        let limits = self.engine.inner.limits.clone();
        let sql = sql.to_string();
        self.on_engine(deadline, async move { parse(&sql, &limits) }).await
    }

    async fn plan_statement(
        &self,
        statement: DfStatement,
        deadline: tokio::time::Instant,
    ) -> Result<LogicalPlan, QueryError> {
        let state = Arc::clone(&self.state);
        self.on_engine(deadline, async move {
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
    /// threads serving connections), within the query's deadline; past it the
    /// caller gets its timeout at once, and the work finishes on its own.
    async fn on_engine<T: Send + 'static>(
        &self,
        deadline: tokio::time::Instant,
        work: impl Future<Output = Result<T, QueryError>> + Send + 'static,
    ) -> Result<T, QueryError> {
        // Planning is CPU work that cannot be preempted: each runs on a
        // blocking thread of the engine's runtime (large stack), so that one
        // outliving its deadline holds no thread any other query needs; the
        // pool grows instead. Its bounds (see `complexity`) keep it short.
        let runtime = self.engine.inner.runtime()?;
        let handle = runtime.handle().clone();
        let task = runtime.spawn_blocking(move || handle.block_on(work));
        let secs = self.engine.inner.limits.query_timeout().as_secs_f64();
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(done)) => done,
            Ok(Err(join)) => Err(QueryError::Internal(format!("the query's task failed: {join}"))),
            Err(_) => Err(QueryError::Timeout { secs }),
        }
    }

    /// Runs one SQL statement: admission, planning, execution under the limits.
    pub async fn sql(&self, sql: &str) -> Result<QueryStream, QueryError> {
        self.run(sql, None, Instant::now()).await
    }

    /// Runs one SQL statement that arrived at `arrived` (before its request
    /// was read and authenticated): its deadline counts from then.
    pub async fn sql_arrived(&self, sql: &str, arrived: Instant) -> Result<QueryStream, QueryError> {
        self.run(sql, None, arrived).await
    }

    /// Runs a prepared statement with parameters. It is planned again, under
    /// this session: a plan made earlier holds the tables and policies of the
    /// session it was made in, which a new bundle or purpose may have changed.
    pub async fn execute(&self, sql: &str, params: ParamValues) -> Result<QueryStream, QueryError> {
        self.run(sql, Some(params), Instant::now()).await
    }

    async fn run(&self, sql: &str, params: Option<ParamValues>, started: Instant) -> Result<QueryStream, QueryError> {
        let id = uuid::Uuid::new_v4();
        let inner = &self.engine.inner;
        let limits = &inner.limits;
        let deadline = tokio::time::Instant::from_std(started) + limits.query_timeout();
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
        let result: Result<_, QueryError> = async {
            limits.check_sql_len(sql)?;
            inner.hooks.audit.admit()?;
            // What the text alone decides (syntax, kind, shape) needs no slot.
            let statement = self.parse_until(sql, deadline).await?;
            let permit = self.admit(deadline).await?;
            let plan = self.plan_statement(statement, deadline).await?;
            let plan = match params {
                Some(params) => plan.with_param_values(params)?,
                None => plan,
            };
            let explain = matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_));
            let (physical, touched) = self.physical(plan, deadline).await?;
            let task = self.task_context()?;
            let mut stream = execute_stream(physical, task)?;
            if explain && !self.principal.admin {
                // Where the tables are stored is for admins (and owners, in the catalog).
                let tables = self.domains.iter().flat_map(|schema| {
                    schema
                        .tables
                        .iter()
                        .map(|(table, t)| (t.location.as_str(), format!("{}.{table}", schema.domain)))
                });
                stream = Redactions::new(tables).stream(stream);
            }
            Ok((permit, self.drive(stream)?, touched))
        }
        .await;
        match result {
            Ok((permit, stream, touched)) => Ok(QueryStream {
                id,
                notices: touched.notices(),
                schema: stream.schema(),
                inner: stream,
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                timeout_secs: limits.query_timeout().as_secs_f64(),
                max_rows: limits.max_result_rows,
                max_bytes: limits.max_result_bytes,
                rows: 0,
                bytes: 0,
                done: false,
                saving: None,
                _permit: permit,
                audit: {
                    audit.touched(touched);
                    audit
                },
            }),
            Err(e) => {
                // Kept before the error is answered; a failure to keep it
                // leaves the query's own error as the answer.
                let _ = audit.finish(0, 0, Err(e.clone())).await;
                Err(e)
            }
        }
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
        let own = TrackConsumersPool::new(
            FairSpillPool::new(inner.limits.query_memory_bytes),
            NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
        );
        let pool = super::memory::QueryPool::new(Arc::new(own), Arc::clone(&inner.memory));
        let runtime = RuntimeEnvBuilder::from_runtime_env(&inner.runtime)
            .with_memory_pool(Arc::new(pool))
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_max_temp_directory_size(inner.limits.query_spill_bytes),
            )
            .build_arc()?;
        Ok(Arc::new(TaskContext::from(self.state.as_ref()).with_runtime(runtime)))
    }
}
