//! Signing in (the one console form without a session, so without a CSRF token: the
//! same-origin layer guards it) and signing out.
//!
//! The sign-in form is read by hand, not by the console's body limit (sized for photo
//! uploads): with the console off it is answered 404 before any byte of the body is read,
//! and its body has its own small limit ([`SIGN_IN_MAX_BODY_BYTES`], 413 beyond), refused
//! from the declared `Content-Length` alone when that says more. Attempts are throttled
//! per client ([`client_address`]) by the use case.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, Query, Request, State};
use axum::http::header::{CONNECTION, CONTENT_LENGTH, RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use http_body_util::BodyExt;
use maud::html;
use renzheng_app::AppError;
use serde::Deserialize;

use super::errors::{failure, not_found};
use super::i18n::Lang;
use super::layout::{html_page, Flash, Page};
use super::session::{append_clear_cookies, append_clear_legacy_cookie, safe_next, session_cookie};
use super::verified::{NoFields, Verified};
use crate::state::AppState;

/// The sign-in form's largest body, bytes: an operator name of at most 64 characters and
/// a password, URL-encoded (a character can take 12 bytes), with room to spare.
pub const SIGN_IN_MAX_BODY_BYTES: usize = 8 * 1024;

/// How long a client has to send the sign-in form's body: a few kilobytes, so a client
/// still sending after this is holding the connection, not typing.
const SIGN_IN_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// `?expired=1` on the sign-in page (a redirect from a lapsed session) and `?next=PATH`,
/// the console page asked for without a session.
#[derive(Deserialize)]
pub struct SignInQuery {
    expired: Option<u8>,
    next: Option<String>,
}

/// `GET /console/sign-in`.
pub async fn page(
    State(state): State<AppState>,
    lang: Lang,
    Query(q): Query<SignInQuery>,
) -> Response {
    match state.app.console_enabled().await {
        Ok(true) => {}
        Ok(false) => return not_found(lang),
        Err(e) => return failure(lang, None, &e),
    }
    let t = lang.t();
    let flash = if q.expired.is_some() {
        vec![Flash::error_because(t.session_expired, "expired")]
    } else {
        Vec::new()
    };
    form(StatusCode::OK, lang, flash, safe_next(q.next.as_deref()))
}

fn form(status: StatusCode, lang: Lang, flash: Vec<Flash>, next: Option<&str>) -> Response {
    let t = lang.t();
    html_page(
        status,
        Page {
            lang,
            operator: None,
            active: "sign-in",
            title: t.sign_in,
            flash,
        },
        html! {
            form #sign-in .card .narrow method="post" action="/console/sign-in" {
                @if let Some(next) = next { input type="hidden" name="next" value=(next); }
                label { (t.operator) input name="operator" autocomplete="username" required; }
                label { (t.password) input name="password" type="password" autocomplete="current-password" required; }
                label { (t.two_step_code) input name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" maxlength="7"; }
                button type="submit" { (t.sign_in) }
            }
        },
    )
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct SignInForm {
    operator: String,
    password: String,
    /// The authenticator's code, for an operator with two-step sign-in (blank otherwise).
    #[serde(default)]
    code: String,
    /// The page asked for before signing in.
    next: Option<String>,
}

/// `POST /console/sign-in`: a session cookie and the overview, or the form again (401).
pub async fn sign_in(State(state): State<AppState>, lang: Lang, request: Request) -> Response {
    match state.app.console_enabled().await {
        Ok(true) => {}
        // Before the body: a server without a console reads nothing for a stranger.
        Ok(false) => return closing(not_found(lang)),
        Err(e) => return closing(failure(lang, None, &e)),
    }
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > SIGN_IN_MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let settings = state.app.settings();
    let trusted = &settings.console.trusted_proxies;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    let client = client_address(peer, request.headers(), |ip| {
        trusted.iter().any(|net| net.contains(&ip))
    });
    let (parts, body) = request.into_parts();
    let read = http_body_util::Limited::new(body, SIGN_IN_MAX_BODY_BYTES).collect();
    let bytes = match tokio::time::timeout(SIGN_IN_BODY_TIMEOUT, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Ok(Err(_)) => return closing(StatusCode::BAD_REQUEST.into_response()),
        Err(_) => return closing(StatusCode::REQUEST_TIMEOUT.into_response()),
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    let Form(sent) = match Form::<SignInForm>::from_request(request, &state).await {
        Ok(form) => form,
        Err(rejection) => return rejection.into_response(),
    };
    let t = lang.t();
    match state
        .app
        .sign_in(
            client,
            &sent.operator,
            &sent.password,
            Some(sent.code.as_str()).filter(|c| !c.trim().is_empty()),
        )
        .await
    {
        Ok(signed_in) => {
            let secure = settings.console.secure_cookie;
            let to = safe_next(sent.next.as_deref()).unwrap_or("/console/overview");
            let mut response = Redirect::to(to).into_response();
            let headers = response.headers_mut();
            headers.append(
                SET_COOKIE,
                session_cookie(secure, &signed_in.token, signed_in.max_age_secs),
            );
            append_clear_legacy_cookie(headers);
            response
        }
        Err(AppError::SignInRefused) => form(
            StatusCode::UNAUTHORIZED,
            lang,
            vec![Flash::error_because(t.wrong_credentials, "credentials")],
            safe_next(sent.next.as_deref()),
        ),
        Err(AppError::Throttled { retry_after_ms }) => {
            let mut response = form(
                StatusCode::TOO_MANY_REQUESTS,
                lang,
                vec![Flash::error_because(t.too_many_attempts, "throttled")],
                safe_next(sent.next.as_deref()),
            );
            let secs = (retry_after_ms.max(0) as u64).div_ceil(1000).max(1);
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
            response
        }
        Err(e) => failure(lang, None, &e),
    }
}

/// `POST /console/sign-out`.
pub async fn sign_out(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<NoFields>>,
) -> Response {
    let (operator, NoFields {}) = form.into_parts();
    if let Err(e) = state
        .app
        .sign_out(&operator.session, operator.token())
        .await
    {
        return failure(lang, Some(&operator.session), &e);
    }
    let mut response = Redirect::to("/console/sign-in").into_response();
    append_clear_cookies(
        response.headers_mut(),
        state.app.settings().console.secure_cookie,
    );
    response
}

/// 413 for a sign-in body over [`SIGN_IN_MAX_BODY_BYTES`], the connection closed (the
/// rest of the body is never read).
fn too_large() -> Response {
    closing(
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the sign-in form is larger than {SIGN_IN_MAX_BODY_BYTES} bytes"),
        )
            .into_response(),
    )
}

/// `response` with `Connection: close`: sent before the request's body was read, so the
/// connection cannot carry another request.
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The client of a request, as far as this server can tell: the connection's address
/// `peer`, unless it is a trusted proxy (`is_trusted`); then `X-Forwarded-For` read from
/// the right, each entry added by the proxy to its right, and the client the first entry
/// that is not a trusted proxy (entries further left are the client's own say, never
/// read). When every entry is trusted, the left-most; an entry that is no address ends the
/// walk at the hop that wrote it. `None` when nothing is known (no peer address).
///
/// Why the right-most untrusted entry and not the left-most: the left-most is whatever
/// the client wrote, so a guesser could give each attempt another address and never be
/// throttled.
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    is_trusted: impl Fn(IpAddr) -> bool,
) -> Option<IpAddr> {
    let mut client = peer?.to_canonical();
    if !is_trusted(client) {
        return Some(client);
    }
    // Several header lines are one list, in order (RFC 9110 §5.3). Bytes, not `to_str`:
    // a client's non-ASCII entry on the line a proxy appended to must not hide the
    // proxy's entry.
    let entries: Vec<&[u8]> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|line| line.as_bytes().split(|b| *b == b','))
        .collect();
    for entry in entries.into_iter().rev() {
        let Some(hop) = parse_hop(entry) else {
            break;
        };
        client = hop;
        if !is_trusted(hop) {
            break;
        }
    }
    Some(client)
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:80`), IPv4-mapped IPv6 as IPv4.
fn parse_hop(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// `10.0.0.0/8` are the trusted proxies.
    fn trusted(ip: IpAddr) -> bool {
        matches!(ip, IpAddr::V4(v4) if v4.octets()[0] == 10)
    }

    fn forwarded(lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append("x-forwarded-for", HeaderValue::from_str(line).unwrap());
        }
        headers
    }

    #[test]
    fn without_a_trusted_proxy_the_header_is_ignored() {
        let headers = forwarded(&["198.51.100.7"]);
        let client = client_address(Some(ip("203.0.113.1")), &headers, trusted);
        assert_eq!(client, Some(ip("203.0.113.1")));
        assert_eq!(client_address(None, &headers, trusted), None);
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_entry_is_the_client() {
        // The client wrote the first two; the proxies added the rest.
        let headers = forwarded(&["1.1.1.1, 2.2.2.2", "203.0.113.9, 10.0.0.2"]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &headers, trusted),
            Some(ip("203.0.113.9"))
        );
        // Ports, brackets and IPv4-mapped addresses are read as addresses.
        let headers = forwarded(&["[2001:db8::1]:443, 10.0.0.3:80"]);
        assert_eq!(
            client_address(Some(ip("::ffff:10.0.0.1")), &headers, trusted),
            Some(ip("2001:db8::1"))
        );
        // No header, or only proxies: the left-most hop.
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &HeaderMap::new(), trusted),
            Some(ip("10.0.0.1"))
        );
        let headers = forwarded(&["10.0.0.4, 10.0.0.3"]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &headers, trusted),
            Some(ip("10.0.0.4"))
        );
    }

    #[test]
    fn an_entry_that_is_no_address_ends_the_walk_at_its_writer() {
        let headers = forwarded(&["203.0.113.9, unknown, 10.0.0.2"]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &headers, trusted),
            Some(ip("10.0.0.2"))
        );
        // Bytes that are not UTF-8 in a client's entry do not hide the proxy's.
        let mut headers = HeaderMap::new();
        headers.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xff\xfe, 203.0.113.9").unwrap(),
        );
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &headers, trusted),
            Some(ip("203.0.113.9"))
        );
    }
}
