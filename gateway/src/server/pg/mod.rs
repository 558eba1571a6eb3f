//! The PostgreSQL wire endpoint (pgwire, through datafusion-postgres).
//!
//! Each connection authenticates with an API key as its password (cleartext
//! password message) and gets its own session: the principal's tables, plus a
//! `pg_catalog` built from them, so that psql's `\dt` or an ORM's inspector see
//! exactly what the principal may query. Every query, simple or extended, runs
//! through the engine (limits, lock-down); datafusion-postgres answers the
//! harmless session statements (`SET application_name`, `SHOW ...`, `BEGIN`).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ParamValues;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::arrow_pg::datatypes::df::deserialize_parameters;
use datafusion_postgres::arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::setup_pg_catalog;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use datafusion_postgres::pgwire::api::portal::{Format, Portal};
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use datafusion_postgres::pgwire::api::stmt::QueryParser;
use datafusion_postgres::pgwire::api::store::PortalStore;
use datafusion_postgres::pgwire::api::{
    ClientInfo, ClientPortalStore, ErrorHandler, METADATA_USER, PgWireConnectionState, PgWireServerHandlers, Type,
};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::startup::Authentication;
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use datafusion_postgres::pgwire::types::format::FormatOptions;
use datafusion_postgres::{DfSessionService, Parser, QueryHook};
use futures::{Sink, SinkExt, StreamExt};
use tokio::net::TcpListener;

use tessera_contracts::credentials::Credential;

use self::rows::RowEncoder;
use super::credentials;
use crate::engine::{Engine, Principal, Protocol, QueryStream, Session};
use crate::error::QueryError;
use crate::tables::CATALOG;

mod functions;
mod rows;
mod statements;

use statements::{Verdict, judge, startup_purpose};

pub use functions::SERVER_VERSION;

type DfStmt = (String, Option<(Statement, LogicalPlan)>);

fn pg_error(error: &QueryError) -> PgWireError {
    let severity = if matches!(
        error,
        QueryError::Unauthenticated | QueryError::TokenRefused(_) | QueryError::Throttled(_)
    ) {
        "FATAL"
    } else {
        "ERROR"
    };
    PgWireError::UserError(Box::new(ErrorInfo::new(
        severity.into(),
        error.sqlstate().into(),
        error.disclose().message,
    )))
}

/// Serves PostgreSQL wire on `listener` until `shutdown` resolves (open
/// connections end with the process).
pub async fn serve(
    engine: Engine,
    listener: TcpListener,
    tls: Option<Arc<tessera_http::Tls>>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let require_tls = tls.as_ref().is_some_and(|t| t.required());
    let handlers = Arc::new(Handlers::new(engine, require_tls));
    tokio::pin!(shutdown);
    loop {
        let (socket, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        let _ = socket.set_nodelay(true);
        let handlers = Arc::clone(&handlers);
        // The certificate in force now (a reload on SIGHUP leaves open
        // connections as they are).
        let acceptor = tls.as_ref().map(|t| t.acceptor());
        tokio::spawn(async move {
            if let Err(e) = datafusion_postgres::pgwire::tokio::process_socket(socket, acceptor, handlers).await {
                tracing::debug!(error = %e, "PostgreSQL connection ended with an error");
            }
        });
    }
}

struct Handlers {
    startup: Arc<Startup>,
    query: Arc<Queries>,
    errors: Arc<Errors>,
}

impl Handlers {
    fn new(engine: Engine, require_tls: bool) -> Self {
        let mut parameters = DefaultServerParameterProvider::default();
        parameters.server_version = SERVER_VERSION.into();
        parameters.is_superuser = false;
        parameters.default_transaction_read_only = true;
        let any = DfSessionService::new(Arc::new(SessionContext::new())).query_parser();
        Self {
            startup: Arc::new(Startup {
                engine,
                parameters,
                require_tls,
            }),
            query: Arc::new(Queries {
                parser: Arc::new(ConnParser { any }),
            }),
            errors: Arc::new(Errors),
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.query)
    }
    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.query)
    }
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.startup)
    }
    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::clone(&self.errors)
    }
}

/// The connection's state, kept in its session extensions after login.
struct Conn {
    gate: Arc<Gate>,
    service: Arc<DfSessionService>,
    /// The session the service's context was made from, held for the
    /// connection's life (the context shares its catalog).
    #[allow(dead_code)]
    first: Arc<PgSession>,
}

