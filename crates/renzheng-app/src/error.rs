//! The one error type of the use cases.
//!
//! Every way a use case can fail is a variant here; the HTTP layer maps each one to a
//! status and a gateway code, the CLI to a message. Messages never contain a name, ID
//! number, photo or embedding: the errors they wrap are written not to.

use renzheng_domain::{BasisError, IdNumberError, PersonNameError};
use renzheng_store::{AttemptWindow, StoreError};
use renzheng_vision::EngineError;

use crate::fetch::FetchError;
use crate::photo::PhotoError;

/// Why a use case did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A check's credential names no app that may call (missing, unknown or disabled
    /// AppCode). The same answer in every case, so that probing learns nothing.
    #[error("Unauthorized")]
    Unauthorized,
    /// A signed check's AppKey names no app that may call.
    #[error("Invalid AppKey")]
    UnknownAppKey,
    /// A check was not answered by its deadline (`limits.request_timeout_ms`).
    #[error("the request timed out")]
    TimedOut,
    /// A required field is absent or blank.
    #[error("missing required field: {0}")]
    MissingField(&'static str),
    /// A check sent neither `image` nor `imgUrl`.
    #[error("missing required field: image or imgUrl")]
    MissingPhoto,
    /// The name does not parse.
    #[error("invalid name: {0}")]
    InvalidName(#[from] PersonNameError),
    /// The ID number does not parse; the reason says which rule failed.
    #[error("invalid idCard: {0}")]
    InvalidIdNumber(#[from] IdNumberError),
    /// The photo (inline or fetched) is unusable as bytes.
    #[error("invalid image: {0}")]
    InvalidImage(#[from] PhotoError),
    /// `imgUrl` gave no photo.
    #[error("imgUrl: {0}")]
    ImgUrl(#[from] FetchError),
    /// An app's name breaks the naming rule.
    #[error("invalid request: {0}")]
    InvalidAppName(String),
    /// An enrolment photo was refused (no usable face, several faces, poor quality).
    #[error("photo {index}: {reason}")]
    PortraitRefused {
        /// 1-based position of the photo in the request.
        index: usize,
        /// Why.
        reason: crate::rules::PortraitRefusal,
    },
    /// The ID number is enrolled under another name: a name changes only by an explicit
    /// rename, with a reason.
    #[error("this ID number is enrolled under another name; to change the name, use `renzheng registry rename --id-number ID --name NEW --reason TEXT` (or the console's rename form)")]
    NameMismatch,
    /// A new portrait does not show the person of the other portraits.
    #[error("photo {index} does not match {against} (score {score:.3}): a person's portraits must all show them; nothing was stored (to replace a person's portraits, use `renzheng registry replace`)")]
    PortraitMismatch {
        /// 1-based position of the photo.
        index: usize,
        /// What it was compared with.
        against: Against,
        /// The comparison's score.
        score: f64,
    },
    /// A new portrait's face is enrolled under another ID number.
    #[error("photo {index}: this face is already enrolled under {other} ({handle}, score {score:.3}); nothing was stored (if both ID numbers really belong to one person, allow it with --allow-duplicate-face --reason TEXT)")]
    DuplicateFace {
        /// 1-based position of the photo.
        index: usize,
        /// The other person's masked ID number.
        other: String,
        /// The other person's handle.
        handle: String,
        /// The comparison's score.
        score: f64,
    },
    /// A face would be stored without a legal basis (`compliance.require_basis`).
    #[error("no legal basis is recorded for this person's face: add --basis consent --consent-ref TEXT, --basis contract --consent-ref TEXT or --basis law --law TEXT (admin API fields basis, consentRef, law; docs/compliance.md); nothing was stored")]
    BasisRequired,
    /// The basis is refused: incomplete, contradictory, or a child's face without a
    /// guardian's consent.
    #[error("legal basis: {0}; nothing was stored")]
    Basis(#[from] BasisError),
    /// The operation needs the operator's reason (a rename, a replacement, a duplicate
    /// face allowed).
    #[error("a reason is required (--reason TEXT)")]
    ReasonRequired,
    /// A folder to import cannot be read (missing, no CSV, unreadable CSV).
    #[error("{0}")]
    Import(String),
    /// A person or app named by the operator does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The app's AppCode was issued before codes were kept sealed: only its hash is on
    /// record, so it cannot be shown again (resetting it makes the new one viewable).
    #[error("this AppCode was issued before codes were kept and only its hash is stored: reset it to make it viewable")]
    CodeNotViewable,
    /// The app's rate limit is reached.
    #[error("Throttled by APP Flow Control")]
    Throttled {
        /// How long until a request is allowed, milliseconds.
        retry_after_ms: i64,
    },
    /// The app has no calls left.
    #[error("Quota Exhausted")]
    QuotaExhausted,
    /// The app's remaining calls have expired.
    #[error("Quota Expired")]
    QuotaExpired,
    /// Too many checks of this ID number by this app in the current window.
    #[error("too many checks of this ID number this {}, retry later", match .window { AttemptWindow::Minute => "minute", AttemptWindow::Day => "day" })]
    TooManyAttempts {
        /// The window that is full.
        window: AttemptWindow,
        /// Until it ends, milliseconds.
        retry_after_ms: i64,
    },
    /// A change that would leave the console without an owner (the last owner is
    /// neither removed nor demoted).
    #[error("the last owner cannot be removed or given another role: make another operator an owner first")]
    LastOwner,
    /// An operator name breaks the rule (1 to 64 characters, no control characters, no
    /// spaces at either end).
    #[error("an operator name has 1 to 64 characters, no control characters and no spaces at either end")]
    InvalidOperatorName,
    /// An e-mail address that is not one (the text given, trimmed).
    #[error("{0:?} is not an e-mail address")]
    InvalidEmail(String),
    /// Alert recipients set on a server without an SMTP relay.
    #[error("alert_emails needs an SMTP relay: set alerts.smtp_url and alerts.email_from")]
    NoSmtpRelay,
    /// A second factor set up again while it is on.
    #[error("two-step sign-in is on already: turn it off first")]
    TotpAlreadyOn,
    /// A two-step code that is not the authenticator's current one (or was used already).
    #[error("the code is not the authenticator app's current one (or was used already)")]
    WrongTotpCode,
    /// A change to a grant that was revoked.
    #[error(
        "this grant was revoked; a revoked grant does not change again (grant calls anew instead)"
    )]
    GrantRevoked,
    /// A grant adjusted below the calls already charged and held.
    #[error("a grant cannot have fewer calls than are charged and held now ({floor})")]
    GrantBelowCommitted {
        /// The fewest calls it can have now.
        floor: i64,
    },
    /// An operator account of that name exists already.
    #[error("an operator of that name exists already")]
    OperatorExists,
    /// A new console password shorter than the rule.
    #[error("a console password has at least {min} characters")]
    WeakPassword {
        /// The fewest characters allowed.
        min: usize,
    },
    /// The operator's current password, given to change it, is wrong.
    #[error("the current password is wrong")]
    WrongPassword,
    /// A console sign-in with a wrong operator name or password (which, is not said).
    #[error("wrong operator name or password")]
    SignInRefused,
    /// A signature nonce was used before within its window (a replay).
    #[error("Nonce Used")]
    NonceUsed,
    /// An operator's value breaks a rule (package, grant, policy).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// An operator's value breaks one of the rules the console words in the operator's
    /// language (the same `invalid request: …` sentence as [`AppError::Invalid`]).
    #[error("invalid request: {0}")]
    Rule(#[from] Rule),
    /// The engine and its bounded queue are full.
    #[error("the service is busy, retry later")]
    Busy {
        /// How long the caller should wait, seconds.
        retry_after_secs: u64,
    },
    /// The face engine failed (not the photo's fault) or could not be loaded.
    #[error("face engine: {0}")]
    Engine(EngineError),
    /// Storage failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// A key operation could not be done (rotation, retirement), saying what to do.
    #[error("{0}")]
    Keys(String),
    /// A bug: a background task died.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<EngineError> for AppError {
    /// A photo the decoder refuses is the caller's problem; anything else is ours.
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Image(image) => AppError::InvalidImage(image.into()),
            other => AppError::Engine(other),
        }
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> Self {
        AppError::Internal(format!("a background task failed: {e}"))
    }
}

/// What a refused photo was compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Against {
    /// A portrait on record (its id).
    OnRecord(i64),
    /// Another photo of the submission (1-based).
    Photo(usize),
}

impl std::fmt::Display for Against {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Against::OnRecord(id) => write!(f, "portrait #{id} on record"),
            Against::Photo(index) => write!(f, "photo {index} of this submission"),
        }
    }
}

