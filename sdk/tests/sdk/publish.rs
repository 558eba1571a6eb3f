//! The publisher against real Delta tables in a temporary directory: what it
//! writes, and that a refused publish writes nothing. The last test goes through
//! a real catalog (SQLite in a temporary directory) with the SDK's client.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, StringViewArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;
use tessera_contracts::document::DocumentFormat;
use tessera_contracts::odcs;
use tessera_lake::WriteMode;
use tessera_sdk::publish::{
    PublishError, Publisher, Target, ViolationKind, convertible, read_csv, read_file, read_file_as,
};

/// `id` (required, unique), `status` (required, open/done), `note` (optional;
/// a warning-level rule: at most one long note).
const CONTRACT: &str = r"
apiVersion: v3.1.0
kind: DataContract
id: orders
version: 1.0.0
status: active
schema:
  - name: orders
    properties:
      - name: id
        logicalType: integer
        physicalType: bigint
        required: true
        quality:
          - metric: duplicateValues
            mustBe: 0
      - name: status
        logicalType: string
        required: true
        quality:
          - metric: invalidValues
            arguments:
              validValues: [open, done]
            mustBe: 0
      - name: note
        logicalType: string
        quality:
          - type: sql
            query: SELECT COUNT(*) FROM {object} WHERE LENGTH({property}) > 5
            mustBeLessOrEqualTo: 0
            severity: warning
    quality:
      - metric: rowCount
        mustBeGreaterThan: 0
";

fn target(dir: &Path) -> Target {
    Target {
        product: "sales.orders".into(),
        contract: odcs::read(DocumentFormat::Yaml, CONTRACT).expect("valid contract"),
        location: dir.join("orders").to_str().expect("utf-8").to_string(),
    }
}

fn orders(ids: &[Option<i64>], statuses: &[Option<&str>]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("status", DataType::Utf8, true),
        Field::new("note", DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(StringArray::from(statuses.to_vec())),
            Arc::new(StringArray::from(vec![None::<&str>; ids.len()])),
        ],
    )
    .expect("batch")
}

fn ids(ids: &[i64]) -> RecordBatch {
    let ids: Vec<Option<i64>> = ids.iter().copied().map(Some).collect();
    orders(&ids, &vec![Some("open"); ids.len()])
}

fn none() -> HashMap<String, String> {
    HashMap::new()
}

async fn version(location: &str) -> Option<u64> {
    tessera_lake::table_meta(location, &none())
        .await
        .expect("readable")
        .map(|m| m.version)
}

/// The table's rows as `id` values, in order.
async fn table_ids(location: &str) -> Vec<i64> {
    let table = tessera_lake::open_table(location, &none())
        .await
        .expect("readable")
        .expect("a table");
    let ctx = SessionContext::new();
    tessera_quality::register(&ctx, "t", location, &table)
        .await
        .expect("registered");
    let batches = ctx
        .sql("SELECT id FROM t ORDER BY id")
        .await
        .expect("planned")
        .collect()
        .await
        .expect("ran");
    batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("bigint")
                .values()
                .to_vec()
        })
        .collect()
}

fn rules(err: &PublishError) -> Vec<(ViolationKind, String, String)> {
    err.violations()
        .iter()
        .map(|v| (v.kind, v.rule.clone(), v.path.clone()))
        .collect()
}

#[tokio::test]
async fn a_clean_append_commits_one_new_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = target(dir.path());
    let first = target
        .publish(vec![ids(&[1, 2, 3])], WriteMode::Overwrite, &none())
        .await
        .expect("a first publish creates the table");
    assert_eq!((first.table_version, first.rows), (0, 3));
    assert_eq!(first.contract_version, "1.0.0");
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);

    let appended = target
        .publish(vec![ids(&[4]), ids(&[5])], WriteMode::Append, &none())
        .await
        .expect("clean rows are appended");
    assert_eq!((appended.table_version, appended.rows), (1, 2));
    assert_eq!(appended.location, target.location);
    assert_eq!(table_ids(&target.location).await, vec![1, 2, 3, 4, 5]);
    // Written in the contract's types and nullability.
    let meta = tessera_lake::table_meta(&target.location, &none())
        .await
        .expect("readable")
        .expect("a table");
    let fields: Vec<(&str, bool)> = meta
        .schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.is_nullable()))
        .collect();
    assert_eq!(fields, [("id", false), ("status", false), ("note", true)]);
}

