//! Persistence for Renzheng.
//!
//! The server talks to storage only through the [`Store`] trait, held as an
//! `Arc<dyn Store>`, so backends can be swapped by configuration. Two backends
//! exist: [`SqliteStore`], one database file for one node, and [`PgStore`], a
//! PostgreSQL database that several nodes can share (every quota, rate and
//! replay rule holds across them). Both run one SQL layer (`src/sql/`): the statements
//! and row mapping are written once, and what differs between the databases is kept in
//! each backend's `dialect.rs`. The integration test suite (`tests/suite`) is
//! written against the trait and runs unchanged against both (`tests/sqlite.rs`,
//! and `tests/postgres.rs` when `RENZHENG_TEST_DATABASE_URL` names a server).
//!
//! The store reads no clock: every time it records comes from its caller (an `at` or a
//! `now_ms`), so that the caller's clock, real or fixed in a test, is the only one.
//!
//! What is stored, and what deliberately is not:
//!
//! * apps — API clients, identified by the SHA-256 of their AppCode (the code
//!   itself is never stored);
//! * the person registry — canonical ID number, normalised name, and face
//!   embeddings (plus an optional photo the caller has already encrypted);
//! * the audit log — masked name and ID, a keyed hash of the ID, and the
//!   outcome; never a clear name, ID number or photo;
//! * the operators' events — who changed the registry or the apps, and when, with
//!   the same masking.

#![deny(missing_docs)]

mod app;
mod console;
mod embedding;
mod error;
mod keys;
mod metering;
mod model;
// Each backend compiles the shared SQL layer, `src/sql/`, as a module of its own.
mod postgres;
mod sqlite;

use async_trait::async_trait;
use renzheng_domain::{IdNumber, PersonName};

pub use app::{generate_app_key, App, AppCode, AppCodeHash, AppId, AppPolicy, NewApp};
pub use console::{ConsoleOperator, ConsoleSession, OperatorChange, OperatorRole, OperatorTotp};
pub use embedding::{
    decode_embedding, encode_embedding, key_fingerprint, key_id_of_fingerprint, subkey,
    TemplateKey, SEALED_PREFIX_LEN, SEALED_V2,
};
pub use error::StoreError;
pub use keys::{KeyRecord, RekeyBatch, SealedData, SealedPhoto};
pub use metering::{
    AlertKind, AlertRecord, AttemptWindow, AuditQuery, Balance, Grant, GrantChange, GrantChanged,
    NewAlert, Package, QuotaRefusal, Reconciliation, ReservationId, Reserved, Settle, UsageRow,
};
pub use model::{
    AdminEvent, AdminEventRecord, AuditEntry, AuditRecord, BasisRecord, ComplianceCounts,
    DuePerson, DuplicateScan, EventQuery, NewPortrait, Person, PersonHandle, PersonRecord,
    PersonSummary, Portrait, Processing, ProcessingAction, ProcessingRecord, RetentionCutoffs,
    RetentionDue, StoredTemplate, TemplateChanges,
};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Storage operations needed by the service.
///
/// Lookups that may legitimately find nothing return `Ok(None)`; operations
/// on something that must exist return [`StoreError::NotFound`].
#[async_trait]
pub trait Store: Send + Sync {
    /// Checks that the database answers (for the readiness probe).
    async fn ping(&self) -> Result<(), StoreError>;

    /// The fingerprint recorded for the key `name`, recording `fingerprint` (at `now_ms`)
    /// first when there is none (the first node to start sets it; every later one must
    /// match).
    async fn claim_key_fingerprint(
        &self,
        name: &str,
        fingerprint: &str,
        now_ms: i64,
    ) -> Result<String, StoreError>;

    /// The record of the key `name`, if any node has claimed one.
    async fn key_record(&self, name: &str) -> Result<Option<KeyRecord>, StoreError>;

