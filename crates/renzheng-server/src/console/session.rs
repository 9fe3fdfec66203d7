//! The operator's session: its cookie, and the signed-in operator as an extractor.
//!
//! The session cookie holds a random token (the store keeps its hash); it is `HttpOnly`,
//! `SameSite=Strict`, `Path=/` and, unless `console.secure_cookie` is off, `Secure` with
//! the `__Host-` prefix (see [`session_cookie`] for why the path is `/`). Signing in and
//! out is in `sign_in.rs`; the CSRF rule of the forms a session posts is in `verified.rs`.

use axum::extract::FromRequestParts;
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Redirect, Response};
use renzheng_app::OperatorSession;

use super::access;
use super::cookie::cookies;
use super::errors::{failure, not_allowed, not_found};
use super::i18n::Lang;
use super::notice::{self, Notice};
use crate::state::AppState;

/// The session cookie's name: `__Host-` prefixed when it is `Secure` (the browser then
/// refuses it from a subdomain or over HTTP).
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-renzheng_console"
    } else {
        "renzheng_console"
    }
}

/// Session cookies of one request looked up at most: a browser sends one per path and
/// domain it holds (e.g. one of the old `Path=/console` beside the current one), never
/// more than a few; a client sending many gets the first ones tried.
const SESSION_COOKIES_TRIED: usize = 4;

/// The signed-in operator (with the session's token, for sign-out and the session's
/// one-time messages) and the [`Notice`] the request's `?flash=` names, taken. A request
/// without a live session is sent to the sign-in page.
pub struct Operator {
    /// The session.
    pub session: OperatorSession,
    token: String,
    notice: Notice,
}

impl Operator {
    /// The session cookie's token (what sign-out ends, what one-time messages are bound to).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// What the form redirected here left for this page (empty the second time).
    pub fn take_notice(&mut self) -> Notice {
        std::mem::take(&mut self.notice)
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = Lang::from_request_parts(parts, state)
            .await
            .unwrap_or(Lang::Zh);
        let secure = state.app.settings().console.secure_cookie;
        let tokens: Vec<String> = cookies(&parts.headers, session_cookie_name(secure))
            .take(SESSION_COOKIES_TRIED)
            .collect();
        // A page asked for without a session is where sign-in leads back to (a GET only:
        // a form posted by a lapsed session is not replayed). Never a one-time message's
        // id: it was the old session's.
        let next = (parts.method == Method::GET)
            .then(
                || match parts.uri.query().filter(|q| !q.contains("flash=")) {
                    Some(q) => format!("{}?{q}", parts.uri.path()),
                    None => parts.uri.path().to_owned(),
                },
            )
            .filter(|p| safe_next(Some(p)).is_some() && p != "/console/overview");
        let sign_in = |query: &str| {
            let mut to = format!("/console/sign-in{query}");
            if let Some(next) = &next {
                let sep = if query.is_empty() { '?' } else { '&' };
                to.push(sep);
                to.push_str("next=");
                to.push_str(&query_escaped(next));
            }
            Redirect::to(&to).into_response()
        };
        let had_cookie = !tokens.is_empty();
        for token in tokens {
            match state.app.console_session(&token).await {
                Ok(Some(session)) => {
                    // The role rule of every page and form, before any handler runs.
                    if !access::allows(session.role, &parts.method, parts.uri.path()) {
                        tracing::warn!(
                            operator = %session.operator,
                            role = session.role.as_str(),
                            path = parts.uri.path(),
                            "a console request beyond the operator's role was refused"
                        );
                        return Err(not_allowed(lang, &session));
                    }
                    let notice = notice::take(state, &token, parts.uri.query()).await;
                    return Ok(Operator {
                        session,
                        token,
                        notice,
                    });
                }
                Ok(None) => continue,
                Err(e) => return Err(failure(lang, None, &e)),
            }
        }
        // No live session. A server whose console is closed answers 404 (asked only here:
        // a live session proves the console open, since its account exists).
        match state.app.console_enabled().await {
            Ok(true) => {}
            Ok(false) => return Err(not_found(lang)),
            Err(e) => return Err(failure(lang, None, &e)),
        }
        if !had_cookie {
            return Err(sign_in(""));
        }
        let mut response = sign_in("?expired=1");
        append_clear_cookies(response.headers_mut(), secure);
        Err(response)
    }
}

/// The longest page path kept across sign-in, bytes.
const MAX_NEXT_BYTES: usize = 512;

