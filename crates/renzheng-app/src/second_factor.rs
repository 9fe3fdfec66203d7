//! The console's optional second factor: a TOTP authenticator app (RFC 6238, see
//! [`crate::totp`]) per operator.
//!
//! An operator turns it on from their own account: a new secret is sealed under the
//! secrets key (bound to their name) and shown once, as a QR code and as text; it is on
//! only once a code from the app confirms it, and then their other sessions end. From then
//! on signing in takes the password and a current code, each code good once (the last
//! step used is kept in the store, so a code replayed on another node fails too). They
//! turn it off with their password and a current code; an owner (the operators page) or
//! the CLI turns it off for an operator who lost their phone. A key rotation re-seals the
//! secrets with the AppSecrets.

use renzheng_store::OperatorTotp;
use zeroize::Zeroizing;

use crate::audit::Actor;
use crate::console::{token_hash, verify_password, OperatorSession};
use crate::totp;
use crate::{App, AppError};

/// What an authenticator app is given when the factor is set up: shown once.
pub struct TotpSetup {
    /// The secret, base32 (typed into the app by hand).
    pub secret: Zeroizing<String>,
    /// The `otpauth://` address (its QR code is what the app scans).
    pub uri: String,
}

/// What a sealed TOTP secret is bound to: its operator (a secret copied to another
/// account does not open).
pub(crate) fn binding(operator: &str) -> String {
    format!("console-totp:{operator}")
}

impl App {
    /// Since when the signed-in operator's second factor is on (unix ms); `None`: off.
    pub async fn two_step_since(&self, session: &OperatorSession) -> Result<Option<i64>, AppError> {
        let account = self.account(&session.operator).await?;
        Ok(account.totp.and_then(|t| t.enabled_at))
    }

    /// Starts setting up the signed-in operator's second factor: a new secret, kept
    /// waiting for its first code (a setup started earlier is replaced). Refused while the
    /// factor is on.
    pub async fn start_totp(&self, session: &OperatorSession) -> Result<TotpSetup, AppError> {
        let account = self.account(&session.operator).await?;
        if account
            .totp
            .as_ref()
            .is_some_and(|t| t.enabled_at.is_some())
        {
            return Err(AppError::TotpAlreadyOn);
        }
        let secret = totp::new_secret();
        let waiting = OperatorTotp {
            sealed: self.secrets().seal(&binding(&account.name), &secret),
            enabled_at: None,
            last_step: None,
        };
        self.store
            .set_console_operator_totp(&account.name, Some(&waiting), None)
            .await?;
        Ok(self.setup(&account.name, secret))
    }

    /// The setup waiting for its first code, shown again beside a refused code; `None`
    /// when none is waiting.
    pub async fn waiting_totp(
        &self,
        session: &OperatorSession,
    ) -> Result<Option<TotpSetup>, AppError> {
        let account = self.account(&session.operator).await?;
        let Some(waiting) = account.totp.filter(|t| t.enabled_at.is_none()) else {
            return Ok(None);
        };
        Ok(self
            .secrets()
            .open(&binding(&account.name), &waiting.sealed)
            .map(|secret| self.setup(&account.name, secret)))
    }

    /// Turns the waiting setup on with a code from the app; the operator's other
    /// sessions end (this one, of `token`, stays).
    pub async fn confirm_totp(
        &self,
        session: &OperatorSession,
        token: &str,
        code: &str,
    ) -> Result<(), AppError> {
        let account = self.account(&session.operator).await?;
        let Some(waiting) = account.totp.filter(|t| t.enabled_at.is_none()) else {
            return Err(AppError::NotFound("totp setup"));
        };
        let secret = self
            .secrets()
            .open(&binding(&account.name), &waiting.sealed)
            .ok_or(AppError::NotFound("totp setup"))?;
        let now = self.now_ms();
        let step = self
            .throttled_code(&account.name, &secret, code, None, None)
            .await?;
        let on = OperatorTotp {
            enabled_at: Some(now),
            last_step: Some(step),
            ..waiting
        };
        self.store
            .set_console_operator_totp(&account.name, Some(&on), Some(&token_hash(token)))
            .await?;
        self.record_event(self.event(&session.actor(), "console.totp-on"))
            .await;
        Ok(())
    }

