//! Caller authentication, the two ways the API gateway offers.
//!
//! * `Authorization: APPCODE <code>`, looked up by hash; a missing, unknown or disabled
//!   code is `403 Unauthorized`, the same answer in every case so that probing learns
//!   nothing;
//! * an AppKey/AppSecret signature ([`crate::signature`]): `X-Ca-Key`, `X-Ca-Signature`,
//!   `X-Ca-Timestamp` (±15 minutes), `X-Ca-Nonce` (once, across nodes: the store keeps
//!   it), over the method, headers, path, parameters and `Content-MD5`; refusals carry
//!   the gateway's messages.
//!
//! Handlers without a body ask for an [`Authenticated`] extractor; the check handler,
//! whose signature covers its body, calls the router's [`Authenticator`] itself.
//!
//! The extractors are generic over any state that yields their parts (`FromRef`), so this
//! module does not depend on the router's state.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
/// Compares secrets in time independent of where they differ (one rule, in `renzheng-app`).
pub use renzheng_app::keys::constant_time_eq;
use renzheng_app::settings::Secret;
use renzheng_app::{App, AppError, Caller};

use crate::error::ApiError;
use crate::signature::{self, SignatureError, TIMESTAMP_WINDOW_MS};

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No usable credentials.
    #[error("no credentials")]
    Missing,
    /// Credentials that match no enabled app.
    #[error("credentials rejected")]
    Rejected,
    /// A signed request that does not verify (or replays a nonce).
    #[error("signature refused")]
    Signature(SignatureError),
    /// The credential store failed.
    #[error("credential store unavailable")]
    Store(#[from] AppError),
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing | AuthError::Rejected => ApiError::Unauthorized,
            AuthError::Signature(e) => ApiError::Signature(e),
            AuthError::Store(e) => ApiError::from(e),
        }
    }
}

/// Decides who a request comes from.
#[async_trait]
pub trait Authenticator: Send + Sync + std::fmt::Debug {
    /// The caller, from the request's head and its body (empty for bodiless requests; a
    /// signature covers it).
    async fn authenticate(&self, parts: &Parts, body: &[u8]) -> Result<Caller, AuthError>;
}

/// The gateway's two schemes against the application's apps.
#[derive(Clone)]
pub struct GatewayAuthenticator {
    app: Arc<App>,
}

impl std::fmt::Debug for GatewayAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewayAuthenticator")
    }
}

impl GatewayAuthenticator {
    /// Authenticates against `app`'s apps.
    pub fn new(app: Arc<App>) -> Self {
        GatewayAuthenticator { app }
    }

    async fn signed(&self, parts: &Parts, body: &[u8]) -> Result<Caller, AuthError> {
        let signed = signature::parse(&parts.headers)
            .map_err(AuthError::Signature)?
            .ok_or(AuthError::Missing)?;
        // Without both, a captured request could be replayed for ever.
        signed
            .require_replay_protection()
            .map_err(AuthError::Signature)?;
        signature::check_freshness_and_md5(&signed, &parts.headers, body, self.app.now_ms())
            .map_err(AuthError::Signature)?;
        let (caller, secret) = self
            .app
            .signing_secret(&signed.app_key)
            .await?
            .ok_or(AuthError::Signature(SignatureError::InvalidAppKey))?;
        signature::verify(
            secret.as_bytes(),
            &parts.method,
            &parts.uri,
            &parts.headers,
            body,
            &signed,
        )
        .map_err(AuthError::Signature)?;
        // Only a verified request spends its nonce, so a forger cannot burn a client's.
        let nonce = signed.nonce.as_deref().unwrap_or_default();
        match self
            .app
            .use_nonce(&caller, nonce, 2 * TIMESTAMP_WINDOW_MS)
            .await
        {
            Ok(()) => Ok(caller),
            Err(AppError::NonceUsed) => Err(AuthError::Signature(SignatureError::NonceUsed)),
            Err(e) => Err(AuthError::Store(e)),
        }
    }
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

#[async_trait]
impl Authenticator for GatewayAuthenticator {
    async fn authenticate(&self, parts: &Parts, body: &[u8]) -> Result<Caller, AuthError> {
        match appcode_of(parts) {
            Some(code) => self
                .app
                .authenticate_app_code(code)
                .await?
                .ok_or(AuthError::Rejected),
            None => self.signed(parts, body).await,
        }
    }
}

/// Extractor: the authenticated caller, or a 403.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Caller);

impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    Arc<dyn Authenticator>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let authenticator = <Arc<dyn Authenticator>>::from_ref(state);
        let caller = authenticator.authenticate(parts, b"").await?;
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
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
