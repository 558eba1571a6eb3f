//! The catalog's unit tests, through its public interface: pure functions and
//! extractors that need no running catalog. They live in this binary so that
//! the library has no test binary of its own to link.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::extract::FromRequestParts;
use axum::http::{HeaderValue, Request, header};
use tessera_catalog::api::IfMatch;
use tessera_catalog::config::{Config, Overrides, Secret};
use tessera_catalog::keys::{generate, parse, verify};
use tessera_catalog::store::{Edge, find_cycle, like_pattern, redact_url, url_has_password};

#[test]
fn generated_keys_parse_and_verify() {
    let k = generate();
    let parsed = parse(&k.key).expect("own format");
    assert_eq!(parsed.id, k.id);
    assert!(verify(parsed.secret, &k.secret_hash));
    assert!(!verify(&"0".repeat(64), &k.secret_hash));
    assert_ne!(generate().key, k.key);
}

#[test]
fn redacts_passwords() {
    assert_eq!(
        redact_url("postgres://u:secret@h:5432/db"),
        "postgres://u:***@h:5432/db"
    );
    assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(redact_url("sqlite:/tmp/x.db"), "sqlite:/tmp/x.db");
    assert_eq!(
        redact_url("postgres://u@h/db?sslmode=require&password=secret&sslpassword=other"),
        "postgres://u@h/db?sslmode=require&password=***&sslpassword=***"
    );
    // An unencoded `?` or `/` in the password does not let any of it through.
    assert_eq!(redact_url("postgres://u:se?c/ret@h/db"), "postgres://u:***@h/db");
    assert!(url_has_password("postgres://u:secret@h/db"));
    assert!(url_has_password("postgres://u@h/db?password=secret"));
    assert!(!url_has_password("postgres://u@h/db?sslmode=require"));
}

/// A database error of PostgreSQL, as sqlx hands it over, with this SQLSTATE.
#[derive(Debug)]
struct PgError(&'static str);

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error {}", self.0)
    }
}

impl std::error::Error for PgError {}

impl sqlx::error::DatabaseError for PgError {
    fn message(&self) -> &str {
        "terminating connection due to administrator command"
    }
    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(self.0.into())
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}

/// A lost connection is "unavailable" (503, retry), not an internal error:
/// the server's shutdown codes, connection exceptions, the pool's own failures.
#[test]
fn connection_loss_is_unavailable() {
    use tessera_catalog::service;
    use tessera_catalog::store::StoreError;
    let store_error = |e: sqlx::Error| StoreError::from(e);
    for code in ["57P01", "57P02", "57P03", "08006", "08003", "08001", "53300"] {
        let err = store_error(sqlx::Error::Database(Box::new(PgError(code))));
        assert!(err.is_unavailable(), "{code}: {err:?}");
        assert!(
            matches!(service::Error::from(err), service::Error::Unavailable(_)),
            "{code}"
        );
    }
    for err in [
        sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed,
        sqlx::Error::WorkerCrashed,
        sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
    ] {
        assert!(store_error(err).is_unavailable());
    }
    for code in ["23505", "42501", "42P01", "40001"] {
        let err = store_error(sqlx::Error::Database(Box::new(PgError(code))));
        assert!(!err.is_unavailable(), "{code}: {err:?}");
    }
    assert!(!store_error(sqlx::Error::RowNotFound).is_unavailable());
}

/// Every 503 the catalog answers says when to retry.
#[tokio::test]
async fn unavailable_answers_say_when_to_retry() {
    use axum::response::IntoResponse;
    use tessera_catalog::api::error::ApiError;
    let response = ApiError::from(tessera_catalog::service::Error::Unavailable("gone".into())).into_response();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers().get(header::RETRY_AFTER),
        Some(&HeaderValue::from_static("1"))
    );
    let response = ApiError::Conflict("no".into()).into_response();
    assert!(response.headers().get(header::RETRY_AFTER).is_none());
}

fn edge(up: &str, down: &str) -> Edge {
    let (ud, up) = up.split_once('.').expect("ref");
    let (d, p) = down.split_once('.').expect("ref");
    Edge {
        up_domain: ud.into(),
        up_product: up.into(),
        domain: d.into(),
        product: p.into(),
    }
}

fn key(s: &str) -> (String, String) {
    let (d, p) = s.split_once('.').expect("ref");
    (d.into(), p.into())
}

