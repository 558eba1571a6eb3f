//! The demo mesh's data (design.md, "The demo mesh"): TPC-H generated
//! deterministically by the tpchgen crates and written as one Delta table per
//! product, split into the domains customers, sales and supply. The demo, the
//! gateway's tests and the benchmarks all use it.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema};
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator, PartSuppGenerator,
    RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, PartArrow, PartSuppArrow, RegionArrow, SupplierArrow,
};

use tessera_lake::{LakeError, WriteMode};

/// The eight products of the demo mesh: (domain, product), the product being
/// the TPC-H table name.
pub const MESH: [(&str, &str); 8] = [
    ("customers", "customer"),
    ("customers", "nation"),
    ("customers", "region"),
    ("sales", "orders"),
    ("sales", "lineitem"),
    ("supply", "part"),
    ("supply", "supplier"),
    ("supply", "partsupp"),
];

/// One table written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub domain: &'static str,
    pub product: &'static str,
    pub location: String,
    pub rows: usize,
    /// The Delta version the write produced.
    pub version: u64,
}

/// Generates one TPC-H table at a scale factor, as Arrow batches. Strings come
/// as `Utf8` (Delta's string), not the generator's `Utf8View`.
pub fn batches(table: &str, scale_factor: f64) -> Result<Vec<RecordBatch>, LakeError> {
    let invalid = |message: String| LakeError::Location {
        location: table.to_string(),
        message,
    };
    let raw: Vec<Result<RecordBatch, arrow::error::ArrowError>> = match table {
        "customer" => CustomerArrow::new(CustomerGenerator::new(scale_factor, 1, 1)).collect(),
        "nation" => NationArrow::new(NationGenerator::new(scale_factor, 1, 1)).collect(),
        "region" => RegionArrow::new(RegionGenerator::new(scale_factor, 1, 1)).collect(),
        "orders" => OrderArrow::new(OrderGenerator::new(scale_factor, 1, 1)).collect(),
        "lineitem" => LineItemArrow::new(LineItemGenerator::new(scale_factor, 1, 1)).collect(),
        "part" => PartArrow::new(PartGenerator::new(scale_factor, 1, 1)).collect(),
        "supplier" => SupplierArrow::new(SupplierGenerator::new(scale_factor, 1, 1)).collect(),
        "partsupp" => PartSuppArrow::new(PartSuppGenerator::new(scale_factor, 1, 1)).collect(),
        other => return Err(invalid(format!("{other:?} is not a TPC-H table"))),
    };
    raw.into_iter()
        .map(|b| {
            b.map_err(|e| invalid(e.to_string()))
                .and_then(|b| plain_strings(&b).map_err(invalid))
        })
        .collect()
}

fn plain_strings(batch: &RecordBatch) -> Result<RecordBatch, String> {
    let schema = batch.schema();
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if field.data_type() == &DataType::Utf8View {
            fields.push(Field::new(field.name(), DataType::Utf8, field.is_nullable()));
            columns.push(cast(column, &DataType::Utf8).map_err(|e| e.to_string())?);
        } else {
            fields.push(field.as_ref().clone());
            columns.push(Arc::clone(column));
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())
}

/// Writes the demo mesh under `root` (`<root>/<domain>/<product>`), replacing
/// what is there: the same scale factor always gives the same rows.
pub async fn write_mesh(
    root: &str,
    scale_factor: f64,
    storage_options: &HashMap<String, String>,
) -> Result<Vec<Generated>, LakeError> {
    let mut out = Vec::with_capacity(MESH.len());
    for (domain, product) in MESH {
        let location = format!("{}/{domain}/{product}", root.trim_end_matches('/'));
        let data = batches(product, scale_factor)?;
        let rows = data.iter().map(RecordBatch::num_rows).sum();
        let version = tessera_lake::write(&location, storage_options, data, WriteMode::Overwrite, &[]).await?;
        out.push(Generated {
            domain,
            product,
            location,
            rows,
            version,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of a written file keep the generator's key order, so each
    /// Parquet page covers a narrow key range (what lets a point query on
    /// `o_orderkey` read one page).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn written_files_keep_the_key_order() {
        use arrow::array::AsArray;
        use arrow::datatypes::Int64Type;
        use datafusion::prelude::{SessionConfig, SessionContext};

        let dir = tempfile::tempdir().expect("tempdir");
        let location = dir.path().join("orders");
        let location = location.to_str().expect("utf-8");
        let data = batches("orders", 0.05).expect("generated");
        assert!(data.len() > 4, "several batches: {}", data.len());
        tessera_lake::write(location, &HashMap::new(), data, WriteMode::Overwrite, &[])
            .await
            .expect("written");
        let table = tessera_lake::open_table(location, &HashMap::new())
            .await
            .expect("opens")
            .expect("exists");
        // One partition reads the file front to back.
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
        ctx.register_table("orders", table.table_provider().await.expect("provider"))
            .expect("registers");
        let keys: Vec<i64> = ctx
            .sql("SELECT o_orderkey FROM orders")
            .await
            .expect("plans")
            .collect()
            .await
            .expect("rows")
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert_eq!(keys.len(), 75_000);
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "ascending keys");
    }

    #[tokio::test]
    async fn writes_the_mesh_deterministically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_str().expect("utf-8");
        let first = write_mesh(root, 0.01, &HashMap::new()).await.expect("written");
        let rows: Vec<(&str, usize)> = first.iter().map(|g| (g.product, g.rows)).collect();
        assert_eq!(
            rows,
            [
                ("customer", 1_500),
                ("nation", 25),
                ("region", 5),
                ("orders", 15_000),
                ("lineitem", 60_175),
                ("part", 2_000),
                ("supplier", 100),
                ("partsupp", 8_000),
            ]
        );
        let meta = tessera_lake::table_meta(&first[4].location, &HashMap::new())
            .await
            .expect("meta")
            .expect("table");
        assert_eq!(
            meta.schema.field_with_name("l_shipmode").expect("column").data_type(),
            &DataType::Utf8
        );
        assert_eq!(
            meta.schema
                .field_with_name("l_extendedprice")
                .expect("column")
                .data_type(),
            &DataType::Decimal128(15, 2)
        );
        // Again: the same rows, as a new version of each table.
        let second = write_mesh(root, 0.01, &HashMap::new()).await.expect("rewritten");
        for (a, b) in first.iter().zip(&second) {
            assert_eq!((a.product, a.rows), (b.product, b.rows));
            assert_eq!(b.version, a.version + 1);
        }
        assert_eq!(
            batches("lineitem", 0.01).expect("gen")[0],
            batches("lineitem", 0.01).expect("gen")[0]
        );
        assert!(batches("lineitems", 0.01).is_err());
    }
}
