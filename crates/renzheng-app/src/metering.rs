//! Metering: packages, grants, balances, the admission of a check (rate limit, quota),
//! the per-ID attempt limits, and the app's own history and usage.
//!
//! The rules, in the order a check meets them: the app's rate limit (403, "Throttled by
//! APP Flow Control") → a unit reserved from its oldest-expiring grant (403, "Quota
//! Exhausted" / "Quota Expired") → the check → its record charges the unit for an answer
//! (results 1–8) and gives it back otherwise, in the transaction that writes the audit row. So
//! only answered checks (the 2xx) are charged, nothing is charged twice, and the ledger reconciles with
//! the audit log by construction. A node that dies holding a unit gives it back when the
//! hold lapses (`metering.hold_ms`).
//!
//! A check refused at admission (throttled, or no quota) writes no audit row: it is only
//! counted ([`App::refused_checks`], the metric `renzheng_checks_refused_total`), so a
//! client hammering an app with no quota or a low rate cannot grow the database. The
//! app's own endpoints (`/v1/app/*`) have a small limit of their own
//! ([`App::admit_own_request`]), and the CSV export is read from the store a page at a
//! time ([`CallsCsv`]), never built whole in memory.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use renzheng_domain::IdNumber;
use renzheng_store::{
    AppId, AttemptWindow, AuditQuery, AuditRecord, Grant, GrantChange, GrantChanged, Package,
    QuotaRefusal, ReservationId, Reserved, Store, StoreError,
};
use serde::{Deserialize, Serialize};

use crate::audit::Actor;
use crate::{App, AppError, Caller, Rule};

pub(crate) const DAY_MS: i64 = 86_400_000;

/// The refusal of a grant's number of calls out of its range.
fn calls_range() -> AppError {
    Rule::Range {
        field: "calls",
        min: "1".into(),
        max: "100000000".into(),
    }
    .into()
}
/// The most records one history page holds.
pub const MAX_PAGE: u32 = 500;
/// The most records one CSV export holds.
pub const MAX_EXPORT: u32 = 100_000;

/// The app's own endpoints (`/v1/app/*`: balance, usage, history): one request every
/// 200 ms per app on average, 20 at once. Generous for a dashboard or a script paging
/// through its history, and a bound on what one AppCode can make the database read.
pub const OWN_API_INTERVAL_US: i64 = 200_000;
/// The burst of [`OWN_API_INTERVAL_US`].
pub const OWN_API_BURST: u32 = 20;
/// CSV exports (up to [`MAX_EXPORT`] rows each) of the app's own history: one a minute per
/// app on average, 3 at once, on top of [`OWN_API_INTERVAL_US`].
pub const OWN_EXPORT_INTERVAL_US: i64 = 60_000_000;
/// The burst of [`OWN_EXPORT_INTERVAL_US`].
pub const OWN_EXPORT_BURST: u32 = 3;

/// Why a check was refused at admission: counted, never audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmissionRefusal {
    /// No calls left (`Quota Exhausted`).
    QuotaExhausted,
    /// The remaining calls have expired (`Quota Expired`).
    QuotaExpired,
    /// The app's rate limit (`Throttled by APP Flow Control`).
    Throttled,
}

impl AdmissionRefusal {
    /// Every reason, in the order [`App::refused_checks`] reports them.
    pub const ALL: [AdmissionRefusal; 3] = [
        AdmissionRefusal::QuotaExhausted,
        AdmissionRefusal::QuotaExpired,
        AdmissionRefusal::Throttled,
    ];

    /// The reason as a metric label: `quota_exhausted`, `quota_expired` or `throttled`.
    pub fn label(self) -> &'static str {
        match self {
            AdmissionRefusal::QuotaExhausted => "quota_exhausted",
            AdmissionRefusal::QuotaExpired => "quota_expired",
            AdmissionRefusal::Throttled => "throttled",
        }
    }

    /// The admission refusal an error is, if it is one.
    pub fn of(error: &AppError) -> Option<Self> {
        match error {
            AppError::QuotaExhausted => Some(AdmissionRefusal::QuotaExhausted),
            AppError::QuotaExpired => Some(AdmissionRefusal::QuotaExpired),
            AppError::Throttled { .. } => Some(AdmissionRefusal::Throttled),
            _ => None,
        }
    }

    fn index(self) -> usize {
        match self {
            AdmissionRefusal::QuotaExhausted => 0,
            AdmissionRefusal::QuotaExpired => 1,
            AdmissionRefusal::Throttled => 2,
        }
    }
}

/// Checks refused at admission since this process started, per reason. In memory and per
/// node, like every other counter of the metrics: the scrape adds the nodes up.
#[derive(Debug, Default)]
pub(crate) struct RefusalCounts([AtomicU64; 3]);

