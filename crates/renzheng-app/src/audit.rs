//! The audit sink: one record for every check of an authenticated caller, whatever
//! happened to it (refused credentials are counted in the metrics instead), kept for
//! `audit_retention_days`; and one event for
//! every mutation an operator makes. Writing either never fails a request: a lost record
//! is an operator alarm (logged as an error), not the caller's problem.

use renzheng_domain::{IdNumber, PersonName};
use renzheng_store::{
    AdminEvent, AdminEventRecord, AppId, AuditEntry, AuditRecord, ReservationId, Settle,
};

use crate::check::ResultCode;
use crate::{App, AppError};

/// Who makes an operator change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The `renzheng` command line.
    Cli,
    /// The admin API, in the request with this id.
    AdminApi {
        /// The request id (`X-Ca-Request-Id`).
        request_id: String,
    },
    /// An operator signed in to the console.
    Console {
        /// The operator's name.
        operator: String,
    },
}

impl Actor {
    pub(crate) fn name(&self) -> String {
        match self {
            Actor::Cli => "cli".into(),
            Actor::AdminApi { .. } => "admin-api".into(),
            Actor::Console { operator } => format!("console:{operator}"),
        }
    }

    pub(crate) fn request_id(&self) -> Option<&str> {
        match self {
            Actor::Cli | Actor::Console { .. } => None,
            Actor::AdminApi { request_id } => Some(request_id),
        }
    }
}

/// What the audit learns of one check. The edge that served it fills in how it was
/// answered (`status`, `error_code`), since only the edge knows its protocol.
#[derive(Debug, Clone)]
pub struct CheckRecord<'a> {
    /// When the request arrived, unix milliseconds.
    pub arrived_ms: i64,
    /// The request id (`taskNo`).
    pub request_id: String,
    /// The app, once authenticated.
    pub app_id: Option<AppId>,
    /// The name, once parsed.
    pub name: Option<&'a PersonName>,
    /// The ID number, once parsed.
    pub id_number: Option<&'a IdNumber>,
    /// The result, when the check had one.
    pub result: Option<ResultCode>,
    /// The score as answered (results 1–3).
    pub score: Option<f64>,
    /// The status answered (HTTP status for the server).
    pub status: u16,
    /// The machine code of a refusal.
    pub error_code: Option<&'static str>,
    /// Time spent, milliseconds.
    pub latency_ms: u64,
    /// The unit held by [`App::admit`], charged when `status` is 2xx and given back
    /// otherwise.
    pub reservation: Option<ReservationId>,
}

impl App {
    /// Records a check in the audit log (masked name and ID, keyed hash of the ID) and
    /// settles its unit, in one transaction; returns whether it was charged.
    ///
    /// A failure here is the caller's concern for a 2xx: an answer that could not be
    /// recorded (and charged) must not be given as a success, so the edge answers 503
    /// instead, and the held unit lapses back.
    pub async fn record_check(&self, record: CheckRecord<'_>) -> Result<bool, AppError> {
        if let Some(result) = record.result {
            tracing::info!(
                result = result.code(),
                score = record.score,
                name = record.name.map(PersonName::masked),
                id_number = record.id_number.map(IdNumber::masked),
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
        if let Some(name) = record.name {
            entry = entry.with_name(name);
        }
        if let Some(id) = record.id_number {
            entry = entry.with_id_number(id, &self.audit_key);
        }
        let succeeded = (200..300).contains(&record.status);
        let settle = match record.reservation {
            None => Settle::Nothing,
            Some(id) if succeeded => Settle::Charge(id),
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

    /// A new event by `actor`, stamped now.
    pub(crate) fn event(&self, actor: &Actor, action: &str) -> AdminEvent {
        let mut event = AdminEvent::new(self.clock.now_ms(), actor.name(), action);
        event.request_id = actor.request_id().map(str::to_owned);
        event
    }

    pub(crate) async fn record_event(&self, event: AdminEvent) {
        if let Err(e) = self.store.record_event(&event).await {
            tracing::error!(error = %e, action = %event.action, "could not write the operator event");
        }
    }

    /// The `limit` most recent audit records (masked), newest first.
    pub async fn recent_audit(&self, limit: u32) -> Result<Vec<AuditRecord>, AppError> {
        Ok(self.store.recent_audit(limit).await?)
    }

    /// Deletes the audit records older than `audit_retention_days` (nothing when it is 0);
    /// returns how many.
    pub async fn purge_expired_audit(&self) -> Result<u64, AppError> {
        let days = self.settings.audit_retention_days;
        if days == 0 {
            return Ok(0);
        }
        let before = self.now_ms() - i64::from(days) * 86_400_000;
        let purged = self.store.purge_audit_before(before).await?;
        if purged > 0 {
            tracing::info!(purged, days, "audit records past retention deleted");
        }
        Ok(purged)
    }

    /// Applies the audit retention now and then every hour, for as long as it is polled
    /// (the server runs it beside the listener). A failure is logged and retried next time.
    pub async fn run_audit_retention(&self) {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            every.tick().await;
            if let Err(e) = self.purge_expired_audit().await {
                tracing::error!(error = %e, "applying the audit retention failed");
            }
        }
    }

    /// The `limit` most recent operator events, newest first.
    pub async fn recent_events(&self, limit: u32) -> Result<Vec<AdminEventRecord>, AppError> {
        Ok(self.store.recent_events(limit).await?)
    }
}
