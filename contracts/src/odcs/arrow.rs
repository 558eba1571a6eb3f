//! ODCS types <-> Arrow types, and the verification of a contract's schema
//! object against a table's actual Arrow schema.
//!
//! `physicalType` names follow Delta Lake / Spark SQL (`bigint`, `decimal(15,2)`,
//! `timestamp` = instant in UTC, `timestamp_ntz` = wall-clock time, `array<int>`,
//! `struct<a:int,b:string>`, `map<string,int>`); common SQL spellings
//! (`varchar(20)`, `timestamp with time zone`, `double precision`, ...) are read
//! too. Without a `physicalType`, the `logicalType` (and its `format` /
//! `timezone` options) says what is expected, as loosely as it says it: a plain
//! `integer` accepts any integer width.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{LogicalType, SchemaObject, SchemaProperty};

const UTC: &str = "UTC";

/// Parses a `physicalType` into an Arrow type.
pub fn parse_physical(physical: &str) -> Result<DataType, String> {
    let t = physical.trim();
    let lower = t.to_ascii_lowercase();
    let (head, args) = match (lower.find(['(', '<']), lower.ends_with([')', '>'])) {
        (Some(i), true) => (lower[..i].trim().to_string(), Some(&t[i + 1..t.len() - 1])),
        _ => (lower.clone(), None),
    };
    let dt = match (head.as_str(), args) {
        ("tinyint" | "byte" | "int8", None) => DataType::Int8,
        ("smallint" | "short" | "int16", None) => DataType::Int16,
        ("int" | "integer" | "int32", None) => DataType::Int32,
        ("bigint" | "long" | "int64", None) => DataType::Int64,
        ("uint8", None) => DataType::UInt8,
        ("uint16", None) => DataType::UInt16,
        ("uint32", None) => DataType::UInt32,
        ("uint64", None) => DataType::UInt64,
        ("float" | "real" | "float32", None) => DataType::Float32,
        ("double" | "double precision" | "float64", None) => DataType::Float64,
        ("decimal" | "numeric" | "number", Some(args)) => {
            let parts: Vec<&str> = args.split(',').map(str::trim).collect();
            let number = |s: &str| {
                s.parse::<i16>()
                    .map_err(|_| format!("{physical:?}: {s:?} is not a number"))
            };
            let (precision, scale) = match parts.as_slice() {
                [p] => (number(p)?, 0),
                [p, s] => (number(p)?, number(s)?),
                _ => {
                    return Err(format!(
                        "{physical:?}: decimal(precision, scale) takes one or two numbers"
                    ));
                }
            };
            if !(1..=76).contains(&precision) || scale < 0 || scale > precision {
                return Err(format!(
                    "{physical:?}: precision must be 1 to 76 and scale 0 to precision"
                ));
            }
            let precision = u8::try_from(precision).map_err(|e| e.to_string())?;
            let scale = i8::try_from(scale).map_err(|e| e.to_string())?;
            if precision <= 38 {
                DataType::Decimal128(precision, scale)
            } else {
                DataType::Decimal256(precision, scale)
            }
        }
        ("string" | "text" | "utf8" | "large_string" | "character varying", None)
        | ("varchar" | "char" | "character" | "nvarchar" | "nchar", _) => DataType::Utf8,
        ("binary" | "varbinary" | "bytea" | "blob" | "bytes", None) => DataType::Binary,
        ("boolean" | "bool", None) => DataType::Boolean,
        ("date", None) => DataType::Date32,
        ("timestamp" | "timestamptz" | "timestamp_ltz" | "timestamp with time zone", None) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
        }
        ("timestamp_ntz" | "timestamp without time zone" | "datetime", None) => {
            DataType::Timestamp(TimeUnit::Microsecond, None)
        }
        ("time" | "time without time zone", None) => DataType::Time64(TimeUnit::Microsecond),
        ("array", Some(inner)) => DataType::List(Arc::new(Field::new("element", parse_physical(inner)?, true))),
        ("struct", Some(inner)) => {
            let mut fields = Vec::new();
            for member in split_top_level(inner) {
                let (name, ty) = member
                    .split_once(':')
                    .ok_or_else(|| format!("{physical:?}: a struct member is name:type, got {member:?}"))?;
                fields.push(Field::new(name.trim(), parse_physical(ty)?, true));
            }
            DataType::Struct(Fields::from(fields))
        }
        ("map", Some(inner)) => {
            let parts = split_top_level(inner);
            let [key, value] = parts.as_slice() else {
                return Err(format!("{physical:?}: map<key, value> takes two types"));
            };
            map_type(parse_physical(key)?, parse_physical(value)?)
        }
        _ => return Err(format!("unknown physical type {physical:?}")),
    };
    Ok(dt)
}

