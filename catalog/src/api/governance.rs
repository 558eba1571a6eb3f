//! Governance endpoints: grants, masks, row filters, access requests, gateway
//! status and query audit.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use tessera_contracts::api::{
    AccessApproval, AccessDenial, AccessRequest, AccessRequestCreate, AccessRequestStatus, AuditBatch, GatewayReport,
    GatewayStatus, Page, UsageRecord,
};
use tessera_contracts::policy::{Grant, GrantSpec, Mask, MaskSpec, RowFilter, RowFilterSpec};
use utoipa::IntoParams;

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery, IfMatch, Tagged};
use super::{ApiResult, AppState, PageParams};
use crate::authz::Caller;
use crate::service::{Paging, Typed};

/// Paging, and the domain whose policies to list (required of domain owners).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PolicyListParams {
    /// Only policies lying in this domain.
    domain: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    cursor: Option<String>,
}

impl PolicyListParams {
    fn paging(&self) -> Paging {
        Paging {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}

macro_rules! dto {
    ($dto:ident, $spec:ty) => {
        impl From<Typed<$spec>> for $dto {
            fn from(t: Typed<$spec>) -> Self {
                $dto {
                    spec: t.spec,
                    revision: t.stored.revision,
                    created_by: t.stored.created_by,
                    created_at: t.stored.created_at,
                    updated_at: t.stored.updated_at,
                }
            }
        }
    };
}
dto!(Grant, GrantSpec);
dto!(Mask, MaskSpec);
dto!(RowFilter, RowFilterSpec);

fn tagged<T, D: From<Typed<T>>>(t: Typed<T>) -> Tagged<D> {
    let revision = t.stored.revision;
    Tagged::ok(revision, D::from(t))
}

fn listing<T, D: From<Typed<T>>>(page: Page<Typed<T>>) -> Page<D> {
    Page {
        items: page.items.into_iter().map(D::from).collect(),
        next_cursor: page.next_cursor,
    }
}

macro_rules! policy_endpoints {
    ($tag:literal, $collection:literal, $item:literal, $dto:ident, $spec:ty,
     $list:ident, $create:ident, $get:ident, $replace:ident, $delete:ident) => {
        #[doc = concat!("Lists ", $tag, " (admins: all; domain owners: pass `domain`).")]
        #[utoipa::path(get, path = $collection, tag = "policies", params(PolicyListParams),
            responses((status = 200, body = Page<$dto>)))]
        pub async fn $list(
            State(app): State<AppState>,
            caller: Caller,
            ApiQuery(p): ApiQuery<PolicyListParams>,
        ) -> ApiResult<Json<Page<$dto>>> {
            let page = app
                .catalog
                .list_policies::<$spec>(&caller, p.domain.as_deref(), &p.paging())
                .await?;
            Ok(Json(listing(page)))
        }

        #[doc = concat!("Creates one of the ", $tag, "; it is checked first, and in force on every gateway with the next bundle.")]
        #[utoipa::path(post, path = $collection, tag = "policies", request_body = $spec,
            responses((status = 201, body = $dto, headers(("ETag" = String)))))]
        pub async fn $create(
            State(app): State<AppState>,
            caller: Caller,
            ApiJson(body): ApiJson<$spec>,
        ) -> ApiResult<(StatusCode, Tagged<$dto>)> {
            let created = app.catalog.create_policy(&caller, body).await?;
            Ok((StatusCode::CREATED, tagged(created)))
        }

        #[doc = concat!("One of the ", $tag, ".")]
        #[utoipa::path(get, path = $item, tag = "policies",
            params(("name" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$")),
            responses((status = 200, body = $dto, headers(("ETag" = String)))))]
        pub async fn $get(
            State(app): State<AppState>,
            caller: Caller,
            Path(name): Path<String>,
        ) -> ApiResult<Tagged<$dto>> {
            Ok(tagged(app.catalog.get_policy::<$spec>(&caller, &name).await?))
        }

        #[doc = concat!("Replaces one of the ", $tag, " (If-Match: its ETag).")]
        #[utoipa::path(put, path = $item, tag = "policies", request_body = $spec,
            params(("name" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$"),
                   ("If-Match" = Option<String>, Header, description = "The ETag the update is based on")),
            responses((status = 200, body = $dto, headers(("ETag" = String)))))]
        pub async fn $replace(
            State(app): State<AppState>,
            caller: Caller,
            Path(name): Path<String>,
            IfMatch(if_match): IfMatch,
            ApiJson(body): ApiJson<$spec>,
        ) -> ApiResult<Tagged<$dto>> {
            Ok(tagged(app.catalog.replace_policy(&caller, &name, body, if_match).await?))
        }

        #[doc = concat!("Deletes one of the ", $tag, ".")]
        #[utoipa::path(delete, path = $item, tag = "policies",
            params(("name" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$"),
                   ("If-Match" = Option<String>, Header, description = "The ETag the deletion is based on")),
            responses((status = 204, description = "Deleted")))]
        pub async fn $delete(
            State(app): State<AppState>,
            caller: Caller,
            Path(name): Path<String>,
            IfMatch(if_match): IfMatch,
        ) -> ApiResult<StatusCode> {
            app.catalog.delete_policy::<$spec>(&caller, &name, if_match).await?;
            Ok(StatusCode::NO_CONTENT)
        }
    };
}

