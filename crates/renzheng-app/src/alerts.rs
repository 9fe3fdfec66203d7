//! Balance alerts: when an app's remaining calls fall to its threshold (20 % of what it
//! bought by default), run out, or are about to expire, an alert is recorded and posted
//! to the app's webhook, then repeated each day while the condition lasts.
//!
//! Nothing here blocks a check: a charge only drops the app's id into a bounded queue
//! (dropped when full; the periodic scan catches up), and deliveries run in their own
//! tasks with retries. The store's unique (app, kind, day) row makes the alert
//! de-duplicated across nodes: whichever node records it delivers it.
//!
//! A webhook is an address the server connects to, so it is held to imgUrl's address
//! policy (public addresses, plus the networks of `img_url.allow`): checked when set
//! ([`App::check_webhook_url`]) and at every delivery, at connection time (DNS can
//! change). Whether a delivery failed, and why, stays in the log and the alert's row: the
//! operator's test alert says only "delivered" or not, so it cannot map which ports answer
//! on the server's network.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use renzheng_store::{AlertKind, AppId, NewAlert, Store};
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::mpsc;
use url::Url;

use crate::audit::Actor;
use crate::compliance::FilingAlert;
use crate::fetch::{self, AddressPolicy, FetchError};
use crate::metering::RefusalCounts;
use crate::settings::Secret;
use crate::{App, AppError, Rule};

const DAY_MS: i64 = 86_400_000;
/// A recorded balance alert, as the console lists it ([`App::alert_history`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertView {
    /// Its id.
    pub id: i64,
    /// When it was recorded (unix ms).
    pub at: i64,
    /// The app.
    pub app_id: String,
    /// What about.
    pub kind: AlertKind,
    /// Calls available then.
    pub remaining: i64,
    /// Calls bought then.
    pub purchased: i64,
    /// When its webhook was delivered (`None`: not delivered, or the app has none).
    pub delivered_at: Option<i64>,
    /// Delivery attempts.
    pub attempts: i64,
}

/// Apps waiting to be looked at after a charge; more are dropped (the scan catches up).
const QUEUE: usize = 1024;

/// A refused app is looked at again after this long at the soonest: a client hammering
/// with no quota left must not turn every refusal into balance queries.
const REFUSAL_DEBOUNCE_MS: i64 = 60_000;
/// Apps remembered for the debounce; beyond, the memory is cleared (the scan catches up).
const REFUSALS_REMEMBERED: usize = 4096;

/// What the checks tell the alert runner (and the metrics): the queue of apps to look at,
/// and the checks refused at admission.
pub(crate) struct AlertQueue {
    tx: mpsc::Sender<AppId>,
    rx: std::sync::Mutex<Option<mpsc::Receiver<AppId>>>,
    /// When each app was last queued for a refusal (unix ms).
    refused: std::sync::Mutex<std::collections::HashMap<AppId, i64>>,
    /// Checks refused at admission, per reason ([`App::refused_checks`]).
    pub(crate) refused_checks: RefusalCounts,
}

impl AlertQueue {
    pub(crate) fn new() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        AlertQueue {
            tx,
            rx: std::sync::Mutex::new(Some(rx)),
            refused: std::sync::Mutex::new(std::collections::HashMap::new()),
            refused_checks: RefusalCounts::default(),
        }
    }
}

/// What the operator is told when a test e-mail did not go out (the reason is in the log).
pub const TEST_EMAIL_NOT_DELIVERED: &str =
    "not delivered (the SMTP relay refused it or could not be reached; the server log says why)";

/// What the operator is told when a test alert did not arrive: nothing more (the reason is
/// in the log), so the test cannot tell a closed port from a refused address or a slow
/// receiver.
pub const TEST_ALERT_NOT_DELIVERED: &str =
    "not delivered (no 2xx answer from an allowed address; the server log says why)";

/// The JSON posted to a webhook.
#[derive(Debug, Clone, Serialize)]
pub struct AlertPayload {
    /// The alert's id.
    pub alert_id: i64,
    /// `low`, `exhausted` or `expiring`.
    pub kind: &'static str,
    /// The app.
    pub app_id: String,
    /// Calls left when noticed.
    pub remaining: i64,
    /// Calls bought (unexpired).
    pub purchased: i64,
    /// The app's threshold, percent.
    pub alert_percent: u8,
    /// When noticed (unix ms).
    pub at: i64,
}