fn map_type(key: DataType, value: DataType) -> DataType {
    let entries = Field::new(
        "key_value",
        DataType::Struct(Fields::from(vec![
            Field::new("key", key, false),
            Field::new("value", value, true),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// Splits `a, b<c, d>, e` at the commas outside brackets.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if !s[start..].trim().is_empty() {
        parts.push(s[start..].trim());
    }
    parts
}

/// The Delta / Spark SQL name of an Arrow type (the inverse of [`parse_physical`]).
pub fn physical_name(dt: &DataType) -> String {
    match dt {
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::UInt16 => "uint16".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::Float16 | DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => {
            format!("decimal({p},{s})")
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            "binary".into()
        }
        DataType::Boolean => "boolean".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp".into(),
        DataType::Timestamp(_, None) => "timestamp_ntz".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time".into(),
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) | DataType::FixedSizeList(f, _) => {
            format!("array<{}>", physical_name(f.data_type()))
        }
        DataType::Struct(fields) => format!(
            "struct<{}>",
            fields
                .iter()
                .map(|f| format!("{}:{}", f.name(), physical_name(f.data_type())))
                .collect::<Vec<_>>()
                .join(",")
        ),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!(
                    "map<{},{}>",
                    physical_name(kv[0].data_type()),
                    physical_name(kv[1].data_type())
                )
            }
            other => format!("map<{other}>"),
        },
        DataType::Dictionary(_, value) => physical_name(value),
        other => other.to_string().to_ascii_lowercase(),
    }
}

/// The ODCS logical type of an Arrow type.
pub fn logical_type(dt: &DataType) -> Option<LogicalType> {
    Some(match dt {
        d if d.is_integer() => LogicalType::Integer,
        d if d.is_floating()
            || matches!(
                d,
                DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal128(..) | DataType::Decimal256(..)
            ) =>
        {
            LogicalType::Number
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => LogicalType::String,
        DataType::Boolean => LogicalType::Boolean,
        DataType::Date32 | DataType::Date64 => LogicalType::Date,
        DataType::Timestamp(..) => LogicalType::Timestamp,
        DataType::Time32(_) | DataType::Time64(_) => LogicalType::Time,
        DataType::Struct(_) => LogicalType::Object,
        DataType::List(_) | DataType::LargeList(_) | DataType::ListView(_) | DataType::FixedSizeList(..) => {
            LogicalType::Array
        }
        DataType::Map(..) => LogicalType::Map,
        DataType::Dictionary(_, value) => return logical_type(value),
        _ => return None,
    })
}

/// Describes an Arrow field as an ODCS property (e.g. to start a contract from
/// an existing table).
pub fn property_from_field(field: &Field) -> SchemaProperty {
    let dt = field.data_type();
    let logical = logical_type(dt);
    let mut p = SchemaProperty {
        name: Some(field.name().clone()),
        physical_type: Some(physical_name(dt)),
        logical_type: if logical == Some(LogicalType::Map) {
            None
        } else {
            logical
        },
        required: Some(!field.is_nullable()),
        ..SchemaProperty::default()
    };
    match dt {
        DataType::Struct(fields) => p.properties = Some(fields.iter().map(|f| property_from_field(f)).collect()),
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) | DataType::FixedSizeList(f, _) => {
            let mut items = property_from_field(f);
            items.name = None;
            p.items = Some(Box::new(items));
        }
        _ => {}
    }
    p
}

/// The Arrow type a property asks for, concretely: where the contract is loose
/// (`integer` without a format), the widest usual type is chosen.
pub fn property_type(p: &SchemaProperty) -> Result<DataType, String> {
    if let Some(physical) = &p.physical_type {
        return parse_physical(physical);
    }
    let option = |key: &str| p.logical_type_options.as_ref().and_then(|o| o.get(key));
    Ok(match p.logical_type {
        None | Some(LogicalType::String) => DataType::Utf8,
        Some(LogicalType::Integer) => match option("format").and_then(Value::as_str) {
            Some("i8") => DataType::Int8,
            Some("i16") => DataType::Int16,
            Some("i32") => DataType::Int32,
            Some("u8") => DataType::UInt8,
            Some("u16") => DataType::UInt16,
            Some("u32") => DataType::UInt32,
            Some("u64") => DataType::UInt64,
            Some("i128" | "u128") => DataType::Decimal128(38, 0),
            _ => DataType::Int64,
        },
        Some(LogicalType::Number) => match option("format").and_then(Value::as_str) {
            Some("f32") => DataType::Float32,
            _ => DataType::Float64,
        },
        Some(LogicalType::Boolean) => DataType::Boolean,
        Some(LogicalType::Date) => DataType::Date32,
        Some(LogicalType::Time) => DataType::Time64(TimeUnit::Microsecond),
        Some(LogicalType::Timestamp) => {
            let tz = option("timezone").and_then(Value::as_bool).unwrap_or(true);
            DataType::Timestamp(TimeUnit::Microsecond, tz.then(|| UTC.into()))
        }
        Some(LogicalType::Object) => DataType::Struct(Fields::from(
            p.properties
                .iter()
                .flatten()
                .map(property_field)
                .collect::<Result<Vec<_>, _>>()?,
        )),
        Some(LogicalType::Array) => {
            let items = p.items.as_deref().ok_or("an array declares its items")?;
            DataType::List(Arc::new(Field::new(
                "element",
                property_type(items)?,
                items.required != Some(true),
            )))
        }
        Some(LogicalType::Map) => {
            let map = p.map.as_ref().ok_or("a map declares its key and value")?;
            map_type(property_type(&map.key)?, property_type(&map.value)?)
        }
        Some(LogicalType::Vector) => DataType::List(Arc::new(Field::new("element", DataType::Float32, false))),
    })
}

