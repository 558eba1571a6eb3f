//! Principals and their API keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use tessera_contracts::api::{
    ApiKey, ApiKeyCreate, ApiKeyCreated, Page, Principal, PrincipalCreate, PrincipalUpdate, WhoAmI,
};

use super::extract::{ApiJson, ApiQuery, IfMatch, Tagged};
use super::{ApiResult, AppState, PageParams};
use crate::authz::Caller;

/// The OpenID Connect issuers the portal offers sign-in with (authorization
/// code with PKCE). Public: the sign-in page reads it before anyone is signed in.
#[utoipa::path(get, path = "/api/v1/identity/issuers", tag = "principals", security(()),
    responses((status = 200, body = Vec<tessera_contracts::api::SignInIssuer>)))]
pub async fn sign_in_issuers(State(app): State<AppState>) -> Json<Vec<tessera_contracts::api::SignInIssuer>> {
    Json(app.catalog.identity().sign_in())
}

/// The caller: its principal, teams and owned domains.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "principals", responses((status = 200, body = WhoAmI)))]
pub async fn whoami(State(app): State<AppState>, caller: Caller) -> ApiResult<Json<WhoAmI>> {
    Ok(Json(app.catalog.whoami(&caller).await?))
}

#[utoipa::path(get, path = "/api/v1/principals", tag = "principals", params(PageParams),
    responses((status = 200, body = Page<Principal>)))]
pub async fn list_principals(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<Principal>>> {
    Ok(Json(app.catalog.list_principals(&caller, &p.paging()).await?))
}

#[utoipa::path(post, path = "/api/v1/principals", tag = "principals", request_body = PrincipalCreate,
    responses((status = 201, body = Principal, headers(("ETag" = String), ("Location" = String)))))]
pub async fn create_principal(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PrincipalCreate>,
) -> ApiResult<Tagged<Principal>> {
    let p = app.catalog.create_principal(&caller, body).await?;
    Ok(Tagged::created(p.revision, format!("/api/v1/principals/{}", p.name), p))
}

#[utoipa::path(get, path = "/api/v1/principals/{principal}", tag = "principals",
    params(("principal" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "olga")),
    responses((status = 200, body = Principal, headers(("ETag" = String)))))]
pub async fn get_principal(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Tagged<Principal>> {
    let p = app.catalog.get_principal(&caller, &name).await?;
    Ok(Tagged::ok(p.revision, p))
}

#[utoipa::path(patch, path = "/api/v1/principals/{principal}", tag = "principals", request_body = PrincipalUpdate,
    params(("principal" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "olga"),
           ("If-Match" = Option<String>, Header, description = "The ETag the update is based on")),
    responses((status = 200, body = Principal, headers(("ETag" = String)))))]
pub async fn update_principal(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    IfMatch(if_match): IfMatch,
    ApiJson(body): ApiJson<PrincipalUpdate>,
) -> ApiResult<Tagged<Principal>> {
    let p = app.catalog.update_principal(&caller, &name, if_match, body).await?;
    Ok(Tagged::ok(p.revision, p))
}

#[utoipa::path(delete, path = "/api/v1/principals/{principal}", tag = "principals",
    params(("principal" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "olga"),
           ("If-Match" = Option<String>, Header, description = "The ETag the deletion is based on")),
    responses((status = 204, description = "Deleted, with its keys and memberships")))]
pub async fn delete_principal(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    IfMatch(if_match): IfMatch,
) -> ApiResult<StatusCode> {
    app.catalog.delete_principal(&caller, &name, if_match).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/principals/{principal}/keys", tag = "principals",
    params(("principal" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "olga"), PageParams),
    responses((status = 200, body = Page<ApiKey>)))]
pub async fn list_api_keys(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<ApiKey>>> {
    Ok(Json(app.catalog.list_api_keys(&caller, &name, &p.paging()).await?))
}

/// Issues a key; its secret is in this response only.
#[utoipa::path(post, path = "/api/v1/principals/{principal}/keys", tag = "principals", request_body = ApiKeyCreate,
    params(("principal" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "olga")),
    responses((status = 201, body = ApiKeyCreated)))]
pub async fn create_api_key(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ApiKeyCreate>,
) -> ApiResult<(StatusCode, Json<ApiKeyCreated>)> {
    let created = app.catalog.create_api_key(&caller, &name, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revokes a key; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/principals/{principal}/keys/{key_id}", tag = "principals",
    params(("principal" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "olga"), ("key_id" = String, Path)),
    responses((status = 200, description = "The revoked key", body = ApiKey)))]
pub async fn revoke_api_key(
    State(app): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<Json<ApiKey>> {
    Ok(Json(app.catalog.revoke_api_key(&caller, &name, &id).await?))
}
