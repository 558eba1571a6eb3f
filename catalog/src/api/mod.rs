//! The REST API: routes, middleware and the OpenAPI document. Each resource's
//! handlers are in their own module; each translates HTTP into one call of the
//! service and back.

mod changes;
mod contracts;
mod domains;
pub mod error;
mod extract;
mod governance;
mod principals;
mod products;
mod system;
mod teams;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as OpenApiDoc, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoParams, Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use tessera_contracts::credentials::Credential;

use self::error::{ApiError, PROBLEM_JSON};
use crate::metrics::Metrics;
use crate::service::{Catalog, Paging};

pub use extract::{ApiJson, IfMatch};

type ApiResult<T> = Result<T, ApiError>;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub catalog: Catalog,
    pub metrics: Arc<Metrics>,
    /// Failed-authentication throttling per source address.
    pub throttle: Arc<tessera_http::Throttle>,
    /// Mutual TLS is configured: a gateway's principal must connect with a
    /// verified client certificate.
    pub gateways_need_client_certificates: bool,
    /// Longest a watch may wait; below the request timeout.
    pub max_watch: Duration,
}

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
    fn paging(&self) -> Paging {
        Paging {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

/// Routes served beside the catalog's on the same listener (the gateway's query
/// endpoint in `tessera serve`), with their part of the OpenAPI document. They
/// bring their own limits: the catalog's request timeout and body limit do not
/// apply to them.
pub struct Extension {
    pub router: Router,
    pub openapi: OpenApiDoc,
    /// What answers GET and HEAD requests outside `/api/` that no route takes
    /// (the portal); the API's own unknown paths stay problem+json 404s.
    pub web: Option<Router>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera catalog",
        description = "The control plane of a Tessera data mesh: domains, teams, principals, API keys, \
data products, their contracts and lineage, and the change sequence gateways watch. \
Errors are RFC 9457 problem details (`application/problem+json`). Updates take `If-Match` \
with the resource's ETag and answer 412 when it has moved on.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    tags(
        (name = "system", description = "Health, readiness and metrics"),
        (name = "changes", description = "The catalog's version, its watch and the change log"),
        (name = "principals", description = "Users, service accounts and their API keys"),
        (name = "teams", description = "Teams and their members"),
        (name = "domains", description = "Business domains and their owning teams"),
        (name = "products", description = "Data products and their lifecycle"),
        (name = "lineage", description = "Product-level lineage through input ports"),
        (name = "contracts", description = "Immutable contract versions of a product (ODCS v3.1.0 / v3.2.0), \
their compatibility gate and their verification against the Delta table"),
        (name = "quality", description = "Quality runs measured in the data plane, and the health they give"),
        (name = "gateways", description = "The policy bundle gateways serve from, their reports and their query audit"),
        (name = "policies", description = "Grants, column masks and row filters, enforced by every gateway on every query"),
        (name = "access", description = "Access requests to products' owners, and products' usage"),
    ),
    modifiers(&Conventions)
)]
struct ApiDoc;

/// Adds what every operation shares: bearer authentication and the problem
/// responses, so that no handler can forget to document them.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tsk_<id>_<secret>")
                    .description(Some("An API key of the catalog"))
                    .build(),
            ),
        );
        components.responses.insert(
            "Problem".into(),
            RefOr::T(
                ResponseBuilder::new()
                    .description("A problem (RFC 9457)")
                    .content(
                        PROBLEM_JSON,
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Problem")))
                            .build(),
                    )
                    .build(),
            ),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.put, true),
                (&mut item.patch, true),
                (&mut item.delete, true),
            ];
            for (operation, mutates) in operations {
                let Some(op) = operation.as_mut() else { continue };
                let public = op.security.as_ref().is_some_and(|s| {
                    serde_json::to_value(s).is_ok_and(|v| {
                        v.as_array()
                            .is_some_and(|a| a.iter().all(|r| r == &serde_json::json!({})))
                    })
                });
                let mut statuses = vec!["400", "500", "503"];
                if !public {
                    // 429: the caller's address failed to authenticate too often.
                    statuses.extend(["401", "403", "404", "422", "429"]);
                }
                if mutates {
                    statuses.extend(["409", "412", "413", "415"]);
                }
                for status in statuses {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name("Problem")));
                }
            }
        }
        add_links(openapi);
        let components = openapi.components.get_or_insert_with(Default::default);
        let schemas = &mut components.schemas;
        schemas.entry("Problem".into()).or_insert_with(|| {
            use utoipa::PartialSchema;
            tessera_contracts::api::Problem::schema()
        });
        schemas.entry("FieldError".into()).or_insert_with(|| {
            use utoipa::PartialSchema;
            tessera_contracts::api::FieldError::schema()
        });
    }
}

