//! Tessera's Rust SDK: a typed client of the catalog's REST API and of the
//! gateway's SQL endpoint.
//!
//! Every method builds its URL from one operation of [`ops`], the table of the
//! OpenAPI document's operations (`docs/openapi.json`); a test keeps the two equal.
//!
//! - [`Client`] (this module): the REST API and SQL over HTTP (JSON or Arrow).
//! - [`ops`]: every operation of the REST API: method, path, operation id.
//! - [`flight`]: queries over Arrow Flight SQL.
//! - [`publish`] (feature `publish`, on by default): writes Delta data only
//!   after checking it against the product's contract; brings DataFusion and
//!   deltalake, which a REST-only user leaves out with `default-features = false`.

mod catalog;
pub mod flight;
pub mod ops;
#[cfg(feature = "publish")]
pub mod publish;
mod query;

pub use arrow;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use reqwest::header::{AUTHORIZATION, ETAG, HeaderMap, HeaderValue, IF_MATCH};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
pub use tessera_contracts::api;
use tessera_contracts::api::{AccessRequestStatus, Page, Problem, ProductStatus, Visibility};
/// A query's result in its JSON form; [`Client::query`] turns a failure after
/// the first rows (its `error`) into an [`Error::Api`], so what it returns never has one.
pub use tessera_contracts::api::{Column, QueryResult};
pub use tessera_contracts::document::DocumentFormat;
pub use tessera_contracts::policy;

use crate::ops::Operation;

/// The media type of an Arrow IPC stream.
const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The catalog answered with a problem.
    #[error("{status}: {}", problem.detail.as_deref().unwrap_or(&problem.title))]
    Api { status: StatusCode, problem: Box<Problem> },
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("invalid API key: it cannot be sent as a header")]
    InvalidKey,
    /// A query's Arrow IPC stream could not be read.
    #[error("Arrow IPC stream: {0}")]
    Arrow(#[from] ArrowError),
}

impl Error {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The problem details of an API error.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Api { problem, .. } => Some(problem),
            _ => None,
        }
    }

    /// Whether the resource does not exist (or is invisible to the caller): 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }

    /// Whether the request conflicts with the resource's state (e.g. it exists already): 409.
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(StatusCode::CONFLICT)
    }

    /// Whether an `If-Match` ETag no longer matches (the resource moved on): 412.
    pub fn is_precondition_failed(&self) -> bool {
        self.status() == Some(StatusCode::PRECONDITION_FAILED)
    }

    /// Whether the caller is not allowed to do this: 403.
    pub fn is_forbidden(&self) -> bool {
        self.status() == Some(StatusCode::FORBIDDEN)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A resource with the ETag it was read at.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub etag: Option<String>,
    pub value: T,
}

/// The ETag of a resource at `revision` (its `revision` field), for `If-Match`.
pub fn etag(revision: i64) -> String {
    format!("\"{revision}\"")
}

/// Paging of a listing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Paging {
    /// Items per page, 1 to 500 (default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl Paging {
    /// The paging of the page after `page`, or `None` when `page` was the last.
    pub fn next<T>(&self, page: &Page<T>) -> Option<Self> {
        page.next_cursor.as_ref().map(|cursor| Self {
            limit: self.limit,
            cursor: Some(cursor.clone()),
        })
    }
}

/// Filters of the product listing across domains (`GET /api/v1/products`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProductParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Products carrying this tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ProductStatus>,
    /// Products of this owning team.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// Case-insensitive search in name, title, description and tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// Filters of a policy listing (grants, masks, row filters).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PolicyParams {
    /// Only policies lying in this domain (required of domain owners; admins see all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// Filters of the access-request listing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AccessRequestParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<AccessRequestStatus>,
    /// Requests for one product: give `domain` and `product` together, or neither.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// Paging of the change log: entries after sequence number `after`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChangeParams {
    /// Entries after this sequence number (default 0: from the start); a page's
    /// `next_cursor` is the `after` of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

#[derive(Serialize)]
struct WatchParams {
    after: i64,
    timeout_secs: u64,
}

