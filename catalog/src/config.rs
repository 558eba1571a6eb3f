//! Configuration: defaults < TOML file < `TESSERA_*` environment < command-line flags.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The catalog's configuration.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address of the HTTP listener (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Where the embedded database and other local state live.
    pub data_dir: PathBuf,
    /// `sqlite:PATH` or `postgres://...`; the embedded SQLite file under
    /// `data_dir` when absent.
    pub database_url: Option<String>,
    /// A file holding the database URL (read once at start, trimmed): the way
    /// to give a URL with a password, which then shows neither in `ps` output
    /// nor in the configuration file. Exclusive with `database_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_url_file: Option<PathBuf>,
    /// The admin key to install at first start instead of generating one.
    pub bootstrap_key: Option<Secret>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Requests running longer are answered 503 (long-polls have their own bound).
    pub request_timeout_secs: u64,
    /// `text` or `json`.
    pub log_format: String,
    /// Credentials and endpoints of storage locations (`[[storage]]`), for
    /// reading Delta tables' metadata; the gateway reads them too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage: Vec<tessera_lake::StorageLocation>,
    /// The lakehouse (`[lake]`): where domains keep their tables by default.
    #[serde(default)]
    pub lake: LakeConfig,
    /// The gateway's section, read by the gateway (`tessera serve` runs both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<figment::value::Value>,
    /// TLS (`[tls]`): the certificate of the HTTP listener (the API and the
    /// portal), and of the gateway's listeners unless `[gateway.tls]` says
    /// otherwise. Environment: `TESSERA_TLS__CERT_FILE`, `__KEY_FILE`, `__REQUIRE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<tessera_http::TlsConfig>,
    /// OpenID Connect (`[[identity.issuers]]`): the issuers whose access
    /// tokens stand for principals, beside API keys.
    #[serde(default, skip_serializing_if = "crate::identity::IdentityConfig::is_empty")]
    pub identity: crate::identity::IdentityConfig,
    /// Failed-authentication throttling per source address (`[throttle]`;
    /// `TESSERA_THROTTLE__BURST`, `TESSERA_THROTTLE__PER_MINUTE`).
    #[serde(default)]
    pub throttle: tessera_http::ThrottleConfig,
    /// A second listener serving `/metrics` without authentication, for a
    /// scraper on a private network (`TESSERA_METRICS_LISTEN`); on the main
    /// listener `/metrics` needs the `metrics` role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
}

/// The `[lake]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeConfig {
    /// `[lake] root` (environment: `TESSERA_LAKE__ROOT`): the directory under
    /// which each new domain's default storage root lies, `<root>/<domain>/`;
    /// `<data_dir>/lake` when absent. A relative path is taken from the
    /// working directory at start-up, once: the catalog stores absolute URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from(".tessera"),
            database_url: None,
            database_url_file: None,
            bootstrap_key: None,
            max_body_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            log_format: "text".into(),
            storage: Vec::new(),
            lake: LakeConfig::default(),
            gateway: None,
            tls: None,
            identity: crate::identity::IdentityConfig::default(),
            throttle: tessera_http::ThrottleConfig::default(),
            metrics_listen: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(crate::store::redact_url),
            )
            .field("database_url_file", &self.database_url_file)
            .field("bootstrap_key", &self.bootstrap_key)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("log_format", &self.log_format)
            .field("lake", &self.lake)
            .field("identity", &self.identity)
            .field("throttle", &self.throttle)
            .field("metrics_listen", &self.metrics_listen)
            .finish()
    }
}

/// Values given on the command line; `None` leaves the layer below in force.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<tessera_http::TlsConfig>,
}

/// The keys read from `TESSERA_*` variables (e.g. `TESSERA_DATABASE_URL`); a
/// nested key's parts are joined by `__` (`TESSERA_LAKE__ROOT` is `lake.root`).
const ENV_KEYS: [&str; 15] = [
    "listen",
    "data_dir",
    "database_url",
    "database_url_file",
    "bootstrap_key",
    "max_body_bytes",
    "request_timeout_secs",
    "log_format",
    "lake.root",
    "tls.cert_file",
    "tls.key_file",
    "tls.require",
    "throttle.burst",
    "throttle.per_minute",
    "metrics_listen",
];

impl Config {
    /// Layers the configuration sources; `file` is read when given (it must
    /// exist), and so is `database_url_file` when set.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let mut config: Self = figment
            // Only the known keys: other TESSERA_* variables belong to other tools.
            .merge(Env::prefixed("TESSERA_").split("__").only(&ENV_KEYS))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(Box::new)?;
        config.read_database_url_file()?;
        Ok(config)
    }

    /// Takes the database URL from `database_url_file`, when set.
    fn read_database_url_file(&mut self) -> Result<(), Box<figment::Error>> {
        let Some(path) = &self.database_url_file else {
            return Ok(());
        };
        let fail = |message: String| Box::new(figment::Error::from(message));
        if self.database_url.is_some() {
            return Err(fail("database_url and database_url_file are both set: keep one".into()));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| fail(format!("cannot read database_url_file {}: {e}", path.display())))?;
        let url = text.trim();
        if url.is_empty() {
            return Err(fail(format!("database_url_file {} is empty", path.display())));
        }
        self.database_url = Some(url.to_string());
        Ok(())
    }

    /// The database URL in force: the configured one, or the embedded SQLite file.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", self.data_dir.join("catalog.db").display()))
    }

    pub fn uses_embedded_database(&self) -> bool {
        self.database_url.is_none()
    }

    /// The lake root in force, absolute: `[lake] root`, or `<data_dir>/lake`.
    pub fn lake_root(&self) -> PathBuf {
        let root = self.lake.root.clone().unwrap_or_else(|| self.data_dir.join("lake"));
        std::path::absolute(&root).unwrap_or(root)
    }
}
