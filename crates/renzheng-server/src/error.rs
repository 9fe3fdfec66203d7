//! The one error type of the HTTP layer and the response envelope.
//!
//! Every failure a handler can meet is an [`ApiError`] variant, and every variant is mapped
//! explicitly to a status, a stable machine code (`X-Ca-Error-Code`) and a message
//! (`X-Ca-Error-Message` and the envelope's `msg`). Messages never contain the caller's
//! name, ID number or photo: the domain errors they wrap are written not to.

use std::borrow::Cow;

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use renzheng_app::check::PhotoError;
use renzheng_app::fetch::FetchError;
use renzheng_app::AppError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::request_id::RequestId;
use crate::signature::header_text;

/// `X-Ca-Request-Id`: the request's id, on every response.
pub const X_CA_REQUEST_ID: HeaderName = HeaderName::from_static("x-ca-request-id");
/// `X-Ca-Error-Code`: machine-readable error code, on every error response.
pub const X_CA_ERROR_CODE: HeaderName = HeaderName::from_static("x-ca-error-code");
/// `X-Ca-Error-Message`: short English reason, on every error response; ASCII, with any
/// other character percent-encoded as UTF-8 ([`header_text`]). The body's `msg` keeps
/// the text as it is.
pub const X_CA_ERROR_MESSAGE: HeaderName = HeaderName::from_static("x-ca-error-message");

/// The JSON envelope of every API response, success or failure.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// The HTTP status, repeated.
    pub code: u16,
    /// Whether the request succeeded.
    pub success: bool,
    /// "成功" or the error message.
    #[schema(value_type = String)]
    pub msg: Cow<'static, str>,
    /// The request id (also in `X-Ca-Request-Id`).
    #[serde(rename = "taskNo")]
    pub task_no: String,
    /// The payload; `null` on errors.
    pub data: Option<T>,
}

/// The `data` of an error envelope: always `null`.
#[derive(Debug, Serialize)]
pub struct NoData;

// By hand: the derived schema of a unit struct is "any value, by default null", which
// generators type as an untyped value; the schema of what is sent is `null`.
impl utoipa::PartialSchema for NoData {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Null)
            .description(Some("The `data` of an error envelope: always `null`."))
            .into()
    }
}

impl ToSchema for NoData {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("NoData")
    }
}

/// The envelope of every error response (`success: false`, `data: null`); the same
/// code and message are in `X-Ca-Error-Code` and `X-Ca-Error-Message`.
pub type ErrorEnvelope = Envelope<NoData>;

/// A success envelope with `status` around `data`, stamped with the current request id.
pub fn success<T: Serialize>(status: StatusCode, data: T) -> Response {
    let body = Envelope {
        code: status.as_u16(),
        success: true,
        msg: Cow::Borrowed("成功"),
        task_no: current_task_no(),
        data: Some(data),
    };
    (status, Json(body)).into_response()
}

fn current_task_no() -> String {
    RequestId::current()
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default()
}

/// Everything that can go wrong while serving a request: a use case's [`AppError`],
/// wrapped as it is, or one of the HTTP layer's own refusals.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A use case refused or failed; mapped by [`app_status_and_code`].
    #[error("{}", app_message(.0))]
    App(#[from] AppError),
    /// A signed request that does not verify; the gateway's message.
    #[error("{}", .0.gateway_message())]
    Signature(crate::signature::SignatureError),
    /// A field has the wrong JSON type.
    #[error("field {0} must be a string")]
    FieldType(&'static str),
    /// The body is not valid JSON / form data.
    #[error("malformed request body: {0}")]
    MalformedBody(String),
    /// Some other field of an admin request is wrong.
    #[error("invalid request: {0}")]
    BadRequest(String),
    /// The body is over the limit.
    #[error("request body is over the {limit}-byte limit")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is neither JSON nor form data.
    #[error(
        "unsupported Content-Type; send application/json or application/x-www-form-urlencoded"
    )]
    UnsupportedMediaType,
    /// The request took longer than the configured limit.
    #[error("the request timed out")]
    Timeout,
    /// No such route.
    #[error("no such endpoint")]
    NotFound,
    /// The route exists, not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// No admin token is configured.
    #[error("the admin API is disabled (no admin token configured)")]
    AdminDisabled,
    /// Missing or wrong admin token.
    #[error("admin token missing or wrong")]
    AdminUnauthorized,
    /// A dependency (database, engine) is not available.
    #[error("not ready: {0}")]
    NotReady(String),
    /// A bug or an infrastructure failure; details are logged, not returned.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The domain's parse errors reach the HTTP layer as the use cases' errors do.
