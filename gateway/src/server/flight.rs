//! The Arrow Flight SQL endpoint (arrow-flight's `FlightSqlService`).
//!
//! Authentication: `authorization: Bearer <API key>` on every call, or the Basic
//! handshake with the key as password (the answer's bearer token is the key).
//! Statement and prepared-statement handles carry only the SQL text (and a
//! prepared statement's bound parameters): each call plans it again for the
//! principal presenting the token, so a handle is worthless to anyone else and
//! the server keeps no per-client state.

use std::pin::Pin;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow::record_batch::RecordBatch;
use arrow_flight::decode::FlightRecordBatchStream;
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
use datafusion::common::ParamValues;
use datafusion::scalar::ScalarValue;
use futures::{Stream, TryStreamExt};
use prost::Message;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use tessera_contracts::api::{NOTICE_HEADER, PURPOSE_HEADER};
use tessera_contracts::credentials::Credential;

use super::credentials;
use crate::engine::{Engine, Protocol, Session};
use crate::error::QueryError;
use crate::tables::CATALOG;

/// Maps a query error to its gRPC status (the SQLSTATE leads the message).
pub fn status(error: &QueryError) -> Status {
    let message = format!("{} (SQLSTATE {})", error.disclose().message, error.sqlstate());
    match error {
        QueryError::Unauthenticated | QueryError::TokenRefused(_) => Status::unauthenticated(message),
        QueryError::Throttled(_) => Status::resource_exhausted(message),
        QueryError::NotReady | QueryError::Stale { .. } | QueryError::AuditUnavailable(_) => {
            Status::unavailable(message)
        }
        QueryError::NotAllowed(_) => Status::permission_denied(message),
        QueryError::NotFound(_) => Status::not_found(message),
        QueryError::Unsupported(_) => Status::unimplemented(message),
        QueryError::NotServed(_) => Status::failed_precondition(message),
        QueryError::TooLong { .. }
        | QueryError::Syntax(_)
        | QueryError::TooComplex(_)
        | QueryError::Plan(_)
        | QueryError::Data { .. } => Status::invalid_argument(message),
        QueryError::Busy { .. }
        | QueryError::TooManyRows { .. }
        | QueryError::TooManyBytes { .. }
        | QueryError::Memory(_) => Status::resource_exhausted(message),
        QueryError::Timeout { .. } => Status::deadline_exceeded(message),
        QueryError::Storage(_) => Status::unavailable(message),
        QueryError::Internal(_) => Status::internal(message),
    }
}

