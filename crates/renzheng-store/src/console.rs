//! Operator console sessions: the stored shape.
//!
//! The store never sees a session token, only its hash, so a copy of the database cannot
//! be used to sign in. A session lapses when idle for its idle time and, whatever its
//! activity, at its absolute end; both rules are applied by the backend's SQL on every
//! read, so every node agrees on them.

/// One signed-in operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// SHA-256 of the session token, hex (the token itself is only in the cookie).
    pub token_hash: String,
    /// The operator's name.
    pub operator: String,
    /// The CSRF token every form of this session must carry.
    pub csrf: String,
    /// When it was created (unix ms).
    pub created_at: i64,
    /// When it lapses unless used again (unix ms).
    pub idle_until: i64,
    /// When it ends whatever its use (unix ms).
    pub ends_at: i64,
}
