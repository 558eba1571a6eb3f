//! What a query read and under which policies, and the record every query
//! leaves, whatever its outcome, in the engine's audit sink.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::logical_expr::LogicalPlan;

use super::Protocol;
use crate::error::QueryError;
use crate::policy::GovernedTable;

/// What a query read, and under which policies (from its optimized plan).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// `domain.product`
    pub products: BTreeSet<String>,
    /// `domain.table.column`
    pub columns: BTreeSet<String>,
    /// `mask:domain.table.column`
    pub masks: BTreeSet<String>,
    /// `filter:domain.table`
    pub filters: BTreeSet<String>,
}

/// What the engine reports of every query, whatever its outcome.
#[derive(Debug, Clone)]
pub struct QueryRecord {
    pub id: uuid::Uuid,
    pub principal: String,
    pub protocol: Protocol,
    /// The purpose the query counted with, and one declared but refused.
    pub purpose: Option<String>,
    pub refused_purpose: Option<String>,
    pub touched: Touched,
    pub sql: String,
    pub bundle_version: i64,
    pub rows: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub outcome: Result<(), QueryError>,
}

/// Where query records go; the governance work sends them to the catalog.
pub trait AuditSink: Send + Sync + 'static {
    /// Takes a record; what it returns resolves once the record is kept (on
    /// disk, for a durable sink). The engine waits for it before a query's
    /// answer completes.
    fn record(&self, record: QueryRecord) -> Saving;

    /// Whether a new query may start: a durable sink that cannot keep more
    /// records refuses (typed, so that the client retries).
    fn admit(&self) -> Result<(), QueryError> {
        Ok(())
    }
}

/// A record on its way to being kept (see [`AuditSink::record`]).
#[derive(Debug)]
pub struct Saving(Option<tokio::sync::oneshot::Receiver<Result<(), String>>>);

impl Saving {
    /// Kept already (or nothing to wait for).
    pub fn done() -> Self {
        Self(None)
    }

    /// Kept when `kept` answers; an error, or a sink gone without answering, is a failure.
    pub fn pending(kept: tokio::sync::oneshot::Receiver<Result<(), String>>) -> Self {
        Self(Some(kept))
    }
}

impl std::future::Future for Saving {
    type Output = Result<(), QueryError>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let Some(kept) = self.0.as_mut() else {
            return std::task::Poll::Ready(Ok(()));
        };
        std::pin::Pin::new(kept).poll(cx).map(|answer| {
            self.0 = None;
            match answer {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(QueryError::AuditUnavailable(e)),
                Err(_) => Err(QueryError::AuditUnavailable("the audit spool stopped".into())),
            }
        })
    }
}

/// The engine's extension points.
#[derive(Clone)]
pub struct Hooks {
    pub audit: Arc<dyn AuditSink>,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            audit: Arc::new(LogAudit),
        }
    }
}

/// The default sink: one log line per query.
#[derive(Debug, Default)]
pub struct LogAudit;

impl AuditSink for LogAudit {
    fn record(&self, r: QueryRecord) -> Saving {
        match &r.outcome {
            Ok(()) => tracing::info!(query_id = %r.id, principal = %r.principal, protocol = ?r.protocol,
                rows = r.rows, bytes = r.bytes, elapsed_ms = r.elapsed.as_millis() as u64,
                bundle = r.bundle_version, "query"),
            Err(e) => tracing::info!(query_id = %r.id, principal = %r.principal, protocol = ?r.protocol,
                elapsed_ms = r.elapsed.as_millis() as u64, bundle = r.bundle_version,
                error = %e, sqlstate = e.sqlstate(), "query failed"),
        }
        Saving::done()
    }
}

/// Reports a query once, when its stream ends or is dropped.
pub(super) struct Audit {
    pub(super) sink: Arc<dyn AuditSink>,
    pub(super) record: Option<QueryRecord>,
    pub(super) started: Instant,
}

impl Touched {
    /// Whether any table read is under a mask or row filter.
    pub fn governed(&self) -> bool {
        !self.masks.is_empty() || !self.filters.is_empty()
    }

    /// What the policies did to the query, said without revealing hidden data:
    /// `row filter customer_regions applied to customers.customer`, `mask
    /// pii_hashed applied to customers.customer (c_name, c_phone)`. Clients
    /// get them as PostgreSQL notices, HTTP headers and Flight metadata.
    pub fn notices(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .filters
            .iter()
            .filter_map(|f| f.split_once(':'))
            .map(|(filter, table)| format!("row filter {filter} applied to {table}"))
            .collect();
        let mut masks: std::collections::BTreeMap<(&str, &str), Vec<&str>> = std::collections::BTreeMap::new();
        for entry in &self.masks {
            if let Some((mask, column)) = entry.split_once(':')
                && let Some((table, column)) = column.rsplit_once('.')
            {
                masks.entry((mask, table)).or_default().push(column);
            }
        }
        out.extend(
            masks
                .into_iter()
                .map(|((mask, table), columns)| format!("mask {mask} applied to {table} ({})", columns.join(", "))),
        );
        out
    }
}

