//! `POST /api/v1/query`: SQL over HTTP, streamed as it is produced, in the
//! format the `Accept` header asks for. Served with the same middleware stack
//! as the catalog (request id, trace span, catch-panic, timeout, problem+json).

use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tessera_contracts::api::{
    Column, NOTICE_HEADER, PURPOSE_HEADER, Problem, QUERY_ID_HEADER, QueryRequest, QueryResult,
};
use tessera_http::problem;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::credentials;
use crate::engine::{Engine, Principal, Protocol, QueryStream};
use crate::error::QueryError;

const NDJSON: &str = "application/x-ndjson";
const CSV: &str = "text/csv";
const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// The query endpoint's routes and their OpenAPI description.
pub fn routes() -> OpenApiRouter<Engine> {
    OpenApiRouter::new().routes(routes!(query))
}

/// The gateway's HTTP application: its routes, their state, and the standard
/// stack; `timeout` bounds the time to the answer's head (the first batch), the
/// query's own deadline the rest.
pub fn router(engine: Engine, timeout: Duration) -> Router {
    let (router, _) = routes().split_for_parts();
    let router = router
        .with_state(engine)
        .layer(axum::middleware::from_fn(stamp_arrival));
    tessera_http::stack::standard(router, timeout)
}

/// When a request arrived, before its body was read and its caller
/// authenticated: a query's deadline counts from there.
#[derive(Debug, Clone, Copy)]
pub struct Arrived(pub std::time::Instant);

async fn stamp_arrival(mut request: Request, next: axum::middleware::Next) -> Response {
    request.extensions_mut().insert(Arrived(std::time::Instant::now()));
    next.run(request).await
}

/// The query endpoint's part of the platform's OpenAPI document.
pub fn openapi() -> OpenApi {
    let (_, doc) = routes().split_for_parts();
    doc
}

/// A problem+json response for a failed query.
pub(super) fn problem(error: &QueryError, query_id: Option<&str>) -> Response {
    let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = problem::response(status, &problem_body(error, query_id));
    if matches!(
        error,
        QueryError::Busy { .. } | QueryError::NotReady | QueryError::Stale { .. } | QueryError::AuditUnavailable(_)
    ) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(problem::RETRY_AFTER_SECS));
    }
    if let QueryError::Throttled(throttled) = error {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(throttled.retry_after_secs()));
    }
    response
}

fn problem_body(error: &QueryError, query_id: Option<&str>) -> Problem {
    let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let disclosed = error.disclose();
    let mut body = problem::new(status, error.kind(), disclosed.message);
    body.sqlstate = Some(error.sqlstate().to_string());
    body.query_id = query_id.map(str::to_string);
    body.request_id = disclosed.error_id;
    body
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    NdJson,
    Csv,
    Arrow,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::NdJson => NDJSON,
            Self::Csv => "text/csv; charset=utf-8; header=present",
            Self::Arrow => ARROW_STREAM,
        }
    }

    /// The first supported type of `Accept` in the client's order of preference.
    fn negotiate(headers: &HeaderMap) -> Option<Self> {
        let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
            return Some(Self::Json);
        };
        let mut offers: Vec<(f32, usize, &str)> = accept
            .split(',')
            .enumerate()
            .map(|(i, part)| {
                let mut pieces = part.split(';');
                let media = pieces.next().unwrap_or("").trim();
                let q = pieces
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                (q, i, media)
            })
            .filter(|(q, _, _)| *q > 0.0)
            .collect();
        offers.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        offers
            .into_iter()
            .find_map(|(_, _, media)| match media.to_ascii_lowercase().as_str() {
                "application/json" | "application/*" | "*/*" => Some(Self::Json),
                NDJSON | "application/ndjson" | "application/jsonl" => Some(Self::NdJson),
                CSV | "text/*" => Some(Self::Csv),
                ARROW_STREAM => Some(Self::Arrow),
                _ => None,
            })
    }
}

/// The result format `Accept` asks for; 406 when none is supported.
pub struct Negotiated(Format);

impl<S: Send + Sync> FromRequestParts<S> for Negotiated {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        Format::negotiate(&parts.headers).map(Negotiated).ok_or_else(|| {
            problem::response(
                StatusCode::NOT_ACCEPTABLE,
                &problem::new(
                    StatusCode::NOT_ACCEPTABLE,
                    "not-acceptable",
                    format!("supported: application/json, {NDJSON}, {CSV}, {ARROW_STREAM}"),
                ),
            )
        })
    }
}

/// The authenticated caller; 401 without a valid credential.
pub struct Caller(Principal);

impl FromRequestParts<Engine> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, engine: &Engine) -> Result<Self, Response> {
        let credential = credentials::from_headers(&parts.headers);
        let peer = tessera_http::Peer::of(&parts.extensions);
        credentials::admit(engine, peer, credential.as_ref())
            .await
            .map(Caller)
            .map_err(|e| problem(&e, None))
    }
}

