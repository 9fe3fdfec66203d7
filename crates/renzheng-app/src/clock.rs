//! Time, as the application reads it: one trait so that records are stamped by one clock
//! (and tests can fix it).

use std::fmt::Debug;

/// A source of the current time.
pub trait Clock: Send + Sync + Debug {
    /// Now, as unix milliseconds (the timestamp format of every record).
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one reader of the wall clock in the use cases: everything else is handed the time.
    #[allow(clippy::disallowed_methods)]
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_after_2026() {
        // 2026-01-01T00:00:00Z.
        assert!(SystemClock.now_ms() > 1_767_225_600_000);
    }
}