/// A rule an operator's value broke, typed so that the console can word it; its
/// `Display` is the English sentence of the CLI and the admin API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rule {
    /// A number outside its range (`field` as the API names it).
    #[error("{field} must be {min} to {max}")]
    Range {
        /// The field.
        field: &'static str,
        /// The least allowed.
        min: String,
        /// The most allowed.
        max: String,
    },
    /// A text longer than allowed.
    #[error("{field} must be at most {max} characters")]
    TooLong {
        /// The field.
        field: &'static str,
        /// The most characters.
        max: usize,
    },
    /// A time that is already past.
    #[error("{0} is in the past")]
    InPast(&'static str),
    /// A webhook that is no http(s) URL.
    #[error("webhook_url must be an http(s) URL")]
    WebhookNotHttp,
    /// A webhook leading to an address the policy refuses.
    #[error("webhook_url must lead to a public address (or a network in img_url.allow)")]
    WebhookNotPublic,
    /// A burst without a rate.
    #[error("rate_burst needs rate_per_sec")]
    BurstNeedsRate,
    /// Too many alert recipients.
    #[error("alert_emails has at most {0} addresses")]
    TooManyEmails(usize),
    /// A retired package granted.
    #[error("package {0} is retired")]
    PackageRetired(String),
    /// A grant of neither or both of a package and a number of calls.
    #[error("give either a package or a number of calls")]
    PackageOrCalls,
    /// A grant adjustment that changes nothing.
    #[error("give calls, expires_at or never_expires")]
    NothingToChange,
    /// A grant adjustment with an expiry and none at once.
    #[error("give either expires_at or never_expires")]
    ExpiryAndNever,
    /// A day that is not one.
    #[error("not a date (YYYY-MM-DD): {0:.20}")]
    NotADate(String),
    /// A rename to the name on record.
    #[error("the person already has this name")]
    SameName,
}