policy_endpoints!(
    "grants",
    "/api/v1/grants",
    "/api/v1/grants/{name}",
    Grant,
    GrantSpec,
    list_grants,
    create_grant,
    get_grant,
    replace_grant,
    delete_grant
);
policy_endpoints!(
    "column masks",
    "/api/v1/masks",
    "/api/v1/masks/{name}",
    Mask,
    MaskSpec,
    list_masks,
    create_mask,
    get_mask,
    replace_mask,
    delete_mask
);
policy_endpoints!(
    "row filters",
    "/api/v1/row-filters",
    "/api/v1/row-filters/{name}",
    RowFilter,
    RowFilterSpec,
    list_row_filters,
    create_row_filter,
    get_row_filter,
    replace_row_filter,
    delete_row_filter
);

/// An access request's id from its path: anything else names no request.
fn request_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::NotFound(format!("access request {id:?} not found")))
}

/// Filters of the access-request listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccessListParams {
    status: Option<AccessRequestStatus>,
    domain: Option<String>,
    product: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Asks a product's owners for access to its data, for a purpose.
#[utoipa::path(post, path = "/api/v1/domains/{domain}/products/{product}/access-requests", tag = "access",
    request_body = AccessRequestCreate,
    params(("domain" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "customers"),
           ("product" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "customer")),
    responses((status = 201, body = AccessRequest)))]
pub async fn request_access(
    State(app): State<AppState>,
    caller: Caller,
    Path((domain, product)): Path<(String, String)>,
    ApiJson(body): ApiJson<AccessRequestCreate>,
) -> ApiResult<(StatusCode, Json<AccessRequest>)> {
    let created = app.catalog.request_access(&caller, &domain, &product, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Access requests: the caller's own, and those for products it owns (admins: all), newest first.
#[utoipa::path(get, path = "/api/v1/access-requests", tag = "access", params(AccessListParams),
    responses((status = 200, body = Page<AccessRequest>)))]
pub async fn list_access_requests(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<AccessListParams>,
) -> ApiResult<Json<Page<AccessRequest>>> {
    let product = match (p.domain, p.product) {
        (Some(d), Some(n)) => Some((d, n)),
        (None, None) => None,
        _ => return Err(ApiError::BadRequest("give both domain and product, or neither".into())),
    };
    let paging = Paging {
        limit: p.limit,
        cursor: p.cursor,
    };
    Ok(Json(
        app.catalog
            .list_access_requests(&caller, p.status, product, &paging)
            .await?,
    ))
}

