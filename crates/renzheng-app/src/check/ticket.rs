//! One check, from its arrival to its record: the [`CheckTicket`].
//!
//! ```text
//! App::begin_check ─▶ authenticate (APPCODE, or an AppKey known and allowed to call)
//!                  ─▶ signature_verified (signed calls: the edge read the body and checked it)
//!                  ─▶ admit (rate limit, quota hold: never before the caller is proven)
//!                  ─▶ run (parse, per-ID limit, the verification, under the deadline)
//!                  ─▶ finish (one record; the held unit charged for an answer, else given back)
//! ```
//!
//! The ticket keeps the rule "one audit record per admitted check of a known caller,
//! charged only when answered, the unit given back when it was not": a ticket dropped
//! unfinished (its request timed out or its client left) records itself as abandoned and
//! gives its unit back at once. A check refused at admission (throttled, or no quota left)
//! holds no unit and is only counted ([`App::refused_checks`]), never recorded: otherwise
//! a client hammering an app without quota would write a row per request. The record
//! functions are private to the crate, so a check cannot be recorded any other way.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use renzheng_store::ReservationId;
use renzheng_vision::Analysis;

use super::record::CheckRecord;
use super::{CheckFields, CheckRequest, Verification};
use crate::apps::{Authentication, Credential};
use crate::metering::AdmissionRefusal;
use crate::{App, AppError, Caller};

/// Who a check is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A caller of the API: authenticated, rate-limited, metered, per-ID limited.
    Api,
    /// The operator's console (try it): no app, never charged, recorded all the same.
    Console,
}

/// How the edge answered a check, for its record.
#[derive(Debug, Clone, Copy)]
pub enum Ending<'a> {
    /// An answer, result 1–8: the held unit is charged.
    Answer {
        /// The answer.
        verification: &'a Verification,
        /// The status the edge sent it with.
        status: u16,
    },
    /// No answer: nothing is charged.
    Refusal {
        /// The status the edge sent.
        status: u16,
        /// Its machine code.
        code: &'static str,
    },
}

/// The status recorded for a check abandoned before its answer (its client left, or the
/// edge gave up on it): nginx's "client closed request".
pub const ABANDONED_STATUS: u16 = 499;
const ABANDONED_CODE: &str = "ClientClosedRequest";

/// A parsed check's answer, with what the engine saw (the console draws it).
pub struct Checked {
    /// The answer, result 1–8.
    pub verification: Verification,
    /// The engine's analysis of the photo, when it got that far.
    pub analysis: Option<Analysis>,
}

/// One check in progress. See the [module docs](self) for its steps.
pub struct CheckTicket {
    app: Arc<App>,
    origin: Origin,
    started: Instant,
    arrived_ms: i64,
    deadline: tokio::time::Instant,
    request_id: String,
    /// Known from the head, proven only once `proven`.
    caller: Option<Caller>,
    proven: bool,
    reservation: Option<ReservationId>,
    /// Refused at admission: counted, not recorded.
    refused: Option<AdmissionRefusal>,
    request: Option<CheckRequest>,
    finished: bool,
}

impl App {
    /// Starts a check that arrived now, answered as `request_id`. Its deadline is
    /// `limits.request_timeout` from now.
    pub fn begin_check(self: &Arc<Self>, request_id: String, origin: Origin) -> CheckTicket {
        CheckTicket {
            app: self.clone(),
            origin,
            started: Instant::now(),
            arrived_ms: self.now_ms(),
            deadline: tokio::time::Instant::now() + self.settings.limits.request_timeout(),
            request_id,
            caller: None,
            proven: origin == Origin::Console,
            reservation: None,
            refused: None,
            request: None,
            finished: false,
        }
    }

