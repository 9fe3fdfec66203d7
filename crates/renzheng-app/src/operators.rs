//! The console's operator accounts: who may sign in and with which role.
//!
//! `owner` may do everything, operators and keys included; `admin` apps, packages,
//! grants, the registry and duplicate overrides; `auditor` reads calls, events, usage,
//! alerts and compliance reports. Which console route needs which role is the edge's
//! table (`renzheng-server`'s `console::access`); the CLI, run by whoever holds the
//! server's configuration, may do everything and is the way back in when the last owner
//! is locked out.
//!
//! The configured `console.operator` / `console.password_hash` become the first owner
//! the first time the accounts are found empty ([`App::seed_first_owner`], run by a
//! sign-in and by the CLI's `console operators` before anything else: the console's own
//! account pages need a signed-in account, so they never find the table empty); from then on
//! the accounts live in the database and those settings are not read again. There is
//! always an owner: the store refuses to remove or demote the last one under a lock
//! shared by every node. A changed password ends the account's other sessions; a removed
//! account's sessions end with it.

use renzheng_store::{ConsoleOperator, OperatorChange, OperatorRole};

use crate::audit::Actor;
use crate::console::{hash_password, token_hash, verify_password, OperatorSession};
use crate::{App, AppError};

/// The longest operator name, characters.
pub const MAX_OPERATOR_NAME_CHARS: usize = 64;

/// An operator account as listed (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorView {
    /// The sign-in name.
    pub name: String,
    /// What they may do.
    pub role: OperatorRole,
    /// When the account was made (unix ms).
    pub created_at: i64,
    /// When its role or password last changed (unix ms).
    pub updated_at: i64,
    /// Whether signing in takes a code from their authenticator app too.
    pub two_step: bool,
}

