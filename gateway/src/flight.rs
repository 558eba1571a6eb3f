//! The Arrow Flight SQL endpoint (arrow-flight's `FlightSqlService`).
//!
//! Authentication: `authorization: Bearer <API key>` on every call, or the Basic
//! handshake with the key as password (the answer's bearer token is the key).
//! Statement and prepared-statement handles carry only the SQL text: each call
//! plans it again for the principal presenting the token, so a handle is
//! worthless to anyone else and the server keeps no per-client state.

use std::pin::Pin;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow::record_batch::RecordBatch;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult,
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables,
    CommandPreparedStatementQuery, CommandStatementQuery, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage, SchemaAsIpc, Ticket,
};
use base64::Engine as _;
use futures::{Stream, TryStreamExt};
use prost::Message;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use crate::engine::{Engine, Protocol, Session};
use crate::error::QueryError;
use crate::tables::CATALOG;

/// Maps a query error to its gRPC status (the SQLSTATE leads the message).
pub fn status(error: &QueryError) -> Status {
    let message = format!("{} (SQLSTATE {})", error, error.sqlstate());
    match error {
        QueryError::Unauthenticated => Status::unauthenticated(message),
        QueryError::NotReady => Status::unavailable(message),
        QueryError::NotAllowed(_) => Status::permission_denied(message),
        QueryError::NotFound(_) => Status::not_found(message),
        QueryError::Unsupported(_) => Status::unimplemented(message),
        QueryError::TooLong { .. } | QueryError::Syntax(_) | QueryError::Plan(_) | QueryError::Data { .. } => {
            Status::invalid_argument(message)
        }
        QueryError::Busy { .. }
        | QueryError::TooManyRows { .. }
        | QueryError::TooManyBytes { .. }
        | QueryError::Memory(_) => Status::resource_exhausted(message),
        QueryError::Timeout { .. } => Status::deadline_exceeded(message),
        QueryError::Storage(_) => Status::unavailable(message),
        QueryError::Internal(_) => Status::internal(message),
    }
}

/// Serves Flight SQL on `listener` until the task is dropped.
pub async fn serve(engine: Engine, listener: tokio::net::TcpListener) -> Result<(), tonic::transport::Error> {
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tonic::transport::Server::builder()
        .add_service(service(engine))
        .serve_with_incoming(incoming)
        .await
}

/// The Flight service, for embedding in another tonic server.
pub fn service(engine: Engine) -> FlightServiceServer<FlightSql> {
    FlightServiceServer::new(FlightSql::new(engine))
        .max_decoding_message_size(16 << 20)
        .max_encoding_message_size(64 << 20)
}

/// The Flight SQL service over the engine.
pub struct FlightSql {
    engine: Engine,
    info: Arc<SqlInfoData>,
}

impl FlightSql {
    pub fn new(engine: Engine) -> Self {
        let mut builder = SqlInfoDataBuilder::new();
        builder.append(SqlInfo::FlightSqlServerName, "Tessera");
        builder.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        builder.append(SqlInfo::FlightSqlServerArrowVersion, "59");
        builder.append(SqlInfo::FlightSqlServerReadOnly, true);
        builder.append(SqlInfo::FlightSqlServerSql, true);
        builder.append(SqlInfo::FlightSqlServerSubstrait, false);
        builder.append(SqlInfo::FlightSqlServerTransaction, 0i32);
        builder.append(SqlInfo::FlightSqlServerCancel, false);
        builder.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
        // Built from constants: it cannot fail.
        let info = builder
            .build()
            .unwrap_or_else(|_| SqlInfoDataBuilder::new().build().expect("empty info"));
        Self {
            engine,
            info: Arc::new(info),
        }
    }

    fn session(&self, metadata: &MetadataMap) -> Result<Session, Status> {
        let token = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
            })
            .ok_or_else(|| Status::unauthenticated("send `authorization: Bearer <API key>` or use the handshake"))?;
        let principal = self.engine.authenticate(&token).map_err(|e| status(&e))?;
        self.engine
            .session(&principal, Protocol::FlightSql)
            .map_err(|e| status(&e))
    }

    async fn schema_of(session: &Session, sql: &str) -> Result<Schema, Status> {
        let plan = session.plan(sql).await.map_err(|e| status(&e))?;
        Ok(plan.schema().as_arrow().clone())
    }

    fn info(schema: &Schema, ticket: Vec<u8>, descriptor: FlightDescriptor) -> Result<Response<FlightInfo>, Status> {
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(e.to_string()))?
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }

    async fn run(&self, metadata: &MetadataMap, sql: &str) -> Result<Response<DoGetStream>, Status> {
        let session = self.session(metadata)?;
        let stream = session.sql(sql).await.map_err(|e| status(&e))?;
        let schema: SchemaRef = datafusion::execution::RecordBatchStream::schema(&stream);
        let batches = stream.map_err(|e| FlightError::Tonic(Box::new(status(&QueryError::from(e)))));
        let encoded = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(|e| match e {
                FlightError::Tonic(status) => *status,
                other => Status::internal(other.to_string()),
            });
        Ok(Response::new(Box::pin(encoded)))
    }

    fn batch(batch: Result<RecordBatch, FlightError>) -> Result<Response<DoGetStream>, Status> {
        let batch = batch.map_err(|e| Status::internal(e.to_string()))?;
        let schema = batch.schema();
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::once(async move { Ok(batch) }))
            .map_err(|e| Status::internal(e.to_string()));
        Ok(Response::new(Box::pin(stream)))
    }
}