/// One access request (its requester, the product's owners and admins).
#[utoipa::path(get, path = "/api/v1/access-requests/{id}", tag = "access",
    params(("id" = String, Path, pattern = "^[0-9]{1,18}$")), responses((status = 200, body = AccessRequest)))]
pub async fn get_access_request(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AccessRequest>> {
    Ok(Json(app.catalog.get_access_request(&caller, request_id(&id)?).await?.0))
}

/// Approves a pending request: a grant to the requester, for the request's purpose, until `expires_at`.
#[utoipa::path(post, path = "/api/v1/access-requests/{id}/approve", tag = "access",
    request_body = AccessApproval, params(("id" = String, Path, pattern = "^[0-9]{1,18}$")),
    responses((status = 200, body = AccessRequest)))]
pub async fn approve_access(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AccessApproval>,
) -> ApiResult<Json<AccessRequest>> {
    Ok(Json(app.catalog.approve_access(&caller, request_id(&id)?, body).await?))
}

/// Denies a pending request.
#[utoipa::path(post, path = "/api/v1/access-requests/{id}/deny", tag = "access",
    request_body = AccessDenial, params(("id" = String, Path, pattern = "^[0-9]{1,18}$")),
    responses((status = 200, body = AccessRequest)))]
pub async fn deny_access(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AccessDenial>,
) -> ApiResult<Json<AccessRequest>> {
    Ok(Json(app.catalog.deny_access(&caller, request_id(&id)?, body).await?))
}

/// Every gateway that reported, with the bundle it serves: SYNCED, STALE or NACKED.
#[utoipa::path(get, path = "/api/v1/gateways", tag = "gateways",
    responses((status = 200, body = Vec<GatewayStatus>)))]
pub async fn list_gateways(State(app): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<GatewayStatus>>> {
    Ok(Json(app.catalog.list_gateways(&caller).await?))
}

/// A gateway's report (ACK or NACK) of the bundle it serves.
#[utoipa::path(put, path = "/api/v1/gateways/{name}", tag = "gateways", request_body = GatewayReport,
    params(("name" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$")),
    responses((status = 204, description = "Recorded")))]
pub async fn report_gateway(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<GatewayReport>,
) -> ApiResult<StatusCode> {
    app.catalog.report_gateway(&caller, &name, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotates the mesh's key for `hash` masks (platform admins).
///
/// `hash` masks are keyed (HMAC-SHA-256 with this per-mesh secret, which only
/// gateways get, in the bundle), so that no dictionary of guessed values can
/// recompute them. Rotating it moves the catalog's version and is in force on
/// every gateway with the next bundle: from then on every masked value
/// changes (results saved earlier no longer match new ones), while within one
/// bundle version equal values still give equal masked values, so joins and
/// grouping on masked columns still match. The answer never holds the key.
#[utoipa::path(post, path = "/api/v1/mask-key/rotate", tag = "policies",
    responses((status = 204, description = "Rotated: the next bundle carries the new key")))]
pub async fn rotate_mask_key(State(app): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    app.catalog.rotate_mask_key(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query audit records from a gateway, in a batch.
#[utoipa::path(post, path = "/api/v1/audit", tag = "gateways", request_body = AuditBatch,
    responses((status = 204, description = "Stored")))]
pub async fn add_audit(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<AuditBatch>,
) -> ApiResult<StatusCode> {
    app.catalog.add_audit(&caller, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A product's usage, from the gateways' audit: newest first (owners and admins).
#[utoipa::path(get, path = "/api/v1/domains/{domain}/products/{product}/usage", tag = "access",
    params(("domain" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "customers"),
           ("product" = String, Path, pattern = "^[a-z][a-z0-9_]{0,62}$", example = "customer"), PageParams),
    responses((status = 200, body = Page<UsageRecord>)))]
pub async fn product_usage(
    State(app): State<AppState>,
    caller: Caller,
    Path((domain, product)): Path<(String, String)>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<UsageRecord>>> {
    Ok(Json(app.catalog.usage(&caller, &domain, &product, &p.paging()).await?))
}
