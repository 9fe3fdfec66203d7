//! The apps that may call the check endpoint, and the one rule for their names.

use rand::RngCore;
use renzheng_store::{
    generate_app_key, AppCode, AppCodeHash, AppId, AppPolicy, NewApp, StoreError,
};
use serde::{Deserialize, Serialize};

use crate::audit::Actor;
use crate::{App, AppError, Rule};

/// An app's display name: trimmed, 1 to [`AppName::MAX_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppName(String);

impl AppName {
    /// Longest app name, in characters (the console's form takes its limit from here).
    pub const MAX_CHARS: usize = 100;

    /// Parses a name.
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > Self::MAX_CHARS {
            return Err(AppError::InvalidAppName(format!(
                "name must be 1 to {} characters",
                Self::MAX_CHARS
            )));
        }
        Ok(AppName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The credential a request names in its head.
#[derive(Clone, Copy)]
pub enum Credential<'a> {
    /// `Authorization: APPCODE <code>`: proves the caller by itself.
    AppCode(&'a str),
    /// `X-Ca-Key`: names the caller; the signature over the body proves it.
    AppKey(&'a str),
}

/// What authenticating from the head leaves to do.
pub enum Authentication {
    /// The caller is proven (an AppCode).
    Done,
    /// The caller is known and may call; the request must verify under this AppSecret
    /// before [`CheckTicket::signature_verified`](crate::CheckTicket::signature_verified).
    NeedsSignature {
        /// The app's AppSecret, in clear: only for verifying this request (wiped when
        /// dropped).
        secret: zeroize::Zeroizing<String>,
    },
}

/// Who is calling the check endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The app's id.
    pub app_id: AppId,
    /// The app's display name.
    pub app_name: String,
    /// Its rate limit and alerting.
    pub policy: AppPolicy,
}

impl Caller {
    fn of(app: renzheng_store::App) -> Self {
        Caller {
            app_id: app.id,
            app_name: app.name,
            policy: app.policy,
        }
    }
}

/// A new app with its credentials in clear: the only time the AppCode and the AppSecret
/// are shown.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedApp {
    /// The app's id.
    pub app_id: String,
    /// The AppCode, in clear, once.
    pub app_code: String,
    /// The AppKey (for signed requests; not a secret on its own).
    pub app_key: String,
    /// The AppSecret, in clear, once.
    pub app_secret: String,
    /// Display name.
    pub name: String,
}

/// A new AppCode, shown once.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewAppCode {
    /// The app's id.
    pub app_id: String,
    /// The new AppCode, in clear, once.
    pub app_code: String,
    /// Until when the previous code still works (unix ms); `null`: it stopped now.
    pub previous_valid_until: Option<i64>,
}

/// New signing credentials, shown once.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewAppSecret {
    /// The app's id.
    pub app_id: String,
    /// The new AppKey.
    pub app_key: String,
    /// The new AppSecret, in clear, once.
    pub app_secret: String,
}

/// An app's operator-set policy, as shown and as set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PolicyView {
    /// Sustained checks per second; `null`: no rate limit.
    pub rate_per_sec: Option<f64>,
    /// Checks allowed at once above the rate (default: the rate rounded up).
    pub rate_burst: Option<u32>,
    /// Alert when the remaining calls fall to this percentage of those bought (0–100).
    pub alert_percent: u8,
    /// Where alerts are posted (http or https); `null`: recorded only.
    pub webhook_url: Option<String>,
    /// Who is e-mailed the alerts (at most 10 addresses; needs `alerts.smtp_url`).
    #[serde(default)]
    pub alert_emails: Vec<String>,
}

impl From<AppPolicy> for PolicyView {
    fn from(p: AppPolicy) -> Self {
        PolicyView {
            rate_per_sec: p.rate_per_sec,
            rate_burst: p.rate_burst,
            alert_percent: p.alert_percent,
            webhook_url: p.webhook_url,
            alert_emails: p.alert_emails,
        }
    }
}

