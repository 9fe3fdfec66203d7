//! What the store keeps about the keys the data is sealed under, and the units of work of
//! a key rotation (the application drives it; see `renzheng_app::keys`).

use renzheng_domain::IdNumber;

/// A key's record in the database: which key seals (its fingerprint), which one did
/// before while rows may remain under it, and which were retired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRecord {
    /// Fingerprint of the key everything is sealed under (new writes, and every row once
    /// a rotation has finished).
    pub current: String,
    /// Fingerprint of the key rotated away from, until it is retired.
    pub previous: Option<String>,
    /// Fingerprints of the keys retired: a node holding only one of these refuses to start.
    pub retired: Vec<String>,
}

/// A kind of sealed value, for counting the rows not yet under a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedData {
    /// The registry's sealed identities (template key).
    Identities,
    /// The face templates (template key).
    Templates,
    /// The kept photos (photo key).
    Photos,
    /// The apps' sealed AppSecrets (secrets key).
    AppSecrets,
    /// The apps' sealed AppCodes (secrets key).
    AppCodes,
    /// The console operators' sealed TOTP secrets (secrets key).
    TotpSecrets,
}

impl SealedData {
    /// `(table, column)` of the sealed blobs.
    pub(crate) fn column(self) -> (&'static str, &'static str) {
        match self {
            SealedData::Identities => ("persons", "sealed"),
            SealedData::Templates => ("portraits", "embedding"),
            SealedData::Photos => ("portraits", "photo"),
            SealedData::AppSecrets => ("apps", "secret_sealed"),
            SealedData::AppCodes => ("apps", "code_sealed"),
            SealedData::TotpSecrets => ("console_operators", "totp_sealed"),
        }
    }
}

/// What one batch of a template-key rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RekeyBatch {
    /// Persons moved to the current key (their identity, lookup hashes and templates).
    pub persons: u64,
    /// Templates re-sealed under the current key.
    pub templates: u64,
    /// Where the next batch starts; `None` when this one found nothing left to move
    /// after the cursor it was given and no stray template beyond what it re-sealed.
    pub cursor: Option<String>,
}

/// A kept photo to re-seal under the current photo key.
#[derive(Debug, Clone)]
pub struct SealedPhoto {
    /// The portrait it belongs to.
    pub portrait_id: i64,
    /// Its person (kept photos are bound to the ID number).
    pub id_number: IdNumber,
    /// The sealed photo as stored.
    pub sealed: Vec<u8>,
}
