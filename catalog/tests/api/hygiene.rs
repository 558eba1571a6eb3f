//! Operational hygiene of the catalog (issue #17): the files holding secrets
//! are its owner's only, and a database that goes away is a 503 to retry, not
//! a 500.

use std::time::Duration;

use serde_json::json;
use sqlx::Connection;

use crate::helpers::{Backend, TestApp, pg_admin_url};

/// The data directory is 0700 and the SQLite files 0600 (they hold key hashes
/// and the mask key), also when an earlier start left them wider.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_database_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let mut app = TestApp::spawn(Backend::Sqlite).await;
    // A write, so that the WAL exists.
    app.post("/api/v1/teams", &app.admin_key, json!({"name": "t"}))
        .await
        .expect(201);
    let data = app.data_dir();
    let files = ["catalog.db", "catalog.db-wal", "catalog.db-shm"].map(|f| data.join(f));
    let check = |when: &str| {
        assert_eq!(mode(&data), 0o700, "{when}: the data directory");
        for file in &files {
            assert_eq!(mode(file), 0o600, "{when}: {}", file.display());
        }
    };
    check("first start");

    app.restart_after(|| {
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for file in &files {
            if file.exists() {
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            }
        }
    })
    .await;
    app.get("/api/v1/teams", &app.admin_key).await.expect(200);
    check("a start over wider files");
    app.stop().await;
}

/// PostgreSQL ends the catalog's sessions (57P01, as when it shuts down or an
/// administrator terminates them) while a write waits: that request is a 503
/// with `Retry-After`, nothing of it is committed, and the next requests are
/// served on fresh connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_database_sessions_answer_503_with_retry_after() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let url = app.config().database_url.expect("a PostgreSQL URL");
    let database = url.rsplit('/').next().expect("a database name").to_string();
    // Hold the change sequence's row: the next write waits for it.
    let mut holder = sqlx::PgConnection::connect(&url).await.expect("connect");
    sqlx::query("BEGIN").execute(&mut holder).await.expect("begin");
    let holder_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut holder)
        .await
        .expect("pid");
    sqlx::query("SELECT version FROM catalog_state WHERE id = 1 FOR UPDATE")
        .execute(&mut holder)
        .await
        .expect("lock");

    let write = {
        let (http, base, key) = (app.http.clone(), app.base.clone(), app.admin_key.clone());
        tokio::spawn(async move {
            http.post(format!("{base}/api/v1/teams"))
                .bearer_auth(key)
                .json(&json!({"name": "lost"}))
                .send()
                .await
                .expect("an answer")
        })
    };
    let mut admin = sqlx::PgConnection::connect(&pg_admin_url()).await.expect("connect");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'")
                .bind(&database)
                .fetch_one(&mut admin)
                .await
                .expect("pg_stat_activity");
        if waiting > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the write never waited for the lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Every session of the catalog ends (57P01), the holder's aside.
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> $2")
        .bind(&database)
        .bind(holder_pid)
        .execute(&mut admin)
        .await
        .expect("terminate");

    let response = write.await.expect("the request task");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body: serde_json::Value = response.json().await.expect("a problem");
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"), "{body}");
    assert_eq!(body["type"], "urn:tessera:problem:unavailable", "{body}");
    sqlx::query("ROLLBACK").execute(&mut holder).await.expect("rollback");
    drop(holder);

    // Fresh connections serve the next requests; the lost write left nothing.
    app.get("/api/v1/teams/lost", &app.admin_key).await.expect(404);
    app.post("/api/v1/teams", &app.admin_key, json!({"name": "lost"}))
        .await
        .expect(201);
    let ready = app
        .send(reqwest::Method::GET, "/ready", None, None, None)
        .await
        .expect(200);
    assert!(ready.header("retry-after").is_none());
    drop(admin);
    app.stop().await;
}

/// A bundle fetched while writes go on holds exactly the catalog at its
/// version: every principal created at or before it, none created after.
/// (Before the bundle was read in one snapshot, a bundle could be labelled
/// with a version older than some of what it held, or read across a write.)
pub async fn bundles_hold_exactly_their_version(app: &mut TestApp) {
    const WRITERS: usize = 3;
    const EACH: usize = 25;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (http, base, key) = (app.http.clone(), app.base.clone(), app.admin_key.clone());
            tokio::spawn(async move {
                for i in 0..EACH {
                    let reply = http
                        .post(format!("{base}/api/v1/principals"))
                        .bearer_auth(&key)
                        .json(&json!({"name": format!("w{w}_{i}"), "kind": "user"}))
                        .send()
                        .await
                        .expect("the catalog answers");
                    assert_eq!(reply.status(), 201, "{}", reply.text().await.unwrap_or_default());
                }
            })
        })
        .collect();
    let edge = app.gateway_key("edge").await;
    let mut bundles = Vec::new();
    while !writers.iter().all(tokio::task::JoinHandle::is_finished) {
        bundles.push(app.get("/api/v1/bundle", &edge).await.expect(200).json());
    }
    for writer in writers {
        writer.await.expect("the writer finished");
    }
    bundles.push(app.get("/api/v1/bundle", &edge).await.expect(200).json());
    // When each principal was created, from the change log.
    let changes = app
        .get("/api/v1/changes?limit=500", &app.admin_key)
        .await
        .expect(200)
        .json();
    let created: Vec<(i64, String)> = changes["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|c| c["resource_type"] == "principal" && c["action"] == "create")
        .filter_map(|c| {
            let name = c["resource"].as_str()?.strip_prefix("/principals/")?;
            name.starts_with('w')
                .then(|| (c["seq"].as_i64().expect("seq"), name.to_string()))
        })
        .collect();
    assert_eq!(created.len(), WRITERS * EACH, "{changes}");
    let mut between = 0;
    for bundle in &bundles {
        let version = bundle["version"].as_i64().expect("version");
        let held: std::collections::BTreeSet<&str> = bundle["content"]["principals"]
            .as_array()
            .expect("principals")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .filter(|name| name.starts_with('w'))
            .collect();
        let expected: std::collections::BTreeSet<&str> = created
            .iter()
            .filter(|(seq, _)| *seq <= version)
            .map(|(_, name)| name.as_str())
            .collect();
        assert_eq!(held, expected, "the bundle of version {version}");
        between += usize::from(!expected.is_empty() && expected.len() < created.len());
    }
    // The check saw bundles taken in the middle of the writes.
    assert!(
        between > 0,
        "{} bundles, none between the first and the last write",
        bundles.len()
    );
}
