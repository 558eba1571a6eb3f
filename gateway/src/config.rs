//! The gateway's settings: listeners, limits for untrusted SQL, storage.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tessera_lake::StorageLocation;

use crate::accel::Acceleration;

/// The gateway's configuration (the `[gateway]` section of the TOML file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// PostgreSQL wire listener; 5433 so as not to clash with a PostgreSQL server.
    pub pg_listen: SocketAddr,
    /// Arrow Flight SQL listener.
    pub flight_listen: SocketAddr,
    /// HTTP listener of a gateway run alone (`tessera gateway`); in `tessera serve`
    /// the query endpoint shares the catalog's listener.
    pub http_listen: SocketAddr,
    /// Where the last-known-good bundle is kept.
    pub data_dir: std::path::PathBuf,
    /// How old a Delta table's snapshot may be before a query looks for newer commits.
    pub table_staleness_ms: u64,
    /// How long the gateway keeps serving its last-known-good bundle without
    /// word from the catalog; past it, it refuses queries (fails closed).
    /// None: serve it for as long as the catalog is away.
    pub max_staleness_ms: Option<u64>,
    /// The name this gateway reports to the catalog under (`GET /api/v1/gateways`).
    pub name: String,
    pub limits: Limits,
    /// Credentials and endpoints per storage location (longest prefix wins).
    pub storage: Vec<StorageLocation>,
    /// Hot tables held in memory (off unless given memory).
    pub acceleration: Acceleration,
    /// The audit spool of a gateway run alone (see [`crate::spool`]).
    pub audit: AuditConfig,
    /// TLS on every listener (`[gateway.tls]`, else the file's shared
    /// top-level `[tls]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<tessera_http::TlsConfig>,
    /// The HTTP listener's own certificate (`[gateway.http_tls]`), instead of `tls`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_tls: Option<tessera_http::TlsConfig>,
    /// The PostgreSQL wire listener's own certificate (`[gateway.pg_tls]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pg_tls: Option<tessera_http::TlsConfig>,
    /// The Flight SQL listener's own certificate (`[gateway.flight_tls]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flight_tls: Option<tessera_http::TlsConfig>,
    /// Failed-authentication throttling per source address, on every
    /// listener (`[gateway.throttle]`).
    pub throttle: tessera_http::ThrottleConfig,
    /// A standalone gateway's second listener serving `/metrics` without
    /// authentication, for a scraper on a private network; on the HTTP
    /// listener `/metrics` needs the `metrics` role (or an admin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            pg_listen: SocketAddr::from(([127, 0, 0, 1], 5433)),
            flight_listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            data_dir: ".tessera/gateway".into(),
            table_staleness_ms: 1000,
            max_staleness_ms: Some(15 * 60 * 1000),
            name: default_name(),
            limits: Limits::default(),
            storage: Vec::new(),
            acceleration: Acceleration::default(),
            audit: AuditConfig::default(),
            tls: None,
            http_tls: None,
            pg_tls: None,
            flight_tls: None,
            throttle: tessera_http::ThrottleConfig::default(),
            metrics_listen: None,
        }
    }
}

/// The host name, as a gateway name (lower case, `[a-z0-9_]`).
fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    let name: String = host
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(50)
        .collect();
    if name.is_empty() {
        "gateway".into()
    } else {
        format!("gw_{name}")
    }
}

/// The audit spool's bounds (the `[gateway.audit]` section).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Bytes of records on disk not yet shipped to the catalog.
    pub spool_bytes: u64,
    /// What happens when they are reached.
    pub when_full: WhenFull,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            spool_bytes: 1 << 30,
            when_full: WhenFull::Refuse,
        }
    }
}

/// The policy of a full spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenFull {
    /// New queries fail with SQLSTATE 53100 (HTTP 503) until the catalog takes records again.
    Refuse,
    /// Queries run; their records are dropped and counted.
    Drop,
}

