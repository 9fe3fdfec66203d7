//! The operator console's own use cases: signing in with the configured operator's
//! password, its sessions, and the figures only the console shows (the overview).
//!
//! A session token is 32 random bytes, given to the browser once; the store keeps only its
//! SHA-256, so a copy of the database signs nobody in. Each session has its own CSRF token
//! (random, compared in constant time by the edge). Sign-in attempts are rate-limited
//! across nodes through the same GCRA table as the apps, and every sign-in, refusal and
//! sign-out is an operator event.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use rand::RngCore;
use renzheng_store::{AppId, AuditQuery, ConsoleSession, OperatorRole};
use sha2::{Digest, Sha256};

use crate::audit::Actor;
use crate::keys::constant_time_eq;
use crate::metering::{format_day, grant_view, GrantView, DAY_MS};
use crate::{App, AppError, AppView};

/// The rate key of all sign-in attempts together in the GCRA table (not an app: no app
/// id has a colon); one client's key is this, a colon and its address's keyed hash.
const SIGN_IN_RATE_KEY: &str = "console:sign-in";
/// One client: one attempt every 3 s on average, 5 at once: a person mistyping is never
/// slowed, a guesser gets 20 tries a minute.
const SIGN_IN_INTERVAL_US: i64 = 3_000_000;
const SIGN_IN_BURST: u32 = 5;
/// One client's sign-in budget (interval µs, burst), also each operator's budget of
/// wrong current passwords when changing theirs.
pub(crate) const SIGN_IN_BUDGET: (i64, u32) = (SIGN_IN_INTERVAL_US, SIGN_IN_BURST);
/// All clients together: ten times one client's rate. The ceiling bounds how fast many
/// addresses together can guess, yet one client guessing at its own limit (or nine) leaves
/// room for the operator.
const SIGN_IN_ALL_INTERVAL_US: i64 = SIGN_IN_INTERVAL_US / 10;
const SIGN_IN_ALL_BURST: u32 = SIGN_IN_BURST * 10;
/// The fewest characters of a console password.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Calls whose latency the overview reads (the newest), at most.
const LATENCY_SAMPLE: u32 = 5_000;

/// Hashes a console password as an Argon2id PHC string (the default parameters of the
/// `argon2` crate: 19 MiB, 2 passes), for `console.password_hash`.
pub fn hash_password(password: &str) -> Result<String, AppError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AppError::WeakPassword {
            min: MIN_PASSWORD_CHARS,
        });
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("hashing the password: {e}")))
}

/// A new session: the token goes into the cookie, nowhere else.
#[derive(Clone)]
pub struct SignedIn {
    /// The session token (the cookie's value).
    pub token: String,
    /// The session as stored.
    pub session: OperatorSession,
    /// Seconds until the session ends at the latest (the cookie's `Max-Age`).
    pub max_age_secs: u64,
}

/// A live operator session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSession {
    /// Who is signed in.
    pub operator: String,
    /// What they may do, as their account says now (read with the session on every
    /// request, so a changed role applies at once).
    pub role: OperatorRole,
    /// The session's form secret: the key of its [form tokens](OperatorSession::form_token)
    /// (never sent to the browser as such).
    pub csrf: String,
    /// When the session ends whatever its use (unix ms): no form token outlives it.
    pub ends_at: i64,
}

impl OperatorSession {
    fn new(s: ConsoleSession, role: OperatorRole) -> Self {
        OperatorSession {
            operator: s.operator,
            role,
            csrf: s.csrf,
            ends_at: s.ends_at,
        }
    }
}

/// One of an operator's live sessions, as their account page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// Its id: the hash of its token (never the token).
    pub id: String,
    /// When it was signed in (unix ms).
    pub created_at: i64,
    /// When it lapses unless used (unix ms).
    pub idle_until: i64,
    /// When it ends whatever its use (unix ms).
    pub ends_at: i64,
    /// Whether it is the session asking.
    pub current: bool,
}

/// What a form's token turned out to be ([`App::spend_form_token`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormToken {
    /// Minted by this session and never used: the form may act, once.
    Fresh,
    /// Minted by this session, already used: a reload, a double click, a replay. The form
    /// must not act again.
    Spent,
    /// Not this session's (forged, another session's, missing, malformed).
    Refused,
}