impl RefusalCounts {
    pub(crate) fn add(&self, refusal: AdmissionRefusal) {
        self.0[refusal.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self, refusal: AdmissionRefusal) -> u64 {
        self.0[refusal.index()].load(Ordering::Relaxed)
    }
}

/// What a check holds once admitted: the unit it will be charged, when metering is on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Admission {
    /// The held unit.
    pub reservation: Option<ReservationId>,
}

/// A package of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PackageView {
    /// Short stable id (letters, digits, `-`, `_`; 1–32).
    pub name: String,
    /// What the buyer sees.
    pub title: String,
    /// Calls it adds.
    pub calls: i64,
    /// Price in 分 (0.01 元).
    pub price_fen: i64,
    /// Days its calls stay usable; `null`: forever.
    pub valid_days: Option<i64>,
    /// Retired packages cannot be granted.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

impl From<Package> for PackageView {
    fn from(p: Package) -> Self {
        PackageView {
            name: p.name,
            title: p.title,
            calls: p.calls,
            price_fen: p.price_fen,
            valid_days: p.valid_days,
            active: p.active,
        }
    }
}

impl PackageView {
    /// Longest package name (ASCII letters, digits, `-`, `_`).
    pub const MAX_NAME_LEN: usize = 32;
    /// Longest title, in characters.
    pub const MAX_TITLE_CHARS: usize = 100;
    /// The calls a package may add.
    pub const CALLS: RangeInclusive<i64> = 1..=100_000_000;
    /// Highest price, in 分.
    pub const MAX_PRICE_FEN: i64 = 10_000_000_000;
    /// The validity a package may have, in days.
    pub const VALID_DAYS: RangeInclusive<i64> = 1..=36_500;

    fn parse(self) -> Result<Package, AppError> {
        let name_ok = (1..=Self::MAX_NAME_LEN).contains(&self.name.len())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(AppError::Invalid(format!(
                "package name must be 1-{} letters, digits, '-' or '_'",
                Self::MAX_NAME_LEN
            )));
        }
        let title = self.title.trim();
        if title.is_empty() || title.chars().count() > Self::MAX_TITLE_CHARS {
            return Err(AppError::Invalid(format!(
                "package title must be 1-{} characters",
                Self::MAX_TITLE_CHARS
            )));
        }
        if !Self::CALLS.contains(&self.calls) {
            return Err(Rule::Range {
                field: "package calls",
                min: Self::CALLS.start().to_string(),
                max: Self::CALLS.end().to_string(),
            }
            .into());
        }
        if !(0..=Self::MAX_PRICE_FEN).contains(&self.price_fen) {
            return Err(Rule::Range {
                field: "package price_fen",
                min: "0".into(),
                max: Self::MAX_PRICE_FEN.to_string(),
            }
            .into());
        }
        if self
            .valid_days
            .is_some_and(|d| !Self::VALID_DAYS.contains(&d))
        {
            return Err(Rule::Range {
                field: "package valid_days",
                min: Self::VALID_DAYS.start().to_string(),
                max: Self::VALID_DAYS.end().to_string(),
            }
            .into());
        }
        Ok(Package {
            name: self.name,
            title: title.to_owned(),
            calls: self.calls,
            price_fen: self.price_fen,
            valid_days: self.valid_days,
            active: self.active,
        })
    }
}

/// What to grant: a package of the catalogue, or a number of calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// A package's name (its calls and validity).
    pub package: Option<String>,
    /// Or a number of calls (1 to 100000000).
    pub calls: Option<i64>,
    /// When the calls expire (unix ms); default: the package's validity, or never.
    pub expires_at: Option<i64>,
}

/// An operator's adjustment of one grant: its calls, its expiry, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GrantAdjustment {
    /// Its new number of calls (1 to 100000000, and at least what is charged and held).
    pub calls: Option<i64>,
    /// Its new expiry (unix ms, in the future).
    pub expires_at: Option<i64>,
    /// Its calls never expire (not with `expires_at`).
    #[serde(default)]
    pub never_expires: bool,
}

/// One grant, for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GrantView {
    /// Its id.
    pub grant_id: i64,
    /// The package, if any.
    pub package: Option<String>,
    /// Calls granted.
    pub calls: i64,
    /// Calls charged.
    pub used: i64,
    /// Calls held by checks in flight.
    pub reserved: i64,
    /// Calls left (0 once expired).
    pub remaining: i64,
    /// When they expire (unix ms), if ever.
    pub expires_at: Option<i64>,
    /// Whether they have.
    pub expired: bool,
    /// When granted (unix ms).
    pub created_at: i64,
    /// When its unused calls were taken back (unix ms), if they were.
    pub revoked_at: Option<i64>,
}