/// OpenAPI links from each creation to what can be done with the created
/// resource: they document the API's flow, and let stateful clients (and
/// schemathesis) follow it.
/// Parameters of a link: name and runtime expression.
type LinkParams = &'static [(&'static str, &'static str)];
/// Per operation id and response status: the target operations and their parameters.
type LinkTable = &'static [(&'static str, &'static str, &'static [(&'static str, LinkParams)])];

const LINKS: LinkTable = {
    const DOMAIN: &[(&str, &str)] = &[("domain", "$response.body#/name")];
    const PRODUCT: &[(&str, &str)] = &[
        ("domain", "$response.body#/domain"),
        ("product", "$response.body#/name"),
    ];
    const CONTRACT: &[(&str, &str)] = &[
        ("domain", "$response.body#/domain"),
        ("product", "$response.body#/product"),
        ("version", "$response.body#/version"),
    ];
    const TEAM: &[(&str, &str)] = &[("team", "$response.body#/name")];
    const PRINCIPAL: &[(&str, &str)] = &[("principal", "$response.body#/name")];
    const KEY: &[(&str, &str)] = &[
        ("principal", "$response.body#/api_key/principal"),
        ("key_id", "$response.body#/api_key/id"),
    ];
    const MEMBER: &[(&str, &str)] = &[("team", "$request.path.team"), ("principal", "$request.path.principal")];
    &[
        (
            "create_domain",
            "201",
            &[
                ("get_domain", DOMAIN),
                ("update_domain", DOMAIN),
                ("delete_domain", DOMAIN),
                ("list_domain_products", DOMAIN),
                ("create_product", DOMAIN),
            ],
        ),
        (
            "create_product",
            "201",
            &[
                ("get_product", PRODUCT),
                ("update_product", PRODUCT),
                ("delete_product", PRODUCT),
                ("product_lineage", PRODUCT),
                ("list_contracts", PRODUCT),
                ("add_contract", PRODUCT),
            ],
        ),
        (
            "add_contract",
            "201",
            &[("get_contract", CONTRACT), ("get_contract_document", CONTRACT)],
        ),
        (
            "create_team",
            "201",
            &[("get_team", TEAM), ("update_team", TEAM), ("delete_team", TEAM)],
        ),
        ("add_team_member", "200", &[("remove_team_member", MEMBER)]),
        (
            "create_principal",
            "201",
            &[
                ("get_principal", PRINCIPAL),
                ("update_principal", PRINCIPAL),
                ("delete_principal", PRINCIPAL),
                ("list_api_keys", PRINCIPAL),
                ("create_api_key", PRINCIPAL),
            ],
        ),
        ("create_api_key", "201", &[("revoke_api_key", KEY)]),
    ]
};

fn add_links(openapi: &mut OpenApiDoc) {
    use utoipa::openapi::link::LinkBuilder;
    for item in openapi.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            let Some((_, status, targets)) = LINKS.iter().find(|(id, _, _)| op.operation_id.as_deref() == Some(*id))
            else {
                continue;
            };
            let Some(RefOr::T(response)) = op.responses.responses.get_mut(*status) else {
                continue;
            };
            for (target, parameters) in *targets {
                // utoipa 5.5 serializes `operation_id` in snake case, which no
                // OpenAPI client understands: set the field under its real name.
                let operation_id = utoipa::openapi::extensions::Extensions::from_iter([("operationId", *target)]);
                let link = parameters
                    .iter()
                    .fold(LinkBuilder::new().extensions(Some(operation_id)), |b, (name, value)| {
                        b.parameter(*name, *value)
                    });
                response.links.insert((*target).to_string(), RefOr::T(link.build()));
            }
        }
    }
}