/// `X-Renzheng-Signature` of a webhook body: `t=<ms>,v1=<hex HMAC-SHA256 of "<ms>.<body>"
/// under the app's AppSecret>`, so a receiver can check origin and freshness.
pub fn webhook_signature(secret: &str, timestamp_ms: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp_ms},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

impl App {
    /// Asks the alert runner to look at `app_id` soon (never waits).
    pub(crate) fn alert_soon(&self, app_id: &AppId) {
        let _ = self.alerts.tx.try_send(app_id.clone());
    }

    /// [`alert_soon`](Self::alert_soon) for a refused check: at most once a minute per app.
    pub(crate) fn alert_soon_after_refusal(&self, app_id: &AppId) {
        let now = self.now_ms();
        let Ok(mut refused) = self.alerts.refused.lock() else {
            return;
        };
        if refused
            .get(app_id)
            .is_some_and(|last| now - last < REFUSAL_DEBOUNCE_MS)
        {
            return;
        }
        if refused.len() >= REFUSALS_REMEMBERED {
            refused.clear();
        }
        refused.insert(app_id.clone(), now);
        drop(refused);
        self.alert_soon(app_id);
    }

    /// What a `balance` calls for at `now` under an alert threshold of `alert_percent`:
    /// exhausted or low (at most one of the two), and expiring. The alert scan and the
    /// console's overview ([`App::quotas`]) both ask this.
    pub(crate) fn alerts_due(
        &self,
        alert_percent: u8,
        balance: &renzheng_store::Balance,
        now: i64,
    ) -> Vec<AlertKind> {
        let mut due = Vec::new();
        if balance.grants.is_empty() {
            return due;
        }
        let percent = i64::from(alert_percent);
        let soon = now + i64::from(self.settings.alerts.expiring_days) * DAY_MS;
        if balance.remaining == 0 {
            due.push(AlertKind::Exhausted);
        } else if balance.remaining * 100 <= balance.purchased * percent {
            due.push(AlertKind::Low);
        }
        if balance
            .grants
            .iter()
            .any(|g| g.live_at(now) && g.available() > 0 && g.expires_at.is_some_and(|e| e <= soon))
        {
            due.push(AlertKind::Expiring);
        }
        due
    }

    /// The newest `limit` balance alerts (of one app, or every app), newest first: the
    /// console's alert history. Whether a webhook was delivered is said; why not is in the
    /// server's log only (see the module's note).
    pub async fn alert_history(
        &self,
        app_id: Option<&AppId>,
        limit: u32,
    ) -> Result<Vec<AlertView>, AppError> {
        Ok(self
            .store
            .recent_alerts(app_id, limit.clamp(1, 1000))
            .await?
            .into_iter()
            .map(|r| AlertView {
                id: r.id,
                at: r.alert.at,
                app_id: r.alert.app_id.to_string(),
                kind: r.alert.kind,
                remaining: r.alert.remaining,
                purchased: r.alert.purchased,
                delivered_at: r.delivered_at,
                attempts: r.attempts,
            })
            .collect())
    }

    /// Looks at one app's balance and records (and posts) the alerts due today; returns
    /// the kinds recorded now.
    pub async fn evaluate_alerts(&self, app_id: &AppId) -> Vec<AlertKind> {
        match self.try_evaluate_alerts(app_id).await {
            Ok(kinds) => kinds,
            Err(e) => {
                tracing::warn!(error = %e, app_id = %app_id, "balance alert check failed");
                Vec::new()
            }
        }
    }