impl PolicyView {
    /// Highest rate limit, checks per second (and highest burst).
    pub const MAX_RATE_PER_SEC: u32 = 100_000;
    /// Lowest rate limit, checks per second: one check every 1,000 s. Below it the
    /// interval between checks leaves the range the limiter's arithmetic is exact in (at
    /// 1e-14 it overflowed and failed every check of the app); an app that should not
    /// call is disabled instead.
    pub const MIN_RATE_PER_SEC: f64 = 0.001;
    /// Highest alert threshold, percent.
    pub const MAX_ALERT_PERCENT: u8 = 100;
    /// Longest webhook URL, in bytes.
    pub const MAX_WEBHOOK_URL_LEN: usize = 2048;
    /// Most e-mail recipients of an app's alerts.
    pub const MAX_ALERT_EMAILS: usize = 10;

    /// The policy, if every value is within its rule.
    fn parse(self) -> Result<AppPolicy, AppError> {
        if let Some(rate) = self.rate_per_sec {
            if !(rate.is_finite()
                && rate >= Self::MIN_RATE_PER_SEC
                && rate <= f64::from(Self::MAX_RATE_PER_SEC))
            {
                return Err(Rule::Range {
                    field: "rate_per_sec",
                    min: Self::MIN_RATE_PER_SEC.to_string(),
                    max: Self::MAX_RATE_PER_SEC.to_string(),
                }
                .into());
            }
        } else if self.rate_burst.is_some() {
            return Err(Rule::BurstNeedsRate.into());
        }
        if self.rate_burst == Some(0) || self.rate_burst.is_some_and(|b| b > Self::MAX_RATE_PER_SEC)
        {
            return Err(Rule::Range {
                field: "rate_burst",
                min: "1".into(),
                max: Self::MAX_RATE_PER_SEC.to_string(),
            }
            .into());
        }
        if self.alert_percent > Self::MAX_ALERT_PERCENT {
            return Err(Rule::Range {
                field: "alert_percent",
                min: "0".into(),
                max: Self::MAX_ALERT_PERCENT.to_string(),
            }
            .into());
        }
        if let Some(hook) = &self.webhook_url {
            match url::Url::parse(hook) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => return Err(Rule::WebhookNotHttp.into()),
            }
            if hook.len() > Self::MAX_WEBHOOK_URL_LEN {
                return Err(Rule::TooLong {
                    field: "webhook_url",
                    max: Self::MAX_WEBHOOK_URL_LEN,
                }
                .into());
            }
        }
        if self.alert_emails.len() > Self::MAX_ALERT_EMAILS {
            return Err(Rule::TooManyEmails(Self::MAX_ALERT_EMAILS).into());
        }
        let mut alert_emails = Vec::with_capacity(self.alert_emails.len());
        for address in &self.alert_emails {
            let address = crate::mail::address(address)?;
            if !alert_emails.contains(&address) {
                alert_emails.push(address);
            }
        }
        Ok(AppPolicy {
            alert_emails,
            rate_per_sec: self.rate_per_sec,
            rate_burst: self
                .rate_burst
                .or_else(|| self.rate_per_sec.map(|r| r.ceil() as u32)),
            alert_percent: self.alert_percent,
            webhook_url: self.webhook_url,
        })
    }
}

/// An app, for listing.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppView {
    /// The app's id.
    pub app_id: String,
    /// Display name.
    pub name: String,
    /// Whether it may call.
    pub enabled: bool,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
    /// Its AppKey, when it has signing credentials.
    pub app_key: Option<String>,
    /// Rate limit and alerting.
    pub policy: PolicyView,
}

impl From<renzheng_store::App> for AppView {
    fn from(a: renzheng_store::App) -> Self {
        AppView {
            app_id: a.id.to_string(),
            name: a.name,
            enabled: a.enabled,
            created_at: a.created_at,
            app_key: a.app_key,
            policy: a.policy.into(),
        }
    }
}

/// A fresh AppSecret: 32 hex digits (128 random bits).
fn generate_secret() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The longest grace period of a rotated AppCode.
pub const MAX_CODE_GRACE_MS: i64 = 30 * 86_400_000;

/// What a sealed AppCode is bound to: its own hash.
pub(crate) fn code_binding(hash: &AppCodeHash) -> String {
    format!("app code {}", hash.as_str())
}

