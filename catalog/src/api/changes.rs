//! The catalog's version, its watch, the change log, and the policy bundle
//! that gateways follow.

use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_contracts::api::{CatalogVersion, Change, Page};
use tessera_contracts::bundle::Bundle;
use utoipa::IntoParams;

use super::error::ApiError;
use super::extract::ApiQuery;
use super::{ApiResult, AppState};
use crate::authz::Caller;

/// The catalog's version: the latest value of its change sequence.
#[utoipa::path(get, path = "/api/v1/version", tag = "changes",
    responses((status = 200, body = CatalogVersion)))]
pub async fn version(State(app): State<AppState>, _caller: Caller) -> ApiResult<Json<CatalogVersion>> {
    Ok(Json(app.catalog.version().await?))
}

/// The longest wait a watch may ask for.
const MAX_WATCH_SECS: u64 = 25;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WatchParams {
    /// Answer as soon as the version is greater than this.
    #[param(minimum = 0)]
    after: i64,
    /// Longest wait in seconds before answering with the unchanged version (at most 25).
    #[param(minimum = 0, maximum = 25)]
    timeout_secs: Option<u64>,
}

/// Long-poll for the next change: returns when the version exceeds `after`.
#[utoipa::path(get, path = "/api/v1/version/watch", tag = "changes", params(WatchParams),
    responses((status = 200, description = "The version, moved past `after` unless the wait timed out", body = CatalogVersion)))]
pub async fn watch(
    State(app): State<AppState>,
    _caller: Caller,
    ApiQuery(params): ApiQuery<WatchParams>,
) -> ApiResult<Json<CatalogVersion>> {
    let requested = params.timeout_secs.unwrap_or(MAX_WATCH_SECS);
    if requested > MAX_WATCH_SECS {
        return Err(ApiError::field(
            "timeout_secs",
            format!("must be at most {MAX_WATCH_SECS}"),
        ));
    }
    let wait = Duration::from_secs(requested).min(app.max_watch);
    Ok(Json(app.catalog.watch(params.after, wait).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangeParams {
    /// Entries after this sequence number (default 0: from the start).
    #[param(minimum = 0)]
    after: Option<i64>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// The append-only change log (platform admins).
#[utoipa::path(get, path = "/api/v1/changes", tag = "changes", params(ChangeParams),
    responses((status = 200, description = "Entries in sequence order; `next_cursor` is the `after` of the next page", body = Page<Change>)))]
pub async fn changes(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ChangeParams>,
) -> ApiResult<Json<Page<Change>>> {
    Ok(Json(
        app.catalog
            .changes(&caller, params.after.unwrap_or(0), params.limit)
            .await?,
    ))
}

/// The policy bundle gateways serve from (platform admins: it holds key hashes).
///
/// Its ETag is the content hash: send it back in `If-None-Match` to get 304 when
/// nothing a gateway enforces has changed, even if the catalog's version moved.
#[utoipa::path(get, path = "/api/v1/bundle", tag = "gateways",
    params(("If-None-Match" = Option<String>, Header, description = "The ETag of the bundle held")),
    responses(
        (status = 200, body = Bundle, headers(("ETag" = String))),
        (status = 304, description = "The held bundle is current")))]
pub async fn bundle(State(app): State<AppState>, caller: Caller, request: Request) -> ApiResult<Response> {
    let bundle = app.catalog.bundle(&caller).await?;
    let etag = format!("\"{}\"", bundle.hash);
    let held = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let etag = HeaderValue::from_str(&etag).map_err(|e| ApiError::Internal(e.into()))?;
    if held {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    Ok(([(header::ETAG, etag)], Json(bundle)).into_response())
}
