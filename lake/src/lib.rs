//! Tessera's storage layer: the one place that touches object stores and Delta
//! tables, and nothing else. The catalog reads only metadata through it (schema,
//! version, commit time); the gateway, the quality checks and the publisher read
//! and write data.

use std::collections::HashMap;
use std::sync::{Arc, Once};

use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use deltalake::DeltaTableError;
use url::Url;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("invalid table location {location:?}: {message}")]
    Location { location: String, message: String },
    #[error("Delta table at {location}: {source}")]
    Delta {
        location: String,
        #[source]
        source: Box<DeltaTableError>,
    },
}

/// What the catalog needs to know of a Delta table.
#[derive(Debug, Clone)]
pub struct TableMeta {
    /// The table's latest committed version.
    pub version: u64,
    /// Its schema, as Arrow sees it.
    pub schema: SchemaRef,
    pub partition_columns: Vec<String>,
    /// When the latest version was committed, if the log says.
    pub committed_at: Option<DateTime<Utc>>,
}

/// Wraps a deltalake error with the location it concerns.
fn delta_error(location: &str) -> impl Fn(DeltaTableError) -> LakeError + Copy + '_ {
    move |source| LakeError::Delta {
        location: location.to_string(),
        source: Box::new(source),
    }
}

/// Registers the object-store schemes beyond the local filesystem (S3 and
/// S3-compatible stores); idempotent.
/// Creates a local directory only its owner may enter (0700), narrowing an
/// existing wider one (with a warning when that is not allowed): data dirs
/// hold databases, bundles and audit records, whose key hashes, mask keys and
/// queries are secrets.
pub fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0
            && let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        {
            // Someone else's directory: it stays as its owner set it.
            tracing::warn!(dir = %dir.display(), error = %e, "cannot restrict the data directory to its owner");
        }
        Ok(())
    }
    #[cfg(not(unix))]
    builder.create(dir)
}

pub fn register_object_stores() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| deltalake::aws::register_handlers(None));
}

/// Turns a product's output-port location (a path or a URL) into a table URL.
/// Relative paths are resolved against the working directory.
pub fn table_url(location: &str) -> Result<Url, LakeError> {
    let invalid = |message: String| LakeError::Location {
        location: location.to_string(),
        message,
    };
    if location.contains("://") {
        return Url::parse(location).map_err(|e| invalid(e.to_string()));
    }
    let path = std::path::absolute(location).map_err(|e| invalid(e.to_string()))?;
    Url::from_directory_path(&path).map_err(|()| invalid("not an absolute path".into()))
}

/// Credentials and endpoint of one storage location: every table whose location
/// starts with `prefix` (e.g. `s3://lake/`) is opened with `options` (object_store
/// keys such as `aws_endpoint_url`, `aws_access_key_id`, `aws_allow_http`). Writes
/// to S3 use conditional put; a store without it needs the documented opt-in
/// `aws_s3_allow_unsafe_rename = "true"` (safe only with a single writer).
///
/// Its `Debug` (what configurations print in logs) shows every option's name
/// but the values of plainly public ones only ([`shows_option_value`]): the
/// others, credentials among them, read `***`.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageLocation {
    pub prefix: String,
    #[serde(default)]
    pub options: HashMap<String, String>,
}

impl std::fmt::Debug for StorageLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageLocation")
            .field("prefix", &self.prefix)
            .field("options", &RedactedOptions(&self.options))
            .finish()
    }
}

/// Storage options as `Debug` shows them: sorted by name, values redacted
/// unless plainly public.
struct RedactedOptions<'a>(&'a HashMap<String, String>);

impl std::fmt::Debug for RedactedOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sorted: std::collections::BTreeMap<&str, &str> =
            self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        f.debug_map()
            .entries(sorted.into_iter().map(|(name, value)| {
                let shown = if shows_option_value(name) {
                    redact_userinfo(value)
                } else {
                    "***".to_string()
                };
                (name, shown)
            }))
            .finish()
    }
}