/// The purpose the request declares (`Tessera-Purpose`).
fn purpose(headers: &HeaderMap) -> Option<&str> {
    headers.get(PURPOSE_HEADER).and_then(|v| v.to_str().ok())
}

/// The request body, `{"sql": "..."}`; 400 for anything else.
pub struct QueryBody(QueryRequest);

impl<S: Send + Sync> FromRequest<S> for QueryBody {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let bytes = Bytes::from_request(request, state).await.map_err(|e| {
            let status = e.status();
            let slug = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "payload-too-large"
            } else {
                "bad-request"
            };
            problem::response(status, &problem::new(status, slug, e.body_text()))
        })?;
        serde_json::from_slice(&bytes).map(QueryBody).map_err(|e| {
            problem::response(
                StatusCode::BAD_REQUEST,
                &problem::new(
                    StatusCode::BAD_REQUEST,
                    "bad-request",
                    format!("the body must be {{\"sql\": \"...\"}}: {e}"),
                ),
            )
        })
    }
}

/// Run a SQL query over the products the caller may query.
///
/// The result is streamed as it is produced, in the format `Accept` names:
/// `application/json` (default), `application/x-ndjson` (one object per row),
/// `text/csv` (with a header row) or `application/vnd.apache.arrow.stream`.
/// The `Tessera-Query-Id` header names the query. Errors found before the first
/// row are problem+json with the query's `sqlstate`. `Tessera-Purpose` declares
/// what the data is for (it counts when the caller may declare it).
#[utoipa::path(post, path = "/api/v1/query", tag = "query", request_body = QueryRequest,
    security(("bearer" = [])),
    params(("Tessera-Purpose" = Option<String>, Header, description = "The query's purpose, e.g. `analytics`")),
    responses(
        (status = 200, description = "The result", headers(("Tessera-Query-Id" = String)),
            content(
                (QueryResult = "application/json"),
                (String = "application/x-ndjson"),
                (String = "text/csv"),
                (Vec<u8> = "application/vnd.apache.arrow.stream"))),
        (status = 400, description = "Syntax, planning or data error", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a query (DDL, DML, SET, COPY...)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "A table or column that does not exist for the caller", body = Problem, content_type = "application/problem+json"),
        (status = 406, description = "No supported format in Accept", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "SQL text over the limit", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Result or memory over the query's limit", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many queries: retry after the Retry-After delay", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The gateway has no policy bundle yet", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The query ran over its time limit", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn query(
    State(engine): State<Engine>,
    Negotiated(format): Negotiated,
    Caller(principal): Caller,
    headers: HeaderMap,
    arrived: Option<axum::Extension<Arrived>>,
    QueryBody(request): QueryBody,
) -> Response {
    let arrived = arrived.map_or_else(std::time::Instant::now, |a| a.0.0);
    let stream = async {
        let session = engine.session(&principal, Protocol::Http, purpose(&headers))?;
        session.sql_arrived(&request.sql, arrived).await
    };
    match stream.await {
        Ok(stream) => respond(stream, format).await,
        Err(e) => problem(&e, None),
    }
}

/// Answers with the first batch in hand, so that the errors most queries meet
/// (bad data, limits) still get a proper status; the rest streams.
async fn respond(mut stream: QueryStream, format: Format) -> Response {
    let id = stream.id.to_string();
    let first = match stream.next().await {
        Some(Ok(batch)) => Some(batch),
        Some(Err(e)) => return problem(&QueryError::from(e), Some(&id)),
        None => None,
    };
    let notices = stream.notices.clone();
    let encoder = Encoder::new(format, id.clone(), stream.schema_ref(), notices.clone());
    let mut response = (StatusCode::OK, Body::from_stream(encode(stream, first, encoder))).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert(QUERY_ID_HEADER, v);
    }
    for notice in notices {
        if let Ok(v) = HeaderValue::from_str(&notice) {
            headers.append(NOTICE_HEADER, v);
        }
    }
    response
}

/// The body: the encoder's opening, each batch, then the closing (or, for JSON,
/// an error member; other formats end the body with an error, which clients see
/// as a broken transfer).
fn encode(
    stream: QueryStream,
    first: Option<RecordBatch>,
    encoder: Encoder,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    enum Phase {
        Start(Option<RecordBatch>),
        Rows,
        Done,
    }
    futures::stream::unfold(
        (stream, encoder, Phase::Start(first)),
        |(mut stream, mut encoder, phase)| async move {
            let chunk = match phase {
                Phase::Done => return None,
                Phase::Start(first) => {
                    let mut out = encoder.begin();
                    if let Some(batch) = first {
                        match encoder.batch(&batch) {
                            Ok(bytes) => out.extend_from_slice(&bytes),
                            Err(e) => return Some((Err(e), (stream, encoder, Phase::Done))),
                        }
                    }
                    return Some((Ok(Bytes::from(out)), (stream, encoder, Phase::Rows)));
                }
                Phase::Rows => match stream.next().await {
                    Some(Ok(batch)) => encoder.batch(&batch).map(Bytes::from),
                    Some(Err(e)) => {
                        let error = QueryError::from(e);
                        return Some(match encoder.fail(&error) {
                            Some(tail) => (Ok(Bytes::from(tail)), (stream, encoder, Phase::Done)),
                            None => (
                                Err(std::io::Error::other(error.to_string())),
                                (stream, encoder, Phase::Done),
                            ),
                        });
                    }
                    None => {
                        let tail = encoder.end(stream.rows(), stream.elapsed().as_millis() as u64);
                        return Some((Ok(Bytes::from(tail)), (stream, encoder, Phase::Done)));
                    }
                },
            };
            Some((chunk, (stream, encoder, Phase::Rows)))
        },
    )
}

