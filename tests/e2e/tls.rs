//! A standalone gateway whose listeners have certificates of their own
//! (`[gateway.tls]` for all, `[gateway.pg_tls]` for PostgreSQL wire): each
//! listener presents its own, and clients verifying the other CA fail.

use std::path::Path;

use super::{Server, gateway_principal, start_gateway_endpoints, terminate};

/// A CA and a certificate for 127.0.0.1 it signed, written under `dir` as
/// `<name>-ca.pem`, `<name>.pem` and `<name>.key`.
fn certificates(dir: &Path, name: &str) -> (String, String, String) {
    let (ca, cert, key) = tessera_testkit::certs::issue(&["127.0.0.1", "localhost"]).expect("certificates");
    let path = |suffix: &str| {
        let path = dir.join(format!("{name}{suffix}"));
        std::fs::write(
            &path,
            match suffix {
                "-ca.pem" => &ca,
                ".pem" => &cert,
                _ => &key,
            },
        )
        .expect("written");
        path.display().to_string()
    };
    (path("-ca.pem"), path(".pem"), path(".key"))
}

fn psql_select_1(port: u16, key: &str, root: &str) -> Result<String, String> {
    let conninfo = format!("host=127.0.0.1 port={port} dbname=tessera user=me sslmode=verify-full sslrootcert={root}");
    super::psql(&conninfo, key, "SELECT 1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_gateway_listener_may_have_its_own_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        &[
            "--data-dir",
            dir.path().join("data").to_str().expect("utf-8"),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let admin = server.bootstrap_key.clone().expect("a bootstrap key");
    let edge_key = gateway_principal(&format!("{}/api/v1", server.url), &admin, "edge").await;
    let (shared_ca, shared_cert, shared_key) = certificates(dir.path(), "shared");
    let (pg_ca, pg_cert, pg_key) = certificates(dir.path(), "pg");
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway.tls]\ncert_file = \"{shared_cert}\"\nkey_file = \"{shared_key}\"\nrequire = true\n\n\
             [gateway.pg_tls]\ncert_file = \"{pg_cert}\"\nkey_file = \"{pg_key}\"\nrequire = true\n"
        ),
    )
    .expect("config");
    let (mut gateway, http, pg_port, flight) = start_gateway_endpoints(
        &server.url,
        &edge_key,
        &[
            ("TESSERA_CONFIG", config.to_str().expect("utf-8")),
            (
                "TESSERA_GATEWAY_DATA_DIR",
                dir.path().join("gateway").to_str().expect("utf-8"),
            ),
        ],
    );

    // HTTP: the shared certificate.
    assert!(http.starts_with("https://"), "{http}");
    let trusting = |ca: &str| {
        let pem = std::fs::read(ca).expect("a CA");
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM"))
            .build()
            .expect("a client")
    };
    let health = http.replace("/api/v1/query", "/health");
    let answer = trusting(&shared_ca).get(&health).send().await.expect("verified");
    assert_eq!(answer.status(), 200);
    assert!(
        trusting(&pg_ca).get(&health).send().await.is_err(),
        "the PostgreSQL CA does not sign HTTP's"
    );

    // PostgreSQL wire: its own certificate.
    assert_eq!(psql_select_1(pg_port, &admin, &pg_ca).as_deref(), Ok("1"));
    let refused = psql_select_1(pg_port, &admin, &shared_ca).expect_err("another CA");
    // OpenSSL words it "certificate verify failed", or, when the signature
    // does not verify under the other CA's key, "EVP lib".
    assert!(
        refused.contains("certificate verify failed") || refused.contains("SSL error"),
        "{refused}"
    );

    // Flight SQL: the shared one.
    assert!(flight.starts_with("grpc+tls://"), "{flight}");
    let uri = flight;
    let shared_pem = std::fs::read(&shared_ca).expect("a CA");
    let client = tessera_sdk::flight::FlightClient::connect_trusting(&uri, &admin, Some(&shared_pem))
        .await
        .expect("verified");
    client.query("SELECT 1").await.expect("answered");
    terminate(&mut gateway);
    server.terminate();
}

/// Mutual TLS between standalone gateways and the catalog: with a client CA
/// configured, a gateway's principal is refused unless its connection
/// presents a client certificate of that CA; people and tools without one
/// are served as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_mutual_tls_a_gateway_needs_its_client_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let authority = tessera_testkit::certs::Authority::new("Tessera test CA").expect("a CA");
    let write = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).expect("written");
        path.display().to_string()
    };
    let ca = write("ca.pem", &authority.pem());
    let (cert, key) = authority.server(&["127.0.0.1"]).expect("a server certificate");
    let (cert, key) = (write("server.pem", &cert), write("server.key", &key));
    let (client_cert, client_key) = authority.client("edge").expect("a client certificate");
    let (client_cert, client_key) = (write("edge.pem", &client_cert), write("edge.key", &client_key));
    let server = Server::start(
        &[
            "--data-dir",
            dir.path().join("data").to_str().expect("utf-8"),
            "--listen",
            "127.0.0.1:0",
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-client-ca-file",
            &ca,
        ],
        &[],
    );
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let admin = server.bootstrap_key.clone().expect("a bootstrap key");
    let client = |identity: bool| {
        let mut builder = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(authority.pem().as_bytes()).expect("PEM"));
        if identity {
            let mut pem = std::fs::read(&client_cert).expect("cert");
            pem.extend(std::fs::read(&client_key).expect("key"));
            builder = builder.identity(reqwest::Identity::from_pem(&pem).expect("an identity"));
        }
        builder.build().expect("a client")
    };
    let api = format!("{}/api/v1", server.url);
    let (plain, certified) = (client(false), client(true));
    // People and tools need no client certificate.
    let me = plain
        .get(format!("{api}/whoami"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("answers");
    assert_eq!(me.status(), 200);
    let created = plain
        .post(format!("{api}/principals"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "edge", "kind": "service", "roles": ["gateway"]}))
        .send()
        .await
        .expect("answers");
    assert_eq!(created.status(), 201);
    let issued: serde_json::Value = plain
        .post(format!("{api}/principals/edge/keys"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    let edge = issued["key"].as_str().expect("a key").to_string();
    super::logs::secret(&edge);
    // A gateway's key without the client certificate: refused.
    let refused = plain
        .get(format!("{api}/bundle"))
        .bearer_auth(&edge)
        .send()
        .await
        .expect("answers");
    assert_eq!(refused.status(), 403);
    let problem: serde_json::Value = refused.json().await.expect("a problem");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("client certificate"),
        "{problem}"
    );
    // With it: the bundle.
    let bundle = certified
        .get(format!("{api}/bundle"))
        .bearer_auth(&edge)
        .send()
        .await
        .expect("answers");
    assert_eq!(bundle.status(), 200);

    // A standalone gateway with its certificate follows the catalog and answers.
    let (mut gateway, http, _, _) = start_gateway_endpoints(
        &server.url,
        &edge,
        &[
            ("TESSERA_CA_FILE", ca.as_str()),
            ("TESSERA_GATEWAY_CLIENT_CERT_FILE", client_cert.as_str()),
            ("TESSERA_GATEWAY_CLIENT_KEY_FILE", client_key.as_str()),
            (
                "TESSERA_GATEWAY_DATA_DIR",
                dir.path().join("gateway").to_str().expect("utf-8"),
            ),
        ],
    );
    let answer = reqwest::Client::new()
        .post(&http)
        .bearer_auth(&admin)
        .json(&serde_json::json!({"sql": "SELECT 1 AS one"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap_or_default());
    terminate(&mut gateway);
    server.terminate();
}
