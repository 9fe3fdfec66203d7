//! Records passed to and returned by a [`Store`](crate::Store).

use renzheng_domain::{BasisKind, IdNumber, LegalBasis, PersonName, Reference};

use crate::{AppId, StoreError};

/// A registered person.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// Their stable opaque handle.
    pub handle: PersonHandle,
    /// Their ID number (the registry key).
    pub id_number: IdNumber,
    /// Their name as registered.
    pub name: PersonName,
    /// First registration, unix milliseconds.
    pub created_at: i64,
    /// Last change of the name, unix milliseconds.
    pub updated_at: i64,
}

/// A person and their portraits.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonRecord {
    /// The person.
    pub person: Person,
    /// Their portraits, oldest first.
    pub portraits: Vec<Portrait>,
    /// The legal basis their face is processed under, when one was recorded.
    pub basis: Option<BasisRecord>,
    /// When a check last compared a photo with their portraits (at most a day stale:
    /// written once a day), unix milliseconds; `None` when never.
    pub last_checked_at: Option<i64>,
}

/// The legal basis recorded for a person's face, with what the law asks to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasisRecord {
    /// The kind, its reference and a guardian's consent.
    pub basis: LegalBasis,
    /// The purpose the face is processed for.
    pub purpose: Reference,
    /// When the basis was recorded (renewed), unix milliseconds.
    pub recorded_at: i64,
    /// Who recorded it (an operator's name, `cli`, `admin-api`).
    pub actor: String,
}

/// What the registry holds, counted against the rules an operator reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ComplianceCounts {
    /// Persons with at least one portrait (face information stored).
    pub persons_with_face_data: u64,
    /// Of those, persons without a recorded legal basis.
    pub persons_without_basis: u64,
    /// When the oldest face data still stored was enrolled (its person's first portrait),
    /// unix milliseconds.
    pub oldest_face_data_at: Option<i64>,
}

/// A portrait to add to a person.
#[derive(Clone, PartialEq)]
pub struct NewPortrait {
    /// Which embedding model produced `embedding`; embeddings of different
    /// models are not comparable.
    pub model_id: String,
    /// The face embedding; must not be empty.
    pub embedding: Vec<f32>,
    /// Quality measurements of the source photo, free-form.
    pub quality: Option<serde_json::Value>,
    /// The source photo, already encrypted by the caller; `None` unless the
    /// deployment opts in to keeping photos.
    pub photo: Option<Vec<u8>>,
}

impl std::fmt::Debug for NewPortrait {
    // Leaves out the embedding and photo bytes, which are biometric data
    // and would drown the log line anyway.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewPortrait")
            .field("model_id", &self.model_id)
            .field("dims", &self.embedding.len())
            .field("quality", &self.quality)
            .field("has_photo", &self.photo.is_some())
            .finish()
    }
}

/// A stored portrait, without its photo.
#[derive(Clone, PartialEq)]
pub struct Portrait {
    /// Its id.
    pub id: i64,
    /// The model that produced the embedding.
    pub model_id: String,
    /// The face embedding, bit-exact as added.
    pub embedding: Vec<f32>,
    /// Quality measurements, as added.
    pub quality: Option<serde_json::Value>,
    /// Whether a photo is stored with it.
    pub has_photo: bool,
    /// When it was added, unix milliseconds.
    pub created_at: i64,
}

impl std::fmt::Debug for Portrait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portrait")
            .field("id", &self.id)
            .field("model_id", &self.model_id)
            .field("dims", &self.embedding.len())
            .field("quality", &self.quality)
            .field("has_photo", &self.has_photo)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// One request's entry for the audit log.
///
/// The personal fields can only be filled from the domain types, through
/// [`with_name`](Self::with_name) and [`with_id_number`](Self::with_id_number),
/// so a clear name or ID number cannot end up in the log by mistake.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// When the request arrived, unix milliseconds.
    pub at: i64,
    /// The request's correlation id.
    pub request_id: String,
    /// The calling app, if it authenticated.
    pub app_id: Option<AppId>,
    pub(crate) name_masked: Option<String>,
    pub(crate) id_masked: Option<String>,
    pub(crate) id_hash: Option<String>,
    /// The verification result code, if one was reached.
    pub result: Option<i64>,
    /// The similarity score, if faces were compared.
    pub score: Option<f64>,
    /// The HTTP status answered.
    pub http_status: u16,
    /// Time spent serving the request.
    pub latency_ms: u64,
    /// Machine-readable error code, for failed requests.
    pub error_code: Option<String>,
    /// The processing record to keep with it (a check that processed a person's data),
    /// written in the same transaction.
    pub processing: Option<Processing>,
}