    async fn try_evaluate_alerts(
        &self,
        app_id: &AppId,
    ) -> Result<Vec<AlertKind>, renzheng_store::StoreError> {
        let Some(app) = self.store.get_app(app_id).await? else {
            return Ok(Vec::new());
        };
        if !app.enabled {
            return Ok(Vec::new());
        }
        let now = self.now_ms();
        let balance = self.store.balance(app_id, now).await?;
        if balance.grants.is_empty() {
            return Ok(Vec::new());
        }
        let due = self.alerts_due(app.policy.alert_percent, &balance, now);
        let period = (now + i64::from(self.settings.metering.utc_offset_minutes) * 60_000) / DAY_MS;
        let mut recorded = Vec::new();
        for kind in due {
            let alert = NewAlert {
                at: now,
                app_id: app_id.clone(),
                kind,
                period,
                remaining: balance.remaining,
                purchased: balance.purchased,
            };
            let Some(id) = self.store.record_alert(&alert).await? else {
                continue;
            };
            tracing::warn!(app_id = %app_id, kind = kind.as_str(), remaining = balance.remaining, "balance alert");
            recorded.push(kind);
            if let Some(url) = &app.policy.webhook_url {
                let secret = match (&app.app_key, &app.secret_sealed) {
                    (Some(key), Some(sealed)) => self.secrets().open(key, sealed),
                    _ => None,
                };
                let payload = AlertPayload {
                    alert_id: id,
                    kind: kind.as_str(),
                    app_id: app_id.to_string(),
                    remaining: balance.remaining,
                    purchased: balance.purchased,
                    alert_percent: app.policy.alert_percent,
                    at: now,
                };
                tokio::spawn(deliver(
                    Delivery {
                        store: self.store.clone(),
                        client: self.webhooks.clone(),
                        policy: self.fetcher.policy().clone(),
                        attempts: self.settings.alerts.webhook_attempts,
                        backoff: Duration::from_millis(self.settings.alerts.webhook_backoff_ms),
                        clock: self.clock.clone(),
                    },
                    url.clone(),
                    secret,
                    payload,
                ));
            }
            self.mail_balance_alert(&app, kind, balance.remaining, balance.purchased);
        }
        Ok(recorded)
    }

    /// E-mails a balance alert to the app's recipients, from a task (never waited for),
    /// when a relay is configured and the app has recipients.
    fn mail_balance_alert(
        &self,
        app: &renzheng_store::App,
        kind: AlertKind,
        remaining: i64,
        purchased: i64,
    ) {
        let (Some(mailer), false) = (&self.mailer, app.policy.alert_emails.is_empty()) else {
            return;
        };
        let (subject, body) = balance_mail(
            &app.name,
            &app.id,
            kind,
            remaining,
            purchased,
            app.policy.alert_percent,
        );
        let (mailer, to, app_id) = (
            mailer.clone(),
            app.policy.alert_emails.clone(),
            app.id.clone(),
        );
        tokio::spawn(async move {
            match mailer.send(&to, &subject, &body).await {
                Ok(()) => {
                    tracing::info!(app_id = %app_id, kind = kind.as_str(), recipients = to.len(), "balance alert e-mailed");
                }
                Err(e) => {
                    tracing::warn!(app_id = %app_id, kind = kind.as_str(), error = %e, "balance alert not e-mailed");
                }
            }
        });
    }

    /// Checks a webhook URL as it is set: http(s), and leading to an address the policy
    /// allows (public, or in `img_url.allow`), as far as DNS tells now; nothing is
    /// connected to. Every delivery checks again.
    pub async fn check_webhook_url(&self, raw: &str) -> Result<(), AppError> {
        let url = Url::parse(raw).map_err(|_| AppError::from(Rule::WebhookNotHttp))?;
        match fetch::check_destination(self.fetcher.policy(), &url).await {
            Ok(()) => Ok(()),
            Err(FetchError::Refused { .. }) => Err(Rule::WebhookNotPublic.into()),
            Err(_) => Err(Rule::WebhookNotHttp.into()),
        }
    }

