//! Contract versions, their documents and verification, and quality runs.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_contracts::api::{
    ContractDocument, ContractVersion, ContractVersionSummary, Page, QualityRun, QualityRunCreate, Verification,
};

use super::extract::{ApiJson, ApiQuery, body_bytes};
use super::{ApiResult, AppState, PageParams};
use crate::authz::Caller;

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