pub(crate) fn grant_view(g: Grant, now_ms: i64) -> GrantView {
    let expired = g.expired_at(now_ms);
    GrantView {
        grant_id: g.id,
        remaining: if g.live_at(now_ms) { g.available() } else { 0 },
        revoked_at: g.revoked_at,
        package: g.package,
        calls: g.calls,
        used: g.used,
        reserved: g.reserved,
        expires_at: g.expires_at,
        expired,
        created_at: g.created_at,
    }
}

/// An app's balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BalanceView {
    /// The app.
    pub app_id: String,
    /// Calls available now.
    pub remaining: i64,
    /// Calls bought in the unexpired grants.
    pub purchased: i64,
    /// Calls charged so far.
    pub charged: i64,
    /// Calls held by checks in flight.
    pub reserved: i64,
    /// The alert threshold, percent of `purchased`.
    pub alert_percent: u8,
    /// Every grant, in the order they are used (oldest expiry first).
    pub grants: Vec<GrantView>,
    /// The ledger against the audit log over the audit's retention period.
    pub ledger: LedgerCheck,
}

/// The reconciliation of the append-only ledger with the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerCheck {
    /// From when (unix ms; the audit's retention limit, or 0).
    pub since: i64,
    /// Charges in the ledger.
    pub ledger_charges: i64,
    /// Audit records marked charged.
    pub audit_charged: i64,
    /// Whether they are equal (always, unless the database was edited by hand).
    pub consistent: bool,
}

/// One day of an app's checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageDay {
    /// The day, `YYYY-MM-DD`, in `metering.utc_offset_minutes`.
    pub date: String,
    /// Checks.
    pub calls: i64,
    /// Answered with a 2xx.
    pub succeeded: i64,
    /// Charged.
    pub charged: i64,
    /// Checks per result code ("1"–"8"), of those that reached one.
    pub results: BTreeMap<String, i64>,
    /// Checks refused or failed (no result code).
    pub errors: i64,
}

/// An app's usage over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageView {
    /// The app (`null`: every app).
    pub app_id: Option<String>,
    /// Calls available now (of this app).
    pub remaining: Option<i64>,
    /// Calls charged in the period.
    pub charged: i64,
    /// Checks in the period.
    pub calls: i64,
    /// Day by day, oldest first (days without checks left out).
    pub days: Vec<UsageDay>,
}

/// One call in the history (masked).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallView {
    /// Its sequence number (page with `before`).
    pub id: i64,
    /// When it arrived (unix ms).
    pub at: i64,
    /// The taskNo answered.
    pub task_no: String,
    /// The app.
    pub app_id: Option<String>,
    /// The result code 1–8, when reached.
    pub result: Option<i64>,
    /// The score answered.
    pub score: Option<f64>,
    /// The HTTP status answered.
    pub http_status: u16,
    /// Whether it was charged.
    pub charged: bool,
    /// Time taken, ms.
    pub latency_ms: u64,
    /// The error code of a refusal.
    pub error_code: Option<String>,
    /// The name, masked (`张*`).
    pub name: Option<String>,
    /// The ID number, masked.
    pub id_card: Option<String>,
}

impl From<AuditRecord> for CallView {
    fn from(r: AuditRecord) -> Self {
        CallView {
            id: r.id,
            at: r.at,
            task_no: r.request_id,
            app_id: r.app_id.map(|a| a.to_string()),
            result: r.result,
            score: r.score,
            http_status: r.http_status,
            charged: r.charged,
            latency_ms: r.latency_ms,
            error_code: r.error_code,
            name: r.name_masked,
            id_card: r.id_masked,
        }
    }
}

/// A history filter, as the edges receive it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    /// From this day (`YYYY-MM-DD`, inclusive), in the usage offset.
    pub from: Option<String>,
    /// To this day (inclusive).
    pub to: Option<String>,
    /// Only this result code.
    pub result: Option<i64>,
    /// Only this HTTP status.
    pub status: Option<u16>,
    /// Only calls older than this id.
    pub before: Option<i64>,
    /// Only the call of this taskNo.
    pub task_no: Option<String>,
    /// Only the calls about this ID number (found by its keyed hash under each audit key
    /// in force; the console asks this from a posted form, never from a URL).
    pub id_number: Option<renzheng_domain::IdNumber>,
    /// Page size (default 50, at most 500).
    pub limit: Option<u32>,
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn parse_day(text: &str) -> Result<i64, AppError> {
    let invalid = || AppError::from(Rule::NotADate(text.to_owned()));
    let mut parts = text.splitn(3, '-');
    let mut num = |digits: usize| -> Result<i64, AppError> {
        let part = parts.next().ok_or_else(invalid)?;
        if part.len() != digits || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        part.parse().map_err(|_| invalid())
    };
    let (y, m, d) = (num(4)?, num(2)?, num(2)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return Err(invalid());
    }
    Ok(days_from_civil(y, m, d))
}