    /// Posts one test alert (kind `test`, alert id 0, the app's current balance) to the
    /// app's webhook, signed like a real one, once and without recording an alert: the
    /// operator sees at once whether the receiver works. `Ok(Err(_))` when it did not,
    /// always with the same words ([`TEST_ALERT_NOT_DELIVERED`]): why is logged (without
    /// the URL), never answered, so the test cannot be used to map a network.
    pub async fn send_test_alert(
        &self,
        actor: &Actor,
        app_id: &AppId,
    ) -> Result<Result<(), String>, AppError> {
        let app = self
            .store
            .get_app(app_id)
            .await?
            .ok_or(AppError::NotFound("app"))?;
        let Some(url) = &app.policy.webhook_url else {
            return Err(AppError::Invalid("the app has no webhook".into()));
        };
        let now = self.now_ms();
        let balance = self.store.balance(app_id, now).await?;
        let secret = match (&app.app_key, &app.secret_sealed) {
            (Some(key), Some(sealed)) => self.secrets().open(key, sealed),
            _ => None,
        };
        let payload = AlertPayload {
            alert_id: 0,
            kind: "test",
            app_id: app_id.to_string(),
            remaining: balance.remaining,
            purchased: balance.purchased,
            alert_percent: app.policy.alert_percent,
            at: now,
        };
        let body = serde_json::to_vec(&payload).expect("alert payloads serialize");
        let target = Target {
            client: &self.webhooks,
            policy: self.fetcher.policy(),
        };
        let outcome = post_once(
            target,
            url,
            secret.as_deref().map(String::as_str),
            "test",
            &body,
            now,
        )
        .await;
        if let Err(why) = outcome {
            tracing::warn!(app_id = %app_id, error = why, "test alert not delivered");
        }
        self.test_sent(actor, app_id, "app.test-alert", outcome.is_ok())
            .await;
        Ok(outcome.map_err(|_| TEST_ALERT_NOT_DELIVERED.to_owned()))
    }

    /// E-mails one test message to the app's alert recipients through the SMTP relay,
    /// waiting for the relay's answer, so the operator sees at once whether mail reaches
    /// them. `Ok(Err(_))` when it did not (the same words whatever the reason, which is
    /// logged without the addresses).
    pub async fn send_test_email(
        &self,
        actor: &Actor,
        app_id: &AppId,
    ) -> Result<Result<(), String>, AppError> {
        let app = self
            .store
            .get_app(app_id)
            .await?
            .ok_or(AppError::NotFound("app"))?;
        let Some(mailer) = &self.mailer else {
            return Err(AppError::NoSmtpRelay);
        };
        if app.policy.alert_emails.is_empty() {
            return Err(AppError::Invalid(
                "the app has no alert e-mail recipients".into(),
            ));
        }
        let balance = self.store.balance(app_id, self.now_ms()).await?;
        let subject = format!("[人证] {}：测试提醒 / test alert", app.name);
        let body = format!(
            "这是应用 {name}（{id}）的测试提醒邮件：余额提醒将发送到此地址。当前剩余 {remaining} 次，共购买 {purchased} 次。\n\n\
             A test alert of app {name} ({id}): its balance alerts will be sent to this address. \
             {remaining} calls left of {purchased} bought.\n",
            name = app.name,
            id = app.id,
            remaining = balance.remaining,
            purchased = balance.purchased,
        );
        let outcome = mailer.send(&app.policy.alert_emails, &subject, &body).await;
        if let Err(e) = &outcome {
            tracing::warn!(app_id = %app_id, error = %e, "test alert e-mail not delivered");
        }
        self.test_sent(actor, app_id, "app.test-email", outcome.is_ok())
            .await;
        Ok(outcome.map_err(|_| TEST_EMAIL_NOT_DELIVERED.to_owned()))
    }

    /// The event of a test alert or e-mail: whether it was delivered.
    async fn test_sent(&self, actor: &Actor, app_id: &AppId, action: &str, delivered: bool) {
        let mut event = self.event(actor, action);
        event.app_id = Some(app_id.clone());
        event.detail = Some(
            if delivered {
                "delivered"
            } else {
                "not delivered"
            }
            .into(),
        );
        self.record_event(event).await;
    }