macro_rules! through_app_error {
    ($($error:ty),*) => {$(
        impl From<$error> for ApiError {
            fn from(e: $error) -> Self {
                ApiError::App(AppError::from(e))
            }
        }
    )*};
}
through_app_error!(
    renzheng_domain::IdNumberError,
    renzheng_domain::PersonNameError,
    PhotoError,
    FetchError
);

impl From<crate::signature::SignatureError> for ApiError {
    fn from(e: crate::signature::SignatureError) -> Self {
        ApiError::Signature(e)
    }
}

impl ApiError {
    /// Wraps any error as an internal one.
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::Internal(e.into())
    }

    /// Whether this refuses the caller's credentials (counted in the metrics, never
    /// audited). A credential store that fails is not the caller's refusal.
    pub fn is_refused_credential(&self) -> bool {
        matches!(
            self,
            ApiError::App(AppError::Unauthorized | AppError::UnknownAppKey | AppError::NonceUsed)
                | ApiError::Signature(_)
        )
    }

    /// The HTTP status and the machine code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use ApiError::*;
        match self {
            App(e) => app_status_and_code(e),
            Signature(e) => (e.status(), signature_code(e)),
            FieldType(_) | BadRequest(_) => (StatusCode::BAD_REQUEST, "InvalidParameter"),
            MalformedBody(_) => (StatusCode::BAD_REQUEST, "MalformedBody"),
            PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge"),
            UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType"),
            Timeout => (StatusCode::GATEWAY_TIMEOUT, "Timeout"),
            NotFound => (StatusCode::NOT_FOUND, "NotFound"),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            AdminDisabled => (StatusCode::NOT_FOUND, "AdminDisabled"),
            AdminUnauthorized => (StatusCode::UNAUTHORIZED, "AdminUnauthorized"),
            NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "NotReady"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        }
    }
}

/// Every use-case failure, mapped explicitly: what the caller got wrong is a 4xx with its
/// reason, the rest is ours.
fn app_status_and_code(e: &AppError) -> (StatusCode, &'static str) {
    use crate::signature::SignatureError;
    match e {
        AppError::Unauthorized => (StatusCode::FORBIDDEN, "Unauthorized"),
        AppError::UnknownAppKey => {
            let e = SignatureError::InvalidAppKey;
            (e.status(), signature_code(&e))
        }
        AppError::NonceUsed => {
            let e = SignatureError::NonceUsed;
            (e.status(), signature_code(&e))
        }
        AppError::Throttled { .. } => (StatusCode::FORBIDDEN, "Throttled"),
        AppError::QuotaExhausted => (StatusCode::FORBIDDEN, "QuotaExhausted"),
        AppError::QuotaExpired => (StatusCode::FORBIDDEN, "QuotaExpired"),
        AppError::TooManyAttempts { .. } => (StatusCode::TOO_MANY_REQUESTS, "TooManyAttempts"),
        AppError::MissingField(_) | AppError::MissingPhoto => {
            (StatusCode::BAD_REQUEST, "MissingParameter")
        }
        AppError::InvalidName(_) => (StatusCode::BAD_REQUEST, "InvalidName"),
        AppError::InvalidIdNumber(_) => (StatusCode::BAD_REQUEST, "InvalidIdCard"),
        AppError::InvalidImage(PhotoError::TooLarge { .. }) => {
            (StatusCode::BAD_REQUEST, "ImageTooLarge")
        }
        AppError::InvalidImage(_) => (StatusCode::BAD_REQUEST, "InvalidImage"),
        AppError::ImgUrl(e) => (StatusCode::BAD_REQUEST, img_url_code(e)),
        AppError::InvalidAppName(_)
        | AppError::Import(_)
        | AppError::Invalid(_)
        | AppError::Rule(_) => (StatusCode::BAD_REQUEST, "InvalidParameter"),
        AppError::PortraitRefused { .. } => (StatusCode::BAD_REQUEST, "PortraitRefused"),
        // The registry's own rules: the request is well formed, but conflicts with what
        // is on record; the codes are what the console translates.
        AppError::NameMismatch => (StatusCode::CONFLICT, "NameMismatch"),
        AppError::PortraitMismatch { .. } => (StatusCode::CONFLICT, "PortraitMismatch"),
        AppError::DuplicateFace { .. } => (StatusCode::CONFLICT, "DuplicateFace"),
        AppError::ReasonRequired => (StatusCode::BAD_REQUEST, "ReasonRequired"),
        AppError::BasisRequired => (StatusCode::BAD_REQUEST, "BasisRequired"),
        AppError::Basis(renzheng_domain::BasisError::GuardianConsentRequired) => {
            (StatusCode::BAD_REQUEST, "GuardianConsentRequired")
        }
        AppError::Basis(_) => (StatusCode::BAD_REQUEST, "InvalidBasis"),
        AppError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
        AppError::CodeNotViewable => (StatusCode::CONFLICT, "CodeNotViewable"),
        AppError::SignInRefused => (StatusCode::UNAUTHORIZED, "AdminUnauthorized"),
        AppError::LastOwner => (StatusCode::CONFLICT, "LastOwner"),
        AppError::OperatorExists => (StatusCode::CONFLICT, "OperatorExists"),
        AppError::GrantRevoked => (StatusCode::CONFLICT, "GrantRevoked"),
        AppError::TotpAlreadyOn => (StatusCode::CONFLICT, "TotpAlreadyOn"),
        AppError::WrongTotpCode => (StatusCode::FORBIDDEN, "WrongTotpCode"),
        AppError::GrantBelowCommitted { .. } => (StatusCode::CONFLICT, "GrantBelowCommitted"),
        AppError::InvalidOperatorName | AppError::InvalidEmail(_) | AppError::NoSmtpRelay => {
            (StatusCode::BAD_REQUEST, "InvalidParameter")
        }
        AppError::WeakPassword { .. } => (StatusCode::BAD_REQUEST, "WeakPassword"),
        AppError::WrongPassword => (StatusCode::FORBIDDEN, "WrongPassword"),
        AppError::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "ServiceBusy"),
        AppError::TimedOut => (StatusCode::GATEWAY_TIMEOUT, "Timeout"),
        AppError::Store(renzheng_store::StoreError::Database(_)) => {
            (StatusCode::SERVICE_UNAVAILABLE, "DatabaseUnavailable")
        }
        AppError::Engine(_) | AppError::Store(_) | AppError::Keys(_) | AppError::Internal(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
        }
    }
}

