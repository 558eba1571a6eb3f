//! The publisher: appends Arrow record batches to a product's Delta output port,
//! or overwrites it, after checking them against the product's contract. A batch
//! that violates the contract is refused with every reason at once, and nothing
//! is written: no Delta commit happens unless every check passes.
//!
//! What is checked, in order:
//!
//! 1. **Schema.** The batches' columns against the contract's schema object
//!    (`tessera_contracts::odcs::arrow::verify`): a missing, extra or duplicated
//!    column, or a type that cannot be converted, is a violation. Columns are
//!    matched by name and written in the contract's order, whatever their order
//!    in the batches. A nullable field for a required column is fine as long as
//!    it holds no NULL (that is step 2). Accepted conversions, to the type the
//!    column has in the existing Delta table (when it satisfies the contract),
//!    else to the contract's type (`odcs::arrow::property_type`):
//!    - any type the contract accepts as is (e.g. `Int32` for a `logicalType:
//!      integer` without a format, `Utf8View`/`LargeUtf8` for a string, any
//!      timestamp unit), converted with Arrow's cast;
//!    - an all-NULL column (`Null`, as CSV inference gives for an empty column);
//!    - integer to integer of any width (checked: a value out of range is a
//!      violation, never a silent NULL), integer to `Float64` or to a decimal,
//!      and float to a wider float.
//!
//!    Anything else (text to a number, a float to an integer, ...) is a
//!    `type-mismatch`; read CSV files with the contract's types instead
//!    ([`read_csv`] / [`read_file_as`]).
//! 2. **Required columns.** No NULL in a column the contract marks `required`
//!    (or that the Delta table declares NOT NULL), with the count per column.
//! 3. **Declared quality rules**, with the same engine as quality runs
//!    (`tessera_quality::evaluate`), over the table as it would be after
//!    the commit: the existing rows and the new ones for an append, only the new
//!    ones for an overwrite. A rule that fails, or whose SQL cannot run, is a
//!    violation with its measured value and threshold, unless its severity is
//!    `info` or `warning`: then it is reported in [`Published::warnings`] and
//!    does not block. Freshness is not checked: publishing makes the table fresh.
//!    The rules run only when the schema conforms (otherwise there is no table
//!    to run them on); an append also requires the existing table to match the
//!    contract.
//!
//! The checks and the commit are not one transaction: a concurrent writer that
//! commits in between is not seen by the rules over the whole table (Delta's
//! optimistic concurrency still orders the commits).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};
use tessera_contracts::ProductStatus;
use tessera_contracts::api::{CheckStatus, QualityResult};
use tessera_contracts::document::DocumentFormat;
use tessera_contracts::names::major_of;
use tessera_contracts::odcs::arrow::{Mismatch, object_schema, verify};
use tessera_contracts::odcs::quality::ident;
use tessera_contracts::odcs::{self, DataContract};
use tessera_lake::WriteMode;

use crate::{Client, Paging};

mod conform;
mod read;

pub use conform::convertible;
use conform::{conform, declared_partitions, invalid, relaxed_schema, relevant, schema_object, target_schema};
pub use read::{read_csv, read_file, read_file_as, read_parquet};

/// The name the post-commit table has in the checks' session.
const TABLE: &str = "product";

/// What a violation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// The batches' columns and types.
    Schema,
    /// NULLs in a required column.
    Required,
    /// A declared quality rule, over the table after the commit.
    Quality,
    /// The existing Delta table itself does not match the contract, so an
    /// append (which keeps it) cannot make it conform.
    Table,
}

/// One reason a publish is refused (or, for non-blocking rules, a warning).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub kind: ViolationKind,
    /// `missing-column`, `extra-column`, `duplicate-column`, `type-mismatch`,
    /// `invalid-value`, `required`, or the quality rule (`library:duplicateValues`,
    /// `sql`, ...).
    pub rule: String,
    /// The column, or where the rule is declared (`orders.id.quality[0]`).
    pub path: String,
    pub message: String,
    /// A quality rule's measured value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<f64>,
    /// A quality rule's threshold, e.g. `mustBe 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.rule, self.path, self.message)
    }
}

