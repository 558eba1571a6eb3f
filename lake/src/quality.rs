//! Runs a contract's quality checks with DataFusion, over whatever a session
//! calls the table: a product's Delta table (the gateway's and the CLI's quality
//! runs), or the table as it would be after a commit (the publisher's checks).
//!
//! Checks touch rows, so they run in the data plane (or in the CLI, or in a
//! publisher), never in the catalog: the catalog only stores the results it is sent.
//! Freshness is not a check over rows; callers that promise it measure it from
//! the table's last commit.

use arrow::array::{Array, Float64Array};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;
use tessera_contracts::api::{CheckStatus, QualityResult};
use tessera_contracts::odcs::DataContract;
use tessera_contracts::odcs::quality::{self, How};

use crate::LakeError;

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
