//! OpenID Connect end to end: tokens from a real provider (`oidc-provider`
//! from npm, tests/oidc/provider.mjs) stand for principals on HTTP,
//! PostgreSQL wire and Flight SQL, at the catalog, the embedded gateway and a
//! standalone one, which keeps verifying them with the catalog stopped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::cli::Demo;
use super::{call, free_port, gateway_principal, start_gateway_endpoints, stdout_lines, terminate};

/// The provider, restartable with other signing keys (a rotation).
struct Provider {
    child: Child,
    config: PathBuf,
    issuer: String,
}

impl Provider {
    fn start(dir: &Path, kids: &[&str]) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc/provider.mjs");
        assert!(
            script.with_file_name("node_modules").join("oidc-provider").is_dir(),
            "the OIDC provider is not installed: run scripts/test, or `npm ci --prefix tests/oidc`"
        );
        let port = free_port();
        let analyst = |name: &str, regions: &[&str]| json!({"preferred_username": name, "groups": ["analysts"], "regions": regions, "purposes": ["analytics"]});
        let config = dir.join("oidc.json");
        let clients = json!([
            // A principal the catalog has (the demo's analyst), by her claims.
            {"client_id": "ana-app", "client_secret": "ana-secret", "claims": analyst("ana", &["EUROPE", "ASIA"])},
            // A subject no one registered: a claims-only session.
            {"client_id": "zoe-app", "client_secret": "zoe-secret", "claims": analyst("zoe", &["AMERICA"])},
            // Tokens that expire at once.
            {"client_id": "brief-app", "client_secret": "brief-secret", "claims": analyst("ana", &["EUROPE"]), "ttl_secs": 1},
        ]);
        let write = |kids: &[&str]| {
            let body = json!({"port": port, "keys_dir": dir.join("keys"), "kids": kids, "clients": clients});
            std::fs::write(&config, body.to_string()).expect("provider config");
        };
        write(kids);
        let mut provider = Self {
            child: Self::spawn(&config),
            config,
            issuer: format!("http://127.0.0.1:{port}"),
        };
        provider.wait_up();
        provider
    }

    fn spawn(config: &Path) -> Child {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc/provider.mjs");
        let (stderr, _) = super::logs::process("oidc-provider");
        Command::new("node")
            .arg(script)
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("node runs the OIDC provider")
    }

    fn wait_up(&mut self) {
        let rx = stdout_lines(&mut self.child, None);
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
            if line.starts_with("oidc-provider listening on ") {
                return;
            }
        }
        panic!("the OIDC provider did not come up");
    }

    /// Restarts the provider publishing (and signing with) `kids` only.
    fn rotate(&mut self, kids: &[&str]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(&self.config).expect("config")).expect("json");
        config["kids"] = json!(kids);
        std::fs::write(&self.config, config.to_string()).expect("provider config");
        self.child = Self::spawn(&self.config);
        self.wait_up();
    }

    /// An access token of the client-credentials grant for `resource`.
    async fn token(&self, client: &str, resource: &str) -> String {
        let secret = format!("{}-secret", client.trim_end_matches("-app"));
        let response = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(client, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&scope=query&resource={}",
                resource.replace(':', "%3A")
            ))
            .send()
            .await
            .expect("the provider answers");
        let body: Value = response.json().await.expect("json");
        let token = body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {body}"))
            .to_string();
        super::logs::secret(&token);
        token
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The catalog's `[identity]` section for the provider.
fn identity_config(issuer: &str) -> String {
    format!(
        r#"
[[identity.issuers]]
issuer = "{issuer}"
audiences = ["tessera"]
algorithms = ["RS256"]
clock_skew_secs = 0

[identity.issuers.claims]
principal = "preferred_username"
groups = "groups"
regions = "regions"
purposes = "purposes"
"#
    )
}

/// Where one gateway answers.
struct Endpoints {
    http: String,
    pg_port: u16,
    flight: String,
}

