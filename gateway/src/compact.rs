//! Batches shrunk to their own data before they are serialized.
//!
//! A string or binary *view* column may point into buffers far larger than
//! its rows: the top 20 of a join keep the decoded pages they were picked
//! from. Arrow IPC writes a view column's buffers whole, so such a 20-row
//! result would cross the wire as megabytes, and past gRPC's default 4 MiB
//! message limit (where Flight SQL clients refuse it). Those columns are
//! compacted first; full columns, the common case, are left as they are.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::DataType;

/// Buffer bytes beyond which a view column is worth compacting (when it
/// also holds more than twice what its rows use).
const WASTE_BYTES: usize = 32 << 10;

/// `batch` with every wasteful view column compacted.
pub fn compact(batch: RecordBatch) -> RecordBatch {
    if !batch.columns().iter().any(wasteful) {
        return batch;
    }
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| if wasteful(c) { own_views(c) } else { Arc::clone(c) })
        .collect();
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(batch.schema(), columns, &options).unwrap_or(batch)
}

/// A view column copied down to the bytes its rows use; any other column as it is.
pub fn own_views(column: &ArrayRef) -> ArrayRef {
    match column.data_type() {
        DataType::Utf8View => Arc::new(column.as_string_view().gc()),
        DataType::BinaryView => Arc::new(column.as_binary_view().gc()),
        _ => Arc::clone(column),
    }
}

fn wasteful(column: &ArrayRef) -> bool {
    let (held, used) = match column.data_type() {
        DataType::Utf8View => {
            let a = column.as_string_view();
            (
                a.data_buffers().iter().map(|b| b.len()).sum::<usize>(),
                a.total_buffer_bytes_used(),
            )
        }
        DataType::BinaryView => {
            let a = column.as_binary_view();
            (
                a.data_buffers().iter().map(|b| b.len()).sum::<usize>(),
                a.total_buffer_bytes_used(),
            )
        }
        _ => return false,
    };
    held > WASTE_BYTES && held > 2 * used
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::StringViewArray;
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    fn ipc_bytes(batch: &RecordBatch) -> usize {
        let mut writer =
            datafusion::arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &batch.schema()).expect("writer");
        writer.write(batch).expect("writes");
        writer.into_inner().expect("bytes").len()
    }

    #[test]
    fn a_few_rows_of_a_large_view_column_cross_the_wire_small() {
        let long: Vec<String> = (0..100_000)
            .map(|i| format!("a string longer than twelve bytes, number {i}"))
            .collect();
        let column = StringViewArray::from_iter_values(long.iter());
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8View, false)]));
        let full = RecordBatch::try_new(schema, vec![Arc::new(column)]).expect("batch");
        let few = full.slice(10, 20);
        assert!(
            ipc_bytes(&few) > 1 << 20,
            "sliced views keep their buffers: {}",
            ipc_bytes(&few)
        );
        let compacted = compact(few.clone());
        assert_eq!(compacted, few, "the same rows");
        assert!(ipc_bytes(&compacted) < 8 << 10, "compacted: {}", ipc_bytes(&compacted));
        // A full column is left alone (no copy).
        let same = compact(full.clone());
        assert!(same.column(0).to_data().buffers()[1].as_ptr() == full.column(0).to_data().buffers()[1].as_ptr());
    }
}