/// The message a use-case failure is answered with: the use case's own words, except
/// where the wire says it in the gateway's terms or must not say more.
fn app_message(e: &AppError) -> Cow<'static, str> {
    use crate::signature::SignatureError;
    match e {
        AppError::UnknownAppKey => SignatureError::InvalidAppKey.gateway_message().into(),
        AppError::NonceUsed => SignatureError::NonceUsed.gateway_message().into(),
        AppError::InvalidAppName(reason) | AppError::Import(reason) => {
            format!("invalid request: {reason}").into()
        }
        AppError::PortraitRefused { .. } => format!("portrait refused: {e}").into(),
        // The admin API's own words for what the CLI says with flags.
        AppError::NameMismatch => "this ID number is enrolled under another name; to change \
            the name, POST /admin/persons/rename with idCard, name and reason"
            .into(),
        AppError::PortraitMismatch {
            index,
            against,
            score,
        } => format!(
            "photo {index} does not match {against} (score {score:.3}): a person's portraits \
             must all show them; nothing was stored (to replace their portraits, POST \
             /admin/persons/replace with a reason)"
        )
        .into(),
        AppError::DuplicateFace {
            index,
            other,
            handle,
            score,
        } => format!(
            "photo {index}: this face is already enrolled under {other} ({handle}, score \
             {score:.3}); nothing was stored (if both ID numbers really belong to one person, \
             send allowDuplicateFace: true with a reason)"
        )
        .into(),
        AppError::ReasonRequired => "a reason is required (field reason)".into(),
        AppError::BasisRequired => "no legal basis is recorded for this person's face: send \
            basis (consent, contract or law) with consentRef or law (docs/compliance.md); \
            nothing was stored"
            .into(),
        AppError::SignInRefused => ApiError::AdminUnauthorized.to_string().into(),
        AppError::Store(renzheng_store::StoreError::Database(_)) => {
            "the database is unavailable; retry later".into()
        }
        AppError::Engine(_) | AppError::Store(_) | AppError::Keys(_) | AppError::Internal(_) => {
            "internal error".into()
        }
        _ => e.to_string().into(),
    }
}

