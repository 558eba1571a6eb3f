//! Secrets end to end (issue #17): storage credentials, API keys, the mask key
//! and database passwords given to the platform never reach its logs, and a
//! secret given as a command-line flag is warned about.
//!
//! The tables live on the S3-compatible test server of `scripts/s3.sh`
//! (`TESSERA_TEST_S3_*`), whose credentials are the secrets to look for.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::{BIN, Server, call, logs, start_gateway};

/// The S3-compatible test server and its credentials (the defaults are those
/// `scripts/s3.sh` exports).
struct S3 {
    endpoint: String,
    bucket: String,
    access_key_id: String,
    secret_access_key: String,
}

impl S3 {
    fn from_env() -> Self {
        let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_string());
        Self {
            endpoint: std::env::var("TESSERA_TEST_S3_ENDPOINT").expect(
                "TESSERA_TEST_S3_ENDPOINT names the S3-compatible test server: run scripts/test, or `. scripts/s3.sh; start_s3`",
            ),
            bucket: var("TESSERA_TEST_S3_BUCKET", "tessera-test"),
            access_key_id: var("TESSERA_TEST_S3_ACCESS_KEY_ID", "TESSERATESTS3ACCESSKEY"),
            secret_access_key: var(
                "TESSERA_TEST_S3_SECRET_ACCESS_KEY",
                "tessera-test-s3-secret-7c1e9a4b2d6f8e03",
            ),
        }
    }

    fn options(&self) -> [(&'static str, &str); 5] {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", self.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ALLOW_HTTP", "true"),
        ]
    }
}

/// A database password that must never show.
const DB_PASSWORD: &str = "tessera-e2e-db-password-5b0d93";

