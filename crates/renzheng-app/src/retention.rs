//! How long things are kept: the registry's retention (`registry.retention_days`,
//! `registry.inactive_days`: persons purged with everything stored about them, each purge
//! an event and a processing record), the processing records' own retention
//! (`compliance.records_retention_days`, independent of the audit's), and the server's
//! hourly upkeep that applies them with the audit's.

use renzheng_store::{DuePerson, ProcessingAction, ProcessingRecord, RetentionCutoffs};
use serde::Serialize;

use crate::audit::Actor;
use crate::metering::csv_field;

use crate::{App, AppError};

const DAY_MS: i64 = 86_400_000;
/// Persons read (and purged) per page.
const PURGE_PAGE: u32 = 500;
/// The most processing records one page gives.
pub const MAX_RECORDS_PAGE: u32 = 5_000;

/// Why the retention has come to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PurgeReason {
    /// Enrolled (or their basis last renewed) more than `registry.retention_days` ago.
    Retention,
    /// Not checked for `registry.inactive_days`.
    Inactive,
}

impl PurgeReason {
    /// The word shown and recorded.
    pub fn as_str(self) -> &'static str {
        match self {
            PurgeReason::Retention => "retention",
            PurgeReason::Inactive => "inactive",
        }
    }
}

/// One person the retention has come to, masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PurgeLine {
    /// The person's handle (`p-…`).
    pub handle: String,
    /// The masked ID number.
    pub id_number: String,
    /// Why.
    pub reason: PurgeReason,
    /// Enrolment day (`YYYY-MM-DD`, the operator's calendar).
    pub enrolled_on: String,
    /// The last renewal of their legal basis, if any.
    pub basis_recorded_on: Option<String>,
    /// Their last check, if any.
    pub last_checked_on: Option<String>,
}

/// What a purge did (or, dry, would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PurgeReport {
    /// Nothing was removed: the persons listed are those a purge would remove now.
    pub dry_run: bool,
    /// `registry.retention_days` (0: off).
    pub retention_days: u32,
    /// `registry.inactive_days` (0: off).
    pub inactive_days: u32,
    /// The persons removed (or due), in the registry's order.
    pub persons: Vec<PurgeLine>,
}

/// A processing record, masked and keyed, for showing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProcessingLine {
    /// Its sequence number (the cursor of the next page).
    pub id: i64,
    /// When, ISO 8601 with the operator's offset (`2026-12-07T15:04:05+08:00`).
    pub at: String,
    /// `enrolled`, `portraits-added`, `renamed`, `replaced`, `basis-recorded`,
    /// `checked`, `removed` or `purged`.
    pub action: String,
    /// The masked ID number.
    pub person: String,
    /// The ID number's keyed hash (HMAC under the audit key): one person's records share
    /// it, and it tells nothing without the key.
    pub person_key: String,
    /// Who: `cli`, `admin-api`, `console:<operator>`, `service`, `app:<id>`, `console`.
    pub actor: String,
    /// `consent`, `law` or `contract`; null when none was on record.
    pub basis: Option<String>,
    /// A check's result code.
    pub result: Option<i64>,
}

/// The header of [`ProcessingLine`]s as CSV.
pub const RECORDS_CSV_HEADER: &str = "at,action,person,person_key,actor,basis,result\r\n";

impl ProcessingLine {
    /// The line as a CSV row (its fields are the service's own words: nothing to quote).
    pub fn csv_row(&self) -> String {
        format!(
            "{},{},{},{},{},{},{}\r\n",
            self.at,
            self.action,
            self.person,
            self.person_key,
            csv_field(&self.actor),
            self.basis.as_deref().unwrap_or(""),
            self.result.map(|r| r.to_string()).unwrap_or_default()
        )
    }
}

impl App {
    /// `YYYY-MM-DDTHH:MM:SS±HH:MM` of the instant `ms` in the operator's calendar.
    pub(crate) fn local_time(&self, ms: i64) -> String {
        crate::metering::iso_time(ms, self.settings.metering.utc_offset_minutes)
    }

    /// The registry's retention cut-offs now (both `None` when retention is off).
    pub fn retention_cutoffs(&self) -> RetentionCutoffs {
        let now = self.now_ms();
        let before = |days: u32| (days > 0).then(|| now - i64::from(days) * DAY_MS);
        RetentionCutoffs {
            enrolled_before: before(self.settings.registry.retention_days),
            inactive_before: before(self.settings.registry.inactive_days),
        }
    }

    fn purge_line(&self, due: &DuePerson, cutoffs: RetentionCutoffs) -> PurgeLine {
        let renewed = due.basis_at.unwrap_or(due.enrolled_at).max(due.enrolled_at);
        let reason = match cutoffs.enrolled_before {
            Some(before) if renewed < before => PurgeReason::Retention,
            _ => PurgeReason::Inactive,
        };
        PurgeLine {
            handle: due.handle.to_string(),
            id_number: due.id_number.masked(),
            reason,
            enrolled_on: self.local_day(due.enrolled_at),
            basis_recorded_on: due.basis_at.map(|at| self.local_day(at)),
            last_checked_on: due.last_checked_at.map(|at| self.local_day(at)),
        }
    }

