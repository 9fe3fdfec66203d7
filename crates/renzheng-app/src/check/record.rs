//! The check record: one audit row for every check of a proven caller (or the console),
//! written in the transaction that settles its held unit. Only the
//! [`CheckTicket`](super::CheckTicket) builds one, so nothing else can record a check.

use renzheng_domain::{BasisKind, IdNumber, PersonName};
use renzheng_store::{AppId, AuditEntry, Processing, ProcessingAction, ReservationId, Settle};

use super::ResultCode;
use crate::{App, AppError};

/// What the audit learns of one check, built only by the [`CheckTicket`](super::CheckTicket). The edge that served it says how it was
/// answered (`status`, `error_code`), since only the edge knows its protocol.
pub(super) struct CheckRecord {
    /// When the request arrived, unix milliseconds.
    pub arrived_ms: i64,
    /// The request id (`taskNo`).
    pub request_id: String,
    /// The app, once authenticated (none for the console).
    pub app_id: Option<AppId>,
    /// The name and ID number, once parsed.
    pub identity: Option<(PersonName, IdNumber)>,
    /// The result, when the check was answered: only then is its unit charged.
    pub result: Option<ResultCode>,
    /// The score as answered (results 1–3).
    pub score: Option<f64>,
    /// The status answered (HTTP status for the server).
    pub status: u16,
    /// The machine code of a refusal.
    pub error_code: Option<&'static str>,
    /// Time spent, milliseconds.
    pub latency_ms: u64,
    /// The unit held by the admission, charged for an answer and given back otherwise.
    pub reservation: Option<ReservationId>,
    /// The legal basis on record for the person checked.
    pub basis: Option<BasisKind>,
}

impl App {
    /// Records a check in the audit log (masked name and ID, keyed hash of the ID) and
    /// settles its unit, in one transaction; returns whether it was charged.
    ///
    /// A failure here is the caller's concern for an answer: an answer that could not be
    /// recorded (and charged) must not be given as a success, so the edge refuses it
    /// instead, and the held unit lapses back.
    pub(super) async fn record_check(&self, record: CheckRecord) -> Result<bool, AppError> {
        let (name, id_number) = match &record.identity {
            Some((name, id)) => (Some(name), Some(id)),
            None => (None, None),
        };
        if let Some(result) = record.result {
            tracing::info!(
                result = result.code(),
                score = record.score,
                name = name.map(PersonName::masked),
                id_number = id_number.map(IdNumber::masked),
                "check completed"
            );
        }
        let mut entry = AuditEntry::new(
            record.arrived_ms,
            record.request_id,
            record.status,
            record.latency_ms,
        );
        entry.app_id = record.app_id;
        entry.result = record.result.map(|r| i64::from(r.code()));
        entry.score = record.score;
        entry.error_code = record.error_code.map(str::to_owned);
        if let Some(name) = name {
            entry = entry.with_name(name);
        }
        if let Some(id) = id_number {
            entry = entry.with_id_number(id, &self.audit_key);
            // Every answer about an enrolled person processed their record (7: there is none).
            if record.result.is_some_and(|r| r != ResultCode::UnknownId) {
                entry.processing = Some(Processing::about(
                    ProcessingAction::Checked,
                    id,
                    &self.audit_key,
                    record.basis,
                ));
            }
        }
        let answered = record.result.is_some();
        let settle = match record.reservation {
            None => Settle::Nothing,
            Some(id) if answered => Settle::Charge(id),
            Some(id) => Settle::Release(id),
        };
        match self.store.finish_check(&entry, settle).await {
            Ok(charged) => {
                if charged {
                    if let Some(app_id) = &entry.app_id {
                        self.alert_soon(app_id);
                    }
                }
                Ok(charged)
            }
            Err(e) => {
                tracing::error!(error = %e, "could not write the audit record");
                Err(e.into())
            }
        }
    }
}
