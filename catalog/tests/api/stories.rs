//! Conformance stories: each runs unchanged on SQLite and on PostgreSQL.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, odcs_with_columns, odcs_yaml};

/// A mesh of one domain: team `sales_team` (member `owner`) owns domain `sales`;
/// `analyst` belongs to no team. Returns (owner key, analyst key).
async fn small_mesh(app: &TestApp) -> (String, String) {
    let owner = app.user("owner", json!({})).await;
    let analyst = app
        .user(
            "analyst",
            json!({"groups": ["analysts"], "regions": ["EUROPE"], "purposes": ["analytics"]}),
        )
        .await;
    app.team("sales_team", &["owner"]).await;
    app.domain("sales", "sales_team").await;
    (owner, analyst)
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["name"].as_str().expect("name").to_string())
        .collect()
}

pub async fn authentication(app: &mut TestApp) {
    let me = app.get("/api/v1/whoami", &app.admin_key).await.expect(200).json();
    assert_eq!(me["principal"]["name"], "admin");
    assert_eq!(me["principal"]["admin"], true);

    let reply = app.send(Method::GET, "/api/v1/domains", None, None, None).await;
    assert_eq!(reply.header("www-authenticate"), Some("Bearer realm=\"tessera\""));
    reply.problem(401, "unauthorized");
    let wrong_secret = format!("{}{}", &app.admin_key[..app.admin_key.len() - 1], "0");
    for bad in [
        "nonsense",
        "tsk_",
        wrong_secret.as_str(),
        "tsk_ffffffffffff_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    ] {
        app.get("/api/v1/domains", bad).await.problem(401, "unauthorized");
    }
    // Basic auth is not an API key.
    let reply = app
        .http
        .get(format!("{}/api/v1/domains", app.base))
        .basic_auth("admin", Some(&app.admin_key))
        .send()
        .await
        .expect("sent");
    assert_eq!(reply.status(), 401);
}

pub async fn principals_and_keys(app: &mut TestApp) {
    let created = app
        .post(
            "/api/v1/principals",
            &app.admin_key,
            json!({"name": "ana", "kind": "user", "display_name": "Ana", "email": "ana@example.com",
                   "attributes": {"groups": ["analysts"], "regions": ["EUROPE", "ASIA"], "purposes": ["analytics"]}}),
        )
        .await
        .expect(201);
    assert_eq!(created.header("location"), Some("/api/v1/principals/ana"));
    assert_eq!(created.etag(), "\"1\"");
    let body = created.json();
    assert_eq!(body["attributes"]["regions"], json!(["EUROPE", "ASIA"]));
    assert_eq!(body["admin"], false);

    app.post(
        "/api/v1/principals",
        &app.admin_key,
        json!({"name": "ana", "kind": "user"}),
    )
    .await
    .problem(409, "conflict");
    app.post(
        "/api/v1/principals",
        &app.admin_key,
        json!({"name": "etl", "kind": "service"}),
    )
    .await
    .expect(201);

    // A key for ana works at once, is listed without its secret, and dies when revoked.
    let issued = app
        .post(
            "/api/v1/principals/ana/keys",
            &app.admin_key,
            json!({"description": "laptop"}),
        )
        .await
        .expect(201)
        .json();
    let key = issued["key"].as_str().expect("key").to_string();
    let key_id = issued["api_key"]["id"].as_str().expect("id").to_string();
    assert!(key.starts_with(&format!("tsk_{key_id}_")));
    let me = app.get("/api/v1/whoami", &key).await.expect(200).json();
    assert_eq!(me["principal"]["name"], "ana");
    let keys = app.get("/api/v1/principals/ana/keys", &key).await.expect(200);
    assert!(
        !keys.text.contains(&key[key.len() - 64..]),
        "a secret is never shown again"
    );
    assert_eq!(keys.json()["items"][0]["description"], "laptop");

    // Non-admins see only themselves.
    app.get("/api/v1/principals", &key).await.problem(403, "forbidden");
    app.get("/api/v1/principals/etl", &key).await.problem(403, "forbidden");
    app.get("/api/v1/principals/ana", &key).await.expect(200);
    app.post("/api/v1/principals", &key, json!({"name": "x", "kind": "user"}))
        .await
        .problem(403, "forbidden");
    app.post("/api/v1/principals/etl/keys", &key, json!({}))
        .await
        .problem(403, "forbidden");

    // Updates follow the ETag.
    let current = app.get("/api/v1/principals/ana", &app.admin_key).await.expect(200);
    let etag = current.etag();
    let updated = app
        .patch(
            "/api/v1/principals/ana",
            &app.admin_key,
            json!({"attributes": {"regions": ["AMERICA"]}}),
            Some(&etag),
        )
        .await
        .expect(200);
    assert_eq!(updated.etag(), "\"2\"");
    assert_eq!(updated.json()["attributes"]["regions"], json!(["AMERICA"]));
    assert_eq!(updated.json()["display_name"], "Ana", "untouched fields stay");
    app.patch(
        "/api/v1/principals/ana",
        &app.admin_key,
        json!({"display_name": "A"}),
        Some(&etag),
    )
    .await
    .problem(412, "precondition-failed");

    // Paging through principals: admin, ana, etl.
    let first = app
        .get("/api/v1/principals?limit=2", &app.admin_key)
        .await
        .expect(200)
        .json();
    assert_eq!(names(&first), ["admin", "ana"]);
    let cursor = first["next_cursor"].as_str().expect("more");
    let second = app
        .get(&format!("/api/v1/principals?limit=2&cursor={cursor}"), &app.admin_key)
        .await
        .expect(200)
        .json();
    assert_eq!(names(&second), ["etl"]);
    assert!(second.get("next_cursor").is_none());

    // Revocation is immediate; expiry must lie ahead.
    app.delete(&format!("/api/v1/principals/ana/keys/{key_id}"), &app.admin_key)
        .await
        .expect(200);
    app.get("/api/v1/whoami", &key).await.problem(401, "unauthorized");
    app.post(
        "/api/v1/principals/ana/keys",
        &app.admin_key,
        json!({"expires_at": "2001-01-01T00:00:00Z"}),
    )
    .await
    .problem(422, "validation");
    let future = app
        .post(
            "/api/v1/principals/ana/keys",
            &app.admin_key,
            json!({"expires_at": "2999-01-01T00:00:00Z"}),
        )
        .await
        .expect(201)
        .json();
    let future_key = future["key"].as_str().expect("key").to_string();
    app.get("/api/v1/whoami", &future_key).await.expect(200);

    // Deleting a principal takes its keys with it.
    app.delete("/api/v1/principals/ana", &app.admin_key).await.expect(204);
    app.get("/api/v1/whoami", &future_key)
        .await
        .problem(401, "unauthorized");
    app.get("/api/v1/principals/ana", &app.admin_key)
        .await
        .problem(404, "not-found");
}

pub async fn last_admin_is_protected(app: &mut TestApp) {
    app.delete("/api/v1/principals/admin", &app.admin_key)
        .await
        .problem(409, "conflict");
    app.patch(
        "/api/v1/principals/admin",
        &app.admin_key,
        json!({"admin": false}),
        None,
    )
    .await
    .problem(409, "conflict");
    // With a second admin, the first may step down.
    app.post(
        "/api/v1/principals",
        &app.admin_key,
        json!({"name": "root2", "kind": "user", "admin": true}),
    )
    .await
    .expect(201);
    let root2 = app.key_for("root2").await;
    app.patch("/api/v1/principals/admin", &root2, json!({"admin": false}), None)
        .await
        .expect(200);
    app.get("/api/v1/principals", &app.admin_key)
        .await
        .problem(403, "forbidden");
}