#[tokio::test]
async fn a_null_in_a_required_column_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = target(dir.path());
    target
        .publish(vec![ids(&[1, 2])], WriteMode::Overwrite, &none())
        .await
        .expect("seeded");
    let err = target
        .publish(
            vec![orders(
                &[Some(3), None, None],
                &[Some("open"), Some("done"), Some("open")],
            )],
            WriteMode::Append,
            &none(),
        )
        .await
        .expect_err("NULL ids are refused");
    assert_eq!(
        rules(&err),
        [(ViolationKind::Required, "required".to_string(), "id".to_string())]
    );
    assert_eq!(err.violations()[0].measured, Some(2.0), "{err}");
    assert!(err.to_string().contains("2 NULL value(s)"), "{err}");
    assert_eq!(version(&target.location).await, Some(0), "no commit");
    assert_eq!(table_ids(&target.location).await, vec![1, 2]);

    // The same on a first publish: no table is created.
    let fresh = tempfile::tempdir().expect("tempdir");
    let empty = self::target(fresh.path());
    empty
        .publish(vec![orders(&[None], &[Some("open")])], WriteMode::Append, &none())
        .await
        .expect_err("refused");
    assert_eq!(version(&empty.location).await, None, "no table");
}

#[tokio::test]
async fn a_duplicate_only_the_union_shows_is_refused_on_append_not_on_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = target(dir.path());
    target
        .publish(vec![ids(&[1, 2, 3])], WriteMode::Overwrite, &none())
        .await
        .expect("seeded");
    // The new rows alone have no duplicate; with the table's, id 3 is twice.
    let err = target
        .publish(vec![ids(&[3, 4])], WriteMode::Append, &none())
        .await
        .expect_err("the union has a duplicate");
    assert_eq!(
        rules(&err),
        [(
            ViolationKind::Quality,
            "library:duplicateValues".to_string(),
            "orders.id.quality[0]".to_string()
        )]
    );
    let v = &err.violations()[0];
    assert_eq!((v.measured, v.threshold.as_deref()), (Some(1.0), Some("mustBe 0")));
    assert!(err.to_string().contains("the existing and the new rows"), "{err}");
    assert_eq!(version(&target.location).await, Some(0), "no commit");

    let replaced = target
        .publish(vec![ids(&[3, 4])], WriteMode::Overwrite, &none())
        .await
        .expect("an overwrite replaces the rows: no duplicate");
    assert_eq!(replaced.table_version, 1);
    assert_eq!(table_ids(&target.location).await, vec![3, 4]);
}

#[tokio::test]
async fn wrong_types_and_missing_or_extra_columns_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = target(dir.path());
    target
        .publish(vec![ids(&[1])], WriteMode::Overwrite, &none())
        .await
        .expect("seeded");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("note", DataType::Utf8, true),
        Field::new("surplus", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["7"])),
            Arc::new(StringArray::from(vec![Some("x")])),
            Arc::new(Int64Array::from(vec![1])),
        ],
    )
    .expect("batch");
    for mode in [WriteMode::Append, WriteMode::Overwrite] {
        let err = target
            .publish(vec![batch.clone()], mode, &none())
            .await
            .expect_err("refused");
        let mut found = rules(&err);
        found.sort();
        assert_eq!(
            found,
            [
                (ViolationKind::Schema, "extra-column".to_string(), "surplus".to_string()),
                (
                    ViolationKind::Schema,
                    "missing-column".to_string(),
                    "status".to_string()
                ),
                (ViolationKind::Schema, "type-mismatch".to_string(), "id".to_string()),
            ],
            "{mode:?}: {err}"
        );
    }
    assert_eq!(version(&target.location).await, Some(0), "no commit");
}

#[tokio::test]
async fn every_reason_is_listed_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = target(dir.path());
    // A NULL status, a duplicate id, an invalid status: three rules broken.
    let err = target
        .publish(
            vec![orders(
                &[Some(1), Some(1), Some(2)],
                &[None, Some("lost"), Some("open")],
            )],
            WriteMode::Overwrite,
            &none(),
        )
        .await
        .expect_err("refused");
    let found = rules(&err);
    assert_eq!(
        found,
        [
            (ViolationKind::Required, "required".to_string(), "status".to_string()),
            (
                ViolationKind::Quality,
                "library:duplicateValues".to_string(),
                "orders.id.quality[0]".to_string()
            ),
            (
                ViolationKind::Quality,
                "library:invalidValues".to_string(),
                "orders.status.quality[0]".to_string()
            ),
        ],
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("refused, nothing was written: 3 violation(s)"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 4, "{text}");
    assert_eq!(version(&target.location).await, None, "no table");
}