fn conn<C: ClientInfo + ?Sized>(client: &C) -> PgWireResult<Arc<Conn>> {
    client
        .session_extensions()
        .get::<Conn>()
        .ok_or_else(|| pg_error(&QueryError::Unauthenticated))
}

struct Startup {
    engine: Engine,
    parameters: DefaultServerParameterProvider,
    /// Cleartext connections are refused before a password is asked for.
    require_tls: bool,
}

/// A connection's session. Its `pg_catalog` holds the session's catalog list,
/// which holds the `pg_catalog`: a cycle that would keep every session a
/// connection ever had alive (and its pg_catalog's tables, megabytes each).
/// The session's last holder breaks it.
struct PgSession(Session);

impl Drop for PgSession {
    fn drop(&mut self) {
        self.0.clear_system_schemas();
    }
}

/// The session of the principal `password` stands for (checked again: the
/// bundle may have changed since the connection began).
fn pg_session(
    engine: &Engine,
    password: &Credential,
    purpose: Option<&str>,
) -> Result<(Arc<PgSession>, SessionContext), QueryError> {
    let principal = credentials::authenticate(engine, Some(password))?;
    session_of(engine, &principal, purpose)
}

/// `principal`'s session with a `pg_catalog` over its own tables.
fn session_of(
    engine: &Engine,
    principal: &Principal,
    purpose: Option<&str>,
) -> Result<(Arc<PgSession>, SessionContext), QueryError> {
    let session = engine.session(principal, Protocol::Postgres, purpose)?;
    let context = SessionContext::new_with_state(session.state().clone());
    if let Err(e) = setup_pg_catalog(&context, CATALOG, EmptyContextProvider) {
        session.clear_system_schemas();
        return Err(QueryError::Internal(format!("cannot set up pg_catalog: {e}")));
    }
    functions::register(&context);
    // Both states share the session's catalog, which the guard clears.
    Ok((Arc::new(PgSession(session.with_state(context.state()))), context))
}

