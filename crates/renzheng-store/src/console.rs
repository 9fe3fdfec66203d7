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

/// What an operator may do in the console (the store keeps it as its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OperatorRole {
    /// Read-only: calls, events, usage, alerts, compliance reports.
    Auditor,
    /// Apps, packages, grants, the registry and duplicate overrides, beside what an
    /// auditor reads.
    Admin,
    /// Everything, operators and keys included.
    Owner,
}

impl OperatorRole {
    /// Every role, the least first.
    pub const ALL: [OperatorRole; 3] = [
        OperatorRole::Auditor,
        OperatorRole::Admin,
        OperatorRole::Owner,
    ];

    /// The stored name (`owner`, `admin`, `auditor`).
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorRole::Owner => "owner",
            OperatorRole::Admin => "admin",
            OperatorRole::Auditor => "auditor",
        }
    }

    /// The role of a stored name.
    pub fn parse(name: &str) -> Option<OperatorRole> {
        OperatorRole::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether this role includes everything `needed` may do (roles are ordered: an owner
    /// may do what an admin may, an admin what an auditor may).
    pub fn includes(self, needed: OperatorRole) -> bool {
        self >= needed
    }
}

/// One console operator account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleOperator {
    /// The sign-in name (unique).
    pub name: String,
    /// What they may do.
    pub role: OperatorRole,
    /// Their password's Argon2id PHC string (never the password).
    pub password_hash: String,
    /// When the account was made (unix ms).
    pub created_at: i64,
    /// When its role or password last changed (unix ms).
    pub updated_at: i64,
    /// Their second factor, if they set one up.
    pub totp: Option<OperatorTotp>,
}

/// An operator's TOTP second factor as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorTotp {
    /// The secret, sealed under the secrets key (the store never sees it in clear).
    pub sealed: Vec<u8>,
    /// When it was turned on (unix ms); `None` while it waits for its first code.
    pub enabled_at: Option<i64>,
    /// The last 30-second step whose code was used.
    pub last_step: Option<i64>,
}

/// What a change to an operator account came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorChange {
    /// Done.
    Done,
    /// No operator of that name.
    NotFound,
    /// Refused: it would leave no owner (the last owner is neither removed nor demoted).
    LastOwner,
}