#[test]
fn finds_cycles_through_the_new_inputs() {
    let edges = vec![edge("a.x", "a.y"), edge("a.y", "a.z")];
    assert_eq!(
        find_cycle(&edges, &key("a.x"), &[key("a.z")]),
        Some(vec!["a.x".into(), "a.z".into(), "a.y".into(), "a.x".into()])
    );
    assert_eq!(find_cycle(&edges, &key("a.w"), &[key("a.z")]), None);
    // Replacing a product's inputs drops its old edges.
    assert_eq!(find_cycle(&edges, &key("a.y"), &[]), None);
}

#[test]
fn like_patterns_escape_wildcards() {
    assert_eq!(like_pattern("50%_Off"), "%50\\%\\_off%");
}

/// The revision `If-Match` asks for, as the extractor reads it.
async fn if_match(value: Option<&'static str>) -> Option<i64> {
    let mut request = Request::builder();
    if let Some(value) = value {
        request = request.header(header::IF_MATCH, HeaderValue::from_static(value));
    }
    let (mut parts, ()) = request.body(()).expect("request").into_parts();
    match IfMatch::from_request_parts(&mut parts, &()).await {
        Ok(IfMatch(revision)) => revision,
        Err(e) => panic!("If-Match is never refused: {e}"),
    }
}

#[tokio::test]
async fn if_match_forms() {
    assert_eq!(if_match(None).await, None);
    assert_eq!(if_match(Some("\"7\"")).await, Some(7));
    assert_eq!(if_match(Some("W/\"8\"")).await, Some(8));
    assert_eq!(if_match(Some("*")).await, None);
    assert_eq!(if_match(Some("garbage")).await, Some(-1));
}

// figment::Jail's closures return figment's large error type; that is its API.
// Jail changes the environment and the working directory while it runs: the
// stories build their Config directly, with absolute paths, so they do not see it.
#[test]
#[allow(clippy::result_large_err)]
fn layers_apply_in_order() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "tessera.toml",
            "listen = \"127.0.0.1:9000\"\nmax_body_bytes = 10\nlog_format = \"json\"",
        )?;
        jail.set_env("TESSERA_MAX_BODY_BYTES", "20");
        jail.set_env("TESSERA_CONFIG", "ignored.toml");
        jail.set_env("TESSERA_SOMETHING_ELSE", "belongs to another tool");
        let overrides = Overrides {
            data_dir: Some("/flag".into()),
            ..Overrides::default()
        };
        let c = Config::load(Some(Path::new("tessera.toml")), &overrides).expect("loads");
        assert_eq!(c.listen, SocketAddr::from(([127, 0, 0, 1], 9000)), "file over default");
        assert_eq!(c.max_body_bytes, 20, "env over file");
        assert_eq!(c.data_dir, PathBuf::from("/flag"), "flag over default");
        assert_eq!(c.log_format, "json");
        assert_eq!(c.database_url(), "sqlite:/flag/catalog.db");
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)]
fn unknown_keys_are_refused_and_secrets_hidden() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("bad.toml", "lisen = \"x\"")?;
        let err = Config::load(Some(Path::new("bad.toml")), &Overrides::default()).expect_err("typo");
        assert!(err.to_string().contains("lisen"), "{err}");
        jail.set_env("TESSERA_BOOTSTRAP_KEY", "tsk_secret");
        jail.set_env("TESSERA_DATABASE_URL", "postgres://u:pw@h/db");
        let c = Config::load(None, &Overrides::default()).expect("loads");
        let shown = format!("{c:?}");
        assert!(!shown.contains("tsk_secret") && !shown.contains("pw@"), "{shown}");
        assert_eq!(c.bootstrap_key.as_ref().map(Secret::expose), Some("tsk_secret"));
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)]
fn the_database_url_can_come_from_a_file() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("db-url", "  postgres://u:pw@h/db\n")?;
        jail.set_env("TESSERA_DATABASE_URL_FILE", "db-url");
        let c = Config::load(None, &Overrides::default()).expect("loads");
        assert_eq!(
            c.database_url.as_deref(),
            Some("postgres://u:pw@h/db"),
            "read and trimmed"
        );
        assert!(!c.uses_embedded_database());
        assert!(!format!("{c:?}").contains("pw@"), "{c:?}");
        jail.create_file("tessera.toml", "database_url_file = \"db-url\"")?;
        jail.clear_env();
        let c = Config::load(Some(Path::new("tessera.toml")), &Overrides::default()).expect("loads");
        assert_eq!(
            c.database_url.as_deref(),
            Some("postgres://u:pw@h/db"),
            "from the file's key"
        );
        // Both at once: which one holds is not guessed.
        let overrides = Overrides {
            database_url: Some("postgres://u@h/other".into()),
            ..Overrides::default()
        };
        let err = Config::load(Some(Path::new("tessera.toml")), &overrides).expect_err("both");
        assert!(err.to_string().contains("both"), "{err}");
        jail.create_file("tessera.toml", "database_url_file = \"missing\"")?;
        let err = Config::load(Some(Path::new("tessera.toml")), &Overrides::default()).expect_err("missing");
        assert!(err.to_string().contains("missing"), "{err}");
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)]
fn the_lake_root_defaults_under_the_data_dir_and_layers() {
    figment::Jail::expect_with(|jail| {
        let c = Config::load(None, &Overrides::default()).expect("loads");
        assert_eq!(c.lake_root(), std::path::absolute(".tessera/lake").expect("absolute"));
        assert!(c.lake_root().is_absolute());
        jail.create_file("tessera.toml", "[lake]\nroot = \"/srv/lake\"")?;
        let c = Config::load(Some(Path::new("tessera.toml")), &Overrides::default()).expect("loads");
        assert_eq!(c.lake_root(), PathBuf::from("/srv/lake"));
        jail.set_env("TESSERA_LAKE__ROOT", "/mnt/lake");
        let c = Config::load(Some(Path::new("tessera.toml")), &Overrides::default()).expect("loads");
        assert_eq!(c.lake_root(), PathBuf::from("/mnt/lake"), "env over file");
        jail.create_file("bad.toml", "[lake]\nrot = \"/x\"")?;
        Config::load(Some(Path::new("bad.toml")), &Overrides::default()).expect_err("a typo");
        Ok(())
    });
}