impl AuditEntry {
    /// An entry timestamped `at` (unix ms), with every optional field empty.
    pub fn new(at: i64, request_id: impl Into<String>, http_status: u16, latency_ms: u64) -> Self {
        AuditEntry {
            at,
            request_id: request_id.into(),
            app_id: None,
            name_masked: None,
            id_masked: None,
            id_hash: None,
            result: None,
            score: None,
            http_status,
            latency_ms,
            error_code: None,
            processing: None,
        }
    }

    /// Records the name, masked.
    pub fn with_name(mut self, name: &PersonName) -> Self {
        self.name_masked = Some(name.masked());
        self
    }

    /// Records the ID number, masked and as a keyed hash under `key`.
    pub fn with_id_number(mut self, id: &IdNumber, key: &[u8]) -> Self {
        self.id_masked = Some(id.masked());
        self.id_hash = Some(id.keyed_hash(key));
        self
    }

    /// The masked name, if recorded.
    pub fn name_masked(&self) -> Option<&str> {
        self.name_masked.as_deref()
    }

    /// The masked ID number, if recorded.
    pub fn id_masked(&self) -> Option<&str> {
        self.id_masked.as_deref()
    }

    /// The keyed hash of the ID number, if recorded.
    pub fn id_hash(&self) -> Option<&str> {
        self.id_hash.as_deref()
    }
}

/// An audit entry as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Its sequence number; later entries have larger ids.
    pub id: i64,
    /// When the request arrived, unix milliseconds.
    pub at: i64,
    /// The request's correlation id.
    pub request_id: String,
    /// The calling app, if it authenticated.
    pub app_id: Option<AppId>,
    /// Masked name.
    pub name_masked: Option<String>,
    /// Masked ID number.
    pub id_masked: Option<String>,
    /// Keyed hash of the ID number.
    pub id_hash: Option<String>,
    /// Verification result code.
    pub result: Option<i64>,
    /// Similarity score.
    pub score: Option<f64>,
    /// HTTP status answered.
    pub http_status: u16,
    /// Time spent serving the request.
    pub latency_ms: u64,
    /// Machine-readable error code.
    pub error_code: Option<String>,
    /// Whether the check was charged to the app's balance.
    pub charged: bool,
}

/// An operator's mutation, for the events log.
///
/// The person fields can only be filled from an [`IdNumber`], masked and hashed, so a
/// clear ID number cannot end up in the log by mistake.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminEvent {
    /// When it happened, unix milliseconds.
    pub at: i64,
    /// Who: `cli` or `admin-api`.
    pub actor: String,
    /// What: `person.enrolled`, `person.removed`, `app.created`, `app.disabled`…
    pub action: String,
    /// The app concerned (its id), if any.
    pub app_id: Option<AppId>,
    pub(crate) person_masked: Option<String>,
    pub(crate) person_hash: Option<String>,
    /// The request id, for events that came through the admin API.
    pub request_id: Option<String>,
    /// Free-form detail; never personal data.
    pub detail: Option<String>,
    /// The operator's reason, where a rule asks for one (a rename, a replacement of
    /// portraits, a duplicate face allowed).
    pub reason: Option<String>,
    /// The processing record to keep with it (a change to a person's face or identity),
    /// written in the same transaction.
    pub processing: Option<Processing>,
}

impl AdminEvent {
    /// An event timestamped `at`, about nobody in particular.
    pub fn new(at: i64, actor: impl Into<String>, action: impl Into<String>) -> Self {
        AdminEvent {
            at,
            actor: actor.into(),
            action: action.into(),
            app_id: None,
            person_masked: None,
            person_hash: None,
            request_id: None,
            detail: None,
            reason: None,
            processing: None,
        }
    }

    /// Names the person concerned, masked and as a keyed hash under `key` (the audit
    /// key, so that removing the person unlinks the event).
    pub fn about_person(mut self, id: &IdNumber, key: &[u8]) -> Self {
        self.person_masked = Some(id.masked());
        self.person_hash = Some(id.keyed_hash(key));
        self
    }

    /// The masked ID number of the person concerned, if any.
    pub fn person_masked(&self) -> Option<&str> {
        self.person_masked.as_deref()
    }
}

/// What was done to a person's face or identity, as the processing records name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessingAction {
    /// Enrolled: the person's first face stored.
    Enrolled,
    /// Portraits added to an enrolled person.
    PortraitsAdded,
    /// The name changed.
    Renamed,
    /// All portraits replaced.
    Replaced,
    /// A legal basis recorded or renewed after the fact.
    BasisRecorded,
    /// A caller's photo compared with the person's (or refused on the way).
    Checked,
    /// Removed by an operator.
    Removed,
    /// Removed by the registry's retention.
    Purged,
}

