//! End-to-end tests of the `tessera` binary: real processes over real sockets.

mod cli;
mod hygiene;
mod logs;
mod oidc;
mod reliability;
mod throttle;
mod tls;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// A running `tessera serve` and what it printed at start.
struct Server {
    child: Child,
    url: String,
    bootstrap_key: Option<String>,
    banner: Vec<String>,
}

impl Server {
    /// Starts the binary and reads its banner (bounded wait, no sleeps); its
    /// stderr goes to the test's logs.
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let (stderr, log) = logs::process("serve");
        Self::start_logged(args, envs, stderr, log)
    }

    /// As [`Server::start`], with stderr and the unparsed rest of stdout
    /// going to `stderr` and `log`.
    fn start_logged(args: &[&str], envs: &[(&str, &str)], stderr: Stdio, log: Option<std::fs::File>) -> Self {
        let mut cmd = Command::new(BIN);
        // The gateway's protocol ports are picked free, so tests run side by side.
        cmd.arg("serve")
            .args(args)
            .args(["--pg-listen", "127.0.0.1:0", "--flight-listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in envs {
            if *k == "TESSERA_BOOTSTRAP_KEY" {
                logs::secret(v);
            }
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("tessera starts");
        let rx = stdout_lines(&mut child, log);
        let mut banner = Vec::new();
        let mut url = None;
        let mut bootstrap_key = None;
        // The banner ends with the docs lines, then the optional key lines.
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
            if let Some(rest) = line.strip_prefix("Tessera catalog listening on ") {
                url = Some(rest.trim().to_string());
            }
            if let Some(rest) = line.strip_prefix("Bootstrap admin API key (shown once): ") {
                bootstrap_key = Some(rest.trim().to_string());
            }
            let done = line.contains("OpenAPI:");
            banner.push(line);
            if done {
                // The key lines, if any, follow at once.
                while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
                    if let Some(rest) = line.strip_prefix("Bootstrap admin API key (shown once): ") {
                        bootstrap_key = Some(rest.trim().to_string());
                    }
                    banner.push(line);
                }
                break;
            }
        }
        let url = url.unwrap_or_else(|| panic!("no listening line in {banner:?}"));
        if let Some(key) = &bootstrap_key {
            logs::secret(key);
        }
        Self {
            child,
            url,
            bootstrap_key,
            banner,
        }
    }

    /// SIGTERM, then waits: the exit must be clean.
    fn terminate(mut self) {
        terminate(&mut self.child);
    }
}

/// The child's stdout, line by line, read on a thread of its own so that a
/// caller can wait with a timeout. Once the caller stops listening (drops the
/// receiver), the rest is drained into `log` (the process's log file), or
/// discarded.
fn stdout_lines(child: &mut Child, mut log: Option<std::fs::File>) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Err(mpsc::SendError(line)) = tx.send(line)
                && let Some(log) = &mut log
            {
                let _ = writeln!(log, "{line}");
            }
        }
    });
    rx
}