impl App {
    /// Creates an enabled app with no quota and returns its AppCode, AppKey and
    /// AppSecret (the code stored only as a hash, the secret sealed).
    pub async fn create_app(&self, actor: &Actor, name: &AppName) -> Result<CreatedApp, AppError> {
        let (code, hash) = AppCode::generate_with_hash();
        let app_key = generate_app_key();
        let secret = generate_secret();
        let app = self
            .store
            .create_app(
                &NewApp {
                    name: name.as_str().to_owned(),
                    code_sealed: Some(self.seal_code(&hash, code.expose())),
                    code_hash: hash,
                    secret_sealed: self.secrets().seal(&app_key, &secret),
                    app_key: app_key.clone(),
                },
                self.now_ms(),
            )
            .await?;
        tracing::info!(app_id = %app.id, "app created");
        let mut event = self.event(actor, "app.created");
        event.app_id = Some(app.id.clone());
        self.record_event(event).await;
        Ok(CreatedApp {
            app_id: app.id.to_string(),
            app_code: code.expose().to_owned(),
            app_key,
            app_secret: secret,
            name: app.name,
        })
    }

    /// Every app, oldest first.
    pub async fn list_apps(&self) -> Result<Vec<AppView>, AppError> {
        Ok(self
            .store
            .list_apps()
            .await?
            .into_iter()
            .map(AppView::from)
            .collect())
    }

    /// One app; [`AppError::NotFound`] when there is none.
    pub async fn app(&self, app_id: &AppId) -> Result<AppView, AppError> {
        Ok(self.existing_app(app_id).await?.into())
    }

    pub(crate) async fn existing_app(
        &self,
        app_id: &AppId,
    ) -> Result<renzheng_store::App, AppError> {
        self.store
            .get_app(app_id)
            .await?
            .ok_or(AppError::NotFound("app"))
    }

    /// Replaces the app's AppCode (buying a package never does). The old code keeps
    /// working for `grace_ms` (at most 30 days; 0: it stops now).
    pub async fn reset_app_code(
        &self,
        actor: &Actor,
        app_id: &AppId,
        grace_ms: i64,
    ) -> Result<NewAppCode, AppError> {
        if !(0..=MAX_CODE_GRACE_MS).contains(&grace_ms) {
            return Err(AppError::Invalid(
                "the grace period must be 0 to 30 days".into(),
            ));
        }
        let (code, hash) = AppCode::generate_with_hash();
        let until = (grace_ms > 0).then(|| self.now_ms() + grace_ms);
        let sealed = self.seal_code(&hash, code.expose());
        match self
            .store
            .rotate_app_code(app_id, &hash, Some(&sealed), until)
            .await
        {
            Ok(()) => {}
            Err(StoreError::NotFound(_)) => return Err(AppError::NotFound("app")),
            Err(e) => return Err(e.into()),
        }
        let mut event = self.event(actor, "app.code_reset");
        event.app_id = Some(app_id.clone());
        event.detail = Some(format!("grace_ms={grace_ms}"));
        self.record_event(event).await;
        Ok(NewAppCode {
            app_id: app_id.to_string(),
            app_code: code.expose().to_owned(),
            previous_valid_until: until,
        })
    }

    /// The AppCode sealed under the secrets key, bound to its hash (a sealed code copied
    /// onto another app's row does not open there).
    fn seal_code(&self, hash: &AppCodeHash, code: &str) -> Vec<u8> {
        self.secrets().seal(&code_binding(hash), code)
    }

    /// Shows the app's current AppCode again (to an owner or admin: the caller decides
    /// who may), and records who saw it (`app.code-revealed`).
    /// [`AppError::CodeNotViewable`] when the code was issued before codes were kept (its
    /// hash only: resetting it makes it viewable) or is sealed under a key this node no
    /// longer holds.
    pub async fn reveal_app_code(
        &self,
        actor: &Actor,
        app_id: &AppId,
    ) -> Result<zeroize::Zeroizing<String>, AppError> {
        let app = self.existing_app(app_id).await?;
        let Some(sealed) = &app.code_sealed else {
            return Err(AppError::CodeNotViewable);
        };
        let Some(code) = self.secrets().open(&code_binding(&app.code_hash), sealed) else {
            tracing::warn!(app = %app.id, "a sealed AppCode opens with no key this node holds");
            return Err(AppError::CodeNotViewable);
        };
        let mut event = self.event(actor, "app.code-revealed");
        event.app_id = Some(app.id.clone());
        self.record_event(event).await;
        Ok(code)
    }