/// The Arrow field of a property: its name (physical name first), type and
/// nullability (`required` means not null).
pub fn property_field(p: &SchemaProperty) -> Result<Field, String> {
    let name = column_name(p).ok_or("a property has a name")?;
    Ok(Field::new(name, property_type(p)?, p.required != Some(true)))
}

/// The column a property describes.
pub fn column_name(p: &SchemaProperty) -> Option<&str> {
    p.physical_name.as_deref().or(p.name.as_deref())
}

/// The Arrow schema a schema object describes.
pub fn object_schema(object: &SchemaObject) -> Result<Schema, String> {
    let fields = object
        .properties
        .iter()
        .flatten()
        .map(|p| property_field(p).map_err(|e| format!("{}: {e}", p.name.as_deref().unwrap_or("?"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Schema::new(fields))
}

/// One way a table differs from its contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Mismatch {
    /// `missing-column`, `extra-column`, `type-mismatch`, `nullability-mismatch`,
    /// `partition-mismatch`, `invalid-type`.
    pub rule: String,
    /// The column, `a.b` for nested ones.
    pub path: String,
    /// What the contract says.
    pub expected: String,
    /// What the table has.
    pub actual: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: contract says {}, table has {}",
            self.rule, self.path, self.expected, self.actual
        )
    }
}

/// Compares a schema object with a table's schema and partition columns.
pub fn verify(object: &SchemaObject, table: &Schema, partition_columns: &[String]) -> Vec<Mismatch> {
    let mut out = Vec::new();
    compare_fields(
        &mut out,
        "",
        object.properties.as_deref().unwrap_or_default(),
        table.fields(),
    );
    let mut declared: Vec<(i64, &str)> = object
        .properties
        .iter()
        .flatten()
        .filter(|p| p.partitioned == Some(true))
        .filter_map(|p| Some((p.partition_key_position.unwrap_or(i64::MAX), column_name(p)?)))
        .collect();
    declared.sort();
    let declared: Vec<&str> = declared.into_iter().map(|(_, n)| n).collect();
    let actual: Vec<&str> = partition_columns.iter().map(String::as_str).collect();
    let same = if object
        .properties
        .iter()
        .flatten()
        .any(|p| p.partition_key_position.is_some_and(|p| p > 0))
    {
        declared == actual
    } else {
        let mut a = declared.clone();
        let mut b = actual.clone();
        a.sort_unstable();
        b.sort_unstable();
        a == b
    };
    if !same {
        out.push(Mismatch {
            rule: "partition-mismatch".into(),
            path: object.name.clone(),
            expected: format!("partitioned by [{}]", declared.join(", ")),
            actual: format!("partitioned by [{}]", actual.join(", ")),
        });
    }
    out
}

fn compare_fields(out: &mut Vec<Mismatch>, prefix: &str, properties: &[SchemaProperty], fields: &Fields) {
    for p in properties {
        let Some(name) = column_name(p) else { continue };
        let path = format!("{prefix}{name}");
        let Some(field) = fields.iter().find(|f| f.name() == name) else {
            out.push(Mismatch {
                rule: "missing-column".into(),
                path,
                expected: describe(p),
                actual: "no such column".into(),
            });
            continue;
        };
        compare_property(out, &path, p, field);
    }
    for field in fields {
        if !properties.iter().any(|p| column_name(p) == Some(field.name().as_str())) {
            out.push(Mismatch {
                rule: "extra-column".into(),
                path: format!("{prefix}{}", field.name()),
                expected: "no such column".into(),
                actual: physical_name(field.data_type()),
            });
        }
    }
}

fn describe(p: &SchemaProperty) -> String {
    p.physical_type
        .clone()
        .or_else(|| p.logical_type.map(|t| t.as_str().to_string()))
        .unwrap_or_else(|| "a column".into())
}

