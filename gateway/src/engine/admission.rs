//! Admission: a bounded number of queries run at once; the rest wait in a
//! bounded queue for a bounded time, then get a "busy" error.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::OwnedSemaphorePermit;

use super::{Engine, Session};
use crate::error::QueryError;

impl Engine {
    /// Queries executing now, and waiting for a slot.
    pub fn admission(&self) -> (usize, usize) {
        let inner = &self.inner;
        let running = inner.limits.max_concurrent_queries.max(1) - inner.slots.available_permits();
        (running, inner.waiting.load(Ordering::Relaxed))
    }
}

impl Session {
    /// Waits for an execution slot, within the queue's bounds.
    pub(super) async fn admit(&self, deadline: tokio::time::Instant) -> Result<OwnedSemaphorePermit, QueryError> {
        let inner = &self.engine.inner;
        if let Ok(permit) = Arc::clone(&inner.slots).try_acquire_owned() {
            return Ok(permit);
        }
        let busy = || QueryError::Busy {
            running: inner.limits.max_concurrent_queries,
            queued: inner.waiting.load(Ordering::Relaxed),
        };
        if inner.waiting.fetch_add(1, Ordering::AcqRel) >= inner.limits.max_queued_queries {
            inner.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(busy());
        }
        let wait_until = deadline.min(tokio::time::Instant::now() + inner.limits.queue_timeout());
        let acquired = tokio::time::timeout_at(wait_until, Arc::clone(&inner.slots).acquire_owned()).await;
        let result = match acquired {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(QueryError::Internal("the engine is shutting down".into())),
            Err(_) => Err(busy()),
        };
        inner.waiting.fetch_sub(1, Ordering::AcqRel);
        result
    }
}