    /// Replaces the app's AppKey and AppSecret (the old pair stops working at once).
    pub async fn reset_app_secret(
        &self,
        actor: &Actor,
        app_id: &AppId,
    ) -> Result<NewAppSecret, AppError> {
        let app_key = generate_app_key();
        let secret = generate_secret();
        let sealed = self.secrets().seal(&app_key, &secret);
        match self.store.set_app_secret(app_id, &app_key, &sealed).await {
            Ok(()) => {}
            Err(StoreError::NotFound(_)) => return Err(AppError::NotFound("app")),
            Err(e) => return Err(e.into()),
        }
        let mut event = self.event(actor, "app.secret_reset");
        event.app_id = Some(app_id.clone());
        self.record_event(event).await;
        Ok(NewAppSecret {
            app_id: app_id.to_string(),
            app_key,
            app_secret: secret,
        })
    }

    /// Sets the app's rate limit, alert threshold and webhook.
    pub async fn set_app_policy(
        &self,
        actor: &Actor,
        app_id: &AppId,
        policy: PolicyView,
    ) -> Result<AppView, AppError> {
        let policy = policy.parse()?;
        // Every way in (admin API, console, CLI) meets the webhook's address policy when
        // it is set; deliveries check again, since DNS can change.
        if let Some(hook) = &policy.webhook_url {
            self.check_webhook_url(hook).await?;
        }
        if !policy.alert_emails.is_empty() && self.mailer.is_none() {
            return Err(AppError::NoSmtpRelay);
        }
        match self.store.set_app_policy(app_id, &policy).await {
            Ok(()) => {}
            Err(StoreError::NotFound(_)) => return Err(AppError::NotFound("app")),
            Err(e) => return Err(e.into()),
        }
        let mut event = self.event(actor, "app.policy_set");
        event.app_id = Some(app_id.clone());
        event.detail = Some(format!(
            "rate_per_sec={:?} rate_burst={:?} alert_percent={} webhook={} alert_emails={}",
            policy.rate_per_sec,
            policy.rate_burst,
            policy.alert_percent,
            policy.webhook_url.is_some(),
            policy.alert_emails.len()
        ));
        self.record_event(event).await;
        self.app(app_id).await
    }

    /// The enabled app with this AppKey and its AppSecret, for verifying a signature;
    /// `None` for an unknown key, [`AppError::Unauthorized`] for a disabled app.
    pub(crate) async fn signing_secret(
        &self,
        app_key: &str,
    ) -> Result<Option<(Caller, zeroize::Zeroizing<String>)>, AppError> {
        let Some(app) = self.store.find_app_by_key(app_key).await? else {
            return Ok(None);
        };
        if !app.enabled {
            // The product's one answer for an app that may not call, whichever credential
            // it presents (an unknown AppKey keeps the gateway's `Invalid AppKey`).
            return Err(AppError::Unauthorized);
        }
        let Some(sealed) = &app.secret_sealed else {
            return Ok(None);
        };
        let Some(secret) = self.secrets().open(app_key, sealed) else {
            // Sealed under another master key: a node configured apart from the others.
            tracing::error!(app_id = %app.id, "an AppSecret does not open with this node's secrets key");
            return Err(AppError::Internal("AppSecret unreadable".into()));
        };
        Ok(Some((Caller::of(app), secret)))
    }