struct Encoder {
    format: Format,
    query_id: String,
    schema: SchemaRef,
    notices: Vec<String>,
    rows_written: bool,
    arrow: Option<arrow::ipc::writer::StreamWriter<Vec<u8>>>,
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl Encoder {
    fn new(format: Format, query_id: String, schema: SchemaRef, notices: Vec<String>) -> Self {
        Self {
            format,
            query_id,
            schema,
            notices,
            rows_written: false,
            arrow: None,
        }
    }

    fn begin(&mut self) -> Vec<u8> {
        match self.format {
            Format::Json => {
                let columns: Vec<Column> = self
                    .schema
                    .fields()
                    .iter()
                    .map(|f| Column {
                        name: f.name().clone(),
                        data_type: f.data_type().to_string(),
                        nullable: f.is_nullable(),
                    })
                    .collect();
                let notices = if self.notices.is_empty() {
                    String::new()
                } else {
                    format!(
                        ",\"notices\":{}",
                        serde_json::to_string(&self.notices).unwrap_or_else(|_| "[]".into())
                    )
                };
                format!(
                    "{{\"query_id\":{}{notices},\"columns\":{},\"rows\":[",
                    serde_json::Value::String(self.query_id.clone()),
                    serde_json::to_string(&columns).unwrap_or_else(|_| "[]".into())
                )
                .into_bytes()
            }
            Format::Csv => {
                let names: Vec<String> = self.schema.fields().iter().map(|f| csv_field(f.name())).collect();
                format!("{}\r\n", names.join(",")).into_bytes()
            }
            Format::NdJson => Vec::new(),
            Format::Arrow => match arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &self.schema) {
                Ok(mut writer) => {
                    let out = std::mem::take(writer.get_mut());
                    self.arrow = Some(writer);
                    out
                }
                Err(_) => Vec::new(),
            },
        }
    }

    fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, std::io::Error> {
        if batch.num_rows() == 0 {
            return Ok(Vec::new());
        }
        match self.format {
            Format::Json | Format::NdJson => {
                let mut lines = Vec::new();
                {
                    let mut writer = arrow::json::WriterBuilder::new()
                        .with_explicit_nulls(true)
                        .build::<_, arrow::json::writer::LineDelimited>(&mut lines);
                    writer.write(batch).map_err(io)?;
                    writer.finish().map_err(io)?;
                }
                if self.format == Format::NdJson {
                    return Ok(lines);
                }
                // Lines become array elements.
                let mut out = Vec::with_capacity(lines.len() + 1);
                for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    if self.rows_written {
                        out.push(b',');
                    }
                    out.extend_from_slice(line);
                    self.rows_written = true;
                }
                Ok(out)
            }
            Format::Csv => {
                let mut out = Vec::new();
                {
                    let mut writer = arrow::csv::WriterBuilder::new().with_header(false).build(&mut out);
                    writer.write(batch).map_err(io)?;
                }
                Ok(out)
            }
            Format::Arrow => {
                let writer = self
                    .arrow
                    .as_mut()
                    .ok_or_else(|| io("the Arrow stream was not started"))?;
                writer.write(&crate::compact::compact(batch.clone())).map_err(io)?;
                Ok(std::mem::take(writer.get_mut()))
            }
        }
    }

    fn end(&mut self, rows: u64, elapsed_ms: u64) -> Vec<u8> {
        match self.format {
            Format::Json => format!("],\"row_count\":{rows},\"elapsed_ms\":{elapsed_ms}}}").into_bytes(),
            Format::Arrow => match self.arrow.as_mut() {
                Some(writer) => {
                    let _ = writer.finish();
                    std::mem::take(writer.get_mut())
                }
                None => Vec::new(),
            },
            Format::NdJson | Format::Csv => Vec::new(),
        }
    }

    /// JSON can carry an error after rows were sent; other formats cannot.
    fn fail(&mut self, error: &QueryError) -> Option<Vec<u8>> {
        (self.format == Format::Json).then(|| {
            let problem = problem_body(error, Some(&self.query_id));
            format!("],\"error\":{}}}", serde_json::to_string(&problem).unwrap_or_default()).into_bytes()
        })
    }
}

fn csv_field(name: &str) -> String {
    if name.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_string()
    }
}

impl QueryStream {
    fn schema_ref(&self) -> SchemaRef {
        datafusion::execution::RecordBatchStream::schema(self)
    }
}