/// Words that mark an option's value as secret wherever they appear in its
/// name, whatever the case (`AWS_SECRET_ACCESS_KEY`, `aws_session_token`,
/// `AZURE_STORAGE_ACCOUNT_KEY`, `google_service_account_key`, ...). The access
/// key id (`AWS_ACCESS_KEY_ID`) is redacted too: it is only half of a
/// credential, but it names the account and logs have no use for it.
const SECRET_WORDS: [&str; 6] = ["secret", "key", "token", "password", "credential", "signature"];

/// Options whose values are plainly public, by the end of their name (any
/// provider prefix: `aws_region`, `AWS_ENDPOINT_URL`, `azure_allow_http`, ...).
const PUBLIC_OPTIONS: [&str; 19] = [
    "region",
    "endpoint",
    "endpoint_url",
    "allow_http",
    "allow_invalid_certificates",
    "bucket",
    "bucket_name",
    "container_name",
    "account_name",
    "virtual_hosted_style_request",
    "allow_unsafe_rename",
    "conditional_put",
    "locking_provider",
    "imdsv1_fallback",
    "checksum_algorithm",
    "s3_express",
    "unsigned_payload",
    "use_emulator",
    "timeout",
];

/// Whether a storage option's value may be shown in logs: only when its name
/// is one of the plainly public ones (region, endpoint, `allow_http`, bucket,
/// ...) and holds none of the secret words. Any other option, an unknown one
/// included, is shown by name only.
pub fn shows_option_value(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    if SECRET_WORDS.iter().any(|w| name.contains(w)) {
        return false;
    }
    PUBLIC_OPTIONS
        .iter()
        .any(|p| name == *p || name.strip_suffix(p).is_some_and(|rest| rest.ends_with('_')))
}

/// A URL-like value with the password of its user information hidden
/// (`http://user:pw@host` -> `http://user:***@host`); other values as they are.
fn redact_userinfo(value: &str) -> String {
    let Some(scheme_end) = value.find("://") else {
        return value.to_string();
    };
    let authority_end = value[scheme_end + 3..]
        .find('/')
        .map_or(value.len(), |i| scheme_end + 3 + i);
    match value[..authority_end].rfind('@') {
        Some(at) if at > scheme_end => {
            let user = value[scheme_end + 3..at].split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &value[..scheme_end + 3], &value[at..])
        }
        _ => value.to_string(),
    }
}

/// The storage options for a table location: those of the longest matching
/// prefix, none when no prefix matches (deltalake then reads `AWS_*` variables).
pub fn storage_options_for(locations: &[StorageLocation], location: &str) -> HashMap<String, String> {
    locations
        .iter()
        .filter(|l| location.starts_with(&l.prefix))
        .max_by_key(|l| l.prefix.len())
        .map(|l| l.options.clone())
        .unwrap_or_default()
}

/// Opens the Delta table at a location at its latest version; `Ok(None)` when
/// there is no Delta table there yet.
pub async fn open_table(
    location: &str,
    storage_options: &HashMap<String, String>,
) -> Result<Option<deltalake::DeltaTable>, LakeError> {
    open_table_at(location, storage_options, None).await
}

/// Opens the Delta table at a location, at `version` or at its latest version;
/// `Ok(None)` when there is no Delta table there yet.
pub async fn open_table_at(
    location: &str,
    storage_options: &HashMap<String, String>,
    version: Option<u64>,
) -> Result<Option<deltalake::DeltaTable>, LakeError> {
    register_object_stores();
    let url = table_url(location)?;
    let delta = delta_error(location);
    // On local disk, "no table yet" is a missing log directory; the kernel's
    // error for it is not one deltalake classifies.
    if url.scheme() == "file"
        && let Ok(path) = url.to_file_path()
        && !path.join("_delta_log").is_dir()
    {
        return Ok(None);
    }
    let mut builder = deltalake::DeltaTableBuilder::from_url(url)
        .map_err(delta)?
        .with_storage_options(storage_options.clone());
    if let Some(version) = version {
        builder = builder.with_version(version);
    }
    match builder.load().await {
        Ok(table) => Ok(Some(table)),
        Err(DeltaTableError::NotATable(_) | DeltaTableError::InvalidTableLocation(_)) => Ok(None),
        Err(e) => Err(delta(e)),
    }
}

