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
use renzheng_domain::{IdNumberError, PersonNameError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::request_id::RequestId;

/// `X-Ca-Request-Id`: the request's id, on every response.
pub const X_CA_REQUEST_ID: HeaderName = HeaderName::from_static("x-ca-request-id");
/// `X-Ca-Error-Code`: machine-readable error code, on every error response.
pub const X_CA_ERROR_CODE: HeaderName = HeaderName::from_static("x-ca-error-code");
/// `X-Ca-Error-Message`: short English reason, on every error response.
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
#[derive(Debug, Serialize, ToSchema)]
pub struct NoData;

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

/// Everything that can go wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing, unknown or disabled AppCode.
    #[error("Unauthorized")]
    Unauthorized,
    /// A signed request that does not verify; the gateway's message.
    #[error("{}", .0.gateway_message())]
    Signature(crate::signature::SignatureError),
    /// The app's rate limit is reached.
    #[error("Throttled by APP Flow Control")]
    Throttled {
        /// Until a request is allowed, milliseconds.
        retry_after_ms: i64,
    },
    /// The app has no calls left.
    #[error("Quota Exhausted")]
    QuotaExhausted,
    /// The app's calls have expired.
    #[error("Quota Expired")]
    QuotaExpired,
    /// Too many checks of one ID number.
    #[error("{message}")]
    TooManyAttempts {
        /// Why (which window).
        message: String,
        /// Until the window ends, milliseconds.
        retry_after_ms: i64,
    },
    /// A required field is absent or empty.
    #[error("missing required field: {0}")]
    MissingField(&'static str),
    /// Neither `image` nor `imgUrl` was sent.
    #[error("missing required field: image or imgUrl")]
    MissingPhoto,
    /// A field has the wrong JSON type.
    #[error("field {0} must be a string")]
    FieldType(&'static str),
    /// The name does not parse.
    #[error("invalid name: {0}")]
    InvalidName(#[from] PersonNameError),
    /// The ID number does not parse; the reason says which rule failed.
    #[error("invalid idCard: {0}")]
    InvalidIdNumber(#[from] IdNumberError),
    /// The photo (inline or fetched) is unusable as bytes.
    #[error("invalid image: {0}")]
    InvalidImage(#[from] PhotoError),
    /// `imgUrl` could not be fetched.
    #[error("imgUrl: {0}")]
    ImgUrl(#[from] FetchError),
    /// The body is not valid JSON / form data.
    #[error("malformed request body: {0}")]
    MalformedBody(String),
    /// Some other field of an admin request is wrong.
    #[error("invalid request: {0}")]
    BadRequest(String),
    /// A registry portrait was refused by the engine (no usable face…).
    #[error("portrait refused: {0}")]
    PortraitRefused(String),
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
    /// Engine capacity and its bounded queue are full.
    #[error("the service is busy, retry later")]
    Busy {
        /// Seconds for `Retry-After`.
        retry_after_secs: u64,
    },
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
    /// An admin resource (person, app) does not exist.
    #[error("{0} not found")]
    ResourceNotFound(&'static str),
    /// A dependency (database, engine) is not available.
    #[error("not ready: {0}")]
    NotReady(String),
    /// The database failed or cannot be reached: nothing was done, nothing charged.
    #[error("the database is unavailable; retry later")]
    DatabaseUnavailable(#[source] renzheng_store::StoreError),
    /// A bug or an infrastructure failure; details are logged, not returned.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// Wraps any error as an internal one.
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::Internal(e.into())
    }

    /// The HTTP status and the machine code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use ApiError::*;
        match self {
            Unauthorized => (StatusCode::FORBIDDEN, "Unauthorized"),
            Signature(e) => (e.status(), signature_code(e)),
            Throttled { .. } => (StatusCode::FORBIDDEN, "Throttled"),
            QuotaExhausted => (StatusCode::FORBIDDEN, "QuotaExhausted"),
            QuotaExpired => (StatusCode::FORBIDDEN, "QuotaExpired"),
            TooManyAttempts { .. } => (StatusCode::TOO_MANY_REQUESTS, "TooManyAttempts"),
            MissingField(_) | MissingPhoto => (StatusCode::BAD_REQUEST, "MissingParameter"),
            FieldType(_) | BadRequest(_) => (StatusCode::BAD_REQUEST, "InvalidParameter"),
            InvalidName(_) => (StatusCode::BAD_REQUEST, "InvalidName"),
            InvalidIdNumber(_) => (StatusCode::BAD_REQUEST, "InvalidIdCard"),
            InvalidImage(PhotoError::TooLarge { .. }) => (StatusCode::BAD_REQUEST, "ImageTooLarge"),
            InvalidImage(_) => (StatusCode::BAD_REQUEST, "InvalidImage"),
            ImgUrl(e) => (StatusCode::BAD_REQUEST, img_url_code(e)),
            MalformedBody(_) => (StatusCode::BAD_REQUEST, "MalformedBody"),
            PortraitRefused(_) => (StatusCode::BAD_REQUEST, "PortraitRefused"),
            PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge"),
            UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType"),
            Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "ServiceBusy"),
            Timeout => (StatusCode::GATEWAY_TIMEOUT, "Timeout"),
            NotFound => (StatusCode::NOT_FOUND, "NotFound"),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            AdminDisabled => (StatusCode::NOT_FOUND, "AdminDisabled"),
            AdminUnauthorized => (StatusCode::UNAUTHORIZED, "AdminUnauthorized"),
            ResourceNotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
            NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "NotReady"),
            DatabaseUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "DatabaseUnavailable"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        }
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

impl From<AppError> for ApiError {
    /// Every use-case failure, mapped explicitly: what the caller got wrong is a 4xx with
    /// its reason, the rest is ours.
    fn from(e: AppError) -> Self {
        match e {
            AppError::MissingField(field) => ApiError::MissingField(field),
            AppError::MissingPhoto => ApiError::MissingPhoto,
            AppError::InvalidName(e) => ApiError::InvalidName(e),
            AppError::InvalidIdNumber(e) => ApiError::InvalidIdNumber(e),
            AppError::InvalidImage(e) => ApiError::InvalidImage(e),
            AppError::ImgUrl(e) => ApiError::ImgUrl(e),
            AppError::InvalidAppName(reason) => ApiError::BadRequest(reason),
            AppError::PortraitRefused { index, reason } => {
                ApiError::PortraitRefused(format!("photo {index}: {reason}"))
            }
            AppError::NotFound(what) => ApiError::ResourceNotFound(what),
            AppError::Busy { retry_after_secs } => ApiError::Busy { retry_after_secs },
            AppError::Import(reason) => ApiError::BadRequest(reason),
            AppError::Invalid(reason) => ApiError::BadRequest(reason),
            AppError::Throttled { retry_after_ms } => ApiError::Throttled { retry_after_ms },
            AppError::QuotaExhausted => ApiError::QuotaExhausted,
            AppError::QuotaExpired => ApiError::QuotaExpired,
            e @ AppError::TooManyAttempts { retry_after_ms, .. } => ApiError::TooManyAttempts {
                message: e.to_string(),
                retry_after_ms,
            },
            AppError::SignInRefused => ApiError::AdminUnauthorized,
            AppError::NonceUsed => ApiError::Signature(crate::signature::SignatureError::NonceUsed),
            AppError::Store(e @ renzheng_store::StoreError::Database(_)) => {
                ApiError::DatabaseUnavailable(e)
            }
            e @ (AppError::Engine(_) | AppError::Store(_) | AppError::Internal(_)) => {
                ApiError::internal(e)
            }
        }
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
            ApiError::DatabaseUnavailable(source) => {
                let detail = std::error::Error::source(source)
                    .map(ToString::to_string)
                    .unwrap_or_default();
                tracing::error!(error.code = code, error.source = %detail, "database unavailable");
            }
            _ if status.is_server_error() => {
                tracing::warn!(error.code = code, error.message = %message, "request refused");
            }
            _ => {
                tracing::info!(status = status.as_u16(), error.code = code, error.message = %message, "request rejected")
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
        let header_message = match &self {
            // Keeps the caller's own (possibly Chinese) parameters byte for byte.
            ApiError::Signature(e) => e.header_value(),
            _ => header_safe(&message),
        };
        headers.insert(X_CA_ERROR_MESSAGE, header_message);
        match &self {
            ApiError::Busy { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::DatabaseUnavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1));
            }
            ApiError::Throttled { retry_after_ms }
            | ApiError::TooManyAttempts { retry_after_ms, .. } => {
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

/// Header values must be visible ASCII; the messages are English but may quote a
/// non-ASCII format name, which becomes `?`.
fn header_safe(message: &str) -> HeaderValue {
    let ascii: String = message
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    HeaderValue::from_str(&ascii).unwrap_or_else(|_| HeaderValue::from_static("error"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_error_is_4xx_and_server_error_5xx() {
        let cases = [
            ApiError::Unauthorized,
            ApiError::MissingField("name"),
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::Busy {
                retry_after_secs: 1,
            },
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
        let r = ApiError::Busy {
            retry_after_secs: 2,
        }
        .into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        assert_eq!(r.headers()[X_CA_ERROR_CODE], "ServiceBusy");
    }

    #[test]
    fn internal_details_are_not_returned() {
        let e = ApiError::internal("secret detail");
        assert_eq!(e.to_string(), "internal error");
    }
}