/// The `X-Ca-Error-Code` of a signature refusal.
fn signature_code(e: &crate::signature::SignatureError) -> &'static str {
    use crate::signature::SignatureError::*;
    match e {
        MissingHeader { .. } | InvalidHeader { .. } | EmptySignature => "InvalidSignatureHeader",
        InvalidAppKey => "InvalidAppKey",
        Unauthorized => "Unauthorized",
        InvalidTimestamp => "InvalidTimestamp",
        TimestampExpired => "TimestampExpired",
        NonceUsed => "NonceUsed",
        InvalidContentMd5 => "InvalidContentMd5",
        InvalidSignature { .. } => "InvalidSignature",
        UnsignedHeader { .. } => "InvalidSignatureHeader",
        RepeatedParameter { .. } => "RepeatedParameter",
    }
}

/// Whole seconds for `Retry-After`, at least 1.
fn retry_after_secs(ms: i64) -> u64 {
    u64::try_from(ms.max(1)).unwrap_or(1).div_ceil(1000)
}

/// The `X-Ca-Error-Code` of an imgUrl failure.
fn img_url_code(e: &FetchError) -> &'static str {
    match e {
        FetchError::InvalidUrl(_) | FetchError::Disabled => "InvalidImgUrl",
        FetchError::Refused { .. } => "ImgUrlRefused",
        FetchError::Unreachable(_) | FetchError::Status(_) | FetchError::TooManyRedirects(_) => {
            "ImgUrlUnreachable"
        }
        FetchError::Timeout(_) => "ImgUrlTimeout",
        FetchError::Photo(PhotoError::TooLarge { .. }) => "ImageTooLarge",
        FetchError::Photo(_) => "InvalidImage",
    }
}

/// The answer to a body that could not be read: 413 over `limit`, else 400. The one
/// place this rule lives (check and admin bodies alike).
pub fn body_rejection(status: StatusCode, limit: usize) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit }
    } else {
        ApiError::MalformedBody("the body could not be read".into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = self.to_string();
        match &self {
            ApiError::Internal(source) => {
                tracing::error!(error.code = code, error.source = %source, "internal error");
            }
            ApiError::App(AppError::Store(source @ renzheng_store::StoreError::Database(_))) => {
                let detail = std::error::Error::source(source)
                    .map(ToString::to_string)
                    .unwrap_or_default();
                tracing::error!(error.code = code, error.source = %detail, "database unavailable");
            }
            ApiError::App(
                e @ (AppError::Engine(_)
                | AppError::Store(_)
                | AppError::Keys(_)
                | AppError::Internal(_)),
            ) => {
                tracing::error!(error.code = code, error.source = %e, "internal error");
            }
            // The code and status only: a message can quote the request (a signature's
            // string-to-sign holds the decoded name and ID number; a parse error can quote
            // a field), and logs must never hold either.
            _ if status.is_server_error() => {
                tracing::warn!(error.code = code, "request refused");
            }
            _ => {
                tracing::info!(
                    status = status.as_u16(),
                    error.code = code,
                    "request rejected"
                )
            }
        }
        let body = ErrorEnvelope {
            code: status.as_u16(),
            success: false,
            msg: Cow::Owned(message.clone()),
            task_no: current_task_no(),
            data: None,
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(X_CA_ERROR_CODE, HeaderValue::from_static(code));
        headers.insert(X_CA_ERROR_MESSAGE, header_text(&message));
        match &self {
            ApiError::App(AppError::Busy { retry_after_secs }) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::App(AppError::Store(renzheng_store::StoreError::Database(_))) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1));
            }
            ApiError::App(
                AppError::Throttled { retry_after_ms }
                | AppError::TooManyAttempts { retry_after_ms, .. },
            ) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs(*retry_after_ms)),
                );
            }
            _ => {}
        }
        if matches!(self, ApiError::AdminUnauthorized) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_error_is_4xx_and_server_error_5xx() {
        let cases = [
            ApiError::App(AppError::Unauthorized),
            ApiError::App(AppError::MissingField("name")),
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::App(AppError::Busy {
                retry_after_secs: 1,
            }),
            ApiError::internal("boom"),
        ];
        let statuses: Vec<u16> = cases
            .iter()
            .map(|e| e.status_and_code().0.as_u16())
            .collect();
        assert_eq!(statuses, [403, 400, 413, 503, 500]);
    }

    #[test]
    fn busy_sets_retry_after_and_gateway_headers() {
        let r = ApiError::App(AppError::Busy {
            retry_after_secs: 2,
        })
        .into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        assert_eq!(r.headers()[X_CA_ERROR_CODE], "ServiceBusy");
    }

    #[test]
    fn internal_details_are_not_returned() {
        let e = ApiError::internal("secret detail");
        assert_eq!(e.to_string(), "internal error");
        let e = ApiError::App(AppError::Internal("secret detail".into()));
        assert_eq!(e.to_string(), "internal error");
    }
}