impl Startup {
    fn connect(
        &self,
        principal: &Principal,
        password: Credential,
        purpose: Option<String>,
    ) -> Result<Conn, QueryError> {
        let (session, context) = session_of(&self.engine, principal, purpose.as_deref())?;
        let session_guard = Arc::clone(&session);
        let gate = Arc::new(Gate {
            engine: self.engine.clone(),
            password,
            purpose: std::sync::RwLock::new(purpose),
            session: std::sync::RwLock::new(session),
        });
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            Arc::clone(&gate) as Arc<dyn QueryHook>,
            Arc::new(SetShowHook),
            Arc::new(TransactionStatementHook),
        ];
        let service = Arc::new(DfSessionService::new_with_hooks(Arc::new(context), hooks));
        Ok(Conn {
            gate,
            service,
            first: session_guard,
        })
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                if self.require_tls && !client.is_secure() {
                    return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                        "FATAL".into(),
                        "28000".into(),
                        "this server accepts only TLS connections: connect with sslmode=require or verify-full".into(),
                    ))));
                }
                // An address that failed too often is refused before a password is asked for.
                if let Err(throttled) = self.engine.throttle().admit(client.socket_addr().ip()) {
                    return Err(pg_error(&QueryError::Throttled(throttled)));
                }
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::CleartextPassword))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(password) => {
                let password = password.into_password()?.password;
                let user = client.metadata().get(METADATA_USER).cloned().unwrap_or_default();
                let purpose = client.metadata().get("options").and_then(|o| startup_purpose(o));
                let refused = |e: QueryError| match e {
                    QueryError::Unauthenticated => PgWireError::InvalidPassword(user.clone()),
                    other => pg_error(&other),
                };
                let password = Credential::Password(password);
                // Throttled and counted; the session is then made for the principal found.
                let principal = credentials::admit(&self.engine, Some(client.socket_addr().ip()), Some(&password))
                    .await
                    .map_err(refused)?;
                let conn = self.connect(&principal, password, purpose).map_err(refused)?;
                client.session_extensions().insert(conn);
                finish_authentication(client, &self.parameters).await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Decides what happens to each statement before datafusion-postgres does
/// anything: queries run through the engine, harmless session statements pass
/// to the next hooks, everything else is refused.
struct Gate {
    engine: Engine,
    /// The password (API key) the connection logged in with: checked again on every new bundle.
    password: Credential,
    /// The purpose declared at startup or with `SET tessera.purpose`.
    purpose: std::sync::RwLock<Option<String>>,
    session: std::sync::RwLock<Arc<PgSession>>,
}

impl Gate {
    /// The connection's session under the bundle in force: rebuilt when a new
    /// bundle arrived or when what it was built from expired, so a long-lived
    /// connection sees products appear and disappear, and a revoked or expired
    /// key or grant stops working, like every other protocol.
    /// Its holder keeps the session whole until it lets go (see [`PgSession`]).
    fn session(&self) -> Result<Arc<PgSession>, QueryError> {
        let current = self
            .session
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let purpose = self
            .purpose
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let declared = purpose.as_deref();
        // A refused purpose leaves the session without one: compare what was
        // declared. A session whose key or grants expired since is rebuilt
        // (authenticating again), every statement, as a new connection would be.
        if current.0.bundle_version() == self.engine.bundle_version()
            && current.0.declared_purpose() == declared
            && current.0.is_live(chrono::Utc::now())
        {
            return Ok(current);
        }
        let (fresh, _) = pg_session(&self.engine, &self.password, declared)?;
        *self.session.write().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh.clone();
        Ok(fresh)
    }
}

impl Gate {
    /// Declares the connection's purpose; its next query gets a session for it.
    fn set_purpose(&self, purpose: Option<String>) -> PgWireResult<()> {
        *self.purpose.write().unwrap_or_else(std::sync::PoisonError::into_inner) = purpose;
        self.session().map(|_| ()).map_err(|e| pg_error(&e))
    }
}

/// A PostgreSQL NOTICE saying what a policy did to the query.
fn notice_message(text: &str) -> PgWireBackendMessage {
    PgWireBackendMessage::NoticeResponse(ErrorInfo::new("NOTICE".into(), "00000".into(), text.to_string()).into())
}

/// Encodes a query's stream as PostgreSQL rows, as they are produced: a
/// column at a time where every column's type allows ([`RowEncoder`]), else
/// through the generic encoder.
fn respond(stream: QueryStream, format: &Format, options: FormatOptions) -> PgWireResult<Response> {
    let schema = datafusion::execution::RecordBatchStream::schema(&stream);
    let options = Arc::new(options);
    let fields = Arc::new(arrow_schema_to_pg_fields(&schema, format, Some(Arc::clone(&options)))?);
    let columnar = RowEncoder::new(schema.fields(), &fields, &options);
    let encode_fields = Arc::clone(&fields);
    let rows = stream
        .map(move |batch| {
            let rows: Box<dyn Iterator<Item = PgWireResult<_>> + Send + Sync> = match (batch, &columnar) {
                (Ok(batch), Some(columnar)) => Box::new(columnar.encode(&batch).into_iter().map(Ok)),
                (Ok(batch), None) => encode_recordbatch(Arc::clone(&encode_fields), batch),
                (Err(e), _) => Box::new(std::iter::once(Err(pg_error(&QueryError::from(e))))),
            };
            futures::stream::iter(rows)
        })
        .flatten();
    Ok(Response::Query(QueryResponse::new(fields, rows)))
}

#[async_trait]
impl QueryHook for Gate {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        match judge(statement) {
            Verdict::Pass => None,
            Verdict::Acknowledge(tag) => Some(Ok(Response::Execution(Tag::new(tag)))),
            Verdict::Purpose(purpose) => Some(self.set_purpose(purpose).map(|()| Response::Execution(Tag::new("SET")))),
            Verdict::Refuse(e) => Some(Err(pg_error(&e))),
            Verdict::Query => {
                let options = FormatOptions::from_client_metadata(client.metadata());
                let session = match self.session() {
                    Ok(s) => s,
                    Err(e) => return Some(Err(pg_error(&e))),
                };
                Some(match session.0.sql(&statement.to_string()).await {
                    Ok(stream) => {
                        for notice in &stream.notices {
                            if let Err(e) = client.send_message(notice_message(notice)).await {
                                return Some(Err(e));
                            }
                        }
                        respond(stream, &Format::UnifiedText, options)
                    }
                    Err(e) => Err(pg_error(&e)),
                })
            }
        }
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _context: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        match judge(statement) {
            Verdict::Pass => None,
            Verdict::Acknowledge(_) | Verdict::Purpose(_) => Some(
                LogicalPlanBuilder::empty(false)
                    .build()
                    .map_err(|e| pg_error(&QueryError::from(e))),
            ),
            Verdict::Refuse(e) => Some(Err(pg_error(&e))),
            Verdict::Query => Some(match self.session() {
                Ok(session) => session.0.plan(&statement.to_string()).await.map_err(|e| pg_error(&e)),
                Err(e) => Err(pg_error(&e)),
            }),
        }
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _context: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        // Queries are executed by `Queries::do_query`, which knows the portal's
        // result format; the rest falls through to the other hooks.
        match judge(statement) {
            Verdict::Acknowledge(tag) => Some(Ok(Response::Execution(Tag::new(tag)))),
            Verdict::Purpose(purpose) => Some(self.set_purpose(purpose).map(|()| Response::Execution(Tag::new("SET")))),
            _ => None,
        }
    }
}