#[tokio::test]
async fn harmless_differences_are_converted_and_warnings_do_not_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = target(dir.path());
    // Columns in another order, a narrower integer, a string view, no `note`
    // type at all (all NULL), and one long note: a warning-level rule.
    let schema = Arc::new(Schema::new(vec![
        Field::new("note", DataType::Utf8, true),
        Field::new("status", DataType::Utf8View, true),
        Field::new("id", DataType::Int32, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![Some("a rather long note"), None])) as ArrayRef,
            Arc::new(StringViewArray::from(vec!["open", "done"])),
            Arc::new(Int32Array::from(vec![10, 11])),
        ],
    )
    .expect("batch");
    let published = target
        .publish(vec![batch], WriteMode::Append, &none())
        .await
        .expect("converted and written");
    assert_eq!((published.table_version, published.rows), (0, 2));
    let warnings: Vec<&str> = published.warnings.iter().map(|w| w.rule.as_str()).collect();
    assert_eq!(warnings, ["sql"], "{:?}", published.warnings);
    assert_eq!(table_ids(&target.location).await, vec![10, 11]);

    // An all-NULL column of type Null (as CSV inference gives) is accepted.
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("note", DataType::Null, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![12])) as ArrayRef,
            Arc::new(StringArray::from(vec!["open"])),
            Arc::new(arrow::array::NullArray::new(1)),
        ],
    )
    .expect("batch");
    let published = target
        .publish(vec![batch], WriteMode::Append, &none())
        .await
        .expect("appended");
    assert_eq!(published.table_version, 1);
    assert_eq!(table_ids(&target.location).await, vec![10, 11, 12]);
}

#[tokio::test]
async fn a_value_out_of_the_columns_range_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = Target {
        product: "sales.small".into(),
        contract: odcs::read(
            DocumentFormat::Yaml,
            r"
apiVersion: v3.1.0
kind: DataContract
id: small
version: 2.0.0
status: active
schema:
  - name: small
    properties:
      - name: n
        logicalType: integer
        physicalType: smallint
",
        )
        .expect("valid contract"),
        location: dir.path().join("small").to_str().expect("utf-8").to_string(),
    };
    let batch = |values: Vec<i64>| {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)])),
            vec![Arc::new(Int64Array::from(values)) as ArrayRef],
        )
        .expect("batch")
    };
    let published = target
        .publish(vec![batch(vec![1, 2])], WriteMode::Append, &none())
        .await
        .expect("in range: narrowed");
    assert_eq!(published.contract_version, "2.0.0");
    let err = target
        .publish(vec![batch(vec![3, 100_000])], WriteMode::Append, &none())
        .await
        .expect_err("out of range");
    assert_eq!(
        rules(&err),
        [(ViolationKind::Schema, "invalid-value".to_string(), "n".to_string())]
    );
    assert_eq!(version(&target.location).await, Some(0));
}

#[tokio::test]
async fn files_are_read_with_the_contracts_types() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = target(dir.path());
    // Columns in another order than the contract's; an empty field is NULL.
    let csv = dir.path().join("orders.csv");
    std::fs::write(&csv, "status,id,note\nopen,1,\ndone,2,hello\n").expect("written");
    let schema = target.schema().expect("the contract's schema");
    let batches = read_csv(&csv, &schema).expect("read");
    let read_schema = batches[0].schema();
    let types: Vec<(&str, &DataType)> = read_schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    assert_eq!(
        types,
        [
            ("status", &DataType::Utf8),
            ("id", &DataType::Int64),
            ("note", &DataType::Utf8)
        ]
    );
    assert_eq!(batches[0].column(2).null_count(), 1);
    let published = target
        .publish(batches, WriteMode::Append, &none())
        .await
        .expect("published");
    assert_eq!(published.rows, 2);

    // Parquet, read as written; CSV without a schema, inferred.
    let parquet = dir.path().join("more.parquet");
    {
        let batch = ids(&[3, 4]);
        let file = std::fs::File::create(&parquet).expect("created");
        let mut writer = datafusion::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
        writer.write(&batch).expect("written");
        writer.close().expect("closed");
    }
    let batches = read_file_as(&parquet, &schema).expect("read");
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 2);
    target
        .publish(batches, WriteMode::Append, &none())
        .await
        .expect("published");
    let inferred = read_file(&csv).expect("read");
    assert_eq!(
        inferred[0].schema().field_with_name("id").expect("id").data_type(),
        &DataType::Int64
    );
    assert!(matches!(
        read_file(dir.path().join("orders.txt")),
        Err(PublishError::Read { .. })
    ));
    // A value that is not of the column's type is a read error naming it.
    std::fs::write(&csv, "id,status\nx,open\n").expect("written");
    let err = read_csv(&csv, &schema).expect_err("not a number");
    assert!(err.to_string().contains("orders.csv"), "{err}");
    assert_eq!(table_ids(&target.location).await, vec![1, 2, 3, 4]);
}