    /// Makes `to` the current key of `name` in place of `from`, which becomes the previous
    /// key (the start of a rotation; at `now_ms`). Nothing changes when `to` is already
    /// current (a rotation resumed); [`StoreError::Conflict`] when the current key is
    /// neither, or another rotation's previous key is not retired yet.
    async fn begin_key_rotation(
        &self,
        name: &str,
        from: &str,
        to: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Retires the previous key of `name`, which must be `fingerprint` (at `now_ms`).
    async fn retire_key(
        &self,
        name: &str,
        fingerprint: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// How many `data` values are not sealed under the key whose blobs start with
    /// `prefix` (see [`SEALED_V2`]).
    async fn count_not_sealed_under(
        &self,
        data: SealedData,
        prefix: &[u8],
    ) -> Result<u64, StoreError>;

    /// Uses `templates` from now on (a key rotation changed which key seals).
    fn set_template_key(&self, templates: TemplateKey);

    /// Moves up to `limit` persons whose row keys come after `after` (from the start when
    /// `None`), and whose identity is not sealed under the current template key, to it:
    /// new lookup hashes, identity and templates re-sealed, the index told (their
    /// portraits logged removed and added), in one transaction under the registry's lock.
    /// Once no person is left to move, re-seals (up to `limit`) templates of current
    /// persons left under another key instead, answering the same cursor while more may
    /// be left.
    async fn rekey_registry(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<RekeyBatch, StoreError>;

    /// Up to `limit` kept photos with portrait ids above `after` not sealed under the key
    /// whose blobs start with `prefix`, in id order.
    async fn photos_not_sealed_under(
        &self,
        prefix: &[u8],
        after: i64,
        limit: u32,
    ) -> Result<Vec<SealedPhoto>, StoreError>;

    /// Replaces a kept photo's sealed bytes if they are still `old` (compare and set: a
    /// portrait replaced meanwhile is left alone); whether it did.
    async fn reseal_photo(
        &self,
        portrait_id: i64,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError>;

    /// Replaces an app's sealed AppCode if it is still `old`; whether it did.
    async fn reseal_app_code(&self, id: &AppId, old: &[u8], new: &[u8])
        -> Result<bool, StoreError>;

    /// Replaces an app's sealed AppSecret if it is still `old`; whether it did.
    async fn reseal_app_secret(
        &self,
        id: &AppId,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError>;

    /// Closes the connections, waiting for in-flight statements (commands call it before
    /// exiting, so that the database files are left checkpointed).
    async fn close(&self);

    /// Registers a new, enabled app with a freshly generated id and the default policy,
    /// created at `now_ms`.
    ///
    /// Fails with [`StoreError::Conflict`] if an app already has this code
    /// hash or AppKey.
    async fn create_app(&self, new: &NewApp, now_ms: i64) -> Result<App, StoreError>;

    /// The app whose AppCode hashes to `code_hash`, enabled or not: its current code, or
    /// the code it replaced while that one's grace period lasts (at `now_ms`).
    async fn find_app_by_code_hash(
        &self,
        code_hash: &AppCodeHash,
        now_ms: i64,
    ) -> Result<Option<App>, StoreError>;

    /// The app with this AppKey, enabled or not.
    async fn find_app_by_key(&self, app_key: &str) -> Result<Option<App>, StoreError>;

    /// The app with this id.
    async fn get_app(&self, id: &AppId) -> Result<Option<App>, StoreError>;

    /// Replaces the app's AppCode (its hash, and the code sealed to show again, `None`
    /// for none); the old one keeps working until `previous_until` (unix ms; `None`: it
    /// stops now). [`StoreError::NotFound`] without such an app.
    async fn rotate_app_code(
        &self,
        id: &AppId,
        code_hash: &AppCodeHash,
        code_sealed: Option<&[u8]>,
        previous_until: Option<i64>,
    ) -> Result<(), StoreError>;

    /// Replaces the app's AppKey and sealed AppSecret.
    async fn set_app_secret(
        &self,
        id: &AppId,
        app_key: &str,
        secret_sealed: &[u8],
    ) -> Result<(), StoreError>;

    /// Replaces the app's policy (rate limit, alert threshold, webhook).
    async fn set_app_policy(&self, id: &AppId, policy: &AppPolicy) -> Result<(), StoreError>;

    /// The package catalogue, active and retired, by price.
    async fn list_packages(&self) -> Result<Vec<Package>, StoreError>;

    /// One package by name.
    async fn get_package(&self, name: &str) -> Result<Option<Package>, StoreError>;

    /// Adds or replaces a package (grants already made keep their calls).
    async fn put_package(&self, package: &Package) -> Result<(), StoreError>;

    /// Adds `calls` to the app's balance, expiring at `expires_at`, with its ledger entry,
    /// in one transaction. [`StoreError::NotFound`] without such an app.
    async fn grant(
        &self,
        app_id: &AppId,
        package: Option<&str>,
        calls: i64,
        expires_at: Option<i64>,
        now_ms: i64,
    ) -> Result<Grant, StoreError>;

    /// Revokes or adjusts grant `grant_id` of `app_id`, with its ledger entry, in one
    /// transaction serialised with the reservations of the app's units (so the floor of
    /// an adjustment, the calls charged and held, cannot move meanwhile).
    async fn change_grant(
        &self,
        app_id: &AppId,
        grant_id: i64,
        change: GrantChange,
        now_ms: i64,
    ) -> Result<GrantChanged, StoreError>;

    /// The app's balance at `now_ms`.
    async fn balance(&self, app_id: &AppId, now_ms: i64) -> Result<Balance, StoreError>;

    /// Holds one unit of the app's unexpired grant that expires first, atomically (never
    /// more units held and charged than granted, whatever runs concurrently). The hold
    /// lapses at `now_ms + hold_ms` unless settled.
    async fn reserve_unit(
        &self,
        app_id: &AppId,
        now_ms: i64,
        hold_ms: i64,
    ) -> Result<Reserved, StoreError>;

    /// Writes a check's audit row and settles its reservation, in one transaction: a
    /// charge adds its ledger entry and marks the row charged. Returns whether it was
    /// charged. A charge whose hold has lapsed (reclaimed) is taken from any grant with
    /// room, or not charged (and logged) when none has.
    async fn finish_check(&self, entry: &AuditEntry, settle: Settle) -> Result<bool, StoreError>;

    /// Gives back every unit whose hold lapsed before `now_ms` (a node died between
    /// reserve and settle); returns how many.
    async fn reclaim_reservations(&self, now_ms: i64) -> Result<u64, StoreError>;

    /// The ledger's totals against the audit rows since `since_ms`, for one app.
    async fn reconcile(&self, app_id: &AppId, since_ms: i64) -> Result<Reconciliation, StoreError>;

    /// Takes one request from the app's rate (GCRA: `interval_us` between requests,
    /// `burst` at once). `Ok(None)` when allowed; `Ok(Some(ms))` when not, with how long
    /// to wait.
    async fn take_rate(
        &self,
        app_id: &AppId,
        now_ms: i64,
        interval_us: i64,
        burst: u32,
    ) -> Result<Option<i64>, StoreError>;

    /// Gives back one request taken from `key`'s rate with [`take_rate`](Self::take_rate)
    /// at `interval_us` (the console's sign-in does not count an attempt that succeeded).
    async fn give_back_rate(&self, key: &AppId, interval_us: i64) -> Result<(), StoreError>;

    /// Counts one attempt on an ID number (by keyed hash) for an app, unless the current
    /// minute or day already holds `per_minute` / `per_day` of them (0: no limit); then
    /// nothing is counted and the full window is returned.
    async fn count_attempt(
        &self,
        app_id: &AppId,
        id_hash: &str,
        now_ms: i64,
        per_minute: u32,
        per_day: u32,
    ) -> Result<Option<AttemptWindow>, StoreError>;

    /// Uses a signature nonce: `true` the first time within its window, `false` when it
    /// was already used and has not expired (a replay).
    async fn use_nonce(
        &self,
        app_id: &AppId,
        nonce: &str,
        now_ms: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError>;

    /// Forgets what has expired by `now_ms`: nonces, attempt windows, lapsed holds
    /// (reclaimed), lapsed console sessions. Returns the number of rows removed.
    async fn purge_expired(&self, now_ms: i64) -> Result<u64, StoreError>;

    /// A page of the audit log, newest first.
    async fn audit_page(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;

    /// Checks per day (days in UTC + `offset_ms`) and result code, for one app or all,
    /// arrived in `[from_ms, to_ms)`.
    async fn usage(
        &self,
        app_id: Option<&AppId>,
        from_ms: i64,
        to_ms: i64,
        offset_ms: i64,
    ) -> Result<Vec<UsageRow>, StoreError>;

    /// Records an alert unless one of the same app, kind and period exists; returns its
    /// id when recorded.
    async fn record_alert(&self, alert: &NewAlert) -> Result<Option<i64>, StoreError>;

    /// Notes a delivery attempt of an alert's webhook.
    async fn alert_attempted(
        &self,
        id: i64,
        delivered_at: Option<i64>,
        error: Option<&str>,
    ) -> Result<(), StoreError>;

    /// The most recent alerts, of one app or all, newest first.
    async fn recent_alerts(
        &self,
        app_id: Option<&AppId>,
        limit: u32,
    ) -> Result<Vec<AlertRecord>, StoreError>;

    /// All apps, oldest first.
    async fn list_apps(&self) -> Result<Vec<App>, StoreError>;

    /// Enables or disables an app; [`StoreError::NotFound`] if it does not
    /// exist.
    async fn set_app_enabled(&self, id: &AppId, enabled: bool) -> Result<(), StoreError>;

    /// Creates the person, or renames them if they exist (their portraits
    /// are kept); `now_ms` is the creation or renaming time.
    async fn upsert_person(
        &self,
        id: &IdNumber,
        name: &PersonName,
        now_ms: i64,
    ) -> Result<Person, StoreError>;

    /// Adds a portrait (added at `now_ms`) to an existing person and returns its id;
    /// [`StoreError::NotFound`] if the person does not exist.
    async fn add_portrait(
        &self,
        id: &IdNumber,
        portrait: NewPortrait,
        now_ms: i64,
    ) -> Result<i64, StoreError>;

    /// Creates the person if new and adds `portraits`, all in one transaction and all at
    /// `now_ms`: either everything is stored or nothing is. Never renames: an enrolled
    /// person under another name is [`StoreError::Conflict`] (see
    /// [`rename_person`](Self::rename_person)). With `expected_version`, the write
    /// happens only while the registry is still at that version (the one its checks
    /// were made against), else [`StoreError::Stale`].
    async fn enrol(
        &self,
        id: &IdNumber,
        name: &PersonName,
        portraits: Vec<NewPortrait>,
        expected_version: Option<i64>,
        now_ms: i64,
    ) -> Result<Person, StoreError> {
        self.enrol_with_basis(id, name, portraits, None, expected_version, now_ms)
            .await
    }

    /// [`enrol`](Self::enrol), recording `basis` (when given) in the same transaction: a
    /// new basis replaces the person's (a renewal), none keeps it.
    async fn enrol_with_basis(
        &self,
        id: &IdNumber,
        name: &PersonName,
        portraits: Vec<NewPortrait>,
        basis: Option<&BasisRecord>,
        expected_version: Option<i64>,
        now_ms: i64,
    ) -> Result<Person, StoreError>;

    /// Records (renews) the legal basis of an enrolled person ([`StoreError::NotFound`]
    /// without them).
    async fn record_basis(&self, id: &IdNumber, basis: &BasisRecord) -> Result<(), StoreError>;

    /// Counts the persons with face data, those without a basis, and dates the oldest.
    async fn compliance_counts(&self) -> Result<ComplianceCounts, StoreError>;

    /// When the registry, as it holds now, reached `n` persons with face data: the time
    /// of the `n`-th earliest first portrait among them (`None` below `n`).
    async fn face_data_reached(&self, n: u64) -> Result<Option<i64>, StoreError>;

    /// A compliance mark (a date a line was reached), if set.
    async fn compliance_mark(&self, name: &str) -> Result<Option<i64>, StoreError>;

    /// Sets a compliance mark (`Some`: unless one is set already, so that the first node
    /// to see a line reached dates it) or clears it (`None`); whether this call changed it
    /// (so that only the node that set a mark acts on it).
    async fn set_compliance_mark(&self, name: &str, at: Option<i64>) -> Result<bool, StoreError>;

    /// Notes that a check compared a photo with the person's portraits at `at_ms`
    /// (`registry.inactive_days`); a person removed meanwhile is no error.
    async fn note_person_checked(&self, id: &IdNumber, at_ms: i64) -> Result<(), StoreError>;

    /// Up to `limit` persons the retention `cutoffs` have come to, whose row keys come
    /// after that of `after` (from the start when `None`), in the registry's stable order.
    async fn persons_due(
        &self,
        cutoffs: RetentionCutoffs,
        after: Option<&IdNumber>,
        limit: u32,
    ) -> Result<Vec<DuePerson>, StoreError>;

    /// How many persons the retention `cutoffs` have come to, and the oldest enrolment.
    async fn count_persons_due(
        &self,
        cutoffs: RetentionCutoffs,
    ) -> Result<RetentionDue, StoreError>;

    /// The processing records made in `[from_ms, to_ms)` with ids above `after`, oldest
    /// first, up to `limit`.
    async fn processing_records(
        &self,
        from_ms: i64,
        to_ms: i64,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ProcessingRecord>, StoreError>;

    /// The newest processing records (up to `limit`, newest first) of the person whose
    /// keyed ID-number hashes are `hashes` (for a data subject's access request).
    async fn person_processing(
        &self,
        hashes: &[String],
        limit: u32,
    ) -> Result<Vec<ProcessingRecord>, StoreError>;

    /// Deletes the processing records made before `before_ms` (their retention); returns
    /// how many.
    async fn purge_processing_before(&self, before_ms: i64) -> Result<u64, StoreError>;

    /// Gives an enrolled person another name ([`StoreError::NotFound`] without them).
    async fn rename_person(
        &self,
        id: &IdNumber,
        name: &PersonName,
        now_ms: i64,
    ) -> Result<Person, StoreError>;

    /// Replaces all of an enrolled person's portraits (of every model) with `portraits`,
    /// in one transaction; `expected_version` as for [`enrol`](Self::enrol).
    async fn replace_portraits(
        &self,
        id: &IdNumber,
        portraits: Vec<NewPortrait>,
        expected_version: Option<i64>,
        now_ms: i64,
    ) -> Result<Person, StoreError> {
        self.replace_portraits_with_basis(id, portraits, None, expected_version, now_ms)
            .await
    }

    /// [`replace_portraits`](Self::replace_portraits), recording `basis` (when given) in
    /// the same transaction; none keeps the person's.
    async fn replace_portraits_with_basis(
        &self,
        id: &IdNumber,
        portraits: Vec<NewPortrait>,
        basis: Option<&BasisRecord>,
        expected_version: Option<i64>,
        now_ms: i64,
    ) -> Result<Person, StoreError>;

    /// The registry's version: it grows with every change to its templates.
    async fn registry_version(&self) -> Result<i64, StoreError>;

    /// Up to `limit` templates of `model_id` with portrait ids above `after`, in id order
    /// (building the in-memory index page by page).
    async fn templates_after(
        &self,
        model_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredTemplate>, StoreError>;

    /// The templates of these portraits that still exist (re-scoring an index's
    /// candidates exactly).
    async fn templates_by_ids(&self, ids: &[i64]) -> Result<Vec<StoredTemplate>, StoreError>;

    /// What changed in the templates of `model_id` after version `after` (bringing an
    /// index up to date).
    async fn template_changes(
        &self,
        model_id: &str,
        after: i64,
    ) -> Result<TemplateChanges, StoreError>;

    /// How many persons the registry holds.
    async fn count_persons(&self) -> Result<u64, StoreError>;

    /// A page of the registry, newest enrolment first.
    async fn persons_page(&self, offset: u64, limit: u32)
        -> Result<Vec<PersonSummary>, StoreError>;

    /// The persons registered under exactly this (normalised) name, newest first (found
    /// through the name's keyed hash).
    async fn persons_named(
        &self,
        name: &PersonName,
        limit: u32,
    ) -> Result<Vec<PersonSummary>, StoreError>;

    /// The unfinished duplicate-face scan of `model_id`, if any.
    async fn duplicate_scan(&self, model_id: &str) -> Result<Option<DuplicateScan>, StoreError>;

    /// Records how far a duplicate-face scan has come (replacing its previous state).
    async fn save_duplicate_scan(&self, scan: &DuplicateScan) -> Result<(), StoreError>;

    /// Forgets the duplicate-face scan of `model_id` (finished, or started over).
    async fn end_duplicate_scan(&self, model_id: &str) -> Result<(), StoreError>;

    /// The handle the person with this ID number has (or would have once enrolled).
    fn person_handle(&self, id: &IdNumber) -> PersonHandle;

    /// The ID number of the person with this handle, if enrolled.
    async fn person_by_handle(&self, handle: PersonHandle) -> Result<Option<IdNumber>, StoreError>;

    /// The person and their portraits (oldest first; photos not loaded).
    async fn get_person(&self, id: &IdNumber) -> Result<Option<PersonRecord>, StoreError>;

    /// The persons who have portraits but none made by `model_id` (enrolled with another
    /// model pack: checks on the active pack would answer 5 for them), in ID order.
    async fn persons_without_model(&self, model_id: &str) -> Result<Vec<IdNumber>, StoreError>;

    /// Up to `limit` registered ID numbers after `after` (all when `None`), in the
    /// registry's stable order (that of their keyed hashes, not of the numbers): a page of
    /// the registry, for export.
    async fn list_person_ids(
        &self,
        after: Option<&IdNumber>,
        limit: u32,
    ) -> Result<Vec<IdNumber>, StoreError>;

    /// The kept (already encrypted) photos of the person's portraits, oldest first; empty
    /// when no photo was kept.
    async fn kept_photos(&self, id: &IdNumber) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Deletes the person and everything stored about them, atomically: the person,
    /// their portraits (embeddings and photos), and the link from past audit rows to them
    /// and from past admin events (the masked name/ID and the keyed hash made with each of
    /// `audit_keys` are cleared; the anonymous statistics stay). Returns whether they
    /// existed.
    async fn remove_person(&self, id: &IdNumber, audit_keys: &[&[u8]]) -> Result<bool, StoreError>;

    /// Appends an audit entry (of something that reserved nothing; see
    /// [`finish_check`](Self::finish_check)).
    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// Deletes the audit records made before `before_ms` (unix milliseconds); returns how
    /// many (the retention policy).
    async fn purge_audit_before(&self, before_ms: i64) -> Result<u64, StoreError>;

    /// The `limit` most recent audit entries, newest first.
    async fn recent_audit(&self, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;

    /// What is recorded about the person whose keyed ID-number hashes (one per audit key
    /// in force) are `hashes`: their newest checks and operator events, up to `limit` of
    /// each, newest first (for a data subject's access request).
    async fn person_trail(
        &self,
        hashes: &[String],
        limit: u32,
    ) -> Result<(Vec<AuditRecord>, Vec<AdminEventRecord>), StoreError>;

    /// Appends an operator event (a mutation of the registry or of the apps).
    async fn record_event(&self, event: &AdminEvent) -> Result<(), StoreError>;

    /// The `limit` most recent operator events, newest first.
    async fn recent_events(&self, limit: u32) -> Result<Vec<AdminEventRecord>, StoreError>;

    /// The operator events `query` selects, newest first.
    async fn events_page(&self, query: &EventQuery) -> Result<Vec<AdminEventRecord>, StoreError>;

    /// Stores a new console session.
    async fn create_console_session(&self, session: &ConsoleSession) -> Result<(), StoreError>;

    /// The live session of `token_hash` at `now_ms`, its idle time renewed to
    /// `now_ms + idle_ms` (never past its end); `None` when unknown, idle too long or ended.
    async fn touch_console_session(
        &self,
        token_hash: &str,
        now_ms: i64,
        idle_ms: i64,
    ) -> Result<Option<ConsoleSession>, StoreError>;

    /// Ends a session (sign-out); `false` when there was none.
    async fn end_console_session(&self, token_hash: &str) -> Result<bool, StoreError>;

    /// The live sessions of `operator` at `now_ms`, newest first.
    async fn console_sessions_of(
        &self,
        operator: &str,
        now_ms: i64,
    ) -> Result<Vec<ConsoleSession>, StoreError>;

    /// Ends the session `token_hash` if it is `operator`'s; whether it did.
    async fn end_operator_session(
        &self,
        operator: &str,
        token_hash: &str,
    ) -> Result<bool, StoreError>;

    /// Leaves a console session a one-time message (sealed by the caller): `id_hash` and
    /// `session_hash` are SHA-256 hashes of the message's id and of the session's token.
    /// Expired messages are forgotten by [`Store::purge_expired`].
    async fn put_console_flash(
        &self,
        id_hash: &str,
        session_hash: &str,
        sealed: &[u8],
        expires_at: i64,
    ) -> Result<(), StoreError>;

    /// Takes the message `id_hash` left for `session_hash`, unexpired at `now_ms`: it is
    /// deleted as it is read, so it is shown once (`None`: unknown, another session's,
    /// expired or already taken).
    async fn take_console_flash(
        &self,
        id_hash: &str,
        session_hash: &str,
        now_ms: i64,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every console operator, by name.
    async fn console_operators(&self) -> Result<Vec<ConsoleOperator>, StoreError>;

    /// The console operator `name`.
    async fn console_operator(&self, name: &str) -> Result<Option<ConsoleOperator>, StoreError>;

    /// Adds a console operator; `false` when the name is taken or, with `only_if_none`
    /// (seeding the first owner from the configuration), when any operator exists.
    async fn add_console_operator(
        &self,
        operator: &ConsoleOperator,
        only_if_none: bool,
    ) -> Result<bool, StoreError>;

    /// Gives operator `name` another role; [`OperatorChange::LastOwner`] when that would
    /// leave no owner.
    async fn set_console_operator_role(
        &self,
        name: &str,
        role: OperatorRole,
        now_ms: i64,
    ) -> Result<OperatorChange, StoreError>;

    /// Sets operator `name`'s password hash and ends their sessions, but the one whose
    /// token hash is `keep_session` (the operator changing their own password stays
    /// signed in there), in one transaction.
    async fn set_console_operator_password(
        &self,
        name: &str,
        password_hash: &str,
        now_ms: i64,
        keep_session: Option<&str>,
    ) -> Result<OperatorChange, StoreError>;

    /// Sets (`None`: clears) operator `name`'s second factor; with `keep_session` (turning
    /// it on), their sessions but the one of that hash end in the same transaction.
    /// Whether the operator exists.
    async fn set_console_operator_totp(
        &self,
        name: &str,
        totp: Option<&OperatorTotp>,
        keep_session: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// Records that operator `name` used the code of `step`, in one statement: `false`
    /// when a code of that step or a later one was used already (a replay, on any node),
    /// or their second factor is not on.
    async fn take_totp_step(&self, name: &str, step: i64) -> Result<bool, StoreError>;

    /// Replaces operator `name`'s sealed secret `old` by `new` (a key rotation); `false`
    /// when it changed meanwhile.
    async fn reseal_console_totp(
        &self,
        name: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError>;

    /// Removes operator `name` and ends their sessions, in one transaction;
    /// [`OperatorChange::LastOwner`] for the last owner.
    async fn remove_console_operator(&self, name: &str) -> Result<OperatorChange, StoreError>;
}

/// An identity read back from the registry, parsed (a row that does not parse is corrupt).
pub(crate) fn parse_identity(id: &str, name: &str) -> Result<(IdNumber, PersonName), StoreError> {
    let id = IdNumber::parse(id)
        .map_err(|e| StoreError::Corrupt(format!("stored ID number does not parse: {e}")))?;
    let name = PersonName::parse(name)
        .map_err(|e| StoreError::Corrupt(format!("stored name does not parse: {e}")))?;
    Ok((id, name))
}
