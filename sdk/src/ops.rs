//! Every operation of the REST API, as the OpenAPI document (`docs/openapi.json`)
//! names it: the single source of the SDK's URLs, kept equal to the document by
//! the crate's `openapi` test.

use std::fmt::Write as _;

/// One operation: its method and path template, as in the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Operation {
    /// The constant's identifier in this module: `id` in upper case.
    pub name: &'static str,
    /// The OpenAPI `operationId`.
    pub id: &'static str,
    /// The HTTP method, upper case.
    pub method: &'static str,
    /// The full path template, e.g. `/api/v1/domains/{domain}` or `/health`.
    pub path: &'static str,
}

impl Operation {
    /// The URL of this operation under `base`, its placeholders filled with
    /// `args` in order, each percent-encoded as one path segment.
    pub fn url(&self, base: &str, args: &[&str]) -> String {
        debug_assert_eq!(
            args.len(),
            self.placeholders(),
            "operation {} takes {} path arguments",
            self.id,
            self.placeholders()
        );
        let mut url = String::with_capacity(base.len() + self.path.len() + 16);
        url.push_str(base.trim_end_matches('/'));
        let mut args = args.iter();
        let mut rest = self.path;
        while let Some(open) = rest.find('{') {
            url.push_str(&rest[..open]);
            let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
            if let Some(arg) = args.next() {
                encode_segment(arg, &mut url);
            }
            rest = &rest[close..];
        }
        url.push_str(rest);
        url
    }

    /// How many `{placeholder}`s the path has.
    pub fn placeholders(&self) -> usize {
        self.path.matches('{').count()
    }
}