pub async fn teams_and_members(app: &mut TestApp) {
    let alice = app.user("alice", json!({})).await;
    let bob = app.user("bob", json!({})).await;
    let team = app
        .post(
            "/api/v1/teams",
            &app.admin_key,
            json!({"name": "sales_team", "title": "Sales", "members": ["alice", "alice"]}),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(team["members"], json!(["alice"]));
    app.post(
        "/api/v1/teams",
        &app.admin_key,
        json!({"name": "ghosts", "members": ["nobody"]}),
    )
    .await
    .problem(422, "validation");
    app.get("/api/v1/teams/ghosts", &alice).await.problem(404, "not-found");

    // Members manage their team; others may not.
    app.put("/api/v1/teams/sales_team/members/bob", &bob)
        .await
        .problem(403, "forbidden");
    let t = app
        .put("/api/v1/teams/sales_team/members/bob", &alice)
        .await
        .expect(200)
        .json();
    assert_eq!(t["members"], json!(["alice", "bob"]));
    let again = app
        .put("/api/v1/teams/sales_team/members/bob", &alice)
        .await
        .expect(200)
        .json();
    assert_eq!(again["revision"], t["revision"], "adding twice changes nothing");
    app.put("/api/v1/teams/sales_team/members/nobody", &alice)
        .await
        .problem(404, "not-found");
    let t = app
        .delete("/api/v1/teams/sales_team/members/alice", &bob)
        .await
        .expect(200)
        .json();
    assert_eq!(t["members"], json!(["bob"]));
    app.delete("/api/v1/teams/sales_team/members/alice", &bob)
        .await
        .problem(404, "not-found");
    let t = app
        .patch(
            "/api/v1/teams/sales_team",
            &bob,
            json!({"description": "Sells things"}),
            None,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(t["title"], "Sales");
    assert_eq!(t["description"], "Sells things");

    let me = app.get("/api/v1/whoami", &bob).await.expect(200).json();
    assert_eq!(me["teams"], json!(["sales_team"]));

    // A team that owns a domain cannot go; an unused one can (admins only).
    app.domain("sales", "sales_team").await;
    app.delete("/api/v1/teams/sales_team", &bob)
        .await
        .problem(403, "forbidden");
    app.delete("/api/v1/teams/sales_team", &app.admin_key)
        .await
        .problem(409, "conflict");
    app.team("spare", &[]).await;
    app.delete("/api/v1/teams/spare", &app.admin_key).await.expect(204);
    let listed = app.get("/api/v1/teams", &alice).await.expect(200).json();
    assert_eq!(names(&listed), ["sales_team"]);
}

pub async fn domains(app: &mut TestApp) {
    let (owner, analyst) = small_mesh(app).await;
    app.team("other_team", &[]).await;
    let d = app.get("/api/v1/domains/sales", &analyst).await.expect(200);
    assert_eq!(d.etag(), "\"1\"");
    assert_eq!(d.json()["owner_team"], "sales_team");
    assert_eq!(d.json()["title"], "sales", "title defaults to the name");

    app.post(
        "/api/v1/domains",
        &owner,
        json!({"name": "hr", "owner_team": "sales_team"}),
    )
    .await
    .problem(403, "forbidden");
    app.post(
        "/api/v1/domains",
        &app.admin_key,
        json!({"name": "hr", "owner_team": "no_team"}),
    )
    .await
    .problem(422, "validation");
    app.post(
        "/api/v1/domains",
        &app.admin_key,
        json!({"name": "sales", "owner_team": "sales_team"}),
    )
    .await
    .problem(409, "conflict");

    // Owners edit their domain's text, not its ownership; others edit nothing.
    let d = app
        .patch(
            "/api/v1/domains/sales",
            &owner,
            json!({"title": "Sales", "description": "Orders"}),
            Some("\"1\""),
        )
        .await
        .expect(200);
    assert_eq!(d.etag(), "\"2\"");
    app.patch(
        "/api/v1/domains/sales",
        &owner,
        json!({"owner_team": "other_team"}),
        None,
    )
    .await
    .problem(403, "forbidden");
    app.patch("/api/v1/domains/sales", &analyst, json!({"title": "x"}), None)
        .await
        .problem(403, "forbidden");
    app.patch("/api/v1/domains/nowhere", &owner, json!({"title": "x"}), None)
        .await
        .problem(404, "not-found");
    let moved = app
        .patch(
            "/api/v1/domains/sales",
            &app.admin_key,
            json!({"owner_team": "other_team"}),
            None,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(moved["owner_team"], "other_team");
    app.patch("/api/v1/domains/sales", &owner, json!({"title": "x"}), None)
        .await
        .problem(403, "forbidden");

    // A domain with products cannot be deleted.
    app.product("sales", &app.admin_key, json!({"name": "orders"})).await;
    app.delete("/api/v1/domains/sales", &app.admin_key)
        .await
        .problem(409, "conflict");
    app.delete("/api/v1/domains/sales/products/orders", &app.admin_key)
        .await
        .expect(204);
    app.delete("/api/v1/domains/sales", &owner)
        .await
        .problem(403, "forbidden");
    app.delete("/api/v1/domains/sales", &app.admin_key).await.expect(204);
    app.get("/api/v1/domains/sales", &owner).await.problem(404, "not-found");
}

pub async fn products_and_visibility(app: &mut TestApp) {
    let (owner, analyst) = small_mesh(app).await;
    let created = app
        .post(
            "/api/v1/domains/sales/products",
            &owner,
            json!({"name": "orders", "title": "Orders", "tags": ["tpch", "core", "tpch"],
                   "output_ports": [{"major_version": 1, "location": "orders"}]}),
        )
        .await
        .expect(201);
    assert_eq!(
        created.header("location"),
        Some("/api/v1/domains/sales/products/orders")
    );
    let p = created.json();
    assert_eq!(p["status"], "draft");
    assert_eq!(p["visibility"], "discoverable");
    assert_eq!(p["owner_team"], "sales_team", "defaults to the domain's team");
    assert_eq!(p["tags"], json!(["core", "tpch"]), "sorted, deduplicated");
    assert!(p["latest_contract_version"].is_null());

    // Consumers may not register products in someone else's domain.
    app.post("/api/v1/domains/sales/products", &analyst, json!({"name": "x"}))
        .await
        .problem(403, "forbidden");
    app.post("/api/v1/domains/sales/products", &owner, json!({"name": "orders"}))
        .await
        .problem(409, "conflict");
    app.post("/api/v1/domains/nowhere/products", &owner, json!({"name": "x"}))
        .await
        .problem(404, "not-found");

    // Discoverable: everyone reads it, only owners change it.
    app.get("/api/v1/domains/sales/products/orders", &analyst)
        .await
        .expect(200);
    app.patch(
        "/api/v1/domains/sales/products/orders",
        &analyst,
        json!({"title": "x"}),
        None,
    )
    .await
    .problem(403, "forbidden");
    let p = app
        .patch(
            "/api/v1/domains/sales/products/orders",
            &owner,
            json!({"output_ports": [{"major_version": 2, "location": "orders_v2"},
                                    {"major_version": 1, "location": "orders"}]}),
            None,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(
        p["output_ports"][0]["major_version"], 1,
        "ports sorted by major version"
    );
    app.patch(
        "/api/v1/domains/sales/products/orders",
        &owner,
        json!({"output_ports": [{"major_version": 1, "location": "a"}, {"major_version": 1, "location": "b"}]}),
        None,
    )
    .await
    .problem(422, "validation");

    // Restricted: invisible to non-owners, as if it did not exist.
    app.product("sales", &owner, json!({"name": "margins", "visibility": "restricted"}))
        .await;
    app.get("/api/v1/domains/sales/products/margins", &analyst)
        .await
        .problem(404, "not-found");
    app.patch(
        "/api/v1/domains/sales/products/margins",
        &analyst,
        json!({"title": "x"}),
        None,
    )
    .await
    .problem(404, "not-found");
    app.get("/api/v1/domains/sales/products/margins/contracts", &analyst)
        .await
        .problem(404, "not-found");
    let seen = app.get("/api/v1/products", &analyst).await.expect(200).json();
    assert_eq!(names(&seen), ["orders"]);
    let seen = app
        .get("/api/v1/domains/sales/products", &analyst)
        .await
        .expect(200)
        .json();
    assert_eq!(names(&seen), ["orders"]);
    let seen = app.get("/api/v1/products", &owner).await.expect(200).json();
    assert_eq!(names(&seen), ["margins", "orders"]);
    let seen = app.get("/api/v1/products", &app.admin_key).await.expect(200).json();
    assert_eq!(names(&seen), ["margins", "orders"]);
    // Joining the owning team reveals it.
    app.put("/api/v1/teams/sales_team/members/analyst", &owner)
        .await
        .expect(200);
    app.get("/api/v1/domains/sales/products/margins", &analyst)
        .await
        .expect(200);

    // A product may be owned by another team than its domain's: both may edit it.
    let carol = app.user("carol", json!({})).await;
    app.team("finance", &["carol"]).await;
    app.product(
        "sales",
        &owner,
        json!({"name": "invoices", "owner_team": "finance", "visibility": "restricted"}),
    )
    .await;
    app.patch(
        "/api/v1/domains/sales/products/invoices",
        &carol,
        json!({"title": "Invoices"}),
        None,
    )
    .await
    .expect(200);
    app.patch(
        "/api/v1/domains/sales/products/orders",
        &carol,
        json!({"title": "x"}),
        None,
    )
    .await
    .problem(403, "forbidden");
}

pub async fn product_listing_filters_and_pages(app: &mut TestApp) {
    let (owner, analyst) = small_mesh(app).await;
    app.team("supply_team", &["owner"]).await;
    app.domain("supply", "supply_team").await;
    for (domain, name, tags, description) in [
        ("sales", "orders", json!(["tpch", "core"]), "Every order placed"),
        ("sales", "lineitem", json!(["tpch"]), "Order lines, 50% of the data"),
        ("sales", "returns", json!([]), "Returned goods"),
        ("supply", "part", json!(["tpch"]), "Parts we sell"),
        ("supply", "supplier", json!(["tpch", "pii"]), "Who supplies us"),
    ] {
        app.product(
            domain,
            &owner,
            json!({"name": name, "tags": tags, "description": description}),
        )
        .await;
    }
    let app: &TestApp = app;
    let all = |q: &str| {
        let url = format!("/api/v1/products?{q}");
        let key = analyst.clone();
        async move { names(&app.get(&url, &key).await.expect(200).json()) }
    };
    assert_eq!(all("domain=supply").await, ["part", "supplier"]);
    assert_eq!(all("tag=tpch").await, ["lineitem", "orders", "part", "supplier"]);
    assert_eq!(all("tag=pii&domain=supply").await, ["supplier"]);
    assert_eq!(all("owner=supply_team").await, ["part", "supplier"]);
    assert_eq!(all("status=draft").await.len(), 5);
    assert_eq!(all("status=published").await.len(), 0);
    assert_eq!(all("visibility=restricted").await.len(), 0);
    assert_eq!(
        all("q=ORDER").await,
        ["lineitem", "orders"],
        "case-insensitive, in name and description"
    );
    assert_eq!(all("q=50%25").await, ["lineitem"], "% is matched literally");
    assert_eq!(all("q=_").await, Vec::<String>::new(), "_ is matched literally");
    assert_eq!(all("q=PII").await, ["supplier"], "tags are searched");

    // Pages of two, in (domain, name) order, without gaps or repeats.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("/api/v1/products?limit=2&cursor={c}"),
            None => "/api/v1/products?limit=2".to_string(),
        };
        let page = app.get(&url, &analyst).await.expect(200).json();
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|p| {
            format!(
                "{}.{}",
                p["domain"].as_str().expect("d"),
                p["name"].as_str().expect("n")
            )
        }));
        match page.get("next_cursor").and_then(Value::as_str) {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "sales.lineitem",
            "sales.orders",
            "sales.returns",
            "supply.part",
            "supply.supplier"
        ]
    );
    app.get("/api/v1/products?limit=0", &analyst)
        .await
        .problem(422, "validation");
    app.get("/api/v1/products?limit=501", &analyst)
        .await
        .problem(422, "validation");
    app.get("/api/v1/products?cursor=%%%", &analyst)
        .await
        .problem(400, "bad-request");
    app.get("/api/v1/products?status=live", &analyst)
        .await
        .problem(400, "bad-request");
}