/// Serves Flight SQL on `listener` until `shutdown` resolves.
pub async fn serve(
    engine: Engine,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<tessera_http::Tls>>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    // gRPC clients of a TLS-only listener see the connection close.
    let incoming = tessera_http::Accepting::new(listener, tls, tessera_http::Refusal::Close)?.into_stream();
    tonic::transport::Server::builder()
        .add_service(service(engine))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(std::io::Error::other)
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

    async fn session(&self, metadata: &MetadataMap, peer: Option<std::net::SocketAddr>) -> Result<Session, Status> {
        let token = credentials::from_metadata(metadata)
            .filter(|c| matches!(c, Credential::Bearer(_)))
            .ok_or_else(|| {
                Status::unauthenticated("send `authorization: Bearer <API key or token>` or use the handshake")
            })?;
        let principal = credentials::admit(&self.engine, peer.map(|p| p.ip()), Some(&token))
            .await
            .map_err(|e| status(&e))?;
        // The query's purpose travels as a header, like the key.
        let purpose = metadata.get(PURPOSE_HEADER).and_then(|v| v.to_str().ok());
        self.engine
            .session(&principal, Protocol::FlightSql, purpose)
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

    async fn run_prepared(
        &self,
        metadata: &MetadataMap,
        peer: Option<std::net::SocketAddr>,
        prepared: &Prepared,
    ) -> Result<Response<DoGetStream>, Status> {
        let Some(params) = prepared.values()? else {
            return self.run(metadata, peer, &prepared.sql).await;
        };
        let session = self.session(metadata, peer).await?;
        let stream = session.execute(&prepared.sql, params).await.map_err(|e| status(&e))?;
        Self::stream(stream)
    }

    async fn run(
        &self,
        metadata: &MetadataMap,
        peer: Option<std::net::SocketAddr>,
        sql: &str,
    ) -> Result<Response<DoGetStream>, Status> {
        let session = self.session(metadata, peer).await?;
        let stream = session.sql(sql).await.map_err(|e| status(&e))?;
        Self::stream(stream)
    }

    fn stream(stream: crate::engine::QueryStream) -> Result<Response<DoGetStream>, Status> {
        let schema: SchemaRef = datafusion::execution::RecordBatchStream::schema(&stream);
        let notices = stream.notices.clone();
        let batches = stream
            .map_ok(crate::compact::compact)
            .map_err(|e| FlightError::Tonic(Box::new(status(&QueryError::from(e)))));
        let encoded = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(|e| match e {
                FlightError::Tonic(status) => *status,
                other => Status::internal(other.to_string()),
            });
        let mut response = Response::new(Box::pin(encoded) as DoGetStream);
        for notice in notices {
            if let Ok(value) = tonic::metadata::MetadataValue::try_from(notice.as_str()) {
                response.metadata_mut().append(NOTICE_HEADER, value);
            }
        }
        Ok(response)
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

/// A prepared statement's handle: its SQL and, once bound, its parameters (one
/// row, as an Arrow IPC stream). It holds no server state.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Prepared {
    sql: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    params: Option<String>,
}

impl Prepared {
    fn encode(&self) -> prost::bytes::Bytes {
        serde_json::to_vec(self).unwrap_or_default().into()
    }

    fn decode(handle: &[u8]) -> Result<Self, Status> {
        serde_json::from_slice(handle).map_err(|_| Status::invalid_argument("this handle was not issued by Tessera"))
    }

    /// The bound parameters as `$1, $2, ...` values.
    fn values(&self) -> Result<Option<ParamValues>, Status> {
        let Some(encoded) = &self.params else {
            return Ok(None);
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| Status::invalid_argument("corrupt parameters in the handle"))?;
        let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let mut values = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| Status::invalid_argument(e.to_string()))?;
            if batch.num_rows() > 0 {
                for column in batch.columns() {
                    values.push(
                        ScalarValue::try_from_array(column, 0).map_err(|e| Status::invalid_argument(e.to_string()))?,
                    );
                }
                break;
            }
        }
        Ok(Some(ParamValues::List(values.into_iter().map(Into::into).collect())))
    }
}

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
        let basic = credentials::from_metadata(request.metadata())
            .filter(|c| matches!(c, Credential::Basic { .. }))
            .ok_or_else(|| Status::unauthenticated("send `authorization: Basic base64(user:API key)`"))?;
        let peer = request.remote_addr().map(|p| p.ip());
        credentials::admit(&self.engine, peer, Some(&basic))
            .await
            .map_err(|e| status(&e))?;
        let key = basic.secret().to_string();
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
        let session = self.session(request.metadata(), request.remote_addr()).await?;
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
        let session = self.session(request.metadata(), request.remote_addr()).await?;
        let prepared = Prepared::decode(&query.prepared_statement_handle)?;
        let schema = Self::schema_of(&session, &prepared.sql).await?;
        Self::info(&schema, query.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let sql = sql_of(&ticket.statement_handle)?;
        self.run(request.metadata(), request.remote_addr(), &sql).await
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let prepared = Prepared::decode(&query.prepared_statement_handle)?;
        self.run_prepared(request.metadata(), request.remote_addr(), &prepared)
            .await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let session = self.session(request.metadata(), request.remote_addr()).await?;
        let plan = session.plan(&query.query).await.map_err(|e| status(&e))?;
        let schema = plan.schema().as_arrow().clone();
        let mut parameters: Vec<(usize, Option<arrow::datatypes::DataType>)> = plan
            .get_parameter_types()
            .map_err(|e| status(&QueryError::from(e)))?
            .into_iter()
            .filter_map(|(name, t)| Some((name.trim_start_matches('$').parse().ok()?, t)))
            .collect();
        parameters.sort_by_key(|(i, _)| *i);
        let parameter_schema = Schema::new(
            parameters
                .into_iter()
                .map(|(i, t)| {
                    arrow::datatypes::Field::new(format!("${i}"), t.unwrap_or(arrow::datatypes::DataType::Utf8), true)
                })
                .collect::<Vec<_>>(),
        );
        let options = IpcWriteOptions::default();
        let IpcMessage(dataset_schema) = SchemaAsIpc::new(&schema, &options)
            .try_into()
            .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
        let IpcMessage(parameter_schema) = SchemaAsIpc::new(&parameter_schema, &options)
            .try_into()
            .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: Prepared {
                sql: query.query,
                params: None,
            }
            .encode(),
            dataset_schema,
            parameter_schema,
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
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.session(request.metadata(), request.remote_addr()).await?;
        let mut prepared = Prepared::decode(&query.prepared_statement_handle)?;
        let data = request.into_inner().map_err(|e| FlightError::Tonic(Box::new(e)));
        let batches: Vec<RecordBatch> = FlightRecordBatchStream::new_from_flight_data(data)
            .try_collect()
            .await
            .map_err(|e| Status::invalid_argument(format!("cannot read the parameters: {e}")))?;
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows != 1 {
            return Err(Status::invalid_argument(format!(
                "bind exactly one row of parameters (got {rows})"
            )));
        }
        let batch = batches
            .into_iter()
            .find(|b| b.num_rows() == 1)
            .ok_or_else(|| Status::invalid_argument("no parameters"))?;
        let mut writer = arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &batch.schema())
            .map_err(|e| Status::internal(e.to_string()))?;
        writer.write(&batch).map_err(|e| Status::internal(e.to_string()))?;
        writer.finish().map_err(|e| Status::internal(e.to_string()))?;
        let ipc = writer.into_inner().map_err(|e| Status::internal(e.to_string()))?;
        prepared.params = Some(base64::engine::general_purpose::STANDARD.encode(ipc));
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(prepared.encode()),
        })
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(request.metadata(), request.remote_addr()).await?;
        let schema = query.into_builder().schema();
        Self::info(&schema, query.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.session(request.metadata(), request.remote_addr()).await?;
        let mut builder = query.into_builder();
        builder.append(CATALOG);
        Self::batch(builder.build())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(request.metadata(), request.remote_addr()).await?;
        let schema = query.clone().into_builder().schema();
        Self::info(&schema, query.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(request.metadata(), request.remote_addr()).await?;
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
        self.session(request.metadata(), request.remote_addr()).await?;
        let schema = query.clone().into_builder().schema();
        Self::info(&schema, query.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(request.metadata(), request.remote_addr()).await?;
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
        self.session(request.metadata(), request.remote_addr()).await?;
        let schema = query.into_builder().schema();
        Self::info(&schema, query.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.session(request.metadata(), request.remote_addr()).await?;
        let mut builder = query.into_builder();
        builder.append("TABLE");
        Self::batch(builder.build())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(request.metadata(), request.remote_addr()).await?;
        let schema = query.clone().into_builder(&self.info).schema();
        Self::info(&schema, query.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.session(request.metadata(), request.remote_addr()).await?;
        Self::batch(query.into_builder(&self.info).build())
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