/// Percent-encodes `segment` as one path segment: everything but RFC 3986's
/// unreserved characters is encoded, `/` included.
fn encode_segment(segment: &str, out: &mut String) {
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

macro_rules! operations {
    ($($name:ident = $method:ident $path:literal $id:literal;)*) => {
        $(
            #[doc = concat!("`", stringify!($method), " ", $path, "` (`", $id, "`)")]
            pub const $name: Operation = Operation {
                name: stringify!($name),
                id: $id,
                method: stringify!($method),
                path: $path,
            };
        )*

        /// Every operation, in the order of this module.
        pub const ALL: &[Operation] = &[$($name),*];
    };
}

operations! {
    // system
    HEALTH = GET "/health" "health";
    READY = GET "/ready" "ready";
    METRICS = GET "/metrics" "metrics";

    // changes
    VERSION = GET "/api/v1/version" "version";
    WATCH = GET "/api/v1/version/watch" "watch";
    CHANGES = GET "/api/v1/changes" "changes";

    // principals
    SIGN_IN_ISSUERS = GET "/api/v1/identity/issuers" "sign_in_issuers";
    WHOAMI = GET "/api/v1/whoami" "whoami";
    LIST_PRINCIPALS = GET "/api/v1/principals" "list_principals";
    CREATE_PRINCIPAL = POST "/api/v1/principals" "create_principal";
    GET_PRINCIPAL = GET "/api/v1/principals/{principal}" "get_principal";
    UPDATE_PRINCIPAL = PATCH "/api/v1/principals/{principal}" "update_principal";
    DELETE_PRINCIPAL = DELETE "/api/v1/principals/{principal}" "delete_principal";
    LIST_API_KEYS = GET "/api/v1/principals/{principal}/keys" "list_api_keys";
    CREATE_API_KEY = POST "/api/v1/principals/{principal}/keys" "create_api_key";
    REVOKE_API_KEY = DELETE "/api/v1/principals/{principal}/keys/{key_id}" "revoke_api_key";

    // teams
    LIST_TEAMS = GET "/api/v1/teams" "list_teams";
    CREATE_TEAM = POST "/api/v1/teams" "create_team";
    GET_TEAM = GET "/api/v1/teams/{team}" "get_team";
    UPDATE_TEAM = PATCH "/api/v1/teams/{team}" "update_team";
    DELETE_TEAM = DELETE "/api/v1/teams/{team}" "delete_team";
    ADD_TEAM_MEMBER = PUT "/api/v1/teams/{team}/members/{principal}" "add_team_member";
    REMOVE_TEAM_MEMBER = DELETE "/api/v1/teams/{team}/members/{principal}" "remove_team_member";

    // domains
    LIST_DOMAINS = GET "/api/v1/domains" "list_domains";
    CREATE_DOMAIN = POST "/api/v1/domains" "create_domain";
    GET_DOMAIN = GET "/api/v1/domains/{domain}" "get_domain";
    UPDATE_DOMAIN = PATCH "/api/v1/domains/{domain}" "update_domain";
    DELETE_DOMAIN = DELETE "/api/v1/domains/{domain}" "delete_domain";

    // products
    LIST_PRODUCTS = GET "/api/v1/products" "list_products";
    LIST_DOMAIN_PRODUCTS = GET "/api/v1/domains/{domain}/products" "list_domain_products";
    CREATE_PRODUCT = POST "/api/v1/domains/{domain}/products" "create_product";
    GET_PRODUCT = GET "/api/v1/domains/{domain}/products/{product}" "get_product";
    UPDATE_PRODUCT = PATCH "/api/v1/domains/{domain}/products/{product}" "update_product";
    DELETE_PRODUCT = DELETE "/api/v1/domains/{domain}/products/{product}" "delete_product";

    // lineage
    PRODUCT_LINEAGE = GET "/api/v1/domains/{domain}/products/{product}/lineage" "product_lineage";
    LINEAGE = GET "/api/v1/lineage" "lineage";

    // contracts
    LIST_CONTRACTS = GET "/api/v1/domains/{domain}/products/{product}/contracts" "list_contracts";
    ADD_CONTRACT = POST "/api/v1/domains/{domain}/products/{product}/contracts" "add_contract";
    GET_CONTRACT = GET "/api/v1/domains/{domain}/products/{product}/contracts/{version}" "get_contract";
    GET_CONTRACT_DOCUMENT = GET "/api/v1/domains/{domain}/products/{product}/contracts/{version}/document"
        "get_contract_document";
    VERIFY_CONTRACT = POST "/api/v1/domains/{domain}/products/{product}/contracts/{version}/verify"
        "verify_contract";

    // quality
    LIST_QUALITY_RUNS = GET "/api/v1/domains/{domain}/products/{product}/quality" "list_quality_runs";
    ADD_QUALITY_RUN = POST "/api/v1/domains/{domain}/products/{product}/quality" "add_quality_run";

    // gateways
    BUNDLE = GET "/api/v1/bundle" "bundle";
    LIST_GATEWAYS = GET "/api/v1/gateways" "list_gateways";
    REPORT_GATEWAY = PUT "/api/v1/gateways/{name}" "report_gateway";
    ADD_AUDIT = POST "/api/v1/audit" "add_audit";

    // policies
    LIST_GRANTS = GET "/api/v1/grants" "list_grants";
    CREATE_GRANT = POST "/api/v1/grants" "create_grant";
    GET_GRANT = GET "/api/v1/grants/{name}" "get_grant";
    REPLACE_GRANT = PUT "/api/v1/grants/{name}" "replace_grant";
    DELETE_GRANT = DELETE "/api/v1/grants/{name}" "delete_grant";
    LIST_MASKS = GET "/api/v1/masks" "list_masks";
    CREATE_MASK = POST "/api/v1/masks" "create_mask";
    GET_MASK = GET "/api/v1/masks/{name}" "get_mask";
    REPLACE_MASK = PUT "/api/v1/masks/{name}" "replace_mask";
    DELETE_MASK = DELETE "/api/v1/masks/{name}" "delete_mask";
    LIST_ROW_FILTERS = GET "/api/v1/row-filters" "list_row_filters";
    CREATE_ROW_FILTER = POST "/api/v1/row-filters" "create_row_filter";
    GET_ROW_FILTER = GET "/api/v1/row-filters/{name}" "get_row_filter";
    REPLACE_ROW_FILTER = PUT "/api/v1/row-filters/{name}" "replace_row_filter";
    DELETE_ROW_FILTER = DELETE "/api/v1/row-filters/{name}" "delete_row_filter";
    ROTATE_MASK_KEY = POST "/api/v1/mask-key/rotate" "rotate_mask_key";

    // access
    REQUEST_ACCESS = POST "/api/v1/domains/{domain}/products/{product}/access-requests" "request_access";
    LIST_ACCESS_REQUESTS = GET "/api/v1/access-requests" "list_access_requests";
    GET_ACCESS_REQUEST = GET "/api/v1/access-requests/{id}" "get_access_request";
    APPROVE_ACCESS = POST "/api/v1/access-requests/{id}/approve" "approve_access";
    DENY_ACCESS = POST "/api/v1/access-requests/{id}/deny" "deny_access";
    PRODUCT_USAGE = GET "/api/v1/domains/{domain}/products/{product}/usage" "product_usage";

    // query (served by the gateway)
    QUERY = POST "/api/v1/query" "query";
}
