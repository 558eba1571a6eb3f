//! The PostgreSQL functions clients call on connecting that DataFusion and
//! `pg_catalog` do not provide, answered as PostgreSQL would.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;

/// Registers them in a connection's context.
pub(super) fn register(context: &SessionContext) {
    context.register_udf(version_udf());
    context.register_udf(to_regtype_udf());
    context.register_udf(always_visible_udf("pg_type_is_visible"));
}

/// What `version()` answers over PostgreSQL wire: clients (SQLAlchemy, JDBC)
/// parse a PostgreSQL version out of it.
pub const SERVER_VERSION: &str = "16.6";

fn version_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    use datafusion::scalar::ScalarValue;
    let text = format!(
        "PostgreSQL {SERVER_VERSION} (Tessera {}, Apache DataFusion 55) on x86_64-pc-linux-gnu",
        env!("CARGO_PKG_VERSION")
    );
    create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(text.clone()))))),
    )
}

/// `to_regtype(name)`: the OID of a built-in type, NULL for any other (drivers
/// probe for extension types such as `hstore` this way).
fn to_regtype_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::array::{Array, Int32Array};
    use datafusion::common::cast::as_string_array;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    fn oid(name: &str) -> Option<i32> {
        let name = name.trim().trim_start_matches("pg_catalog.").to_ascii_lowercase();
        Some(match name.as_str() {
            "bool" | "boolean" => 16,
            "bytea" => 17,
            "int8" | "bigint" => 20,
            "int2" | "smallint" => 21,
            "int4" | "integer" | "int" => 23,
            "text" => 25,
            "oid" => 26,
            "json" => 114,
            "float4" | "real" => 700,
            "float8" | "double precision" => 701,
            "varchar" | "character varying" => 1043,
            "date" => 1082,
            "time" => 1083,
            "timestamp" => 1114,
            "timestamptz" => 1184,
            "interval" => 1186,
            "numeric" | "decimal" => 1700,
            "uuid" => 2950,
            "jsonb" => 3802,
            _ => return None,
        })
    }
    create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let names = as_string_array(&arrays[0])?;
            let oids: Int32Array = (0..names.len())
                .map(|i| (!names.is_null(i)).then(|| oid(names.value(i))).flatten())
                .collect();
            Ok(ColumnarValue::Array(Arc::new(oids)))
        }),
    )
}

/// A `pg_*_is_visible(oid)` function: everything in a session is visible to it.
fn always_visible_udf(name: &str) -> datafusion::logical_expr::ScalarUDF {
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    use datafusion::scalar::ScalarValue;
    create_udf(
        name,
        vec![DataType::Int64],
        DataType::Boolean,
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| {
            Ok(match &args[0] {
                ColumnarValue::Scalar(v) => ColumnarValue::Scalar(ScalarValue::Boolean((!v.is_null()).then_some(true))),
                ColumnarValue::Array(a) => {
                    let visible: datafusion::arrow::array::BooleanArray =
                        (0..a.len()).map(|i| (!a.is_null(i)).then_some(true)).collect();
                    ColumnarValue::Array(Arc::new(visible))
                }
            })
        }),
    )
}