/// A contract document exactly as submitted.
#[derive(Debug, Clone)]
pub struct Document {
    /// `application/yaml` or `application/json`.
    pub media_type: String,
    pub text: String,
}

impl Document {
    /// The document's format, from its media type.
    pub fn format(&self) -> Option<DocumentFormat> {
        DocumentFormat::from_content_type(&self.media_type)
    }
}

/// A query's result as Arrow record batches.
#[derive(Debug, Clone)]
pub struct ArrowResult {
    /// The query's id, as in its audit record.
    pub query_id: Option<String>,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl ArrowResult {
    /// The number of rows of all batches.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// A client of one catalog, authenticated with one API key.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    /// Where queries go: the catalog's own listener unless set apart.
    gateway: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("gateway", &self.gateway)
            .finish_non_exhaustive()
    }
}

/// The `reqwest` method of an operation.
fn method(op: &Operation) -> Method {
    match op.method {
        "GET" => Method::GET,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "PATCH" => Method::PATCH,
        "DELETE" => Method::DELETE,
        other => unreachable!("operation {} has an unknown method {other}", op.id),
    }
}

/// Adds `If-Match` when an ETag is given.
fn with_if_match(request: RequestBuilder, etag: Option<&str>) -> RequestBuilder {
    match etag {
        Some(etag) => request.header(IF_MATCH, etag),
        None => request,
    }
}

/// The response if it succeeded, else its problem as an error.
async fn check(response: Response) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.bytes().await.unwrap_or_default();
    let problem = serde_json::from_slice::<Problem>(&body).unwrap_or_else(|_| {
        Problem::new(
            "about:blank",
            status.canonical_reason().unwrap_or("error"),
            status.as_u16(),
        )
    });
    Err(Error::Api {
        status,
        problem: Box::new(problem),
    })
}

/// A header of a response as text.
fn header(response: &Response, name: impl reqwest::header::AsHeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Sends, and reads the JSON body with its ETag.
async fn versioned<T: DeserializeOwned>(request: RequestBuilder) -> Result<Versioned<T>> {
    let response = check(request.send().await?).await?;
    let etag = header(&response, ETAG);
    let value = response.json::<T>().await?;
    Ok(Versioned { etag, value })
}

/// Sends, and reads the JSON body.
async fn json<T: DeserializeOwned>(request: RequestBuilder) -> Result<T> {
    Ok(versioned(request).await?.value)
}

/// Sends, expecting no body.
async fn no_content(request: RequestBuilder) -> Result<()> {
    check(request.send().await?).await?;
    Ok(())
}

impl Client {
    /// `base` is the catalog's root URL, e.g. `http://127.0.0.1:8080`.
    pub fn new(base: impl Into<String>, api_key: &str) -> Result<Self> {
        Self::trusting(base, api_key, None)
    }

    /// As [`Client::new`], also trusting the CA certificates of `ca_pem` (PEM)
    /// for `https://` URLs: a private CA, such as `tessera demo --tls`'s.
    pub fn trusting(base: impl Into<String>, api_key: &str, ca_pem: Option<&[u8]>) -> Result<Self> {
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_str(&format!("Bearer {api_key}")).map_err(|_| Error::InvalidKey)?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        let mut builder = reqwest::Client::builder().default_headers(headers);
        if let Some(pem) = ca_pem {
            for ca in reqwest::Certificate::from_pem_bundle(pem)? {
                builder = builder.add_root_certificate(ca);
            }
        }
        let http = builder.build()?;
        let base = base.into().trim_end_matches('/').to_string();
        Ok(Self {
            http,
            gateway: base.clone(),
            base,
        })
    }

    /// Sends queries to a gateway's HTTP listener at `url` instead of the catalog's.
    #[must_use]
    pub fn with_gateway(mut self, url: impl Into<String>) -> Self {
        self.gateway = url.into().trim_end_matches('/').to_string();
        self
    }

    /// The catalog's root URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request of `op` on the catalog, its path filled with `args`.
    fn request(&self, op: &Operation, args: &[&str]) -> RequestBuilder {
        self.http.request(method(op), op.url(&self.base, args))
    }
}
