//! E-mail alerts over SMTP: an app's balance alerts to its recipients
//! (`AppPolicy::alert_emails`), operator-level alerts (the compliance filing line) to
//! `alerts.operator_emails`, through the relay of `alerts.smtp_url` (implicit TLS or
//! STARTTLS with the webpki roots, or plain to a local relay), as `alerts.email_from`.
//!
//! Delivery is retried like the webhooks (`alerts.webhook_attempts`, doubling waits from
//! `alerts.webhook_backoff_ms`) and never delays a check: balance alerts are sent from
//! a spawned task. The outcome is logged without the recipients (an address is personal
//! data); an unreachable relay fails nothing. The webhook stays the path to SMS
//! gateways.

use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::settings::AlertSettings;
use crate::AppError;

/// The longest e-mail address, bytes (RFC 5321's path limit).
const MAX_ADDRESS_BYTES: usize = 254;

/// `text` as an e-mail address (trimmed; `local@domain`, an internationalised domain
/// allowed), or a refusal naming it.
pub fn address(text: &str) -> Result<String, AppError> {
    let text = text.trim();
    let refused = || AppError::InvalidEmail(text.chars().take(MAX_ADDRESS_BYTES).collect());
    if text.is_empty() || text.len() > MAX_ADDRESS_BYTES {
        return Err(refused());
    }
    text.parse::<lettre::Address>().map_err(|_| refused())?;
    Ok(text.to_owned())
}

/// The SMTP relay and the sender; cheap to clone (the transport is shared).
#[derive(Clone)]
pub(crate) struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    attempts: u32,
    backoff: Duration,
}

impl Mailer {
    /// The mailer of `settings`, or `None` when no relay is configured.
    /// What goes together is checked here, as the app opens (each setting alone loads):
    /// a relay needs a sender, operator recipients need a relay.
    pub(crate) fn from_settings(settings: &AlertSettings) -> Result<Option<Self>, String> {
        let Some(url) = &settings.smtp_url else {
            if settings.operator_emails.is_empty() {
                return Ok(None);
            }
            return Err(
                "alerts.operator_emails needs alerts.smtp_url (and alerts.email_from)".into(),
            );
        };
        let Some(from) = &settings.email_from else {
            return Err(
                "alerts.email_from (the sender, e.g. alerts@example.cn) is needed with alerts.smtp_url"
                    .into(),
            );
        };
        for to in &settings.operator_emails {
            address(to)
                .map_err(|_| format!("alerts.operator_emails: {to:?} is not an e-mail address"))?;
        }
        Ok(Some(Mailer {
            transport: Self::transport(url.expose(), settings.webhook_timeout_ms)
                .map_err(|e| format!("alerts.smtp_url: {e}"))?,
            from: from.parse().map_err(|_| {
                format!(
                    "alerts.email_from: {from:?} is not a sender address (e.g. alerts@example.cn)"
                )
            })?,
            attempts: settings.webhook_attempts.max(1),
            backoff: Duration::from_millis(settings.webhook_backoff_ms),
        }))
    }

    /// The transport of an `smtp://` or `smtps://` URL (`?tls=required` for STARTTLS),
    /// each attempt limited to `timeout_ms`. Nothing is connected to.
    pub(crate) fn transport(
        url: &str,
        timeout_ms: u64,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let parsed = url::Url::parse(url).map_err(|_| "not a URL".to_owned())?;
        if !matches!(parsed.scheme(), "smtp" | "smtps") || parsed.host().is_none() {
            return Err("must be smtp://HOST[:PORT] or smtps://HOST[:PORT]".into());
        }
        // The error may quote the URL (and its password): not repeated.
        Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| "not an SMTP URL lettre understands (smtp:// or smtps://, ?tls=required|opportunistic)".to_owned())?
            .timeout(Some(Duration::from_millis(timeout_ms)))
            .build())
    }

    /// Sends one plain-text message to `to` (every address in one message), retrying
    /// with doubling waits; `Err` with the last failure after the last attempt.
    pub(crate) async fn send(
        &self,
        to: &[String],
        subject: &str,
        body: &str,
    ) -> Result<(), String> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for address in to {
            let mailbox: Mailbox = address
                .parse()
                .map_err(|_| "a recipient is not an e-mail address".to_owned())?;
            message = message.to(mailbox);
        }
        let message = message
            .body(body.to_owned())
            .map_err(|e| format!("building the message: {e}"))?;
        let mut wait = self.backoff;
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            match self.transport.send(message.clone()).await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    last = failure(&e);
                    if attempt < self.attempts {
                        tokio::time::sleep(wait).await;
                        wait = wait.saturating_mul(2);
                    }
                }
            }
        }
        Err(last)
    }
}