    /// Removes every person the registry's retention has come to, each with everything
    /// stored about them (as [`App::remove_person`]), each an event (`person.purged`) and
    /// a processing record; `dry_run` only lists them. Nothing happens while both
    /// settings are 0.
    pub async fn purge_registry(
        &self,
        actor: &Actor,
        dry_run: bool,
    ) -> Result<PurgeReport, AppError> {
        let registry = self.settings.registry;
        let mut report = PurgeReport {
            dry_run,
            retention_days: registry.retention_days,
            inactive_days: registry.inactive_days,
            persons: Vec::new(),
        };
        let cutoffs = self.retention_cutoffs();
        if cutoffs == RetentionCutoffs::default() {
            return Ok(report);
        }
        let mut after = None;
        loop {
            let page = self
                .store
                .persons_due(cutoffs, after.as_ref(), PURGE_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id_number.clone());
            for due in &page {
                let line = self.purge_line(due, cutoffs);
                if !dry_run {
                    let detail = match line.reason {
                        PurgeReason::Retention => format!(
                            "registry.retention_days = {}: enrolled {}{}",
                            registry.retention_days,
                            line.enrolled_on,
                            line.basis_recorded_on
                                .as_ref()
                                .map(|d| format!(", basis recorded {d}"))
                                .unwrap_or_default()
                        ),
                        PurgeReason::Inactive => format!(
                            "registry.inactive_days = {}: last checked {}",
                            registry.inactive_days,
                            line.last_checked_on.as_deref().unwrap_or("never")
                        ),
                    };
                    match self
                        .remove_with_record(
                            actor,
                            &due.id_number,
                            ProcessingAction::Purged,
                            Some(detail),
                        )
                        .await
                    {
                        // Removed meanwhile by someone else: nothing left to purge.
                        Err(AppError::NotFound(_)) => continue,
                        Err(e) => return Err(e),
                        Ok(()) => {}
                    }
                }
                report.persons.push(line);
            }
        }
        if !dry_run && !report.persons.is_empty() {
            tracing::info!(
                purged = report.persons.len(),
                "persons purged by the registry's retention"
            );
        }
        Ok(report)
    }

    /// The bounds `[from, to)` in unix ms of the days `from` to `to` (`YYYY-MM-DD`, both
    /// inclusive, in the operator's calendar).
    pub fn day_range(&self, from: &str, to: &str) -> Result<(i64, i64), AppError> {
        let start = self.end_of_day_ms(from)? - DAY_MS;
        let end = self.end_of_day_ms(to)?;
        if end <= start {
            return Err(AppError::Invalid("`to` is before `from`".into()));
        }
        Ok((start, end))
    }

    /// A page of the processing records made in `[from_ms, to_ms)` after the record `after`
    /// (0: from the first), oldest first, at most `limit` ([`MAX_RECORDS_PAGE`]).
    pub async fn processing_records(
        &self,
        (from_ms, to_ms): (i64, i64),
        after: i64,
        limit: u32,
    ) -> Result<Vec<ProcessingLine>, AppError> {
        let limit = limit.clamp(1, MAX_RECORDS_PAGE);
        Ok(self
            .store
            .processing_records(from_ms, to_ms, after, limit)
            .await?
            .iter()
            .map(|r| self.processing_line(r))
            .collect())
    }

    pub(crate) fn processing_line(&self, record: &ProcessingRecord) -> ProcessingLine {
        ProcessingLine {
            id: record.id,
            at: self.local_time(record.at),
            action: record.action.as_str().to_owned(),
            person: record.person_masked.clone(),
            person_key: record.person_hash.clone(),
            actor: record.actor.clone(),
            basis: record.basis.map(|b| b.as_str().to_owned()),
            result: record.result,
        }
    }

    /// Deletes the processing records older than `compliance.records_retention_days`
    /// (nothing when it is 0); returns how many.
    pub async fn purge_expired_records(&self) -> Result<u64, AppError> {
        let days = self.settings.compliance.records_retention_days;
        if days == 0 {
            return Ok(0);
        }
        let before = self.now_ms() - i64::from(days) * DAY_MS;
        let purged = self.store.purge_processing_before(before).await?;
        if purged > 0 {
            tracing::info!(purged, days, "processing records past retention deleted");
        }
        Ok(purged)
    }

    /// The server's hourly upkeep, a minute after start and then every hour for as long
    /// as it is polled: the audit's retention, the processing records', the registry's (as
    /// [`Actor::Service`]), and a look at the filing line (which alerts the operator when
    /// it is crossed). The first round waits so that a node starts serving at once and a
    /// node restarted in a loop does not sweep in a loop. A failure is logged and retried
    /// next time.
    pub async fn run_retention(&self) {
        let hour = std::time::Duration::from_secs(3600);
        let first = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut every = tokio::time::interval_at(first, hour);
        loop {
            every.tick().await;
            self.apply_retention().await;
        }
    }

    /// One round of [`run_retention`](Self::run_retention).
    pub async fn apply_retention(&self) {
        if let Err(e) = self.purge_expired_audit().await {
            tracing::error!(error = %e, "applying the audit retention failed");
        }
        if let Err(e) = self.purge_expired_records().await {
            tracing::error!(error = %e, "applying the processing records' retention failed");
        }
        if let Err(e) = self.purge_registry(&Actor::Service, false).await {
            tracing::error!(error = %e, "applying the registry's retention failed");
        }
        if let Err(e) = self.compliance_status().await {
            tracing::error!(error = %e, "looking at the filing line failed");
        }
    }
}
