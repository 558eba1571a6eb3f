//! Failed-authentication throttling against the real binary (issue #18): a
//! brute-force loop of wrong keys from 127.0.0.1 is refused once its burst is
//! spent, on the REST API, HTTP SQL, PostgreSQL wire and Flight SQL, while the
//! right key from 127.0.0.2 (clients bound to that source address) works at
//! once.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::{Value, json};

use super::Server;

const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A key of the right shape and a random id: what a brute-force loop sends.
fn wrong_key(i: usize) -> String {
    format!("tsk_{:012x}_{:064x}", 0x1000_0000 + i, i)
}

async fn whoami(client: &reqwest::Client, url: &str, key: &str) -> (u16, Option<String>, Value) {
    let response = client
        .get(format!("{url}/api/v1/whoami"))
        .bearer_auth(key)
        .send()
        .await
        .expect("the catalog answers");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, retry_after, response.json().await.unwrap_or(Value::Null))
}

async fn query(client: &reqwest::Client, url: &str, key: &str) -> (u16, Value) {
    let response = client
        .post(format!("{url}/api/v1/query"))
        .bearer_auth(key)
        .json(&json!({"sql": "SELECT 1 AS one"}))
        .send()
        .await
        .expect("the gateway answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A PostgreSQL connection from `source` with `password`.
async fn pg_connect(
    port: u16,
    source: IpAddr,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::new(source, 0))
        .expect("bind the source address");
    let stream = socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .expect("the gateway accepts");
    let mut config = tokio_postgres::Config::new();
    config.user("me").dbname("tessera").password(password);
    let (client, connection) = config.connect_raw(stream, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

fn banner_port(server: &Server, label: &str) -> u16 {
    server
        .banner
        .iter()
        .find(|l| l.contains(label))
        .and_then(|l| l.split("port=").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no {label} line in {:?}", server.banner))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_are_throttled_per_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        &[
            "--data-dir",
            dir.path().to_str().expect("utf-8"),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let admin = server.bootstrap_key.clone().expect("a bootstrap key");
    let url = server.url.clone();
    let here = reqwest::Client::new();
    let there = reqwest::Client::builder()
        .local_address(OTHER)
        .build()
        .expect("a client");

    // 1,000 wrong keys with random ids: the first burst is told the key is
    // wrong, the rest are refused before their key is read.
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut first_refusal = None;
    for i in 0..1000 {
        let (status, retry_after, body) = whoami(&here, &url, &wrong_key(i)).await;
        *statuses.entry(status).or_default() += 1;
        if status == 429 && first_refusal.is_none() {
            first_refusal = Some((i, retry_after, body));
        }
    }
    assert_eq!(statuses.get(&401), Some(&20), "{statuses:?}");
    assert_eq!(statuses.get(&429), Some(&980), "{statuses:?}");
    let (_, retry_after, problem) = first_refusal.expect("a refusal");
    assert!(
        retry_after
            .as_deref()
            .is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)),
        "{retry_after:?}"
    );
    assert_eq!(problem["status"], 429, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("too-many-failed-attempts"),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("too many failed attempts"),
        "{problem}"
    );
    // From this address, even the right key waits its turn...
    assert_eq!(whoami(&here, &url, &admin).await.0, 429);
    // ...while another address is served at once.
    let (status, _, me) = whoami(&there, &url, &admin).await;
    assert_eq!(status, 200, "{me}");

    // The gateway's listeners share one throttle: wrong passwords over
    // PostgreSQL wire spend 127.0.0.1's burst there...
    let pg_port = banner_port(&server, "PostgreSQL wire:");
    let mut refused = Vec::new();
    for i in 0..25 {
        match pg_connect(pg_port, IpAddr::V4(Ipv4Addr::LOCALHOST), &wrong_key(i)).await {
            Ok(_) => panic!("a wrong key connected"),
            Err(e) => refused.push(
                e.as_db_error()
                    .map(|d| (d.code().code().to_string(), d.message().to_string())),
            ),
        }
    }
    let throttled = |e: &Option<(String, String)>| {
        e.as_ref()
            .is_some_and(|(code, message)| code == "28000" && message.contains("too many failed attempts"))
    };
    assert_eq!(refused.iter().filter(|e| throttled(e)).count(), 5, "{refused:?}");
    assert!(
        refused[..20]
            .iter()
            .all(|e| e.as_ref().is_some_and(|(code, _)| code == "28P01")),
        "{refused:?}"
    );
    // ...and then HTTP SQL and Flight SQL refuse that address too.
    let (status, problem) = query(&here, &url, &admin).await;
    assert_eq!(
        (status, problem["sqlstate"].as_str()),
        (429, Some("28000")),
        "{problem}"
    );
    let flight = server
        .banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("Flight SQL:"))
        .and_then(|r| r.split_whitespace().next())
        .expect("a Flight SQL line")
        .to_string();
    let refused = match tessera_sdk::flight::FlightClient::connect(&flight, &admin).await {
        Ok(client) => client.query("SELECT 1").await.expect_err("throttled"),
        Err(e) => e,
    };
    assert_eq!(refused.code(), Some(tonic::Code::ResourceExhausted), "{refused}");

    // The right key from 127.0.0.2 works at once on PostgreSQL wire and HTTP SQL.
    let client = pg_connect(pg_port, OTHER, &admin)
        .await
        .expect("the right key connects");
    let row = client.query_one("SELECT 1::BIGINT AS one", &[]).await.expect("a row");
    assert_eq!(row.get::<_, i64>("one"), 1);
    let (status, body) = query(&there, &url, &admin).await;
    assert_eq!(status, 200, "{body}");

    // Operators see it.
    let metrics = there
        .get(format!("{url}/metrics"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    assert!(value("tessera_catalog_auth_throttled_total") >= 981);
    assert!(value("tessera_catalog_auth_failures_total") >= 20);
    tokio::time::sleep(Duration::from_millis(10)).await;
    server.terminate();
}
