//! Data products, their lifecycle, and lineage.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use tessera_contracts::api::{Lineage, Page, Product, ProductCreate, ProductStatus, ProductUpdate, Visibility};
use utoipa::IntoParams;

use super::extract::{ApiJson, ApiQuery, IfMatch, Tagged};
use super::{ApiResult, AppState, PageParams};
use crate::authz::Caller;
use crate::service::Paging;

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