impl ProcessingAction {
    /// Every action, in the order above.
    pub const ALL: [ProcessingAction; 8] = [
        ProcessingAction::Enrolled,
        ProcessingAction::PortraitsAdded,
        ProcessingAction::Renamed,
        ProcessingAction::Replaced,
        ProcessingAction::BasisRecorded,
        ProcessingAction::Checked,
        ProcessingAction::Removed,
        ProcessingAction::Purged,
    ];

    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessingAction::Enrolled => "enrolled",
            ProcessingAction::PortraitsAdded => "portraits-added",
            ProcessingAction::Renamed => "renamed",
            ProcessingAction::Replaced => "replaced",
            ProcessingAction::BasisRecorded => "basis-recorded",
            ProcessingAction::Checked => "checked",
            ProcessingAction::Removed => "removed",
            ProcessingAction::Purged => "purged",
        }
    }

    /// The action stored as `word`.
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == word)
    }
}

/// A processing record to write (with an audit entry or an operator event): what was
/// done to whose data, under which basis. The person can only be given as an
/// [`IdNumber`], masked and keyed, so the record never holds one in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processing {
    /// What was done.
    pub action: ProcessingAction,
    person_masked: String,
    person_hash: String,
    /// The basis on record when it was done.
    pub basis: Option<BasisKind>,
}

impl Processing {
    /// `action` on the person with this ID number (keyed under `key`, the audit key).
    pub fn about(
        action: ProcessingAction,
        id: &IdNumber,
        key: &[u8],
        basis: Option<BasisKind>,
    ) -> Self {
        Processing {
            action,
            person_masked: id.masked(),
            person_hash: id.keyed_hash(key),
            basis,
        }
    }

    pub(crate) fn person_masked(&self) -> &str {
        &self.person_masked
    }

    pub(crate) fn person_hash(&self) -> &str {
        &self.person_hash
    }
}

/// A processing record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessingRecord {
    /// Its sequence number.
    pub id: i64,
    /// When, unix milliseconds.
    pub at: i64,
    /// What was done.
    pub action: ProcessingAction,
    /// The masked ID number.
    pub person_masked: String,
    /// The ID number's keyed hash under the audit key: the same person's records share it.
    pub person_hash: String,
    /// Who: `cli`, `admin-api`, `console:<operator>`, `service`, `app:<id>` or `console`
    /// (a check from the console).
    pub actor: String,
    /// The basis on record then.
    pub basis: Option<BasisKind>,
    /// A check's result code.
    pub result: Option<i64>,
}

/// The cut-offs of the registry's retention: persons enrolled (or whose basis was last
/// renewed) before `enrolled_before`, and persons not checked since `inactive_before`
/// (counting from their enrolment when never checked), are due for purging. `None`: that
/// rule is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionCutoffs {
    /// Unix milliseconds.
    pub enrolled_before: Option<i64>,
    /// Unix milliseconds.
    pub inactive_before: Option<i64>,
}

/// A person the registry's retention has come to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuePerson {
    /// Their ID number (the caller removes them; it is never shown).
    pub id_number: IdNumber,
    /// Their handle.
    pub handle: PersonHandle,
    /// Enrolment, unix milliseconds.
    pub enrolled_at: i64,
    /// The last recording (renewal) of their basis.
    pub basis_at: Option<i64>,
    /// Their last check.
    pub last_checked_at: Option<i64>,
}

/// How many persons the retention has come to, and the oldest enrolment among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionDue {
    /// Persons due.
    pub persons: u64,
    /// The earliest enrolment among them, unix milliseconds.
    pub oldest_enrolled_at: Option<i64>,
}

/// A filter over the operator events, newest first, keyset-paged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events at or after this time (unix ms).
    pub from_ms: Option<i64>,
    /// Only events before this time (unix ms).
    pub to_ms: Option<i64>,
    /// Only actions of this kind (`app`, `person`…: the part before the dot).
    pub kind: Option<String>,
    /// Only this actor's.
    pub actor: Option<String>,
    /// Only events older than this id (the last id of the previous page).
    pub before_id: Option<i64>,
    /// Page size.
    pub limit: u32,
}

