//! Admission to the face engine: loading it once, running its blocking work on the
//! blocking pool within the gate, and reporting what it did.

use std::sync::Arc;

use renzheng_vision::{Analysis, Engine, EngineConfig, FaceEngine, StageTimings};
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
    /// [`AppError::InvalidImage`].
    pub(crate) async fn analyze(&self, photo: Vec<u8>) -> Result<Analysis, AppError> {
        let analysis = self.run(move |engine| engine.analyze(&photo)).await??;
        self.observer.analysed(&analysis.timings);
        Ok(analysis)
    }
}
