//! Tessera's storage layer: the one place that touches object stores and Delta
//! tables. The catalog reads only metadata through it (schema, version, commit
//! time); the gateway and the publisher read and write data.

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

/// Registers the object-store schemes beyond the local filesystem (S3 and
/// S3-compatible stores); idempotent.
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

/// Reads a table's metadata; `Ok(None)` when there is no Delta table there yet.
pub async fn table_meta(
    location: &str,
    storage_options: &HashMap<String, String>,
) -> Result<Option<TableMeta>, LakeError> {
    register_object_stores();
    let url = table_url(location)?;
    let delta = |source: DeltaTableError| LakeError::Delta {
        location: location.to_string(),
        source: Box::new(source),
    };
    let table = match deltalake::DeltaTableBuilder::from_url(url)
        .map_err(delta)?
        .with_storage_options(storage_options.clone())
        .load()
        .await
    {
        Ok(table) => table,
        Err(DeltaTableError::NotATable(_) | DeltaTableError::InvalidTableLocation(_)) => return Ok(None),
        Err(e) => return Err(delta(e)),
    };
    let state = table.snapshot().map_err(delta)?;
    let version = state.version();
    Ok(Some(TableMeta {
        version,
        schema: Arc::clone(&state.snapshot().arrow_schema()),
        partition_columns: state.metadata().partition_columns().to_vec(),
        committed_at: state
            .version_timestamp(version)
            .and_then(DateTime::<Utc>::from_timestamp_millis),
    }))
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
    fn locations_become_urls() {
        assert_eq!(table_url("s3://bucket/sales/orders").expect("url").scheme(), "s3");
        let local = table_url("/data/sales/orders").expect("url");
        assert_eq!(local.as_str(), "file:///data/sales/orders/");
        assert!(table_url("s3://[bad").is_err());
    }
}
