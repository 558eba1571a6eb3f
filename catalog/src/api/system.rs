//! System endpoints: liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_contracts::api::Readiness;

use super::AppState;
use super::error::ApiError;
use crate::authz::Caller;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "system", security(()),
    responses((status = 200, description = "The process is alive", body = Readiness)))]
pub async fn health() -> Json<Readiness> {
    Json(Readiness {
        status: "ok".into(),
        checks: Default::default(),
    })
}

/// Readiness: the catalog can reach its database.
#[utoipa::path(get, path = "/ready", tag = "system", security(()),
    responses((status = 200, description = "Ready to serve", body = Readiness),
               (status = 503, description = "Not ready", body = Readiness)))]
pub async fn ready(State(app): State<AppState>) -> Response {
    let backend = app.catalog.backend();
    let (status, check) = match app.catalog.ping().await {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "unreachable".to_string())
        }
    };
    let body = Readiness {
        status: if status == StatusCode::OK {
            "ready"
        } else {
            "unavailable"
        }
        .into(),
        checks: [(format!("database ({backend})"), check)].into(),
    };
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(tessera_http::problem::RETRY_AFTER_SECS),
        );
    }
    response
}

/// Prometheus metrics, in the text exposition format: for a principal with
/// the `metrics` role, or an admin (a scraper on a private network may use
/// the unauthenticated `metrics_listen` listener instead).
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Metrics", content_type = "text/plain", body = String)))]
pub async fn metrics(State(app): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    app.catalog.authz.require_metrics(&caller)?;
    Ok(render_metrics(&app).await)
}

/// The metrics, on the unauthenticated `metrics_listen` listener.
pub async fn metrics_open(State(app): State<AppState>) -> Response {
    render_metrics(&app).await
}

async fn render_metrics(app: &AppState) -> Response {
    if let Ok(v) = app.catalog.version().await {
        app.metrics.catalog_version.set(v.version);
    }
    app.metrics
        .watches
        .set(i64::try_from(app.catalog.parked_watches()).unwrap_or(i64::MAX));
    let mut response = app.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