type DoGetStream = Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send + 'static>>;

fn sql_of(handle: &[u8]) -> Result<String, Status> {
    String::from_utf8(handle.to_vec()).map_err(|_| Status::invalid_argument("this handle was not issued by Tessera"))
}

#[tonic::async_trait]
impl FlightSqlService for FlightSql {
    type FlightService = FlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>, Status> {
        let basic = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().strip_prefix("Basic "))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| Status::unauthenticated("send `authorization: Basic base64(user:API key)`"))?;
        let key = basic.split_once(':').map_or(basic.as_str(), |(_, key)| key).to_string();
        self.engine.authenticate(&key).map_err(|e| status(&e))?;
        let mut response: Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>> =
            Response::new(Box::pin(futures::stream::iter([Ok(HandshakeResponse {
                protocol_version: 0,
                payload: key.clone().into(),
            })])));
        let bearer = format!("Bearer {key}")
            .parse()
            .map_err(|_| Status::internal("cannot encode the token"))?;
        response.metadata_mut().insert("authorization", bearer);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let session = self.session(request.metadata())?;
        let schema = Self::schema_of(&session, &query.query).await?;
        let ticket = TicketStatementQuery {
            statement_handle: query.query.into_bytes().into(),
        };
        Self::info(&schema, ticket.as_any().encode_to_vec(), request.into_inner())
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let session = self.session(request.metadata())?;
        let sql = sql_of(&query.prepared_statement_handle)?;
        let schema = Self::schema_of(&session, &sql).await?;
        Self::info(&schema, query.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let sql = sql_of(&ticket.statement_handle)?;
        self.run(request.metadata(), &sql).await
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let sql = sql_of(&query.prepared_statement_handle)?;
        self.run(request.metadata(), &sql).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let session = self.session(request.metadata())?;
        let plan = session.plan(&query.query).await.map_err(|e| status(&e))?;
        let schema = plan.schema().as_arrow().clone();
        let parameters = plan.get_parameter_types().map_err(|e| status(&QueryError::from(e)))?;
        if !parameters.is_empty() {
            return Err(Status::unimplemented(
                "prepared statements with parameters are not supported over Flight SQL yet: inline the values",
            ));
        }
        let options = IpcWriteOptions::default();
        let IpcMessage(dataset_schema) = SchemaAsIpc::new(&schema, &options)
            .try_into()
            .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: query.query.into_bytes().into(),
            dataset_schema,
            parameter_schema: Default::default(),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        _request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        // Handles hold no server state.
        Ok(())
    }

    async fn do_put_prepared_statement_query(
        &self,
        _query: CommandPreparedStatementQuery,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        Err(Status::unimplemented(
            "binding parameters over Flight SQL is not supported yet: inline the values",
        ))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(request.metadata())?;
        let schema = query.into_builder().schema();
        Self::info(&schema, query.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.session(request.metadata())?;
        let mut builder = query.into_builder();
        builder.append(CATALOG);
        Self::batch(builder.build())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(request.metadata())?;
        let schema = query.clone().into_builder().schema();
        Self::info(&schema, query.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(request.metadata())?;
        let mut builder = query.into_builder();
        if let Some(catalog) = session.state().catalog_list().catalog(CATALOG) {
            for schema in catalog.schema_names() {
                builder.append(CATALOG, schema);
            }
        }
        Self::batch(builder.build())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(request.metadata())?;
        let schema = query.clone().into_builder().schema();
        Self::info(&schema, query.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(request.metadata())?;
        let include_schema = query.include_schema;
        let mut builder = query.into_builder();
        if let Some(catalog) = session.state().catalog_list().catalog(CATALOG) {
            for schema_name in catalog.schema_names() {
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                for table in schema.table_names() {
                    let table_schema = if include_schema {
                        match schema.table(&table).await {
                            Ok(Some(provider)) => provider.schema().as_ref().clone(),
                            // A product without a table yet: listed without columns.
                            _ => Schema::empty(),
                        }
                    } else {
                        Schema::empty()
                    };
                    builder
                        .append(CATALOG, &schema_name, &table, "TABLE", &table_schema)
                        .map_err(|e| Status::internal(e.to_string()))?;
                }
            }
        }
        Self::batch(builder.build())
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(request.metadata())?;
        let schema = query.into_builder().schema();
        Self::info(&schema, query.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.session(request.metadata())?;
        let mut builder = query.into_builder();
        builder.append("TABLE");
        Self::batch(builder.build())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(request.metadata())?;
        let schema = query.clone().into_builder(&self.info).schema();
        Self::info(&schema, query.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.session(request.metadata())?;
        Self::batch(query.into_builder(&self.info).build())
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
