//! The SDK covers the REST API exactly: `ops::ALL` is the set of operations of
//! the committed OpenAPI document, and every operation has a client method.

use std::collections::BTreeSet;
use std::path::Path;

use tessera_sdk::ops::{self, ALL, Operation};

/// (method, path, operationId) of every operation of `docs/openapi.json`.
fn documented() -> BTreeSet<(String, String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let doc: serde_json::Value = serde_json::from_str(&text).expect("docs/openapi.json is JSON");
    let paths = doc["paths"].as_object().expect("the document has paths");
    let mut found = BTreeSet::new();
    for (path, item) in paths {
        let item = item.as_object().expect("a path item is an object");
        for (method, operation) in item {
            if !matches!(
                method.as_str(),
                "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace"
            ) {
                continue;
            }
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            found.insert((method.to_ascii_uppercase(), path.clone(), id.to_string()));
        }
    }
    found
}

fn listed() -> BTreeSet<(String, String, String)> {
    ALL.iter()
        .map(|op| (op.method.to_string(), op.path.to_string(), op.id.to_string()))
        .collect()
}

fn show(set: &BTreeSet<&(String, String, String)>) -> String {
    set.iter()
        .map(|(method, path, id)| format!("  {method} {path} ({id})"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn ops_are_the_operations_of_the_openapi_document() {
    let documented = documented();
    let listed = listed();
    assert_eq!(listed.len(), ALL.len(), "ops::ALL lists an operation twice");
    let missing: BTreeSet<_> = documented.difference(&listed).collect();
    let extra: BTreeSet<_> = listed.difference(&documented).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "ops::ALL differs from docs/openapi.json\nin the document, missing from ops::ALL:\n{}\nin ops::ALL, not in the document:\n{}",
        show(&missing),
        show(&extra)
    );
}

#[test]
fn each_constant_is_named_after_its_operation_id() {
    for op in ALL {
        assert_eq!(op.name, op.id.to_ascii_uppercase(), "{op:?}");
        assert!(
            matches!(op.method, "GET" | "POST" | "PUT" | "PATCH" | "DELETE"),
            "{op:?}: a method the client cannot send"
        );
    }
}

/// Whether `source` mentions `ops::NAME` as a whole identifier outside comments.
fn mentions(source: &str, name: &str) -> bool {
    let needle = format!("ops::{name}");
    source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .any(|line| {
            line.match_indices(&needle).any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let after = line[at + needle.len()..].chars().next();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
}

#[test]
fn every_operation_has_a_client_method() {
    let source = [
        include_str!("../../src/lib.rs"),
        include_str!("../../src/catalog.rs"),
        include_str!("../../src/query.rs"),
    ]
    .concat();
    let unused: Vec<&str> = ALL
        .iter()
        .map(|op| op.name)
        .filter(|name| !mentions(&source, name))
        .collect();
    assert!(
        unused.is_empty(),
        "operations no method of the client (src/lib.rs, catalog.rs, query.rs) calls (as `ops::NAME`):\n  {}",
        unused.join("\n  ")
    );
}

#[test]
fn the_usage_scan_sees_whole_names_only() {
    assert!(mentions("x(&ops::GET_CONTRACT, &[])", "GET_CONTRACT"));
    assert!(!mentions("x(&ops::GET_CONTRACT_DOCUMENT, &[])", "GET_CONTRACT"));
    assert!(!mentions("// ops::GET_CONTRACT", "GET_CONTRACT"));
    assert!(!mentions("x(&fops::GET_CONTRACT)", "GET_CONTRACT"));
    assert!(mentions("x(&crate::ops::GET_CONTRACT)", "GET_CONTRACT"));
}

#[test]
fn urls_fill_placeholders_in_order_and_encode_them() {
    assert_eq!(ops::HEALTH.url("http://h:1/", &[]), "http://h:1/health");
    assert_eq!(
        ops::GET_PRODUCT.url("http://h", &["sales", "orders"]),
        "http://h/api/v1/domains/sales/products/orders"
    );
    assert_eq!(
        ops::GET_CONTRACT_DOCUMENT.url("http://h", &["d", "p", "1.0.0-rc.1+b"]),
        "http://h/api/v1/domains/d/products/p/contracts/1.0.0-rc.1%2Bb/document"
    );
    assert_eq!(
        ops::REVOKE_API_KEY.url("http://h", &["a/b", "k y?#%é"]),
        "http://h/api/v1/principals/a%2Fb/keys/k%20y%3F%23%25%C3%A9"
    );
    let placeholders: usize = ALL.iter().map(Operation::placeholders).sum();
    assert!(placeholders > 0);
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "path arguments")]
fn a_wrong_argument_count_is_caught() {
    let _ = ops::GET_PRODUCT.url("http://h", &["sales"]);
}

// ---------------------------------------------------------------- against a real catalog

fn from<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("a valid body")
}

const ADMIN_KEY: &str = "tsk_0123456789ab_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

const CONTRACT: &str = "apiVersion: v3.1.0
kind: DataContract
id: orders
version: 1.0.0
status: active
schema:
  - name: orders
    properties:
      - name: id
        logicalType: integer
        physicalType: bigint
        required: true
      - name: status
        logicalType: string
";

/// Every method of the catalog's REST API, through a catalog on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_drives_a_real_catalog() {
    use serde_json::json;
    use tessera_sdk::api::{AccessRequestStatus, ProductStatus};
    use tessera_sdk::{
        AccessRequestParams, ChangeParams, Client, DocumentFormat, Paging, PolicyParams, ProductParams, etag,
    };

    let catalog = crate::Catalog::start(ADMIN_KEY).await;
    // A trailing slash is fine too.
    let base = format!("{}/", catalog.base);
    let admin = Client::new(&base, ADMIN_KEY).expect("client");

    // system and changes
    assert_eq!(admin.health().await.expect("health").status, "ok");
    assert_eq!(admin.ready().await.expect("ready").status, "ready");
    assert!(!admin.metrics().await.expect("metrics").is_empty());
    assert!(admin.whoami().await.expect("whoami").principal.admin);
    let start = admin.version().await.expect("version");

    // principals and keys
    let olga = admin
        .create_principal(&from(json!({"name": "olga", "kind": "user",
            "attributes": {"purposes": ["analytics"]}})))
        .await
        .expect("principal");
    admin
        .create_principal(&from(json!({"name": "bob", "kind": "service"})))
        .await
        .expect("principal");
    let read = admin.principal("olga").await.expect("principal");
    assert_eq!(read.etag.as_deref(), Some(etag(olga.revision).as_str()));
    let updated = admin
        .update_principal("olga", &from(json!({"display_name": "Olga"})), read.etag.as_deref())
        .await
        .expect("update");
    assert_eq!(updated.display_name, "Olga");
    let stale = admin
        .update_principal("olga", &from(json!({"display_name": "O"})), read.etag.as_deref())
        .await
        .expect_err("stale ETag");
    assert!(stale.is_precondition_failed(), "{stale}");
    let names: Vec<String> = admin
        .principals(&Paging::default())
        .await
        .expect("principals")
        .items
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert!(
        names.contains(&"olga".to_string()) && names.contains(&"bob".to_string()),
        "{names:?}"
    );
    let spare = admin
        .create_api_key("olga", &from(json!({"description": "spare"})))
        .await
        .expect("key");
    let olga_key = admin.create_api_key("olga", &from(json!({}))).await.expect("key");
    assert_eq!(
        admin
            .api_keys("olga", &Paging::default())
            .await
            .expect("keys")
            .items
            .len(),
        2
    );
    let revoked = admin.revoke_api_key("olga", &spare.api_key.id).await.expect("revoked");
    assert!(revoked.revoked_at.is_some());
    let as_olga = Client::new(&base, &olga_key.key).expect("client");
    assert_eq!(as_olga.whoami().await.expect("whoami").principal.name, "olga");

    // teams
    admin
        .create_team(&from(json!({"name": "sales_team"})))
        .await
        .expect("team");
    let team = admin.team("sales_team").await.expect("team");
    admin
        .update_team("sales_team", &from(json!({"title": "Sales"})), team.etag.as_deref())
        .await
        .expect("update");
    let with_bob = admin.add_team_member("sales_team", "bob").await.expect("member");
    assert_eq!(with_bob.members, ["bob"]);
    let without = admin.remove_team_member("sales_team", "bob").await.expect("member");
    assert!(without.members.is_empty());
    admin
        .create_team(&from(json!({"name": "tmp_team"})))
        .await
        .expect("team");
    assert_eq!(admin.teams(&Paging::default()).await.expect("teams").items.len(), 2);
    admin.delete_team("tmp_team", None).await.expect("deleted");
    assert!(admin.team("tmp_team").await.expect_err("gone").is_not_found());

    // domains
    for name in ["sales", "tmp"] {
        admin
            .create_domain(&from(json!({"name": name, "owner_team": "sales_team"})))
            .await
            .expect("domain");
    }
    let first = Paging {
        limit: Some(1),
        cursor: None,
    };
    let page = admin.domains(&first).await.expect("domains");
    assert_eq!(page.items.len(), 1);
    let next = first.next(&page).expect("a second page");
    assert_eq!(admin.domains(&next).await.expect("domains").items.len(), 1);
    let domain = admin.domain("sales").await.expect("domain");
    admin
        .update_domain("sales", &from(json!({"title": "Sales"})), domain.etag.as_deref())
        .await
        .expect("update");
    let tmp = admin.domain("tmp").await.expect("domain");
    admin.delete_domain("tmp", tmp.etag.as_deref()).await.expect("deleted");
    let missing = admin.domain("tmp").await.expect_err("gone");
    assert!(missing.is_not_found() && missing.problem().is_some(), "{missing}");

    // products
    // Relative to the domain's storage root (under the catalog's lake root).
    let location = "orders";
    admin
        .create_product(
            "sales",
            &from(json!({"name": "orders", "tags": ["core"],
                "output_ports": [{"major_version": 1, "location": location}]})),
        )
        .await
        .expect("product");
    admin
        .create_product("sales", &from(json!({"name": "scratch"})))
        .await
        .expect("product");
    let found = admin
        .products(&ProductParams {
            tag: Some("core".into()),
            status: Some(ProductStatus::Draft),
            ..ProductParams::default()
        })
        .await
        .expect("products");
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].name, "orders");
    assert_eq!(
        admin
            .domain_products("sales", &Paging::default())
            .await
            .expect("products")
            .items
            .len(),
        2
    );
    let orders = admin.product("sales", "orders").await.expect("product");
    admin
        .update_product(
            "sales",
            "orders",
            &from(json!({"title": "Orders"})),
            orders.etag.as_deref(),
        )
        .await
        .expect("update");
    admin.delete_product("sales", "scratch", None).await.expect("deleted");

    // contracts
    let added = admin
        .add_contract("sales", "orders", DocumentFormat::Yaml, CONTRACT)
        .await
        .expect("contract");
    assert_eq!(added.version, "1.0.0");
    assert_eq!(
        admin
            .contracts("sales", "orders", &Paging::default())
            .await
            .expect("contracts")
            .items
            .len(),
        1
    );
    assert_eq!(
        admin
            .contract("sales", "orders", "1.0.0")
            .await
            .expect("contract")
            .document,
        CONTRACT
    );
    let document = admin
        .contract_document("sales", "orders", "1.0.0")
        .await
        .expect("document");
    assert_eq!(
        (document.format(), document.text.as_str()),
        (Some(DocumentFormat::Yaml), CONTRACT)
    );
    let verification = admin
        .verify_contract("sales", "orders", "1.0.0")
        .await
        .expect("verification");
    assert!(!verification.table_exists);

    // lineage and quality
    assert_eq!(
        admin
            .product_lineage("sales", "orders")
            .await
            .expect("lineage")
            .nodes
            .len(),
        1
    );
    assert_eq!(admin.lineage().await.expect("lineage").nodes.len(), 1);
    let run = admin
        .report_quality(
            "sales",
            "orders",
            &from(json!({"contract_version": "1.0.0", "results": []})),
        )
        .await
        .expect("run");
    let runs = admin
        .quality_runs("sales", "orders", &Paging::default())
        .await
        .expect("runs");
    assert_eq!(runs.items[0].id, run.id);

    // policies
    let grant = admin
        .create_grant(&from(json!({"name": "olga_orders",
            "subject": {"kind": "principal", "name": "olga"},
            "target": {"kind": "product", "domain": "sales", "product": "orders"}})))
        .await
        .expect("grant");
    let read = admin.grant("olga_orders").await.expect("grant");
    assert_eq!(read.etag, Some(etag(grant.revision)));
    let mut spec = read.value.spec;
    spec.purposes = vec!["analytics".into()];
    admin
        .replace_grant("olga_orders", &spec, read.etag.as_deref())
        .await
        .expect("replaced");
    let listed = admin.grants(&PolicyParams::default()).await.expect("grants");
    assert_eq!(listed.items[0].spec.purposes, ["analytics"]);
    admin.delete_grant("olga_orders", None).await.expect("deleted");

    admin
        .create_mask(&from(json!({"name": "status_redacted",
            "target": {"kind": "product", "domain": "sales", "product": "orders"},
            "columns": {"kind": "column", "column": "status"},
            "function": {"kind": "redact"}})))
        .await
        .expect("mask");
    let mask = admin.mask("status_redacted").await.expect("mask");
    let mut spec = mask.value.spec;
    spec.exempt.principals = vec!["olga".into()];
    admin
        .replace_mask("status_redacted", &spec, mask.etag.as_deref())
        .await
        .expect("replaced");
    let in_sales = PolicyParams {
        domain: Some("sales".into()),
        ..PolicyParams::default()
    };
    assert_eq!(admin.masks(&in_sales).await.expect("masks").items.len(), 1);
    admin.delete_mask("status_redacted", None).await.expect("deleted");
    admin.rotate_mask_key().await.expect("rotated");

    admin
        .create_row_filter(&from(
            json!({"name": "open_only", "domain": "sales", "product": "orders",
            "expression": "status = 'open'"}),
        ))
        .await
        .expect("row filter");
    let filter = admin.row_filter("open_only").await.expect("row filter");
    let mut spec = filter.value.spec;
    spec.expression = "status = 'done'".into();
    admin
        .replace_row_filter("open_only", &spec, filter.etag.as_deref())
        .await
        .expect("replaced");
    assert_eq!(
        admin.row_filters(&in_sales).await.expect("row filters").items[0]
            .spec
            .expression,
        "status = 'done'"
    );
    admin.delete_row_filter("open_only", None).await.expect("deleted");

    // access requests
    let asked = as_olga
        .request_access(
            "sales",
            "orders",
            &from(json!({"purpose": "analytics", "justification": "dashboards"})),
        )
        .await
        .expect("requested");
    let pending = admin
        .access_requests(&AccessRequestParams {
            status: Some(AccessRequestStatus::Pending),
            domain: Some("sales".into()),
            product: Some("orders".into()),
            ..AccessRequestParams::default()
        })
        .await
        .expect("requests");
    assert_eq!(pending.items.len(), 1);
    assert_eq!(admin.access_request(asked.id).await.expect("request").id, asked.id);
    let approved = admin
        .approve_access(asked.id, &from(json!({"note": "ok"})))
        .await
        .expect("approved");
    assert_eq!(approved.status, AccessRequestStatus::Approved);
    assert!(approved.grant_name.is_some());
    let again = as_olga
        .request_access(
            "sales",
            "orders",
            &from(json!({"purpose": "analytics", "justification": "more"})),
        )
        .await
        .expect("requested");
    let denied = admin.deny_access(again.id, &from(json!({}))).await.expect("denied");
    assert_eq!(denied.status, AccessRequestStatus::Denied);

    // gateways (through a gateway's principal), audit and usage
    admin
        .create_principal(&from(
            json!({"name": "gw_one", "kind": "service", "roles": ["gateway"]}),
        ))
        .await
        .expect("a gateway's principal");
    let gw_key = admin.create_api_key("gw_one", &from(json!({}))).await.expect("key");
    let gateway = Client::new(&base, &gw_key.key).expect("client");
    assert!(admin.bundle(None).await.is_err(), "an admin's key reads no bundle");
    let bundle = gateway.bundle(None).await.expect("bundle").expect("a bundle");
    let held = bundle.etag.as_deref().expect("an ETag");
    assert!(gateway.bundle(Some(held)).await.expect("bundle").is_none());
    gateway
        .report_gateway(
            "gw_one",
            &from(json!({"version": bundle.value.version, "hash": bundle.value.hash})),
        )
        .await
        .expect("reported");
    let gateways = admin.gateways().await.expect("gateways");
    assert_eq!(gateways[0].name, "gw_one");
    gateway
        .add_audit(&from(json!({"gateway": "gw_one", "records": [{
            "query_id": "q1", "principal": "olga", "protocol": "http", "sql": "SELECT 1",
            "products": ["sales.orders"], "rows": 1, "bytes": 8, "duration_ms": 1,
            "bundle_version": bundle.value.version, "outcome": "ok", "at": "2025-01-01T00:00:00Z"}]})))
        .await
        .expect("audit");
    let usage = admin.usage("sales", "orders", &Paging::default()).await.expect("usage");
    assert_eq!(usage.items[0].record.query_id, "q1");

    // the change log and its watch
    let now = admin.version().await.expect("version");
    assert!(now > start);
    assert_eq!(admin.watch(now - 1, 0).await.expect("watch"), now);
    let changes = admin
        .changes(&ChangeParams {
            after: Some(start),
            limit: Some(2),
        })
        .await
        .expect("changes");
    assert_eq!(changes.items.len(), 2);
    assert_eq!(changes.items[0].seq, start + 1);

    admin.delete_principal("bob", None).await.expect("deleted");
    assert!(olga.revision > 0);
    catalog.stop().await;
}

// ---------------------------------------------------------------- queries, against a stand-in gateway
