//! Problem details (RFC 9457) over HTTP.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_contracts::api::Problem;

/// The `Retry-After` of every 503 answer, in seconds.
pub const RETRY_AFTER_SECS: &str = "1";

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The stable `type` URI of a problem slug.
pub fn problem_type(slug: &str) -> String {
    format!("urn:tessera:problem:{slug}")
}

/// A problem of `status` with the stable type `urn:tessera:problem:<slug>`,
/// the status's reason as title, and `detail`.
pub fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Problem {
    let mut problem = Problem::new(
        problem_type(slug),
        status.canonical_reason().unwrap_or("Error"),
        status.as_u16(),
    );
    problem.detail = Some(detail.into());
    problem
}

/// The problem a client is shown for a failure inside the platform: only an
/// error id, which the log line carrying the cause names too.
pub fn internal(title: &str, cause: &dyn std::fmt::Debug) -> Problem {
    let error_id = uuid::Uuid::new_v4().to_string();
    tracing::error!(%error_id, error = ?cause, "internal error");
    let mut problem = Problem::new(problem_type("internal"), title, 500);
    problem.detail = Some(format!("an internal error occurred; quote error id {error_id}"));
    problem.request_id = Some(error_id);
    problem
}

/// Serializes a problem with its media type and the headers its status calls for.
pub fn response(status: StatusCode, problem: &Problem) -> Response {
    let body = serde_json::to_vec(problem).unwrap_or_default();
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        // The rest of the body was never read: the connection cannot be reused.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // Every 503 is a passing state (a database out of reach, a request
        // that took too long, a gateway not ready): a client may retry soon.
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    }
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"tessera\""),
        );
    }
    response
}