/// A query's answer or refusal on each protocol, as comparable text.
async fn over_http(endpoints: &Endpoints, credential: &str, sql: &str) -> Result<Value, String> {
    let response = reqwest::Client::new()
        .post(&endpoints.http)
        .bearer_auth(credential)
        .header("tessera-purpose", "analytics")
        .json(&json!({ "sql": sql }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status == 200 {
        Ok(body["rows"].clone())
    } else {
        Err(format!("{status} {}", body["detail"].as_str().unwrap_or_default()))
    }
}

fn over_pg(endpoints: &Endpoints, credential: &str, sql: &str) -> Result<String, String> {
    let conninfo = format!(
        "host=127.0.0.1 port={} dbname=tessera user=analyst options='-c tessera.purpose=analytics'",
        endpoints.pg_port
    );
    super::psql(&conninfo, credential, sql)
}

async fn over_flight(endpoints: &Endpoints, credential: &str, sql: &str) -> Result<String, String> {
    // A refusal leads with its gRPC code.
    let failed = |e: tessera_sdk::flight::FlightError| format!("{:?}: {e}", e.code());
    let client = tessera_sdk::flight::FlightClient::connect(&endpoints.flight, credential)
        .await
        .map_err(failed)?
        .with_purpose("analytics");
    let batches = client.query(sql).await.map_err(failed)?;
    arrow::util::pretty::pretty_format_batches(&batches)
        .map(|t| t.to_string())
        .map_err(|e| e.to_string())
}

/// What `credential` gets for `sql` on all three protocols.
async fn everywhere(endpoints: &Endpoints, credential: &str, sql: &str) -> (Value, String, String) {
    let http = over_http(endpoints, credential, sql).await.expect("HTTP answers");
    let pg = over_pg(endpoints, credential, sql).expect("PostgreSQL wire answers");
    let flight = over_flight(endpoints, credential, sql)
        .await
        .expect("Flight SQL answers");
    (http, pg, flight)
}

/// `credential` is refused on all three protocols, each saying `why`.
async fn refused_everywhere(endpoints: &Endpoints, credential: &str, why: &str) {
    let sql = "SELECT count(*) AS n FROM customers.customer";
    let http = over_http(endpoints, credential, sql).await.expect_err("HTTP refuses");
    assert!(
        http.starts_with("401 ") && http.contains(why),
        "HTTP: {http} (wanted {why:?})"
    );
    let pg = over_pg(endpoints, credential, sql).expect_err("PostgreSQL refuses");
    assert!(pg.contains(why), "PostgreSQL wire: {pg} (wanted {why:?})");
    let flight = over_flight(endpoints, credential, sql)
        .await
        .expect_err("Flight refuses");
    assert!(flight.starts_with("Some(Unauthenticated)"), "Flight: {flight}");
    assert!(flight.contains(why), "Flight: {flight} (wanted {why:?})");
}

/// The rows the admin's key gets through the catalog's embedded gateway.
async fn admin_rows(api: &str, admin: &str, sql: &str) -> Value {
    let (status, body) = call(
        reqwest::Method::POST,
        format!("{api}/query"),
        admin,
        Some(json!({ "sql": sql })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["rows"].clone()
}

/// `alg: none`: the claims of `token`, unsigned.
fn unsigned(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("a payload");
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "at+jwt"}).to_string());
    format!("{header}.{payload}.")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_an_openid_provider_stand_for_principals_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut provider = Provider::start(dir.path(), &["first"]);
    let config = dir.path().join("tessera.toml");
    std::fs::write(&config, identity_config(&provider.issuer)).expect("config");
    let data = dir.path().join("mesh");
    let demo = Demo::start_with(&data, &["--config", config.to_str().expect("utf-8")]);
    let api = format!("{}/api/v1", demo.url);
    let admin = demo.key("admin");
    let gateway_key = gateway_principal(&api, &admin, "edge").await;
    let gateway_dir = dir.path().join("gateway");
    let (mut gateway, http, pg_port, flight) = start_gateway_endpoints(
        &demo.url,
        &gateway_key,
        &[("TESSERA_GATEWAY_DATA_DIR", gateway_dir.to_str().expect("utf-8"))],
    );
    let standalone = Endpoints { http, pg_port, flight };

    // Ana's token gets exactly what her API key gets: her regions' customers
    // (row filter), PII hashed (mask), on every protocol.
    let ana_token = provider.token("ana-app", "urn:tessera").await;
    let ana_key = demo.key("ana");
    for sql in [
        "SELECT count(*) AS n FROM customers.customer",
        "SELECT c_custkey, c_phone, c_acctbal FROM customers.customer ORDER BY c_custkey LIMIT 3",
    ] {
        let by_key = everywhere(&standalone, &ana_key, sql).await;
        let by_token = everywhere(&standalone, &ana_token, sql).await;
        assert_eq!(by_token, by_key, "{sql}");
    }
    let (rows, _, _) = everywhere(
        &standalone,
        &ana_token,
        "SELECT c_phone FROM customers.customer ORDER BY c_custkey LIMIT 1",
    )
    .await;
    let phone = rows[0]["c_phone"].as_str().expect("a phone").to_string();
    assert!(!phone.contains('-'), "hashed, not a phone number: {phone}");
    let all = admin_rows(&api, &admin, "SELECT count(*) AS n FROM customers.customer").await;
    let (ana_rows, _, _) = everywhere(&standalone, &ana_token, "SELECT count(*) AS n FROM customers.customer").await;
    assert!(ana_rows[0]["n"].as_i64() < all[0]["n"].as_i64(), "{ana_rows} vs {all}");

    // The catalog knows her by the token too.
    let (status, me) = call(reqwest::Method::GET, format!("{api}/whoami"), &ana_token, None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["principal"]["name"], "ana", "{me}");

    // Zoe is nobody the catalog knows: it refuses her (provision = existing),
    // while gateways serve her claims: the analysts' grant, AMERICA's customers.
    let zoe = provider.token("zoe-app", "urn:tessera").await;
    let (status, problem) = call(reqwest::Method::GET, format!("{api}/whoami"), &zoe, None).await;
    assert_eq!(status, 401, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap_or_default().contains("\"zoe\""),
        "{problem}"
    );
    let america = "SELECT count(*) AS n FROM customers.customer WHERE c_nationkey IN (1, 2, 3, 17, 24)";
    let expected = admin_rows(&api, &admin, america).await;
    let (zoe_rows, zoe_pg, _) = everywhere(&standalone, &zoe, "SELECT count(*) AS n FROM customers.customer").await;
    assert_eq!(zoe_rows, expected, "zoe sees AMERICA's customers only");
    assert_eq!(zoe_pg, expected[0]["n"].to_string());

    // Refused on all three: another audience, unsigned, expired.
    let other = provider.token("ana-app", "urn:other").await;
    refused_everywhere(&standalone, &other, "not for this audience").await;
    refused_everywhere(&standalone, &unsigned(&ana_token), "are not accepted").await;
    let brief = provider.token("brief-app", "urn:tessera").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    refused_everywhere(&standalone, &brief, "expired").await;
    let (status, _) = call(reqwest::Method::GET, format!("{api}/whoami"), &brief, None).await;
    assert_eq!(status, 401);

    // The provider rotates its key: a token of the new key is accepted at
    // once (an unknown kid makes the gateway and the catalog fetch the keys),
    // and from then on the old key's tokens are refused everywhere.
    tokio::time::sleep(Duration::from_secs(5)).await;
    provider.rotate(&["second"]);
    let rotated = provider.token("ana-app", "urn:tessera").await;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(rotated.split('.').next().expect("a header"))
            .expect("base64url"),
    )
    .expect("json");
    assert_eq!(header["kid"], "second", "{header}");
    let (by_new_key, _, _) = everywhere(&standalone, &rotated, "SELECT count(*) AS n FROM customers.customer").await;
    assert_eq!(by_new_key, ana_rows);
    refused_everywhere(&standalone, &ana_token, "has no signing key").await;
    let (status, me) = call(reqwest::Method::GET, format!("{api}/whoami"), &rotated, None).await;
    assert_eq!(status, 200, "{me}");
    let (status, problem) = call(reqwest::Method::GET, format!("{api}/whoami"), &ana_token, None).await;
    assert_eq!(status, 401, "{problem}");

    // The catalog stops, then the provider: the standalone gateway still
    // verifies tokens offline, and still refuses the rotated-out key.
    demo.stop();
    drop(provider);
    let (offline, _, _) = everywhere(&standalone, &rotated, "SELECT count(*) AS n FROM customers.customer").await;
    assert_eq!(offline, ana_rows);
    refused_everywhere(&standalone, &ana_token, "has no signing key").await;
    terminate(&mut gateway);
}