    /// Waits (at most `limit`) for the records of abandoned checks still being written,
    /// so that a stopping server gives their held units back instead of leaving them to
    /// lapse.
    pub async fn settle_abandoned(&self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.settling.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

impl CheckTicket {
    /// When the check must be answered by (the edge reads the body against it too).
    pub fn deadline(&self) -> tokio::time::Instant {
        self.deadline
    }

    /// The caller, once known from the head.
    pub fn caller(&self) -> Option<&Caller> {
        self.caller.as_ref()
    }

    /// Authenticates from the request's head ([`App::identify`]): an AppCode proves the
    /// caller; an AppKey names it, and the edge must then verify the request under the
    /// returned secret and call [`signature_verified`](Self::signature_verified). A
    /// refused credential is not recorded.
    pub async fn authenticate(
        &mut self,
        credential: Credential<'_>,
    ) -> Result<Authentication, AppError> {
        let (caller, authentication) = self.app.identify(credential).await?;
        self.proven = matches!(authentication, Authentication::Done);
        self.caller = Some(caller);
        Ok(authentication)
    }

    /// The edge verified the request's signature: spends its nonce (once within
    /// `valid_ms`, across nodes: [`AppError::NonceUsed`] on a replay), which proves the
    /// caller. Only a verified request spends a nonce, so a forger cannot burn a client's.
    pub async fn signature_verified(&mut self, nonce: &str, valid_ms: i64) -> Result<(), AppError> {
        let caller = self.caller.as_ref().ok_or_else(out_of_order)?;
        self.app.use_nonce(caller, nonce, valid_ms).await?;
        self.proven = true;
        Ok(())
    }

    /// Admits the check: the app's rate limit, then one unit of quota held. Before any
    /// parsing or engine work; never before the caller is proven. Console checks are
    /// neither limited nor metered. A refusal here (throttled, no quota) is counted and
    /// the check will not be recorded.
    pub async fn admit(&mut self) -> Result<(), AppError> {
        if self.origin == Origin::Console {
            return Ok(());
        }
        let caller = self.proven_caller()?;
        match self.app.admit(caller).await {
            Ok(admission) => {
                self.reservation = admission.reservation;
                Ok(())
            }
            Err(e) => {
                if let Some(refusal) = AdmissionRefusal::of(&e) {
                    self.app.count_refused_check(refusal);
                    self.refused = Some(refusal);
                }
                Err(e)
            }
        }
    }

    /// Runs the check: parses the fields (the first problem is the answer), counts the
    /// attempt against the per-ID limits (API checks), then verifies under the deadline
    /// ([`AppError::TimedOut`] past it).
    pub async fn run(&mut self, fields: CheckFields) -> Result<Checked, AppError> {
        if !self.proven {
            return Err(out_of_order());
        }
        let request = self.app.parse_check(fields)?;
        let request = self.request.insert(request);
        if let (Origin::Api, Some(caller)) = (self.origin, &self.caller) {
            self.app.limit_attempts(caller, &request.id).await?;
        }
        let (verification, analysis) =
            tokio::time::timeout_at(self.deadline, self.app.verify_explained(request))
                .await
                .map_err(|_| AppError::TimedOut)??;
        Ok(Checked {
            verification,
            analysis,
        })
    }

    /// Records the check as the edge answered it, settling its unit in the same
    /// transaction (charged for an answer, given back otherwise); returns whether it was
    /// charged. An `Err` means the answer could not be recorded (nor charged): the edge
    /// must not give it as a success, and the held unit lapses back.
    ///
    /// A check whose caller was never proven is not recorded (refused credentials are
    /// the metrics' business, so a client hammering with bad ones cannot grow the audit),
    /// nor is one refused at admission (counted when refused; it holds no unit).
    pub async fn finish(mut self, ending: Ending<'_>) -> Result<bool, AppError> {
        if !self.recorded() {
            self.finished = true;
            return Ok(false);
        }
        let record = self.take_record(ending);
        self.app.record_check(record).await
    }

    /// The check's record, once: the ticket is finished from here.
    fn take_record(&mut self, ending: Ending<'_>) -> CheckRecord {
        self.finished = true;
        let (status, error_code, result, score, basis) = match ending {
            Ending::Answer {
                verification,
                status,
            } => (
                status,
                None,
                Some(verification.result),
                verification.scored.map(|s| s.score),
                verification.basis,
            ),
            Ending::Refusal { status, code } => (status, Some(code), None, None, None),
        };
        let request = self.request.take();
        CheckRecord {
            arrived_ms: self.arrived_ms,
            request_id: std::mem::take(&mut self.request_id),
            app_id: self.caller.as_ref().map(|c| c.app_id.clone()),
            identity: request.map(|r| (r.name, r.id)),
            result,
            score,
            status,
            error_code,
            latency_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            reservation: self.reservation,
            basis,
        }
    }

    /// Whether this check is to be recorded: its caller proven and admitted (or the
    /// console's).
    fn recorded(&self) -> bool {
        self.proven && self.refused.is_none()
    }

    fn proven_caller(&self) -> Result<&Caller, AppError> {
        match (&self.caller, self.proven) {
            (Some(caller), true) => Ok(caller),
            _ => Err(out_of_order()),
        }
    }
}

/// A step taken before the one it needs: a bug of the edge, refused rather than run
/// for an unproven caller.
fn out_of_order() -> AppError {
    AppError::Internal("a check step was taken before the caller was authenticated".into())
}

impl Drop for CheckTicket {
    /// An unfinished check of a known caller (or the console) is recorded as abandoned,
    /// its unit given back now rather than when its hold lapses. The write runs on the
    /// runtime; [`App::settle_abandoned`] waits for it at shutdown.
    fn drop(&mut self) {
        if self.finished || !self.recorded() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let ending = Ending::Refusal {
            status: ABANDONED_STATUS,
            code: ABANDONED_CODE,
        };
        let record = self.take_record(ending);
        let app = self.app.clone();
        app.settling.fetch_add(1, Ordering::SeqCst);
        runtime.spawn(async move {
            let _ = app.record_check(record).await;
            app.settling.fetch_sub(1, Ordering::SeqCst);
        });
    }
}
