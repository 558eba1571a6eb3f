//! The governance seams of issue #16 as the catalog holds them, on both
//! databases: storage is owned (each domain's roots, every location under
//! them and overlapping no other, shown to owners only), the mesh's mask key
//! is in bundles and in no other answer, and gateways' drift reports mark
//! products `drifted`.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_contracts::api::GatewayReport;

use crate::helpers::{Reply, TestApp, file_url, odcs_yaml, write_table};

/// Two domains: `sales` (team `sales_team`, member `sal`) and `customers`
/// (team `customers_team`, member `cus`); `nia` belongs to no team. Returns
/// their keys (sal, cus, nia).
async fn two_domains(app: &TestApp) -> (String, String, String) {
    let sal = app.user("sal", json!({})).await;
    let cus = app.user("cus", json!({})).await;
    let nia = app.user("nia", json!({"groups": ["analysts"]})).await;
    app.team("sales_team", &["sal"]).await;
    app.team("customers_team", &["cus"]).await;
    app.domain("sales", "sales_team").await;
    app.domain("customers", "customers_team").await;
    (sal, cus, nia)
}

/// Registers `domain.name` as `key` with one output port (major 1) at `location`.
async fn register(app: &TestApp, domain: &str, key: &str, name: &str, location: &str) -> Reply {
    app.post(
        &format!("/api/v1/domains/{domain}/products"),
        key,
        json!({"name": name, "output_ports": [{"major_version": 1, "location": location}]}),
    )
    .await
}

fn text(path: &std::path::Path) -> String {
    path.to_str().expect("utf-8").to_string()
}

/// The root URL (ending in `/`) of a local directory, as the catalog stores it.
fn root_url(path: &std::path::Path) -> String {
    format!("{}/", file_url(path))
}

