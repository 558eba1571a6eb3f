//! The contract is the interface at serving time.
//!
//! A product's table is served through its contract: a principal sees exactly
//! the contract's columns, in the contract's order, each with the Delta
//! table's own Arrow type (wherever `verify` accepts it: no casts). Whatever
//! else the table holds (a column added by another writer) is never served.
//!
//! Each Delta version is checked against the contract once (the same `verify`
//! as the catalog's). A version that lacks a contract column, or retypes one,
//! is not served: the table is served at the last version that matched, and
//! time travel to such a version is refused. Every mismatch, blocking or not,
//! is recorded as drift, which the gateway reports to the catalog (the
//! product's health then reads `drifted`) until the table matches again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use arrow::datatypes::{Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Constraints, Statistics};
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::ProjectionExec;
use tessera_contracts::api::{Drift, Mismatch};
use tessera_contracts::bundle::BundlePort;
use tessera_contracts::odcs::SchemaObject;
use tessera_contracts::odcs::arrow::{column_name, verify};
use tokio::sync::watch;

/// Mismatches that keep a version from being served: a contract column is
/// missing, or has a type the contract does not accept.
const BLOCKING: [&str; 3] = ["missing-column", "type-mismatch", "invalid-type"];

/// A port of a product, as its contract serves it.
#[derive(Debug)]
pub struct Served {
    pub domain: String,
    pub product: String,
    pub major_version: u32,
    object: SchemaObject,
    /// The contract's columns, in its order.
    columns: Vec<String>,
}

impl Served {
    /// The port's contract, when it has one (a port without a contract yet is
    /// served as its table is).
    pub fn of(domain: &str, product: &str, port: &BundlePort) -> Option<Self> {
        let object = port.schema.clone()?;
        let columns = object
            .properties
            .iter()
            .flatten()
            .filter_map(|p| column_name(p).map(str::to_string))
            .collect();
        Some(Self {
            domain: domain.to_string(),
            product: product.to_string(),
            major_version: port.major_version,
            object,
            columns,
        })
    }

    /// `domain.product`.
    pub fn name(&self) -> String {
        format!("{}.{}", self.domain, self.product)
    }

    /// Checks a version's schema against the contract.
    pub fn check(&self, schema: &Schema, partition_columns: &[String]) -> Check {
        let mismatches = verify(&self.object, schema, partition_columns);
        let blocking = mismatches.iter().any(|m| BLOCKING.contains(&m.rule.as_str()));
        Check { mismatches, blocking }
    }

    /// The table as the contract serves it: its columns only, in its order.
    pub fn project(&self, inner: Arc<dyn TableProvider>) -> Result<Arc<dyn TableProvider>> {
        let raw = inner.schema();
        let indices = self
            .columns
            .iter()
            .map(|c| raw.index_of(c))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let schema = Arc::new(raw.project(&indices)?);
        Ok(Arc::new(ContractTable { inner, indices, schema }))
    }

    /// The drift record of a checked version.
    pub fn drift(&self, table_version: u64, serving_version: Option<u64>, check: &Check) -> Drift {
        Drift {
            domain: self.domain.clone(),
            product: self.product.clone(),
            major_version: self.major_version,
            table_version,
            serving_version,
            mismatches: check.mismatches.clone(),
        }
    }
}

/// What checking one version found.
#[derive(Debug, Clone)]
pub struct Check {
    pub mismatches: Vec<Mismatch>,
    /// Whether the version may not be served.
    pub blocking: bool,
}

impl Check {
    pub fn matches(&self) -> bool {
        self.mismatches.is_empty()
    }

    /// The mismatches, as a client reads them.
    pub fn describe(&self) -> String {
        self.mismatches
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The drift found so far, by table location; the gateway reports it.
#[derive(Debug)]
pub struct Drifts {
    by_location: Mutex<BTreeMap<String, Drift>>,
    changed: watch::Sender<u64>,
}

impl Default for Drifts {
    fn default() -> Self {
        Self {
            by_location: Mutex::default(),
            changed: watch::channel(0).0,
        }
    }
}

impl Drifts {
    /// Records what the latest version at `location` showed (`None`: it matches).
    pub fn record(&self, location: &str, drift: Option<Drift>) {
        let mut all = self.by_location.lock().unwrap_or_else(PoisonError::into_inner);
        let changed = match drift {
            Some(d) => all.insert(location.to_string(), d.clone()).as_ref() != Some(&d),
            None => all.remove(location).is_some(),
        };
        drop(all);
        if changed {
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// Every drift found, for the locations still in `live` (products that
    /// left the bundle are no longer reported).
    pub fn current(&self, live: impl Fn(&str) -> bool) -> Vec<Drift> {
        self.by_location
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(location, _)| live(location))
            .map(|(_, d)| d.clone())
            .collect()
    }

    /// Moves whenever the drift found changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// A Delta table (or its in-memory copy) seen through its contract.
#[derive(Debug)]
struct ContractTable {
    inner: Arc<dyn TableProvider>,
    /// The inner columns of the contract's, in the contract's order.
    indices: Vec<usize>,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for ContractTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn constraints(&self) -> Option<&Constraints> {
        None
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // Filters name columns, which keep their names here.
        self.inner.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        let mut stats = self.inner.statistics()?;
        let columns = std::mem::take(&mut stats.column_statistics);
        stats.column_statistics = self.indices.iter().filter_map(|&i| columns.get(i).cloned()).collect();
        (stats.column_statistics.len() == self.indices.len()).then_some(stats)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let wanted: Vec<usize> = match projection {
            Some(p) => p.iter().map(|&i| self.indices[i]).collect(),
            None => self.indices.clone(),
        };
        // The inner table is scanned in its own column order; a projection
        // puts the contract's order back where it differs.
        let mut sorted = wanted.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let plan = self.inner.scan(state, Some(&sorted), filters, limit).await?;
        if sorted == wanted {
            return Ok(plan);
        }
        let scanned = plan.schema();
        let exprs = wanted
            .iter()
            .map(|i| {
                let at = sorted.binary_search(i).unwrap_or_default();
                let name = scanned.field(at).name().clone();
                (Arc::new(Column::new(&name, at)) as Arc<dyn PhysicalExpr>, name)
            })
            .collect::<Vec<_>>();
        Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
    }
}