/// Howard Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DDTHH:MM:SS±HH:MM` (ISO 8601): the instant `ms` (unix milliseconds) at
/// `offset_minutes` east of UTC.
pub fn iso_time(ms: i64, offset_minutes: i32) -> String {
    let local = ms + i64::from(offset_minutes) * 60_000;
    let secs = local.rem_euclid(DAY_MS) / 1000;
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let off = offset_minutes.unsigned_abs();
    format!(
        "{}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
        format_day(local.div_euclid(DAY_MS)),
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        off / 60,
        off % 60
    )
}

/// `YYYY-MM-DD` of days since 1970-01-01 (Hinnant's `civil_from_days`).
pub fn format_day(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

impl App {
    fn offset_ms(&self) -> i64 {
        i64::from(self.settings.metering.utc_offset_minutes) * 60_000
    }

    /// The end of a `YYYY-MM-DD` day in the usage offset (unix ms, exclusive): calls that
    /// expire "on 2027-01-31" can be used through that day.
    pub fn end_of_day_ms(&self, date: &str) -> Result<i64, AppError> {
        Ok((parse_day(date)? + 1) * DAY_MS - self.offset_ms())
    }

    /// Admits a check of `caller` before any work: its rate limit, then one unit of its
    /// quota held (when metering is on).
    pub(crate) async fn admit(&self, caller: &Caller) -> Result<Admission, AppError> {
        let now = self.now_ms();
        if let Some(rate) = caller.policy.rate_per_sec {
            let interval_us = (1_000_000.0 / rate).round().max(1.0) as i64;
            let burst = caller.policy.rate_burst.unwrap_or(1).max(1);
            if let Some(retry_after_ms) = self
                .store
                .take_rate(&caller.app_id, now, interval_us, burst)
                .await?
            {
                return Err(AppError::Throttled { retry_after_ms });
            }
        }
        if !self.settings.metering.enabled {
            return Ok(Admission::default());
        }
        let hold = i64::try_from(self.settings.metering.hold_ms).unwrap_or(i64::MAX);
        match self.store.reserve_unit(&caller.app_id, now, hold).await? {
            Reserved::Held(id) => Ok(Admission {
                reservation: Some(id),
            }),
            Reserved::Refused(QuotaRefusal::Exhausted) => {
                self.alert_soon_after_refusal(&caller.app_id);
                Err(AppError::QuotaExhausted)
            }
            Reserved::Refused(QuotaRefusal::Expired) => {
                self.alert_soon_after_refusal(&caller.app_id);
                Err(AppError::QuotaExpired)
            }
        }
    }

    /// Counts a check refused at admission (it writes no audit row).
    pub(crate) fn count_refused_check(&self, refusal: AdmissionRefusal) {
        self.alerts.refused_checks.add(refusal);
    }

    /// Checks refused at admission by this node since it started, per reason (every
    /// reason, in [`AdmissionRefusal::ALL`]'s order, zeros included), for the metrics.
    pub fn refused_checks(&self) -> [(AdmissionRefusal, u64); 3] {
        AdmissionRefusal::ALL.map(|r| (r, self.alerts.refused_checks.get(r)))
    }

    /// Admits a request of `caller` to its own endpoints (`/v1/app/*`): at most one
    /// every [`OWN_API_INTERVAL_US`] on average ([`OWN_API_BURST`] at once), and for a CSV
    /// `export` also one every [`OWN_EXPORT_INTERVAL_US`] ([`OWN_EXPORT_BURST`] at once);
    /// [`AppError::Throttled`] beyond. A budget of its own, apart from the checks' rate
    /// limit, so reading the history never throttles the checks; nothing is charged.
    pub async fn admit_own_request(&self, caller: &Caller, export: bool) -> Result<(), AppError> {
        let now = self.now_ms();
        // Keys of their own in the rate table: no app id has a colon.
        let key = AppId::from(format!("app-api:{}", caller.app_id));
        if let Some(retry_after_ms) = self
            .store
            .take_rate(&key, now, OWN_API_INTERVAL_US, OWN_API_BURST)
            .await?
        {
            return Err(AppError::Throttled { retry_after_ms });
        }
        if export {
            let key = AppId::from(format!("app-export:{}", caller.app_id));
            if let Some(retry_after_ms) = self
                .store
                .take_rate(&key, now, OWN_EXPORT_INTERVAL_US, OWN_EXPORT_BURST)
                .await?
            {
                return Err(AppError::Throttled { retry_after_ms });
            }
        }
        Ok(())
    }

    /// Counts a check of `id` by `caller` against `limits.per_id_per_minute` and
    /// `limits.per_id_per_day`; refused (not counted) when a window is full.
    pub(crate) async fn limit_attempts(
        &self,
        caller: &Caller,
        id: &IdNumber,
    ) -> Result<(), AppError> {
        let limits = &self.settings.limits;
        if limits.per_id_per_minute == 0 && limits.per_id_per_day == 0 {
            return Ok(());
        }
        let now = self.now_ms();
        let hash = id.keyed_hash(&self.audit_key);
        match self
            .store
            .count_attempt(
                &caller.app_id,
                &hash,
                now,
                limits.per_id_per_minute,
                limits.per_id_per_day,
            )
            .await?
        {
            None => Ok(()),
            Some(window) => {
                let span = match window {
                    AttemptWindow::Minute => 60_000,
                    AttemptWindow::Day => DAY_MS,
                };
                Err(AppError::TooManyAttempts {
                    window,
                    retry_after_ms: span - now.rem_euclid(span),
                })
            }
        }
    }

    /// The catalogue, by price.
    pub async fn packages(&self) -> Result<Vec<PackageView>, AppError> {
        Ok(self
            .store
            .list_packages()
            .await?
            .into_iter()
            .map(PackageView::from)
            .collect())
    }

    /// Adds or replaces a package of the catalogue.
    pub async fn put_package(
        &self,
        actor: &Actor,
        package: PackageView,
    ) -> Result<PackageView, AppError> {
        let package = package.parse()?;
        self.store.put_package(&package).await?;
        let mut event = self.event(actor, "package.saved");
        event.detail = Some(format!(
            "{} calls={} price_fen={} active={}",
            package.name, package.calls, package.price_fen, package.active
        ));
        self.record_event(event).await;
        Ok(package.into())
    }

    /// Adds calls to an app's balance: a package's (its validity unless `expires_at` says
    /// otherwise) or a plain number.
    pub async fn grant(
        &self,
        actor: &Actor,
        app_id: &AppId,
        request: GrantRequest,
    ) -> Result<GrantView, AppError> {
        let now = self.now_ms();
        let (package, calls, valid_days) = match (&request.package, request.calls) {
            (Some(name), None) => {
                let package = self
                    .store
                    .get_package(name)
                    .await?
                    .ok_or(AppError::NotFound("package"))?;
                if !package.active {
                    return Err(Rule::PackageRetired(package.name).into());
                }
                (Some(package.name), package.calls, package.valid_days)
            }
            (None, Some(calls)) if (1..=100_000_000).contains(&calls) => (None, calls, None),
            (None, Some(_)) => return Err(calls_range()),
            _ => return Err(Rule::PackageOrCalls.into()),
        };
        let expires_at = match request.expires_at {
            Some(at) if at <= now => {
                return Err(Rule::InPast("expires_at").into());
            }
            Some(at) => Some(at),
            None => valid_days.map(|d| now + d * DAY_MS),
        };
        let grant = match self
            .store
            .grant(app_id, package.as_deref(), calls, expires_at, now)
            .await
        {
            Ok(grant) => grant,
            Err(StoreError::NotFound(_)) => return Err(AppError::NotFound("app")),
            Err(e) => return Err(e.into()),
        };
        tracing::info!(app_id = %app_id, calls, "calls granted");
        let mut event = self.event(actor, "app.granted");
        event.app_id = Some(app_id.clone());
        event.detail = Some(format!(
            "package={} calls={calls} expires_at={expires_at:?}",
            package.as_deref().unwrap_or("-")
        ));
        self.record_event(event).await;
        Ok(grant_view(grant, now))
    }

    /// Takes back the unused calls of grant `grant_id` of the app (a grant made by
    /// mistake, a refund): it lends no more units, a check holding one of them still
    /// settles, and the ledger records the calls taken back.
    pub async fn revoke_grant(
        &self,
        actor: &Actor,
        app_id: &AppId,
        grant_id: i64,
    ) -> Result<GrantView, AppError> {
        self.change_grant(actor, app_id, grant_id, GrantChange::Revoke)
            .await
    }

    /// Changes the calls or the expiry of grant `grant_id` of the app (a correction, an
    /// extension): never below what is charged and held; the ledger records the change
    /// of calls.
    pub async fn adjust_grant(
        &self,
        actor: &Actor,
        app_id: &AppId,
        grant_id: i64,
        adjustment: GrantAdjustment,
    ) -> Result<GrantView, AppError> {
        let now = self.now_ms();
        if let Some(calls) = adjustment.calls {
            if !(1..=100_000_000).contains(&calls) {
                return Err(calls_range());
            }
        }
        let expires_at = match (adjustment.expires_at, adjustment.never_expires) {
            (Some(_), true) => return Err(Rule::ExpiryAndNever.into()),
            (Some(at), false) if at <= now => {
                return Err(Rule::InPast("expires_at").into());
            }
            (Some(at), false) => Some(Some(at)),
            (None, true) => Some(None),
            (None, false) => None,
        };
        if adjustment.calls.is_none() && expires_at.is_none() {
            return Err(Rule::NothingToChange.into());
        }
        let change = GrantChange::Adjust {
            calls: adjustment.calls,
            expires_at,
        };
        self.change_grant(actor, app_id, grant_id, change).await
    }

    async fn change_grant(
        &self,
        actor: &Actor,
        app_id: &AppId,
        grant_id: i64,
        change: GrantChange,
    ) -> Result<GrantView, AppError> {
        self.existing_app(app_id).await?;
        let now = self.now_ms();
        let (before, after) = match self
            .store
            .change_grant(app_id, grant_id, change, now)
            .await?
        {
            GrantChanged::Done { before, after } => (*before, *after),
            GrantChanged::NotFound => return Err(AppError::NotFound("grant")),
            GrantChanged::Revoked => return Err(AppError::GrantRevoked),
            GrantChanged::BelowCommitted { floor } => {
                return Err(AppError::GrantBelowCommitted { floor })
            }
        };
        if before == after {
            // An adjustment to what it already was: nothing to record.
            return Ok(grant_view(after, now));
        }
        let (action, detail) = match change {
            GrantChange::Revoke => (
                "app.grant-revoked",
                format!(
                    "grant={grant_id} calls_taken_back={}",
                    before.calls - before.used - before.reserved
                ),
            ),
            GrantChange::Adjust { .. } => (
                "app.grant-adjusted",
                format!(
                    "grant={grant_id} calls={}->{} expires_at={:?}->{:?}",
                    before.calls, after.calls, before.expires_at, after.expires_at
                ),
            ),
        };
        tracing::info!(app_id = %app_id, grant_id, action, "grant changed");
        let mut event = self.event(actor, action);
        event.app_id = Some(app_id.clone());
        event.detail = Some(detail);
        self.record_event(event).await;
        Ok(grant_view(after, now))
    }

    /// The first millisecond of day `date` (`YYYY-MM-DD`) in the operator's offset, unix
    /// ms (the start of a date filter).
    pub fn start_of_day(&self, date: &str) -> Result<i64, AppError> {
        Ok(parse_day(date.trim())? * DAY_MS - self.offset_ms())
    }

    /// The last millisecond of day `date` (`YYYY-MM-DD`) in the operator's offset, unix
    /// ms: when calls granted "until that day" expire (the console's custom grant).
    pub fn end_of_day(&self, date: &str) -> Result<i64, AppError> {
        Ok((parse_day(date.trim())? + 1) * DAY_MS - self.offset_ms() - 1)
    }

    /// An app's balance now.
    pub async fn balance(&self, app_id: &AppId) -> Result<BalanceView, AppError> {
        let app = self.existing_app(app_id).await?;
        let now = self.now_ms();
        let balance = self.store.balance(app_id, now).await?;
        let since = match self.settings.audit_retention_days {
            0 => 0,
            // Records this old may have been purged from the audit (the ledger keeps them).
            days => now - i64::from(days) * DAY_MS + DAY_MS,
        };
        let rec = self.store.reconcile(app_id, since).await?;
        Ok(BalanceView {
            ledger: LedgerCheck {
                since,
                ledger_charges: rec.ledger_charges,
                audit_charged: rec.audit_charged,
                consistent: rec.ledger_charges == rec.audit_charged,
            },
            app_id: app_id.to_string(),
            remaining: balance.remaining,
            purchased: balance.purchased,
            charged: balance.charged,
            reserved: balance.reserved,
            alert_percent: app.policy.alert_percent,
            grants: balance
                .grants
                .into_iter()
                .map(|g| grant_view(g, now))
                .collect(),
        })
    }

    /// Checks per day over `[from, to]` (dates; default: the last 30 days), of one app or
    /// of all.
    pub async fn usage(
        &self,
        app_id: Option<&AppId>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<UsageView, AppError> {
        let remaining = match app_id {
            Some(id) => {
                self.existing_app(id).await?;
                Some(self.store.balance(id, self.now_ms()).await?.remaining)
            }
            None => None,
        };
        let offset = self.offset_ms();
        let today = (self.now_ms() + offset).div_euclid(DAY_MS);
        let to_day = to.map(parse_day).transpose()?.unwrap_or(today);
        let from_day = from.map(parse_day).transpose()?.unwrap_or(to_day - 29);
        if from_day > to_day || to_day - from_day > 3660 {
            return Err(AppError::Invalid(
                "from must not be after to, and at most 10 years before it".into(),
            ));
        }
        let rows = self
            .store
            .usage(
                app_id,
                from_day * DAY_MS - offset,
                (to_day + 1) * DAY_MS - offset,
                offset,
            )
            .await?;
        let mut days: BTreeMap<i64, UsageDay> = BTreeMap::new();
        for row in rows {
            let day = days.entry(row.day).or_insert_with(|| UsageDay {
                date: format_day(row.day),
                calls: 0,
                succeeded: 0,
                charged: 0,
                results: BTreeMap::new(),
                errors: 0,
            });
            day.calls += row.calls;
            day.succeeded += row.succeeded;
            day.charged += row.charged;
            match row.result {
                Some(code) => *day.results.entry(code.to_string()).or_default() += row.calls,
                None => day.errors += row.calls,
            }
        }
        let days: Vec<UsageDay> = days.into_values().collect();
        Ok(UsageView {
            app_id: app_id.map(|a| a.to_string()),
            remaining,
            charged: days.iter().map(|d| d.charged).sum(),
            calls: days.iter().map(|d| d.calls).sum(),
            days,
        })
    }

    fn audit_query(
        &self,
        app_id: Option<&AppId>,
        filter: &CallFilter,
        limit: u32,
    ) -> Result<AuditQuery, AppError> {
        let offset = self.offset_ms();
        let from = filter.from.as_deref().map(parse_day).transpose()?;
        let to = filter.to.as_deref().map(parse_day).transpose()?;
        if let Some(result) = filter.result {
            if !(1..=8).contains(&result) {
                return Err(AppError::Invalid("result must be 1 to 8".into()));
            }
        }
        let task_no = filter
            .task_no
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        if task_no.is_some_and(|t| t.len() > 128) {
            return Err(AppError::Invalid(
                "a taskNo has at most 128 characters".into(),
            ));
        }
        let id_hashes = filter.id_number.as_ref().map_or_else(Vec::new, |id| {
            let mut hashes = vec![id.keyed_hash(&self.audit_key)];
            hashes.extend(self.audit_legacy.as_deref().map(|k| id.keyed_hash(k)));
            hashes
        });
        Ok(AuditQuery {
            task_no: task_no.map(str::to_owned),
            id_hashes,
            app_id: app_id.cloned(),
            from_ms: from.map(|d| d * DAY_MS - offset),
            to_ms: to.map(|d| (d + 1) * DAY_MS - offset),
            result: filter.result,
            http_status: filter.status,
            before_id: filter.before,
            limit,
        })
    }

    /// A page of calls, newest first, masked; of one app or of all.
    pub async fn calls(
        &self,
        app_id: Option<&AppId>,
        filter: &CallFilter,
    ) -> Result<Vec<CallView>, AppError> {
        let limit = filter.limit.unwrap_or(50);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(AppError::Invalid(format!("limit must be 1 to {MAX_PAGE}")));
        }
        let query = self.audit_query(app_id, filter, limit)?;
        Ok(self
            .store
            .audit_page(&query)
            .await?
            .into_iter()
            .map(CallView::from)
            .collect())
    }

    /// The calls matching `filter` as CSV (newest first, at most 100,000, masked), whole.
    /// Only for the operator's console; the API streams [`calls_csv_export`](Self::calls_csv_export).
    pub async fn calls_csv(
        &self,
        app_id: Option<&AppId>,
        filter: &CallFilter,
    ) -> Result<String, AppError> {
        let mut export = self.calls_csv_export(app_id, filter)?;
        let mut out = String::new();
        while let Some(chunk) = export.next_chunk().await? {
            out.push_str(&chunk);
        }
        Ok(out)
    }

    /// The calls matching `filter` as CSV (newest first, at most [`MAX_EXPORT`], masked),
    /// to be read a page at a time with [`CallsCsv::next_chunk`]. The filter is checked
    /// here, so a bad one is refused before anything is sent.
    pub fn calls_csv_export(
        &self,
        app_id: Option<&AppId>,
        filter: &CallFilter,
    ) -> Result<CallsCsv, AppError> {
        Ok(CallsCsv {
            store: self.store.clone(),
            query: self.audit_query(app_id, filter, MAX_PAGE)?,
            offset_minutes: self.settings.metering.utc_offset_minutes,
            written: 0,
            header_sent: false,
            done: false,
        })
    }

    /// Gives back lapsed holds and forgets expired nonces and attempt windows, every 30
    /// seconds, for as long as the server runs.
    pub async fn run_metering_upkeep(&self) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
        loop {
            tick.tick().await;
            if let Err(e) = self.store.purge_expired(self.now_ms()).await {
                tracing::warn!(error = %e, "metering upkeep failed");
            }
        }
    }

    /// Calls left now in each enabled app's unexpired grants (what a check can still
    /// use; held units count as used), for the metrics scrape: at most `limit` apps,
    /// oldest first, and the number of enabled apps in all. Disabled apps are left out,
    /// as the alert scan leaves them out: they cannot call, so their quota is nobody's
    /// alarm. One balance query per app, without [`balance`](Self::balance)'s ledger
    /// reconciliation, which a scrape has no use for.
    pub async fn remaining_quotas(
        &self,
        limit: usize,
    ) -> Result<(Vec<(AppId, i64)>, usize), AppError> {
        let now = self.now_ms();
        let enabled: Vec<AppId> = self
            .store
            .list_apps()
            .await?
            .into_iter()
            .filter(|a| a.enabled)
            .map(|a| a.id)
            .collect();
        let mut quotas = Vec::with_capacity(enabled.len().min(limit));
        for id in enabled.iter().take(limit) {
            let remaining = self.store.balance(id, now).await?.remaining;
            quotas.push((id.clone(), remaining));
        }
        Ok((quotas, enabled.len()))
    }
}