/// A failed delivery in words that name no recipient: a relay's answer can quote the
/// address it refused ("550 <ops@…>: rejected"), so only its code and kind are kept.
fn failure(e: &lettre::transport::smtp::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_permanent() {
        "refused by the relay (permanent)"
    } else if e.is_transient() {
        "refused by the relay (transient)"
    } else if e.is_tls() {
        "TLS failed"
    } else {
        "no connection or no SMTP answer"
    };
    match e.status() {
        Some(code) => format!("{kind}, SMTP {code}"),
        None => kind.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_relays_are_checked_as_set() {
        for ok in ["ops@example.cn", " ops@example.cn ", "财务@例子.中国"] {
            assert_eq!(address(ok).unwrap(), ok.trim());
        }
        for bad in [
            "",
            "ops",
            "ops@",
            "@example.cn",
            "a b@example.cn",
            "ops@example.cn\r\nBcc: x@y.z",
        ] {
            assert!(address(bad).is_err(), "{bad:?}");
        }
        assert!(address(&format!("{}@example.cn", "a".repeat(250))).is_err());
        for ok in [
            "smtp://127.0.0.1:2525",
            "smtps://user:pass@mail.example.cn",
            "smtp://mail.example.cn:587?tls=required",
        ] {
            assert!(Mailer::transport(ok, 1_000).is_ok(), "{ok}");
        }
        for bad in ["http://mail.example.cn", "mail.example.cn:25", "smtp://"] {
            let e = Mailer::transport(bad, 1_000).err().unwrap_or_default();
            assert!(!e.is_empty(), "{bad}");
        }
        // As the app opens: a bad relay or operator address refuses to start, naming
        // the setting and never the URL (it may hold a password).
        let mut settings = AlertSettings {
            smtp_url: Some(crate::settings::Secret::new(
                "http://u:hunter2@mail.example.cn",
            )),
            email_from: Some("alerts@example.cn".into()),
            ..AlertSettings::default()
        };
        let e = Mailer::from_settings(&settings).err().unwrap();
        assert!(
            e.starts_with("alerts.smtp_url") && !e.contains("hunter2"),
            "{e}"
        );
        settings.smtp_url = Some(crate::settings::Secret::new("smtp://127.0.0.1:25"));
        settings.operator_emails = vec!["dpo".into()];
        let e = Mailer::from_settings(&settings).err().unwrap();
        assert!(e.starts_with("alerts.operator_emails"), "{e}");
        settings.operator_emails = vec!["dpo@example.cn".into()];
        assert!(Mailer::from_settings(&settings).unwrap().is_some());
        assert!(Mailer::from_settings(&AlertSettings::default())
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn a_failed_delivery_says_why_without_the_recipients() {
        // Nothing listens on the discard port of loopback: the connection is refused.
        let settings = AlertSettings {
            smtp_url: Some(crate::settings::Secret::new("smtp://127.0.0.1:9")),
            email_from: Some("alerts@example.cn".into()),
            webhook_attempts: 2,
            webhook_backoff_ms: 1,
            ..AlertSettings::default()
        };
        let mailer = Mailer::from_settings(&settings).unwrap().unwrap();
        let e = mailer
            .send(&["ops@example.cn".into()], "subject", "body")
            .await
            .unwrap_err();
        assert!(!e.contains("ops@example.cn") && !e.is_empty(), "{e}");
    }
}
