//! EXPLAIN as a principal who is not an admin sees it: product names where the
//! plan would print where the tables are stored.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

/// What to replace in plan text: each table's storage path (as a URL and as
/// an object-store path), longest first, with the table's SQL name.
#[derive(Debug, Clone, Default)]
pub struct Redactions(Vec<(String, String)>);

impl Redactions {
    /// `tables`: (location URL, `domain.table`).
    pub fn new<'a>(tables: impl IntoIterator<Item = (&'a str, String)>) -> Self {
        let mut out = Vec::new();
        for (location, name) in tables {
            let location = location.trim_end_matches('/');
            out.push((location.to_string(), name.clone()));
            // Object-store paths print without scheme and authority (a local
            // path without its leading `/`, an S3 key without its bucket).
            if let Some((_, rest)) = location.split_once("://") {
                let path = match rest.split_once('/') {
                    Some((authority, path)) if !authority.is_empty() => path,
                    _ => rest.trim_start_matches('/'),
                };
                if !path.is_empty() {
                    out.push((path.to_string(), name.clone()));
                }
            } else {
                out.push((location.trim_start_matches('/').to_string(), name));
            }
        }
        out.sort_by_key(|(needle, _)| std::cmp::Reverse(needle.len()));
        Self(out)
    }

    fn apply(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (needle, name) in &self.0 {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), name);
            }
        }
        text
    }

    /// The stream with every text cell redacted.
    pub fn stream(self, stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
        let schema = stream.schema();
        let redactions = Arc::new(self);
        let batches = stream.map(move |batch| {
            let batch = batch?;
            let columns = batch.columns().iter().map(|c| redactions.column(c)).collect::<Vec<_>>();
            Ok(RecordBatch::try_new(batch.schema(), columns)?)
        });
        Box::pin(RecordBatchStreamAdapter::new(schema, batches))
    }

    fn column(&self, column: &ArrayRef) -> ArrayRef {
        if column.data_type() != &DataType::Utf8 {
            return Arc::clone(column);
        }
        let strings = column.as_string::<i32>();
        let redacted: StringArray = strings.iter().map(|v| v.map(|v| self.apply(v))).collect();
        Arc::new(redacted)
    }
}