/// SIGTERM, then waits: a graceful shutdown exits 0.
fn terminate(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = child.wait().expect("waits");
    assert!(exit.success(), "graceful shutdown exits 0, got {exit}");
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn call(method: reqwest::Method, url: String, key: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, url).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("sent");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Waits until at least `n` watches are parked in the catalog at `url` (its
/// `tessera_catalog_watches` metric).
async fn wait_for_watches(url: &str, key: &str, n: i64) {
    let started = std::time::Instant::now();
    loop {
        let (_, metrics) = call(reqwest::Method::GET, format!("{url}/metrics"), key, None).await;
        let parked = metrics.as_str().unwrap_or_default().lines().find_map(|line| {
            line.strip_prefix("tessera_catalog_watches ")
                .and_then(|v| v.trim().parse::<i64>().ok())
        });
        if parked.is_some_and(|p| p >= n) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{n} watches never parked: {parked:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn embedded_catalog_keeps_its_data_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8");

    let first = Server::start(&["--data-dir", data, "--listen", "127.0.0.1:0"], &[]);
    let key = first
        .bootstrap_key
        .clone()
        .unwrap_or_else(|| panic!("first start prints a key: {:?}", first.banner));
    assert!(
        first.banner.iter().any(|l| l.contains("embedded SQLite")),
        "{:?}",
        first.banner
    );
    assert!(Path::new(data).join("catalog.db").exists());

    let (status, me) = call(reqwest::Method::GET, format!("{}/api/v1/whoami", first.url), &key, None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["principal"]["admin"], true);
    let (status, _) = call(
        reqwest::Method::POST,
        format!("{}/api/v1/teams", first.url),
        &key,
        Some(json!({"name": "sales_team"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(
        reqwest::Method::POST,
        format!("{}/api/v1/domains", first.url),
        &key,
        Some(json!({"name": "sales", "owner_team": "sales_team", "title": "Sales"})),
    )
    .await;
    assert_eq!(status, 201);
    // A parked watch is released by the shutdown instead of holding it up.
    let (_, version) = call(
        reqwest::Method::GET,
        format!("{}/api/v1/version", first.url),
        &key,
        None,
    )
    .await;
    let version = version["version"].as_i64().expect("version");
    let watch = {
        let url = format!("{}/api/v1/version/watch?after={version}&timeout_secs=25", first.url);
        let key = key.clone();
        tokio::spawn(async move { call(reqwest::Method::GET, url, &key, None).await })
    };
    let started = std::time::Instant::now();
    // The watch reaches the server and parks before the signal (beside the
    // embedded gateway's own watch).
    wait_for_watches(&first.url, &key, 2).await;
    first.terminate();
    let (status, answer) = watch.await.expect("joined");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["version"], version);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "shutdown waited for the watch"
    );

    let second = Server::start(&["--data-dir", data, "--listen", "127.0.0.1:0"], &[]);
    assert!(
        second.bootstrap_key.is_none(),
        "the key is shown once only: {:?}",
        second.banner
    );
    let (status, domain) = call(
        reqwest::Method::GET,
        format!("{}/api/v1/domains/sales", second.url),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{domain}");
    assert_eq!(domain["title"], "Sales");
    second.terminate();
}

#[tokio::test]
async fn configuration_layers_and_bootstrap_key_from_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let config = dir.path().join("tessera.toml");
    // The file says one address and the data directory; the environment overrides the address.
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:1\"\ndata_dir = {:?}\n",
            data.to_str().expect("utf-8")
        ),
    )
    .expect("write config");
    let key = "tsk_a1b2c3d4e5f6_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let server = Server::start(
        &["--config", config.to_str().expect("utf-8")],
        &[("TESSERA_LISTEN", &free.to_string()), ("TESSERA_BOOTSTRAP_KEY", key)],
    );
    assert_eq!(
        server.url,
        format!("http://{free}"),
        "the environment overrides the file"
    );
    assert!(server.bootstrap_key.is_none(), "a configured key is not printed");
    assert!(data.join("catalog.db").exists(), "data_dir from the file");
    let (status, me) = call(reqwest::Method::GET, format!("{}/api/v1/whoami", server.url), key, None).await;
    assert_eq!(status, 200, "{me}");
    server.terminate();

    // A typo in the file is an error that names it, and a failing exit code.
    std::fs::write(&config, "lisen = \"127.0.0.1:0\"\n").expect("write config");
    let out = Command::new(BIN)
        .args(["serve", "--config", config.to_str().expect("utf-8")])
        .output()
        .expect("runs");
    logs::record("serve", &out);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lisen"), "{stderr}");
}

#[tokio::test]
async fn postgres_is_selected_by_database_url() {
    let admin_url =
        std::env::var("TESSERA_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let db = format!("tessera_e2e_{}", std::process::id());
    let psql = |sql: &str| {
        let out = Command::new("psql")
            .args([admin_url.as_str(), "-qAtc", sql])
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    psql(&format!("DROP DATABASE IF EXISTS {db}"));
    psql(&format!("CREATE DATABASE {db}"));
    let server_url = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(s, _)| s)
        .to_string();
    let url = format!("{server_url}/{db}");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        &[
            "--database-url",
            &url,
            "--data-dir",
            dir.path().to_str().expect("utf-8"),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert!(
        server.banner.iter().any(|l| l.contains("PostgreSQL")),
        "{:?}",
        server.banner
    );
    let key = server.bootstrap_key.clone().expect("first start prints a key");
    let (status, _) = call(
        reqwest::Method::GET,
        format!("{}/api/v1/whoami", server.url),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        !dir.path().join("catalog.db").exists(),
        "no SQLite file when PostgreSQL is used"
    );
    server.terminate();
    psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
}

#[test]
fn openapi_command_prints_the_document() {
    let out = Command::new(BIN).arg("openapi").output().expect("runs");
    logs::record("cli", &out);
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let committed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json"))
        .expect("docs/openapi.json is committed");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), committed.trim_end());
}

// ---------------------------------------------------------------- contract CLI

fn tessera(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("runs");
    logs::record("cli", &out);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contracts/examples")
        .join(name)
        .to_str()
        .expect("utf-8")
        .to_string()
}

#[test]
fn contract_lint_and_export() {
    for file in ["sales.orders.odcs.yaml", "customers.customer.odcs.yaml"] {
        let (code, out, err) = tessera(&["contract", "lint", &example(file)]);
        assert_eq!(code, 0, "{out}{err}");
        // Export to JSON and lint that: the same contract.
        let (code, json, err) = tessera(&["contract", "export", &example(file), "--format", "json"]);
        assert_eq!(code, 0, "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        let exported = dir.path().join("exported.json");
        std::fs::write(&exported, &json).expect("write");
        let (code, out, _) = tessera(&[
            "contract",
            "lint",
            exported.to_str().expect("utf-8"),
            "--output",
            "json",
        ]);
        assert_eq!(code, 0, "{out}");
        assert_eq!(serde_json::from_str::<Value>(&out).expect("json")["valid"], true);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.yaml");
    let text = std::fs::read_to_string(example("sales.orders.odcs.yaml")).expect("read");
    std::fs::write(&broken, text.replacen("logicalType: string", "logicalType: strng", 1)).expect("write");
    let (code, out, _) = tessera(&["contract", "lint", broken.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("schema[0].properties[2].logicalType: unknown type \"strng\""),
        "{out}"
    );
    let (code, _, err) = tessera(&["contract", "lint", "/no/such/file.yaml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn contract_diff_exits_1_on_breaking_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(example("sales.orders.odcs.yaml")).expect("read");
    let narrowed = dir.path().join("narrowed.yaml");
    std::fs::write(
        &narrowed,
        text.replacen("decimal(15,2)", "decimal(12,2)", 1)
            .replacen("version: 1.0.0", "version: 1.1.0", 1),
    )
    .expect("write");
    let widened = dir.path().join("widened.yaml");
    std::fs::write(
        &widened,
        text.replacen("decimal(15,2)", "decimal(18,2)", 1)
            .replacen("version: 1.0.0", "version: 1.1.0", 1),
    )
    .expect("write");
    let major = dir.path().join("major.yaml");
    std::fs::write(
        &major,
        text.replacen("decimal(15,2)", "decimal(12,2)", 1)
            .replacen("version: 1.0.0", "version: 2.0.0", 1),
    )
    .expect("write");
    let old = example("sales.orders.odcs.yaml");
    let (code, out, err) = tessera(&["contract", "diff", &old, narrowed.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("breaking") && out.contains("type-narrowed") && out.contains("orders.o_totalprice"),
        "{out}"
    );
    let (code, out, _) = tessera(&[
        "contract",
        "diff",
        &old,
        narrowed.to_str().expect("utf-8"),
        "--output",
        "json",
    ]);
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(report["breaking"], true);
    assert_eq!(report["changes"][0]["rule"], "type-narrowed");
    assert_eq!(report["changes"][0]["old"], "decimal(15,2)");
    let (code, out, _) = tessera(&["contract", "diff", &old, widened.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warning") && out.contains("type-widened"), "{out}");
    let (code, _, err) = tessera(&["contract", "diff", &old, major.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "a new major may break: {err}");
    let (code, _, _) = tessera(&[
        "contract",
        "diff",
        &old,
        narrowed.to_str().expect("utf-8"),
        "--mode",
        "none",
    ]);
    assert_eq!(code, 0);
}

#[tokio::test]
async fn contract_test_checks_a_real_table() {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    let dir = tempfile::tempdir().expect("tempdir");
    let table = dir.path().join("accounts");
    let table = table.to_str().expect("utf-8");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("email", DataType::Utf8, true),
    ]));
    // Seeded defects: a duplicate id and a missing e-mail.
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 2, 3])),
            Arc::new(StringArray::from(vec![
                Some("a@x.org"),
                None,
                Some("b@x.org"),
                Some("c@x.org"),
            ])),
        ],
    )
    .expect("batch");
    tessera_lake::write(
        table,
        &Default::default(),
        vec![batch],
        tessera_lake::WriteMode::Overwrite,
        &[],
    )
    .await
    .expect("written");
    let contract = dir.path().join("accounts.odcs.yaml");
    std::fs::write(
        &contract,
        "apiVersion: v3.1.0\nkind: DataContract\nid: accounts\nversion: 1.0.0\nstatus: active\nschema:\n  - name: accounts\n    properties:\n      - name: id\n        logicalType: integer\n        physicalType: bigint\n        required: true\n        quality:\n          - metric: duplicateValues\n            mustBe: 0\n      - name: email\n        logicalType: string\n        quality:\n          - metric: nullValues\n            mustBe: 0\n    quality:\n      - metric: rowCount\n        mustBe: 4\n",
    )
    .expect("write");
    let (code, out, err) = tessera(&[
        "contract",
        "test",
        contract.to_str().expect("utf-8"),
        "--table",
        table,
        "--output",
        "json",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let report: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(report["mismatches"], serde_json::json!([]));
    assert_eq!(report["health"], "failing");
    let statuses: Vec<(String, String)> = report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["rule"].as_str().expect("rule").to_string(),
                r["status"].as_str().expect("status").to_string(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("library:rowCount".to_string(), "pass".to_string()),
            ("library:duplicateValues".to_string(), "fail".to_string()),
            ("library:nullValues".to_string(), "fail".to_string()),
        ]
    );
    let (code, out, _) = tessera(&[
        "contract",
        "test",
        contract.to_str().expect("utf-8"),
        "--table",
        "/no/table",
    ]);
    assert_eq!(code, 2, "{out}");
}

/// A 10 MB contract is refused with 413 before it is read, and nothing changes.
/// (curl, because it reads the early answer while still sending, as HTTP/1.1
/// clients should.)
#[tokio::test]
async fn a_ten_megabyte_contract_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = "tsk_b1b2c3d4e5f6_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let server = Server::start(
        &[
            "--data-dir",
            dir.path().join("data").to_str().expect("utf-8"),
            "--listen",
            "127.0.0.1:0",
        ],
        &[("TESSERA_BOOTSTRAP_KEY", key)],
    );
    let api = format!("{}/api/v1", server.url);
    for (path, body) in [
        ("teams", json!({"name": "t"})),
        ("domains", json!({"name": "sales", "owner_team": "t"})),
        ("domains/sales/products", json!({"name": "orders"})),
    ] {
        let (status, reply) = call(reqwest::Method::POST, format!("{api}/{path}"), key, Some(body)).await;
        assert_eq!(status, 201, "{reply}");
    }
    let (_, before) = call(reqwest::Method::GET, format!("{api}/version"), key, None).await;
    let huge = dir.path().join("huge.yaml");
    std::fs::write(
        &huge,
        format!("version: 1.0.0\ndescription: {}\n", "x".repeat(10 * 1024 * 1024)),
    )
    .expect("write");
    let out = Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "-H",
            &format!("Authorization: Bearer {key}"),
            "-H",
            "Content-Type: application/yaml",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", huge.display()))
        .arg(format!("{api}/domains/sales/products/orders/contracts"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.rsplit_once('\n').expect("status line");
    assert_eq!(code, "413", "{text}");
    let problem: Value = serde_json::from_str(body).expect("problem json");
    assert_eq!(problem["type"], "urn:tessera:problem:payload-too-large");
    let (_, after) = call(reqwest::Method::GET, format!("{api}/version"), key, None).await;
    assert_eq!(before, after, "nothing was written");
    server.terminate();
}

/// The data plane measures, the catalog records: `tessera quality run` checks a
/// product's table with its latest contract and reports the run.
#[tokio::test]
async fn quality_run_reports_to_the_catalog() {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    let dir = tempfile::tempdir().expect("tempdir");
    let key = "tsk_c1b2c3d4e5f6_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let server = Server::start(
        &[
            "--data-dir",
            dir.path().join("data").to_str().expect("utf-8"),
            "--listen",
            "127.0.0.1:0",
        ],
        &[
            ("TESSERA_BOOTSTRAP_KEY", key),
            ("TESSERA_LAKE__ROOT", dir.path().join("lake").to_str().expect("utf-8")),
        ],
    );
    let api = format!("{}/api/v1", server.url);
    let table = dir.path().join("lake/sales/orders");
    let table = table.to_str().expect("utf-8");
    // A duplicate key: the contract's uniqueness rule must fail.
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![1, 2, 2]))],
    )
    .expect("batch");
    tessera_lake::write(
        table,
        &Default::default(),
        vec![batch],
        tessera_lake::WriteMode::Overwrite,
        &[],
    )
    .await
    .expect("written");
    for (path, body) in [
        ("teams", json!({"name": "t"})),
        ("domains", json!({"name": "sales", "owner_team": "t"})),
        (
            "domains/sales/products",
            json!({"name": "orders", "output_ports": [{"major_version": 1, "location": table}]}),
        ),
    ] {
        let (status, reply) = call(reqwest::Method::POST, format!("{api}/{path}"), key, Some(body)).await;
        assert_eq!(status, 201, "{reply}");
    }
    let contract = "apiVersion: v3.1.0\nkind: DataContract\nid: orders\nversion: 1.0.0\nstatus: active\nschema:\n  - name: orders\n    properties:\n      - name: id\n        logicalType: integer\n        physicalType: bigint\n        required: true\n        quality:\n          - metric: duplicateValues\n            mustBe: 0\n    quality:\n      - metric: rowCount\n        mustBeGreaterThan: 0\n";
    let reply = reqwest::Client::new()
        .post(format!("{api}/domains/sales/products/orders/contracts"))
        .bearer_auth(key)
        .header("content-type", "application/yaml")
        .body(contract)
        .send()
        .await
        .expect("sent");
    assert_eq!(reply.status(), 201, "{}", reply.text().await.unwrap_or_default());

    let out = Command::new(BIN)
        .args([
            "quality",
            "run",
            "--product",
            "sales.orders",
            "--catalog",
            &server.url,
            "--output",
            "json",
        ])
        .env("TESSERA_API_KEY", key)
        .output()
        .expect("runs");
    logs::record("cli", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "failing exits 1: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(run["health"], "failing");
    assert_eq!(run["table_version"], 0);
    let statuses: Vec<&str> = run["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_str().expect("s"))
        .collect();
    assert_eq!(statuses, ["pass", "fail"]);
    let (_, product) = call(
        reqwest::Method::GET,
        format!("{api}/domains/sales/products/orders"),
        key,
        None,
    )
    .await;
    assert_eq!(product["health"], "failing");
    server.terminate();
}

/// `tessera serve` runs the gateway beside the catalog: a product registered
/// over REST is queryable over HTTP and PostgreSQL wire without a restart, and
/// "not found" once retired.
#[tokio::test]
async fn serve_answers_sql_over_registered_products() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let lake = dir.path().join("lake");
    let lake = lake.to_str().expect("utf-8");
    let mesh = tessera_testkit::tpch::write_mesh(lake, 0.01, &Default::default())
        .await
        .expect("mesh");
    let nation = mesh.iter().find(|g| g.product == "nation").expect("nation");
    let server = Server::start(
        &["--data-dir", data.to_str().expect("utf-8"), "--listen", "127.0.0.1:0"],
        &[("TESSERA_LAKE__ROOT", lake)],
    );
    let key = server.bootstrap_key.clone().expect("first start prints the key");
    let base = format!("{}/api/v1", server.url);
    let query = |sql: &str| {
        let (url, key, sql) = (format!("{base}/query"), key.clone(), sql.to_string());
        async move { call(reqwest::Method::POST, url, &key, Some(json!({ "sql": sql }))).await }
    };

    let (status, problem) = query("SELECT count(*) AS n FROM customers.nation").await;
    assert_eq!(
        (status, problem["sqlstate"].as_str()),
        (404, Some("42P01")),
        "{problem}"
    );

    for (path, body) in [
        ("/teams", json!({"name": "customers_team"})),
        ("/domains", json!({"name": "customers", "owner_team": "customers_team"})),
        (
            "/domains/customers/products",
            json!({"name": "nation", "output_ports": [{"major_version": 1, "location": nation.location}]}),
        ),
    ] {
        let (status, body) = call(reqwest::Method::POST, format!("{base}{path}"), &key, Some(body)).await;
        assert_eq!(status, 201, "{path}: {body}");
    }
    // The gateway follows the catalog's change sequence: no restart.
    let mut answer = Value::Null;
    for _ in 0..50 {
        let (status, body) = query("SELECT count(*) AS n FROM customers.nation").await;
        if status == 200 {
            answer = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer["rows"], json!([{"n": 25}]), "{answer}");
    assert_eq!(answer["row_count"], 1);

    // PostgreSQL wire, on the port the banner printed, with psql when present.
    let pg_line = server
        .banner
        .iter()
        .find(|l| l.contains("PostgreSQL wire:"))
        .expect("a psql line");
    let port: u16 = pg_line
        .split("port=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .expect("a port");
    if Command::new("psql").arg("--version").output().is_ok() {
        let out = Command::new("psql")
            .arg(format!(
                "host=127.0.0.1 port={port} dbname=tessera user=admin password={key}"
            ))
            .args([
                "-A",
                "-t",
                "-c",
                "SELECT n_name FROM customers.nation WHERE n_nationkey = 7",
            ])
            .output()
            .expect("psql runs");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "GERMANY",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("psql")
            .arg(format!(
                "host=127.0.0.1 port={port} dbname=tessera user=admin password={key}"
            ))
            .args(["-c", "\\dt customers.*"])
            .output()
            .expect("psql runs");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("nation"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // psql's catalog commands: databases, schemas, a table's columns.
        for (command, expected) in [
            ("\\l", "tessera"),
            ("\\dn", "customers"),
            ("\\d customers.nation", "n_regionkey"),
        ] {
            let out = Command::new("psql")
                .arg(format!(
                    "host=127.0.0.1 port={port} dbname=tessera user=admin password={key}"
                ))
                .args(["-c", command])
                .output()
                .expect("psql runs");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains(expected),
                "psql {command}: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    // psycopg 3 and SQLAlchemy's inspector (scripts/test installs them and
    // names the interpreter in TESSERA_TEST_PYTHON).
    if let Ok(python) = std::env::var("TESSERA_TEST_PYTHON") {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/pg_clients.py");
        client_passes(
            "PostgreSQL clients",
            Command::new(python)
                .arg(script)
                .args(["127.0.0.1", &port.to_string(), &key]),
        );
    }

    // The PostgreSQL JDBC driver.
    jdbc_checks(&["127.0.0.1".as_ref(), port.to_string().as_ref(), key.as_ref()]);

    // A key revoked in the catalog stops working at the gateway within seconds.
    let (status, body) = call(
        reqwest::Method::POST,
        format!("{base}/principals"),
        &key,
        Some(json!({"name": "ana", "kind": "user"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, created) = call(
        reqwest::Method::POST,
        format!("{base}/principals/ana/keys"),
        &key,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let ana = created["key"].as_str().expect("a key").to_string();
    let ana_query = |expected: u16| {
        let (url, ana) = (format!("{base}/query"), ana.clone());
        async move {
            for _ in 0..50 {
                let (status, _) = call(
                    reqwest::Method::POST,
                    url.clone(),
                    &ana,
                    Some(json!({"sql": "SELECT 1"})),
                )
                .await;
                if status == expected {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        }
    };
    assert!(ana_query(200).await, "a new key works at the gateway");
    let id = created["api_key"]["id"].as_str().expect("key id");
    let (status, body) = call(
        reqwest::Method::DELETE,
        format!("{base}/principals/ana/keys/{id}"),
        &key,
        None,
    )
    .await;
    assert!(status == 200 || status == 204, "{body}");
    assert!(ana_query(401).await, "a revoked key is refused within seconds");

    // Retired: "not found".
    let (status, body) = call(
        reqwest::Method::PATCH,
        format!("{base}/domains/customers/products/nation"),
        &key,
        Some(json!({"status": "retired"})),
    )
    .await;
    assert!(status == 200 || status == 409, "{body}");
    if status == 200 {
        let mut gone = false;
        for _ in 0..50 {
            if query("SELECT count(*) FROM customers.nation").await.0 == 404 {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(gone, "retired products disappear");
    }
    server.terminate();
}

/// `tessera gateway` alone follows a remote catalog over its REST API (watch,
/// then the bundle) and serves what the catalog registers.
#[tokio::test]
async fn a_standalone_gateway_follows_the_catalog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let lake = dir.path().join("lake");
    let mesh = tessera_testkit::tpch::write_mesh(lake.to_str().expect("utf-8"), 0.01, &Default::default())
        .await
        .expect("mesh");
    let region = mesh.iter().find(|g| g.product == "region").expect("region");
    let catalog = Server::start(
        &["--data-dir", data.to_str().expect("utf-8"), "--listen", "127.0.0.1:0"],
        &[("TESSERA_LAKE__ROOT", lake.to_str().expect("utf-8"))],
    );
    let key = catalog.bootstrap_key.clone().expect("key");
    let base = format!("{}/api/v1", catalog.url);

    let gateway_dir = dir.path().join("gateway");
    let edge_key = gateway_principal(&base, &key, "edge").await;
    let (mut gateway, query_url) = start_gateway(
        &catalog.url,
        &edge_key,
        &[("TESSERA_GATEWAY_DATA_DIR", gateway_dir.to_str().expect("utf-8"))],
    );

    for (path, body) in [
        ("/teams", json!({"name": "customers_team"})),
        ("/domains", json!({"name": "customers", "owner_team": "customers_team"})),
        (
            "/domains/customers/products",
            json!({"name": "region", "output_ports": [{"major_version": 1, "location": region.location}]}),
        ),
    ] {
        let (status, body) = call(reqwest::Method::POST, format!("{base}{path}"), &key, Some(body)).await;
        assert_eq!(status, 201, "{path}: {body}");
    }
    let mut answer = Value::Null;
    for _ in 0..100 {
        let (status, body) = call(
            reqwest::Method::POST,
            query_url.clone(),
            &key,
            Some(json!({"sql": "SELECT r_name FROM customers.region WHERE r_regionkey = 3"})),
        )
        .await;
        if status == 200 {
            answer = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer["rows"], json!([{"r_name": "EUROPE"}]), "{answer}");
    let _ = gateway.kill();
    let _ = gateway.wait();
    catalog.terminate();
}

/// Creates a gateway's principal `name` (a service principal with the
/// gateway role) through `base` with the admin's key, and returns a key for it.
async fn gateway_principal(base: &str, admin: &str, name: &str) -> String {
    let (status, body) = call(
        reqwest::Method::POST,
        format!("{base}/principals"),
        admin,
        Some(json!({"name": name, "kind": "service", "roles": ["gateway"]})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        reqwest::Method::POST,
        format!("{base}/principals/{name}/keys"),
        admin,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let key = body["key"].as_str().expect("a key").to_string();
    logs::secret(&key);
    key
}

/// Starts `tessera gateway` against `catalog` and returns it with its query
/// URL. The key is given as in production, in a file of mode 0600
/// (`--key-file`), read at start.
fn start_gateway(catalog: &str, key: &str, envs: &[(&str, &str)]) -> (Child, String) {
    let (gateway, http, _, _) = start_gateway_endpoints(catalog, key, envs);
    (gateway, http)
}

/// As [`start_gateway`], with every endpoint it printed: the query URL, the
/// PostgreSQL wire port and the Flight SQL URI.
fn start_gateway_endpoints(catalog: &str, key: &str, envs: &[(&str, &str)]) -> (Child, String, u16, String) {
    let mut key_file = tempfile::NamedTempFile::new().expect("a key file");
    key_file.write_all(key.as_bytes()).expect("key written");
    let (stderr, log) = logs::process("gateway");
    let mut command = Command::new(BIN);
    command
        .args(["gateway", "--catalog", catalog, "--key-file"])
        .arg(key_file.path())
        .args([
            "--http-listen",
            "127.0.0.1:0",
            "--pg-listen",
            "127.0.0.1:0",
            "--flight-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(stderr);
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut gateway = command.spawn().expect("gateway starts");
    let rx = stdout_lines(&mut gateway, log);
    let (mut http, mut pg) = (None, None);
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        if line.contains("SQL over HTTP:") {
            http = line.split_whitespace().last().map(str::to_string);
        } else if line.contains("PostgreSQL wire:") {
            pg = line
                .split("port=")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|p| p.parse().ok());
        } else if let Some(rest) = line.trim().strip_prefix("Flight SQL:")
            && let (Some(http), Some(pg), Some(flight)) = (http.clone(), pg, rest.split_whitespace().next())
        {
            return (gateway, http, pg, flight.to_string());
        }
    }
    let _ = gateway.kill();
    let _ = gateway.wait();
    panic!("the gateway printed no endpoints");
}

/// A free loopback port (for a catalog that must come back where it was).
/// Runs tests/clients/PgJdbc.java with `args` (HOST PORT KEY [ROOT_CA
/// [TABLES]]) when scripts/test names Debian's JDBC driver in
/// TESSERA_TEST_JDBC_JAR (Java runs it as a single source file).
fn jdbc_checks(args: &[&std::ffi::OsStr]) {
    let Ok(jar) = std::env::var("TESSERA_TEST_JDBC_JAR") else {
        return;
    };
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/PgJdbc.java");
    client_passes("JDBC", Command::new("java").args(["-cp", &jar]).arg(source).args(args));
}

/// Runs a client check program to its end; it must exit 0 (its output is
/// shown when it does not).
fn client_passes(what: &str, command: &mut Command) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One statement through psql (the password in `PGPASSWORD`): its unaligned
/// output, or its error message.
fn psql(conninfo: &str, password: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .arg(conninfo)
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .args(["-X", "-A", "-t", "-c", sql])
        .output()
        .expect("psql runs");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `query` until `done` holds for its answer; returns how long it took.
async fn until(
    url: &str,
    key: &str,
    purpose: Option<&str>,
    sql: &str,
    done: impl Fn(u16, &Value) -> bool,
) -> Option<Duration> {
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let mut request = reqwest::Client::new()
            .post(url)
            .bearer_auth(key)
            .json(&json!({ "sql": sql }));
        if let Some(purpose) = purpose {
            request = request.header("tessera-purpose", purpose);
        }
        if let Ok(response) = request.send().await {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if done(status, &body) {
                return Some(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// The newest 500 usage records of `customers.customer`, and its page.
async fn usage_of_customer(base: &str, key: &str) -> (Value, Vec<Value>) {
    let url = format!("{base}/domains/customers/products/customer/usage?limit=500");
    let (_, page) = call(reqwest::Method::GET, url, key, None).await;
    let items = page["items"].as_array().cloned().unwrap_or_default();
    (page, items)
}

/// Policies written once in the catalog reach every gateway, the embedded one
/// and a standalone one, within a second; a standalone gateway keeps serving
/// its last-known-good bundle while the catalog is away (also across its own
/// restart), fails closed past `max_staleness`, and resyncs when the catalog
/// returns. Every gateway reports to `GET /api/v1/gateways`, and queries'
/// audit reaches the product's owners.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_reach_every_gateway_and_outlive_the_catalog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8").to_string();
    let lake = dir.path().join("lake");
    let mesh = tessera_testkit::tpch::write_mesh(lake.to_str().expect("utf-8"), 0.01, &Default::default())
        .await
        .expect("mesh");
    let customer = mesh.iter().find(|g| g.product == "customer").expect("customer");
    let listen = format!("127.0.0.1:{}", free_port());
    let catalog = Server::start(
        &["--data-dir", &data, "--listen", &listen],
        &[("TESSERA_LAKE__ROOT", lake.to_str().expect("utf-8"))],
    );
    let key = catalog.bootstrap_key.clone().expect("key");
    let base = format!("{}/api/v1", catalog.url);
    let post = |path: &str, body: Value| {
        let (url, key) = (format!("{base}{path}"), key.clone());
        async move { call(reqwest::Method::POST, url, &key, Some(body)).await }
    };

    // A product with a contract classifying c_phone as PII, and an analyst with a grant.
    let meta = tessera_lake::table_meta(&customer.location, &Default::default())
        .await
        .expect("meta")
        .expect("table");
    let properties: Vec<Value> = meta
        .schema
        .fields()
        .iter()
        .map(|f| {
            let mut p = serde_json::to_value(tessera_contracts::odcs::arrow::property_from_field(f)).expect("json");
            if f.name() == "c_phone" {
                p["classification"] = json!("pii");
            }
            p
        })
        .collect();
    let contract = json!({"apiVersion": "v3.1.0", "kind": "DataContract", "id": "customer", "version": "1.0.0",
        "status": "active", "name": "customer", "schema": [{"name": "customer", "properties": properties}]});
    for (path, body) in [
        ("/teams", json!({"name": "customers_team"})),
        ("/domains", json!({"name": "customers", "owner_team": "customers_team"})),
        (
            "/domains/customers/products",
            json!({"name": "customer", "output_ports": [{"major_version": 1, "location": customer.location}]}),
        ),
        ("/domains/customers/products/customer/contracts", contract),
        (
            "/principals",
            json!({"name": "ana", "kind": "user", "attributes": {"regions": ["EUROPE"], "purposes": ["analytics"]}}),
        ),
        (
            "/grants",
            json!({"name": "ana_customers", "subject": {"kind": "principal", "name": "ana"},
                   "target": {"kind": "domain", "domain": "customers"}}),
        ),
    ] {
        let (status, body) = post(path, body).await;
        assert_eq!(status, 201, "{path}: {body}");
    }
    let (status, created) = post("/principals/ana/keys", json!({})).await;
    assert_eq!(status, 201, "{created}");
    let ana = created["key"].as_str().expect("key").to_string();
    // Drafts are for their owners: publish (the table matches its contract).
    let (status, body) = call(
        reqwest::Method::PATCH,
        format!("{base}/domains/customers/products/customer"),
        &key,
        Some(json!({"status": "published"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let gateway_dir = dir.path().join("gateway");
    let gateway_env = [
        ("TESSERA_GATEWAY_DATA_DIR", gateway_dir.to_str().expect("utf-8")),
        ("TESSERA_GATEWAY_NAME", "edge_b"),
        ("TESSERA_GATEWAY_MAX_STALENESS_MS", "4000"),
    ];
    let edge_key = gateway_principal(&base, &key, "edge").await;
    let (mut edge, edge_url) = start_gateway(&catalog.url, &edge_key, &gateway_env);
    let gateways = [format!("{base}/query"), edge_url.clone()];
    let phone = "SELECT c_phone FROM customers.customer WHERE c_custkey = 1";
    let raw = |status: u16, body: &Value| {
        status == 200 && body["rows"][0]["c_phone"].as_str().is_some_and(|p| p.contains('-'))
    };
    let hashed =
        |status: u16, body: &Value| status == 200 && body["rows"][0]["c_phone"].as_str().is_some_and(|p| p.len() == 64);
    for url in &gateways {
        assert!(until(url, &ana, None, phone, raw).await.is_some(), "{url} serves ana");
    }

    // One mask, written once, enforced by both gateways.
    let (status, body) = post(
        "/masks",
        json!({"name": "pii", "target": {"kind": "all"}, "columns": {"kind": "classification", "classification": "pii"},
               "function": {"kind": "hash"}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // Measured from the catalog's answer to the change, for each gateway.
    let written = std::time::Instant::now();
    let mut delays = Vec::new();
    for url in &gateways {
        until(url, &ana, None, phone, hashed)
            .await
            .expect("the mask is enforced");
        delays.push(written.elapsed());
    }
    println!("policy change enforced after {delays:?} (embedded gateway, standalone gateway)");
    assert!(delays.iter().all(|d| *d < Duration::from_secs(10)), "{delays:?}");
    // A row filter: ana's regions only (customer 1 is in MOROCCO, AFRICA).
    let (status, body) = post(
        "/row-filters",
        json!({"name": "regions", "domain": "customers", "product": "customer",
               "expression": "c_nationkey IN (6, 7, 19, 22, 23) AND 'EUROPE' IN (attribute('regions'))"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let bad = post(
        "/row-filters",
        json!({"name": "broken", "domain": "customers", "product": "customer", "expression": "c_region = 'EUROPE'"}),
    )
    .await;
    assert_eq!(bad.0, 422, "{}", bad.1);
    let count = "SELECT count(*) AS n, count(DISTINCT c_nationkey) AS nations FROM customers.customer";
    for url in &gateways {
        let filtered = until(url, &ana, None, count, |s, b| {
            s == 200 && b["rows"][0]["nations"] == json!(5)
        })
        .await;
        assert!(filtered.is_some(), "{url} filters rows");
    }

    // Both gateways report SYNCED; the standalone one under its configured name.
    let mut synced = Value::Null;
    for _ in 0..100 {
        let (_, list) = call(reqwest::Method::GET, format!("{base}/gateways"), &key, None).await;
        let states: Vec<&str> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g["state"].as_str())
            .collect();
        if states.len() == 2 && states.iter().all(|s| *s == "SYNCED") {
            synced = list;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        synced
            .as_array()
            .is_some_and(|l| l.iter().any(|g| g["name"] == "edge_b")),
        "gateways: {synced}"
    );

    // The queries' audit reaches the catalog: the owners see masks and filters applied.
    let mut usage = Value::Null;
    for _ in 0..100 {
        let (page, items) = usage_of_customer(&base, &key).await;
        if items
            .iter()
            .any(|i| i["record"]["filters"] == json!(["regions:customers.customer"]))
        {
            usage = page;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let items = usage["items"].as_array().cloned().unwrap_or_default();
    assert!(
        items
            .iter()
            .any(|i| i["record"]["masks"] == json!(["pii:customers.customer.c_phone"])
                && i["record"]["principal"] == "ana"),
        "usage: {usage}"
    );

    // The catalog goes away: the standalone gateway serves its last-known-good
    // bundle, also after a restart of its own.
    let edge_base = edge_url.trim_end_matches("/api/v1/query").to_string();
    let (status, ready) = call(reqwest::Method::GET, format!("{edge_base}/ready"), "", None).await;
    assert_eq!(status, 200, "a synced gateway is ready: {ready}");
    catalog.terminate();
    let served = |s: u16, b: &Value| s == 200 && b["rows"][0]["nations"] == json!(5);
    assert!(until(&edge_url, &ana, None, count, served).await.is_some());
    // Queries answered while the catalog is away are audited all the same:
    // each record is on the gateway's disk before its answer completes, so
    // even a kill -9 right after the answers loses none of them.
    let run = std::process::id();
    let markers: Vec<String> = (0..6).map(|i| format!("outage_{run}_{i}")).collect();
    for marker in &markers {
        let sql = format!("SELECT count(*) AS n FROM customers.customer WHERE c_name <> '{marker}'");
        let answered = until(&edge_url, &ana, None, &sql, |s, _| s == 200).await;
        assert!(answered.is_some(), "{sql}");
    }
    // `/metrics` is for the metrics role or an admin: the bundle says who.
    let scrape = |key: &str| {
        let request = reqwest::Client::new()
            .get(format!("{edge_base}/metrics"))
            .bearer_auth(key);
        async move { request.send().await.expect("metrics answer").status().as_u16() }
    };
    assert_eq!(scrape(&ana).await, 403, "an analyst's key does not open /metrics");
    assert_eq!(scrape("tsk_000000000000_00").await, 401);
    let metrics = reqwest::Client::new()
        .get(format!("{edge_base}/metrics"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("text");
    let written = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tessera_gateway_audit_spool_written_total "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(written.is_some_and(|n| n >= 6), "{metrics}");
    let _ = edge.kill();
    let _ = edge.wait();
    let (mut edge, edge_url) = start_gateway(&format!("http://{listen}"), &edge_key, &gateway_env);
    let restarted = until(&edge_url, &ana, None, count, served).await;
    assert!(restarted.is_some(), "a restarted gateway serves the saved bundle");
    let edge_base = edge_url.trim_end_matches("/api/v1/query").to_string();
    // Past max_staleness it fails closed, and says so to load balancers.
    let closed = until(&edge_url, &ana, None, count, |s, b| {
        s == 503 && b["sqlstate"] == "57P03"
    })
    .await;
    assert!(closed.is_some(), "the gateway fails closed past max_staleness");
    let (status, ready) = call(reqwest::Method::GET, format!("{edge_base}/ready"), "", None).await;
    assert_eq!(status, 503, "a stale gateway is not ready: {ready}");
    assert_eq!(ready["status"], "unavailable", "{ready}");

    // The catalog returns (same data, same address): the gateway resyncs.
    let catalog = Server::start(
        &["--data-dir", &data, "--listen", &listen],
        &[("TESSERA_LAKE__ROOT", lake.to_str().expect("utf-8"))],
    );
    let back = until(&edge_url, &ana, None, count, served).await;
    assert!(back.is_some(), "the gateway resyncs when the catalog returns");
    // The outage's records reach the catalog from the restarted gateway's
    // spool, each exactly once.
    let base = format!("{}/api/v1", catalog.url);
    let key = catalog.bootstrap_key.clone().unwrap_or(key);
    let mut seen = Vec::new();
    for _ in 0..300 {
        let (_, items) = usage_of_customer(&base, &key).await;
        seen = markers
            .iter()
            .map(|m| {
                items
                    .iter()
                    .filter(|i| i["record"]["sql"].as_str().is_some_and(|sql| sql.contains(m.as_str())))
                    .count()
            })
            .collect();
        if seen.iter().all(|n| *n >= 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, vec![1; markers.len()], "each outage query's record arrives once");
    let (status, ready) = call(reqwest::Method::GET, format!("{edge_base}/health"), "", None).await;
    assert_eq!(status, 200, "{ready}");
    let _ = edge.kill();
    let _ = edge.wait();
    catalog.terminate();
}

/// A column another writer adds to a product's table is never served, and the
/// product reads `drifted` in the catalog (and on `/gateways`) as soon as the
/// gateway sees the new version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drifted_table_is_served_through_its_contract_and_reported() {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    let dir = tempfile::tempdir().expect("tempdir");
    let lake = dir.path().join("lake");
    let mesh = tessera_testkit::tpch::write_mesh(lake.to_str().expect("utf-8"), 0.01, &Default::default())
        .await
        .expect("mesh");
    let region = mesh.iter().find(|g| g.product == "region").expect("region");
    let server = Server::start(
        &[
            "--data-dir",
            dir.path().join("data").to_str().expect("utf-8"),
            "--listen",
            "127.0.0.1:0",
        ],
        &[("TESSERA_LAKE__ROOT", lake.to_str().expect("utf-8"))],
    );
    let key = server.bootstrap_key.clone().expect("key");
    let api = format!("{}/api/v1", server.url);
    for (path, body) in [
        ("/teams", json!({"name": "customers_team"})),
        ("/domains", json!({"name": "customers", "owner_team": "customers_team"})),
        (
            "/domains/customers/products",
            json!({"name": "region", "output_ports": [{"major_version": 1, "location": "region"}]}),
        ),
    ] {
        let (status, body) = call(reqwest::Method::POST, format!("{api}{path}"), &key, Some(body)).await;
        assert_eq!(status, 201, "{path}: {body}");
    }
    let contract = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/demo/contracts/customers.region.odcs.yaml"),
    )
    .expect("the demo's region contract");
    let response = reqwest::Client::new()
        .post(format!("{api}/domains/customers/products/region/contracts"))
        .bearer_auth(&key)
        .header("content-type", "application/yaml")
        .body(contract)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());

    // Another writer (delta-rs, schema merged) adds a column.
    let table = tessera_lake::open_table(&region.location, &Default::default())
        .await
        .expect("opens")
        .expect("exists");
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("r_regionkey", DataType::Int64, false),
            Field::new("r_name", DataType::Utf8, false),
            Field::new("r_comment", DataType::Utf8, false),
            Field::new("r_owner_phone", DataType::Utf8, true),
        ])),
        vec![
            Arc::new(Int64Array::from(vec![5])),
            Arc::new(StringArray::from(vec!["ATLANTIS"])),
            Arc::new(StringArray::from(vec!["sunk"])),
            Arc::new(StringArray::from(vec![Some("555-0100")])),
        ],
    )
    .expect("batch");
    table
        .write(vec![batch])
        .with_schema_mode(deltalake::operations::write::SchemaMode::Merge)
        .await
        .expect("written");

    let (status, answer) = call(
        reqwest::Method::POST,
        format!("{api}/query"),
        &key,
        Some(json!({"sql": "SELECT * FROM customers.region ORDER BY r_regionkey"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let columns: Vec<&str> = answer["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        columns,
        ["r_regionkey", "r_name", "r_comment"],
        "the contract's columns only"
    );
    assert_eq!(answer["rows"].as_array().map(Vec::len), Some(6));
    let started = std::time::Instant::now();
    loop {
        let (_, product) = call(
            reqwest::Method::GET,
            format!("{api}/domains/customers/products/region"),
            &key,
            None,
        )
        .await;
        if product["health"] == "drifted" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never drifted: {product}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, gateways) = call(reqwest::Method::GET, format!("{api}/gateways"), &key, None).await;
    let drift = &gateways[0]["drift"][0];
    assert_eq!(drift["product"], "region", "{gateways}");
    assert!(drift["mismatches"].to_string().contains("r_owner_phone"), "{gateways}");
}
