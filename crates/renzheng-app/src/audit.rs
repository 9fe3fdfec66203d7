//! The audit log's reading and retention (the check records themselves are written by
//! the check's ticket, `check/record.rs`), and one event for every mutation an operator
//! makes. Writing an event never fails a request: a lost event is an operator alarm
//! (logged as an error), not the caller's problem.

use renzheng_store::{AdminEvent, AdminEventRecord, AuditRecord};

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
    /// The service itself, by a setting (the registry's retention).
    Service,
}

impl Actor {
    pub(crate) fn name(&self) -> String {
        match self {
            Actor::Cli => "cli".into(),
            Actor::AdminApi { .. } => "admin-api".into(),
            Actor::Console { operator } => format!("console:{operator}"),
            Actor::Service => "service".into(),
        }
    }

    pub(crate) fn request_id(&self) -> Option<&str> {
        match self {
            Actor::Cli | Actor::Console { .. } | Actor::Service => None,
            Actor::AdminApi { request_id } => Some(request_id),
        }
    }
}

/// The most operator events one page holds.
pub const MAX_EVENT_PAGE: u32 = 500;

impl App {
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

    /// The `limit` most recent operator events, newest first.
    pub async fn recent_events(&self, limit: u32) -> Result<Vec<AdminEventRecord>, AppError> {
        Ok(self.store.recent_events(limit).await?)
    }

    /// The operator events `query` selects, newest first (a page of at most
    /// [`MAX_EVENT_PAGE`]).
    pub async fn events(
        &self,
        query: &renzheng_store::EventQuery,
    ) -> Result<Vec<AdminEventRecord>, AppError> {
        let query = renzheng_store::EventQuery {
            limit: query.limit.clamp(1, MAX_EVENT_PAGE),
            ..query.clone()
        };
        Ok(self.store.events_page(&query).await?)
    }
}