fn compare_property(out: &mut Vec<Mismatch>, path: &str, p: &SchemaProperty, field: &Field) {
    if p.required == Some(true) && field.is_nullable() {
        out.push(Mismatch {
            rule: "nullability-mismatch".into(),
            path: path.to_string(),
            expected: "required (not null)".into(),
            actual: "nullable".into(),
        });
    }
    let actual = field.data_type();
    let type_mismatch = |out: &mut Vec<Mismatch>, expected: String| {
        out.push(Mismatch {
            rule: "type-mismatch".into(),
            path: path.to_string(),
            expected,
            actual: physical_name(actual),
        });
    };
    if let Some(physical) = &p.physical_type {
        match parse_physical(physical) {
            Ok(expected) => {
                if !same_type(&expected, actual) {
                    type_mismatch(out, physical.clone());
                }
            }
            Err(e) => out.push(Mismatch {
                rule: "invalid-type".into(),
                path: path.to_string(),
                expected: e,
                actual: physical_name(actual),
            }),
        }
        return;
    }
    let Some(logical) = p.logical_type else { return };
    let option = |key: &str| p.logical_type_options.as_ref().and_then(|o| o.get(key));
    let fits = match logical {
        LogicalType::String => matches!(actual, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View),
        LogicalType::Integer => match option("format").and_then(Value::as_str) {
            Some(_) => property_type(p).is_ok_and(|want| same_type(&want, actual)),
            None => actual.is_integer(),
        },
        LogicalType::Number => match option("format").and_then(Value::as_str) {
            Some(_) => property_type(p).is_ok_and(|want| same_type(&want, actual)),
            None => actual.is_numeric(),
        },
        LogicalType::Boolean => actual == &DataType::Boolean,
        LogicalType::Date => matches!(actual, DataType::Date32 | DataType::Date64),
        LogicalType::Time => matches!(actual, DataType::Time32(_) | DataType::Time64(_)),
        LogicalType::Timestamp => match (actual, option("timezone").and_then(Value::as_bool)) {
            (DataType::Timestamp(_, tz), Some(true)) => tz.is_some(),
            (DataType::Timestamp(_, tz), Some(false)) => tz.is_none(),
            (DataType::Timestamp(..), None) => true,
            _ => false,
        },
        LogicalType::Object => {
            if let DataType::Struct(fields) = actual {
                let nested_prefix = format!("{path}.");
                compare_fields(out, &nested_prefix, p.properties.as_deref().unwrap_or_default(), fields);
                true
            } else {
                false
            }
        }
        LogicalType::Array => match (actual, p.items.as_deref()) {
            (
                DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) | DataType::FixedSizeList(f, _),
                Some(items),
            ) => {
                compare_property(out, &format!("{path}[]"), items, f);
                true
            }
            (
                DataType::List(_) | DataType::LargeList(_) | DataType::ListView(_) | DataType::FixedSizeList(..),
                None,
            ) => true,
            _ => false,
        },
        LogicalType::Map => matches!(actual, DataType::Map(..)),
        LogicalType::Vector => matches!(actual, DataType::List(_) | DataType::FixedSizeList(..)),
    };
    if !fits {
        type_mismatch(out, logical.as_str().to_string());
    }
}

/// Type equality up to representation: string and binary layouts, list layouts,
/// field names inside lists and maps, and the spelling of UTC are not differences.
pub fn same_type(a: &DataType, b: &DataType) -> bool {
    use DataType::*;
    match (a, b) {
        (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View) => true,
        (Binary | LargeBinary | BinaryView, Binary | LargeBinary | BinaryView) => true,
        (Timestamp(_, x), Timestamp(_, y)) => x.is_some() == y.is_some(),
        (Time32(_) | Time64(_), Time32(_) | Time64(_)) => true,
        (Date32 | Date64, Date32 | Date64) => true,
        (List(x) | LargeList(x) | ListView(x), List(y) | LargeList(y) | ListView(y)) => {
            same_type(x.data_type(), y.data_type())
        }
        (Struct(x), Struct(y)) => {
            x.len() == y.len()
                && x.iter().all(|f| {
                    y.iter()
                        .any(|g| g.name() == f.name() && same_type(f.data_type(), g.data_type()))
                })
        }
        (Map(x, _), Map(y, _)) => same_type(x.data_type(), y.data_type()),
        (
            Decimal32(p, s) | Decimal64(p, s) | Decimal128(p, s) | Decimal256(p, s),
            Decimal32(q, t) | Decimal64(q, t) | Decimal128(q, t) | Decimal256(q, t),
        ) => p == q && s == t,
        (Dictionary(_, x), y) | (y, Dictionary(_, x)) => same_type(x, y),
        _ => a == b,
    }
}
