//! The folder imports started from the console, by job id, for their progress pages.
//! Held by the router's state; written by the import task, read by the progress page.

use std::collections::HashMap;
use std::sync::Mutex;

use renzheng_app::ImportSummary;

/// Finished imports remembered for their progress pages, at most.
const JOBS_KEPT: usize = 32;

/// Folder imports started from the console, by job id (this node's memory: a progress
/// page is served by the node that runs the import).
#[derive(Default)]
pub struct ImportJobs {
    jobs: Mutex<HashMap<String, ImportJob>>,
}

/// One import's progress.
#[derive(Clone, Default)]
pub struct ImportJob {
    /// When it started (unix ms).
    pub started: i64,
    /// Items done.
    pub done: usize,
    /// Items in all.
    pub total: usize,
    /// Its summary, or why it failed, once over.
    pub finished: Option<Result<ImportSummary, String>>,
}

impl ImportJobs {
    /// Changes job `id` (if it is still remembered).
    pub fn update(&self, id: &str, f: impl FnOnce(&mut ImportJob)) {
        if let Ok(mut jobs) = self.jobs.lock() {
            if let Some(job) = jobs.get_mut(id) {
                f(job);
            }
        }
    }

    /// Job `id` as it is now.
    pub fn get(&self, id: &str) -> Option<ImportJob> {
        self.jobs.lock().ok()?.get(id).cloned()
    }

    /// Remembers a new job started at `now`, forgetting the oldest finished one when
    /// [`JOBS_KEPT`] are remembered.
    pub fn start(&self, id: String, now: i64) {
        let Ok(mut jobs) = self.jobs.lock() else {
            return;
        };
        if jobs.len() >= JOBS_KEPT {
            // Forget the oldest finished one.
            if let Some(oldest) = jobs
                .iter()
                .filter(|(_, j)| j.finished.is_some())
                .min_by_key(|(_, j)| j.started)
                .map(|(k, _)| k.clone())
            {
                jobs.remove(&oldest);
            }
        }
        jobs.insert(
            id,
            ImportJob {
                started: now,
                ..ImportJob::default()
            },
        );
    }
}