/// An operator event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminEventRecord {
    /// Its sequence number; later events have larger ids.
    pub id: i64,
    /// When it happened, unix milliseconds.
    pub at: i64,
    /// `cli`, `admin-api`, `console` or `console:<operator>`.
    pub actor: String,
    /// What happened.
    pub action: String,
    /// The app or the masked ID number concerned.
    pub target: Option<String>,
    /// The request id, for admin-API events.
    pub request_id: Option<String>,
    /// Free-form detail.
    pub detail: Option<String>,
    /// The operator's reason, if the action needed one.
    pub reason: Option<String>,
}

/// A stable, opaque name for a registry person: the first 64 bits of the keyed hash their
/// row is stored under, written `p-` and 16 hex digits. It names the person in reports
/// (the duplicate-face report, refusals) without their ID number, and commands accept it
/// wherever they accept an ID number. It reveals nothing without the template key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonHandle(u64);

impl PersonHandle {
    /// The handle of the row stored under `person_key` (a hex keyed hash).
    pub(crate) fn from_key(person_key: &str) -> Result<Self, StoreError> {
        person_key
            .get(..16)
            .and_then(|prefix| u64::from_str_radix(prefix, 16).ok())
            .map(PersonHandle)
            .ok_or_else(|| StoreError::Corrupt("a person key is not hex".into()))
    }

    /// The handle as a signed integer (the in-memory index's owner field).
    pub fn as_i64(self) -> i64 {
        self.0 as i64
    }

    /// The handle whose [`as_i64`](Self::as_i64) is `value`.
    pub fn from_i64(value: i64) -> Self {
        PersonHandle(value as u64)
    }

    /// The key prefix the handle stands for (16 hex digits).
    pub(crate) fn key_prefix(self) -> String {
        format!("{:016x}", self.0)
    }
}

impl std::fmt::Display for PersonHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "p-{:016x}", self.0)
    }
}

impl std::str::FromStr for PersonHandle {
    type Err = StoreError;

    /// Parses `p-` and 16 hex digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s
            .strip_prefix("p-")
            .filter(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| StoreError::Invalid("a person handle is p- and 16 hex digits".into()))?;
        u64::from_str_radix(hex, 16)
            .map(PersonHandle)
            .map_err(|_| StoreError::Invalid("a person handle is p- and 16 hex digits".into()))
    }
}

/// One stored template of the registry, opened: for the in-memory index and for
/// re-scoring its candidates exactly.
#[derive(Clone, PartialEq)]
pub struct StoredTemplate {
    /// The portrait's id.
    pub portrait_id: i64,
    /// Whose.
    pub owner: PersonHandle,
    /// Their ID number.
    pub id_number: IdNumber,
    /// The embedding.
    pub embedding: Vec<f32>,
}

impl std::fmt::Debug for StoredTemplate {
    // No ID number, no embedding: biometric and personal data stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTemplate")
            .field("portrait_id", &self.portrait_id)
            .field("owner", &self.owner)
            .field("dims", &self.embedding.len())
            .finish()
    }
}

/// What changed in the registry's templates of one model after a version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateChanges {
    /// The registry's version these changes lead to.
    pub version: i64,
    /// Portraits removed (some may never have been seen by the reader).
    pub removed: Vec<i64>,
    /// Portraits added and still present, of the model asked for.
    pub added: Vec<StoredTemplate>,
}

/// One line of the registry's list (the console's registry page).
#[derive(Clone, PartialEq)]
pub struct PersonSummary {
    /// The person's handle.
    pub handle: PersonHandle,
    /// Their ID number (shown masked).
    pub id_number: IdNumber,
    /// Their name (shown masked).
    pub name: PersonName,
    /// How many portraits they have (of every model).
    pub portraits: u32,
    /// When they were enrolled, unix milliseconds.
    pub created_at: i64,
}

impl std::fmt::Debug for PersonSummary {
    // Masked: this is personal data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonSummary")
            .field("handle", &self.handle)
            .field("id_number", &self.id_number.masked())
            .field("portraits", &self.portraits)
            .finish()
    }
}

/// A duplicate-face scan in progress (one per model): where it is and what it has found,
/// as the application wrote it (`findings` is its own JSON: person handles, portrait ids,
/// scores; never an identity).
#[derive(Debug, Clone, PartialEq)]
pub struct DuplicateScan {
    /// The model whose templates are scanned.
    pub model_id: String,
    /// When the scan started, unix milliseconds.
    pub started_at: i64,
    /// The duplicate line it runs at (a resumed scan must keep it).
    pub line_distance: f64,
    /// The last portrait id searched.
    pub cursor: i64,
    /// What was found so far.
    pub findings: String,
    /// When it last advanced, unix milliseconds.
    pub updated_at: i64,
}