fn routers() -> (OpenApiRouter<AppState>, OpenApiRouter<AppState>) {
    // The order of the routes is the order of the OpenAPI document's paths.
    let public = OpenApiRouter::new()
        .routes(routes!(system::health))
        .routes(routes!(system::ready))
        .routes(routes!(principals::sign_in_issuers));
    let private = OpenApiRouter::new()
        .routes(routes!(system::metrics))
        .routes(routes!(changes::version))
        .routes(routes!(changes::watch))
        .routes(routes!(changes::changes))
        .routes(routes!(changes::bundle))
        .routes(routes!(principals::whoami))
        .routes(routes!(principals::list_principals, principals::create_principal))
        .routes(routes!(
            principals::get_principal,
            principals::update_principal,
            principals::delete_principal
        ))
        .routes(routes!(principals::list_api_keys, principals::create_api_key))
        .routes(routes!(principals::revoke_api_key))
        .routes(routes!(teams::list_teams, teams::create_team))
        .routes(routes!(teams::get_team, teams::update_team, teams::delete_team))
        .routes(routes!(teams::add_team_member, teams::remove_team_member))
        .routes(routes!(domains::list_domains, domains::create_domain))
        .routes(routes!(
            domains::get_domain,
            domains::update_domain,
            domains::delete_domain
        ))
        .routes(routes!(products::list_products))
        .routes(routes!(products::list_domain_products, products::create_product))
        .routes(routes!(
            products::get_product,
            products::update_product,
            products::delete_product
        ))
        .routes(routes!(products::product_lineage))
        .routes(routes!(products::lineage))
        .routes(routes!(contracts::list_contracts, contracts::add_contract))
        .routes(routes!(contracts::get_contract))
        .routes(routes!(contracts::get_contract_document))
        .routes(routes!(contracts::verify_contract))
        .routes(routes!(contracts::list_quality_runs, contracts::add_quality_run))
        .routes(routes!(governance::list_grants, governance::create_grant))
        .routes(routes!(
            governance::get_grant,
            governance::replace_grant,
            governance::delete_grant
        ))
        .routes(routes!(governance::list_masks, governance::create_mask))
        .routes(routes!(
            governance::get_mask,
            governance::replace_mask,
            governance::delete_mask
        ))
        .routes(routes!(governance::list_row_filters, governance::create_row_filter))
        .routes(routes!(
            governance::get_row_filter,
            governance::replace_row_filter,
            governance::delete_row_filter
        ))
        .routes(routes!(governance::rotate_mask_key))
        .routes(routes!(governance::request_access))
        .routes(routes!(governance::list_access_requests))
        .routes(routes!(governance::get_access_request))
        .routes(routes!(governance::approve_access))
        .routes(routes!(governance::deny_access))
        .routes(routes!(governance::list_gateways))
        .routes(routes!(governance::report_gateway))
        .routes(routes!(governance::add_audit))
        .routes(routes!(governance::product_usage));
    (public, private)
}

/// The OpenAPI document, as served and as committed in `docs/openapi.json`.
pub fn openapi() -> OpenApiDoc {
    openapi_with(None)
}

/// The catalog's document with an extension's paths merged in.
pub fn openapi_with(extension: Option<&OpenApiDoc>) -> OpenApiDoc {
    let (public, private) = routers();
    let mut doc = ApiDoc::openapi();
    doc.merge(public.into_openapi());
    doc.merge(private.into_openapi());
    if let Some(extension) = extension {
        doc.merge(extension.clone());
    }
    // Modifiers ran on the bare document: run them again over the merged paths.
    Conventions.modify(&mut doc);
    doc
}