/// The bytes of a form token's nonce.
const FORM_NONCE_BYTES: usize = 16;
/// The bytes of a form token's MAC kept (128 bits).
const FORM_MAC_BYTES: usize = 16;
/// The nonce table's key of spent form tokens (not an app: no app id has a colon).
const FORM_TOKEN_KEY: &str = "console:form";
/// How long a one-time message waits for the page it was left for: the redirect is
/// followed at once, so minutes are plenty, and a secret does not wait long.
const FLASH_TTL_MS: i64 = 5 * 60_000;
/// The largest one-time message kept, bytes (a page's result, not a file).
pub const MAX_FLASH_BYTES: usize = 256 * 1024;

impl OperatorSession {
    /// The actor of this operator's changes.
    pub fn actor(&self) -> Actor {
        Actor::Console {
            operator: self.operator.clone(),
        }
    }

    /// A new single-use token for one rendered form: a random nonce and its MAC under the
    /// session's form secret (`nonce.mac`, base64url). Minting writes nothing: only a
    /// token that is used is recorded ([`App::spend_form_token`]), so a page of many forms
    /// costs nothing, and a token of an ended session is worth nothing.
    pub fn form_token(&self) -> String {
        let mut nonce = [0u8; FORM_NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let nonce = B64URL.encode(nonce);
        let mac = self.form_mac(&nonce);
        format!("{nonce}.{mac}")
    }

    fn form_mac(&self, nonce: &str) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.csrf.as_bytes())
            .expect("HMAC takes any key length");
        mac.update(b"console form token\0");
        mac.update(nonce.as_bytes());
        B64URL.encode(&mac.finalize().into_bytes()[..FORM_MAC_BYTES])
    }

    /// The nonce of `token` when this session minted it.
    fn minted(&self, token: &str) -> Option<String> {
        let (nonce, mac) = token.split_once('.')?;
        let well_formed = B64URL
            .decode(nonce)
            .is_ok_and(|n| n.len() == FORM_NONCE_BYTES);
        (well_formed && constant_time_eq(mac.as_bytes(), self.form_mac(nonce).as_bytes()))
            .then(|| nonce.to_owned())
    }
}

/// One day of the overview.
#[derive(Debug, Clone, PartialEq)]
pub struct OverviewDay {
    /// `YYYY-MM-DD` in the usage offset.
    pub date: String,
    /// Checks per result code 1–8 (index 0 is result 1).
    pub results: [i64; 8],
    /// Answered with a 2xx.
    pub succeeded: i64,
    /// Refused by a 4xx (the caller's doing).
    pub refused: i64,
    /// Failed with a 5xx (ours).
    pub failed: i64,
    /// Median latency of the sampled calls of that day, ms.
    pub p50_ms: Option<u64>,
    /// 99th percentile latency of the sampled calls of that day, ms.
    pub p99_ms: Option<u64>,
}

/// An app's quota as the console shows it (without the ledger reconciliation of
/// [`App::balance`], which no console page shows).
#[derive(Debug, Clone)]
pub struct AppQuota {
    /// The app.
    pub app: AppView,
    /// Calls available now.
    pub remaining: i64,
    /// Calls bought and unexpired.
    pub purchased: i64,
    /// Calls charged so far.
    pub charged: i64,
    /// Every grant, in the order they are used.
    pub grants: Vec<GrantView>,
    /// What its balance calls for now (low or exhausted, expiring; empty for a disabled
    /// app): the alert scan's own rule, for the overview's warning.
    pub attention: Vec<renzheng_store::AlertKind>,
}

/// What the console's first page shows.
#[derive(Debug, Clone)]
pub struct Overview {
    /// Every day of the period, oldest first (days without checks included, as zeros).
    pub days: Vec<OverviewDay>,
    /// Checks in the period.
    pub total: i64,
    /// Median latency over the sample, ms.
    pub p50_ms: Option<u64>,
    /// 99th percentile latency over the sample, ms.
    pub p99_ms: Option<u64>,
    /// Calls the latency figures were read from (the newest of the period).
    pub latency_sample: usize,
    /// Every app with its remaining calls.
    pub quotas: Vec<AppQuota>,
}

pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64URL.encode(bytes)
}

/// Seconds of configuration as milliseconds of the store's timestamps.
fn millis(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// The stored form of a token.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What a one-time message is sealed to: its id and its session (so a sealed message
/// copied to another row does not open).
fn flash_binding(id_hash: &str, session_hash: &str) -> String {
    format!("console flash {id_hash} {session_hash}")
}

/// Whether `password` is the one of the PHC string `hash` (`None`: an unknown account,
/// verified against a stand-in all the same, and never true). Argon2 is deliberately
/// slow: off the async runtime.
pub(crate) async fn verify_password(
    password: &str,
    hash: Option<String>,
) -> Result<bool, AppError> {
    let password = zeroize::Zeroizing::new(password.to_owned());
    Ok(crate::telemetry::spawn_blocking_with_tracing(move || {
        let known = hash.is_some();
        let hash = hash.as_deref().unwrap_or_else(|| stand_in_hash());
        let verified = PasswordHash::new(hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        known && verified
    })
    .await?)
}

/// A hash of a random password nobody knows, verified against when the operator name is
/// unknown (made once per process).
fn stand_in_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&random_token()).expect("a long password hashes"))
}

/// The `q`-quantile of sorted values (nearest rank).
fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank: the smallest value with at least q of the sample at or below it.
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

impl App {
    /// Whether the console is open: an operator account exists, or the configuration
    /// names the first owner (`console.password_hash`).
    pub async fn console_enabled(&self) -> Result<bool, AppError> {
        Ok(self.settings.console.password_hash.is_some()
            || !self.store.console_operators().await?.is_empty())
    }

    /// Signs the operator in from `client` (the address the edge judged to be the
    /// client's; `None` when it has none, and then such clients share one budget): a new
    /// session when `operator` and `password` are an account's, and `code` its
    /// authenticator's current one when it has two-step sign-in on. Refused attempts
    /// answer [`AppError::SignInRefused`] without saying which part was wrong; too many
    /// attempts from the client, or from everyone together, [`AppError::Throttled`].
    pub async fn sign_in(
        &self,
        client: Option<IpAddr>,
        operator: &str,
        password: &str,
        code: Option<&str>,
    ) -> Result<SignedIn, AppError> {
        let console = &self.settings.console;
        self.seed_first_owner().await?;
        if !self.console_enabled().await? {
            return Err(AppError::NotFound("console"));
        }
        let now = self.now_ms();
        // Both budgets are taken before the password is verified, so concurrent guesses
        // cannot all pass one check, and given back when it verifies: only failures
        // count. Both live in the store, so they hold across nodes.
        let client_key = self.sign_in_client_key(client);
        let all_key = AppId::from(SIGN_IN_RATE_KEY.to_owned());
        let taken = self
            .store
            .take_rate(&client_key, now, SIGN_IN_INTERVAL_US, SIGN_IN_BURST)
            .await?;
        if let Some(retry_after_ms) = taken {
            tracing::warn!(scope = "client", "console sign-in throttled");
            return Err(AppError::Throttled { retry_after_ms });
        }
        let taken = self
            .store
            .take_rate(&all_key, now, SIGN_IN_ALL_INTERVAL_US, SIGN_IN_ALL_BURST)
            .await?;
        if let Some(retry_after_ms) = taken {
            // Not this client's doing: its attempt is not held against it.
            self.store
                .give_back_rate(&client_key, SIGN_IN_INTERVAL_US)
                .await?;
            tracing::warn!(scope = "all", "console sign-in throttled");
            return Err(AppError::Throttled { retry_after_ms });
        }
        // A password is verified even for an unknown operator name (against a hash of
        // nothing anyone knows), so the time taken does not tell which was wrong.
        let account = self.store.console_operator(operator).await?;
        let hash = account.as_ref().map(|a| a.password_hash.clone());
        let verified = verify_password(password, hash).await?;
        // An operator with two-step sign-in also needs a current code, used once; which
        // of the three was wrong is not said.
        let account = match account.filter(|_| verified) {
            Some(account) if self.second_factor_passes(&account, code).await? => Some(account),
            _ => None,
        };
        let Some(account) = account else {
            self.record_event(renzheng_store::AdminEvent::new(
                now,
                "console",
                "console.sign-in-refused",
            ))
            .await;
            return Err(AppError::SignInRefused);
        };
        self.store
            .give_back_rate(&client_key, SIGN_IN_INTERVAL_US)
            .await?;
        self.store
            .give_back_rate(&all_key, SIGN_IN_ALL_INTERVAL_US)
            .await?;
        let token = random_token();
        let (idle_ms, max_ms) = (
            millis(console.session_idle_secs),
            millis(console.session_max_secs),
        );
        let stored = ConsoleSession {
            token_hash: token_hash(&token),
            operator: account.name.clone(),
            csrf: random_token(),
            created_at: now,
            idle_until: now.saturating_add(idle_ms.min(max_ms)),
            ends_at: now.saturating_add(max_ms),
        };
        self.store.create_console_session(&stored).await?;
        let session = OperatorSession::new(stored, account.role);
        self.record_event(self.event(&session.actor(), "console.signed-in"))
            .await;
        Ok(SignedIn {
            token,
            session,
            max_age_secs: console.session_max_secs,
        })
    }

