//! The middleware stack every Tessera router is served with.

use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::Response;
use tower::{BoxError, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::problem;

/// The header naming a request (taken from the client, or generated).
pub const REQUEST_ID: &str = "x-request-id";

/// Wraps `router` in the standard stack, outermost first: credentials kept out
/// of logs, a request id (the client's or a new one, echoed in the answer), a
/// trace span per request (with an empty `principal` field that authentication
/// fills in), a panic turned into a 500 problem with an error id, and
/// `timeout` turned into a 503 problem.
pub fn standard(router: Router, timeout: Duration) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID);
    router.layer(
        ServiceBuilder::new()
            .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION]))
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|request: &Request| {
                        let id = request
                            .headers()
                            .get(REQUEST_ID)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("");
                        tracing::info_span!("request", method = %request.method(), uri = %request.uri().path(),
                            request_id = %id, principal = tracing::field::Empty)
                    })
                    .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
            )
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(CatchPanicLayer::custom(|_| {
                problem::response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &problem::internal("Internal server error", &"a request handler panicked"),
                )
            }))
            .layer(HandleErrorLayer::new(timed_out))
            .timeout(timeout),
    )
}

async fn timed_out(err: BoxError) -> Response {
    if err.is::<tower::timeout::error::Elapsed>() {
        let mut p = problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the request took too long",
        );
        p.title = "Service unavailable".into();
        problem::response(StatusCode::SERVICE_UNAVAILABLE, &p)
    } else {
        problem::response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &problem::internal("Internal server error", &err),
        )
    }
}
