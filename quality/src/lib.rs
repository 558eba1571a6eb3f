//! Quality checks: a contract's rules run with DataFusion where the rows are.
//!
//! [`evaluate`] runs a contract's checks over whatever a session calls the
//! table: a product's Delta table (the gateway's and the CLI's quality runs), or
//! the table as it would be after a commit (the publisher's checks). [`run`]
//! runs them over a product's Delta table and adds the freshness promise,
//! measured against the table's last commit.
//!
//! Checks touch rows, so they run in the data plane (or in the CLI, or in a
//! publisher), never in the catalog: the catalog only stores the results it is sent.

use std::collections::HashMap;

use arrow::array::{Array, Float64Array};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use chrono::{DateTime, Utc};
use datafusion::prelude::SessionContext;
use tessera_contracts::api::{CheckStatus, QualityResult, QualityRunCreate};
use tessera_contracts::odcs::DataContract;
use tessera_contracts::odcs::quality::{self, How, Operator};

use tessera_lake::LakeError;

/// Why checks could not run at all (a single failing check is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("there is no Delta table at {0}")]
    NoTable(String),
    #[error("cannot read the Delta table at {location}: {message}")]
    Table { location: String, message: String },
}

/// Registers an opened Delta table in a session under `name` (an unquoted
/// table name), with the object store it needs.
pub async fn register(
    ctx: &SessionContext,
    name: &str,
    location: &str,
    table: &deltalake::DeltaTable,
) -> Result<(), QualityError> {
    let failed = |e: &dyn std::fmt::Display| QualityError::Table {
        location: location.to_string(),
        message: e.to_string(),
    };
    table.update_datafusion_session(&ctx.state()).map_err(|e| failed(&e))?;
    let provider = table.table_provider().await.map_err(|e| failed(&e))?;
    ctx.register_table(name, provider).map_err(|e| failed(&e))?;
    Ok(())
}

/// Runs every check of `contract` (its first schema object's rules, see
/// [`quality::checks`]) over `table`, an SQL table reference in `ctx`, in the
/// order the contract declares them. A check whose SQL fails is an `Error`
/// result; `text` and `custom` rules are `NotExecutable` results, never skipped.
pub async fn evaluate(ctx: &SessionContext, table: &str, contract: &DataContract) -> Vec<QualityResult> {
    let mut results = Vec::new();
    for check in quality::checks(contract, table) {
        let mut result = QualityResult {
            key: check.key,
            path: check.path,
            rule: check.rule,
            status: CheckStatus::NotExecutable,
            measured: None,
            threshold: None,
            dimension: check.dimension,
            severity: check.severity,
            message: None,
        };
        match check.how {
            How::NotExecutable { reason } => result.message = Some(reason),
            How::Sql { sql, operator } => {
                result.threshold = Some(operator.describe());
                match measure(ctx, &sql).await {
                    Ok(value) => {
                        result.measured = Some(value);
                        result.status = if operator.holds(value) {
                            CheckStatus::Pass
                        } else {
                            CheckStatus::Fail
                        };
                    }
                    Err(message) => {
                        result.status = CheckStatus::Error;
                        result.message = Some(message);
                    }
                }
            }
        }
        results.push(result);
    }
    results
}

/// Runs one check's SQL: one row, one number.
async fn measure(ctx: &SessionContext, sql: &str) -> Result<f64, String> {
    let batches = ctx
        .sql(sql)
        .await
        .map_err(|e| e.to_string())?
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or("the check's query returned no row")?;
    if batch.num_columns() != 1 || batch.num_rows() != 1 {
        return Err(format!(
            "the check's query must return one value, got {} row(s) of {} column(s)",
            batch.num_rows(),
            batch.num_columns()
        ));
    }
    let column = cast(batch.column(0), &DataType::Float64).map_err(|e| e.to_string())?;
    let values = column
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or("the check's value is not a number")?;
    if values.is_null(0) {
        return Err("the check's query returned NULL".into());
    }
    Ok(values.value(0))
}

/// The table name checks run against.
const TABLE: &str = "product";

