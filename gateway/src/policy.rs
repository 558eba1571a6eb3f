//! Policy enforcement: a governed table and its barrier.
//!
//! A table the principal reads under a row filter or a column mask is, in its
//! session, a [`GovernedTable`]: a provider whose schema is the masked one and
//! whose scan is a [`PolicyBarrierExec`] over
//! `Projection(masks) <- Filter(row filter) <- Delta scan`.
//!
//! The barrier is enforced at both levels:
//! - logical: the table refuses every filter pushdown, so user predicates stay
//!   above its scan and the optimizer cannot merge them into the row filter
//!   (in DataFusion a merged `1/(id-7) = 1` would run on hidden rows and its
//!   "Divide by zero" would reveal them);
//! - physical: the barrier is a leaf to the planner, so no optimizer rule sees
//!   below it and no dynamic filter (TopK, hash join) is pushed into the scan.
//!   It reports no statistics, so COUNT(*) and MIN/MAX are never answered from
//!   file statistics of hidden rows or raw values.
//!
//! The row filter itself is handed to the Delta scan, which may skip files and
//! row groups with it. EXPLAIN shows the barrier and nothing below it.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, ScalarUDF, TableProviderFilterPushDown, cast, col, lit};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::StreamExt;
use tessera_contracts::api::Attributes;
use tessera_contracts::policy::{MaskFunction, TablePolicy};

use crate::mask::MaskHash;

/// A session's policy on one table, compiled: masks by column, the row filter
/// instantiated for the principal (planned lazily against the table's schema).
#[derive(Debug)]
pub struct CompiledPolicy {
    /// `domain.table`, for EXPLAIN and the audit.
    pub table: String,
    pub masks: Vec<(String, MaskFunction, String)>,
    pub filter_names: Vec<String>,
    /// The filters, AND-ed and instantiated (None: no row filter).
    filter: Option<datafusion::sql::sqlparser::ast::Expr>,
    /// The filter planned against the last schema seen (time travel may show others).
    planned: Mutex<Option<(SchemaRef, Expr)>>,
    /// The `hash` mask under the mesh's key.
    hash: Arc<ScalarUDF>,
}

impl CompiledPolicy {
    /// Compiles `policy` for a principal, `hash` masks under `mask_key`; a
    /// filter that does not parse is an error.
    pub fn new(
        table: String,
        policy: &TablePolicy,
        principal: &str,
        attributes: &Attributes,
        mask_key: &[u8],
    ) -> Result<Self, String> {
        let mut filter: Option<datafusion::sql::sqlparser::ast::Expr> = None;
        for (name, expression) in &policy.filters {
            let parsed = tessera_policy::parse(expression).map_err(|e| format!("row filter {name}: {e}"))?;
            let one = tessera_policy::instantiate(&parsed, principal, attributes);
            let nested = datafusion::sql::sqlparser::ast::Expr::Nested(Box::new(one));
            filter = Some(match filter {
                None => nested,
                Some(acc) => datafusion::sql::sqlparser::ast::Expr::BinaryOp {
                    left: Box::new(acc),
                    op: datafusion::sql::sqlparser::ast::BinaryOperator::And,
                    right: Box::new(nested),
                },
            });
        }
        Ok(Self {
            table,
            masks: policy.masks.clone(),
            filter_names: policy.filters.iter().map(|(n, _)| n.clone()).collect(),
            filter,
            planned: Mutex::new(None),
            hash: MaskHash::udf(mask_key),
        })
    }

    fn mask_of(&self, column: &str) -> Option<MaskFunction> {
        self.masks.iter().find(|(c, _, _)| c == column).map(|(_, f, _)| *f)
    }

    fn planned_filter(&self, schema: &SchemaRef) -> Result<Option<Expr>> {
        let Some(filter) = &self.filter else { return Ok(None) };
        let mut planned = self.planned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((seen, expr)) = planned.as_ref()
            && seen == schema
        {
            return Ok(Some(expr.clone()));
        }
        let expr = tessera_policy::plan(filter, schema).map_err(|e| {
            DataFusionError::Plan(format!(
                "the row filter of {} does not apply to this table: {e}",
                self.table
            ))
        })?;
        *planned = Some((Arc::clone(schema), expr.clone()));
        Ok(Some(expr))
    }
}