pub async fn lineage(app: &mut TestApp) {
    let (owner, analyst) = small_mesh(app).await;
    app.product("sales", &owner, json!({"name": "orders"})).await;
    app.product("sales", &owner, json!({"name": "lineitem"})).await;
    app.product(
        "sales",
        &owner,
        json!({"name": "revenue", "input_ports": ["sales.orders", "sales.lineitem"]}),
    )
    .await;
    app.product(
        "sales",
        &owner,
        json!({"name": "forecast", "input_ports": ["sales.revenue"]}),
    )
    .await;
    app.product(
        "sales",
        &owner,
        json!({"name": "secret", "visibility": "restricted", "input_ports": ["sales.forecast"]}),
    )
    .await;
    app.post(
        "/api/v1/domains/sales/products",
        &owner,
        json!({"name": "x", "input_ports": ["sales.nothing"]}),
    )
    .await
    .problem(422, "validation");
    app.post(
        "/api/v1/domains/sales/products",
        &owner,
        json!({"name": "x", "input_ports": ["not a ref"]}),
    )
    .await
    .problem(422, "validation");
    // A cycle is refused, and nothing of the update is kept.
    let before = app
        .get("/api/v1/domains/sales/products/orders", &owner)
        .await
        .expect(200)
        .json();
    let refused = app
        .patch(
            "/api/v1/domains/sales/products/orders",
            &owner,
            json!({"title": "changed", "input_ports": ["sales.forecast"]}),
            None,
        )
        .await
        .problem(422, "validation");
    assert!(
        refused["detail"].as_str().expect("detail").contains("cycle"),
        "{refused}"
    );
    let after = app
        .get("/api/v1/domains/sales/products/orders", &owner)
        .await
        .expect(200)
        .json();
    assert_eq!(before, after);

    let graph = app
        .get("/api/v1/domains/sales/products/revenue/lineage", &analyst)
        .await
        .expect(200)
        .json();
    let nodes: BTreeSet<&str> = graph["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        nodes,
        BTreeSet::from(["sales.forecast", "sales.lineitem", "sales.orders", "sales.revenue"])
    );
    let edges: BTreeSet<(String, String)> = graph["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            (
                e["from"].as_str().expect("f").to_string(),
                e["to"].as_str().expect("t").to_string(),
            )
        })
        .collect();
    assert_eq!(edges.len(), 3);
    assert!(edges.contains(&("sales.revenue".into(), "sales.forecast".into())));
    // The owner also sees the restricted reader downstream.
    let graph = app
        .get("/api/v1/domains/sales/products/revenue/lineage", &owner)
        .await
        .expect(200)
        .json();
    assert_eq!(graph["nodes"].as_array().expect("nodes").len(), 5);
    let whole = app.get("/api/v1/lineage", &analyst).await.expect(200).json();
    assert_eq!(whole["nodes"].as_array().expect("nodes").len(), 4);
    assert_eq!(whole["edges"].as_array().expect("edges").len(), 3);
    // An upstream still read by others cannot be deleted.
    app.delete("/api/v1/domains/sales/products/orders", &owner)
        .await
        .problem(409, "conflict");
}