/// Runs every check of `contract` on the Delta table at `location`, as of `now`
/// (the freshness check measures the last commit's age against it).
pub async fn run(
    contract: &DataContract,
    location: &str,
    storage_options: &HashMap<String, String>,
    now: DateTime<Utc>,
) -> Result<QualityRunCreate, QualityError> {
    let table = tessera_lake::open_table(location, storage_options)
        .await?
        .ok_or_else(|| QualityError::NoTable(location.to_string()))?;
    let meta = tessera_lake::meta_of(location, &table)?;
    let ctx = SessionContext::new();
    register(&ctx, TABLE, location, &table).await?;

    let mut results = evaluate(&ctx, TABLE, contract).await;
    if let Some(limit) = quality::freshness_limit(contract) {
        let age = meta
            .committed_at
            .map(|at| (now - at).num_milliseconds() as f64 / 1000.0);
        let operator = Operator::MustBeLessOrEqualTo(limit);
        results.push(QualityResult {
            key: "freshness".into(),
            path: "slaProperties".into(),
            rule: "freshness".into(),
            status: match age {
                Some(age) if operator.holds(age) => CheckStatus::Pass,
                Some(_) => CheckStatus::Fail,
                None => CheckStatus::Error,
            },
            measured: age,
            threshold: Some(format!("age in seconds {}", operator.describe())),
            dimension: Some("timeliness".into()),
            severity: Some("error".into()),
            message: match age {
                Some(_) => Some(format!(
                    "last commit (version {}) at {:?}",
                    meta.version, meta.committed_at
                )),
                None => Some("the Delta log records no commit time".into()),
            },
        });
    }
    Ok(QualityRunCreate {
        contract_version: contract.version.clone(),
        table_version: Some(meta.version),
        ran_at: Some(now),
        results,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    use tessera_contracts::document::DocumentFormat;
    use tessera_contracts::odcs;

    use super::*;

    #[tokio::test]
    async fn evaluates_over_any_table_the_session_has() {
        let contract = odcs::read(
            DocumentFormat::Yaml,
            r"
apiVersion: v3.1.0
kind: DataContract
id: t
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - name: id
        logicalType: integer
        quality:
          - metric: duplicateValues
            mustBe: 0
    quality:
      - metric: rowCount
        mustBeGreaterThan: 0
      - type: sql
        query: SELECT COUNT(*) FROM {object} WHERE nope > 0
        mustBe: 0
",
        )
        .expect("valid contract");
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let batch =
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(Int64Array::from(vec![1, 1, 2]))]).expect("batch");
        let ctx = SessionContext::new();
        let table = MemTable::try_new(schema, vec![vec![batch]]).expect("table");
        ctx.register_table("incoming", Arc::new(table)).expect("registered");

        let results = evaluate(&ctx, "incoming", &contract).await;
        let summary: Vec<(&str, CheckStatus, Option<f64>)> = results
            .iter()
            .map(|r| (r.rule.as_str(), r.status, r.measured))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("library:rowCount", CheckStatus::Pass, Some(3.0)),
                ("sql", CheckStatus::Error, None),
                ("library:duplicateValues", CheckStatus::Fail, Some(1.0)),
            ]
        );
        assert_eq!(results[2].threshold.as_deref(), Some("mustBe 0"));
    }
}

#[cfg(test)]
mod run_tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{Field, Schema};
    use tessera_contracts::document::DocumentFormat;
    use tessera_contracts::odcs;
    use tessera_lake::WriteMode;

    use super::*;

    const CONTRACT: &str = r#"
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
        required: true
        quality:
          - metric: duplicateValues
            mustBe: 0
      - name: status
        logicalType: string
        quality:
          - metric: nullValues
            mustBe: 0
          - metric: invalidValues
            arguments:
              validValues: [open, done]
            mustBeLessOrEqualTo: 1
            severity: warning
          - metric: nullValues
            unit: percent
            mustBeLessThan: 50
      - name: note
        logicalType: string
        quality:
          - type: text
            description: Notes are free text.
          - type: sql
            query: SELECT COUNT(*) FROM {object} WHERE LENGTH({property}) > 1000
            mustBe: 0
          - type: sql
            query: SELECT no_such_column FROM {object}
            mustBe: 0
    quality:
      - metric: rowCount
        mustBeGreaterThan: 3
