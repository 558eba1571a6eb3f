//! Teams and their members.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use tessera_contracts::api::{Page, Team, TeamCreate, TeamUpdate};

use super::extract::{ApiJson, ApiQuery, IfMatch, Tagged};
use super::{ApiResult, AppState, PageParams};
use crate::authz::Caller;

#[utoipa::path(get, path = "/api/v1/teams", tag = "teams", params(PageParams),
    responses((status = 200, body = Page<Team>)))]
pub async fn list_teams(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<Team>>> {
    Ok(Json(app.catalog.list_teams(&caller, &p.paging()).await?))
}

#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", request_body = TeamCreate,
    responses((status = 201, body = Team, headers(("ETag" = String), ("Location" = String)))))]
pub async fn create_team(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<TeamCreate>,
) -> ApiResult<Tagged<Team>> {
    let t = app.catalog.create_team(&caller, body).await?;
    Ok(Tagged::created(t.revision, format!("/api/v1/teams/{}", t.name), t))
}

#[utoipa::path(get, path = "/api/v1/teams/{team}", tag = "teams",
    params(("team" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales_team")),
    responses((status = 200, body = Team, headers(("ETag" = String)))))]
pub async fn get_team(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Tagged<Team>> {
    let t = app.catalog.get_team(&caller, &name).await?;
    Ok(Tagged::ok(t.revision, t))
}

#[utoipa::path(patch, path = "/api/v1/teams/{team}", tag = "teams", request_body = TeamUpdate,
    params(("team" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales_team"),
           ("If-Match" = Option<String>, Header, description = "The ETag the update is based on")),
    responses((status = 200, body = Team, headers(("ETag" = String)))))]
pub async fn update_team(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    IfMatch(if_match): IfMatch,
    ApiJson(body): ApiJson<TeamUpdate>,
) -> ApiResult<Tagged<Team>> {
    let t = app.catalog.update_team(&caller, &name, if_match, body).await?;
    Ok(Tagged::ok(t.revision, t))
}

#[utoipa::path(delete, path = "/api/v1/teams/{team}", tag = "teams",
    params(("team" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales_team"),
           ("If-Match" = Option<String>, Header, description = "The ETag the deletion is based on")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_team(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    IfMatch(if_match): IfMatch,
) -> ApiResult<StatusCode> {
    app.catalog.delete_team(&caller, &name, if_match).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds a member (idempotent).
#[utoipa::path(put, path = "/api/v1/teams/{team}/members/{principal}", tag = "teams",
    params(("team" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales_team"),
           ("principal" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "olga")),
    responses((status = 200, body = Team, headers(("ETag" = String)))))]
pub async fn add_team_member(
    State(app): State<AppState>,
    caller: Caller,
    Path((team, principal)): Path<(String, String)>,
) -> ApiResult<Tagged<Team>> {
    let t = app.catalog.add_team_member(&caller, &team, &principal).await?;
    Ok(Tagged::ok(t.revision, t))
}

#[utoipa::path(delete, path = "/api/v1/teams/{team}/members/{principal}", tag = "teams",
    params(("team" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales_team"),
           ("principal" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "olga")),
    responses((status = 200, body = Team, headers(("ETag" = String)))))]
pub async fn remove_team_member(
    State(app): State<AppState>,
    caller: Caller,
    Path((team, principal)): Path<(String, String)>,
) -> ApiResult<Tagged<Team>> {
    let t = app.catalog.remove_team_member(&caller, &team, &principal).await?;
    Ok(Tagged::ok(t.revision, t))
}