/// A CSV export of calls in progress ([`App::calls_csv_export`]): the header, then one
/// chunk per page of at most [`MAX_PAGE`] rows read from the store, until [`MAX_EXPORT`]
/// rows or the end. Holds one page at a time, whatever the export's size.
pub struct CallsCsv {
    store: Arc<dyn Store>,
    query: AuditQuery,
    /// Times are written in this offset (`metering.utc_offset_minutes`).
    offset_minutes: i32,
    written: u32,
    header_sent: bool,
    done: bool,
}

impl std::fmt::Debug for CallsCsv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallsCsv")
            .field("written", &self.written)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl CallsCsv {
    /// The columns, the first line of every export, after a UTF-8 byte-order mark (Excel on
    /// a Chinese Windows reads a file without one as GBK and garbles the names). `at` is
    /// ISO 8601 with the operator's offset.
    pub const HEADER: &'static str =
        "\u{feff}id,at,task_no,app_id,result,score,http_status,charged,latency_ms,error_code,name,id_card\n";

    /// The next chunk of the export (the header first, then a page of rows); `None` once
    /// it is complete.
    pub async fn next_chunk(&mut self) -> Result<Option<String>, AppError> {
        if !self.header_sent {
            self.header_sent = true;
            return Ok(Some(Self::HEADER.to_owned()));
        }
        if self.done || self.written >= MAX_EXPORT {
            return Ok(None);
        }
        self.query.limit = MAX_PAGE.min(MAX_EXPORT - self.written);
        let page = self.store.audit_page(&self.query).await?;
        let Some(last) = page.last() else {
            self.done = true;
            return Ok(None);
        };
        self.query.before_id = Some(last.id);
        if page.len() < self.query.limit as usize {
            self.done = true;
        }
        let mut out = String::with_capacity(page.len() * 96);
        for r in page {
            let c = CallView::from(r);
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{}",
                c.id,
                iso_time(c.at, self.offset_minutes),
                csv_field(&c.task_no),
                csv_field(c.app_id.as_deref().unwrap_or("")),
                c.result.map(|r| r.to_string()).unwrap_or_default(),
                c.score.map(|s| s.to_string()).unwrap_or_default(),
                c.http_status,
                u8::from(c.charged),
                c.latency_ms,
                csv_field(c.error_code.as_deref().unwrap_or("")),
                csv_field(c.name.as_deref().unwrap_or("")),
                csv_field(c.id_card.as_deref().unwrap_or("")),
            );
            self.written += 1;
        }
        Ok(Some(out))
    }
}

