//! REST handlers: each translates HTTP into one call of the service and back.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_contracts::api::{
    ApiKey, ApiKeyCreate, ApiKeyCreated, CatalogVersion, Change, ContractDocument, ContractVersion,
    ContractVersionSummary, Domain, DomainCreate, DomainUpdate, Lineage, Page, Principal, PrincipalCreate,
    PrincipalUpdate, Product, ProductCreate, ProductStatus, ProductUpdate, QualityRun, QualityRunCreate, Readiness,
    Team, TeamCreate, TeamUpdate, Verification, Visibility, WhoAmI,
};
use tessera_contracts::bundle::Bundle;
use utoipa::IntoParams;

use super::AppState;
use super::extract::{ApiJson, ApiQuery, IfMatch, Tagged, body_bytes};
use crate::authz::Caller;
use crate::error::ApiError;
use crate::service::Paging;

type ApiResult<T> = Result<T, ApiError>;

/// Paging of a listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl PageParams {
    pub(super) fn paging(&self) -> Paging {
        Paging {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}

// ---------------------------------------------------------------- system

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
    let backend = app.catalog.store.backend();
    let (status, check) = match app.catalog.store.ping().await {
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
    (status, Json(body)).into_response()
}

/// Prometheus metrics, in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Metrics", content_type = "text/plain", body = String)))]
pub async fn metrics(State(app): State<AppState>, _caller: Caller) -> Response {
    if let Ok(v) = app.catalog.store.version().await {
        app.metrics.catalog_version.set(v);
    }
    let mut response = app.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

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

// ---------------------------------------------------------------- gateways

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

// ---------------------------------------------------------------- principals

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

// ---------------------------------------------------------------- teams

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

// ---------------------------------------------------------------- domains

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

// ---------------------------------------------------------------- products

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductParams {
    #[param(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    domain: Option<String>,
    /// Products carrying this tag.
    tag: Option<String>,
    status: Option<ProductStatus>,
    /// Products of this owning team.
    #[param(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    owner: Option<String>,
    visibility: Option<Visibility>,
    /// Case-insensitive search in name, title, description and tags.
    q: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Products the caller may see, across domains, filtered and searched.
#[utoipa::path(get, path = "/api/v1/products", tag = "products", params(ProductParams),
    responses((status = 200, body = Page<Product>)))]
pub async fn list_products(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<ProductParams>,
) -> ApiResult<Json<Page<Product>>> {
    let paging = Paging {
        limit: p.limit,
        cursor: p.cursor,
    };
    Ok(Json(
        app.catalog
            .list_products(&caller, p.domain, p.tag, p.status, p.owner, p.visibility, p.q, &paging)
            .await?,
    ))
}

/// Products of one domain.
#[utoipa::path(get, path = "/api/v1/domains/{domain}/products", tag = "products",
    params(("domain" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales"), PageParams),
    responses((status = 200, body = Page<Product>)))]
pub async fn list_domain_products(
    State(app): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<Product>>> {
    app.catalog.get_domain(&caller, &domain).await?;
    Ok(Json(
        app.catalog
            .list_products(&caller, Some(domain), None, None, None, None, None, &p.paging())
            .await?,
    ))
}

/// Registers a product (as `draft`) in a domain the caller owns.
#[utoipa::path(post, path = "/api/v1/domains/{domain}/products", tag = "products", request_body = ProductCreate,
    params(("domain" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales")),
    responses((status = 201, body = Product, headers(("ETag" = String), ("Location" = String)))))]
pub async fn create_product(
    State(app): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    ApiJson(body): ApiJson<ProductCreate>,
) -> ApiResult<Tagged<Product>> {
    let p = app.catalog.create_product(&caller, &domain, body).await?;
    let location = format!("/api/v1/domains/{}/products/{}", p.domain, p.name);
    Ok(Tagged::created(p.revision, location, p))
}

#[utoipa::path(get, path = "/api/v1/domains/{domain}/products/{product}", tag = "products",
    params(("domain" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales"),
           ("product" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "orders")),
    responses((status = 200, body = Product, headers(("ETag" = String)))))]
pub async fn get_product(
    State(app): State<AppState>,
    caller: Caller,
    Path((domain, name)): Path<(String, String)>,
) -> ApiResult<Tagged<Product>> {
    let p = app.catalog.get_product(&caller, &domain, &name).await?;
    Ok(Tagged::ok(p.revision, p))
}

/// Updates a product; a change of `status` is a lifecycle transition.
#[utoipa::path(patch, path = "/api/v1/domains/{domain}/products/{product}", tag = "products",
    request_body = ProductUpdate,
    params(("domain" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales"),
           ("product" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "orders"),
           ("If-Match" = Option<String>, Header, description = "The ETag the update is based on")),
    responses((status = 200, body = Product, headers(("ETag" = String)))))]
