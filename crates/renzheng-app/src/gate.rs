//! Bounded admission to the face engine: backpressure instead of an unbounded queue.
//!
//! At most `max_jobs` engine jobs run at once; at most `max_waiting` requests wait for a
//! slot, each for at most `wait`. Anything beyond is refused at once (503 + Retry-After),
//! so a burst costs callers a quick retry rather than costing the server its memory and
//! every caller its latency.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The engine is saturated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the engine is saturated")]
pub struct Saturated;

/// Admission control for engine jobs.
#[derive(Debug)]
pub struct EngineGate {
    slots: Arc<Semaphore>,
    max_jobs: usize,
    waiting: AtomicUsize,
    max_waiting: usize,
    wait: Duration,
}

/// Decrements the waiting count however the wait ends (success, timeout, cancellation).
struct WaitingGuard<'a>(&'a AtomicUsize);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl EngineGate {
    /// A gate of `max_jobs` slots and a queue of `max_waiting` waiting at most `wait`.
    pub fn new(max_jobs: usize, max_waiting: usize, wait: Duration) -> Self {
        EngineGate {
            slots: Arc::new(Semaphore::new(max_jobs)),
            max_jobs,
            waiting: AtomicUsize::new(0),
            max_waiting,
            wait,
        }
    }

    /// A slot, or [`Saturated`]. The permit frees the slot when dropped: move it into the
    /// blocking closure so the slot is held exactly as long as the CPU work, even when the
    /// request itself is abandoned.
    pub async fn acquire(&self) -> Result<OwnedSemaphorePermit, Saturated> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        // Reserve a place in the queue, or give up at once.
        let reserved = self
            .waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max_waiting).then_some(n + 1)
            });
        if reserved.is_err() {
            return Err(Saturated);
        }
        let _guard = WaitingGuard(&self.waiting);
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Saturated),
        }
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        self.max_jobs - self.slots.available_permits()
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_at_once_when_full_and_no_queue() {
        let gate = EngineGate::new(1, 0, Duration::from_secs(5));
        let held = gate.acquire().await.unwrap();
        assert_eq!(gate.running(), 1);
        assert_eq!(gate.acquire().await.unwrap_err(), Saturated);
        drop(held);
        assert!(gate.acquire().await.is_ok());
    }

    #[tokio::test]
    async fn queued_requests_time_out() {
        let gate = EngineGate::new(1, 1, Duration::from_millis(20));
        let _held = gate.acquire().await.unwrap();
        assert_eq!(gate.acquire().await.unwrap_err(), Saturated);
        assert_eq!(gate.waiting(), 0);
    }

    #[tokio::test]
    async fn queued_requests_get_the_freed_slot() {
        let gate = Arc::new(EngineGate::new(1, 1, Duration::from_secs(5)));
        let held = gate.acquire().await.unwrap();
        let g = gate.clone();
        let waiter = tokio::spawn(async move { g.acquire().await.map(drop) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(gate.waiting(), 1);
        drop(held);
        assert!(waiter.await.unwrap().is_ok());
    }
}
