//! Data against the contract: the target schema, the harmless conversions,
//! and every reason a batch does not conform.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::compute::{CastOptions, can_cast_types, cast_with_options};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tessera_contracts::odcs::arrow::{Mismatch, column_name, verify};
use tessera_contracts::odcs::{DataContract, SchemaObject};
use tessera_lake::{TableMeta, WriteMode};

use super::{PublishError, Violation, ViolationKind};

pub(super) fn schema_object<'a>(product: &str, contract: &'a DataContract) -> Result<&'a SchemaObject, PublishError> {
    contract
        .schema
        .as_ref()
        .and_then(|s| s.first())
        .ok_or_else(|| invalid(product, contract, "it declares no schema object".into()))
}

pub(super) fn invalid(product: &str, contract: &DataContract, message: String) -> PublishError {
    PublishError::InvalidContract {
        product: product.to_string(),
        version: contract.version.clone(),
        message,
    }
}

/// The mismatches that matter for data: nullability is checked on the values
/// (a nullable field without NULLs is fine), partitioning is the table's.
pub(super) fn relevant(mismatches: Vec<Mismatch>) -> impl Iterator<Item = Mismatch> {
    mismatches
        .into_iter()
        .filter(|m| !matches!(m.rule.as_str(), "nullability-mismatch" | "partition-mismatch"))
}

/// The schema written: the contract's columns in its order, each with the type
/// it has in the existing table when that type satisfies the contract (else the
/// contract's), nullable as the table has it for an append (else as the
/// contract says).
pub(super) fn target_schema(
    object: &SchemaObject,
    declared: &Schema,
    existing: Option<&TableMeta>,
    mode: WriteMode,
) -> Schema {
    let unfit: Vec<String> = existing
        .map(|meta| {
            verify(object, &meta.schema, &[])
                .into_iter()
                .filter(|m| m.rule == "type-mismatch" || m.rule == "invalid-type")
                .map(|m| m.path)
                .collect()
        })
        .unwrap_or_default();
    let fields: Vec<Field> = declared
        .fields()
        .iter()
        .map(|field| {
            let name = field.name();
            match existing.and_then(|m| m.schema.field_with_name(name).ok()) {
                Some(table) if !unfit.contains(name) => {
                    let nullable = match mode {
                        WriteMode::Append => table.is_nullable(),
                        WriteMode::Overwrite => field.is_nullable(),
                    };
                    Field::new(name, table.data_type().clone(), nullable)
                }
                _ => field.as_ref().clone(),
            }
        })
        .collect();
    Schema::new(fields)
}

/// The target schema with every field nullable: the batches the rules run on,
/// built before NULLs in required columns are refused.
pub(super) fn relaxed_schema(target: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        target
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ))
}

/// Whether a type the contract does not accept as is converts harmlessly.
pub fn convertible(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    match (from, to) {
        (Null, _) => true,
        (f, t) if f.is_integer() && t.is_integer() => true,
        (f, Float64 | Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..)) if f.is_integer() => true,
        (Float16, Float32 | Float64) | (Float32, Float64) => true,
        _ => false,
    }
}

/// The schema violations of one batch schema.
pub(super) fn schema_problems(object: &SchemaObject, target: &Schema, schema: &Schema) -> Vec<Violation> {
    let mut out = Vec::new();
    for (i, field) in schema.fields().iter().enumerate() {
        if schema.fields()[..i].iter().any(|f| f.name() == field.name()) {
            out.push(Violation::schema(
                "duplicate-column",
                field.name(),
                "the data has this column more than once".into(),
            ));
        }
    }
    for m in relevant(verify(object, schema, &[])) {
        if m.rule == "type-mismatch"
            && let (Ok(from), Ok(to)) = (schema.field_with_name(&m.path), target.field_with_name(&m.path))
            && convertible(from.data_type(), to.data_type())
        {
            continue;
        }
        out.push(Violation::mismatch(m, ViolationKind::Schema));
    }
    // Types the contract accepts, but that cannot become the table's.
    for field in target.fields() {
        if let Ok(from) = schema.field_with_name(field.name())
            && from.data_type() != field.data_type()
            && !can_cast_types(from.data_type(), field.data_type())
            && !out.iter().any(|v| &v.path == field.name())
        {
            out.push(Violation::schema(
                "type-mismatch",
                field.name(),
                format!(
                    "the table's column is {}, the data's {} cannot be converted to it",
                    field.data_type(),
                    from.data_type()
                ),
            ));
        }
    }
    out
}

