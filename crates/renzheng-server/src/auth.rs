//! Caller authentication, the two ways the API gateway offers.
//!
//! * `Authorization: APPCODE <code>`, looked up by hash; a missing, unknown or disabled
//!   code is `403 Unauthorized`, the same answer in every case so that probing learns
//!   nothing;
//! * an AppKey/AppSecret signature ([`crate::signature`]): `X-Ca-Key`, `X-Ca-Signature`,
//!   `X-Ca-Timestamp` (±15 minutes; required unless `signature.require_timestamp` is
//!   off), `X-Ca-Nonce` (optional unless `signature.require_nonce`), over the method,
//!   headers, path, parameters and `Content-MD5`; whichever of timestamp and nonce is
//!   sent must be signed. A verified request is answered once: its nonce, or without
//!   one its signature, is spent across nodes (the store keeps it). An unknown AppKey
//!   is the gateway's 400 `Invalid AppKey`; a disabled app is 403 `Unauthorized`, as by
//!   AppCode. Refusals carry the gateway's messages.
//!
//! The check handler authenticates through its [`CheckTicket`](renzheng_app::CheckTicket):
//! [`Presented::of`] reads the head, the ticket names the caller, and a signed request is
//! verified ([`verify_signed`]) once its body is read. Handlers without a body ask for an
//! [`Authenticated`] extractor, which runs the same steps with an empty body.
//!
//! The extractors are generic over any state that yields their parts (`FromRef`), so this
//! module does not depend on the router's state.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
/// Compares secrets in time independent of where they differ (one rule, in `renzheng-app`).
pub use renzheng_app::keys::constant_time_eq;
use renzheng_app::settings::{Secret, SignatureSettings};
use renzheng_app::{App, AppError, Authentication, Caller, Credential};

use crate::error::ApiError;
use crate::signature::{self, SignatureError, SignedHeaders, TIMESTAMP_WINDOW_MS};

/// How long a spent nonce is remembered: the whole span of timestamps accepted.
pub const NONCE_VALID_MS: i64 = 2 * TIMESTAMP_WINDOW_MS;

/// The credential a request's head presents.
pub enum Presented {
    /// `Authorization: APPCODE <code>`.
    AppCode(String),
    /// The gateway's signature headers, replay-protected and fresh.
    Signed(SignedHeaders),
}

impl Presented {
    /// Reads the head: an AppCode, else the signature headers, which must carry what
    /// `rules` require, sign the timestamp and nonce they carry, and be within the
    /// timestamp window. Nothing here needs the body, so a stranger is refused before it
    /// is read.
    pub fn of(parts: &Parts, now_ms: i64, rules: &SignatureSettings) -> Result<Self, ApiError> {
        if let Some(code) = appcode_of(parts) {
            return Ok(Presented::AppCode(code.to_owned()));
        }
        let signed = signature::parse(&parts.headers)?.ok_or(AppError::Unauthorized)?;
        signed.require(rules.require_nonce, rules.require_timestamp)?;
        signature::check_freshness(&signed, now_ms)?;
        Ok(Presented::Signed(signed))
    }

    /// The credential to look the caller up by.
    pub fn credential(&self) -> Credential<'_> {
        match self {
            Presented::AppCode(code) => Credential::AppCode(code),
            Presented::Signed(signed) => Credential::AppKey(&signed.app_key),
        }
    }
}

/// Verifies a signed request under the app's `secret`: that the signature covers what
/// the server will read ([`signature::check_body_is_signed`]), then the signature.
/// Returns what it must spend to be answered once
/// ([`SignedHeaders::replay_token`]).
pub fn verify_signed(
    signed: &SignedHeaders,
    parts: &Parts,
    body: &[u8],
    secret: &str,
) -> Result<String, SignatureError> {
    signature::check_body_is_signed(&parts.uri, &parts.headers, body)?;
    signature::verify(
        secret.as_bytes(),
        &parts.method,
        &parts.uri,
        &parts.headers,
        body,
        signed,
    )?;
    Ok(signed.replay_token())
}

/// The code in an `APPCODE <code>` header value (scheme case-insensitive).
pub fn parse_appcode(value: &str) -> Option<&str> {
    let (scheme, code) = value.trim().split_once(char::is_whitespace)?;
    let code = code.trim();
    (scheme.eq_ignore_ascii_case("APPCODE") && !code.is_empty()).then_some(code)
}

/// The AppCode of a request, if it carries one (then its body is not needed to know the
/// caller).
pub fn appcode_of(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_appcode)
}

/// Extractor: the authenticated caller of a bodiless request, or a refusal (403, or the
/// gateway's signature refusals).
#[derive(Debug, Clone)]
pub struct Authenticated(pub Caller);

impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    Arc<App>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = <Arc<App>>::from_ref(state);
        let presented = Presented::of(parts, app.now_ms(), &app.settings().signature)?;
        let (caller, authentication) = app.identify(presented.credential()).await?;
        if let (Authentication::NeedsSignature { secret }, Presented::Signed(signed)) =
            (authentication, &presented)
        {
            let token = verify_signed(signed, parts, b"", &secret)?;
            app.use_nonce(&caller, &token, NONCE_VALID_MS).await?;
        }
        tracing::Span::current().record("app_id", caller.app_id.as_str());
        Ok(Authenticated(caller))
    }
}

/// The admin API's bearer token; `None` turns the admin API off.
#[derive(Debug, Clone)]
pub struct AdminToken(pub Option<Secret>);

/// Extractor for the admin API: `Authorization: Bearer <admin token>`.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl<S> FromRequestParts<S> for Admin
where
    S: Send + Sync,
    AdminToken: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let AdminToken(token) = AdminToken::from_ref(state);
        let Some(expected) = token.as_ref() else {
            return Err(ApiError::AdminDisabled);
        };
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(char::is_whitespace)?;
                scheme
                    .eq_ignore_ascii_case("Bearer")
                    .then_some(token.trim())
            })
            .ok_or(ApiError::AdminUnauthorized)?;
        if constant_time_eq(presented.as_bytes(), expected.expose().as_bytes()) {
            Ok(Admin)
        } else {
            Err(ApiError::AdminUnauthorized)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appcode_header_parsing() {
        assert_eq!(parse_appcode("APPCODE abc"), Some("abc"));
        assert_eq!(parse_appcode("appcode   abc "), Some("abc"));
        assert_eq!(parse_appcode("Bearer abc"), None);
        assert_eq!(parse_appcode("APPCODE"), None);
        assert_eq!(parse_appcode("APPCODE  "), None);
    }

    #[test]
    fn constant_time_comparison_is_the_apps() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
