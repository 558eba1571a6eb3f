//! The test harness: a real catalog on port 0 over a fresh database, and typed
//! request helpers.

use std::net::SocketAddr;
use std::path::PathBuf;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use tessera_catalog::Application;
use tessera_catalog::config::{Config, Secret};
use tessera_catalog::service::Catalog;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The server URL of the test PostgreSQL (trust auth on loopback by default).
pub fn pg_admin_url() -> String {
    std::env::var("TESSERA_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A running catalog and what is needed to talk to it and to restart it.
pub struct TestApp {
    pub base: String,
    pub admin_key: String,
    pub http: reqwest::Client,
    pub backend: Backend,
    config: Config,
    pg_database: Option<String>,
    dir: tempfile::TempDir,
    /// The running catalog's service, to observe what HTTP does not show.
    catalog: Option<Catalog>,
    /// The unauthenticated metrics listener's base URL, when configured.
    metrics_base: Option<String>,
    server: Option<(oneshot::Sender<()>, JoinHandle<std::io::Result<()>>)>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn etag(&self) -> String {
        self.headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no ETag on {} {}", self.status, self.text))
            .to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text);
        self
    }

    /// Asserts an RFC 9457 problem of this status and type slug.
    #[track_caller]
    pub fn problem(self, status: u16, slug: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.text
        );
        let body = self.json();
        assert_eq!(body["type"], format!("urn:tessera:problem:{slug}"), "{body}");
        assert_eq!(body["status"], status, "{body}");
        assert!(body["title"].is_string(), "{body}");
        body
    }
}

