//! OpenID Connect at the catalog (issue #18), against an issuer served by the
//! test (discovery and a key set over HTTP, tokens signed with the test kit's
//! keys): the issuer is stored with its keys and carried by bundles, the
//! change log names it without its keys, a token stands for its principal
//! (created on first sight when configured), a key the issuer adds is fetched
//! when a token names it, and a restarted catalog verifies with the stored
//! keys while the issuer is away.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tessera_catalog::identity::{IdentityConfig, IssuerConfig, PortalClient, Provision};
use tessera_contracts::bundle::ClaimMapping;
use tessera_testkit::jwt::{Signer, key_set};

use crate::helpers::TestApp;

/// An issuer on loopback: its discovery document and its key set, which
/// the test changes as an issuer rotates keys.
struct Issuer {
    url: String,
    keys: Arc<Mutex<Value>>,
    server: tokio::task::JoinHandle<()>,
}

impl Issuer {
    async fn start(keys: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        let keys = Arc::new(Mutex::new(keys));
        let discovery = json!({
            "issuer": url,
            "jwks_uri": format!("{url}/jwks"),
            "authorization_endpoint": format!("{url}/auth"),
            "token_endpoint": format!("{url}/token"),
        });
        let served = Arc::clone(&keys);
        let router = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || async move { axum::Json(discovery) }),
            )
            .route(
                "/jwks",
                axum::routing::get(move || async move { axum::Json(served.lock().expect("keys").clone()) }),
            );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { url, keys, server }
    }

    fn publish(&self, keys: Value) {
        *self.keys.lock().expect("keys") = keys;
    }

    /// Claims of a token of this issuer for the audience `tessera`.
    fn claims(&self, sub: &str, extra: &Value) -> Value {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({"iss": self.url, "aud": "tessera", "sub": sub, "iat": now, "exp": now + 300});
        for (k, v) in extra.as_object().expect("an object") {
            claims[k] = v.clone();
        }
        claims
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn bundle_keys(app: &TestApp, edge: &str) -> Vec<String> {
    let bundle = app.get("/api/v1/bundle", edge).await.expect(200).json();
    bundle["content"]["issuers"][0]["jwks"]["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k["kid"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Polls until the bundle carries exactly `kids`.
async fn bundle_has(app: &TestApp, edge: &str, kids: &[&str]) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = bundle_keys(app, edge).await;
        if now == kids {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bundle has keys {now:?}, not {kids:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub async fn tokens_stand_for_principals(app: &mut TestApp) {
    let first = Signer::new("first");
    let issuer = Issuer::start(key_set(&[&first])).await;
    let config = IdentityConfig {
        issuers: vec![IssuerConfig {
            issuer: issuer.url.clone(),
            audiences: vec!["tessera".into()],
            algorithms: vec!["ES256".into()],
            clock_skew_secs: 5,
            claims: ClaimMapping {
                principal: "sub".into(),
                groups: Some("groups".into()),
                regions: None,
                purposes: None,
            },
            provision: Provision::Create,
            jwks_uri: None,
            portal: Some(PortalClient {
                client_id: "portal".into(),
                scope: "openid".into(),
                resource: Some("urn:tessera".into()),
            }),
        }],
    };
    let before = app.version().await;
    app.reconfigure(|c| c.identity = config).await;
    let edge = app.gateway_key("edge").await;
    bundle_has(app, &edge, &["first"]).await;
    let bundle = app.get("/api/v1/bundle", &edge).await.expect(200).json();
    let carried = &bundle["content"]["issuers"][0];
    assert_eq!(carried["issuer"], issuer.url.as_str());
    assert_eq!(carried["jwks_uri"], format!("{}/jwks", issuer.url));
    assert_eq!(carried["audiences"], json!(["tessera"]));
    assert!(carried["jwks_seen_at"].is_string(), "{carried}");

    // The portal offers sign-in with it, before anyone is signed in.
    let offered = app
        .send(reqwest::Method::GET, "/api/v1/identity/issuers", None, None, None)
        .await
        .expect(200)
        .json();
    assert_eq!(
        offered,
        json!([{
            "issuer": issuer.url,
            "authorization_endpoint": format!("{}/auth", issuer.url),
            "token_endpoint": format!("{}/token", issuer.url),
            "client_id": "portal",
            "scope": "openid",
            "resource": "urn:tessera",
        }])
    );

    // The change log names the issuer, never its keys.
    let changes = app
        .get(&format!("/api/v1/changes?after={before}&limit=100"), &app.admin_key)
        .await
        .expect(200)
        .json();
    let logged: Vec<&Value> = changes["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|c| c["resource_type"] == "issuers")
        .collect();
    assert!(!logged.is_empty(), "{changes}");
    let x = first.jwk()["x"].as_str().expect("x");
    assert!(!changes.to_string().contains(x), "a key in the change log: {changes}");

    // A new subject: created on first sight, with its claims' attributes.
    let token = first.sign(&issuer.claims("newbie", &json!({"groups": ["analysts"], "name": "New Bie"})));
    let me = app.get("/api/v1/whoami", &token).await.expect(200).json();
    assert_eq!(me["principal"]["name"], "newbie", "{me}");
    assert_eq!(me["principal"]["attributes"]["groups"], json!(["analysts"]), "{me}");
    let stored = app
        .get("/api/v1/principals/newbie", &app.admin_key)
        .await
        .expect(200)
        .json();
    assert_eq!(stored["kind"], "user");
    assert_eq!(stored["display_name"], "New Bie");
    assert_eq!(stored["admin"], false);
    // Its groups follow the token: a later token with others is those groups.
    let moved = first.sign(&issuer.claims("newbie", &json!({"groups": ["auditors"]})));
    let me = app.get("/api/v1/whoami", &moved).await.expect(200).json();
    assert_eq!(me["principal"]["attributes"]["groups"], json!(["auditors"]), "{me}");
    // A token names no admin into being: the admin flag stays the catalog's.
    let admin = first.sign(&issuer.claims("newbie", &json!({"admin": true})));
    app.get("/api/v1/principals", &admin).await.problem(403, "forbidden");

    // Refused, each saying why.
    for (claims, why) in [
        (
            issuer.claims("newbie", &json!({"aud": "other"})),
            "not for this audience",
        ),
        (issuer.claims("newbie", &json!({"exp": 1_000_000})), "expired"),
        (issuer.claims("Not A Name", &json!({})), "is not a principal name"),
        (
            issuer.claims("newbie", &json!({"iss": "https://elsewhere.example"})),
            "are not accepted",
        ),
    ] {
        let problem = app
            .get("/api/v1/whoami", &first.sign(&claims))
            .await
            .problem(401, "unauthorized");
        assert!(
            problem["detail"].as_str().unwrap_or_default().contains(why),
            "{problem}"
        );
    }
    let stranger = Signer::new("stranger").sign(&issuer.claims("newbie", &json!({})));
    let problem = app.get("/api/v1/whoami", &stranger).await.problem(401, "unauthorized");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("no signing key"),
        "{problem}"
    );

    // The issuer adds a key: the first token naming it makes the catalog
    // fetch the set, and the bundle carries both.
    tokio::time::sleep(tessera_catalog::identity::UNKNOWN_KID_PAUSE).await;
    let second = Signer::new("second");
    issuer.publish(key_set(&[&second, &first]));
    let token = second.sign(&issuer.claims("newbie", &json!({})));
    app.get("/api/v1/whoami", &token).await.expect(200);
    bundle_has(app, &edge, &["second", "first"]).await;

    // Restarted while the issuer is away, the catalog verifies with the keys it stored.
    drop(issuer);
    app.restart().await;
    app.get("/api/v1/whoami", &token).await.expect(200);
    bundle_has(app, &edge, &["second", "first"]).await;
}
