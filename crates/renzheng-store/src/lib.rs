//! Persistence for Renzheng.
//!
//! The server talks to storage only through the [`Store`] trait, held as an
//! `Arc<dyn Store>`, so backends can be swapped by configuration. One backend
//! exists today, [`SqliteStore`]; a PostgreSQL one is planned, and the
//! integration test suite (`tests/suite`) is written against the trait so it
//! can run unchanged against both.
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
mod embedding;
mod error;
mod model;
mod sqlite;

use async_trait::async_trait;
use renzheng_domain::{IdNumber, PersonName};

pub use app::{App, AppCode, AppCodeHash, AppId};
pub use embedding::{decode_embedding, encode_embedding, TemplateKey};
pub use error::StoreError;
pub use model::{
    AdminEvent, AdminEventRecord, AuditEntry, AuditRecord, NewPortrait, Person, PersonRecord,
    Portrait,
};
pub use sqlite::SqliteStore;

/// Storage operations needed by the service.
///
/// Lookups that may legitimately find nothing return `Ok(None)`; operations
/// on something that must exist return [`StoreError::NotFound`].
#[async_trait]
pub trait Store: Send + Sync {
    /// Checks that the database answers (for the readiness probe).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Closes the connections, waiting for in-flight statements (commands call it before
    /// exiting, so that the database files are left checkpointed).
    async fn close(&self);

    /// Registers a new, enabled app with a freshly generated id.
    ///
    /// Fails with [`StoreError::Conflict`] if an app already has this code
    /// hash.
    async fn create_app(&self, name: &str, code_hash: &AppCodeHash) -> Result<App, StoreError>;

    /// The app whose AppCode hashes to `code_hash`, enabled or not.
    async fn find_app_by_code_hash(
        &self,
        code_hash: &AppCodeHash,
    ) -> Result<Option<App>, StoreError>;

    /// All apps, oldest first.
    async fn list_apps(&self) -> Result<Vec<App>, StoreError>;

    /// Enables or disables an app; [`StoreError::NotFound`] if it does not
    /// exist.
    async fn set_app_enabled(&self, id: &AppId, enabled: bool) -> Result<(), StoreError>;

    /// Creates the person, or renames them if they exist (their portraits
    /// are kept).
    async fn upsert_person(&self, id: &IdNumber, name: &PersonName) -> Result<Person, StoreError>;

    /// Adds a portrait to an existing person and returns its id;
    /// [`StoreError::NotFound`] if the person does not exist.
    async fn add_portrait(&self, id: &IdNumber, portrait: NewPortrait) -> Result<i64, StoreError>;

    /// Creates or renames the person and adds `portraits`, all in one transaction:
    /// either everything is stored or nothing is.
    async fn enrol(
        &self,
        id: &IdNumber,
        name: &PersonName,
        portraits: Vec<NewPortrait>,
    ) -> Result<Person, StoreError>;

    /// The person and their portraits (oldest first; photos not loaded).
    async fn get_person(&self, id: &IdNumber) -> Result<Option<PersonRecord>, StoreError>;

    /// The persons who have portraits but none made by `model_id` (enrolled with another
    /// model pack: checks on the active pack would answer 5 for them), in ID order.
    async fn persons_without_model(&self, model_id: &str) -> Result<Vec<IdNumber>, StoreError>;

    /// The kept (already encrypted) photos of the person's portraits, oldest first; empty
    /// when no photo was kept.
    async fn kept_photos(&self, id: &IdNumber) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Deletes the person and everything stored about them, atomically: the person,
    /// their portraits (embeddings and photos), and the link from past audit rows to them
    /// and from past admin events (the masked name/ID and the keyed hash made with
    /// `audit_key` are cleared; the anonymous statistics stay). Returns whether they
    /// existed.
    async fn remove_person(&self, id: &IdNumber, audit_key: &[u8]) -> Result<bool, StoreError>;

    /// Appends an audit entry.
    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// Deletes the audit records made before `before_ms` (unix milliseconds); returns how
    /// many (the retention policy).
    async fn purge_audit_before(&self, before_ms: i64) -> Result<u64, StoreError>;

    /// The `limit` most recent audit entries, newest first.
    async fn recent_audit(&self, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;

    /// Appends an operator event (a mutation of the registry or of the apps).
    async fn record_event(&self, event: &AdminEvent) -> Result<(), StoreError>;

    /// The `limit` most recent operator events, newest first.
    async fn recent_events(&self, limit: u32) -> Result<Vec<AdminEventRecord>, StoreError>;
}

/// Current time as unix milliseconds, the timestamp format of every table.
pub(crate) fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("system clock is after 1970");
    i64::try_from(since_epoch.as_millis()).expect("milliseconds fit in i64 until year 292 million")
}