/// Through a real catalog: the publisher finds the product's contract and
/// output port, and refuses a retired product.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_through_the_catalog() {
    use serde_json::json;
    use tessera_sdk::Client;

    const ADMIN_KEY: &str = "tsk_0123456789ab_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = crate::Catalog::start(ADMIN_KEY).await;
    let base = catalog.base.clone();

    let client = Client::new(&base, ADMIN_KEY).expect("client");
    fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).expect("valid body")
    }
    client
        .create_team(&from(json!({"name": "sales_team"})))
        .await
        .expect("team");
    // The domain's storage lies in this test's directory.
    let lake = dir.path().join("lake");
    client
        .create_domain(&from(
            json!({"name": "sales", "owner_team": "sales_team", "storage_roots": [lake.to_str().expect("utf-8")]}),
        ))
        .await
        .expect("domain");
    let created = client
        .create_product(
            "sales",
            &from(json!({"name": "orders", "output_ports": [{"major_version": 1, "location": "orders"}]})),
        )
        .await
        .expect("product");
    // Stored, and answered to its owners, as an absolute URL under the root.
    let location = created.output_ports[0].location.clone().expect("a location");
    assert!(
        location.starts_with("file:///") && location.ends_with("/lake/orders"),
        "{location}"
    );
    client
        .create_product("sales", &from(json!({"name": "portless"})))
        .await
        .expect("product");
    let publisher = Publisher::new(client.clone());
    let err = publisher
        .publish("sales", "orders", vec![ids(&[1])], WriteMode::Append)
        .await
        .expect_err("no contract yet");
    assert!(matches!(err, PublishError::NoContract { major: None, .. }), "{err}");
    for product in ["orders", "portless"] {
        client
            .add_contract("sales", product, DocumentFormat::Yaml, CONTRACT)
            .await
            .expect("contract");
    }

    let published = publisher
        .publish("sales", "orders", vec![ids(&[1, 2])], WriteMode::Append)
        .await
        .expect("published");
    assert_eq!(
        (
            published.table_version,
            published.rows,
            published.contract_version.as_str()
        ),
        (0, 2, "1.0.0")
    );
    assert_eq!(published.location, location);
    let err = publisher
        .publish("sales", "orders", vec![ids(&[2])], WriteMode::Append)
        .await
        .expect_err("a duplicate");
    assert_eq!(err.violations().len(), 1, "{err}");
    let err = publisher
        .publish("sales", "portless", vec![ids(&[1])], WriteMode::Append)
        .await
        .expect_err("no port");
    assert!(matches!(err, PublishError::NoPort { major: 1, .. }), "{err}");
    let err = publisher
        .clone()
        .with_major_version(2)
        .publish("sales", "orders", vec![ids(&[3])], WriteMode::Append)
        .await
        .expect_err("no contract of major 2");
    assert!(matches!(err, PublishError::NoContract { major: Some(2), .. }), "{err}");
    assert_eq!(
        publisher
            .clone()
            .with_major_version(1)
            .target("sales", "orders")
            .await
            .expect("major 1")
            .location,
        location
    );

    // Retired: published, deprecated, retired; then nothing more is taken.
    for patch in [
        json!({"status": "published"}),
        json!({"status": "deprecated", "sunset_date": "2030-01-01"}),
        json!({"status": "retired"}),
    ] {
        client
            .update_product("sales", "orders", &from(patch), None)
            .await
            .expect("lifecycle");
    }
    let err = publisher
        .publish("sales", "orders", vec![ids(&[3])], WriteMode::Append)
        .await
        .expect_err("retired");
    assert!(matches!(err, PublishError::Retired { .. }), "{err}");
    assert_eq!(version(&location).await, Some(0));

    catalog.stop().await;
}

#[test]
fn harmless_conversions_only() {
    assert!(convertible(&DataType::Int32, &DataType::Int64));
    assert!(convertible(&DataType::Int64, &DataType::Int16));
    assert!(convertible(&DataType::Int64, &DataType::Float64));
    assert!(convertible(&DataType::Null, &DataType::Utf8));
    assert!(convertible(&DataType::Float32, &DataType::Float64));
    assert!(!convertible(&DataType::Float64, &DataType::Int64));
    assert!(!convertible(&DataType::Utf8, &DataType::Int64));
    assert!(!convertible(&DataType::Int64, &DataType::Utf8));
}
