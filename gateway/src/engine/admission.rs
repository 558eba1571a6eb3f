//! Admission: a bounded number of queries run at once, and one principal
//! holds at most its share of them (so that one user's long queries never
//! take every slot from the others); the rest wait in a bounded queue for a
//! bounded time, then get a "busy" error.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Engine, Session};
use crate::error::QueryError;

/// A query's execution slot: one of the gateway's, and one of its principal's.
#[derive(Debug)]
pub struct Slot {
    _gateway: OwnedSemaphorePermit,
    _principal: OwnedSemaphorePermit,
}

/// The principals' shares of the slots.
#[derive(Debug, Default)]
pub(super) struct Shares(Mutex<HashMap<String, Arc<Semaphore>>>);

impl Shares {
    fn of(&self, principal: &str, share: usize) -> Arc<Semaphore> {
        let mut shares = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(
            shares
                .entry(principal.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(share))),
        )
    }
}

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
    pub(super) async fn admit(&self, deadline: tokio::time::Instant) -> Result<Slot, QueryError> {
        let inner = &self.engine.inner;
        let own = inner.shares.of(&self.principal.name, inner.limits.principal_share());
        if let Ok(principal) = Arc::clone(&own).try_acquire_owned()
            && let Ok(gateway) = Arc::clone(&inner.slots).try_acquire_owned()
        {
            return Ok(Slot {
                _gateway: gateway,
                _principal: principal,
            });
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
        let acquired = tokio::time::timeout_at(wait_until, async {
            let principal = own.acquire_owned().await?;
            let gateway = Arc::clone(&inner.slots).acquire_owned().await?;
            Ok::<_, tokio::sync::AcquireError>(Slot {
                _gateway: gateway,
                _principal: principal,
            })
        })
        .await;
        let result = match acquired {
            Ok(Ok(slot)) => Ok(slot),
            Ok(Err(_)) => Err(QueryError::Internal("the engine is shutting down".into())),
            Err(_) => Err(busy()),
        };
        inner.waiting.fetch_sub(1, Ordering::AcqRel);
        result
    }
}
