//! The gateway's settings: listeners, limits for untrusted SQL, storage.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tessera_lake::StorageLocation;

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
    pub limits: Limits,
    /// Credentials and endpoints per storage location (longest prefix wins).
    pub storage: Vec<StorageLocation>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            pg_listen: SocketAddr::from(([127, 0, 0, 1], 5433)),
            flight_listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            data_dir: ".tessera/gateway".into(),
            table_staleness_ms: 1000,
            limits: Limits::default(),
            storage: Vec::new(),
        }
    }
}

/// What one query may use, and how many run at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Longest SQL text accepted, in bytes.
    pub max_sql_bytes: usize,
    /// Nesting depth the SQL parser accepts (parentheses, subqueries, expressions).
    pub max_parse_depth: usize,
    /// Memory one query may hold; operators that can spill do so beyond it.
    pub query_memory_bytes: usize,
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
            query_memory_bytes: 1 << 30,
            query_spill_bytes: 8 << 30,
            query_timeout_ms: 300_000,
            max_result_rows: 10_000_000,
            max_result_bytes: 4 << 30,
            max_concurrent_queries: 8,
            max_queued_queries: 64,
            queue_timeout_ms: 30_000,
        }
    }
}

impl Limits {
    pub fn query_timeout(&self) -> Duration {
        Duration::from_millis(self.query_timeout_ms)
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
    pub fn load(file: Option<&std::path::Path>, overrides: &Overrides) -> Result<Self, Box<figment::Error>> {
        use figment::Figment;
        use figment::providers::{Env, Format, Serialized, Toml};
        let mut figment = Figment::from(Serialized::defaults(GatewayConfig::default()));
        if let Some(file) = file {
            figment = figment.merge(Figment::from(Toml::file_exact(file)).focus("gateway"));
        }
        figment
            .merge(Env::prefixed("TESSERA_GATEWAY_").split("__"))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(Box::new)
    }
}
