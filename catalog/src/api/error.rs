//! Errors over HTTP: the service's errors and the HTTP layer's own (bodies,
//! media types, timeouts) as RFC 9457 `application/problem+json` with stable types.
//!
//! Server errors carry only an error id; the cause goes to the log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tessera_contracts::api::{FieldError, Mismatch, Problem, Violation};

use crate::service::{self, Stage};

pub use tessera_http::{PROBLEM_JSON, problem_type};

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("the request is invalid")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    IllegalTransition(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("the request body is larger than the configured limit")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unavailable(String),
    /// An address refused for too many failed authentications.
    #[error("{0}")]
    Throttled(tessera_http::Throttled),
    /// A contract version that breaks compatibility without a new major version.
    #[error("{detail}")]
    Breaking { detail: String, violations: Vec<Violation> },
    /// A contract that its Delta table does not match (422 on submission, 409 on
    /// publication).
    #[error("{detail}")]
    TableMismatch {
        status: StatusCode,
        detail: String,
        mismatches: Vec<Mismatch>,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 422 for one invalid field.
    pub fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError {
            path: path.into(),
            message: message.into(),
        }])
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation", "Invalid request"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Authentication required"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Self::IllegalTransition(_) => (
                StatusCode::CONFLICT,
                "illegal-transition",
                "Illegal lifecycle transition",
            ),
            Self::PreconditionFailed(_) => (
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                "The resource has changed",
            ),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Request body too large",
            ),
            Self::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
            Self::Throttled(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-failed-attempts",
                "Too many failed attempts",
            ),
            Self::Breaking { .. } => (StatusCode::CONFLICT, "breaking-change", "Breaking change"),
            Self::TableMismatch { status, .. } => (*status, "table-mismatch", "The table does not match the contract"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal server error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        let retry_after = match &self {
            Self::Throttled(throttled) => Some(throttled.retry_after_secs()),
            _ => None,
        };
        let mut problem = Problem::new(problem_type(slug), title, status.as_u16());
        match self {
            Self::Internal(cause) => problem = tessera_http::problem::internal(title, &cause),
            Self::Validation(errors) => {
                problem.detail = Some(match errors.as_slice() {
                    [one] if one.path.is_empty() => one.message.clone(),
                    [one] => format!("{}: {}", one.path, one.message),
                    _ => format!("{} fields are invalid", errors.len()),
                });
                problem.errors = errors;
            }
            Self::Breaking { detail, violations } => {
                problem.detail = Some(detail);
                problem.violations = violations;
            }
            Self::TableMismatch { detail, mismatches, .. } => {
                problem.detail = Some(detail);
                problem.mismatches = mismatches;
            }
            other => problem.detail = Some(other.to_string()),
        }
        let mut response = problem_response(status, &problem);
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        response
    }
}

/// Serializes a problem with its media type.
pub use tessera_http::problem::response as problem_response;

impl From<service::Error> for ApiError {
    fn from(err: service::Error) -> Self {
        use service::Error as E;
        match err {
            E::Malformed(msg) => Self::BadRequest(msg),
            E::Invalid(errors) => Self::Validation(errors),
            E::UnsupportedFormat(msg) => Self::UnsupportedMediaType(msg),
            E::Unauthenticated(msg) => Self::Unauthorized(msg),
            E::Forbidden(msg) => Self::Forbidden(msg),
            E::NotFound(msg) => Self::NotFound(msg),
            E::Conflict(msg) => Self::Conflict(msg),
            E::IllegalTransition(msg) => Self::IllegalTransition(msg),
            E::PreconditionFailed { current } => Self::PreconditionFailed(format!(
                "If-Match does not match: the current ETag is \"{current}\"; fetch the resource again"
            )),
            E::Breaking { detail, violations } => Self::Breaking { detail, violations },
            E::TableMismatch {
                stage,
                detail,
                mismatches,
            } => Self::TableMismatch {
                // Submitting such a contract is an invalid request; publishing
                // over such a table conflicts with the table's state.
                status: match stage {
                    Stage::Submission => StatusCode::UNPROCESSABLE_ENTITY,
                    Stage::Publication => StatusCode::CONFLICT,
                },
                detail,
                mismatches,
            },
            E::Unavailable(msg) => Self::Unavailable(msg),
            E::Internal(cause) => Self::Internal(cause),
        }
    }
}