/// Reads a table's metadata; `Ok(None)` when there is no Delta table there yet.
pub async fn table_meta(
    location: &str,
    storage_options: &HashMap<String, String>,
) -> Result<Option<TableMeta>, LakeError> {
    let Some(table) = open_table(location, storage_options).await? else {
        return Ok(None);
    };
    meta_of(location, &table).map(Some)
}

/// The metadata of an opened table.
pub fn meta_of(location: &str, table: &deltalake::DeltaTable) -> Result<TableMeta, LakeError> {
    let state = table.snapshot().map_err(delta_error(location))?;
    let version = state.version();
    Ok(TableMeta {
        version,
        schema: Arc::clone(&state.snapshot().arrow_schema()),
        partition_columns: state.metadata().partition_columns().to_vec(),
        committed_at: state
            .version_timestamp(version)
            .and_then(DateTime::<Utc>::from_timestamp_millis),
    })
}

/// How a write treats the rows already in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Add rows; the schema must match the table's.
    Append,
    /// Replace rows and schema.
    Overwrite,
}

/// Writes record batches as one Delta commit (creating the table on first
/// write), returning the new table version.
pub async fn write(
    location: &str,
    storage_options: &HashMap<String, String>,
    batches: Vec<arrow::array::RecordBatch>,
    mode: WriteMode,
    partition_columns: &[String],
) -> Result<u64, LakeError> {
    register_object_stores();
    let url = table_url(location)?;
    let delta = delta_error(location);
    if url.scheme() == "file"
        && let Ok(path) = url.to_file_path()
    {
        std::fs::create_dir_all(&path).map_err(|e| LakeError::Location {
            location: location.to_string(),
            message: e.to_string(),
        })?;
    }
    let table = deltalake::DeltaTable::try_from_url_with_storage_options(url, storage_options.clone())
        .await
        .map_err(delta)?;
    let save_mode = match mode {
        WriteMode::Append => deltalake::protocol::SaveMode::Append,
        WriteMode::Overwrite => deltalake::protocol::SaveMode::Overwrite,
    };
    // One input partition: deltalake drains every partition of its input into
    // the same files, so with several the rows of a file would interleave and
    // the order they came in (a key order, say) would be lost, and with it the
    // tight min/max statistics per page that let a point query read one page.
    let one_partition = HashMap::from([("datafusion.execution.target_partitions".to_string(), "1".to_string())]);
    let session = deltalake::delta_datafusion::DeltaSessionContext::new_with_session_overrides(&one_partition)
        .map_err(delta)?
        .state();
    let mut builder = table
        .write(batches)
        .with_session_state(Arc::new(session))
        .with_save_mode(save_mode);
    if mode == WriteMode::Overwrite {
        // An overwrite replaces the schema too (callers check data against the
        // contract before they write).
        builder = builder.with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite);
    }
    if !partition_columns.is_empty() {
        builder = builder.with_partition_columns(partition_columns.to_vec());
    }
    let table = builder.await.map_err(delta)?;
    table.version().ok_or_else(|| LakeError::Location {
        location: location.to_string(),
        message: "the write produced no table version".into(),
    })
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[tokio::test]
    async fn reads_what_deltalake_wrote() {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = dir.path().join("orders");
        std::fs::create_dir_all(&location).expect("mkdir");
        let location = location.to_str().expect("utf-8").to_string();
        assert!(
            table_meta(&location, &HashMap::new()).await.expect("reads").is_none(),
            "no table yet"
        );

        let schema = Arc::new(Schema::new(vec![
            Field::new("o_orderkey", DataType::Int64, false),
            Field::new("o_status", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("O"), None])),
            ],
        )
        .expect("batch");
        let table = deltalake::DeltaTable::try_from_url(table_url(&location).expect("url"))
            .await
            .expect("table handle");
        let table = table
            .write(vec![batch.clone()])
            .with_partition_columns(["o_status"])
            .await
            .expect("first commit");
        table.write(vec![batch]).await.expect("second commit");

        let meta = table_meta(&location, &HashMap::new())
            .await
            .expect("reads")
            .expect("a table");
        assert_eq!(meta.version, 1, "two commits: versions 0 and 1");
        assert_eq!(meta.partition_columns, vec!["o_status".to_string()]);
        let names: Vec<&str> = meta.schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["o_orderkey", "o_status"]);
        assert!(!meta.schema.field(0).is_nullable());
        assert!(meta.committed_at.is_some());
    }

    #[test]
    fn storage_options_show_no_secret_in_debug() {
        let secrets = [
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t-upper"),
            ("aws_secret_access_key", "s3cr3t-lower"),
            ("AWS_SESSION_TOKEN", "s3cr3t-token"),
            ("aws_token", "s3cr3t-token-2"),
            ("AWS_ACCESS_KEY_ID", "AKIA-ID"),
            ("AZURE_STORAGE_ACCOUNT_KEY", "s3cr3t-azure"),
            ("azure_client_secret", "s3cr3t-azure-client"),
            ("azure_storage_sas_key", "s3cr3t-sas"),
            ("GOOGLE_SERVICE_ACCOUNT_KEY", "s3cr3t-gcs"),
            ("google_application_credentials", "/etc/s3cr3t.json"),
            ("aws_sse_customer_key_base64", "s3cr3t-sse"),
            ("some_password", "s3cr3t-pw"),
            ("unknown_option", "s3cr3t-unknown"),
        ];
        let public = [
            ("AWS_REGION", "eu-west-1"),
            ("aws_endpoint_url", "http://minio.local:9000"),
            ("AWS_ALLOW_HTTP", "true"),
            ("aws_s3_allow_unsafe_rename", "true"),
            ("AWS_ENDPOINT", "http://me:s3cr3t-userinfo@minio.local:9000/"),
        ];
        let location = StorageLocation {
            prefix: "s3://lake/".into(),
            options: secrets
                .iter()
                .chain(&public)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        for shown in [format!("{location:?}"), format!("{:?}", vec![location])] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
            assert!(!shown.contains("AKIA-ID"), "{shown}");
            for (name, _) in &secrets {
                assert!(shown.contains(&format!("\"{name}\": \"***\"")), "{name}: {shown}");
            }
            for needle in [
                "\"AWS_REGION\": \"eu-west-1\"",
                "\"aws_endpoint_url\": \"http://minio.local:9000\"",
                "\"AWS_ALLOW_HTTP\": \"true\"",
                "\"aws_s3_allow_unsafe_rename\": \"true\"",
                "\"AWS_ENDPOINT\": \"http://me:***@minio.local:9000/\"",
                "prefix: \"s3://lake/\"",
            ] {
                assert!(shown.contains(needle), "{needle}: {shown}");
            }
        }
        assert!(shows_option_value("aws_default_region"));
        assert!(!shows_option_value("aws_skip_signature"), "a secret word wins");
        assert!(!shows_option_value("my_region_password"));
        assert!(!shows_option_value("xregion"), "a whole word at the end only");
    }

    #[test]
    fn locations_become_urls() {
        assert_eq!(table_url("s3://bucket/sales/orders").expect("url").scheme(), "s3");
        let local = table_url("/data/sales/orders").expect("url");
        assert_eq!(local.as_str(), "file:///data/sales/orders/");
        assert!(table_url("s3://[bad").is_err());
    }
}