/// Polls a query endpoint until it answers EUROPE for region 3.
async fn region_3(url: &str, key: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..150 {
        let (status, body) = call(
            reqwest::Method::POST,
            url.to_string(),
            key,
            Some(json!({"sql": "SELECT r_name FROM customers.region WHERE r_regionkey = 3"})),
        )
        .await;
        if status == 200 {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never answered: {last}");
}

/// `tessera serve` and `tessera gateway` read a product on S3 with the
/// credentials of `[[storage]]`; the configuration logged at start shows the
/// option names with `***` for the secrets, and neither the S3 secret, nor
/// the admin key, nor the mask key, nor a database password is in any output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_the_logs() {
    let s3 = S3::from_env();
    logs::secret(&s3.secret_access_key);
    logs::secret(DB_PASSWORD);
    let dir = tempfile::tempdir().expect("tempdir");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let root = format!("s3://{}/e2e-hygiene-{}-{nanos}/", s3.bucket, std::process::id());
    let location = format!("{root}customers/region");
    let options: HashMap<String, String> = s3
        .options()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let batches = tessera_testkit::tpch::batches("region", 0.01).expect("region");
    tessera_lake::write(&location, &options, batches, tessera_lake::WriteMode::Overwrite, &[])
        .await
        .expect("written to S3");

    let inline: Vec<String> = s3.options().iter().map(|(k, v)| format!("{k} = {v:?}")).collect();
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n\n[[storage]]\nprefix = {root:?}\noptions = {{ {} }}\n",
            dir.path().join("data").to_str().expect("utf-8"),
            inline.join(", ")
        ),
    )
    .expect("config written");
    let config = config.to_str().expect("utf-8").to_string();

    // The catalog and its gateway; stderr kept here too when the run keeps no logs.
    let (serve_log, file) = logs::file("serve").unwrap_or_else(|| {
        let path = dir.path().join("serve.log");
        let file = File::create(&path).expect("log file");
        (path, file)
    });
    let rest = file.try_clone().expect("log file");
    let server = Server::start_logged(
        &["--config", &config, "--listen", "127.0.0.1:0"],
        &[],
        Stdio::from(file),
        Some(rest),
    );
    let key = server.bootstrap_key.clone().expect("first start prints a key");
    let api = format!("{}/api/v1", server.url);
    for (path, body) in [
        ("/teams", json!({"name": "customers_team"})),
        (
            "/domains",
            json!({"name": "customers", "owner_team": "customers_team", "storage_roots": [format!("{root}customers/")]}),
        ),
        (
            "/domains/customers/products",
            json!({"name": "region", "output_ports": [{"major_version": 1, "location": location}]}),
        ),
    ] {
        let (status, body) = call(reqwest::Method::POST, format!("{api}{path}"), &key, Some(body)).await;
        assert_eq!(status, 201, "{path}: {body}");
    }
    let answer = region_3(&format!("{api}/query"), &key).await;
    assert_eq!(answer["rows"], json!([{"r_name": "EUROPE"}]), "{answer}");
    let edge_key = super::gateway_principal(&api, &key, "edge").await;
    let (status, bundle) = call(reqwest::Method::GET, format!("{api}/bundle"), &edge_key, None).await;
    assert_eq!(status, 200, "{bundle}");
    let mask_key = bundle["content"]["mask_key"].as_str().expect("a mask key").to_string();
    logs::secret(&mask_key);

    // A standalone gateway on the same file (its key from --key-file).
    let gateway_dir = dir.path().join("gateway");
    let (mut gateway, gateway_url) = start_gateway(
        &server.url,
        &edge_key,
        &[
            ("TESSERA_CONFIG", &config),
            ("TESSERA_GATEWAY_DATA_DIR", gateway_dir.to_str().expect("utf-8")),
        ],
    );
    let answer = region_3(&gateway_url, &key).await;
    assert_eq!(answer["rows"], json!([{"r_name": "EUROPE"}]), "{answer}");
    let _ = gateway.kill();
    let _ = gateway.wait();

    // Secrets as flags: warned about, never echoed.
    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env_remove("TESSERA_API_KEY")
            .env_remove("TESSERA_GATEWAY_KEY")
            .env_remove("TESSERA_GATEWAY_KEY_FILE")
            .env_remove("TESSERA_DATABASE_URL")
            .env_remove("TESSERA_DATABASE_URL_FILE");
        for (k, v) in envs {
            command.env(k, v);
        }
        let out = command.output().expect("runs");
        logs::record("cli", &out);
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, stderr) = run(&["whoami", "--endpoint", &server.url, "--key", &key], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("warning: --key on the command line"), "{stderr}");
    let (code, stderr) = run(&["whoami", "--endpoint", &server.url], &[("TESSERA_API_KEY", &key)]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("warning"), "no warning for the environment: {stderr}");
    let key_file = dir.path().join("gateway.key");
    std::fs::write(&key_file, &key).expect("key file");
    let key_file = key_file.to_str().expect("utf-8");
    let (code, stderr) = run(
        &[
            "gateway",
            "--endpoint",
            &server.url,
            "--key",
            &key,
            "--key-file",
            key_file,
        ],
        &[],
    );
    assert_eq!(code, Some(2), "one key, one place: {stderr}");
    assert!(stderr.contains("both --key and a key file"), "{stderr}");
    let other = dir.path().join("other");
    let serve = [
        "serve",
        "--data-dir",
        other.to_str().expect("utf-8"),
        "--listen",
        "127.0.0.1:0",
        "--pg-listen",
        "127.0.0.1:0",
        "--flight-listen",
        "127.0.0.1:0",
    ];
    let url = format!("mysql://tessera:{DB_PASSWORD}@127.0.0.1/catalog");
    let (code, stderr) = run(&[&serve[..], &["--database-url", &url]].concat(), &[]);
    assert_ne!(code, Some(0), "not a database Tessera speaks: {stderr}");
    assert!(stderr.contains("warning: --database-url with a password"), "{stderr}");
    assert!(stderr.contains("tessera:***@127.0.0.1"), "named, redacted: {stderr}");
    let url_file = dir.path().join("database-url");
    let mut f = File::create(&url_file).expect("url file");
    writeln!(f, "{url}").expect("written");
    let (code, stderr) = run(
        &serve,
        &[("TESSERA_DATABASE_URL_FILE", url_file.to_str().expect("utf-8"))],
    );
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("unsupported database URL scheme"),
        "the file was read: {stderr}"
    );
    assert!(!stderr.contains("warning"), "no warning for a file: {stderr}");

    server.terminate();

    // The start-up line shows the storage options, secrets redacted.
    let text = std::fs::read_to_string(&serve_log).expect("the serve log");
    assert!(text.contains("starting"), "{text}");
    assert!(text.contains("\"AWS_SECRET_ACCESS_KEY\": \"***\""), "{text}");
    assert!(text.contains("\"AWS_REGION\": \"us-east-1\""), "{text}");
    let (_, key_secret) = key.rsplit_once('_').expect("tsk_<id>_<secret>");
    for (what, secret) in [
        ("the S3 secret", s3.secret_access_key.as_str()),
        ("the admin key", key_secret),
        ("the mask key", mask_key.as_str()),
    ] {
        assert!(!text.contains(secret), "{what} is in the serve log:\n{text}");
    }
}
