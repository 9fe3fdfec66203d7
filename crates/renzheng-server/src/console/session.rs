//! The operator's session: its cookie, and the signed-in operator as an extractor.
//!
//! The session cookie holds a random token (the store keeps its hash); it is `HttpOnly`,
//! `SameSite=Strict`, `Path=/console` and, unless `console.secure_cookie` is off,
//! `Secure` with the `__Host-` prefix. Signing in and out is in `sign_in.rs`;
//! the CSRF rule of the forms a session posts is in `verified.rs`.

use axum::extract::FromRequestParts;
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Redirect, Response};
use renzheng_app::OperatorSession;

use super::cookie::cookie;
use super::errors::{failure, not_found};
use super::i18n::Lang;
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

/// The signed-in operator (with the session's token, for sign-out). A request without a
/// live session is sent to the sign-in page.
pub struct Operator {
    /// The session.
    pub session: OperatorSession,
    token: String,
}

impl Operator {
    /// The session cookie's token (what sign-out ends).
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = Lang::from_request_parts(parts, state)
            .await
            .unwrap_or(Lang::Zh);
        if !state.app.console_enabled() {
            return Err(not_found(lang));
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
            Err(e) => Err(failure(lang, None, &e)),
        }
    }
}

/// The `Set-Cookie` of the session cookie holding `token` for `max_age_secs` (an empty
/// token with 0 clears it).
pub fn session_cookie(secure: bool, token: &str, max_age_secs: u64) -> HeaderValue {
    let name = session_cookie_name(secure);
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={token}; Path=/console; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("the token is base64url")
}

/// The `Set-Cookie` that clears the session cookie.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    session_cookie(secure, "", 0)
}
