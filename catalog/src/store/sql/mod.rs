//! The SQL backends. SQLite and PostgreSQL run the same statements (numbered `$N`
//! parameters work on both), so each resource's implementation is one macro in
//! its own file, stamped out for [`SqliteStore`] and [`PgStore`]; what differs
//! (connection set-up, migrations, column types) lives outside them.
//!
//! Every logged mutation goes through one write path, `write`: begin (writer
//! lock, transaction, next change sequence number) → the mutation's statements
//! and the re-read of what they wrote → its change-log entry → commit.

mod contracts;
mod domains;
mod governance;
mod principals;
mod products;
mod snapshot;
mod teams;

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::types::Json;
use sqlx::{FromRow, Pool, Postgres, Sqlite};
use tessera_contracts::api::Change;
use tessera_contracts::bundle::{BundleIssuer, MaskKey};
use tokio::sync::{Mutex, watch};

use super::{CatalogStore, Result, Snapshot, StoreError};

/// The catalog on SQLite: one file, WAL mode, writers serialized in-process so that
/// concurrent requests queue instead of failing with `SQLITE_BUSY`.
pub struct SqliteStore {
    pool: Pool<Sqlite>,
    write_lock: Option<Mutex<()>>,
    version: watch::Sender<i64>,
}

/// The catalog on PostgreSQL: writers serialize on the `catalog_state` row lock.
pub struct PgStore {
    pool: Pool<Postgres>,
    write_lock: Option<Mutex<()>>,
    version: watch::Sender<i64>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file of a `sqlite:` URL. The
    /// file holds key hashes and the mask key: it and its `-wal`, `-shm` and
    /// `-journal` companions are made readable by the owner only (0600;
    /// SQLite gives the companions it creates the database file's mode).
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory {
            restrict_database_files(options.get_filename())?;
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations/sqlite")
            .run(&pool)
            .await
            .map_err(migration)?;
        let current: i64 = sqlx::query_scalar(VERSION_SQL).fetch_one(&pool).await?;
        Ok(Self {
            pool,
            write_lock: Some(Mutex::new(())),
            version: watch::channel(current).0,
        })
    }
}

impl PgStore {
    /// Connects to a `postgres://` URL.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?;
        sqlx::migrate!("../migrations/postgres")
            .run(&pool)
            .await
            .map_err(migration)?;
        let current: i64 = sqlx::query_scalar(VERSION_SQL).fetch_one(&pool).await?;
        Ok(Self {
            pool,
            write_lock: None,
            version: watch::channel(current).0,
        })
    }
}

const VERSION_SQL: &str = "SELECT version FROM catalog_state WHERE id = 1";

/// Creates the SQLite database file with mode 0600 when missing, and narrows
/// it and its companions to 0600 when they exist.
fn restrict_database_files(path: &std::path::Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let failed = |e: std::io::Error| StoreError::Backend(Box::new(e));
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(failed)?;
        }
        let name = path.as_os_str();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut file = name.to_os_string();
            file.push(suffix);
            let file = std::path::PathBuf::from(file);
            match std::fs::metadata(&file) {
                Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(failed(e)),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Loss of the database (the pool cannot hand out a connection, or the
/// connection broke) is told apart here, where sqlx's error is still known;
/// beyond the store it is an opaque source.
#[doc(hidden)]
impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if is_connection_loss(&err) {
            Self::Unavailable(Box::new(err))
        } else {
            Self::Backend(Box::new(err))
        }
    }
}

/// Whether an error says that the database is out of reach for now, so that
/// the same request may succeed when retried: the pool timed out or is
/// closed, the socket failed, SQLite's worker died, or the server answered
/// with a connection-level SQLSTATE.
fn is_connection_loss(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => match db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
            // SQLITE_BUSY (5) and its extended codes: another process held
            // the database past the busy timeout.
            Some(sqlite) => sqlx::error::DatabaseError::code(sqlite)
                .and_then(|code| code.parse::<u32>().ok())
                .is_some_and(|code| code & 0xff == 5),
            None => db.code().is_some_and(|code| is_unavailable_sqlstate(&code)),
        },
        _ => false,
    }
}