/// A CSV field: quoted when it holds a separator, a quote or a line break; a leading
/// formula character is neutralised (spreadsheets would run it).
pub(crate) fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_iso_8601_in_the_offset() {
        // 2026-12-03T00:00:00Z, then one second before.
        let midnight = 20_790 * DAY_MS;
        assert_eq!(iso_time(midnight, 480), "2026-12-03T08:00:00+08:00");
        assert_eq!(iso_time(midnight - 1_000, 0), "2026-12-02T23:59:59+00:00");
        assert_eq!(iso_time(midnight, -330), "2026-12-02T18:30:00-05:30");
    }

    #[test]
    fn dates_round_trip() {
        for (text, days) in [
            ("1970-01-01", 0),
            ("2000-02-29", 11_016),
            ("2026-12-03", 20_790),
        ] {
            assert_eq!(parse_day(text).unwrap(), days, "{text}");
            assert_eq!(format_day(days), text);
        }
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-1-01",
            "20261201",
            "",
            "2026-12-01x",
        ] {
            assert!(parse_day(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
    }

    #[test]
    fn packages_are_checked() {
        let good = PackageView {
            name: "c100".into(),
            title: "17元/100次".into(),
            calls: 100,
            price_fen: 1700,
            valid_days: Some(365),
            active: true,
        };
        assert!(good.clone().parse().is_ok());
        for bad in [
            PackageView {
                name: "".into(),
                ..good.clone()
            },
            PackageView {
                name: "a b".into(),
                ..good.clone()
            },
            PackageView {
                title: " ".into(),
                ..good.clone()
            },
            PackageView {
                calls: 0,
                ..good.clone()
            },
            PackageView {
                price_fen: -1,
                ..good.clone()
            },
            PackageView {
                valid_days: Some(0),
                ..good.clone()
            },
        ] {
            assert!(bad.clone().parse().is_err(), "{bad:?}");
        }
    }
}
