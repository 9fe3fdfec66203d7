//! ONNX Runtime: the one process-wide environment and fixed pools of sessions.
//!
//! `Session::run` needs `&mut self`, so concurrency comes from holding several sessions of
//! the same model; a request borrows one for the duration of one inference and blocks (off
//! the async runtime) while all are busy. Sessions are created once, at start-up — never per
//! request.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use crate::error::EngineError;
use crate::hash::sha256_file;

static ENVIRONMENT: OnceLock<(PathBuf, Environment)> = OnceLock::new();
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Loads `libonnxruntime.so` from `library` (once per process) and returns the environment.
///
/// ONNX Runtime allows one environment per process; asking again with the same library
/// returns it, asking with a different one is an error.
pub fn environment(library: &Path) -> Result<Environment, EngineError> {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((path, env)) = ENVIRONMENT.get() {
        // Two packs ship the same library from the same wheel: one loaded copy serves
        // both (a process may open an engine of each, e.g. to re-embed a registry).
        if path == library || same_file_contents(path, library) {
            return Ok(env.clone());
        }
        return Err(EngineError::Runtime(format!(
            "ONNX Runtime is already loaded from {} in this process; cannot load {}",
            path.display(),
            library.display()
        )));
    }
    if !library.is_file() {
        return Err(EngineError::pack(
            library,
            "ONNX Runtime library not found (run `renzheng models install`)",
        ));
    }
    let env = ort::init_from(library)
        .map_err(|e| EngineError::Runtime(format!("loading {}: {e}", library.display())))?
        .with_name("renzheng")
        .with_telemetry(false)
        .build()
        .map_err(|e| EngineError::Runtime(e.to_string()))?;
    let _ = ENVIRONMENT.set((library.to_path_buf(), env.clone()));
    Ok(env)
}

fn same_file_contents(a: &Path, b: &Path) -> bool {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
    size(a).is_some() && size(a) == size(b) && sha256_file(a).ok() == sha256_file(b).ok()
}

/// A fixed set of sessions of one model.
pub struct SessionPool {
    name: String,
    idle: Mutex<Vec<Session>>,
    returned: Condvar,
    size: usize,
}

impl std::fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionPool")
            .field("name", &self.name)
            .field("size", &self.size)
            .finish()
    }
}

impl SessionPool {
    /// Creates `size` sessions of the model in `model`, each using `intra_threads` threads.
    pub fn new(
        env: &Environment,
        model: &Path,
        size: usize,
        intra_threads: usize,
    ) -> Result<Self, EngineError> {
        let size = size.max(1);
        let mut sessions = Vec::with_capacity(size);
        for _ in 0..size {
            sessions.push(open_session(env, model, intra_threads)?);
        }
        Ok(Self {
            name: model
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            idle: Mutex::new(sessions),
            returned: Condvar::new(),
            size,
        })
    }

    /// Number of sessions.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs `f` with exclusive use of one session, waiting for one to be free.
    pub fn with<R>(&self, f: impl FnOnce(&mut Session) -> R) -> R {
        let session = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(s) = idle.pop() {
                    break s;
                }
                idle = self.returned.wait(idle).unwrap_or_else(|p| p.into_inner());
            }
        };
        // Put the session back even if `f` panics, so the pool never shrinks.
        struct Return<'a> {
            pool: &'a SessionPool,
            session: Option<Session>,
        }
        impl Drop for Return<'_> {
            fn drop(&mut self) {
                if let Some(s) = self.session.take() {
                    self.pool
                        .idle
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(s);
                    self.pool.returned.notify_one();
                }
            }
        }
        let mut guard = Return {
            pool: self,
            session: Some(session),
        };
        f(guard.session.as_mut().expect("set just above"))
    }
}

fn open_session(
    env: &Environment,
    model: &Path,
    intra_threads: usize,
) -> Result<Session, EngineError> {
    let err =
        |e: ort::Error<ort::session::builder::SessionBuilder>| EngineError::Runtime(e.to_string());
    let session = Session::builder(env)?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(err)?
        .with_intra_threads(intra_threads.max(1))
        .map_err(err)?
        .with_inter_threads(1)
        .map_err(err)?
        .commit_from_file(model)
        .map_err(|e| EngineError::pack(model, format!("cannot load model: {e}")))?;
    Ok(session)
}
