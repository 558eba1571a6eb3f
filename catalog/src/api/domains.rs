//! Business domains.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use tessera_contracts::api::{Domain, DomainCreate, DomainUpdate, Page};

use super::extract::{ApiJson, ApiQuery, IfMatch, Tagged};
use super::{ApiResult, AppState, PageParams};
use crate::authz::Caller;

#[utoipa::path(get, path = "/api/v1/domains", tag = "domains", params(PageParams),
    responses((status = 200, body = Page<Domain>)))]
pub async fn list_domains(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<Domain>>> {
    Ok(Json(app.catalog.list_domains(&caller, &p.paging()).await?))
}

#[utoipa::path(post, path = "/api/v1/domains", tag = "domains", request_body = DomainCreate,
    responses((status = 201, body = Domain, headers(("ETag" = String), ("Location" = String)))))]
pub async fn create_domain(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<DomainCreate>,
) -> ApiResult<Tagged<Domain>> {
    let d = app.catalog.create_domain(&caller, body).await?;
    Ok(Tagged::created(d.revision, format!("/api/v1/domains/{}", d.name), d))
}

#[utoipa::path(get, path = "/api/v1/domains/{domain}", tag = "domains",
    params(("domain" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales")),
    responses((status = 200, body = Domain, headers(("ETag" = String)))))]
pub async fn get_domain(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Tagged<Domain>> {
    let d = app.catalog.get_domain(&caller, &name).await?;
    Ok(Tagged::ok(d.revision, d))
}

#[utoipa::path(patch, path = "/api/v1/domains/{domain}", tag = "domains", request_body = DomainUpdate,
    params(("domain" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales"),
           ("If-Match" = Option<String>, Header, description = "The ETag the update is based on")),
    responses((status = 200, body = Domain, headers(("ETag" = String)))))]
pub async fn update_domain(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    IfMatch(if_match): IfMatch,
    ApiJson(body): ApiJson<DomainUpdate>,
) -> ApiResult<Tagged<Domain>> {
    let d = app.catalog.update_domain(&caller, &name, if_match, body).await?;
    Ok(Tagged::ok(d.revision, d))
}

#[utoipa::path(delete, path = "/api/v1/domains/{domain}", tag = "domains",
    params(("domain" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales"),
           ("If-Match" = Option<String>, Header, description = "The ETag the deletion is based on")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_domain(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    IfMatch(if_match): IfMatch,
) -> ApiResult<StatusCode> {
    app.catalog.delete_domain(&caller, &name, if_match).await?;
    Ok(StatusCode::NO_CONTENT)
}