#[test]
fn locations_overlap_at_path_boundaries_only() {
    use tessera_catalog::storage::{normalize_location, normalize_root, overlaps, under_roots};
    assert!(overlaps("s3://b/sales/orders", "s3://b/sales/orders"));
    assert!(overlaps("s3://b/sales/orders", "s3://b/sales/orders/"));
    assert!(overlaps("s3://b/sales/orders/part", "s3://b/sales/orders"));
    assert!(overlaps("s3://b/sales", "s3://b/sales/orders"));
    assert!(overlaps("file:///", "file:///lake/x"));
    assert!(!overlaps("s3://b/sales/orders_v2", "s3://b/sales/orders"));
    assert!(!overlaps("s3://b/sales/orders", "s3://c/sales/orders"));
    let roots = ["s3://b/sales/".to_string()];
    assert!(under_roots("s3://b/sales/orders", &roots));
    assert!(!under_roots("s3://b/sales", &roots), "a root is not a location");
    assert!(!under_roots("s3://b/salesman/a", &roots));
    assert_eq!(normalize_root("s3://B/sales").as_deref(), Ok("s3://b/sales/"));
    assert_eq!(normalize_root("/").as_deref(), Ok("file:///"));
    assert!(normalize_root("sales/").is_err(), "roots are absolute");
    let first = Some("s3://b/sales/");
    assert_eq!(
        normalize_location("orders/", first).as_deref(),
        Ok("s3://b/sales/orders")
    );
    assert_eq!(
        normalize_location("./a/../orders", first).as_deref(),
        Ok("s3://b/sales/orders")
    );
    assert_eq!(
        normalize_location("../customers/c", first).as_deref(),
        Ok("s3://b/customers/c")
    );
    assert_eq!(
        normalize_location("s3://b/sales/x/", None).as_deref(),
        Ok("s3://b/sales/x")
    );
    assert_eq!(
        normalize_location("/lake/./sales/../sales/x", None).as_deref(),
        Ok("file:///lake/sales/x")
    );
    for refused in [
        "s3://b/sales//x",
        "s3://b/sales/a%2fb",
        "s3://u:p@b/x",
        "s3:///x",
        "file://host/x",
        "a\\b",
    ] {
        assert!(normalize_location(refused, first).is_err(), "{refused}");
    }
    assert!(
        normalize_location("orders", None).is_err(),
        "no root to resolve against"
    );
}
