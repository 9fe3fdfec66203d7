//! The console's background jobs, by job id, for their progress pages: folder imports
//! and duplicate-face scans. Held by the router's state; written by the job's task, read
//! by its progress page.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use renzheng_app::{AppError, DuplicateReport, ImportSummary};

/// Finished jobs of one kind remembered for their progress pages, at most.
const JOBS_KEPT: usize = 32;

/// What the job table needs to know of a job.
pub trait Job: Clone {
    /// A job started at `now` (unix ms), with nothing done.
    fn started_at(now: i64) -> Self;
    /// When it started (unix ms).
    fn started(&self) -> i64;
    /// Whether it is over (done or failed).
    fn is_over(&self) -> bool;
}

/// Background jobs of one kind started from the console, by job id (this node's memory: a
/// progress page is served by the node that runs the job). At most [`JOBS_KEPT`] finished
/// jobs are remembered.
pub struct Jobs<J> {
    jobs: Mutex<HashMap<String, J>>,
}

impl<J> Default for Jobs<J> {
    fn default() -> Self {
        Jobs {
            jobs: Mutex::new(HashMap::new()),
        }
    }
}

/// Folder imports started from the console.
pub type ImportJobs = Jobs<ImportJob>;

/// Duplicate-face scans started from the console.
pub type DuplicateJobs = Jobs<DuplicateJob>;

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

impl Job for ImportJob {
    fn started_at(now: i64) -> Self {
        ImportJob {
            started: now,
            ..ImportJob::default()
        }
    }

    fn started(&self) -> i64 {
        self.started
    }

    fn is_over(&self) -> bool {
        self.finished.is_some()
    }
}

/// One duplicate-face scan's progress (its report holds masked ID numbers only: the
/// console never reveals).
#[derive(Clone, Default)]
pub struct DuplicateJob {
    /// When it started (unix ms).
    pub started: i64,
    /// 1: faces under two ID numbers; 2: persons whose own portraits disagree (0: not
    /// begun).
    pub pass: u8,
    /// Templates (pass 1) or persons (pass 2) done.
    pub done: usize,
    /// Of how many.
    pub total: usize,
    /// The report, or why the scan failed, once over.
    pub finished: Option<Result<Arc<DuplicateReport>, Arc<AppError>>>,
}

impl Job for DuplicateJob {
    fn started_at(now: i64) -> Self {
        DuplicateJob {
            started: now,
            ..DuplicateJob::default()
        }
    }

    fn started(&self) -> i64 {
        self.started
    }

    fn is_over(&self) -> bool {
        self.finished.is_some()
    }
}

impl<J: Job> Jobs<J> {
    /// Changes job `id` (if it is still remembered).
    pub fn update(&self, id: &str, f: impl FnOnce(&mut J)) {
        if let Ok(mut jobs) = self.jobs.lock() {
            if let Some(job) = jobs.get_mut(id) {
                f(job);
            }
        }
    }

    /// Job `id` as it is now.
    pub fn get(&self, id: &str) -> Option<J> {
        self.jobs.lock().ok()?.get(id).cloned()
    }

    /// The most recently started job, with its id.
    pub fn latest(&self) -> Option<(String, J)> {
        let jobs = self.jobs.lock().ok()?;
        jobs.iter()
            .max_by_key(|(_, j)| j.started())
            .map(|(k, j)| (k.clone(), j.clone()))
    }

    /// Remembers a new job started at `now`, forgetting the oldest finished one when
    /// [`JOBS_KEPT`] are remembered.
    pub fn start(&self, id: String, now: i64) {
        if let Ok(mut jobs) = self.jobs.lock() {
            Self::insert(&mut jobs, id, now);
        }
    }

    /// As [`start`](Self::start), unless a job is running: then nothing is started and
    /// the running job's id is the error (one job of this kind at a time).
    pub fn start_alone(&self, id: String, now: i64) -> Result<(), String> {
        let Ok(mut jobs) = self.jobs.lock() else {
            return Ok(());
        };
        if let Some(running) = jobs
            .iter()
            .filter(|(_, j)| !j.is_over())
            .max_by_key(|(_, j)| j.started())
            .map(|(k, _)| k.clone())
        {
            return Err(running);
        }
        Self::insert(&mut jobs, id, now);
        Ok(())
    }

    fn insert(jobs: &mut HashMap<String, J>, id: String, now: i64) {
        if jobs.len() >= JOBS_KEPT {
            // Forget the oldest finished one.
            if let Some(oldest) = jobs
                .iter()
                .filter(|(_, j)| j.is_over())
                .min_by_key(|(_, j)| j.started())
                .map(|(k, _)| k.clone())
            {
                jobs.remove(&oldest);
            }
        }
        jobs.insert(id, J::started_at(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_scan_at_a_time_and_at_most_the_kept_number_of_finished_jobs() {
        let jobs = DuplicateJobs::default();
        for i in 0..(JOBS_KEPT as i64 + 10) {
            let id = format!("job-{i}");
            assert_eq!(jobs.start_alone(id.clone(), i), Ok(()));
            assert_eq!(jobs.start_alone("another".into(), i), Err(id.clone()));
            jobs.update(&id, |j| {
                j.finished = Some(Err(Arc::new(AppError::Internal("x".into()))));
            });
        }
        assert_eq!(jobs.jobs.lock().unwrap().len(), JOBS_KEPT);
        assert!(jobs.get("job-0").is_none(), "the oldest is forgotten");
        assert!(jobs.get("another").is_none(), "never started");
        let (latest, _) = jobs.latest().unwrap();
        assert_eq!(latest, format!("job-{}", JOBS_KEPT as i64 + 9));
    }
}