fn is_text(dt: &DataType) -> bool {
    matches!(dt, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The type a masked column reads as.
pub fn masked_type(dt: &DataType, mask: MaskFunction) -> DataType {
    match mask {
        MaskFunction::Hash => DataType::Utf8,
        _ => dt.clone(),
    }
}

/// The expression computing a masked column from the raw one (`hash` is the
/// keyed hash of the mesh).
pub fn mask_expr(column: Expr, dt: &DataType, mask: MaskFunction, hash: &Arc<ScalarUDF>) -> Result<Expr> {
    let null = || ScalarValue::try_from(dt).map(lit);
    Ok(match mask {
        MaskFunction::Null => null()?,
        MaskFunction::Redact if is_text(dt) => cast(lit("***"), dt.clone()),
        MaskFunction::Redact => null()?,
        MaskFunction::Hash => hash.call(vec![cast(column, DataType::Utf8)]),
        MaskFunction::Partial { keep } if is_text(dt) => cast(
            datafusion::functions::unicode::expr_fn::right(cast(column, DataType::Utf8), lit(i64::from(keep))),
            dt.clone(),
        ),
        MaskFunction::Partial { .. } => null()?,
    })
}

/// A table read under a policy (see the module documentation).
#[derive(Debug)]
pub struct GovernedTable {
    inner: Arc<dyn TableProvider>,
    policy: Arc<CompiledPolicy>,
    schema: SchemaRef,
}

impl GovernedTable {
    pub fn new(inner: Arc<dyn TableProvider>, policy: Arc<CompiledPolicy>) -> Self {
        let raw = inner.schema();
        let fields: Vec<Field> = raw
            .fields()
            .iter()
            .map(|f| match policy.mask_of(f.name()) {
                Some(mask) => f
                    .as_ref()
                    .clone()
                    .with_data_type(masked_type(f.data_type(), mask))
                    .with_nullable(true),
                None => f.as_ref().clone(),
            })
            .collect();
        let schema = Arc::new(Schema::new_with_metadata(fields, raw.metadata().clone()));
        Self { inner, policy, schema }
    }

    pub fn policy(&self) -> &CompiledPolicy {
        &self.policy
    }
}

#[async_trait]
impl TableProvider for GovernedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// No user predicate goes below the barrier.
    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Unsupported; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let raw = self.inner.schema();
        let wanted: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..raw.fields().len()).collect());
        let filter = self.policy.planned_filter(&raw)?;
        let mut needed: BTreeSet<usize> = wanted.iter().copied().collect();
        if let Some(filter) = &filter {
            for column in filter.column_refs() {
                needed.insert(raw.index_of(&column.name)?);
            }
        }
        let needed: Vec<usize> = needed.into_iter().collect();
        // A limit may go into the scan only when no row is filtered out after it.
        let scan_limit = if filter.is_none() { limit } else { None };
        let pruning: Vec<Expr> = filter.iter().cloned().collect();
        let input = self.inner.scan(state, Some(&needed), &pruning, scan_limit).await?;
        let input_schema = DFSchema::try_from(input.schema())?;
        let mut plan = input;
        if let Some(filter) = filter {
            let predicate = state.create_physical_expr(filter, &input_schema)?;
            plan = Arc::new(FilterExec::try_new(predicate, plan)?);
        }
        let mut exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = Vec::with_capacity(wanted.len());
        for &i in &wanted {
            let field = raw.field(i);
            let column = col(datafusion::common::Column::from_name(field.name()));
            let expr = match self.policy.mask_of(field.name()) {
                Some(mask) => mask_expr(column, field.data_type(), mask, &self.policy.hash)?,
                None => column,
            };
            exprs.push((state.create_physical_expr(expr, &input_schema)?, field.name().clone()));
        }
        let plan: Arc<dyn ExecutionPlan> = Arc::new(ProjectionExec::try_new(exprs, plan)?);
        let declared = Arc::new(self.schema.project(&wanted)?);
        Ok(Arc::new(PolicyBarrierExec::new(
            plan,
            declared,
            self.policy.table.clone(),
        )))
    }
}

/// The physical barrier: a leaf to every optimizer, running its hidden input.
#[derive(Debug)]
pub struct PolicyBarrierExec {
    input: Arc<dyn ExecutionPlan>,
    schema: SchemaRef,
    table: String,
    properties: Arc<PlanProperties>,
}

impl PolicyBarrierExec {
    fn new(input: Arc<dyn ExecutionPlan>, schema: SchemaRef, table: String) -> Self {
        let partitions = input.output_partitioning().partition_count();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            input,
            schema,
            table,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for PolicyBarrierExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(
                    f,
                    "PolicyBarrierExec: table={} (governed; its plan is not shown)",
                    self.table
                )
            }
            DisplayFormatType::TreeRender => write!(f, "table={}", self.table),
        }
    }
}

impl ExecutionPlan for PolicyBarrierExec {
    fn name(&self) -> &str {
        "PolicyBarrierExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
        _: datafusion::physical_plan::ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(self: Arc<Self>, _: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let schema = Arc::clone(&self.schema);
        let stream = self.input.execute(partition, context)?;
        let relabel = Arc::clone(&schema);
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            stream.map(move |batch| {
                let batch = batch?;
                // The row count matters for a projection of no column (COUNT(*)).
                let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
                Ok(RecordBatch::try_new_with_options(
                    Arc::clone(&relabel),
                    batch.columns().to_vec(),
                    &options,
                )?)
            }),
        )))
    }
}