/// Simple and extended query handling for every connection: delegates to the
/// connection's own datafusion-postgres service, except the execution of
/// prepared queries, which runs through the engine.
struct Queries {
    parser: Arc<ConnParser>,
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = conn(client)?;
        // Before datafusion-postgres parses (and, for some statements, plans) it.
        conn.gate.engine.screen(query).await.map_err(|e| pg_error(&e))?;
        <DfSessionService as SimpleQueryHandler>::do_query(&conn.service, client, query).await
    }
}

/// The `$n` parameter types of a plan, in order.
fn parameter_types(plan: &LogicalPlan) -> PgWireResult<Vec<Option<DataType>>> {
    let types = plan.get_parameter_types().map_err(|e| pg_error(&QueryError::from(e)))?;
    let mut ordered: Vec<(usize, Option<DataType>)> = types
        .into_iter()
        .filter_map(|(name, t)| Some((name.trim_start_matches('$').parse::<usize>().ok()?, t)))
        .collect();
    ordered.sort_by_key(|(i, _)| *i);
    Ok(ordered.into_iter().map(|(_, t)| t).collect())
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = DfStmt;
    type QueryParser = ConnParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::clone(&self.parser)
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = conn(client)?;
        let (sql, parsed) = &portal.statement.statement;
        if let Some((statement, plan)) = parsed
            && matches!(judge(statement), Verdict::Query)
        {
            let types = parameter_types(plan)?;
            let refs: Vec<Option<&DataType>> = types.iter().map(Option::as_ref).collect();
            let params = deserialize_parameters(portal, &refs)?;
            let options = FormatOptions::from_client_metadata(client.metadata());
            let session = conn.gate.session().map_err(|e| pg_error(&e))?;
            // Planned again under the session in force (see `Session::execute`).
            return match session.0.execute(sql, params).await {
                Ok(stream) => {
                    for notice in &stream.notices {
                        client.send(notice_message(notice)).await?;
                    }
                    respond(stream, &portal.result_column_format, options)
                }
                Err(e) => Err(pg_error(&e)),
            };
        }
        <DfSessionService as ExtendedQueryHandler>::do_query(&conn.service, client, portal, max_rows).await
    }
}

/// Parses with the connection's service (so its hooks, the gate first, decide).
struct ConnParser {
    /// For the plan-only questions (parameter and result types).
    any: Arc<Parser>,
}

#[async_trait]
impl QueryParser for ConnParser {
    type Statement = DfStmt;

    async fn parse_sql<C>(&self, client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let conn = conn(client)?;
        conn.gate.engine.screen(sql).await.map_err(|e| pg_error(&e))?;
        conn.service.query_parser().parse_sql(client, sql, types).await
    }

    fn get_parameter_types(&self, statement: &Self::Statement) -> PgWireResult<Vec<Type>> {
        self.any.get_parameter_types(statement)
    }

    fn get_result_schema(&self, statement: &Self::Statement, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        self.any.get_result_schema(statement, format)
    }
}

/// Gives engine errors that reached pgwire untyped their SQLSTATE.
struct Errors;

impl ErrorHandler for Errors {
    fn on_error<C>(&self, _client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        if let PgWireError::ApiError(inner) = error {
            let typed = if let Some(df) = inner.downcast_ref::<datafusion::error::DataFusionError>() {
                QueryError::from_datafusion(df)
            } else if let Some(own) = inner.downcast_ref::<QueryError>() {
                own.clone()
            } else {
                QueryError::Syntax(inner.to_string())
            };
            *error = pg_error(&typed);
        }
    }
}