pub async fn lifecycle(app: &mut TestApp) {
    let (owner, _analyst) = small_mesh(app).await;
    let table = app.data_dir().join("lake/sales/orders");
    app.product(
        "sales",
        &owner,
        json!({"name": "orders", "output_ports": [{"major_version": 1, "location": table.to_str().expect("utf-8")}]}),
    )
    .await;
    let path = "/api/v1/domains/sales/products/orders";
    let refused = app
        .patch(path, &owner, json!({"status": "published"}), None)
        .await
        .problem(409, "illegal-transition");
    assert!(
        refused["detail"].as_str().expect("detail").contains("contract"),
        "{refused}"
    );
    app.patch(
        path,
        &owner,
        json!({"status": "deprecated", "sunset_date": "2030-01-01"}),
        None,
    )
    .await
    .problem(409, "illegal-transition");
    app.contract(
        "sales",
        "orders",
        &owner,
        "application/yaml",
        &odcs_yaml("orders", "1.0.0"),
    )
    .await
    .expect(201);
    // Publication needs the table, matching the contract.
    let refused = app
        .patch(path, &owner, json!({"status": "published"}), None)
        .await
        .problem(409, "table-mismatch");
    assert!(
        refused["detail"].as_str().expect("detail").contains("no Delta table"),
        "{refused}"
    );
    crate::helpers::write_table(&table, &["id", "surplus"]).await;
    let refused = app
        .patch(path, &owner, json!({"status": "published"}), None)
        .await
        .problem(409, "table-mismatch");
    assert_eq!(refused["mismatches"][0]["rule"], "extra-column", "{refused}");
    crate::helpers::write_table(&table, &["id"]).await;
    app.patch(
        path,
        &owner,
        json!({"status": "published", "sunset_date": "2030-01-01"}),
        None,
    )
    .await
    .problem(422, "validation");
    let p = app
        .patch(path, &owner, json!({"status": "published"}), None)
        .await
        .expect(200)
        .json();
    assert_eq!(p["status"], "published");
    app.patch(path, &owner, json!({"status": "draft"}), None)
        .await
        .problem(409, "illegal-transition");
    app.patch(path, &owner, json!({"status": "retired"}), None)
        .await
        .problem(409, "illegal-transition");
    app.delete(path, &owner).await.problem(409, "illegal-transition");
    app.patch(path, &owner, json!({"status": "deprecated"}), None)
        .await
        .problem(409, "illegal-transition");
    let p = app
        .patch(
            path,
            &owner,
            json!({"status": "deprecated", "sunset_date": "2030-06-30"}),
            None,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(p["sunset_date"], "2030-06-30");
    let p = app
        .patch(path, &owner, json!({"status": "retired"}), None)
        .await
        .expect(200)
        .json();
    assert_eq!(p["status"], "retired");
    for to in ["published", "deprecated", "draft"] {
        app.patch(path, &owner, json!({"status": to}), None)
            .await
            .problem(409, "illegal-transition");
    }
    app.contract(
        "sales",
        "orders",
        &owner,
        "application/yaml",
        &odcs_yaml("orders", "2.0.0"),
    )
    .await
    .problem(409, "illegal-transition");
    // The log names each transition.
    let changes = app
        .get("/api/v1/changes?limit=500", &app.admin_key)
        .await
        .expect(200)
        .json();
    let actions: Vec<&str> = changes["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|c| c["resource"] == "/domains/sales/products/orders" && c["resource_type"] == "product")
        .map(|c| c["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["create", "published", "deprecated", "retired"]);
    app.delete(path, &owner).await.expect(204);
}

pub async fn contracts(app: &mut TestApp) {
    let (owner, analyst) = small_mesh(app).await;
    app.product("sales", &owner, json!({"name": "orders"})).await;
    let yaml = format!("# kept as given, comments too\n{}", odcs_yaml("orders", "1.0.0"));
    let created = app
        .contract("sales", "orders", &owner, "application/yaml", &yaml)
        .await
        .expect(201);
    assert_eq!(
        created.header("location"),
        Some("/api/v1/domains/sales/products/orders/contracts/1.0.0")
    );
    let c = created.json();
    assert_eq!(c["version"], "1.0.0");
    assert_eq!(c["api_version"], "v3.1.0");
    assert_eq!(c["media_type"], "application/yaml");
    assert_eq!(c["created_by"], "owner");

    // Read back byte for byte, in its own media type.
    let doc = app
        .get(
            "/api/v1/domains/sales/products/orders/contracts/1.0.0/document",
            &analyst,
        )
        .await
        .expect(200);
    assert_eq!(doc.text, yaml);
    assert_eq!(doc.header("content-type"), Some("application/yaml"));

    // JSON too; versions are immutable and only move forward.
    let json_doc = r#"{"apiVersion":"v3.1.0","kind":"DataContract","id":"orders","version":"1.10.0","status":"active","schema":[{"name":"orders","properties":[{"name":"id","logicalType":"integer","physicalType":"bigint","required":true}]}]}"#;
    app.contract("sales", "orders", &owner, "application/json", json_doc)
        .await
        .expect(201);
    app.contract(
        "sales",
        "orders",
        &owner,
        "application/yaml",
        &odcs_yaml("orders", "1.9.0"),
    )
    .await
    .problem(409, "conflict");
    app.contract(
        "sales",
        "orders",
        &owner,
        "application/yaml",
        &odcs_yaml("orders", "1.10.0"),
    )
    .await
    .problem(409, "conflict");
    app.contract(
        "sales",
        "orders",
        &owner,
        "application/yaml",
        &odcs_yaml("orders", "1.2"),
    )
    .await
    .problem(422, "validation");
    app.contract("sales", "orders", &owner, "application/yaml", "version: [1")
        .await
        .problem(400, "bad-request");
    app.contract("sales", "orders", &owner, "application/json", "{\"version\": ")
        .await
        .problem(400, "bad-request");
    app.contract("sales", "orders", &owner, "text/plain", &odcs_yaml("orders", "3.0.0"))
        .await
        .problem(415, "unsupported-media-type");
    app.contract(
        "sales",
        "orders",
        &analyst,
        "application/yaml",
        &odcs_yaml("orders", "3.0.0"),
    )
    .await
    .problem(403, "forbidden");
    app.contract("sales", "nothing", &owner, "application/yaml", &odcs_yaml("x", "1.0.0"))
        .await
        .problem(404, "not-found");
    app.contract(
        "sales",
        "orders",
        &owner,
        "application/yaml",
        &odcs_yaml("orders", "1.11.0"),
    )
    .await
    .expect(201);

    let listed = app
        .get("/api/v1/domains/sales/products/orders/contracts", &analyst)
        .await
        .expect(200)
        .json();
    let versions: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|v| v["version"].as_str().expect("v"))
        .collect();
    assert_eq!(versions, ["1.0.0", "1.10.0", "1.11.0"], "semantic-version order");
    let page = app
        .get("/api/v1/domains/sales/products/orders/contracts?limit=1", &analyst)
        .await
        .expect(200)
        .json();
    let cursor = page["next_cursor"].as_str().expect("more");
    let page = app
        .get(
            &format!("/api/v1/domains/sales/products/orders/contracts?limit=5&cursor={cursor}"),
            &analyst,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(page["items"][0]["version"], "1.10.0");
    let p = app
        .get("/api/v1/domains/sales/products/orders", &analyst)
        .await
        .expect(200)
        .json();
    assert_eq!(p["latest_contract_version"], "1.11.0");
    app.get("/api/v1/domains/sales/products/orders/contracts/9.9.9", &analyst)
        .await
        .problem(404, "not-found");
    let full = app
        .get("/api/v1/domains/sales/products/orders/contracts/1.10.0", &analyst)
        .await
        .expect(200)
        .json();
    assert_eq!(full["document"], json_doc);
    assert_eq!(full["media_type"], "application/json");
}

pub async fn change_log_and_watch(app: &mut TestApp) {
    let start = app.version().await;
    app.team("t", &[]).await;
    assert_eq!(app.version().await, start + 1, "one mutation, one step");
    // A refused mutation writes nothing and does not move the sequence.
    app.post("/api/v1/teams", &app.admin_key, json!({"name": "t"}))
        .await
        .problem(409, "conflict");
    assert_eq!(app.version().await, start + 1);
    app.patch("/api/v1/teams/t", &app.admin_key, json!({"title": "T"}), Some("\"1\""))
        .await
        .expect(200);
    let v = app.version().await;
    assert_eq!(v, start + 2);

    let log = app
        .get(&format!("/api/v1/changes?after={start}"), &app.admin_key)
        .await
        .expect(200)
        .json();
    let items = log["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["seq"], start + 1);
    assert_eq!(items[0]["action"], "create");
    assert_eq!(items[0]["actor"], "admin");
    assert!(items[0]["before"].is_null());
    assert_eq!(items[1]["action"], "update");
    assert_eq!(items[1]["before"]["title"], "t");
    assert_eq!(items[1]["after"]["title"], "T");
    // Every sequence number from 1 on is in the log, once.
    let all = app
        .get("/api/v1/changes?limit=500", &app.admin_key)
        .await
        .expect(200)
        .json();
    let seqs: Vec<i64> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, (1..=v).collect::<Vec<_>>());
    let page = app
        .get("/api/v1/changes?limit=1", &app.admin_key)
        .await
        .expect(200)
        .json();
    assert_eq!(page["next_cursor"], "1");

    let reader = app.user("reader", json!({})).await;
    app.get("/api/v1/changes", &reader).await.problem(403, "forbidden");

    // A watch behind the version answers at once; one at the version waits for
    // the next change.
    let v = app.version().await;
    let w = app
        .get(&format!("/api/v1/version/watch?after={}", v - 1), &reader)
        .await
        .expect(200)
        .json();
    assert_eq!(w["version"], v);
    let watcher = {
        let http = app.http.clone();
        let url = format!("{}/api/v1/version/watch?after={v}&timeout_secs=20", app.base);
        let key = reader.clone();
        tokio::spawn(async move {
            http.get(url)
                .bearer_auth(key)
                .send()
                .await
                .expect("sent")
                .json::<Value>()
                .await
        })
    };
    // Once the watch is parked, change something.
    app.watches_parked(1).await;
    app.team("t2", &[]).await;
    let woke = watcher.await.expect("joined").expect("json");
    assert_eq!(woke["version"], v + 1);
    // A watch with nothing happening answers at its timeout with the same version.
    let idle = app
        .get(
            &format!("/api/v1/version/watch?after={}&timeout_secs=1", v + 1),
            &reader,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(idle["version"], v + 1);
}

pub async fn concurrent_updates_with_if_match(app: &mut TestApp) {
    let (owner, _analyst) = small_mesh(app).await;
    app.product("sales", &owner, json!({"name": "orders"})).await;
    let path = "/api/v1/domains/sales/products/orders";
    let etag = app.get(path, &owner).await.expect(200).etag();
    let version = app.version().await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let http = app.http.clone();
        let url = format!("{}{path}", app.base);
        let key = owner.clone();
        let etag = etag.clone();
        tasks.push(tokio::spawn(async move {
            let r = http
                .patch(url)
                .bearer_auth(key)
                .header("if-match", etag)
                .json(&json!({"title": format!("writer {i}")}))
                .send()
                .await
                .expect("sent");
            (i, r.status().as_u16())
        }));
    }
    let mut winners = Vec::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.expect("joined") {
            (i, 200) => winners.push(i),
            (_, 412) => refused += 1,
            (_, other) => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer wins");
    assert_eq!(refused, 15);
    let after = app.get(path, &owner).await.expect(200);
    assert_eq!(
        after.json()["title"],
        format!("writer {}", winners[0]),
        "the winner's update is kept"
    );
    assert_eq!(after.json()["revision"], 2);
    assert_eq!(app.version().await, version + 1, "one change logged");
    // And with no If-Match, every update lands: none is lost.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let http = app.http.clone();
        let url = format!("{}{path}", app.base);
        let key = owner.clone();
        tasks.push(tokio::spawn(async move {
            http.patch(url)
                .bearer_auth(key)
                .json(&json!({"tags": [format!("t{i}")]}))
                .send()
                .await
                .expect("sent")
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("joined"), 200);
    }
    assert_eq!(app.get(path, &owner).await.expect(200).json()["revision"], 18);
    assert_eq!(app.version().await, version + 17);
}

pub async fn bad_input_is_refused_whole(app: &mut TestApp) {
    let (owner, _analyst) = small_mesh(app).await;
    app.product("sales", &owner, json!({"name": "orders"})).await;
    let version = app.version().await;
    let before = app
        .get("/api/v1/domains/sales/products/orders", &owner)
        .await
        .expect(200)
        .json();
    let products = "/api/v1/domains/sales/products";

    let malformed = app
        .raw(Method::POST, products, Some(&owner), "application/json", "{\"name\": ")
        .await;
    malformed.problem(400, "bad-request");
    app.raw(
        Method::POST,
        products,
        Some(&owner),
        "application/json",
        "{\"name\": \"a\"} trailing",
    )
    .await
    .problem(400, "bad-request");
    app.raw(Method::POST, products, Some(&owner), "text/plain", "{\"name\": \"a\"}")
        .await
        .problem(415, "unsupported-media-type");
    let unknown = app
        .post(products, &owner, json!({"name": "a", "colour": "red"}))
        .await
        .problem(422, "validation");
    assert!(
        unknown["detail"].as_str().expect("detail").contains("colour"),
        "{unknown}"
    );
    app.post(products, &owner, json!({"title": "no name"}))
        .await
        .problem(422, "validation");
    app.post(products, &owner, json!({"name": 7}))
        .await
        .problem(422, "validation");
    for bad in ["Orders", "1orders", "or-ders", "", "a.b", &"x".repeat(64)] {
        let body = app
            .post(products, &owner, json!({"name": bad}))
            .await
            .problem(422, "validation");
        assert_eq!(body["errors"][0]["path"], "name", "{body}");
    }
    app.post(products, &owner, json!({"name": "ok", "tags": [""]}))
        .await
        .problem(422, "validation");
    app.post(
        products,
        &owner,
        json!({"name": "ok", "output_ports": [{"major_version": 0, "location": "x"}]}),
    )
    .await
    .problem(422, "validation");
    app.post(
        "/api/v1/principals",
        &app.admin_key,
        json!({"name": "x", "kind": "robot"}),
    )
    .await
    .problem(422, "validation");
    app.post(
        "/api/v1/principals",
        &app.admin_key,
        json!({"name": "x", "kind": "user", "email": "nope"}),
    )
    .await
    .problem(422, "validation");
    app.post(
        "/api/v1/principals",
        &app.admin_key,
        json!({"name": "x", "kind": "user", "attributes": {"grups": []}}),
    )
    .await
    .problem(422, "validation");
    // serde would read a struct from an array of its fields: only objects pass.
    app.post(products, &owner, json!(["orders2"]))
        .await
        .problem(422, "validation");
    app.post("/api/v1/principals/owner/keys", &owner, json!([null, null]))
        .await
        .problem(422, "validation");
    app.post(
        "/api/v1/principals",
        &app.admin_key,
        json!({"name": "x", "kind": "user", "attributes": [[], [], []]}),
    )
    .await
    .problem(422, "validation");
    app.post(products, &owner, json!({"name": "ok", "output_ports": [[1, "x"]]}))
        .await
        .problem(422, "validation");
    // Query parameters outside their documented range.
    app.get("/api/v1/changes?after=-1", &app.admin_key)
        .await
        .problem(422, "validation");
    app.get("/api/v1/version/watch?after=-1", &owner)
        .await
        .problem(422, "validation");
    app.get("/api/v1/version/watch?after=0&timeout_secs=26", &owner)
        .await
        .problem(422, "validation");
    app.get("/api/v1/products?owner=", &owner)
        .await
        .problem(422, "validation");
    app.get("/api/v1/products?domain=Sales", &owner)
        .await
        .problem(422, "validation");
    app.get("/api/v1/products?limit=ten", &owner)
        .await
        .problem(400, "bad-request");
    // Oversized bodies are refused before they are read whole.
    let huge = format!(
        "{{\"name\": \"big\", \"description\": \"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let refused = app
        .raw(Method::POST, products, Some(&owner), "application/json", huge)
        .await;
    assert_eq!(
        refused.header("connection"),
        Some("close"),
        "the unread body spoils the connection"
    );
    refused.problem(413, "payload-too-large");
    let huge_doc = format!("version: 1.0.0\ndescription: {}\n", "x".repeat(2 * 1024 * 1024));
    app.contract("sales", "orders", &owner, "application/yaml", &huge_doc)
        .await
        .problem(413, "payload-too-large");
    // A stale or nonsense If-Match.
    app.patch(
        "/api/v1/domains/sales/products/orders",
        &owner,
        json!({"title": "x"}),
        Some("\"99\""),
    )
    .await
    .problem(412, "precondition-failed");
    app.patch(
        "/api/v1/domains/sales/products/orders",
        &owner,
        json!({"title": "x"}),
        Some("bogus"),
    )
    .await
    .problem(412, "precondition-failed");
    // Unknown routes and methods.
    app.get("/api/v1/nothing", &owner).await.problem(404, "not-found");
    let r = app
        .send(Method::PUT, "/api/v1/domains", Some(&owner), Some(json!({})), None)
        .await;
    assert_eq!(r.header("allow").map(|a| a.contains("GET")), Some(true));
    r.problem(405, "method-not-allowed");

    assert_eq!(app.version().await, version, "nothing was written");
    let after = app
        .get("/api/v1/domains/sales/products/orders", &owner)
        .await
        .expect(200)
        .json();
    assert_eq!(before, after);
    let listed = app.get("/api/v1/products", &owner).await.expect(200).json();
    assert_eq!(names(&listed), ["orders"]);
}

pub async fn data_survives_restart(app: &mut TestApp) {
    let (owner, _analyst) = small_mesh(app).await;
    app.product("sales", &owner, json!({"name": "orders", "tags": ["core"]}))
        .await;
    app.contract(
        "sales",
        "orders",
        &owner,
        "application/yaml",
        &odcs_yaml("orders", "1.0.0"),
    )
    .await
    .expect(201);
    let version = app.version().await;
    app.restart().await;
    assert_eq!(app.version().await, version);
    let p = app
        .get("/api/v1/domains/sales/products/orders", &owner)
        .await
        .expect(200)
        .json();
    assert_eq!(p["tags"], json!(["core"]));
    assert_eq!(p["latest_contract_version"], "1.0.0");
    let me = app.get("/api/v1/whoami", &owner).await.expect(200).json();
    assert_eq!(me["owned_domains"], json!(["sales"]));
    // The bootstrap ran once: still one key for the admin.
    let keys = app
        .get("/api/v1/principals/admin/keys", &app.admin_key)
        .await
        .expect(200)
        .json();
    assert_eq!(keys["items"].as_array().expect("items").len(), 1);
    if app.backend == crate::helpers::Backend::Sqlite {
        assert!(app.data_dir().join("catalog.db").exists());
        let cfg = app.config();
        assert!(cfg.database_url.is_none(), "the embedded default");
    }
}

pub async fn system_endpoints(app: &mut TestApp) {
    let health = app.send(Method::GET, "/health", None, None, None).await.expect(200);
    assert_eq!(health.json()["status"], "ok");
    let ready = app
        .send(Method::GET, "/ready", None, None, None)
        .await
        .expect(200)
        .json();
    assert_eq!(ready["status"], "ready");
    let doc = app
        .send(Method::GET, "/api/v1/openapi.json", None, None, None)
        .await
        .expect(200)
        .json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/domains"].is_object());
    let docs = app
        .send(Method::GET, "/api/v1/docs/", None, None, None)
        .await
        .expect(200);
    assert!(docs.text.contains("swagger-ui"), "the interactive docs page is served");
    assert!(!docs.text.contains("https://"), "no asset from another host");
    let reply = app.send(Method::GET, "/metrics", None, None, None).await;
    reply.problem(401, "unauthorized");
    let metrics = app.get("/metrics", &app.admin_key).await.expect(200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    assert!(
        metrics.text.contains("tessera_catalog_http_requests_total"),
        "{}",
        metrics.text
    );
    assert!(metrics.text.contains("route=\"/ready\""), "{}", metrics.text);
    assert!(metrics.text.contains("tessera_catalog_version"), "{}", metrics.text);
    let with_id = app.get("/api/v1/domains", &app.admin_key).await.expect(200);
    assert!(with_id.header("x-request-id").is_some_and(|id| !id.is_empty()));

    // `/metrics` is for the metrics role (and admins), not for any key; a
    // monitoring principal reads nothing else.
    let analyst = app.user("metrics_curious", json!({})).await;
    app.get("/metrics", &analyst).await.problem(403, "forbidden");
    app.post(
        "/api/v1/principals",
        &app.admin_key,
        json!({"name": "prometheus", "kind": "service", "roles": ["metrics"]}),
    )
    .await
    .expect(201);
    let scraper = app.key_for("prometheus").await;
    let scraped = app.get("/metrics", &scraper).await.expect(200);
    assert!(scraped.text.contains("tessera_catalog_version"), "{}", scraped.text);
    app.get("/api/v1/domains", &scraper).await.problem(403, "forbidden");
    app.post(
        "/api/v1/principals",
        &app.admin_key,
        json!({"name": "human_scraper", "kind": "user", "roles": ["metrics"]}),
    )
    .await
    .problem(422, "validation");

    // Or a second listener serves it to anyone who can reach it (a private network).
    app.reconfigure(|c| c.metrics_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))))
        .await;
    let open = app.metrics_base().expect("the metrics listener");
    let reply = app.http.get(format!("{open}/metrics")).send().await.expect("answers");
    assert_eq!(reply.status(), 200);
    assert!(
        reply
            .text()
            .await
            .unwrap_or_default()
            .contains("tessera_catalog_version")
    );
    let reply = app
        .http
        .get(format!("{open}/api/v1/domains"))
        .send()
        .await
        .expect("answers");
    assert_eq!(reply.status(), 404, "only /metrics there");
}

pub async fn contract_validation_and_compatibility(app: &mut TestApp) {
    let (owner, _analyst) = small_mesh(app).await;
    app.product("sales", &owner, json!({"name": "orders"})).await;
    let app: &TestApp = app;
    let submit = |doc: String| {
        let owner = owner.clone();
        async move { app.contract("sales", "orders", &owner, "application/yaml", &doc).await }
    };
    // Invalid documents: every issue at its path, nothing stored.
    let typo = odcs_with_columns("orders", "1.0.0", &["id"]).replace("logicalType: integer", "logicalType: strng");
    let body = submit(typo).await.problem(422, "validation");
    assert_eq!(
        body["errors"][0]["path"], "schema[0].properties[0].logicalType",
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("unknown type \"strng\""),
        "{body}"
    );
    let unknown = odcs_with_columns("orders", "1.0.0", &["id"]).replace("status: active", "status: active\nowner: me");
    let body = submit(unknown).await.problem(422, "validation");
    assert_eq!(body["errors"][0]["path"], "owner", "{body}");
    let body = submit("apiVersion: v2.2.0\nkind: DataContract\nid: x\nversion: 1.0.0\nstatus: active\n".into())
        .await
        .problem(422, "validation");
    assert_eq!(body["errors"][0]["path"], "apiVersion", "{body}");
    let deep = format!(
        "apiVersion: v3.1.0\nkind: DataContract\nid: x\nversion: 1.0.0\nstatus: a\ntags: {}x{}\n",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    submit(deep).await.problem(400, "bad-request");
    assert!(
        app.get("/api/v1/domains/sales/products/orders/contracts", &owner)
            .await
            .expect(200)
            .json()["items"]
            .as_array()
            .expect("items")
            .is_empty()
    );

    // The gate: within a major, nothing that breaks consumers.
    submit(odcs_with_columns("orders", "1.0.0", &["id", "amount"]))
        .await
        .expect(201);
    let body = submit(odcs_with_columns("orders", "1.1.0", &["id"]))
        .await
        .problem(409, "breaking-change");
    let violations = body["violations"].as_array().expect("violations");
    assert_eq!(violations.len(), 1, "{body}");
    assert_eq!(violations[0]["rule"], "column-removed");
    assert_eq!(violations[0]["path"], "orders.amount");
    assert_eq!(violations[0]["old"], "amount");
    assert!(violations[0]["new"].is_null());
    assert!(body["detail"].as_str().expect("detail").contains("2.0.0"), "{body}");
    // Additions pass with a warning, recorded with the version.
    let added = submit(odcs_with_columns("orders", "1.1.0", &["id", "amount", "tax"]))
        .await
        .expect(201)
        .json();
    assert_eq!(added["changes"][0]["rule"], "column-added");
    assert_eq!(added["changes"][0]["verdict"], "warning");
    let listed = app
        .get("/api/v1/domains/sales/products/orders/contracts", &owner)
        .await
        .expect(200)
        .json();
    assert_eq!(listed["items"][1]["changes"][0]["rule"], "column-added");
    // A new major may break.
    submit(odcs_with_columns("orders", "2.0.0", &["id"])).await.expect(201);
    // Strict refuses additions too; none lets anything through.
    app.patch(
        "/api/v1/domains/sales/products/orders",
        &owner,
        json!({"compatibility": "strict"}),
        None,
    )
    .await
    .expect(200);
    let body = submit(odcs_with_columns("orders", "2.1.0", &["id", "extra"]))
        .await
        .problem(409, "breaking-change");
    assert_eq!(body["violations"][0]["rule"], "column-added");
    let p = app
        .patch(
            "/api/v1/domains/sales/products/orders",
            &owner,
            json!({"compatibility": "none"}),
            None,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(p["compatibility"], "none");
    submit(odcs_with_columns("orders", "2.1.0", &["other"]))
        .await
        .expect(201);
    app.patch(
        "/api/v1/domains/sales/products/orders",
        &owner,
        json!({"compatibility": "lenient"}),
        None,
    )
    .await
    .problem(422, "validation");
}

pub async fn contracts_are_verified_against_the_table(app: &mut TestApp) {
    use crate::helpers::{odcs_with_columns, write_table};
    let (owner, analyst) = small_mesh(app).await;
    let table = app.data_dir().join("lake/sales/orders");
    app.product(
        "sales",
        &owner,
        json!({"name": "orders", "output_ports": [{"major_version": 1, "location": table.to_str().expect("utf-8")}]}),
    )
    .await;
    // No table yet: a contract may be registered (the product is a draft).
    app.contract(
        "sales",
        "orders",
        &owner,
        "application/yaml",
        &odcs_with_columns("orders", "1.0.0", &["id"]),
    )
    .await
    .expect(201);
    let v = app
        .send(
            Method::POST,
            "/api/v1/domains/sales/products/orders/contracts/1.0.0/verify",
            Some(&analyst),
            None,
            None,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(v["table_exists"], false);
    // A table that differs: refused, naming each mismatch; nothing stored.
    write_table(&table, &["id", "amount"]).await;
    let version = app.version().await;
    let body = app
        .contract(
            "sales",
            "orders",
            &owner,
            "application/yaml",
            &odcs_with_columns("orders", "1.1.0", &["id", "total"]),
        )
        .await
        .problem(422, "table-mismatch");
    let found: Vec<(String, String)> = body["mismatches"]
        .as_array()
        .expect("mismatches")
        .iter()
        .map(|m| {
            (
                m["rule"].as_str().expect("rule").to_string(),
                m["path"].as_str().expect("path").to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("missing-column".to_string(), "total".to_string()),
            ("extra-column".to_string(), "amount".to_string())
        ]
    );
    assert_eq!(app.version().await, version, "nothing written");
    // The matching one is accepted, and verifies on demand.
    app.contract(
        "sales",
        "orders",
        &owner,
        "application/yaml",
        &odcs_with_columns("orders", "1.1.0", &["id", "amount"]),
    )
    .await
    .expect(201);
    let v = app
        .send(
            Method::POST,
            "/api/v1/domains/sales/products/orders/contracts/1.1.0/verify",
            Some(&analyst),
            None,
            None,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(v["table_exists"], true);
    assert_eq!(v["table_version"], 0, "one commit so far");
    assert_eq!(v["mismatches"], json!([]));
    let v = app
        .send(
            Method::POST,
            "/api/v1/domains/sales/products/orders/contracts/1.0.0/verify",
            Some(&analyst),
            None,
            None,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(v["mismatches"][0]["rule"], "extra-column");
    app.patch(
        "/api/v1/domains/sales/products/orders",
        &owner,
        json!({"status": "published"}),
        None,
    )
    .await
    .expect(200);
}

pub async fn quality_runs(app: &mut TestApp) {
    let (owner, analyst) = small_mesh(app).await;
    app.product("sales", &owner, json!({"name": "orders"})).await;
    app.contract(
        "sales",
        "orders",
        &owner,
        "application/yaml",
        &odcs_yaml("orders", "1.0.0"),
    )
    .await
    .expect(201);
    let p = app
        .get("/api/v1/domains/sales/products/orders", &analyst)
        .await
        .expect(200)
        .json();
    assert_eq!(p["health"], "unknown");
    let result = |rule: &str, status: &str, severity: Option<&str>| {
        json!({"key": rule, "path": format!("orders.{rule}"), "rule": rule, "status": status, "measured": 1.0,
               "threshold": "mustBe 0", "severity": severity})
    };
    let quality = "/api/v1/domains/sales/products/orders/quality";
    let run = app
        .post(
            quality,
            &owner,
            json!({"contract_version": "1.0.0", "table_version": 3,
            "results": [result("a", "pass", None), result("b", "not_executable", None)]}),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(run["health"], "healthy");
    assert_eq!(run["reported_by"], "owner");
    let warned = app
        .post(
            quality,
            &owner,
            json!({"contract_version": "1.0.0",
            "results": [result("a", "pass", None), result("b", "fail", Some("warning"))]}),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(warned["health"], "degraded");
    app.post(
        quality,
        &owner,
        json!({"contract_version": "1.0.0",
            "results": [result("a", "fail", Some("error")), result("b", "pass", None)]}),
    )
    .await
    .expect(201);
    let p = app
        .get("/api/v1/domains/sales/products/orders", &analyst)
        .await
        .expect(200)
        .json();
    assert_eq!(p["health"], "failing");
    let runs = app
        .get(&format!("{quality}?limit=2"), &analyst)
        .await
        .expect(200)
        .json();
    let healths: Vec<&str> = runs["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["health"].as_str().expect("h"))
        .collect();
    assert_eq!(healths, ["failing", "degraded"], "newest first");
    let next = runs["next_cursor"].as_str().expect("more");
    let rest = app
        .get(&format!("{quality}?cursor={next}"), &analyst)
        .await
        .expect(200)
        .json();
    assert_eq!(rest["items"][0]["health"], "healthy");
    assert_eq!(rest["items"][0]["table_version"], 3);
    // Only owners report; the contract version must exist; results are checked.
    app.post(quality, &analyst, json!({"contract_version": "1.0.0", "results": []}))
        .await
        .problem(403, "forbidden");
    app.post(quality, &owner, json!({"contract_version": "9.9.9", "results": []}))
        .await
        .problem(422, "validation");
    app.post(
        quality,
        &owner,
        json!({"contract_version": "1.0.0", "results": [{"key": "", "path": "p", "rule": "r", "status": "pass"}]}),
    )
    .await
    .problem(422, "validation");
    app.post(
        quality,
        &owner,
        json!({"contract_version": "1.0.0", "results": [{"key": "k", "path": "p", "rule": "r", "status": "great"}]}),
    )
    .await
    .problem(422, "validation");
}

/// Grants, masks and row filters: checked when written, owned by their
/// domain's owners, in the bundle; access requests becoming grants; gateways'
/// reports; query audit read back by product owners.
pub async fn governance(app: &mut TestApp) {
    let (owner, analyst) = small_mesh(app).await;
    let admin = app.admin_key.clone();
    app.product(
        "sales",
        &owner,
        json!({"name": "orders", "output_ports": [{"major_version": 1, "location": "orders"}]}),
    )
    .await;
    app.product("sales", &owner, json!({"name": "secret", "visibility": "restricted"}))
        .await;
    let document = odcs_with_columns("orders", "1.0.0", &["o_orderkey", "o_custkey", "o_clerk"]).replace(
        "      - name: o_clerk\n",
        "      - name: o_clerk\n        classification: internal\n",
    );
    app.contract("sales", "orders", &owner, "application/yaml", &document)
        .await
        .expect(201);

    // Row filters are checked against the contract's schema.
    let filter = |expression: &str| json!({"name": "few_customers", "domain": "sales", "product": "orders", "expression": expression});
    for (bad, needle) in [
        ("o_nope < 100", "o_nope"),
        ("o_custkey + 1", "boolean"),
        ("o_custkey <", ""),
        ("o_custkey IN (SELECT 1)", "subquery"),
        ("o_custkey IN (attribute('salary'))", "attribute"),
    ] {
        let problem = app
            .post("/api/v1/row-filters", &owner, filter(bad))
            .await
            .problem(422, "validation");
        assert_eq!(problem["errors"][0]["path"], "expression", "{bad}: {problem}");
        assert!(problem.to_string().contains(needle), "{bad}: {problem}");
    }
    let version = app.version().await;
    let created = app
        .post(
            "/api/v1/row-filters",
            &owner,
            filter("o_custkey < 100 OR o_clerk IN (attribute('groups'))"),
        )
        .await
        .expect(201);
    assert_eq!(created.etag(), "\"1\"");
    assert_eq!(
        app.version().await,
        version + 1,
        "a policy change moves the catalog's version"
    );
    app.post("/api/v1/row-filters", &owner, filter("o_custkey < 5"))
        .await
        .problem(409, "conflict");
    // Only the domain's owners (and admins) manage its policies.
    app.post("/api/v1/row-filters", &analyst, filter("o_custkey < 5"))
        .await
        .problem(403, "forbidden");
    app.get("/api/v1/row-filters/few_customers", &analyst)
        .await
        .problem(404, "not-found");
    let replaced = app
        .send(
            Method::PUT,
            "/api/v1/row-filters/few_customers",
            Some(&owner),
            Some(filter("o_custkey < 50")),
            Some("\"1\""),
        )
        .await
        .expect(200);
    assert_eq!(replaced.json()["spec"]["expression"], "o_custkey < 50");
    app.send(
        Method::PUT,
        "/api/v1/row-filters/few_customers",
        Some(&owner),
        Some(filter("o_custkey < 40")),
        Some("\"1\""),
    )
    .await
    .problem(412, "precondition-failed");

    // Masks: a named column must exist; mesh-wide ones are for admins.
    let mask = json!({"name": "clerks", "target": {"kind": "product", "domain": "sales", "product": "orders"},
        "columns": {"kind": "column", "column": "o_clerk"}, "function": {"kind": "redact"}});
    let mut unknown = mask.clone();
    unknown["columns"]["column"] = json!("o_nope");
    app.post("/api/v1/masks", &owner, unknown)
        .await
        .problem(422, "validation");
    app.post("/api/v1/masks", &owner, mask).await.expect(201);
    let everywhere = json!({"name": "internal", "target": {"kind": "all"},
        "columns": {"kind": "classification", "classification": "internal"}, "function": {"kind": "hash"},
        "exempt": {"purposes": ["audit"]}});
    app.post("/api/v1/masks", &owner, everywhere.clone())
        .await
        .problem(403, "forbidden");
    app.post("/api/v1/masks", &admin, everywhere).await.expect(201);
    app.post(
        "/api/v1/masks",
        &admin,
        json!({"name": "typo", "target": {"kind": "all"}, "columns": {"kind": "column", "column": "x"},
               "function": {"kind": "blur"}}),
    )
    .await
    .problem(422, "validation");

    // Restricted products are invisible without a grant, visible with one.
    app.get("/api/v1/domains/sales/products/secret", &analyst)
        .await
        .problem(404, "not-found");
    app.post(
        "/api/v1/grants",
        &owner,
        json!({"name": "analysts_secret", "subject": {"kind": "group", "name": "analysts"},
               "target": {"kind": "product", "domain": "sales", "product": "secret"}}),
    )
    .await
    .expect(201);
    app.get("/api/v1/domains/sales/products/secret", &analyst)
        .await
        .expect(200);
    let listed = app
        .get("/api/v1/products?domain=sales", &analyst)
        .await
        .expect(200)
        .json();
    assert_eq!(names(&listed), ["orders", "secret"]);
    app.post(
        "/api/v1/grants",
        &owner,
        json!({"name": "late", "subject": {"kind": "principal", "name": "nobody"},
               "target": {"kind": "domain", "domain": "sales"}, "expires_at": "2001-01-01T00:00:00Z"}),
    )
    .await
    .problem(422, "validation");

    // Access requests: the owners decide; an approval is a grant for the purpose.
    let requests = "/api/v1/domains/sales/products/orders/access-requests";
    let request = app
        .post(
            requests,
            &analyst,
            json!({"purpose": "analytics", "justification": "quarterly report"}),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(request["status"], "pending");
    let id = request["id"].as_i64().expect("id");
    let denied = app
        .post(
            requests,
            &analyst,
            json!({"purpose": "marketing", "justification": "campaign"}),
        )
        .await
        .expect(201)
        .json();
    let mine = app.get("/api/v1/access-requests", &analyst).await.expect(200).json();
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(2));
    let theirs = app
        .get("/api/v1/access-requests?status=pending", &owner)
        .await
        .expect(200)
        .json();
    assert_eq!(theirs["items"].as_array().map(Vec::len), Some(2));
    app.post(&format!("/api/v1/access-requests/{id}/approve"), &analyst, json!({}))
        .await
        .problem(403, "forbidden");
    let approved = app
        .post(
            &format!("/api/v1/access-requests/{id}/approve"),
            &owner,
            json!({"expires_at": "2999-01-01T00:00:00Z", "note": "ok for Q3"}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(approved["status"], "approved");
    let grant_name = approved["grant_name"].as_str().expect("grant");
    let grant = app
        .get(&format!("/api/v1/grants/{grant_name}"), &owner)
        .await
        .expect(200)
        .json();
    assert_eq!(
        grant["spec"]["subject"],
        json!({"kind": "principal", "name": "analyst"})
    );
    assert_eq!(grant["spec"]["purposes"], json!(["analytics"]));
    app.post(&format!("/api/v1/access-requests/{id}/deny"), &owner, json!({}))
        .await
        .problem(409, "conflict");
    let denied_id = denied["id"].as_i64().expect("id");
    let denied = app
        .post(
            &format!("/api/v1/access-requests/{denied_id}/deny"),
            &owner,
            json!({"note": "no"}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(
        (denied["status"].as_str(), denied["grant_name"].as_str()),
        (Some("denied"), None)
    );

    // The bundle carries the policies and the contract's classifications;
    // a gateway's principal reads it, and nobody else (an admin neither).
    let edge = app.gateway_key("edge").await;
    app.get("/api/v1/bundle", &admin).await.problem(403, "forbidden");
    // Its key opens nothing else: no product, policy or principal.
    for path in [
        "/api/v1/domains",
        "/api/v1/domains/sales/products",
        "/api/v1/domains/sales/products/orders",
        "/api/v1/principals",
        "/api/v1/principals/edge",
        "/api/v1/masks",
        "/api/v1/grants",
        "/api/v1/gateways",
        "/api/v1/changes",
    ] {
        app.get(path, &edge).await.problem(403, "forbidden");
    }
    app.post("/api/v1/teams", &edge, json!({"name": "edge_team"}))
        .await
        .problem(403, "forbidden");
    assert_eq!(
        app.get("/api/v1/whoami", &edge).await.expect(200).json()["principal"]["roles"],
        json!(["gateway"])
    );
    // The role is a service principal's, never an admin's.
    for body in [
        json!({"name": "edge_user", "kind": "user", "roles": ["gateway"]}),
        json!({"name": "edge_admin", "kind": "service", "admin": true, "roles": ["gateway"]}),
    ] {
        app.post("/api/v1/principals", &admin, body)
            .await
            .problem(422, "validation");
    }
    app.patch("/api/v1/principals/edge", &admin, json!({"admin": true}), None)
        .await
        .problem(422, "validation");
    let bundle = app.get("/api/v1/bundle", &edge).await.expect(200);
    let hash = bundle.etag().trim_matches('"').to_string();
    let bundle = bundle.json();
    assert_eq!(bundle["format"], 3);
    assert_eq!(bundle["content"]["row_filters"][0]["expression"], "o_custkey < 50");
    assert_eq!(bundle["content"]["masks"].as_array().map(Vec::len), Some(2));
    assert_eq!(bundle["content"]["grants"].as_array().map(Vec::len), Some(2));
    let orders = bundle["content"]["products"]
        .as_array()
        .expect("products")
        .iter()
        .find(|p| p["name"] == "orders")
        .expect("orders");
    assert_eq!(
        orders["output_ports"][0]["columns"][2],
        json!({"name": "o_clerk", "classification": "internal"})
    );
    // Format 3: each port's location is absolute, and its contract's schema
    // object, trimmed to what serving needs, goes with it.
    let port = &orders["output_ports"][0];
    assert_eq!(
        port["location"],
        crate::helpers::file_url(&app.lake_root().join("sales/orders"))
    );
    assert_eq!(port["schema"]["name"], "orders");
    assert_eq!(port["schema"]["properties"].as_array().map(Vec::len), Some(3));
    assert_eq!(port["schema"]["properties"][2]["classification"], "internal");

    // Gateways report; the catalog tells SYNCED, STALE and NACKED apart.
    let report = |version: i64, hash: &str, rejected: Option<i64>| {
        json!({"version": version, "hash": hash, "rejected_version": rejected,
               "error": rejected.map(|_| "row filter few_customers: no column o_custkey")})
    };
    let current = bundle["version"].as_i64().expect("version");
    for (name, body) in [
        ("edge_a", report(current, &hash, None)),
        ("edge_b", report(current - 1, "0ld", None)),
        ("edge_c", report(current - 1, "0ld", Some(current))),
    ] {
        app.send(
            Method::PUT,
            &format!("/api/v1/gateways/{name}"),
            Some(&edge),
            Some(body),
            None,
        )
        .await
        .expect(204);
    }
    app.get("/api/v1/gateways", &owner).await.problem(403, "forbidden");
    let gateways = app.get("/api/v1/gateways", &admin).await.expect(200).json();
    let states: Vec<(&str, &str)> = gateways
        .as_array()
        .expect("list")
        .iter()
        .map(|g| (g["name"].as_str().unwrap_or(""), g["state"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        states,
        [("edge_a", "SYNCED"), ("edge_b", "STALE"), ("edge_c", "NACKED")]
    );

    // Audit: gateways send batches (a retried batch is stored once); owners read usage.
    let record = json!({"query_id": "5f1e8c4e-0000-4000-8000-000000000001", "principal": "analyst",
        "protocol": "postgres", "purpose": "analytics", "sql": "SELECT count(*) FROM sales.orders",
        "products": ["sales.orders"], "columns": [], "masks": [], "filters": ["few_customers:sales.orders"],
        "rows": 1, "bytes": 8, "duration_ms": 3, "bundle_version": current, "outcome": "ok",
        "at": "2026-11-26T12:00:00Z"});
    for _ in 0..2 {
        app.post(
            "/api/v1/audit",
            &edge,
            json!({"gateway": "edge_a", "records": [record.clone()]}),
        )
        .await
        .expect(204);
    }
    app.post("/api/v1/audit", &owner, json!({"gateway": "edge_a", "records": []}))
        .await
        .problem(403, "forbidden");
    let usage = app
        .get("/api/v1/domains/sales/products/orders/usage", &owner)
        .await
        .expect(200)
        .json();
    assert_eq!(usage["items"].as_array().map(Vec::len), Some(1), "{usage}");
    assert_eq!(usage["items"][0]["record"]["purpose"], "analytics");
    app.get("/api/v1/domains/sales/products/orders/usage", &analyst)
        .await
        .problem(403, "forbidden");
    // Usage pages like every list: a full page says where the next starts.
    let second = record.to_string().replace("000000000001", "000000000002");
    let second: serde_json::Value = serde_json::from_str(&second).expect("json");
    app.post(
        "/api/v1/audit",
        &edge,
        json!({"gateway": "edge_a", "records": [second]}),
    )
    .await
    .expect(204);
    let first = app
        .get("/api/v1/domains/sales/products/orders/usage?limit=1", &owner)
        .await
        .expect(200)
        .json();
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let rest = app
        .get(
            &format!("/api/v1/domains/sales/products/orders/usage?limit=1&cursor={cursor}"),
            &owner,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(1), "{rest}");
    assert!(rest.get("next_cursor").is_none(), "{rest}");
    assert_ne!(
        first["items"][0]["record"]["query_id"],
        rest["items"][0]["record"]["query_id"]
    );
    let all = app.get("/api/v1/masks?limit=500", &admin).await.expect(200).json();
    let count = all["items"].as_array().map_or(0, Vec::len);
    assert!(count >= 2, "{all}");
    let one = app.get("/api/v1/masks?limit=1", &admin).await.expect(200).json();
    assert!(one["next_cursor"].is_string(), "{count} masks, one per page: {one}");

    // Every policy change is in the change log.
    let changes = app.get("/api/v1/changes?limit=500", &admin).await.expect(200).json();
    let kinds: Vec<&str> = changes["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["resource_type"].as_str())
        .filter(|t| ["grant", "mask", "row_filter", "access_request"].contains(t))
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "row_filter").count(), 2, "{kinds:?}");
    assert!(kinds.contains(&"access_request") && kinds.contains(&"grant") && kinds.contains(&"mask"));
    app.delete("/api/v1/masks/clerks", &owner).await.expect(204);
    app.get("/api/v1/masks/clerks", &owner).await.problem(404, "not-found");
}