/// The PostgreSQL error codes of a database out of reach: class 08
/// (connection exception), 57P01 (admin shutdown: the server is stopping or
/// an administrator ended the session), 57P02 (crash shutdown), 57P03 (cannot
/// connect now: starting up or shutting down), 53300 (too many connections).
fn is_unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// Applying the migrations failed.
#[derive(Debug, thiserror::Error)]
#[error("migration failed: {0}")]
struct Migration(#[source] sqlx::migrate::MigrateError);

fn migration(err: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::Backend(Box::new(Migration(err)))
}

/// A transaction of either backend.
type Tx<DB> = sqlx::Transaction<'static, DB>;

/// What a mutation did, for its change-log entry.
struct Entry {
    action: &'static str,
    resource_type: &'static str,
    resource: String,
    before: Option<Value>,
    after: Option<Value>,
}

impl Entry {
    fn new(action: &'static str, resource_type: &'static str, resource: String) -> Self {
        Self {
            action,
            resource_type,
            resource,
            before: None,
            after: None,
        }
    }

    fn before(mut self, value: &impl serde::Serialize) -> Self {
        self.before = Some(json(value));
        self
    }

    fn after(mut self, value: &impl serde::Serialize) -> Self {
        self.after = Some(json(value));
        self
    }

    /// The mutation's outcome: `value`, logged as this entry.
    fn of<T>(self, value: T) -> Written<T> {
        Written::Changed { value, entry: self }
    }
}

/// The outcome of a mutation given to `write`.
enum Written<T> {
    /// Written: committed with its change-log entry.
    Changed { value: T, entry: Entry },
    /// Nothing to write (e.g. revoking a revoked key): rolled back, no entry,
    /// the version stays.
    Unchanged(T),
}

#[derive(FromRow)]
struct ChangeRow {
    seq: i64,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    resource_type: String,
    resource: String,
    before: Option<Json<Value>>,
    after: Option<Json<Value>>,
}

impl From<ChangeRow> for Change {
    fn from(r: ChangeRow) -> Self {
        Change {
            seq: r.seq,
            at: r.at,
            actor: r.actor,
            action: r.action,
            resource_type: r.resource_type,
            resource: r.resource,
            before: r.before.map(|j| j.0),
            after: r.after.map(|j| j.0),
        }
    }
}

/// The mask key as stored (hex), if one is.
fn parse_issuers(bodies: &[String]) -> Result<Vec<BundleIssuer>> {
    bodies
        .iter()
        .map(|body| {
            serde_json::from_str(body)
                .map_err(|e| StoreError::Invalid(format!("a stored issuer is not understood: {e}")))
        })
        .collect()
}

fn parse_mask_key(stored: Option<String>) -> Result<Option<MaskKey>> {
    stored
        .map(|hex| {
            MaskKey::from_hex(&hex).ok_or_else(|| StoreError::Invalid("the stored mask key is not understood".into()))
        })
        .transpose()
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Invalid(format!("stored {what} {value:?} is not understood"))
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Maps constraint violations to conflicts, saying what collided.
fn constraint(err: sqlx::Error, what: &str) -> StoreError {
    if let sqlx::Error::Database(db) = &err {
        if db.is_unique_violation() {
            return StoreError::Conflict(format!("{what} already exists"));
        }
        if db.is_foreign_key_violation() {
            return StoreError::Conflict(format!("{what} is still referenced, or references something missing"));
        }
    }
    err.into()
}

fn check_revision(if_match: Option<i64>, current: i64) -> Result<()> {
    match if_match {
        Some(expected) if expected != current => Err(StoreError::PreconditionFailed { current }),
        _ => Ok(()),
    }
}

macro_rules! sql_store {
    ($store:ty, $db:ty, $backend:literal) => {
        impl $store {
            /// The write path of every logged mutation: takes the writer lock,
            /// opens a transaction and advances the change sequence; runs
            /// `change` (its statements and the re-read of what they wrote);
            /// appends the change-log entry under the new sequence number and
            /// commits. A change that fails, or writes nothing, is rolled back
            /// with its sequence number.
            async fn write<T, F, Fut>(&self, actor: &str, change: F) -> Result<T>
            where
                T: Send,
                F: FnOnce(Tx<$db>) -> Fut + Send,
                Fut: Future<Output = Result<(Tx<$db>, Written<T>)>> + Send,
            {
                let _writer = match &self.write_lock {
                    Some(lock) => Some(lock.lock().await),
                    None => None,
                };
                let mut tx = self.pool.begin().await?;
                let seq: i64 =
                    sqlx::query_scalar("UPDATE catalog_state SET version = version + 1 WHERE id = 1 RETURNING version")
                        .fetch_one(&mut *tx)
                        .await?;
                let (mut tx, entry, value) = match change(tx).await? {
                    (tx, Written::Changed { value, entry }) => (tx, entry, value),
                    (_, Written::Unchanged(value)) => return Ok(value),
                };
                sqlx::query(
                    "INSERT INTO changes (seq, at, actor, action, resource_type, resource, before, after) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(seq)
                .bind(Utc::now())
                .bind(actor)
                .bind(entry.action)
                .bind(entry.resource_type)
                .bind(&entry.resource)
                .bind(entry.before.map(Json))
                .bind(entry.after.map(Json))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                self.version.send_replace(seq);
                Ok(value)
            }
        }

        #[async_trait]
        impl CatalogStore for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            fn subscribe(&self) -> watch::Receiver<i64> {
                self.version.subscribe()
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn version(&self) -> Result<i64> {
                let v: i64 = sqlx::query_scalar(VERSION_SQL).fetch_one(&self.pool).await?;
                // Another replica may have moved it: let local watchers know.
                self.version.send_if_modified(|seen| {
                    let moved = v > *seen;
                    if moved {
                        *seen = v;
                    }
                    moved
                });
                Ok(v)
            }

            async fn changes(&self, after: i64, limit: i64) -> Result<Vec<Change>> {
                let rows = sqlx::query_as::<_, ChangeRow>("SELECT * FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2")
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.into_iter().map(Change::from).collect())
            }

            async fn mask_key(&self) -> Result<Option<MaskKey>> {
                let stored: Option<String> = sqlx::query_scalar("SELECT mask_key FROM catalog_state WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await?;
                parse_mask_key(stored)
            }

            async fn snapshot(&self) -> Result<Snapshot> {
                self.read_snapshot().await
            }

            async fn put_mask_key(&self, actor: &str, key: &MaskKey, replace: bool) -> Result<bool> {
                self.write(actor, move |mut tx| async move {
                    let current: Option<String> = sqlx::query_scalar("SELECT mask_key FROM catalog_state WHERE id = 1")
                        .fetch_one(&mut *tx)
                        .await?;
                    if current.is_some() && !replace {
                        return Ok((tx, Written::Unchanged(false)));
                    }
                    sqlx::query("UPDATE catalog_state SET mask_key = $1 WHERE id = 1")
                        .bind(key.expose_hex())
                        .execute(&mut *tx)
                        .await?;
                    // The entry says that the key changed, never what it is.
                    let action = if current.is_some() { "rotate" } else { "create" };
                    Ok((tx, Entry::new(action, "mask_key", "/mask-key".into()).of(true)))
                })
                .await
            }

            async fn issuers(&self) -> Result<Vec<BundleIssuer>> {
                let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM issuers ORDER BY issuer")
                    .fetch_all(&self.pool)
                    .await?;
                parse_issuers(&bodies)
            }

            async fn put_issuers(&self, actor: &str, issuers: &[BundleIssuer]) -> Result<bool> {
                let wanted: std::collections::BTreeMap<String, String> =
                    issuers.iter().map(|i| (i.issuer.clone(), json(i).to_string())).collect();
                self.write(actor, move |mut tx| async move {
                    let stored: Vec<(String, String)> = sqlx::query_as("SELECT issuer, body FROM issuers")
                        .fetch_all(&mut *tx)
                        .await?;
                    let stored: std::collections::BTreeMap<String, String> = stored.into_iter().collect();
                    if stored == wanted {
                        return Ok((tx, Written::Unchanged(false)));
                    }
                    sqlx::query("DELETE FROM issuers").execute(&mut *tx).await?;
                    for (issuer, body) in &wanted {
                        sqlx::query("INSERT INTO issuers (issuer, body) VALUES ($1, $2)")
                            .bind(issuer)
                            .bind(body)
                            .execute(&mut *tx)
                            .await?;
                    }
                    // The entry names the issuers whose settings or keys changed, not the keys.
                    let changed: Vec<&String> = wanted
                        .iter()
                        .filter(|(issuer, body)| stored.get(*issuer) != Some(body))
                        .map(|(issuer, _)| issuer)
                        .chain(stored.keys().filter(|issuer| !wanted.contains_key(*issuer)))
                        .collect();
                    let entry = Entry::new("update", "issuers", "/issuers".into())
                        .before(&stored.keys().collect::<Vec<_>>())
                        .after(&serde_json::json!({ "issuers": wanted.keys().collect::<Vec<_>>(), "changed": changed }));
                    Ok((tx, entry.of(true)))
                })
                .await
            }
        }
    };
}

sql_store!(SqliteStore, Sqlite, "sqlite");
sql_store!(PgStore, Postgres, "postgres");
