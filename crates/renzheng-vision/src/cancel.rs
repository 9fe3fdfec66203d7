//! Stopping an analysis nobody waits for any more.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::EngineError;

/// A flag the requester raises when it no longer wants the answer (its request timed out,
/// its client went away). The engine looks at it between stages — after decoding, after
/// detection, before the recognition network — and stops with
/// [`EngineError::Cancelled`], so an abandoned analysis gives its engine slot back after
/// the stage in progress instead of after the whole pipeline. Cheap to clone; clones share
/// the flag.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag not raised.
    pub fn new() -> Self {
        Cancel::default()
    }

    /// Raises the flag.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the flag is raised.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once raised: the stage boundary check.
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        if self.is_cancelled() {
            Err(EngineError::Cancelled)
        } else {
            Ok(())
        }
    }
}