pub async fn update_product(
    State(app): State<AppState>,
    caller: Caller,
    Path((domain, name)): Path<(String, String)>,
    IfMatch(if_match): IfMatch,
    ApiJson(body): ApiJson<ProductUpdate>,
) -> ApiResult<Tagged<Product>> {
    let p = app
        .catalog
        .update_product(&caller, &domain, &name, if_match, body)
        .await?;
    Ok(Tagged::ok(p.revision, p))
}

/// Deletes a draft or retired product that no other product reads.
#[utoipa::path(delete, path = "/api/v1/domains/{domain}/products/{product}", tag = "products",
    params(("domain" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales"),
           ("product" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "orders"),
           ("If-Match" = Option<String>, Header, description = "The ETag the deletion is based on")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_product(
    State(app): State<AppState>,
    caller: Caller,
    Path((domain, name)): Path<(String, String)>,
    IfMatch(if_match): IfMatch,
) -> ApiResult<StatusCode> {
    app.catalog.delete_product(&caller, &domain, &name, if_match).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A product's lineage: everything upstream and downstream of it.
#[utoipa::path(get, path = "/api/v1/domains/{domain}/products/{product}/lineage", tag = "lineage",
    params(("domain" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales"),
           ("product" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "orders")),
    responses((status = 200, body = Lineage)))]
pub async fn product_lineage(
    State(app): State<AppState>,
    caller: Caller,
    Path((domain, name)): Path<(String, String)>,
) -> ApiResult<Json<Lineage>> {
    Ok(Json(app.catalog.lineage(&caller, Some((&domain, &name))).await?))
}

/// The lineage graph of every product the caller may see.
#[utoipa::path(get, path = "/api/v1/lineage", tag = "lineage", responses((status = 200, body = Lineage)))]
pub async fn lineage(State(app): State<AppState>, caller: Caller) -> ApiResult<Json<Lineage>> {
    Ok(Json(app.catalog.lineage(&caller, None).await?))
}

// ---------------------------------------------------------------- contracts

#[utoipa::path(get, path = "/api/v1/domains/{domain}/products/{product}/contracts", tag = "contracts",
    params(("domain" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales"),
           ("product" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "orders"), PageParams),
    responses((status = 200, description = "Versions in semantic-version order", body = Page<ContractVersionSummary>)))]
pub async fn list_contracts(
    State(app): State<AppState>,
    caller: Caller,
    Path((domain, product)): Path<(String, String)>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<ContractVersionSummary>>> {
    Ok(Json(
        app.catalog
            .list_contracts(&caller, &domain, &product, &p.paging())
            .await?,
    ))
}

/// Registers a new, immutable contract version: the document (ODCS v3, YAML or
/// JSON) is stored exactly as sent; its `version` must be a semantic version
/// above every earlier one.
#[utoipa::path(post, path = "/api/v1/domains/{domain}/products/{product}/contracts", tag = "contracts",
    request_body(content(
        (ContractDocument = "application/yaml"),
        (ContractDocument = "application/json")),
        description = "The contract document"),
    params(("domain" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales"),
           ("product" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "orders")),
    responses((status = 201, body = ContractVersion, headers(("Location" = String)))))]
pub async fn add_contract(
    State(app): State<AppState>,
    caller: Caller,
    Path((domain, product)): Path<(String, String)>,
    request: Request,
) -> ApiResult<Response> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = body_bytes(request, &()).await?;
    let created = app
        .catalog
        .add_contract(&caller, &domain, &product, content_type.as_deref(), &body)
        .await?;
    let location = format!(
        "/api/v1/domains/{domain}/products/{product}/contracts/{}",
        created.version
    );
    let mut response = (StatusCode::CREATED, Json(created)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

#[utoipa::path(get, path = "/api/v1/domains/{domain}/products/{product}/contracts/{version}", tag = "contracts",
    params(("domain" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales"),
           ("product" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "orders"),
           ("version" = String, Path, description = "A semantic version", example = "1.0.0")),
    responses((status = 200, body = ContractVersion)))]
pub async fn get_contract(
    State(app): State<AppState>,
    caller: Caller,
    Path((domain, product, version)): Path<(String, String, String)>,
) -> ApiResult<Json<ContractVersion>> {
    Ok(Json(
        app.catalog.get_contract(&caller, &domain, &product, &version).await?,
    ))
}

/// The contract document exactly as submitted, in its own media type.
#[utoipa::path(get, path = "/api/v1/domains/{domain}/products/{product}/contracts/{version}/document",
    tag = "contracts",
    params(("domain" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales"),
           ("product" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "orders"),
           ("version" = String, Path, description = "A semantic version", example = "1.0.0")),
    responses((status = 200, description = "The document", content(
        (ContractDocument = "application/yaml"),
        (ContractDocument = "application/json")))))]