/// `next` when it is a console page of this site to go to after signing in: a path under
/// `/console/` (not the sign-in page), ASCII, without `//` or `\` (which a browser could
/// read as another host), of sane length. Anything else: the overview.
pub fn safe_next(next: Option<&str>) -> Option<&str> {
    next.filter(|n| {
        n.len() <= MAX_NEXT_BYTES
            && n.starts_with("/console/")
            && !n.starts_with("/console/sign-in")
            && !n.starts_with("/console/sign-out")
            && !n.contains("//")
            && !n.contains('\\')
            && n.bytes().all(|b| b.is_ascii_graphic())
    })
}

/// `text` escaped for a query's value: everything but unreserved characters and `/` as
/// `%XX` (its `?`, `&` and `=` must not end the `next` parameter).
fn query_escaped(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `Set-Cookie` of the session cookie holding `token` for `max_age_secs` (an empty
/// token with 0 clears it).
///
/// Why `Path=/` and not `Path=/console`: a browser stores a `__Host-` cookie only when it
/// is `Secure`, has no `Domain` and has `Path=/`; anything else is refused (Chromium:
/// `InvalidPrefix`), so with `Path=/console` nobody could sign in with the default
/// `secure_cookie = true`. The prefix is worth the wider path: it ties the cookie to this
/// exact host over HTTPS, so neither a plain-HTTP response nor a sibling subdomain can
/// set or shadow it (`__Secure-` with `Path=/console` would give only the first). The
/// wider path grants nothing: a path is no security boundary within an origin (a page
/// of it can read a `/console` cookie through a frame), and every other route (the check,
/// the admin API, the metrics) authenticates by header and never reads a cookie. It is
/// sent there by a browser only, never cross-site (`SameSite=Strict`), never to a script
/// (`HttpOnly`). The plain-HTTP cookie has the same path, so the setting changes only the
/// prefix and `Secure`.
pub fn session_cookie(secure: bool, token: &str, max_age_secs: u64) -> HeaderValue {
    let name = session_cookie_name(secure);
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={token}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("the token is base64url")
}

/// Appends the `Set-Cookie`s that clear the session cookie: the current one, and the
/// plain-HTTP cookie of earlier releases, which had `Path=/console` (a browser would keep
/// sending it beside the current one until it lapsed). Their `__Host-` cookie needs no
/// clearing: no browser ever stored it.
pub fn append_clear_cookies(headers: &mut HeaderMap, secure: bool) {
    headers.append(SET_COOKIE, session_cookie(secure, "", 0));
    append_clear_legacy_cookie(headers);
}

/// Appends the `Set-Cookie` that clears the plain-HTTP session cookie of earlier
/// releases (`Path=/console`), sent with a new session too.
pub fn append_clear_legacy_cookie(headers: &mut HeaderMap) {
    headers.append(
        SET_COOKIE,
        HeaderValue::from_static(
            "renzheng_console=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict",
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secure_cookie_is_one_browsers_accept_under_its_prefix() {
        let cookie = session_cookie(true, "tok", 60);
        let cookie = cookie.to_str().unwrap();
        // What a `__Host-` cookie must be (RFC 6265bis §4.1.3.2): Secure, Path=/, no Domain.
        assert!(
            cookie.starts_with("__Host-renzheng_console=tok;"),
            "{cookie}"
        );
        let attributes: Vec<&str> = cookie.split(';').skip(1).map(str::trim).collect();
        for wanted in [
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=60",
        ] {
            assert!(attributes.contains(&wanted), "{wanted} missing: {cookie}");
        }
        assert!(!cookie.to_ascii_lowercase().contains("domain"), "{cookie}");
        let plain = session_cookie(false, "tok", 60);
        let plain = plain.to_str().unwrap();
        assert!(plain.starts_with("renzheng_console=tok;") && !plain.contains("Secure"));
        assert!(plain.contains("; Path=/;"), "{plain}");
    }

    #[test]
    fn only_console_pages_of_this_site_are_kept_across_sign_in() {
        for ok in ["/console/apps", "/console/calls?result=1&app=a"] {
            assert_eq!(safe_next(Some(ok)), Some(ok));
        }
        for bad in [
            "https://evil.example/console/apps",
            "//evil.example/console/",
            "/console//evil.example",
            "/console/\\evil",
            "/console/sign-in",
            "/console/sign-out",
            "/healthz",
            "/console/a b",
            "/console/名",
        ] {
            assert_eq!(safe_next(Some(bad)), None, "{bad}");
        }
        assert_eq!(
            query_escaped("/console/calls?result=1&app=a"),
            "/console/calls%3Fresult%3D1%26app%3Da"
        );
    }

    #[test]
    fn clearing_also_clears_the_old_path() {
        let mut headers = HeaderMap::new();
        append_clear_cookies(&mut headers, false);
        let set: Vec<&str> = headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(set.len(), 2);
        assert!(set.iter().all(|c| c.contains("Max-Age=0")));
        assert!(set[0].contains("Path=/;") && set[1].contains("Path=/console;"));
    }
}