/// What a plan reads (its table scans, in subqueries too) and under which policies.
pub(super) fn touched(plan: &LogicalPlan) -> Result<Touched, QueryError> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::datasource::source_as_provider;
    let mut out = Touched::default();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let domain = scan.table_name.schema().unwrap_or("public");
            let table = scan.table_name.table();
            let product = table.split("@v").next().unwrap_or(table);
            let product = product.split("__v").next().unwrap_or(product);
            out.products.insert(format!("{domain}.{product}"));
            let schema = scan.source.schema();
            let columns: Vec<usize> = match &scan.projection {
                Some(p) => p.clone(),
                None => (0..schema.fields().len()).collect(),
            };
            let provider = source_as_provider(&scan.source).ok();
            let governed = provider
                .as_ref()
                .and_then(|p| p.downcast_ref::<GovernedTable>().map(GovernedTable::policy));
            for i in columns {
                let column = schema.field(i).name();
                out.columns.insert(format!("{domain}.{table}.{column}"));
                if let Some(policy) = governed
                    && let Some((_, _, mask)) = policy.masks.iter().find(|(c, _, _)| c == column)
                {
                    out.masks.insert(format!("{mask}:{domain}.{table}.{column}"));
                }
            }
            if let Some(policy) = governed {
                for filter in &policy.filter_names {
                    out.filters.insert(format!("{filter}:{domain}.{table}"));
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(out)
}

impl Audit {
    pub(super) fn touched(&mut self, touched: Touched) {
        if let Some(record) = self.record.as_mut() {
            record.touched = touched;
        }
    }

    pub(super) fn finish(mut self, rows: u64, bytes: u64, outcome: Result<(), QueryError>) -> Saving {
        self.report(rows, bytes, outcome)
    }

    /// Hands the record to the sink (once; later calls do nothing).
    pub(super) fn report(&mut self, rows: u64, bytes: u64, outcome: Result<(), QueryError>) -> Saving {
        let Some(mut record) = self.record.take() else {
            return Saving::done();
        };
        record.rows = rows;
        record.bytes = bytes;
        record.elapsed = self.started.elapsed();
        record.outcome = outcome;
        self.sink.record(record)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use arrow::record_batch::RecordBatch;
    use chrono::Utc;
    use tessera_contracts::api::Attributes;
    use tessera_contracts::bundle::{Bundle, BundleContent, BundleKey, BundlePrincipal};

    use super::*;
    use crate::{Engine, GatewayConfig};

    const KEY: &str = "tsk_aaaaaaaaaaaa_1111111111111111111111111111111111111111111111111111111111111111";

    #[derive(Default)]
    struct Recorder(Mutex<Vec<QueryRecord>>);

    impl AuditSink for Arc<Recorder> {
        fn record(&self, record: QueryRecord) -> Saving {
            self.0.lock().expect("lock").push(record);
            Saving::done()
        }
    }

    #[tokio::test]
    async fn every_query_is_audited() {
        let recorder = Arc::new(Recorder::default());
        let hooks = Hooks {
            audit: Arc::new(Arc::clone(&recorder)),
        };
        let engine = Engine::with_hooks(&GatewayConfig::default(), hooks).expect("engine");
        let parsed = tessera_contracts::keys::parse(KEY).expect("key");
        let content = BundleContent {
            principals: vec![BundlePrincipal {
                name: "ana".into(),
                admin: false,
                roles: vec![],
                attributes: Attributes::default(),
                teams: vec![],
                keys: vec![BundleKey {
                    id: parsed.id.into(),
                    secret_hash: tessera_contracts::keys::hash_secret(parsed.secret),
                    expires_at: None,
                }],
            }],
            ..BundleContent::default()
        };
        engine.install(Bundle::new(9, content, Utc::now())).expect("installs");
        let principal = engine.authenticate(KEY).expect("authenticates");
        let session = engine
            .session(&principal, Protocol::InProcess, Some("fraud"))
            .expect("session");
        assert_eq!(session.purpose(), None, "ana may not declare fraud");

        let batches = session
            .sql("SELECT x FROM (VALUES (1), (2), (3)) AS t(x) LIMIT 1")
            .await
            .expect("runs")
            .collect()
            .await
            .expect("rows");
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1, "rewritten");
        let error = match session.sql("SELECT 1/0").await {
            Ok(stream) => stream.collect().await.expect_err("fails"),
            Err(e) => e,
        };
        assert_eq!(error.sqlstate(), "22012");

        let records = recorder.0.lock().expect("lock");
        assert_eq!(records.len(), 2, "one record per query");
        assert_eq!((records[0].principal.as_str(), records[0].rows), ("ana", 1));
        assert_eq!((records[0].bundle_version, records[0].outcome.is_ok()), (9, true));
        assert_eq!(records[0].refused_purpose.as_deref(), Some("fraud"));
        assert_eq!(
            records[1].outcome.as_ref().err().map(QueryError::sqlstate),
            Some("22012")
        );
    }
}
