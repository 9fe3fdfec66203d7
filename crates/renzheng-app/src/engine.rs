//! Admission to the face engine: loading it once, running its blocking work on the
//! blocking pool within the gate, and reporting what it did.

use std::sync::Arc;

use renzheng_vision::{Analysis, Cancel, Engine, EngineConfig, FaceEngine, StageTimings};
use tokio::sync::OnceCell;

use crate::gate::EngineGate;
use crate::settings::Limits;
use crate::telemetry::spawn_blocking_with_tracing;
use crate::{AppError, EngineSource};

/// Told about engine work, for metrics. Every method must be cheap and never block.
pub trait EngineObserver: Send + Sync {
    /// One photo was analysed, with its stage times.
    fn analysed(&self, timings: &StageTimings);
    /// A request was refused because the engine and its queue were full.
    fn saturated(&self);
}

/// Raises its flag when dropped: when the future awaiting an analysis is dropped, the
/// blocking work learns that nobody waits for it. (Raised after a normal finish too,
/// when it no longer matters.)
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Observes nothing (the CLI).
struct Unobserved;

impl EngineObserver for Unobserved {
    fn analysed(&self, _: &StageTimings) {}
    fn saturated(&self) {}
}

/// The engine, its gate and its observer.
pub(crate) struct EngineRoom {
    engine: OnceCell<Arc<dyn FaceEngine>>,
    config: Option<EngineConfig>,
    gate: EngineGate,
    retry_after_secs: u64,
    observer: Arc<dyn EngineObserver>,
}

impl EngineRoom {
    /// A room whose gate has `slots` places: the engine's session count, so that a job
    /// holding a slot never waits for a session.
    pub(crate) fn new(source: EngineSource, slots: usize, limits: &Limits) -> Self {
        let (engine, config) = match source {
            EngineSource::Ready(engine) => (OnceCell::new_with(Some(engine)), None),
            EngineSource::Pack(config) => (OnceCell::new(), Some(config)),
        };
        EngineRoom {
            engine,
            config,
            gate: EngineGate::new(slots, limits.max_queued_jobs, limits.queue_timeout()),
            retry_after_secs: limits.retry_after_secs,
            observer: Arc::new(Unobserved),
        }
    }

    pub(crate) fn set_observer(&mut self, observer: Arc<dyn EngineObserver>) {
        self.observer = observer;
    }

    pub(crate) fn gate(&self) -> &EngineGate {
        &self.gate
    }

    pub(crate) fn loaded(&self) -> Option<Arc<dyn FaceEngine>> {
        self.engine.get().cloned()
    }

    /// The engine, loaded on first call (hashing the pack and creating sessions takes
    /// seconds of CPU, so it happens on the blocking pool).
    pub(crate) async fn get(&self) -> Result<Arc<dyn FaceEngine>, AppError> {
        self.engine
            .get_or_try_init(|| async {
                let config = self
                    .config
                    .clone()
                    .ok_or_else(|| AppError::Internal("no engine configured".into()))?;
                let engine = spawn_blocking_with_tracing(move || Engine::open(&config))
                    .await?
                    .map_err(AppError::Engine)?;
                Ok(Arc::new(engine) as Arc<dyn FaceEngine>)
            })
            .await
            .cloned()
    }

    /// Runs `work` on the engine within the gate, off the async runtime. The permit moves
    /// into the blocking task, so the slot stays taken exactly as long as the CPU is busy,
    /// even when the request that asked is abandoned.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&dyn FaceEngine) -> T + Send + 'static,
        T: Send + 'static,
    {
        let engine = self.get().await?;
        let Ok(permit) = self.gate.acquire().await else {
            self.observer.saturated();
            return Err(AppError::Busy {
                retry_after_secs: self.retry_after_secs,
            });
        };
        let done = spawn_blocking_with_tracing(move || {
            let _permit = permit;
            work(engine.as_ref())
        })
        .await?;
        Ok(done)
    }

    /// Analyses one photo within the gate; a photo the decoder refuses is the caller's
    /// [`AppError::InvalidImage`]. If this future is dropped (the request timed out, the
    /// client went away), the analysis stops at its next stage boundary and gives its
    /// slot back.
    pub(crate) async fn analyze(&self, photo: Vec<u8>) -> Result<Analysis, AppError> {
        let cancel = Cancel::new();
        let _abandoned = CancelOnDrop(cancel.clone());
        let analysis = self
            .run(move |engine| engine.analyze_cancellable(&photo, &cancel))
            .await??;
        self.observer.analysed(&analysis.timings);
        Ok(analysis)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use renzheng_vision::{EngineError, VerdictThresholds};

    use super::*;

    /// An engine whose analysis takes seconds unless cancelled, checking its flag often.
    #[derive(Debug, Default)]
    struct Slow {
        thresholds: VerdictThresholds,
        stopped_early: AtomicBool,
    }

    impl FaceEngine for Slow {
        fn model_id(&self) -> &str {
            "slow"
        }

        fn thresholds(&self) -> &VerdictThresholds {
            &self.thresholds
        }

        fn analyze(&self, photo: &[u8]) -> Result<Analysis, EngineError> {
            self.analyze_cancellable(photo, &Cancel::new())
        }

        fn duplicate_line(&self) -> renzheng_vision::DuplicateLine {
            renzheng_vision::testing::TestEngine::new().duplicate_line()
        }

        fn analyze_cancellable(&self, _: &[u8], cancel: &Cancel) -> Result<Analysis, EngineError> {
            for _ in 0..500 {
                if cancel.is_cancelled() {
                    self.stopped_early.store(true, Ordering::SeqCst);
                    return Err(EngineError::Cancelled);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(EngineError::BadOutput("ran to the end".into()))
        }
    }

    #[tokio::test]
    async fn an_abandoned_analysis_stops_and_frees_its_slot() {
        let slow = Arc::new(Slow::default());
        let room = EngineRoom::new(EngineSource::Ready(slow.clone()), 1, &Limits::default());
        let abandoned =
            tokio::time::timeout(Duration::from_millis(100), room.analyze(vec![1])).await;
        assert!(abandoned.is_err(), "the request timed out");
        // The slot is back within a few of the engine's checks, not after its 5 s.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while room.gate().running() > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(room.gate().running(), 0, "the slot is still held");
        assert!(slow.stopped_early.load(Ordering::SeqCst));
    }
}