impl From<ConsoleOperator> for OperatorView {
    fn from(o: ConsoleOperator) -> Self {
        OperatorView {
            two_step: o.totp.as_ref().is_some_and(|t| t.enabled_at.is_some()),
            name: o.name,
            role: o.role,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// `name` as an operator name: 1 to 64 characters, none a control character or a space
/// at either end (a name is typed at sign-in; one that differs by an invisible character
/// from another would deceive whoever reads the events).
pub fn operator_name(name: &str) -> Result<&str, AppError> {
    let chars = name.chars().count();
    if chars == 0
        || chars > MAX_OPERATOR_NAME_CHARS
        || name.trim() != name
        || name.chars().any(char::is_control)
    {
        return Err(AppError::InvalidOperatorName);
    }
    Ok(name)
}

/// The role of its stored name, or a refusal naming the three.
pub fn parse_role(name: &str) -> Result<OperatorRole, AppError> {
    OperatorRole::parse(name).ok_or_else(|| {
        AppError::Invalid(format!(
            "unknown role {name:?}: one of owner, admin, auditor"
        ))
    })
}

/// Hashes `password` off the async runtime (Argon2 is deliberately slow).
async fn hashed(password: &str) -> Result<String, AppError> {
    let password = zeroize::Zeroizing::new(password.to_owned());
    crate::telemetry::spawn_blocking_with_tracing(move || hash_password(&password)).await?
}

fn changed(change: OperatorChange) -> Result<(), AppError> {
    match change {
        OperatorChange::Done => Ok(()),
        OperatorChange::NotFound => Err(AppError::NotFound("operator")),
        OperatorChange::LastOwner => Err(AppError::LastOwner),
    }
}

impl App {
    /// Makes the configured operator (`console.operator`, `console.password_hash`) the
    /// first owner when no account exists yet; nothing otherwise. Safe to call from every
    /// node at once: the store inserts it once.
    pub async fn seed_first_owner(&self) -> Result<(), AppError> {
        let console = &self.settings.console;
        let Some(hash) = &console.password_hash else {
            return Ok(());
        };
        let now = self.now_ms();
        let seeded = self
            .store
            .add_console_operator(
                &ConsoleOperator {
                    name: console.operator.clone(),
                    role: OperatorRole::Owner,
                    password_hash: hash.expose().to_owned(),
                    created_at: now,
                    updated_at: now,
                    totp: None,
                },
                true,
            )
            .await?;
        if seeded {
            let mut event = self.event(&Actor::Service, "console.operator-added");
            event.detail = Some(format!(
                "operator={} role=owner (from the configuration)",
                console.operator
            ));
            self.record_event(event).await;
        }
        Ok(())
    }

    /// Every operator account, by name.
    pub async fn operators(&self) -> Result<Vec<OperatorView>, AppError> {
        Ok(self
            .store
            .console_operators()
            .await?
            .into_iter()
            .map(OperatorView::from)
            .collect())
    }

    /// Adds an operator account with `role` and `password` (at least 12 characters).
    pub async fn add_operator(
        &self,
        actor: &Actor,
        name: &str,
        role: OperatorRole,
        password: &str,
    ) -> Result<OperatorView, AppError> {
        let name = operator_name(name)?;
        let now = self.now_ms();
        let account = ConsoleOperator {
            name: name.to_owned(),
            role,
            password_hash: hashed(password).await?,
            created_at: now,
            updated_at: now,
            totp: None,
        };
        if !self.store.add_console_operator(&account, false).await? {
            return Err(AppError::OperatorExists);
        }
        self.operator_event(actor, "console.operator-added", name, Some(role))
            .await;
        Ok(account.into())
    }

    /// Gives operator `name` another role (at once: their sessions read it on every
    /// request); [`AppError::LastOwner`] when it would leave no owner.
    pub async fn set_operator_role(
        &self,
        actor: &Actor,
        name: &str,
        role: OperatorRole,
    ) -> Result<(), AppError> {
        changed(
            self.store
                .set_console_operator_role(name, role, self.now_ms())
                .await?,
        )?;
        self.operator_event(actor, "console.operator-role-set", name, Some(role))
            .await;
        Ok(())
    }

    /// Sets operator `name`'s password (an owner's reset, or the CLI's way back in) and
    /// ends every session of theirs.
    pub async fn set_operator_password(
        &self,
        actor: &Actor,
        name: &str,
        password: &str,
    ) -> Result<(), AppError> {
        let hash = hashed(password).await?;
        changed(
            self.store
                .set_console_operator_password(name, &hash, self.now_ms(), None)
                .await?,
        )?;
        self.operator_event(actor, "console.password-set", name, None)
            .await;
        Ok(())
    }

    /// Removes operator `name` and ends their sessions; [`AppError::LastOwner`] for the
    /// last owner.
    pub async fn remove_operator(&self, actor: &Actor, name: &str) -> Result<(), AppError> {
        changed(self.store.remove_console_operator(name).await?)?;
        self.operator_event(actor, "console.operator-removed", name, None)
            .await;
        Ok(())
    }

    /// The signed-in operator changes their own password: `current` must be theirs
    /// ([`AppError::WrongPassword`] otherwise, and wrong guesses are throttled like
    /// sign-ins); their other sessions end, the one of `token` stays.
    pub async fn change_own_password(
        &self,
        session: &OperatorSession,
        token: &str,
        current: &str,
        new: &str,
    ) -> Result<(), AppError> {
        let account = self.account(&session.operator).await?;
        let key = self.password_change_key(&session.operator);
        let (interval, burst) = crate::console::SIGN_IN_BUDGET;
        if let Some(retry_after_ms) = self
            .store
            .take_rate(&key, self.now_ms(), interval, burst)
            .await?
        {
            return Err(AppError::Throttled { retry_after_ms });
        }
        if !verify_password(current, Some(account.password_hash)).await? {
            tracing::warn!("a console password change with a wrong current password");
            return Err(AppError::WrongPassword);
        }
        self.store.give_back_rate(&key, interval).await?;
        let hash = hashed(new).await?;
        changed(
            self.store
                .set_console_operator_password(
                    &session.operator,
                    &hash,
                    self.now_ms(),
                    Some(&token_hash(token)),
                )
                .await?,
        )?;
        self.record_event(self.event(&session.actor(), "console.password-changed"))
            .await;
        Ok(())
    }

    /// Operator `name`'s account; [`AppError::NotFound`] without one.
    pub(crate) async fn account(&self, name: &str) -> Result<ConsoleOperator, AppError> {
        self.store
            .console_operator(name)
            .await?
            .ok_or(AppError::NotFound("operator"))
    }

    /// The rate key of one operator's password-change attempts.
    pub(crate) fn password_change_key(&self, operator: &str) -> renzheng_store::AppId {
        renzheng_store::AppId::from(format!("console:password:{}", &token_hash(operator)[..32]))
    }

    async fn operator_event(
        &self,
        actor: &Actor,
        action: &str,
        name: &str,
        role: Option<OperatorRole>,
    ) {
        let mut event = self.event(actor, action);
        event.detail = Some(match role {
            Some(role) => format!("operator={name} role={}", role.as_str()),
            None => format!("operator={name}"),
        });
        self.record_event(event).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names_are_typed_text_of_sane_length() {
        for ok in ["admin", "王小明", "ops-1@example.cn", &"a".repeat(64)] {
            assert_eq!(operator_name(ok).unwrap(), ok);
        }
        for bad in [
            "",
            " admin",
            "admin ",
            "ad\u{0}min",
            "a\nb",
            &"a".repeat(65),
        ] {
            assert!(operator_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_role("auditor").unwrap(), OperatorRole::Auditor);
        assert!(parse_role("root").is_err());
    }
}
