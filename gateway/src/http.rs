//! `POST /api/v1/query`: SQL over HTTP, streamed as it is produced, in the
//! format the `Accept` header asks for.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tessera_contracts::api::Problem;
use utoipa::ToSchema;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::engine::{Engine, Protocol, QueryStream};
use crate::error::QueryError;

const PROBLEM_JSON: &str = "application/problem+json";
const NDJSON: &str = "application/x-ndjson";
const CSV: &str = "text/csv";
const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
/// Response header naming the query (as in its audit record).
pub const QUERY_ID_HEADER: &str = "tessera-query-id";

/// A query.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// One SQL query (SELECT, WITH, VALUES, EXPLAIN, SHOW TABLES); tables are
    /// `<domain>.<product>`, older majors `<domain>.<product>__v<N>`, and a past
    /// Delta version `<domain>."<product>@v<N>"`.
    #[schema(
        example = "SELECT n_name, count(*) AS customers FROM customers.customer JOIN customers.nation ON c_nationkey = n_nationkey GROUP BY n_name"
    )]
    pub sql: String,
}

/// One result column.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Column {
    pub name: String,
    /// The Arrow data type.
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
}

/// The JSON form of a result (`Accept: application/json`), streamed row by row.
/// If the query fails after rows were sent, `error` replaces `row_count`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueryResult {
    pub query_id: String,
    pub columns: Vec<Column>,
    /// One object per row, keyed by column name.
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub row_count: Option<u64>,
    #[serde(default)]
    pub elapsed_ms: Option<u64>,
    #[serde(default)]
    pub error: Option<Problem>,
}

/// The query endpoint's routes and their OpenAPI description.
pub fn routes() -> OpenApiRouter<Engine> {
    OpenApiRouter::new().routes(routes!(query))
}

/// The gateway's HTTP application (its state applied).
pub fn router(engine: Engine) -> Router {
    let (router, _) = routes().split_for_parts();
    router.with_state(engine)
}

/// The query endpoint's part of the platform's OpenAPI document.
pub fn openapi() -> OpenApi {
    let (_, doc) = routes().split_for_parts();
    doc
}

/// A problem+json response for a failed query.
pub fn problem(error: &QueryError, query_id: Option<&str>) -> Response {
    let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = problem_body(error, query_id);
    let mut response = (status, serde_json::to_vec(&body).unwrap_or_default()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if matches!(error, QueryError::Unauthenticated) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if matches!(
        error,
        QueryError::Busy { .. } | QueryError::NotReady | QueryError::Stale { .. }
    ) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn problem_body(error: &QueryError, query_id: Option<&str>) -> Problem {
    let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut body = Problem::new(
        format!("urn:tessera:problem:{}", error.kind()),
        status.canonical_reason().unwrap_or("Error"),
        status.as_u16(),
    );
    body.detail = Some(error.to_string());
    body.sqlstate = Some(error.sqlstate().to_string());
    body.query_id = query_id.map(str::to_string);
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

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// The HTTP header declaring a query's purpose.
pub const PURPOSE_HEADER: &str = "tessera-purpose";

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
pub async fn query(State(engine): State<Engine>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(format) = Format::negotiate(&headers) else {
        let mut p = Problem::new("urn:tessera:problem:not-acceptable", "Not Acceptable", 406);
        p.detail = Some(format!("supported: application/json, {NDJSON}, {CSV}, {ARROW_STREAM}"));
        let mut response = (StatusCode::NOT_ACCEPTABLE, serde_json::to_vec(&p).unwrap_or_default()).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        return response;
    };
    let principal = match bearer(&headers).map(|key| engine.authenticate(key)) {
        Some(Ok(p)) => p,
        Some(Err(e)) => return problem(&e, None),
        None => return problem(&QueryError::Unauthenticated, None),
    };
    let request: QueryRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let mut p = Problem::new("urn:tessera:problem:bad-request", "Bad Request", 400);
            p.detail = Some(format!("the body must be {{\"sql\": \"...\"}}: {e}"));
            let mut response = (StatusCode::BAD_REQUEST, serde_json::to_vec(&p).unwrap_or_default()).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
            return response;
        }
    };
    let purpose = headers.get(PURPOSE_HEADER).and_then(|v| v.to_str().ok());
    let session = match engine.session(&principal, Protocol::Http, purpose) {
        Ok(s) => s,
        Err(e) => return problem(&e, None),
    };
    let mut stream = match session.sql(&request.sql).await {
        Ok(s) => s,
        Err(e) => return problem(&e, None),
    };
    let id = stream.id.to_string();
    // Wait for the first batch before answering 200, so that the errors most
    // queries meet (bad data, limits) still get a proper status.
    let first = match stream.next().await {
        Some(Ok(batch)) => Some(batch),
        Some(Err(e)) => return problem(&QueryError::from(e), Some(&id)),
        None => None,
    };
    let schema = stream.schema_ref();
    let encoder = Encoder::new(format, id.clone(), schema);
    let body = Body::from_stream(encode(stream, first, encoder));
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert(QUERY_ID_HEADER, v);
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
    rows_written: bool,
    arrow: Option<arrow::ipc::writer::StreamWriter<Vec<u8>>>,
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl Encoder {
    fn new(format: Format, query_id: String, schema: SchemaRef) -> Self {
        Self {
            format,
            query_id,
            schema,
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
                format!(
                    "{{\"query_id\":{},\"columns\":{},\"rows\":[",
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