pub async fn storage_roots_are_set_by_admins(app: &mut TestApp) {
    let (sal, cus, nia) = two_domains(app).await;
    let admin = app.admin_key.clone();
    let lake = app.lake_root();
    let sales_root = root_url(&lake.join("sales"));
    let customers_root = root_url(&lake.join("customers"));

    // By default `<lake root>/<domain>/`, shown to the domain's owners and admins only.
    for key in [&admin, &sal] {
        let d = app.get("/api/v1/domains/sales", key).await.expect(200).json();
        assert_eq!(d["storage_roots"], json!([sales_root]));
    }
    for key in [&cus, &nia] {
        let d = app.get("/api/v1/domains/sales", key).await.expect(200).json();
        assert!(d.get("storage_roots").is_none(), "{d}");
        let listed = app.get("/api/v1/domains", key).await.expect(200).json();
        let shown: Vec<&Value> = listed["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|d| d.get("storage_roots"))
            .collect();
        let own = usize::from(key == &cus);
        assert_eq!(shown.len(), own, "only its own domain's roots: {listed}");
    }

    // Only admins set them, as absolute URLs or paths, normalised.
    let sales = "/api/v1/domains/sales";
    app.patch(sales, &sal, json!({"storage_roots": ["s3://lake/sales/"]}), None)
        .await
        .problem(403, "forbidden");
    let d = app
        .patch(
            sales,
            &admin,
            json!({"storage_roots": [text(&lake.join("sales")), "s3://Lake/sales"]}),
            None,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(d["storage_roots"], json!([sales_root, "s3://lake/sales/"]));
    for (bad, path) in [
        (json!(["lake/sales"]), "storage_roots[0]"),
        (json!([]), "storage_roots"),
        (json!(["s3://lake/a/", "s3://lake/a/b/"]), "storage_roots[1]"),
        (json!(["s3:///nobucket/"]), "storage_roots[0]"),
    ] {
        let problem = app
            .patch(sales, &admin, json!({"storage_roots": bad}), None)
            .await
            .problem(422, "validation");
        assert_eq!(problem["errors"][0]["path"], path, "{bad}: {problem}");
    }

    // Two domains' roots are never equal or nested.
    for taken in [
        customers_root.clone(),
        root_url(&lake),
        format!("{customers_root}vip/"),
        text(&lake.join("customers")),
    ] {
        app.patch(sales, &admin, json!({"storage_roots": [taken]}), None)
            .await
            .problem(409, "conflict");
    }
    app.team("hr_team", &[]).await;
    app.post(
        "/api/v1/domains",
        &admin,
        json!({"name": "hr", "owner_team": "hr_team", "storage_roots": ["s3://lake/sales/hr/"]}),
    )
    .await
    .problem(409, "conflict");
    let hr = app
        .post(
            "/api/v1/domains",
            &admin,
            json!({"name": "hr", "owner_team": "hr_team", "storage_roots": ["s3://lake/hr/"]}),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(hr["storage_roots"], json!(["s3://lake/hr/"]));
    app.post(
        "/api/v1/domains",
        &sal,
        json!({"name": "mine", "owner_team": "sales_team", "storage_roots": ["s3://lake/mine/"]}),
    )
    .await
    .problem(403, "forbidden");
    // A default root another domain holds: refused too.
    app.patch(
        sales,
        &admin,
        json!({"storage_roots": [sales_root, "s3://lake/sales/", root_url(&lake.join("spare"))]}),
        None,
    )
    .await
    .expect(200);
    app.team("spare_team", &[]).await;
    app.post(
        "/api/v1/domains",
        &admin,
        json!({"name": "spare", "owner_team": "spare_team"}),
    )
    .await
    .problem(409, "conflict");

    // Products keep their roots: a change leaving one outside is refused.
    register(app, "sales", &sal, "orders", "orders").await.expect(201);
    let version = app.version().await;
    app.patch(sales, &admin, json!({"storage_roots": ["s3://lake/sales/"]}), None)
        .await
        .problem(409, "conflict");
    assert_eq!(app.version().await, version, "nothing written");
    let d = app
        .patch(sales, &admin, json!({"storage_roots": [sales_root]}), None)
        .await
        .expect(200)
        .json();
    assert_eq!(d["storage_roots"], json!([sales_root]));
    // The owners still edit the rest; the change log has every root change.
    app.patch(sales, &sal, json!({"title": "Sales"}), None)
        .await
        .expect(200);
    let changes = app.get("/api/v1/changes?limit=500", &admin).await.expect(200).json();
    let root_changes = changes["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|c| {
            c["resource"] == "/domains/sales"
                && c["action"] == "update"
                && c["before"]["storage_roots"] != c["after"]["storage_roots"]
        })
        .count();
    assert_eq!(root_changes, 3, "{changes}");
}

pub async fn locations_lie_under_the_domain_roots(app: &mut TestApp) {
    let (sal, cus, _nia) = two_domains(app).await;
    let admin = app.admin_key.clone();
    let lake = app.lake_root();
    let sales_root = root_url(&lake.join("sales"));

    // A relative location resolves once, against the domain's first root, and
    // is stored absolute; absolute paths and file URLs are normalised alike.
    let p = register(app, "sales", &sal, "returns", "returns")
        .await
        .expect(201)
        .json();
    assert_eq!(p["output_ports"][0]["location"], file_url(&lake.join("sales/returns")));
    for (name, given) in [
        ("refunds", format!("{}/./refunds/", text(&lake.join("sales")))),
        ("credits", file_url(&lake.join("sales/credits"))),
        ("notes", "./notes/".to_string()),
    ] {
        let p = register(app, "sales", &sal, name, &given).await.expect(201).json();
        assert_eq!(
            p["output_ports"][0]["location"],
            file_url(&lake.join("sales").join(name)),
            "{given}"
        );
    }
    let stored = app
        .get("/api/v1/domains/sales/products/returns", &sal)
        .await
        .expect(200)
        .json();
    assert_eq!(
        stored["output_ports"][0]["location"],
        file_url(&lake.join("sales/returns"))
    );

    // Outside the domain's roots: refused on the field, naming the roots.
    register(app, "customers", &cus, "customer", "customer")
        .await
        .expect(201);
    let customer = lake.join("customers/customer");
    std::fs::create_dir_all(&customer).expect("mkdir");
    std::fs::create_dir_all(lake.join("sales/archive")).expect("mkdir");
    // A link under the sales root into the customers root, and a dangling one
    // to where customers may write later: both are seen for what they are.
    std::os::unix::fs::symlink(lake.join("customers"), lake.join("sales/link")).expect("symlink");
    std::os::unix::fs::symlink(lake.join("customers/later"), lake.join("sales/later")).expect("symlink");
    let version = app.version().await;
    for attempt in [
        "../customers/customer".to_string(),
        "../customers/other".to_string(),
        "returns/../../customers/customer".to_string(),
        text(&customer),
        file_url(&customer),
        "link/customer".to_string(),
        "link/new".to_string(),
        text(&lake.join("sales/link/customer")),
        "later".to_string(),
        "later/part".to_string(),
        "/elsewhere/orders".to_string(),
        "s3://lake/sales/orders".to_string(),
        sales_root.clone(),
        "..".to_string(),
    ] {
        let problem = register(app, "sales", &sal, "stolen", &attempt)
            .await
            .problem(422, "validation");
        assert_eq!(
            problem["errors"][0]["path"], "output_ports[0].location",
            "{attempt}: {problem}"
        );
        let message = problem["errors"][0]["message"].as_str().expect("message");
        assert!(message.contains(&sales_root), "{attempt}: {message}");
    }
    // A link that stays inside the root is followed and stored resolved.
    std::os::unix::fs::symlink("archive", lake.join("sales/alias")).expect("symlink");
    let p = register(app, "sales", &sal, "old_orders", "alias/2024")
        .await
        .expect(201)
        .json();
    assert_eq!(
        p["output_ports"][0]["location"],
        file_url(&lake.join("sales/archive/2024"))
    );
    let version_after_alias = app.version().await;
    assert_eq!(
        version_after_alias,
        version + 1,
        "only the last registration was written"
    );

    // The same holds when ports change (a new major version).
    let path = "/api/v1/domains/sales/products/returns";
    let problem = app
        .patch(
            path,
            &sal,
            json!({"output_ports": [{"major_version": 1, "location": "returns"},
                                    {"major_version": 2, "location": "../customers/returns_v2"}]}),
            None,
        )
        .await
        .problem(422, "validation");
    assert_eq!(problem["errors"][0]["path"], "output_ports[1].location", "{problem}");
    let p = app
        .patch(
            path,
            &sal,
            json!({"output_ports": [{"major_version": 1, "location": "returns"},
                                    {"major_version": 2, "location": "returns_v2"}]}),
            None,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(
        p["output_ports"][1]["location"],
        file_url(&lake.join("sales/returns_v2"))
    );
    // A port needs its location.
    app.post(
        "/api/v1/domains/sales/products",
        &sal,
        json!({"name": "nowhere", "output_ports": [{"major_version": 1}]}),
    )
    .await
    .problem(422, "validation");

    // Object stores: URLs taken literally, nothing that could escape a prefix.
    app.patch(
        "/api/v1/domains/sales",
        &admin,
        json!({"storage_roots": [sales_root, "s3://lake/sales/"]}),
        None,
    )
    .await
    .expect(200);
    for attempt in [
        "s3://lake/sales/../customers/x",
        "s3://lake/sales/a%2F..%2F..%2Fcustomers",
        "s3://lake/sales//x",
        "s3://lake/salesman/x",
        "s3://lake/sales/x?versionId=1",
        "s3://key:secret@lake/sales/x",
    ] {
        register(app, "sales", &sal, "stolen", attempt)
            .await
            .problem(422, "validation");
    }
    let p = register(app, "sales", &sal, "orders_s3", "s3://lake/sales/orders/")
        .await
        .expect(201)
        .json();
    assert_eq!(p["output_ports"][0]["location"], "s3://lake/sales/orders");
}

pub async fn locations_never_overlap(app: &mut TestApp) {
    let (sal, _cus, _nia) = two_domains(app).await;
    let admin = app.admin_key.clone();
    let lake = app.lake_root();
    register(app, "sales", &sal, "orders", "orders").await.expect(201);
    register(app, "sales", &sal, "deep", "area/deep").await.expect(201);
    let version = app.version().await;

    // The same location, however written, and nested ones, either way: 409,
    // without naming the product to a domain owner.
    for attempt in [
        "orders".to_string(),
        "orders/".to_string(),
        text(&lake.join("sales/orders")),
        file_url(&lake.join("sales/orders")),
        "orders/2024".to_string(),
        "area".to_string(),
        "area/deep/part".to_string(),
    ] {
        let problem = register(app, "sales", &sal, "copy", &attempt)
            .await
            .problem(409, "conflict");
        let detail = problem["detail"].as_str().expect("detail");
        assert!(
            detail.contains("overlaps another product's storage"),
            "{attempt}: {detail}"
        );
        assert!(
            !detail.contains("sales.orders") && !detail.contains("sales.deep"),
            "{detail}"
        );
        assert!(!detail.contains("file://"), "{detail}");
    }
    // Admins are told whose storage it is.
    let problem = register(app, "sales", &admin, "copy", "orders/2024")
        .await
        .problem(409, "conflict");
    assert!(
        problem["detail"].as_str().expect("detail").contains("sales.orders"),
        "{problem}"
    );
    let problem = register(app, "sales", &admin, "copy", "area")
        .await
        .problem(409, "conflict");
    assert!(
        problem["detail"].as_str().expect("detail").contains("sales.deep"),
        "{problem}"
    );
    assert_eq!(app.version().await, version, "nothing written");

    // A common prefix that is not a path boundary is no overlap.
    register(app, "sales", &sal, "orders_v2", "orders_v2").await.expect(201);
    // New majors and changed ports are checked too, against every major of every product.
    let path = "/api/v1/domains/sales/products/orders_v2";
    let ports = |second: &str| {
        json!({"output_ports": [{"major_version": 1, "location": "orders_v2"},
                                {"major_version": 2, "location": second}]})
    };
    app.patch(path, &sal, ports("orders/v2"), None)
        .await
        .problem(409, "conflict");
    app.patch(path, &sal, ports("orders_v2/v2"), None)
        .await
        .problem(422, "validation");
    app.patch(path, &sal, ports("orders_v2_next"), None).await.expect(200);
    app.patch(
        "/api/v1/domains/sales/products/orders",
        &sal,
        json!({"output_ports": [{"major_version": 1, "location": "orders"},
                                {"major_version": 2, "location": "orders_v2_next/x"}]}),
        None,
    )
    .await
    .problem(409, "conflict");
    // A product moving its own port is no overlap with itself.
    app.patch(
        "/api/v1/domains/sales/products/orders",
        &sal,
        json!({"output_ports": [{"major_version": 1, "location": "orders"}]}),
        None,
    )
    .await
    .expect(200);
    // Deleting a product frees its location.
    app.delete("/api/v1/domains/sales/products/deep", &sal)
        .await
        .expect(204);
    register(app, "sales", &sal, "area", "area").await.expect(201);
}

pub async fn concurrent_registrations_of_one_location(app: &mut TestApp) {
    let (sal, _cus, _nia) = two_domains(app).await;
    let url = format!("{}/api/v1/domains/sales/products", app.base);
    for round in 0..5 {
        let location = format!("contested_{round}");
        let tasks: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|n| {
                let (http, url, key) = (app.http.clone(), url.clone(), sal.clone());
                let body = json!({"name": format!("{n}_{round}"),
                                  "output_ports": [{"major_version": 1, "location": location}]});
                tokio::spawn(async move {
                    http.post(url)
                        .bearer_auth(key)
                        .json(&body)
                        .send()
                        .await
                        .expect("sent")
                        .status()
                        .as_u16()
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.expect("joined"));
        }
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "round {round}");
    }
    let listed = app
        .get("/api/v1/products?limit=500", &app.admin_key)
        .await
        .expect(200)
        .json();
    let mut locations: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["output_ports"][0]["location"].as_str().expect("location"))
        .collect();
    assert_eq!(locations.len(), 5);
    locations.dedup();
    assert_eq!(locations.len(), 5, "one product per location");
}

pub async fn locations_show_to_owners_only(app: &mut TestApp) {
    let (sal, cus, nia) = two_domains(app).await;
    let admin = app.admin_key.clone();
    let lake = app.lake_root();
    let lake_path = text(&lake);
    let sales_path = text(&lake.join("sales"));
    let created = register(app, "sales", &sal, "orders", "orders")
        .await
        .expect(201)
        .json();
    let location = file_url(&lake.join("sales/orders"));
    assert_eq!(created["output_ports"][0]["location"], location);
    // A product owned by another team than its domain's: its team sees it too.
    let carol = app.user("carol", json!({})).await;
    app.team("finance", &["carol"]).await;
    app.post(
        "/api/v1/domains/sales/products",
        &sal,
        json!({"name": "invoices", "owner_team": "finance",
               "output_ports": [{"major_version": 1, "location": "invoices"}]}),
    )
    .await
    .expect(201);
    app.contract(
        "sales",
        "orders",
        &sal,
        "application/yaml",
        &odcs_yaml("orders", "1.0.0"),
    )
    .await
    .expect(201);

    let product = "/api/v1/domains/sales/products/orders";
    for key in [&sal, &admin] {
        let p = app.get(product, key).await.expect(200).json();
        assert_eq!(p["output_ports"][0]["location"], location);
        let listed = app.get("/api/v1/products", key).await.expect(200).text;
        assert!(listed.contains(&location), "{listed}");
    }
    let p = app
        .get("/api/v1/domains/sales/products/invoices", &carol)
        .await
        .expect(200)
        .json();
    assert_eq!(p["output_ports"][0]["location"], file_url(&lake.join("sales/invoices")));

    // Nobody else sees a location, anywhere.
    for key in [&nia, &cus, &carol] {
        let p = app.get(product, key).await.expect(200).json();
        assert_eq!(p["output_ports"][0]["major_version"], 1);
        assert!(p["output_ports"][0].get("location").is_none(), "{p}");
        for path in [
            product,
            "/api/v1/products",
            "/api/v1/products?q=orders",
            "/api/v1/domains/sales/products",
            "/api/v1/domains/sales",
            "/api/v1/domains",
            "/api/v1/lineage",
            "/api/v1/domains/sales/products/orders/contracts/1.0.0",
        ] {
            let text = app.get(path, key).await.expect(200).text;
            assert!(!text.contains(&location), "{path}: {text}");
            // carol's own product shows its location; cus sees his own domain's roots.
            if !(key == &carol && path.contains("products") && !path.contains("orders")) {
                assert!(!text.contains(&sales_path), "{path}: {text}");
            }
        }
        // Verification answers without the location, whatever the table.
        let verify = "/api/v1/domains/sales/products/orders/contracts/1.0.0/verify";
        let v = app.send(Method::POST, verify, Some(key), None, None).await;
        assert!(!v.text.contains(&lake_path), "{}", v.text);
        assert_eq!(v.expect(200).json()["location"], "");
        // Errors do not carry it either.
        let refused = app.patch(product, key, json!({"title": "x"}), None).await;
        assert!(!refused.text.contains(&lake_path), "{}", refused.text);
        // The change log is the admins'.
        app.get("/api/v1/changes", key).await.problem(403, "forbidden");
    }
    let verify = "/api/v1/domains/sales/products/orders/contracts/1.0.0/verify";
    let v = app
        .send(Method::POST, verify, Some(&sal), None, None)
        .await
        .expect(200)
        .json();
    assert_eq!(v["location"], location);
    // A table that does not match, or cannot be read: still nothing for non-owners.
    write_table(&lake.join("sales/orders"), &["id", "surplus"]).await;
    let v = app
        .send(Method::POST, verify, Some(&nia), None, None)
        .await
        .expect(200)
        .json();
    assert_eq!(v["mismatches"][0]["rule"], "extra-column", "{v}");
    assert_eq!(v["location"], "");
    let broken = lake.join("sales/orders/_delta_log/00000000000000000001.json");
    std::fs::write(&broken, "not a commit").expect("write");
    let v = app.send(Method::POST, verify, Some(&nia), None, None).await;
    assert!(!v.text.contains(&lake_path), "{}", v.text);
    // The admins' change log shows them.
    let changes = app.get("/api/v1/changes?limit=500", &admin).await.expect(200).text;
    assert!(changes.contains(&location));
}

pub async fn the_mask_key_is_only_in_bundles(app: &mut TestApp) {
    let (sal, _cus, nia) = two_domains(app).await;
    let admin = app.admin_key.clone();
    register(app, "sales", &sal, "orders", "orders").await.expect(201);
    app.contract(
        "sales",
        "orders",
        &sal,
        "application/yaml",
        &odcs_yaml("orders", "1.0.0"),
    )
    .await
    .expect(201);
    app.post(
        "/api/v1/masks",
        &admin,
        json!({"name": "ids", "target": {"kind": "all"},
               "columns": {"kind": "classification", "classification": "internal"}, "function": {"kind": "hash"}}),
    )
    .await
    .expect(201);

    let edge = app.gateway_key("edge").await;
    let bundle = app.get("/api/v1/bundle", &edge).await.expect(200).json();
    assert_eq!(bundle["format"], 3);
    let first = bundle["content"]["mask_key"].as_str().expect("a mask key").to_string();
    assert_eq!(first.len(), 64);
    assert!(
        first.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{first}"
    );
    assert_eq!(bundle["content"]["issuers"], json!([]));
    app.get("/api/v1/bundle", &sal).await.problem(403, "forbidden");
    let changes = app.get("/api/v1/changes?limit=500", &admin).await.expect(200).json();
    let created: Vec<&Value> = changes["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|c| c["resource_type"] == "mask_key")
        .collect();
    assert_eq!(created.len(), 1, "created once, at first start");
    assert_eq!(
        (created[0]["action"].as_str(), created[0]["actor"].as_str()),
        (Some("create"), Some("system"))
    );
    scan_for(app, &[&first], &[&admin, &sal, &nia]).await;

    // Rotation: admins only; it moves the version and logs it, without the key.
    let rotate = "/api/v1/mask-key/rotate";
    for key in [&sal, &nia] {
        app.send(Method::POST, rotate, Some(key), None, None)
            .await
            .problem(403, "forbidden");
    }
    let version = app.version().await;
    let reply = app
        .send(Method::POST, rotate, Some(&admin), None, None)
        .await
        .expect(204);
    assert!(reply.text.is_empty());
    assert_eq!(app.version().await, version + 1);
    let rotated = app.get("/api/v1/bundle", &edge).await.expect(200).json();
    let second = rotated["content"]["mask_key"].as_str().expect("a mask key").to_string();
    assert_ne!(second, first);
    assert_eq!(rotated["version"], version + 1);
    assert_ne!(rotated["hash"], bundle["hash"]);
    let log = app
        .get(&format!("/api/v1/changes?after={version}"), &admin)
        .await
        .expect(200)
        .json();
    assert_eq!(log["items"][0]["action"], "rotate");
    assert_eq!(log["items"][0]["resource_type"], "mask_key");
    assert_eq!(log["items"][0]["actor"], "admin");
    scan_for(app, &[&first, &second], &[&admin, &sal, &nia]).await;

    // The key outlives a restart.
    app.restart().await;
    assert_eq!(app.version().await, version + 1);
    let again = app.get("/api/v1/bundle", &edge).await.expect(200).json();
    assert_eq!(again["content"]["mask_key"], second.as_str());
}

/// Asserts that no answer but the bundle holds any of `secrets`, for any of `keys`.
async fn scan_for(app: &TestApp, secrets: &[&str], keys: &[&str]) {
    let paths = [
        "/api/v1/version",
        "/api/v1/whoami",
        "/api/v1/domains",
        "/api/v1/domains/sales",
        "/api/v1/products",
        "/api/v1/domains/sales/products/orders",
        "/api/v1/domains/sales/products/orders/contracts",
        "/api/v1/changes?limit=500",
        "/api/v1/principals",
        "/api/v1/principals/admin/keys",
        "/api/v1/teams",
        "/api/v1/gateways",
        "/api/v1/grants",
        "/api/v1/masks",
        "/api/v1/masks/ids",
        "/api/v1/row-filters",
        "/api/v1/lineage",
        "/api/v1/access-requests",
        "/metrics",
        "/api/v1/openapi.json",
    ];
    for key in keys {
        for path in paths {
            let reply = app.get(path, key).await;
            for secret in secrets {
                assert!(!reply.text.contains(secret), "{path} holds the mask key");
            }
        }
    }
    for path in ["/health", "/ready"] {
        let reply = app.send(Method::GET, path, None, None, None).await;
        for secret in secrets {
            assert!(!reply.text.contains(secret), "{path} holds the mask key");
        }
    }
}

pub async fn drift_reports_mark_products_drifted(app: &mut TestApp) {
    let (sal, _cus, nia) = two_domains(app).await;
    let admin = app.admin_key.clone();
    let edge = app.gateway_key("edge").await;
    register(app, "sales", &sal, "orders", "orders").await.expect(201);
    register(app, "sales", &sal, "returns", "returns").await.expect(201);
    app.contract(
        "sales",
        "orders",
        &sal,
        "application/yaml",
        &odcs_yaml("orders", "1.0.0"),
    )
    .await
    .expect(201);
    let quality = "/api/v1/domains/sales/products/orders/quality";
    let healthy = json!({"contract_version": "1.0.0", "results": [
        {"key": "a", "path": "orders.a", "rule": "a", "status": "pass"}]});
    app.post(quality, &sal, healthy.clone()).await.expect(201);
    let drift = json!([{"domain": "sales", "product": "orders", "major_version": 1, "table_version": 4,
        "serving_version": 3, "mismatches": [{"rule": "extra-column", "path": "o_secret",
        "expected": "no such column", "actual": "Utf8"}]}]);
    let report = |drift: &Value| json!({"version": 1, "hash": "h", "drift": drift});
    assert_eq!(health(app, &nia).await, "healthy");

    put(app, &edge, "edge_a", report(&drift)).await.expect(204);
    for key in [&sal, &nia, &admin] {
        assert_eq!(health(app, key).await, "drifted");
    }
    let gateways = app.get("/api/v1/gateways", &admin).await.expect(200).json();
    assert_eq!(gateways[0]["name"], "edge_a");
    assert_eq!(gateways[0]["drift"], drift);
    // A quality run does not clear it.
    let run = app.post(quality, &sal, healthy.clone()).await.expect(201).json();
    assert_eq!(run["health"], "healthy");
    assert_eq!(health(app, &nia).await, "drifted");
    let version = app.version().await;
    // While any gateway lists it, it stays drifted; an empty list clears a gateway's.
    put(app, &edge, "edge_b", report(&drift)).await.expect(204);
    put(app, &edge, "edge_a", report(&json!([]))).await.expect(204);
    assert_eq!(health(app, &nia).await, "drifted");
    put(app, &edge, "edge_b", json!({"version": 1, "hash": "h"}))
        .await
        .expect(204);
    assert_eq!(health(app, &nia).await, "healthy", "back to the last quality run's");
    let gateways = app.get("/api/v1/gateways", &admin).await.expect(200).json();
    assert_eq!(gateways[1]["drift"], json!([]));
    // The gateway in this process reports the same way.
    let embedded: GatewayReport = serde_json::from_value(report(&drift)).expect("a report");
    app.catalog()
        .record_gateway_report("embedded", &embedded)
        .await
        .expect("recorded");
    assert_eq!(health(app, &sal).await, "drifted");
    let cleared: GatewayReport = serde_json::from_value(report(&json!([]))).expect("a report");
    app.catalog()
        .record_gateway_report("embedded", &cleared)
        .await
        .expect("recorded");
    assert_eq!(health(app, &sal).await, "healthy");
    assert_eq!(app.version().await, version, "reports are observations, not changes");

    // Drift lists are checked.
    for bad in [
        json!([{"domain": "Sales", "product": "orders", "major_version": 1, "table_version": 4, "mismatches": []}]),
        json!([{"domain": "sales", "product": "orders", "major_version": 0, "table_version": 4, "mismatches": []}]),
        json!([{"domain": "sales", "product": "orders", "major_version": 1, "mismatches": []}]),
        json!([{"domain": "sales", "product": "orders", "major_version": 1, "table_version": 4, "mismatches": [],
                "extra": true}]),
    ] {
        put(app, &edge, "edge_c", report(&bad)).await.problem(422, "validation");
    }
    app.send(
        Method::PUT,
        "/api/v1/gateways/edge_c",
        Some(&sal),
        Some(report(&drift)),
        None,
    )
    .await
    .problem(403, "forbidden");
    assert_eq!(health(app, &nia).await, "healthy");
}

/// Reports as gateway `name`.
async fn put(app: &TestApp, key: &str, name: &str, body: Value) -> Reply {
    app.send(
        Method::PUT,
        &format!("/api/v1/gateways/{name}"),
        Some(key),
        Some(body),
        None,
    )
    .await
}

/// The health of sales.orders as `key` sees it, the same in its page and in
/// the listing (where sales.returns, which no gateway reports, stays `unknown`).
async fn health(app: &TestApp, key: &str) -> String {
    let one = app
        .get("/api/v1/domains/sales/products/orders", key)
        .await
        .expect(200)
        .json();
    let listed = app.get("/api/v1/products", key).await.expect(200).json();
    let of = |name: &str| {
        listed["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["health"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        one["health"].as_str(),
        Some(of("orders").as_str()),
        "get and list agree"
    );
    assert_eq!(of("returns"), "unknown");
    of("orders")
}
