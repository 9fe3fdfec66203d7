//! API clients ("apps") and their credentials.

use std::fmt;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// An app's identifier, `app_` followed by 16 hex digits.
///
/// The id, not the AppCode, is what other records refer to, so that a code
/// can be rotated (and quotas or signing keys attached later) without
/// rewriting history.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId(String);

impl AppId {
    /// A fresh random id.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut bytes);
        AppId(format!("app_{}", hex::encode(bytes)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for AppId {
    /// Wraps an id read from configuration or the database, unchecked: an
    /// id that names no app simply matches nothing.
    fn from(id: String) -> Self {
        AppId(id)
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An AppCode: the secret a client sends as `Authorization: APPCODE <code>`.
///
/// Generated codes are 32 lowercase hex digits (128 random bits). `Debug`
/// and `Display` hide it; [`expose`](Self::expose) it only to hand it to the
/// app's owner once.
#[derive(Clone, PartialEq, Eq)]
pub struct AppCode(String);

impl AppCode {
    /// A fresh random code. Store only its [`hash`](Self::hash).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        AppCode(hex::encode(bytes))
    }

    /// A fresh random code together with its hash, the pair needed to
    /// register an app and tell its owner the code.
    pub fn generate_with_hash() -> (Self, AppCodeHash) {
        let code = Self::generate();
        let hash = code.hash();
        (code, hash)
    }

    /// The code in clear.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash under which the app is stored.
    pub fn hash(&self) -> AppCodeHash {
        AppCodeHash::of(&self.0)
    }
}

impl fmt::Debug for AppCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppCode(****)")
    }
}

impl fmt::Display for AppCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// SHA-256 (lowercase hex) of an AppCode.
///
/// A plain hash suffices, unlike for ID numbers: generated codes carry 128
/// random bits, so they cannot be recovered by enumeration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppCodeHash(String);

impl AppCodeHash {
    /// Hashes a code exactly as presented by a client (no trimming or case
    /// folding: a code that differs in any byte is a different code).
    pub fn of(code: &str) -> Self {
        AppCodeHash(hex::encode(Sha256::digest(code.as_bytes())))
    }

    /// The hash as hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn from_stored(hex: String) -> Self {
        AppCodeHash(hex)
    }
}

/// A registered app.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    /// Its identifier.
    pub id: AppId,
    /// Human-readable name, for operators.
    pub name: String,
    /// Hash of its AppCode.
    pub code_hash: AppCodeHash,
    /// Disabled apps are refused without deleting their history.
    pub enabled: bool,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
    /// Its AppKey, for signed requests; `None` for apps made before signatures.
    pub app_key: Option<String>,
    /// Its AppSecret, sealed by the application (never stored in clear).
    pub secret_sealed: Option<Vec<u8>>,
    /// Its AppCode, sealed by the application; `None` for codes issued before codes were
    /// kept (hash only).
    pub code_sealed: Option<Vec<u8>>,
    /// Until when (unix ms) the AppCode replaced by the last rotation still works.
    pub previous_code_until: Option<i64>,
    /// Rate limit and alerting, as the operator set them.
    pub policy: AppPolicy,
}

/// What registering an app stores.
#[derive(Debug, Clone)]
pub struct NewApp {
    /// Display name.
    pub name: String,
    /// Hash of its AppCode.
    pub code_hash: AppCodeHash,
    /// Its AppKey.
    pub app_key: String,
    /// Its AppSecret, sealed.
    pub secret_sealed: Vec<u8>,
    /// Its AppCode, sealed (to show it again); `None`: kept as a hash only.
    pub code_sealed: Option<Vec<u8>>,
}

/// A random AppKey: 20 hex digits (80 bits: unique, and no secret on its own).
pub fn generate_app_key() -> String {
    let mut bytes = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// An app's operator-set policy.
#[derive(Debug, Clone, PartialEq)]
pub struct AppPolicy {
    /// Sustained requests per second; `None`: no rate limit.
    pub rate_per_sec: Option<f64>,
    /// Requests allowed at once above the sustained rate (at least 1).
    pub rate_burst: Option<u32>,
    /// Alert when the remaining calls fall to this percentage of those bought.
    pub alert_percent: u8,
    /// Where balance alerts are posted.
    pub webhook_url: Option<String>,
    /// Who is e-mailed balance alerts (addresses, checked by the caller; no line breaks).
    pub alert_emails: Vec<String>,
}

impl Default for AppPolicy {
    fn default() -> Self {
        AppPolicy {
            rate_per_sec: None,
            rate_burst: None,
            alert_percent: 20,
            webhook_url: None,
            alert_emails: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_32_hex_digits_and_distinct() {
        let a = AppCode::generate();
        let b = AppCode::generate();
        assert_eq!(a.expose().len(), 32);
        assert!(a.expose().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            AppCodeHash::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let (code, hash) = AppCode::generate_with_hash();
        assert_eq!(code.hash(), hash);
        assert_eq!(AppCodeHash::of(code.expose()), hash);
    }

    #[test]
    fn code_is_hidden_when_printed() {
        let code = AppCode::generate();
        let printed = format!("{code} {code:?}");
        assert!(!printed.contains(code.expose()));
    }

    #[test]
    fn app_ids_have_the_prefix() {
        let id = AppId::generate();
        assert!(id.as_str().starts_with("app_"));
        assert_eq!(id.as_str().len(), 20);
    }
}