    /// The rate key of one client's sign-in attempts: the prefix, then an HMAC of its
    /// address under the audit key (shared by every node, so a client has one budget
    /// across them; the database never holds the address). An IPv6 client counts by its
    /// /64, which one host usually holds whole: per address, it would have 2^64 budgets.
    fn sign_in_client_key(&self, client: Option<IpAddr>) -> AppId {
        use hmac::{Hmac, Mac};
        let client = match client.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V6(v6)) => {
                let prefix = u128::from(v6) & !(u128::MAX >> 64);
                format!("{}/64", Ipv6Addr::from(prefix))
            }
            Some(v4) => v4.to_string(),
            None => "unknown".to_owned(),
        };
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.audit_key)
            .expect("HMAC takes any key length");
        mac.update(b"console sign-in client\0");
        mac.update(client.as_bytes());
        let digest = mac.finalize().into_bytes();
        AppId::from(format!("{SIGN_IN_RATE_KEY}:{}", hex::encode(&digest[..16])))
    }

    /// The live session of a cookie's token, its idle time renewed; `None` when unknown,
    /// idle too long or ended.
    pub async fn console_session(&self, token: &str) -> Result<Option<OperatorSession>, AppError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let idle_ms = millis(self.settings.console.session_idle_secs);
        let Some(session) = self
            .store
            .touch_console_session(&token_hash(token), self.now_ms(), idle_ms)
            .await?
        else {
            return Ok(None);
        };
        // The role is the account's now; a removed account's sessions are gone with it,
        // and one found without its account (removed between the two reads) is not live.
        Ok(self
            .store
            .console_operator(&session.operator)
            .await?
            .map(|account| OperatorSession::new(session, account.role)))
    }

    /// Spends the form token `sent` of `session`: [`FormToken::Fresh`] the first time (the
    /// nonce is recorded in the store's nonce table until the session ends, so every node
    /// knows it is spent), [`FormToken::Spent`] after, [`FormToken::Refused`] when the
    /// session did not mint it.
    pub async fn spend_form_token(
        &self,
        session: &OperatorSession,
        sent: Option<&str>,
    ) -> Result<FormToken, AppError> {
        let Some(nonce) = sent.and_then(|t| session.minted(t)) else {
            return Ok(FormToken::Refused);
        };
        let now = self.now_ms();
        let fresh = self
            .store
            .use_nonce(
                &AppId::from(FORM_TOKEN_KEY.to_owned()),
                &nonce,
                now,
                session.ends_at.max(now + 1),
            )
            .await?;
        Ok(if fresh {
            FormToken::Fresh
        } else {
            FormToken::Spent
        })
    }

    /// Leaves the session of `token` a one-time message (`payload`: what the console will
    /// show on the page it redirects to). The message is sealed under the secrets key
    /// (it may hold a new AppCode), bound to its id and session, and kept minutes at most.
    /// Returns the id to put in the redirect's URL.
    pub async fn leave_console_flash(
        &self,
        token: &str,
        payload: &str,
    ) -> Result<String, AppError> {
        if payload.len() > MAX_FLASH_BYTES {
            return Err(AppError::Internal(format!(
                "a console message of {} bytes is over the limit",
                payload.len()
            )));
        }
        let id = random_token();
        let (id_hash, session_hash) = (token_hash(&id), token_hash(token));
        let sealed = self
            .secrets()
            .seal(&flash_binding(&id_hash, &session_hash), payload);
        self.store
            .put_console_flash(
                &id_hash,
                &session_hash,
                &sealed,
                self.now_ms() + FLASH_TTL_MS,
            )
            .await?;
        Ok(id)
    }

    /// Takes the one-time message `id` left for the session of `token`: `None` when
    /// unknown, another session's, expired, already shown, or no longer opens (sealed
    /// under a key retired since).
    pub async fn take_console_flash(
        &self,
        token: &str,
        id: &str,
    ) -> Result<Option<zeroize::Zeroizing<String>>, AppError> {
        if id.is_empty() || id.len() > 128 {
            return Ok(None);
        }
        let (id_hash, session_hash) = (token_hash(id), token_hash(token));
        let Some(sealed) = self
            .store
            .take_console_flash(&id_hash, &session_hash, self.now_ms())
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .secrets()
            .open(&flash_binding(&id_hash, &session_hash), &sealed))
    }

    /// The live sessions of the operator of `session` (whose cookie holds `token`),
    /// newest first, the asking one marked.
    pub async fn sessions_of(
        &self,
        session: &OperatorSession,
        token: &str,
    ) -> Result<Vec<SessionView>, AppError> {
        let current = token_hash(token);
        Ok(self
            .store
            .console_sessions_of(&session.operator, self.now_ms())
            .await?
            .into_iter()
            .map(|s| SessionView {
                current: s.token_hash == current,
                id: s.token_hash,
                created_at: s.created_at,
                idle_until: s.idle_until,
                ends_at: s.ends_at,
            })
            .collect())
    }

    /// Ends one of the operator's own sessions (another browser, a lost laptop), by its
    /// id; [`AppError::NotFound`] when it is not theirs or is already over. An event
    /// (`console.session-revoked`) records it.
    pub async fn revoke_session(
        &self,
        session: &OperatorSession,
        id: &str,
    ) -> Result<(), AppError> {
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AppError::NotFound("session"));
        }
        if !self
            .store
            .end_operator_session(&session.operator, id)
            .await?
        {
            return Err(AppError::NotFound("session"));
        }
        self.record_event(self.event(&session.actor(), "console.session-revoked"))
            .await;
        Ok(())
    }

    /// Ends the session of `token` (sign-out).
    pub async fn sign_out(&self, session: &OperatorSession, token: &str) -> Result<(), AppError> {
        self.store.end_console_session(&token_hash(token)).await?;
        self.record_event(self.event(&session.actor(), "console.signed-out"))
            .await;
        Ok(())
    }

    /// Every app with its balance and grants.
    pub async fn quotas(&self) -> Result<Vec<AppQuota>, AppError> {
        let now = self.now_ms();
        let mut quotas = Vec::new();
        for app in self.list_apps().await? {
            let id = AppId::from(app.app_id.clone());
            let balance = self.store.balance(&id, now).await?;
            let attention = if app.enabled {
                self.alerts_due(app.policy.alert_percent, &balance, now)
            } else {
                Vec::new()
            };
            quotas.push(AppQuota {
                attention,
                app,
                remaining: balance.remaining,
                purchased: balance.purchased,
                charged: balance.charged,
                grants: balance
                    .grants
                    .into_iter()
                    .map(|g| grant_view(g, now))
                    .collect(),
            });
        }
        Ok(quotas)
    }

    /// The overview of the last `days` days (1–90): checks per day by result and by
    /// status, latency quantiles over the newest calls, every app's remaining calls.
    pub async fn overview(&self, days: u32) -> Result<Overview, AppError> {
        let days = i64::from(days.clamp(1, 90));
        let offset = i64::from(self.settings.metering.utc_offset_minutes) * 60_000;
        let today = (self.now_ms() + offset).div_euclid(DAY_MS);
        let first = today - days + 1;
        let from_ms = first * DAY_MS - offset;
        let to_ms = (today + 1) * DAY_MS - offset;
        let mut by_day: BTreeMap<i64, OverviewDay> = (first..=today)
            .map(|d| {
                (
                    d,
                    OverviewDay {
                        date: format_day(d),
                        results: [0; 8],
                        succeeded: 0,
                        refused: 0,
                        failed: 0,
                        p50_ms: None,
                        p99_ms: None,
                    },
                )
            })
            .collect();
        for row in self.store.usage(None, from_ms, to_ms, offset).await? {
            let Some(day) = by_day.get_mut(&row.day) else {
                continue;
            };
            day.succeeded += row.succeeded;
            if let Some(code) = row.result.and_then(|r| usize::try_from(r - 1).ok()) {
                if let Some(slot) = day.results.get_mut(code) {
                    *slot += row.calls;
                }
            }
        }
        // Statuses and latencies are read from the newest calls (the usage rows count
        // 2xx only); at most LATENCY_SAMPLE of them, in pages.
        let mut query = AuditQuery {
            task_no: None,
            id_hashes: Vec::new(),
            app_id: None,
            from_ms: Some(from_ms),
            to_ms: Some(to_ms),
            result: None,
            http_status: None,
            before_id: None,
            limit: 500,
        };
        let mut latencies: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
        let mut all = Vec::new();
        while all.len() < LATENCY_SAMPLE as usize {
            let page = self.store.audit_page(&query).await?;
            let Some(last) = page.last() else { break };
            query.before_id = Some(last.id);
            for r in page {
                let day = (r.at + offset).div_euclid(DAY_MS);
                if let Some(d) = by_day.get_mut(&day) {
                    match r.http_status {
                        400..=499 => d.refused += 1,
                        500..=599 => d.failed += 1,
                        _ => {}
                    }
                }
                latencies.entry(day).or_default().push(r.latency_ms);
                all.push(r.latency_ms);
            }
        }
        for (day, mut values) in latencies {
            values.sort_unstable();
            if let Some(d) = by_day.get_mut(&day) {
                d.p50_ms = quantile(&values, 0.5);
                d.p99_ms = quantile(&values, 0.99);
            }
        }
        all.sort_unstable();
        let quotas = self.quotas().await?;
        let days: Vec<OverviewDay> = by_day.into_values().collect();
        Ok(Overview {
            total: days
                .iter()
                .map(|d| d.results.iter().sum::<i64>() + d.refused + d.failed)
                .sum(),
            days,
            p50_ms: quantile(&all, 0.5),
            p99_ms: quantile(&all, 0.99),
            latency_sample: all.len(),
            quotas,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_short_passwords_are_refused() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong", &parsed)
            .is_err());
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn form_tokens_are_minted_per_form_and_bound_to_their_session() {
        let session = |csrf: &str| OperatorSession {
            operator: "admin".into(),
            role: OperatorRole::Owner,
            csrf: csrf.into(),
            ends_at: 0,
        };
        let (a, b) = (session("secret a"), session("secret b"));
        let token = a.form_token();
        assert_ne!(token, a.form_token(), "one token per form");
        let nonce = a.minted(&token).expect("its own token");
        assert!(token.starts_with(&nonce));
        assert_eq!(b.minted(&token), None, "another session's");
        let (n, mac) = token.split_once('.').unwrap();
        for forged in [
            format!("{n}.{}", "A".repeat(mac.len())),
            format!("{}.{mac}", "A".repeat(n.len())),
            n.to_owned(),
            format!("{n}.{mac}x"),
            String::new(),
            "secret a".to_owned(),
        ] {
            assert_eq!(a.minted(&forged), None, "{forged}");
        }
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), Some(50));
        assert_eq!(quantile(&v, 0.99), Some(99));
        assert_eq!(quantile(&[7], 0.99), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let a = random_token();
        assert_ne!(a, random_token());
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
        assert!(constant_time_eq(b"admin", b"admin"));
        assert!(!constant_time_eq(b"admin", b"admim"));
        assert!(!constant_time_eq(b"admin", b"admin2"));
    }
}
