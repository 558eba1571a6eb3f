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