    /// Looks at the apps named by charges as they come, and at every app each
    /// `alerts.scan_interval_s`, for as long as the server runs. Only the first caller
    /// runs; later calls return at once.
    pub async fn run_alerts(&self) {
        let Some(mut rx) = self.alerts.rx.lock().ok().and_then(|mut rx| rx.take()) else {
            return;
        };
        let mut scan =
            tokio::time::interval(Duration::from_secs(self.settings.alerts.scan_interval_s));
        loop {
            tokio::select! {
                Some(app_id) = rx.recv() => {
                    self.evaluate_alerts(&app_id).await;
                }
                _ = scan.tick() => {
                    match self.store.list_apps().await {
                        Ok(apps) => {
                            for app in apps.into_iter().filter(|a| a.enabled) {
                                self.evaluate_alerts(&app.id).await;
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "balance alert scan failed"),
                    }
                }
            }
        }
    }
}

impl App {
    /// Posts an operator alert to `compliance.alert_webhook` (when set), signed with
    /// `compliance.alert_webhook_secret` (when set), retried like the apps' alerts, and
    /// waits for the outcome: the crossing of a mark happens twice in a registry's life,
    /// and a command that sees it (`compliance status`) must not exit before it is told.
    /// The outcome is logged, never returned: an unreachable receiver fails nothing.
    pub(crate) async fn send_operator_alert(&self, alert: &FilingAlert) {
        let to = &self.settings.alerts.operator_emails;
        if let (Some(mailer), false) = (&self.mailer, to.is_empty()) {
            let (subject, body) = filing_mail(alert);
            match mailer.send(to, &subject, &body).await {
                Ok(()) => tracing::info!(kind = alert.kind, "operator alert e-mailed"),
                Err(e) => {
                    tracing::warn!(kind = alert.kind, error = %e, "operator alert not e-mailed");
                }
            }
        }
        let Some(url) = &self.settings.compliance.alert_webhook else {
            return;
        };
        let secret = self.settings.compliance.alert_webhook_secret.as_ref();
        let body = serde_json::to_vec(alert).expect("alert payloads serialize");
        let mut wait = Duration::from_millis(self.settings.alerts.webhook_backoff_ms);
        let attempts = self.settings.alerts.webhook_attempts.max(1);
        for attempt in 1..=attempts {
            let target = Target {
                client: &self.webhooks,
                policy: self.fetcher.policy(),
            };
            let outcome = post_once(
                target,
                url.expose(),
                secret.map(Secret::expose),
                alert.kind,
                &body,
                self.now_ms(),
            )
            .await;
            match outcome {
                Ok(()) => {
                    tracing::info!(kind = alert.kind, "operator alert delivered");
                    return;
                }
                Err(e) if attempt == attempts => {
                    tracing::warn!(
                        kind = alert.kind,
                        attempts,
                        error = e,
                        "operator alert not delivered"
                    );
                    return;
                }
                Err(_) => {
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                }
            }
        }
    }
}

/// The subject and text of a balance alert's e-mail, in Chinese then English (the app's
/// name and id, never a caller's data).
fn balance_mail(
    name: &str,
    app_id: &AppId,
    kind: AlertKind,
    remaining: i64,
    purchased: i64,
    percent: u8,
) -> (String, String) {
    let (zh, en) = match kind {
        AlertKind::Low => ("余额不足", "running low"),
        AlertKind::Exhausted => ("额度已用完", "exhausted"),
        AlertKind::Expiring => ("额度即将过期", "calls expiring soon"),
    };
    let subject = format!("[人证] {name}：{zh} / calls {en} ({remaining} left)");
    let body = format!(
        "应用 {name}（{app_id}）{zh}：剩余 {remaining} 次，共购买 {purchased} 次（提醒阈值 {percent}%）。\n\
         请为该应用续购套餐，以免调用被拒绝（403 Quota Exhausted）。\n\n\
         App {name} ({app_id}): {en}. {remaining} calls left of {purchased} bought (alert at {percent} %).\n\
         Grant it a package before its calls are refused (403 Quota Exhausted).\n"
    );
    (subject, body)
}

/// The subject and text of a filing-line alert's e-mail.
fn filing_mail(alert: &FilingAlert) -> (String, String) {
    let reached = alert.kind == "filing_line_reached";
    let (zh, en) = if reached {
        ("已达到备案线", "the filing line is reached")
    } else {
        ("接近备案线", "the filing line is near")
    };
    let subject = format!(
        "[人证] {zh} / {en}: {} / {}",
        alert.persons_with_face_data, alert.filing_threshold
    );
    let body = format!(
        "人员库中存有人脸信息的人数为 {}，备案线为 {}（{}%）。{}\n\n\
         {} persons with face data are stored; the filing line is {} ({} %). {}\n",
        alert.persons_with_face_data,
        alert.filing_threshold,
        alert.percent,
        if reached {
            "请按规定办理备案。"
        } else {
            "请准备备案。"
        },
        alert.persons_with_face_data,
        alert.filing_threshold,
        alert.percent,
        if reached {
            "File with the authority as the rules require."
        } else {
            "Prepare the filing."
        },
    );
    (subject, body)
}

/// What a delivery task needs, owned.
struct Delivery {
    store: Arc<dyn Store>,
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    attempts: u32,
    backoff: Duration,
    clock: Arc<dyn crate::Clock>,
}

/// Posts the alert, retrying with doubling waits; every attempt is noted on the alert.
async fn deliver(
    d: Delivery,
    url: String,
    secret: Option<zeroize::Zeroizing<String>>,
    payload: AlertPayload,
) {
    let body = serde_json::to_vec(&payload).expect("alert payloads serialize");
    let mut wait = d.backoff;
    for attempt in 1..=d.attempts {
        let target = Target {
            client: &d.client,
            policy: &d.policy,
        };
        let outcome = post_once(
            target,
            &url,
            secret.as_deref().map(String::as_str),
            payload.kind,
            &body,
            d.clock.now_ms(),
        )
        .await;
        let delivered = outcome.is_ok().then(|| d.clock.now_ms());
        if let Err(e) = d
            .store
            .alert_attempted(payload.alert_id, delivered, outcome.err())
            .await
        {
            tracing::warn!(error = %e, "could not note a webhook attempt");
        }
        match outcome {
            Ok(()) => return,
            Err(e) if attempt == d.attempts => {
                tracing::warn!(alert_id = payload.alert_id, attempts = attempt, error = %e, "alert webhook not delivered");
                return;
            }
            Err(_) => {
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
        }
    }
}

/// Where a webhook goes out: a client whose resolver applies `policy`, and the policy,
/// for the IP literals no resolver sees.
#[derive(Clone, Copy)]
struct Target<'a> {
    client: &'a reqwest::Client,
    policy: &'a AddressPolicy,
}

/// One signed POST of an alert body, if the URL's address is allowed; the error says what
/// happened, for the log and the alert's row, without the URL (it may carry the customer's
/// token) or the address.
async fn post_once(
    target: Target<'_>,
    url: &str,
    secret: Option<&str>,
    kind: &str,
    body: &[u8],
    now_ms: i64,
) -> Result<(), &'static str> {
    const REFUSED: &str = "refused: not an allowed address";
    let url = Url::parse(url).map_err(|_| "not a valid URL")?;
    if target.policy.check_url_host(&url).is_err() {
        return Err(REFUSED);
    }
    let mut request = target
        .client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Renzheng-Alert", kind)
        .body(body.to_vec());
    if let Some(secret) = secret {
        request = request.header(
            "X-Renzheng-Signature",
            webhook_signature(secret, now_ms, body),
        );
    }
    match request.send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) if r.status().is_redirection() => Err("answered with a redirect"),
        Ok(r) if r.status().is_client_error() => Err("answered 4xx"),
        Ok(_) => Err("answered 5xx"),
        Err(e) => match fetch::classify(&e) {
            FetchError::Refused { .. } => Err(REFUSED),
            _ if e.is_timeout() => Err("timed out"),
            _ if e.is_connect() => Err("connection failed"),
            _ => Err("request failed"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_signatures_are_hmac_sha256_of_timestamp_and_body() {
        // Independent value: python3 -c "import hmac,hashlib;print(hmac.new(b'secret',
        // b'1700000000000.{}',hashlib.sha256).hexdigest())"
        assert_eq!(
            webhook_signature("secret", 1_700_000_000_000, b"{}"),
            "t=1700000000000,v1=8399216d111287e3bb28e25c0f4f31dffdf831c68c9ee2b96c2f67c9b81d341b"
        );
    }
}
