//! A running query's results: Arrow batches produced on the engine's threads
//! and handed over under the query's deadline and result caps.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream};
use futures::Stream;

use super::Session;
use super::audit::{Audit, Saving};
use crate::error::QueryError;

impl Session {
    /// Executes on the engine's own threads and hands batches over through a
    /// small channel: CPU-heavy operators never hold up the threads that serve
    /// connections and timers, so a deadline fires on time even while a runaway
    /// join is busy; dropping the receiver stops the query at its next batch.
    pub(super) fn drive(&self, mut stream: SendableRecordBatchStream) -> Result<SendableRecordBatchStream, QueryError> {
        use futures::StreamExt;
        let schema = stream.schema();
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        self.engine.inner.runtime()?.spawn(async move {
            loop {
                let next = tokio::select! {
                    next = stream.next() => next,
                    () = tx.closed() => break,
                };
                let Some(item) = next else { break };
                if tx.send(item).await.is_err() {
                    break;
                }
            }
        });
        let batches = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        Ok(Box::pin(
            datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(schema, batches),
        ))
    }
}

/// A running query's results: Arrow batches under the query's deadline and
/// result caps. Dropping it cancels the query.
pub struct QueryStream {
    pub id: uuid::Uuid,
    /// What the policies did to the query (see [`super::Touched::notices`]).
    pub notices: Vec<String>,
    pub(super) schema: SchemaRef,
    pub(super) inner: SendableRecordBatchStream,
    pub(super) deadline: Pin<Box<tokio::time::Sleep>>,
    pub(super) timeout_secs: f64,
    pub(super) max_rows: u64,
    pub(super) max_bytes: u64,
    pub(super) rows: u64,
    pub(super) bytes: u64,
    pub(super) done: bool,
    /// The record of a query that ran to its end, on its way to the audit
    /// sink: the stream ends once it is kept.
    pub(super) saving: Option<Saving>,
    pub(super) _permit: super::admission::Slot,
    pub(super) audit: Audit,
}

impl std::fmt::Debug for QueryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryStream")
            .field("id", &self.id)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl QueryStream {
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn elapsed(&self) -> Duration {
        self.audit.started.elapsed()
    }

    fn fail(&mut self, error: QueryError) -> Poll<Option<datafusion::error::Result<RecordBatch>>> {
        self.done = true;
        // Kept in the background: the answer is an error either way.
        drop(self.audit.report(self.rows, self.bytes, Err(error.clone())));
        Poll::Ready(Some(Err(error.into_datafusion())))
    }

    /// Collects the whole result (for tests and small in-process queries).
    pub async fn collect(mut self) -> Result<Vec<RecordBatch>, QueryError> {
        use futures::StreamExt;
        let mut batches = Vec::new();
        while let Some(batch) = self.next().await {
            batches.push(batch.map_err(QueryError::from)?);
        }
        Ok(batches)
    }
}

impl Stream for QueryStream {
    type Item = datafusion::error::Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(saving) = self.saving.as_mut() {
            let kept = std::task::ready!(Pin::new(saving).poll(cx));
            self.saving = None;
            return Poll::Ready(kept.err().map(|e| Err(e.into_datafusion())));
        }
        if self.done {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            let secs = self.timeout_secs;
            return self.fail(QueryError::Timeout { secs });
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.done = true;
                let (rows, bytes) = (self.rows, self.bytes);
                // The answer completes once its record is kept (a durable
                // sink fsyncs it): the next poll waits for that.
                self.saving = Some(self.audit.report(rows, bytes, Ok(())));
                self.poll_next(cx)
            }
            Poll::Ready(Some(Err(e))) => {
                let error = QueryError::from(e);
                self.fail(error)
            }
            Poll::Ready(Some(Ok(batch))) => {
                self.rows += batch.num_rows() as u64;
                self.bytes += batch.get_array_memory_size() as u64;
                if self.rows > self.max_rows {
                    let max = self.max_rows;
                    return self.fail(QueryError::TooManyRows { max });
                }
                if self.bytes > self.max_bytes {
                    let max = self.max_bytes;
                    return self.fail(QueryError::TooManyBytes { max });
                }
                Poll::Ready(Some(Ok(batch)))
            }
        }
    }
}

impl RecordBatchStream for QueryStream {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

impl Drop for QueryStream {
    fn drop(&mut self) {
        if !self.done {
            let (rows, bytes) = (self.rows, self.bytes);
            drop(
                self.audit
                    .report(rows, bytes, Err(QueryError::Internal("cancelled by the client".into()))),
            );
        }
    }
}