pub const ADMIN_KEY: &str = "tsk_0123456789ab_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let pg_database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let name = format!("tessera_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(&pg_admin_url())
                    .await
                    .expect("the test PostgreSQL must run on 127.0.0.1:5432 (see scripts/test)");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .expect("create database");
                Some(name)
            }
        };
        let mut config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().join("data"),
            bootstrap_key: Some(Secret::new(ADMIN_KEY)),
            ..Config::default()
        };
        if let Some(db) = &pg_database {
            let base = pg_admin_url();
            let server = base.rsplit_once('/').map_or(base.as_str(), |(s, _)| s).to_string();
            config.database_url = Some(format!("{server}/{db}"));
        }
        let mut app = Self {
            base: String::new(),
            admin_key: ADMIN_KEY.to_string(),
            http: reqwest::Client::new(),
            backend,
            config,
            pg_database,
            dir,
            catalog: None,
            metrics_base: None,
            server: None,
        };
        app.start().await;
        app
    }

    async fn start(&mut self) {
        let built = Application::build(self.config.clone()).await.expect("catalog builds");
        let addr = built.local_addr().expect("bound");
        self.base = format!("http://{addr}");
        self.catalog = Some(built.catalog().clone());
        self.metrics_base = built.metrics_addr().map(|a| format!("http://{a}"));
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(built.run_until(async {
            let _ = rx.await;
        }));
        self.server = Some((tx, handle));
    }

    /// Stops the server gracefully and starts a new one over the same database.
    pub async fn restart(&mut self) {
        self.restart_after(|| ()).await;
    }

    /// Restarts the server over the same database with `change` made to its configuration.
    pub async fn reconfigure(&mut self, change: impl FnOnce(&mut Config)) {
        self.stop_server().await;
        change(&mut self.config);
        self.start().await;
    }

    /// As [`TestApp::restart`], doing `between` while no server runs.
    pub async fn restart_after(&mut self, between: impl FnOnce()) {
        self.stop_server().await;
        between();
        self.start().await;
    }

    /// Waits until `n` watches are parked in the catalog (a signal, not a
    /// guess at how long parking takes), failing after ten seconds.
    pub async fn watches_parked(&self, n: usize) {
        let catalog = self.catalog.as_ref().expect("the catalog runs");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while catalog.parked_watches() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} watch(es) did not park within 10 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// The lake root in force (`<data_dir>/lake` by default).
    pub fn lake_root(&self) -> PathBuf {
        self.config.lake_root()
    }

    /// The running catalog's service, for what only the process itself does
    /// (the in-process gateway's reports).
    pub fn catalog(&self) -> &Catalog {
        self.catalog.as_ref().expect("the catalog runs")
    }

    /// The unauthenticated metrics listener's base URL (`metrics_listen`).
    pub fn metrics_base(&self) -> Option<String> {
        self.metrics_base.clone()
    }

    pub fn config(&self) -> Config {
        self.config.clone()
    }

    async fn stop_server(&mut self) {
        // Its store's connections close with the server's.
        self.catalog = None;
        if let Some((tx, handle)) = self.server.take() {
            let _ = tx.send(());
            handle.await.expect("server task").expect("server stopped cleanly");
        }
    }

    /// Stops the server and drops its PostgreSQL database.
    pub async fn stop(mut self) {
        self.stop_server().await;
        if let Some(db) = self.pg_database.take() {
            let mut admin = sqlx::PgConnection::connect(&pg_admin_url()).await.expect("connect");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .expect("drop database");
        }
        drop(self.dir);
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        if let Some(tag) = if_match {
            req = req.header("if-match", tag);
        }
        read(req.send().await.expect("request sent")).await
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        read(req.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.send(Method::GET, path, Some(key), None, None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(key), Some(body), None).await
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value, if_match: Option<&str>) -> Reply {
        self.send(Method::PATCH, path, Some(key), Some(body), if_match).await
    }

    pub async fn put(&self, path: &str, key: &str) -> Reply {
        self.send(Method::PUT, path, Some(key), None, None).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Reply {
        self.send(Method::DELETE, path, Some(key), None, None).await
    }

    pub async fn version(&self) -> i64 {
        self.get("/api/v1/version", &self.admin_key).await.expect(200).json()["version"]
            .as_i64()
            .expect("version")
    }

    /// Creates a user principal and returns a fresh API key for it.
    pub async fn user(&self, name: &str, attributes: Value) -> String {
        self.post(
            "/api/v1/principals",
            &self.admin_key,
            json!({"name": name, "kind": "user", "attributes": attributes}),
        )
        .await
        .expect(201);
        self.key_for(name).await
    }

    /// Creates a gateway's principal (a service principal with the gateway
    /// role) and returns a key for it: what reads bundles and reports.
    pub async fn gateway_key(&self, name: &str) -> String {
        self.post(
            "/api/v1/principals",
            &self.admin_key,
            json!({"name": name, "kind": "service", "roles": ["gateway"]}),
        )
        .await
        .expect(201);
        self.key_for(name).await
    }

    pub async fn key_for(&self, name: &str) -> String {
        let reply = self
            .post(
                &format!("/api/v1/principals/{name}/keys"),
                &self.admin_key,
                json!({"description": "test"}),
            )
            .await
            .expect(201);
        reply.json()["key"].as_str().expect("key").to_string()
    }

    pub async fn team(&self, name: &str, members: &[&str]) {
        self.post(
            "/api/v1/teams",
            &self.admin_key,
            json!({"name": name, "members": members}),
        )
        .await
        .expect(201);
    }

    pub async fn domain(&self, name: &str, team: &str) {
        self.post(
            "/api/v1/domains",
            &self.admin_key,
            json!({"name": name, "owner_team": team}),
        )
        .await
        .expect(201);
    }

    /// Creates a product as `key` and returns it.
    pub async fn product(&self, domain: &str, key: &str, body: Value) -> Value {
        self.post(&format!("/api/v1/domains/{domain}/products"), key, body)
            .await
            .expect(201)
            .json()
    }

    /// Submits a contract document as `key`.
    pub async fn contract(&self, domain: &str, product: &str, key: &str, content_type: &str, document: &str) -> Reply {
        self.raw(
            Method::POST,
            &format!("/api/v1/domains/{domain}/products/{product}/contracts"),
            Some(key),
            content_type,
            document.to_string(),
        )
        .await
    }
}

/// The `file` URL the catalog stores for a local path (links resolved, no
/// trailing slash).
pub fn file_url(path: &std::path::Path) -> String {
    tessera_catalog::storage::root_of_path(path)
        .expect("a local path")
        .trim_end_matches('/')
        .to_string()
}

async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    assert!(
        status.as_u16() < 500,
        "the catalog answered a server error {status}: {text}"
    );
    Reply { status, headers, text }
}

/// Writes a Delta table of the given columns (all Int64, not null) with three rows.
pub async fn write_table(location: &std::path::Path, columns: &[&str]) {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(*c, DataType::Int64, false))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .map(|_| Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(schema, arrays).expect("batch");
    tessera_lake::write(
        location.to_str().expect("utf-8"),
        &Default::default(),
        vec![batch],
        tessera_lake::WriteMode::Overwrite,
        &[],
    )
    .await
    .expect("delta table written");
}

/// A minimal ODCS v3 document of the given version.
pub fn odcs_yaml(id: &str, version: &str) -> String {
    odcs_with_columns(id, version, &["id"])
}

/// An ODCS v3 document whose one schema object has these required bigint columns.
pub fn odcs_with_columns(id: &str, version: &str, columns: &[&str]) -> String {
    let properties: String = columns
        .iter()
        .map(|c| format!("      - name: {c}\n        logicalType: integer\n        physicalType: bigint\n        required: true\n"))
        .collect();
    format!(
        "apiVersion: v3.1.0\nkind: DataContract\nid: {id}\nversion: {version}\nstatus: active\nname: {id}\n\
         schema:\n  - name: {id}\n    properties:\n{properties}"
    )
}