pub async fn get_contract_document(
    State(app): State<AppState>,
    caller: Caller,
    Path((domain, product, version)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let contract = app.catalog.get_contract(&caller, &domain, &product, &version).await?;
    let mut response = contract.document.into_response();
    if let Ok(v) = HeaderValue::from_str(&contract.media_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    Ok(response)
}

/// Checks a contract version against the product's Delta table (of the
/// version's major output port), naming every mismatch.
#[utoipa::path(post, path = "/api/v1/domains/{domain}/products/{product}/contracts/{version}/verify",
    tag = "contracts",
    params(("domain" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales"),
           ("product" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "orders"),
           ("version" = String, Path, description = "A semantic version", example = "1.0.0")),
    responses((status = 200, description = "The comparison; empty `mismatches` when the table matches", body = Verification)))]
pub async fn verify_contract(
    State(app): State<AppState>,
    caller: Caller,
    Path((domain, product, version)): Path<(String, String, String)>,
) -> ApiResult<Json<Verification>> {
    Ok(Json(
        app.catalog
            .verify_contract(&caller, &domain, &product, &version)
            .await?,
    ))
}

/// Quality runs of a product, newest first.
#[utoipa::path(get, path = "/api/v1/domains/{domain}/products/{product}/quality", tag = "quality",
    params(("domain" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales"),
           ("product" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "orders"), PageParams),
    responses((status = 200, body = Page<QualityRun>)))]
pub async fn list_quality_runs(
    State(app): State<AppState>,
    caller: Caller,
    Path((domain, product)): Path<(String, String)>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<QualityRun>>> {
    Ok(Json(
        app.catalog
            .list_quality_runs(&caller, &domain, &product, &p.paging())
            .await?,
    ))
}

/// Reports a quality run measured in the data plane (the CLI or a gateway);
/// the product's health follows from it.
#[utoipa::path(post, path = "/api/v1/domains/{domain}/products/{product}/quality", tag = "quality",
    request_body = QualityRunCreate,
    params(("domain" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "sales"),
           ("product" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "orders")),
    responses((status = 201, body = QualityRun)))]
pub async fn add_quality_run(
    State(app): State<AppState>,
    caller: Caller,
    Path((domain, product)): Path<(String, String)>,
    ApiJson(body): ApiJson<QualityRunCreate>,
) -> ApiResult<(StatusCode, Json<QualityRun>)> {
    let run = app.catalog.add_quality_run(&caller, &domain, &product, body).await?;
    Ok((StatusCode::CREATED, Json(run)))
}
