//! Call packages, balances, the ledger, and the counters that must hold across nodes
//! (rate limits, per-ID attempts, signature nonces, balance alerts): the stored shapes.
//!
//! The rules live in the backends' SQL, so that they hold whichever node asks: a grant
//! can never be overdrawn (`used + reserved <= calls` is a table constraint), a unit is
//! reserved by one atomic statement, and a charge is written in the same transaction as
//! the audit row of the check it pays for.

use crate::AppId;

/// A package of calls in the operator's catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Short stable id, e.g. `c1000`.
    pub name: String,
    /// What the buyer sees, e.g. `165元/1000次`.
    pub title: String,
    /// Calls it adds to a balance.
    pub calls: i64,
    /// Price in 分 (0.01 元).
    pub price_fen: i64,
    /// Days its calls stay usable after the grant; `None`: they never expire.
    pub valid_days: Option<i64>,
    /// Retired packages cannot be granted any more.
    pub active: bool,
}

/// One purchase: calls added to an app's balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Its id.
    pub id: i64,
    /// The app that owns it.
    pub app_id: AppId,
    /// The package it came from, if any (`None`: a plain number of calls).
    pub package: Option<String>,
    /// Calls granted.
    pub calls: i64,
    /// Calls charged against it.
    pub used: i64,
    /// Calls held by checks in flight.
    pub reserved: i64,
    /// When its calls expire (unix ms); `None`: never.
    pub expires_at: Option<i64>,
    /// When it was granted (unix ms).
    pub created_at: i64,
    /// When its unused calls were taken back (unix ms); `None`: never revoked.
    pub revoked_at: Option<i64>,
}

impl Grant {
    /// Calls still available (neither charged nor held).
    pub fn available(&self) -> i64 {
        self.calls - self.used - self.reserved
    }

    /// Whether it has expired at `now_ms`.
    pub fn expired_at(&self, now_ms: i64) -> bool {
        self.expires_at.is_some_and(|e| e <= now_ms)
    }

    /// Whether it can lend units at `now_ms`: neither expired nor revoked.
    pub fn live_at(&self, now_ms: i64) -> bool {
        !self.expired_at(now_ms) && self.revoked_at.is_none()
    }
}

/// An operator's change to one grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantChange {
    /// Take back its unused calls now: it lends no more units (a check already holding
    /// one of them still settles against it).
    Revoke,
    /// Set its calls, its expiry, or both.
    Adjust {
        /// Its new number of calls: at least what is charged and held, and at least 1.
        calls: Option<i64>,
        /// Its new expiry (unix ms; `Some(None)`: never).
        expires_at: Option<Option<i64>>,
    },
}

/// What a grant change came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantChanged {
    /// Done; the ledger has its entry when the calls changed.
    Done {
        /// The grant before.
        before: Box<Grant>,
        /// The grant after.
        after: Box<Grant>,
    },
    /// The app has no grant of that id.
    NotFound,
    /// Refused: the grant was revoked already (a revoked grant does not change again).
    Revoked,
    /// Refused: fewer calls than are charged and held (`floor`).
    BelowCommitted {
        /// The fewest calls it can have now.
        floor: i64,
    },
}

/// An app's balance at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    /// Calls available now: unexpired grants, less what is charged or held.
    pub remaining: i64,
    /// Calls bought in the unexpired grants (the base of the alert threshold).
    pub purchased: i64,
    /// Calls charged so far, over every grant.
    pub charged: i64,
    /// Calls held by checks in flight.
    pub reserved: i64,
    /// Every grant, oldest expiry first (the order units are taken in).
    pub grants: Vec<Grant>,
}

/// A unit held for one check until it is charged or released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservationId(pub i64);

/// Why no unit could be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaRefusal {
    /// Nothing left (or nothing ever granted).
    Exhausted,
    /// Units are left, but only in expired grants.
    Expired,
}

/// The answer to a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// A unit is held.
    Held(ReservationId),
    /// None could be.
    Refused(QuotaRefusal),
}

/// How a finished check settles its reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// There was none (the check was refused before reserving).
    Nothing,
    /// Charge it: the check was answered.
    Charge(ReservationId),
    /// Give it back: the check failed.
    Release(ReservationId),
}

/// Which per-ID attempt window refused a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptWindow {
    /// The current minute.
    Minute,
    /// The current (UTC) day.
    Day,
}

/// A filter over the audit log, newest first, keyset-paged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this app's checks.
    pub app_id: Option<AppId>,
    /// Only checks that arrived at or after this time (unix ms).
    pub from_ms: Option<i64>,
    /// Only checks that arrived before this time (unix ms).
    pub to_ms: Option<i64>,
    /// Only this result code.
    pub result: Option<i64>,
    /// Only this HTTP status.
    pub http_status: Option<u16>,
    /// Only records older than this id (the last id of the previous page).
    pub before_id: Option<i64>,
    /// Only the check of this taskNo (its request id).
    pub task_no: Option<String>,
    /// Only checks of the ID number with these keyed hashes (one per audit key in
    /// force; at most two are looked at: the current key's and the legacy one's).
    pub id_hashes: Vec<String>,
    /// Page size.
    pub limit: u32,
}

/// Checks of one day and one result code (`None`: no result, an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    /// Days since 1970-01-01 in the requested UTC offset.
    pub day: i64,
    /// Result code, if the check reached one.
    pub result: Option<i64>,
    /// Checks.
    pub calls: i64,
    /// Of which answered with a 2xx.
    pub succeeded: i64,
    /// Of which charged.
    pub charged: i64,
}

/// What a balance alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// Remaining calls at or below the app's threshold.
    Low,
    /// Nothing left.
    Exhausted,
    /// Calls will expire soon.
    Expiring,
}

impl AlertKind {
    /// The stored (and posted) name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Low => "low",
            AlertKind::Exhausted => "exhausted",
            AlertKind::Expiring => "expiring",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "low" => Some(AlertKind::Low),
            "exhausted" => Some(AlertKind::Exhausted),
            "expiring" => Some(AlertKind::Expiring),
            _ => None,
        }
    }
}

/// A balance alert to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    /// When (unix ms).
    pub at: i64,
    /// For which app.
    pub app_id: AppId,
    /// About what.
    pub kind: AlertKind,
    /// The de-duplication period (e.g. the day number): one alert per app, kind and
    /// period, whichever node notices first.
    pub period: i64,
    /// Remaining calls when noticed.
    pub remaining: i64,
    /// Calls bought (unexpired) when noticed.
    pub purchased: i64,
}

/// A recorded alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    /// Its id.
    pub id: i64,
    /// The alert.
    pub alert: NewAlert,
    /// When its webhook was delivered, if it was.
    pub delivered_at: Option<i64>,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// The last delivery error.
    pub last_error: Option<String>,
}

/// Ledger totals against the audit log, for one app (the reconciliation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconciliation {
    /// Charge entries in the ledger.
    pub ledger_charges: i64,
    /// Calls granted in the ledger, net of adjustments and revocations.
    pub ledger_granted: i64,
    /// Audit rows marked charged.
    pub audit_charged: i64,
    /// Audit rows with a 2xx status.
    pub audit_succeeded: i64,
}