impl Violation {
    fn schema(rule: &str, path: &str, message: String) -> Self {
        Self {
            kind: ViolationKind::Schema,
            rule: rule.into(),
            path: path.into(),
            message,
            measured: None,
            threshold: None,
        }
    }

    fn mismatch(m: Mismatch, kind: ViolationKind) -> Self {
        let whose = match kind {
            ViolationKind::Table => "the Delta table has",
            _ => "the data has",
        };
        Self {
            kind,
            message: format!("the contract says {}, {whose} {}", m.expected, m.actual),
            rule: m.rule,
            path: m.path,
            measured: None,
            threshold: None,
        }
    }

    fn quality(r: QualityResult, over: &str) -> Self {
        let message = match (r.status, r.measured, &r.threshold) {
            (CheckStatus::Fail, Some(m), Some(t)) => format!("measured {m}, expected {t}, over {over}"),
            _ => format!(
                "could not run over {over}: {}",
                r.message.as_deref().unwrap_or("no reason given")
            ),
        };
        Self {
            kind: ViolationKind::Quality,
            rule: r.rule,
            path: r.path,
            message,
            measured: r.measured,
            threshold: r.threshold,
        }
    }
}

/// Why a publish did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The data violates the contract: every reason, nothing written.
    #[error("{}", describe(.0))]
    Violations(Vec<Violation>),
    #[error("{product} is retired: it takes no more data")]
    Retired { product: String },
    #[error("{product} has no contract{}: register one before publishing", .major.map(|m| format!(" of major version {m}")).unwrap_or_default())]
    NoContract { product: String, major: Option<u64> },
    #[error("contract {version} of {product} cannot be used: {message}")]
    InvalidContract {
        product: String,
        version: String,
        message: String,
    },
    #[error("{product} has no output port (Delta table location) for major version {major}")]
    NoPort { product: String, major: u64 },
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error(transparent)]
    Api(#[from] crate::Error),
    #[error(transparent)]
    Lake(#[from] tessera_lake::LakeError),
    #[error(transparent)]
    Table(#[from] tessera_quality::QualityError),
    #[error("the checks could not run: {0}")]
    Engine(#[from] DataFusionError),
}

impl PublishError {
    /// The reasons of a refusal; empty for other errors.
    pub fn violations(&self) -> &[Violation] {
        match self {
            Self::Violations(v) => v,
            _ => &[],
        }
    }
}

fn describe(violations: &[Violation]) -> String {
    let mut out = format!(
        "refused, nothing was written: {} violation(s) of the contract",
        violations.len()
    );
    for v in violations {
        let _ = write!(out, "\n  - {v}");
    }
    out
}

/// What a publish wrote.
#[derive(Debug, Clone)]
pub struct Published {
    /// The Delta table's location.
    pub location: String,
    /// The contract version the data was checked against.
    pub contract_version: String,
    /// The Delta table's version after the commit.
    pub table_version: u64,
    /// Rows written.
    pub rows: usize,
    pub mode: WriteMode,
    /// Failed rules of severity `info` or `warning`: reported, not blocking.
    pub warnings: Vec<Violation>,
}

/// Batches that passed every check, ready to be written.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Conformed to the table's schema: the contract's column order and types.
    pub batches: Vec<RecordBatch>,
    pub rows: usize,
    /// Failed rules of severity `info` or `warning`.
    pub warnings: Vec<Violation>,
    /// The partition columns a first write creates the table with (the
    /// contract's); empty when the table exists (its own are kept).
    pub partition_columns: Vec<String>,
}

/// Where and against what a product's data is published: one contract version
/// and the output port of its major version.
#[derive(Debug, Clone)]
pub struct Target {
    /// `domain.product`, for messages.
    pub product: String,
    pub contract: DataContract,
    /// The Delta table's location.
    pub location: String,
}

impl Target {
    /// The Arrow schema the contract describes (its first schema object), with
    /// the contract's concrete types: the schema to read CSV files with.
    pub fn schema(&self) -> Result<SchemaRef, PublishError> {
        let object = schema_object(&self.product, &self.contract)?;
        object_schema(object)
            .map(Arc::new)
            .map_err(|message| invalid(&self.product, &self.contract, message))
    }

    /// Checks batches against the contract and the table as it would be after
    /// the commit, without writing.
    pub async fn check(
        &self,
        batches: Vec<RecordBatch>,
        mode: WriteMode,
        storage_options: &HashMap<String, String>,
    ) -> Result<Checked, PublishError> {
        let object = schema_object(&self.product, &self.contract)?;
        let declared = object_schema(object).map_err(|message| invalid(&self.product, &self.contract, message))?;
        let existing = tessera_lake::open_table(&self.location, storage_options).await?;
        let meta = existing
            .as_ref()
            .map(|t| tessera_lake::meta_of(&self.location, t))
            .transpose()?;

        let mut violations = Vec::new();
        let mut table_conforms = true;
        if mode == WriteMode::Append
            && let Some(meta) = &meta
        {
            for m in relevant(verify(object, &meta.schema, &[])) {
                table_conforms = false;
                violations.push(Violation::mismatch(m, ViolationKind::Table));
            }
        }
        let target = Arc::new(target_schema(object, &declared, meta.as_ref(), mode));
        let conformed = conform(object, &target, batches, &mut violations);

        let mut warnings = Vec::new();
        if let Some(relaxed) = conformed.as_ref().filter(|_| table_conforms) {
            let ctx = SessionContext::new();
            let incoming = MemTable::try_new(relaxed_schema(&target), vec![relaxed.clone()])?;
            let over = match (mode, &existing) {
                (WriteMode::Append, Some(table)) => {
                    ctx.register_table("incoming", Arc::new(incoming))?;
                    tessera_quality::register(&ctx, "existing", &self.location, table).await?;
                    let columns: Vec<String> = target.fields().iter().map(|f| ident(f.name())).collect();
                    let columns = columns.join(", ");
                    let union = ctx
                        .sql(&format!(
                            "SELECT {columns} FROM existing UNION ALL SELECT {columns} FROM incoming"
                        ))
                        .await?;
                    ctx.register_table(TABLE, union.into_view())?;
                    "the existing and the new rows"
                }
                _ => {
                    ctx.register_table(TABLE, Arc::new(incoming))?;
                    "the new rows"
                }
            };
            for result in tessera_quality::evaluate(&ctx, TABLE, &self.contract).await {
                if !matches!(result.status, CheckStatus::Fail | CheckStatus::Error) {
                    continue;
                }
                let blocking = !matches!(result.severity.as_deref(), Some("info" | "warning" | "warn"));
                let violation = Violation::quality(result, over);
                if blocking {
                    violations.push(violation);
                } else {
                    warnings.push(violation);
                }
            }
        }
        let Some(relaxed) = conformed else {
            return Err(PublishError::Violations(violations));
        };
        if !violations.is_empty() {
            return Err(PublishError::Violations(violations));
        }
        let mut batches = Vec::with_capacity(relaxed.len().max(1));
        for batch in relaxed {
            let batch = RecordBatch::try_new(Arc::clone(&target), batch.columns().to_vec()).map_err(|e| {
                PublishError::Violations(vec![Violation::schema("invalid-value", &self.location, e.to_string())])
            })?;
            batches.push(batch);
        }
        if batches.is_empty() {
            batches.push(RecordBatch::new_empty(Arc::clone(&target)));
        }
        Ok(Checked {
            rows: batches.iter().map(RecordBatch::num_rows).sum(),
            batches,
            warnings,
            partition_columns: if meta.is_some() {
                Vec::new()
            } else {
                declared_partitions(object)
            },
        })
    }

    /// Checks, then writes one Delta commit if and only if every check passed.
    pub async fn publish(
        &self,
        batches: Vec<RecordBatch>,
        mode: WriteMode,
        storage_options: &HashMap<String, String>,
    ) -> Result<Published, PublishError> {
        let checked = self.check(batches, mode, storage_options).await?;
        let table_version = tessera_lake::write(
            &self.location,
            storage_options,
            checked.batches,
            mode,
            &checked.partition_columns,
        )
        .await?;
        Ok(Published {
            location: self.location.clone(),
            contract_version: self.contract.version.clone(),
            table_version,
            rows: checked.rows,
            mode,
            warnings: checked.warnings,
        })
    }
}

/// Publishes a product's data through the catalog: the product's contract and
/// output port are looked up with a [`Client`], the data is checked, then written.
#[derive(Debug, Clone)]
pub struct Publisher {
    client: Client,
    storage_options: HashMap<String, String>,
    major_version: Option<u64>,
}

impl Publisher {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            storage_options: HashMap::new(),
            major_version: None,
        }
    }

    /// The object-store options of the output port's location (S3 endpoint,
    /// credentials, ...); none by default (deltalake then reads `AWS_*` variables).
    #[must_use]
    pub fn with_storage_options(mut self, options: HashMap<String, String>) -> Self {
        self.storage_options = options;
        self
    }

    /// Publishes to this major version's output port, checked against the latest
    /// contract of that major; by default, the latest contract's major.
    #[must_use]
    pub fn with_major_version(mut self, major: u64) -> Self {
        self.major_version = Some(major);
        self
    }

    /// The contract and output port a publish to `domain.product` uses.
    pub async fn target(&self, domain: &str, product: &str) -> Result<Target, PublishError> {
        let name = format!("{domain}.{product}");
        let found = self.client.product(domain, product).await?.value;
        if found.status == ProductStatus::Retired {
            return Err(PublishError::Retired { product: name });
        }
        let no_contract = |major| PublishError::NoContract {
            product: name.clone(),
            major,
        };
        let latest = found.latest_contract_version.ok_or_else(|| no_contract(None))?;
        let version = match self.major_version {
            Some(major) if major_of(&latest) != Some(major) => self
                .latest_of_major(domain, product, major)
                .await?
                .ok_or_else(|| no_contract(Some(major)))?,
            _ => latest,
        };
        let major = major_of(&version).ok_or_else(|| PublishError::InvalidContract {
            product: name.clone(),
            version: version.clone(),
            message: "its version is not a semantic version".into(),
        })?;
        let location = found
            .output_ports
            .iter()
            .find(|p| u64::from(p.major_version) == major)
            .and_then(|p| p.location.as_deref())
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .ok_or_else(|| PublishError::NoPort {
                product: name.clone(),
                major,
            })?;
        let stored = self.client.contract(domain, product, &version).await?;
        let unusable = |message: String| PublishError::InvalidContract {
            product: name.clone(),
            version: version.clone(),
            message,
        };
        let format = DocumentFormat::from_content_type(&stored.media_type)
            .ok_or_else(|| unusable(format!("unexpected media type {}", stored.media_type)))?;
        let contract = odcs::parse(format, &stored.document).map_err(|e| unusable(e.to_string()))?;
        Ok(Target {
            product: name,
            contract,
            location,
        })
    }

    /// The latest contract version of a major, from the product's listing (in
    /// semantic-version order).
    async fn latest_of_major(&self, domain: &str, product: &str, major: u64) -> Result<Option<String>, PublishError> {
        let mut paging = Paging {
            limit: Some(500),
            cursor: None,
        };
        let mut latest = None;
        loop {
            let page = self.client.contracts(domain, product, &paging).await?;
            if let Some(v) = page.items.iter().rev().find(|v| major_of(&v.version) == Some(major)) {
                latest = Some(v.version.clone());
            }
            match paging.next(&page) {
                Some(next) => paging = next,
                None => return Ok(latest),
            }
        }
    }

    /// Checks `batches` against the product's contract and, if every check
    /// passes, writes them to its output port in one Delta commit.
    pub async fn publish(
        &self,
        domain: &str,
        product: &str,
        batches: Vec<RecordBatch>,
        mode: WriteMode,
    ) -> Result<Published, PublishError> {
        let target = self.target(domain, product).await?;
        target.publish(batches, mode, &self.storage_options).await
    }
}