/// Reorders and converts the batches to the target schema (every field
/// nullable), counting NULLs in required columns; `None` when some batch cannot
/// be conformed (the reasons are in `violations`).
pub(super) fn conform(
    object: &SchemaObject,
    target: &SchemaRef,
    batches: Vec<RecordBatch>,
    violations: &mut Vec<Violation>,
) -> Option<Vec<RecordBatch>> {
    let required: Vec<&str> = object
        .properties
        .iter()
        .flatten()
        .filter(|p| p.required == Some(true))
        .filter_map(column_name)
        .collect();
    let relaxed = relaxed_schema(target);
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    let mut nulls: BTreeMap<usize, usize> = BTreeMap::new();
    // Each distinct batch schema is checked once: whether it conforms.
    let mut seen: Vec<(SchemaRef, bool)> = Vec::new();
    let mut out = Vec::with_capacity(batches.len());
    let mut complete = true;
    'batches: for batch in batches {
        let schema = batch.schema();
        let fits = match seen.iter().find(|(s, _)| *s == schema) {
            Some((_, fits)) => *fits,
            None => {
                let problems = schema_problems(object, target, &schema);
                let fits = problems.is_empty();
                for v in problems {
                    add(violations, v);
                }
                seen.push((schema, fits));
                fits
            }
        };
        if !fits {
            complete = false;
            continue;
        }
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
        for (i, field) in target.fields().iter().enumerate() {
            let Some(column) = batch.column_by_name(field.name()) else {
                complete = false;
                continue 'batches;
            };
            let column = if column.data_type() == field.data_type() {
                Arc::clone(column)
            } else {
                match cast_with_options(column, field.data_type(), &options) {
                    Ok(column) => column,
                    Err(e) => {
                        let message = format!("cannot convert {} to {}: {e}", column.data_type(), field.data_type());
                        add(violations, Violation::schema("invalid-value", field.name(), message));
                        complete = false;
                        continue 'batches;
                    }
                }
            };
            *nulls.entry(i).or_default() += column.logical_null_count();
            columns.push(column);
        }
        match RecordBatch::try_new(Arc::clone(&relaxed), columns) {
            Ok(batch) => out.push(batch),
            Err(e) => {
                add(
                    violations,
                    Violation::schema("invalid-value", &object.name, e.to_string()),
                );
                complete = false;
            }
        }
    }
    for (i, count) in nulls {
        let field = target.field(i);
        if count == 0 {
            continue;
        }
        let message = if required.contains(&field.name().as_str()) {
            format!("{count} NULL value(s) in a required column")
        } else if !field.is_nullable() {
            format!("{count} NULL value(s) in a column the Delta table declares NOT NULL")
        } else {
            continue;
        };
        violations.push(Violation {
            kind: ViolationKind::Required,
            rule: "required".into(),
            path: field.name().clone(),
            message,
            measured: Some(count as f64),
            threshold: Some("mustBe 0".into()),
        });
    }
    complete.then_some(out)
}

/// Adds a violation once.
pub(super) fn add(violations: &mut Vec<Violation>, v: Violation) {
    if !violations.contains(&v) {
        violations.push(v);
    }
}

/// The contract's partition columns, in partition-key order.
pub(super) fn declared_partitions(object: &SchemaObject) -> Vec<String> {
    let mut declared: Vec<(i64, String)> = object
        .properties
        .iter()
        .flatten()
        .filter(|p| p.partitioned == Some(true))
        .filter_map(|p| {
            Some((
                p.partition_key_position.unwrap_or(i64::MAX),
                column_name(p)?.to_string(),
            ))
        })
        .collect();
    declared.sort();
    declared.into_iter().map(|(_, name)| name).collect()
}