/// What one query may use, and how many run at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Longest SQL text accepted, in bytes.
    pub max_sql_bytes: usize,
    /// Nesting depth the SQL parser accepts (parentheses, subqueries, expressions).
    pub max_parse_depth: usize,
    /// Depth of the deepest expression tree a statement may hold; a chain of
    /// binary operators (`a + b + c …`) is as deep as it is long.
    pub max_expr_depth: usize,
    /// Expression nodes (literal values aside) a statement may hold in all.
    pub max_expr_nodes: usize,
    /// Values one IN list may hold.
    pub max_in_list: usize,
    /// Queries and subqueries (UNION arms included) a statement may hold.
    pub max_query_blocks: usize,
    /// Memory one query may hold; operators that can spill do so beyond it.
    pub query_memory_bytes: usize,
    /// Memory all queries together may hold, with the in-memory copies of
    /// acceleration (`acceleration.memory_bytes`) counted in it: admitted
    /// queries share what acceleration leaves. The process's RSS stays under
    /// it plus a slack (docs/reliability.md). None: 4 GiB for queries plus
    /// acceleration's budget.
    pub total_memory_bytes: Option<u64>,
    /// Temporary disk one query may spill to.
    pub query_spill_bytes: u64,
    /// Wall-clock time from arrival to the last row, planning and queueing included.
    pub query_timeout_ms: u64,
    /// Rows one result may hold.
    pub max_result_rows: u64,
    /// Bytes (in Arrow memory) one result may hold.
    pub max_result_bytes: u64,
    /// Queries executing at once; more wait in a queue.
    pub max_concurrent_queries: usize,
    /// Queries one principal may execute at once (at most
    /// `max_concurrent_queries`); its others wait in the queue. None: all
    /// slots but a quarter, so that other users always find one.
    pub max_principal_queries: Option<usize>,
    /// Queries waiting for a slot; beyond that a query is refused at once.
    pub max_queued_queries: usize,
    /// Longest wait in the queue.
    pub queue_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sql_bytes: 256 * 1024,
            max_parse_depth: 64,
            // Sized so that the worst statement within all four bounds plans
            // in well under a second in a release build on two cores
            // (docs/reliability.md has the measurements).
            max_expr_depth: 128,
            max_expr_nodes: 5_000,
            max_in_list: 10_000,
            max_query_blocks: 200,
            query_memory_bytes: 1 << 30,
            total_memory_bytes: None,
            query_spill_bytes: 8 << 30,
            query_timeout_ms: 300_000,
            max_result_rows: 10_000_000,
            max_result_bytes: 4 << 30,
            max_concurrent_queries: 8,
            max_principal_queries: None,
            max_queued_queries: 64,
            queue_timeout_ms: 30_000,
        }
    }
}

impl Limits {
    /// The most one call of a capped function (`repeat`, `lpad`, `range`...)
    /// may build: an eighth of a query's memory, since what a scalar function
    /// builds is held beside what the query's operators reserve.
    pub fn function_output_cap(&self) -> usize {
        self.query_memory_bytes / 8
    }

    pub fn query_timeout(&self) -> Duration {
        Duration::from_millis(self.query_timeout_ms)
    }

    /// Refuses SQL text over `max_sql_bytes`, before anything reads it.
    pub fn check_sql_len(&self, sql: &str) -> Result<(), crate::error::QueryError> {
        if sql.len() > self.max_sql_bytes {
            return Err(crate::error::QueryError::TooLong {
                len: sql.len(),
                max: self.max_sql_bytes,
            });
        }
        Ok(())
    }

    /// What queries may hold together, given acceleration's budget (see
    /// `total_memory_bytes`); `None` when the total cannot hold acceleration
    /// and one query.
    pub fn query_memory_total(&self, accelerated: u64) -> Option<u64> {
        let total = self.total_memory_bytes.unwrap_or((4 << 30) + accelerated);
        total
            .checked_sub(accelerated)
            .filter(|left| *left >= self.query_memory_bytes as u64)
    }

