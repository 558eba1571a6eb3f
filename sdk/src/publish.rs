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
//!    (`tessera_lake::quality::evaluate`), over the table as it would be after
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

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::compute::{CastOptions, can_cast_types, cast_with_options};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};
use tessera_contracts::ProductStatus;
use tessera_contracts::api::{CheckStatus, QualityResult};
use tessera_contracts::document::DocumentFormat;
use tessera_contracts::odcs::arrow::{Mismatch, column_name, object_schema, verify};
use tessera_contracts::odcs::quality::ident;
use tessera_contracts::odcs::{self, DataContract, SchemaObject};
use tessera_lake::{TableMeta, WriteMode};

use crate::{Client, Paging};

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
    Table(#[from] tessera_lake::quality::QualityError),
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
                    tessera_lake::quality::register(&ctx, "existing", &self.location, table).await?;
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
            for result in tessera_lake::quality::evaluate(&ctx, TABLE, &self.contract).await {
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
            .map(|p| p.location.trim().to_string())
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

fn major_of(version: &str) -> Option<u64> {
    version.trim().trim_start_matches('v').split('.').next()?.parse().ok()
}

fn schema_object<'a>(product: &str, contract: &'a DataContract) -> Result<&'a SchemaObject, PublishError> {
    contract
        .schema
        .as_ref()
        .and_then(|s| s.first())
        .ok_or_else(|| invalid(product, contract, "it declares no schema object".into()))
}

fn invalid(product: &str, contract: &DataContract, message: String) -> PublishError {
    PublishError::InvalidContract {
        product: product.to_string(),
        version: contract.version.clone(),
        message,
    }
}

/// The mismatches that matter for data: nullability is checked on the values
/// (a nullable field without NULLs is fine), partitioning is the table's.
fn relevant(mismatches: Vec<Mismatch>) -> impl Iterator<Item = Mismatch> {
    mismatches
        .into_iter()
        .filter(|m| !matches!(m.rule.as_str(), "nullability-mismatch" | "partition-mismatch"))
}

/// The schema written: the contract's columns in its order, each with the type
/// it has in the existing table when that type satisfies the contract (else the
/// contract's), nullable as the table has it for an append (else as the
/// contract says).
fn target_schema(object: &SchemaObject, declared: &Schema, existing: Option<&TableMeta>, mode: WriteMode) -> Schema {
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
fn relaxed_schema(target: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        target
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ))
}

/// Whether a type the contract does not accept as is converts harmlessly.
fn convertible(from: &DataType, to: &DataType) -> bool {
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
fn schema_problems(object: &SchemaObject, target: &Schema, schema: &Schema) -> Vec<Violation> {
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
fn conform(
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
fn add(violations: &mut Vec<Violation>, v: Violation) {
    if !violations.contains(&v) {
        violations.push(v);
    }
}

/// The contract's partition columns, in partition-key order.
fn declared_partitions(object: &SchemaObject) -> Vec<String> {
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

// ---------------------------------------------------------------- readers

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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn majors_of_versions() {
        assert_eq!(major_of("2.1.0"), Some(2));
        assert_eq!(major_of("10.0.0-rc.1"), Some(10));
        assert_eq!(major_of("x"), None);
    }
}