    /// Names the caller a request's head presents: an AppCode proves it by itself
    /// ([`AppError::Unauthorized`] when it names no enabled app); an AppKey must name an
    /// app ([`AppError::UnknownAppKey`] otherwise) that is allowed to call
    /// ([`AppError::Unauthorized`] otherwise), and the request must then verify under the
    /// secret returned.
    pub async fn identify(
        &self,
        credential: Credential<'_>,
    ) -> Result<(Caller, Authentication), AppError> {
        match credential {
            Credential::AppCode(code) => {
                let caller = self
                    .authenticate_app_code(code)
                    .await?
                    .ok_or(AppError::Unauthorized)?;
                Ok((caller, Authentication::Done))
            }
            Credential::AppKey(key) => {
                let (caller, secret) = self
                    .signing_secret(key)
                    .await?
                    .ok_or(AppError::UnknownAppKey)?;
                Ok((caller, Authentication::NeedsSignature { secret }))
            }
        }
    }

    /// Uses a signature nonce once within its window ([`AppError::NonceUsed`] on a
    /// replay, whichever node saw it first).
    pub async fn use_nonce(
        &self,
        caller: &Caller,
        nonce: &str,
        valid_ms: i64,
    ) -> Result<(), AppError> {
        let now = self.now_ms();
        if self
            .store
            .use_nonce(&caller.app_id, nonce, now, now + valid_ms)
            .await?
        {
            Ok(())
        } else {
            Err(AppError::NonceUsed)
        }
    }

    /// Enables or disables an app; [`AppError::NotFound`] when there is no such app.
    pub async fn set_app_enabled(
        &self,
        actor: &Actor,
        app_id: &AppId,
        enabled: bool,
    ) -> Result<(), AppError> {
        match self.store.set_app_enabled(app_id, enabled).await {
            Ok(()) => {}
            Err(StoreError::NotFound(_)) => return Err(AppError::NotFound("app")),
            Err(e) => return Err(e.into()),
        }
        let action = if enabled {
            "app.enabled"
        } else {
            "app.disabled"
        };
        let mut event = self.event(actor, action);
        event.app_id = Some(app_id.clone());
        self.record_event(event).await;
        Ok(())
    }

    /// The enabled app whose AppCode is `code`, if any. Unknown and disabled codes are
    /// the same `None`, so that probing learns nothing.
    pub(crate) async fn authenticate_app_code(
        &self,
        code: &str,
    ) -> Result<Option<Caller>, AppError> {
        Ok(self
            .store
            .find_app_by_code_hash(&AppCodeHash::of(code), self.now_ms())
            .await?
            .filter(|app| app.enabled)
            .map(Caller::of))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_are_trimmed_and_bounded() {
        assert_eq!(AppName::parse("  shop ").unwrap().as_str(), "shop");
        assert!(AppName::parse("   ").is_err());
        assert!(AppName::parse(&"名".repeat(100)).is_ok());
        assert!(AppName::parse(&"名".repeat(101)).is_err());
    }

    fn policy(
        rate: Option<f64>,
        burst: Option<u32>,
        percent: u8,
        hook: Option<&str>,
    ) -> PolicyView {
        PolicyView {
            rate_per_sec: rate,
            rate_burst: burst,
            alert_percent: percent,
            webhook_url: hook.map(str::to_owned),
            alert_emails: Vec::new(),
        }
    }

    #[test]
    fn policies_are_checked() {
        let ok = policy(Some(2.5), None, 20, Some("https://hooks.example.com/x")).parse();
        assert_eq!(ok.unwrap().rate_burst, Some(3));
        let slowest = policy(Some(PolicyView::MIN_RATE_PER_SEC), None, 20, None).parse();
        assert_eq!(slowest.unwrap().rate_burst, Some(1));
        for bad in [
            policy(Some(0.0), None, 20, None),
            policy(Some(f64::NAN), None, 20, None),
            policy(Some(-1.0), None, 20, None),
            // Tiny rates overflowed the limiter's arithmetic and failed every check.
            policy(Some(1e-14), None, 20, None),
            policy(Some(PolicyView::MIN_RATE_PER_SEC / 2.0), None, 20, None),
            policy(None, Some(3), 20, None),
            policy(Some(1.0), Some(0), 20, None),
            policy(None, None, 101, None),
            policy(None, None, 20, Some("ftp://x/y")),
            policy(None, None, 20, Some("not a url")),
        ] {
            assert!(
                matches!(bad.clone().parse(), Err(AppError::Rule(_))),
                "{bad:?}"
            );
        }
    }
}