/// Authenticates `Authorization: Bearer <API key or token>` and attaches the
/// caller. An address that failed too often is refused before its credential
/// is read; a key that failed lately is checked a little later (see
/// [`tessera_http::throttle`]).
async fn authenticate(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    let connection = tessera_http::Peer::get(request.extensions());
    let peer = connection.map(|c| c.addr.ip());
    if let Some(peer) = peer
        && let Err(throttled) = app.throttle.admit(peer)
    {
        app.metrics.auth_throttled();
        return ApiError::Throttled(throttled).into_response();
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(Credential::from_authorization)
        .filter(|c| matches!(c, Credential::Bearer(_)));
    let Some(presented) = presented else {
        return ApiError::Unauthorized(
            "send an API key as `Authorization: Bearer tsk_...`, or an access token of a configured issuer".into(),
        )
        .into_response();
    };
    let key_id = tessera_contracts::keys::parse(presented.secret()).map(|k| k.id.to_string());
    if let Some(id) = &key_id {
        let delay = app.throttle.key_delay(id);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
    let failed = |why: ApiError| {
        app.throttle.failed(peer, key_id.as_deref());
        app.metrics.auth_failed();
        why.into_response()
    };
    match app.catalog.authenticate(presented.secret()).await {
        Ok(Some(caller)) => {
            tracing::Span::current().record("principal", caller.name());
            if caller.is_gateway()
                && app.gateways_need_client_certificates
                && !connection.is_some_and(|c| c.client_certified)
            {
                return ApiError::from(crate::service::Error::Forbidden(
                    "a gateway's principal must connect with a client certificate of the configured CA (mutual TLS)"
                        .into(),
                ))
                .into_response();
            }
            if caller.is_gateway() && !gateway_call(request.method(), request.uri().path()) {
                return ApiError::from(crate::service::Error::Forbidden(
                    "a gateway's principal may only read bundles, report and post audit".into(),
                ))
                .into_response();
            }
            if caller.is_metrics()
                && !(request.method() == axum::http::Method::GET
                    && matches!(request.uri().path(), "/metrics" | "/api/v1/whoami"))
            {
                return ApiError::from(crate::service::Error::Forbidden(
                    "a monitoring principal (the metrics role) may only read /metrics".into(),
                ))
                .into_response();
            }
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Ok(None) => failed(ApiError::Unauthorized(
            "the API key is unknown, revoked or expired".into(),
        )),
        Err(e @ crate::service::Error::Unauthenticated(_)) => failed(ApiError::from(e)),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The unauthenticated metrics listener's routes (`metrics_listen`): `/metrics` only.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(system::metrics_open))
        .with_state(state)
}

/// What a gateway's principal may call: bundles, the version and its watch,
/// its own report, audit batches, and `whoami`.
fn gateway_call(method: &axum::http::Method, path: &str) -> bool {
    use axum::http::Method;
    match *method {
        Method::GET => matches!(
            path,
            "/api/v1/bundle" | "/api/v1/version" | "/api/v1/version/watch" | "/api/v1/whoami"
        ),
        Method::PUT => path
            .strip_prefix("/api/v1/gateways/")
            .is_some_and(|name| !name.is_empty() && !name.contains('/')),
        Method::POST => path == "/api/v1/audit",
        _ => false,
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such resource".into())
}

/// Unknown paths: the web pages' (GET or HEAD outside `/api/`), else a 404 problem.
async fn fallback(web: Option<Router>, request: Request) -> Response {
    use tower::ServiceExt;
    let page = matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD)
        && !request.uri().path().starts_with("/api/");
    match web {
        Some(web) if page => match web.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        _ => not_found().await.into_response(),
    }
}

/// Responses that axum produces itself (405) get a problem body too.
async fn problem_for_bare_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED && response.headers().get(header::CONTENT_TYPE).is_none() {
        let allow = response.headers().get(header::ALLOW).cloned();
        let mut problem = error::problem_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &tessera_contracts::api::Problem::new(error::problem_type("method-not-allowed"), "Method not allowed", 405),
        );
        if let Some(allow) = allow {
            problem.headers_mut().insert(header::ALLOW, allow);
        }
        return problem;
    }
    response
}

/// The whole HTTP application.
pub fn router(state: AppState, settings: HttpSettings, extension: Option<Extension>) -> Router {
    let (extension_router, extension_doc, web) = match extension {
        Some(e) => (Some(e.router), Some(e.openapi), e.web),
        None => (None, None, None),
    };
    let (public, private) = routers();
    let (public, _) = public.split_for_parts();
    let (private, _) = private.split_for_parts();
    // Route layers see the matched route template, which the metrics label with.
    let track = middleware::from_fn_with_state(state.metrics.clone(), crate::metrics::track);
    let public = public.route_layer(track.clone());
    let private = private
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .route_layer(track);
    let catalog = Router::new()
        .merge(public)
        .merge(private)
        .merge(SwaggerUi::new("/api/v1/docs").url("/api/v1/openapi.json", openapi_with(extension_doc.as_ref())))
        .fallback(move |request: Request| fallback(web.clone(), request))
        .with_state(state)
        .layer(middleware::from_fn(problem_for_bare_errors))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes));
    let catalog = tessera_http::stack::standard(catalog, settings.request_timeout);
    match extension_router {
        Some(extension) => extension.merge(catalog),
        None => catalog,
    }
}
