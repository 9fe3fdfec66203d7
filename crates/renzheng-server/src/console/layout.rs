//! The page shell (head, navigation, flash messages), the embedded assets, and the
//! headers every console response carries.

use std::borrow::Cow;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use renzheng_app::OperatorSession;
use serde::{Deserialize, Serialize};

use super::access;
use super::csrf;
use super::i18n::Lang;

/// The stylesheet, embedded in the binary.
pub const CSS: &str = include_str!("assets/console.css");
/// The console's icon (also answered at `/favicon.ico`, which browsers ask for anyway).
pub const FAVICON: &str = include_str!("assets/favicon.svg");
/// The small script (confirmations, copy buttons), embedded in the binary; every page
/// works without it.
pub const JS: &str = include_str!("assets/console.js");

/// The console's Content-Security-Policy: only its own scripts and styles; images may
/// be `data:` (the try-it page draws the uploaded photo); no frames, no foreign forms.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A message at the top of a page (kept across a redirect in a
/// [`Notice`](super::notice::Notice), so it serializes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flash {
    /// Something was done.
    Ok(String),
    /// Something was refused; `reason` is a stable word for tests and styling.
    Error {
        /// What to show.
        text: String,
        /// A stable word (`expired`, `csrf`, `credentials`…).
        reason: Option<Cow<'static, str>>,
    },
}

impl Flash {
    /// A success.
    pub fn ok(text: impl Into<String>) -> Self {
        Flash::Ok(text.into())
    }

    /// A refusal.
    pub fn error(text: impl Into<String>) -> Self {
        Flash::Error {
            text: text.into(),
            reason: None,
        }
    }

    /// A refusal with a stable reason word.
    pub fn error_because(text: impl Into<String>, reason: &'static str) -> Self {
        Flash::Error {
            text: text.into(),
            reason: Some(Cow::Borrowed(reason)),
        }
    }
}

/// What the shell needs to know about a page.
pub struct Page<'a> {
    /// Its language.
    pub lang: Lang,
    /// The signed-in operator (`None`: sign-in and error pages, without navigation).
    pub operator: Option<&'a OperatorSession>,
    /// The navigation entry to highlight (`data-page` value).
    pub active: &'static str,
    /// The title.
    pub title: &'a str,
    /// Messages.
    pub flash: Vec<Flash>,
}

/// A whole page with `status`.
pub fn html_page(status: StatusCode, page: Page<'_>, body: Markup) -> Response {
    let t = page.lang.t();
    let nav = [
        ("overview", t.overview),
        ("apps", t.apps),
        ("packages", t.packages),
        ("calls", t.calls),
        ("alerts", t.alerts),
        ("events", t.events),
        ("registry", t.registry),
        ("try", t.try_it),
        ("about", t.about),
        ("operators", t.operators),
    ];
    // Only what the operator's role opens (the same table that refuses the rest).
    let nav: Vec<_> = match page.operator {
        Some(op) => nav
            .into_iter()
            .filter(|(key, _)| access::allows(op.role, &Method::GET, &format!("/console/{key}")))
            .collect(),
        None => Vec::new(),
    };
    let markup = html! {
        (DOCTYPE)
        html lang=(page.lang.html_lang()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (page.title) " · " (t.product) }
                link rel="icon" type="image/svg+xml" href="/console/assets/favicon.svg";
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a .skip href="#main" { (t.skip_to_content) }
                header .top {
                    a .brand href="/console/overview" { "人证 " span .muted { "Renzheng" } }
                    @if page.operator.is_some() {
                        nav {
                            @for (key, label) in nav {
                                a data-page=(key) href={ "/console/" (key) }
                                    class=[(page.active == key).then_some("active")] { (label) }
                            }
                        }
                    }
                    div .tools {
                        a #lang-zh href="/console/lang/zh" class=[(page.lang == Lang::Zh).then_some("active")] { "中文" }
                        a #lang-en href="/console/lang/en" class=[(page.lang == Lang::En).then_some("active")] { "EN" }
                        @if let Some(op) = page.operator {
                            a #account .who href="/console/account" class=[(page.active == "account").then_some("active")] { (t.signed_in_as) " " (op.operator) }
                            form #sign-out method="post" action="/console/sign-out" {
                                (csrf::field(op))
                                button .link type="submit" { (t.sign_out) }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (page.title) }
                    @for flash in &page.flash {
                        @match flash {
                            Flash::Ok(text) => p .flash .ok role="status" { (text) },
                            Flash::Error { text, reason } => p .flash .error role="alert" data-reason=[reason.as_deref()] { (text) },
                        }
                    }
                    (body)
                }
            }
        }
    };
    with_headers(status, "text/html; charset=utf-8", markup.into_string())
}

/// A response with the console's security headers: nothing cached (pages show masked
/// personal data and one-time secrets), no framing, no sniffing, no referrer to other
/// sites.
pub fn with_headers(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    secure_headers(headers);
    response
}

/// The security headers of every console response.
pub fn secure_headers(headers: &mut axum::http::HeaderMap) {
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CSP),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        // Not `no-referrer`: with it Chromium sends `Origin: null` on the console's own
        // form posts, which the same-origin check must then refuse. `same-origin` still
        // sends nothing to other sites.
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("same-origin"),
    );
}

/// Formats unix ms as `YYYY-MM-DD HH:MM` in the usage offset (minutes east of UTC).
pub fn format_time(ms: i64, offset_minutes: i32) -> String {
    let local = ms + i64::from(offset_minutes) * 60_000;
    let days = local.div_euclid(86_400_000);
    let in_day = local.rem_euclid(86_400_000) / 60_000;
    format!(
        "{} {:02}:{:02}",
        renzheng_app::metering::format_day(days),
        in_day / 60,
        in_day % 60
    )
}

/// The day (`YYYY-MM-DD`) unix ms falls on in the usage offset: a date input's value.
pub fn day_of(ms: i64, offset_minutes: i32) -> String {
    let local = ms + i64::from(offset_minutes) * 60_000;
    renzheng_app::metering::format_day(local.div_euclid(86_400_000))
}

/// Formats unix ms as `YYYY-MM-DD HH:MM:SS` in the usage offset (a call's time, to the
/// second; the page says the zone once, [`zone`]).
pub fn format_seconds(ms: i64, offset_minutes: i32) -> String {
    let local = ms + i64::from(offset_minutes) * 60_000;
    let secs = local.rem_euclid(60_000) / 1000;
    format!("{}:{secs:02}", format_time(ms, offset_minutes))
}

/// The usage offset as a zone: `UTC+08:00`.
pub fn zone(offset_minutes: i32) -> String {
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let m = offset_minutes.unsigned_abs();
    format!("UTC{sign}{:02}:{:02}", m / 60, m % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_have_seconds_and_the_zone_is_said() {
        // 2026-12-07 10:53:44.900 UTC.
        let ms = 1_796_640_824_900;
        assert_eq!(format_seconds(ms, 480), "2026-12-07 18:53:44");
        assert_eq!(format_time(ms, 480), "2026-12-07 18:53");
        assert_eq!(zone(480), "UTC+08:00");
        assert_eq!(zone(-330), "UTC-05:30");
        assert_eq!(zone(0), "UTC+00:00");
    }
}