    /// Turns the signed-in operator's second factor off, with their password and a
    /// current code.
    pub async fn turn_off_own_totp(
        &self,
        session: &OperatorSession,
        password: &str,
        code: &str,
    ) -> Result<(), AppError> {
        let account = self.account(&session.operator).await?;
        let Some(on) = account.totp.as_ref().filter(|t| t.enabled_at.is_some()) else {
            return Err(AppError::NotFound("totp"));
        };
        let secret = self
            .secrets()
            .open(&binding(&account.name), &on.sealed)
            .ok_or(AppError::NotFound("totp"))?;
        let password = (password, account.password_hash.as_str());
        self.throttled_code(&account.name, &secret, code, on.last_step, Some(password))
            .await?;
        self.store
            .set_console_operator_totp(&account.name, None, None)
            .await?;
        self.record_event(self.event(&session.actor(), "console.totp-off"))
            .await;
        Ok(())
    }

    /// Turns operator `name`'s second factor off (an owner's or the CLI's reset, for an
    /// operator who lost their authenticator).
    pub async fn reset_operator_totp(&self, actor: &Actor, name: &str) -> Result<(), AppError> {
        if !self
            .store
            .set_console_operator_totp(name, None, None)
            .await?
        {
            return Err(AppError::NotFound("operator"));
        }
        let mut event = self.event(actor, "console.totp-reset");
        event.detail = Some(format!("operator={name}"));
        self.record_event(event).await;
        Ok(())
    }

    /// Whether `account` may sign in with `code`: `true` without a second factor; with
    /// one, when `code` is a current code not used before (its step is then used up).
    pub(crate) async fn second_factor_passes(
        &self,
        account: &renzheng_store::ConsoleOperator,
        code: Option<&str>,
    ) -> Result<bool, AppError> {
        let Some(on) = account.totp.as_ref().filter(|t| t.enabled_at.is_some()) else {
            return Ok(true);
        };
        let Some(secret) = self.secrets().open(&binding(&account.name), &on.sealed) else {
            tracing::warn!("a console TOTP secret opens with no key this node holds");
            return Ok(false);
        };
        let Some(step) =
            totp::matching_step(&secret, code.unwrap_or(""), self.now_ms(), on.last_step)
        else {
            return Ok(false);
        };
        Ok(self.store.take_totp_step(&account.name, step).await?)
    }

    /// Checks `code` against `secret` (and `password` against its hash, if given) under
    /// the operator's password-change budget (six digits are guessed by trying): the step
    /// the code matched.
    async fn throttled_code(
        &self,
        operator: &str,
        secret: &str,
        code: &str,
        after: Option<i64>,
        password: Option<(&str, &str)>,
    ) -> Result<i64, AppError> {
        let key = self.password_change_key(operator);
        let (interval, burst) = crate::console::SIGN_IN_BUDGET;
        if let Some(retry_after_ms) = self
            .store
            .take_rate(&key, self.now_ms(), interval, burst)
            .await?
        {
            return Err(AppError::Throttled { retry_after_ms });
        }
        if let Some((password, hash)) = password {
            if !verify_password(password, Some(hash.to_owned())).await? {
                return Err(AppError::WrongPassword);
            }
        }
        let step = totp::matching_step(secret, code, self.now_ms(), after)
            .ok_or(AppError::WrongTotpCode)?;
        self.store.give_back_rate(&key, interval).await?;
        Ok(step)
    }

    fn setup(&self, operator: &str, secret: Zeroizing<String>) -> TotpSetup {
        TotpSetup {
            uri: totp::otpauth_uri("Renzheng", operator, &secret),
            secret,
        }
    }
}
