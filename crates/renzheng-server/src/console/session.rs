//! Signing in and out, the signed-in operator as an extractor, and the CSRF rule.
//!
//! The session cookie holds a random token (the store keeps its hash); it is `HttpOnly`,
//! `SameSite=Strict`, `Path=/console` and, unless `console.secure_cookie` is off,
//! `Secure` with the `__Host-` prefix. Every POST carries the session's CSRF token in a
//! hidden field, compared in constant time; on top, [`same_origin`] refuses a POST whose
//! `Origin` or `Sec-Fetch-Site` says it came from another site (which also covers the
//! sign-in form, before there is a session).

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use renzheng_app::keys::constant_time_eq;
use renzheng_app::{AppError, OperatorSession};
use serde::Deserialize;

use super::i18n::Lang;
use super::layout::{html_page, Flash, Page};
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

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The signed-in operator (with the session's token, for sign-out). A request without a
/// live session is sent to the sign-in page.
pub struct Operator {
    /// The session.
    pub session: OperatorSession,
    token: String,
}

impl Operator {
    /// The refusal (403) of a form whose CSRF token is not this session's; `None` when
    /// it is.
    pub fn refuse_bad_csrf(&self, lang: Lang, sent: Option<&str>) -> Option<Response> {
        match sent {
            Some(token) if constant_time_eq(token.as_bytes(), self.session.csrf.as_bytes()) => None,
            _ => {
                tracing::warn!(operator = %self.session.operator, "console form with a wrong CSRF token refused");
                Some(forbidden(lang))
            }
        }
    }
}

/// The 403 page of a refused form.
pub fn forbidden(lang: Lang) -> Response {
    let t = lang.t();
    html_page(
        StatusCode::FORBIDDEN,
        Page {
            lang,
            operator: None,
            active: "",
            title: t.failed,
            flash: vec![Flash::error_because(t.csrf_refused, "csrf")],
        },
        html! {},
    )
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = Lang::from_request_parts(parts, state)
            .await
            .unwrap_or(Lang::Zh);
        if !state.app.console_enabled() {
            return Err(super::not_found(lang));
        }
        let secure = state.app.settings().console.secure_cookie;
        let Some(token) = cookie(&parts.headers, session_cookie_name(secure)) else {
            return Err(Redirect::to("/console/sign-in").into_response());
        };
        match state.app.console_session(&token).await {
            Ok(Some(session)) => Ok(Operator { session, token }),
            Ok(None) => {
                let mut response = Redirect::to("/console/sign-in?expired=1").into_response();
                response
                    .headers_mut()
                    .append(SET_COOKIE, clear_cookie(secure));
                Err(response)
            }
            Err(e) => Err(super::failure(lang, None, &e)),
        }
    }
}

/// The `Set-Cookie` of the session cookie holding `token` for `max_age_secs` (an empty
/// token with 0 clears it).
fn session_cookie(secure: bool, token: &str, max_age_secs: u64) -> HeaderValue {
    let name = session_cookie_name(secure);
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={token}; Path=/console; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("the token is base64url")
}

fn clear_cookie(secure: bool) -> HeaderValue {
    session_cookie(secure, "", 0)
}

/// `?expired=1` on the sign-in page (a redirect from a lapsed session).
#[derive(Deserialize)]
pub struct SignInQuery {
    expired: Option<u8>,
}

/// `GET /console/sign-in`.
pub async fn sign_in_page(
    State(state): State<AppState>,
    lang: Lang,
    axum::extract::Query(q): axum::extract::Query<SignInQuery>,
) -> Response {
    if !state.app.console_enabled() {
        return super::not_found(lang);
    }
    let t = lang.t();
    let flash = if q.expired.is_some() {
        vec![Flash::error_because(t.session_expired, "expired")]
    } else {
        Vec::new()
    };
    sign_in_form(StatusCode::OK, lang, flash)
}

fn sign_in_form(status: StatusCode, lang: Lang, flash: Vec<Flash>) -> Response {
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
                label { (t.operator) input name="operator" autocomplete="username" required; }
                label { (t.password) input name="password" type="password" autocomplete="current-password" required; }
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
}

/// `POST /console/sign-in`: a session cookie and the overview, or the form again (401).
pub async fn sign_in(
    State(state): State<AppState>,
    lang: Lang,
    Form(form): Form<SignInForm>,
) -> Response {
    if !state.app.console_enabled() {
        return super::not_found(lang);
    }
    let t = lang.t();
    match state.app.sign_in(&form.operator, &form.password).await {
        Ok(signed_in) => {
            let secure = state.app.settings().console.secure_cookie;
            let mut response = Redirect::to("/console/overview").into_response();
            response.headers_mut().append(
                SET_COOKIE,
                session_cookie(secure, &signed_in.token, signed_in.max_age_secs),
            );
            response
        }
        Err(AppError::SignInRefused) => sign_in_form(
            StatusCode::UNAUTHORIZED,
            lang,
            vec![Flash::error_because(t.wrong_credentials, "credentials")],
        ),
        Err(AppError::Throttled { retry_after_ms }) => {
            let mut response = sign_in_form(
                StatusCode::TOO_MANY_REQUESTS,
                lang,
                vec![Flash::error_because(t.too_many_attempts, "throttled")],
            );
            let secs = (retry_after_ms.max(0) as u64).div_ceil(1000).max(1);
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
            response
        }
        Err(e) => super::failure(lang, None, &e),
    }
}

/// The sign-out form's field.
#[derive(Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

/// `POST /console/sign-out`.
pub async fn sign_out(
    State(state): State<AppState>,
    operator: Operator,
    lang: Lang,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = operator.refuse_bad_csrf(lang, form.csrf.as_deref()) {
        return refused;
    }
    if let Err(e) = state.app.sign_out(&operator.session, &operator.token).await {
        return super::failure(lang, Some(&operator.session), &e);
    }
    let mut response = Redirect::to("/console/sign-in").into_response();
    response.headers_mut().append(
        SET_COOKIE,
        clear_cookie(state.app.settings().console.secure_cookie),
    );
    response
}

/// Refuses a state-changing request that a browser says came from another site: an
/// `Origin` whose host is not this request's `Host`, or `Sec-Fetch-Site: cross-site` /
/// `same-site`. Requests without either header (non-browser clients) pass to the CSRF
/// token check.
pub async fn same_origin(lang: Lang, request: Request, next: Next) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let headers = request.headers();
        let host = headers.get(HOST).and_then(|v| v.to_str().ok());
        let origin_ok = match headers.get(ORIGIN).and_then(|v| v.to_str().ok()) {
            None => true,
            Some(origin) => {
                let origin_host = origin.split_once("://").map(|(_, rest)| rest);
                origin_host.is_some() && origin_host == host
            }
        };
        let fetch_ok = !matches!(
            headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
            Some("cross-site" | "same-site")
        );
        if !(origin_ok && fetch_ok) {
            tracing::warn!(
                origin = headers
                    .get(ORIGIN)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-"),
                host = host.unwrap_or("-"),
                sec_fetch_site = headers
                    .get("sec-fetch-site")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-"),
                "console request from another origin refused"
            );
            return forbidden(lang);
        }
    }
    next.run(request).await
}
