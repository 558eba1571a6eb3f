//! Reading Parquet and CSV files, with the contract's types where given.

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::PublishError;

fn read_error(path: &Path) -> impl Fn(&dyn std::fmt::Display) -> PublishError + '_ {
    move |e| PublishError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

enum FileKind {
    Csv,
    Parquet,
}

fn kind_of(path: &Path) -> Result<FileKind, PublishError> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match extension.as_str() {
        "csv" => Ok(FileKind::Csv),
        "parquet" | "parq" | "pq" => Ok(FileKind::Parquet),
        _ => Err(read_error(path)(&"unknown file type: expected .csv or .parquet")),
    }
}

/// Reads a Parquet or CSV file (by its extension) into record batches. A CSV
/// file has a header row; its types are inferred from its values (prefer
/// [`read_file_as`] with the contract's schema).
pub fn read_file(path: impl AsRef<Path>) -> Result<Vec<RecordBatch>, PublishError> {
    let path = path.as_ref();
    match kind_of(path)? {
        FileKind::Parquet => read_parquet(path),
        FileKind::Csv => {
            let failed = read_error(path);
            let file = std::fs::File::open(path).map_err(|e| failed(&e))?;
            let (schema, _) = arrow::csv::reader::Format::default()
                .with_header(true)
                .infer_schema(file, None)
                .map_err(|e| failed(&e))?;
            read_csv_with(path, Arc::new(schema))
        }
    }
}

/// Reads a Parquet or CSV file (by its extension); CSV columns get the types
/// `schema` gives them (see [`read_csv`]).
pub fn read_file_as(path: impl AsRef<Path>, schema: &SchemaRef) -> Result<Vec<RecordBatch>, PublishError> {
    let path = path.as_ref();
    match kind_of(path)? {
        FileKind::Parquet => read_parquet(path),
        FileKind::Csv => read_csv(path, schema),
    }
}

/// Reads a Parquet file.
pub fn read_parquet(path: impl AsRef<Path>) -> Result<Vec<RecordBatch>, PublishError> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let path = path.as_ref();
    let failed = read_error(path);
    let file = std::fs::File::open(path).map_err(|e| failed(&e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(ParquetRecordBatchReaderBuilder::build)
        .map_err(|e| failed(&e))?;
    reader.map(|b| b.map_err(|e| failed(&e))).collect()
}

/// Reads a CSV file with a header row. Columns are matched to `schema` (e.g. a
/// contract's, [`Target::schema`]) by their header names, in any order, and
/// parsed as its types; a column `schema` does not name is read as text (the
/// checks then refuse it as an extra column). An empty field is NULL.
pub fn read_csv(path: impl AsRef<Path>, schema: &SchemaRef) -> Result<Vec<RecordBatch>, PublishError> {
    let path = path.as_ref();
    let failed = read_error(path);
    let file = std::fs::File::open(path).map_err(|e| failed(&e))?;
    let (header, _) = arrow::csv::reader::Format::default()
        .with_header(true)
        .infer_schema(file, Some(0))
        .map_err(|e| failed(&e))?;
    let fields: Vec<Field> = header
        .fields()
        .iter()
        .map(|column| match schema.field_with_name(column.name()) {
            Ok(field) => field.clone().with_nullable(true),
            Err(_) => Field::new(column.name(), DataType::Utf8, true),
        })
        .collect();
    read_csv_with(path, Arc::new(Schema::new(fields)))
}

/// Reads a CSV file whose columns are, in order, those of `schema`.
fn read_csv_with(path: &Path, schema: SchemaRef) -> Result<Vec<RecordBatch>, PublishError> {
    let failed = read_error(path);
    let file = std::fs::File::open(path).map_err(|e| failed(&e))?;
    let reader = arrow::csv::ReaderBuilder::new(schema)
        .with_header(true)
        .build(file)
        .map_err(|e| failed(&e))?;
    reader.map(|b| b.map_err(|e| failed(&e))).collect()
}