    /// The slots one principal may hold (see `max_principal_queries`).
    pub fn principal_share(&self) -> usize {
        let all = self.max_concurrent_queries.max(1);
        self.max_principal_queries.unwrap_or(all - all / 4).clamp(1, all)
    }

    pub fn queue_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_timeout_ms)
    }
}

/// Values given on the command line; `None` leaves the layer below in force.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pg_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flight_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_listen: Option<SocketAddr>,
}

impl GatewayConfig {
    /// Defaults < the `[gateway]` section of `file` < `TESSERA_GATEWAY_*`
    /// (nested keys with `__`, e.g. `TESSERA_GATEWAY_LIMITS__QUERY_TIMEOUT_MS`) < flags.
    /// The file's top-level `[[storage]]` locations (shared with the catalog)
    /// apply too; `[[gateway.storage]]` ones win for the same prefix.
    pub fn load(file: Option<&std::path::Path>, overrides: &Overrides) -> Result<Self, Box<figment::Error>> {
        use figment::Figment;
        use figment::providers::{Env, Format, Serialized, Toml};
        let mut figment = Figment::from(Serialized::defaults(GatewayConfig::default()));
        if let Some(file) = file {
            figment = figment.merge(Figment::from(Toml::file_exact(file)).focus("gateway"));
        }
        let mut config: Self = figment
            // The `tessera gateway` command's own variables are not settings.
            .merge(
                Env::prefixed("TESSERA_GATEWAY_")
                    .ignore(&["key", "key_file", "client_cert_file", "client_key_file"])
                    .split("__"),
            )
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(Box::new)?;
        if let Some(file) = file {
            let shared = Figment::from(Toml::file_exact(file));
            if shared.find_value("storage").is_ok() {
                let mut storage: Vec<StorageLocation> = shared.extract_inner("storage").map_err(Box::new)?;
                storage.append(&mut config.storage);
                config.storage = storage;
            }
            if config.tls.is_none() && shared.find_value("tls").is_ok() {
                config.tls = Some(shared.extract_inner("tls").map_err(Box::new)?);
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_gives_the_gateway_section_and_shared_storage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("tessera.toml");
        std::fs::write(
            &file,
            r#"
listen = "127.0.0.1:9000"

[[storage]]
prefix = "s3://lake/"
options = { AWS_REGION = "eu-west-1", AWS_ENDPOINT_URL = "http://minio:9000" }

[gateway]
pg_listen = "127.0.0.1:6000"

[gateway.limits]
query_timeout_ms = 5000

[[gateway.storage]]
prefix = "s3://lake/"
options = { AWS_REGION = "us-east-1" }
"#,
        )
        .expect("writes");
        let overrides = Overrides {
            flight_listen: Some(SocketAddr::from(([127, 0, 0, 1], 7000))),
            ..Overrides::default()
        };
        let config = GatewayConfig::load(Some(&file), &overrides).expect("loads");
        assert_eq!(config.pg_listen.port(), 6000, "file over default");
        assert_eq!(config.flight_listen.port(), 7000, "flag over default");
        assert_eq!(config.limits.query_timeout_ms, 5000);
        assert_eq!(config.limits.max_sql_bytes, Limits::default().max_sql_bytes);
        let options = tessera_lake::storage_options_for(&config.storage, "s3://lake/sales/orders");
        assert_eq!(
            options.get("AWS_REGION").map(String::as_str),
            Some("us-east-1"),
            "the gateway's own wins"
        );
        assert!(tessera_lake::storage_options_for(&config.storage, "s3://other/t").is_empty());

        std::fs::write(&file, "[gateway]\npg_lisen = \"127.0.0.1:1\"\n").expect("writes");
        let error = GatewayConfig::load(Some(&file), &Overrides::default()).expect_err("a typo");
        assert!(error.to_string().contains("pg_lisen"), "{error}");
    }
}
