//! Runs a contract's quality checks over its Delta table with DataFusion, and
//! its freshness promise against the table's last commit.
//!
//! Checks touch rows, so they run here in the data plane (or in the CLI), never
//! in the catalog: the catalog only stores the results it is sent. The checks
//! themselves run in `tessera_lake::quality`, which the publisher shares.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use datafusion::prelude::SessionContext;
use tessera_contracts::api::{CheckStatus, QualityResult, QualityRunCreate};
use tessera_contracts::odcs::DataContract;
use tessera_contracts::odcs::quality::{self, Operator};
/// Why checks could not run at all (a single failing check is a result, not an
/// error); defined in `tessera_lake`, where the checks run.
pub use tessera_lake::quality::QualityError;

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
    tessera_lake::quality::register(&ctx, TABLE, location, &table).await?;

    let mut results = tessera_lake::quality::evaluate(&ctx, TABLE, contract).await;
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
