//! A data subject's access request: everything held about one person, masked
//! (`renzheng registry report`, `docs/compliance.md`).

use renzheng_domain::IdNumber;
use serde::Serialize;

use crate::{App, AppError, PersonView, ProcessingLine};

/// Everything Renzheng holds about one person, masked: for a data subject's access request
/// (`renzheng registry report`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonReport {
    /// The person: masked name and number, portraits (dates, model), legal basis.
    pub person: PersonView,
    /// Their newest checks still in the audit (`audit.retention_days`), newest first.
    pub checks: Vec<ReportCheck>,
    /// The operator events about them, newest first.
    pub events: Vec<ReportEvent>,
    /// The processing records of their data (kept three years, longer than the audit),
    /// newest first.
    pub records: Vec<ProcessingLine>,
    /// How many of each list the report shows at most ([`REPORT_LIMIT`]).
    pub limit: u32,
}

/// One check of the person's ID number.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportCheck {
    /// When it arrived, unix milliseconds.
    pub at: i64,
    /// The day, `YYYY-MM-DD` in the operator's calendar.
    pub day: String,
    /// The calling app.
    pub app_id: Option<String>,
    /// The result code (1–8), when one was reached.
    pub result: Option<i64>,
    /// The HTTP status answered.
    pub http_status: u16,
}

/// One operator event about the person.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportEvent {
    /// When, unix milliseconds.
    pub at: i64,
    /// The day, `YYYY-MM-DD` in the operator's calendar.
    pub day: String,
    /// Who (`cli`, `admin-api`, `console:<operator>`).
    pub actor: String,
    /// What (`person.enrolled`, `person.renamed`, …).
    pub action: String,
    /// The event's detail (a basis kind, a count; never the person's data).
    pub detail: Option<String>,
    /// The operator's stated reason.
    pub reason: Option<String>,
}

/// The most checks, and the most events, a report lists.
pub const REPORT_LIMIT: u32 = 1_000;

impl App {
    /// What is held about `id` (`None`: not in the registry), masked; checks and events
    /// are found by the ID number's keyed hash under each audit key in force.
    pub async fn person_report(&self, id: &IdNumber) -> Result<Option<PersonReport>, AppError> {
        let Some(person) = self.person(id).await? else {
            return Ok(None);
        };
        let mut hashes = vec![id.keyed_hash(&self.audit_key)];
        hashes.extend(self.audit_legacy.as_deref().map(|k| id.keyed_hash(k)));
        let (checks, events) = self.store.person_trail(&hashes, REPORT_LIMIT).await?;
        let records = self
            .store
            .person_processing(&hashes, REPORT_LIMIT)
            .await?
            .iter()
            .map(|r| self.processing_line(r))
            .collect();
        Ok(Some(PersonReport {
            person,
            checks: checks
                .into_iter()
                .map(|c| ReportCheck {
                    day: self.local_day(c.at),
                    at: c.at,
                    app_id: c.app_id.map(|a| a.as_str().to_owned()),
                    result: c.result,
                    http_status: c.http_status,
                })
                .collect(),
            events: events
                .into_iter()
                .map(|e| ReportEvent {
                    day: self.local_day(e.at),
                    at: e.at,
                    actor: e.actor,
                    action: e.action,
                    detail: e.detail,
                    reason: e.reason,
                })
                .collect(),
            records,
            limit: REPORT_LIMIT,
        }))
    }
}