slaProperties:
  - property: freshness
    value: 1
    unit: h
"#;

    async fn seeded_table(dir: &std::path::Path) -> String {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", arrow::datatypes::DataType::Int64, false),
            Field::new("status", arrow::datatypes::DataType::Utf8, true),
            Field::new("note", arrow::datatypes::DataType::Utf8, true),
        ]));
        // Defects: id 2 twice (one duplicate), two NULL statuses, one invalid status.
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 2, 3, 4, 5])),
                Arc::new(StringArray::from(vec![
                    Some("open"),
                    None,
                    Some("done"),
                    None,
                    Some("lost"),
                    Some("open"),
                ])),
                Arc::new(StringArray::from(vec![Some("a"); 6])),
            ],
        )
        .expect("batch");
        let location = dir.join("orders").to_str().expect("utf-8").to_string();
        tessera_lake::write(&location, &HashMap::new(), vec![batch], WriteMode::Overwrite, &[])
            .await
            .expect("written");
        location
    }

    #[tokio::test]
    async fn reports_exactly_the_seeded_defects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = seeded_table(dir.path()).await;
        let contract = odcs::read(DocumentFormat::Yaml, CONTRACT).expect("valid contract");
        let meta = tessera_lake::table_meta(&location, &HashMap::new())
            .await
            .expect("meta")
            .expect("table");
        let committed = meta.committed_at.expect("commit time");

        // Fresh: measured right after the commit.
        let run = run(
            &contract,
            &location,
            &HashMap::new(),
            committed + chrono::Duration::minutes(5),
        )
        .await
        .expect("runs");
        let summary: Vec<(&str, CheckStatus, Option<f64>)> = run
            .results
            .iter()
            .map(|r| (r.rule.as_str(), r.status, r.measured))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("library:rowCount", CheckStatus::Pass, Some(6.0)),
                ("library:duplicateValues", CheckStatus::Fail, Some(1.0)),
                ("library:nullValues", CheckStatus::Fail, Some(2.0)),
                ("library:invalidValues", CheckStatus::Pass, Some(1.0)),
                ("library:nullValues", CheckStatus::Pass, Some(100.0 * 2.0 / 6.0)),
                ("text", CheckStatus::NotExecutable, None),
                ("sql", CheckStatus::Pass, Some(0.0)),
                ("sql", CheckStatus::Error, None),
                ("freshness", CheckStatus::Pass, Some(300.0)),
            ]
        );
        assert_eq!(run.table_version, Some(0));
        assert!(
            run.results[7]
                .message
                .as_deref()
                .is_some_and(|m| m.contains("no_such_column")),
            "{:?}",
            run.results[7]
        );
        assert_eq!(
            tessera_contracts::api::Health::of(&run.results),
            tessera_contracts::api::Health::Failing
        );

        // Stale: two hours later the freshness promise (1 h) is broken.
        let stale = run_at(&contract, &location, committed + chrono::Duration::hours(2)).await;
        let freshness = stale.results.last().expect("freshness");
        assert_eq!(
            (freshness.rule.as_str(), freshness.status),
            ("freshness", CheckStatus::Fail)
        );
    }

    async fn run_at(contract: &DataContract, location: &str, now: DateTime<Utc>) -> QualityRunCreate {
        run(contract, location, &HashMap::new(), now).await.expect("runs")
    }

    #[tokio::test]
    async fn a_missing_table_is_an_error_not_a_result() {
        let dir = tempfile::tempdir().expect("tempdir");
        let contract = odcs::read(DocumentFormat::Yaml, CONTRACT).expect("valid contract");
        let missing = dir.path().join("none").to_str().expect("utf-8").to_string();
        let err = run(&contract, &missing, &HashMap::new(), Utc::now())
            .await
            .expect_err("no table");
        assert!(matches!(err, QualityError::NoTable(_) | QualityError::Lake(_)), "{err}");
    }
}
