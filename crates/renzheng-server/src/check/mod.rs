//! `POST /faceidcard/check`: the Alibaba-compatible verification endpoint.
//!
//! The handler is thin: authenticate, read the body, run [`service::verify`], answer, and
//! write one audit record whatever happened.

pub mod photo;
pub mod service;

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use renzheng_domain::{IdNumber, PersonName};
use renzheng_store::{AppId, AuditEntry};

use crate::auth::Authenticated;
use crate::error::{success, ApiError};
use crate::request_id::RequestId;
use crate::startup::AppState;

pub use service::{CheckData, ResultCode};

/// The four fields of a check, as sent (all optional until validated).
///
/// No `Debug`: the values are personal data in clear.
#[derive(Default, Clone)]
pub struct CheckFields {
    /// `name`.
    pub name: Option<String>,
    /// `idCard`.
    pub id_card: Option<String>,
    /// `image` (base64).
    pub image: Option<String>,
    /// `imgUrl`.
    pub img_url: Option<String>,
}

impl CheckFields {
    /// Reads a JSON object body. `idCard` may also be a JSON number (some clients send it
    /// so); any other non-string value is refused with the field's name only, never its
    /// value.
    pub fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::MalformedBody(format!(
                "not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let serde_json::Value::Object(map) = value else {
            return Err(ApiError::MalformedBody(
                "the JSON body must be an object".into(),
            ));
        };
        let field = |key: &'static str, numbers_ok: bool| -> Result<Option<String>, ApiError> {
            match map.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(serde_json::Value::Number(n)) if numbers_ok => Ok(Some(n.to_string())),
                Some(_) => Err(ApiError::FieldType(key)),
            }
        };
        Ok(CheckFields {
            name: field("name", false)?,
            id_card: field("idCard", true)?,
            image: field("image", false)?,
            img_url: field("imgUrl", false)?,
        })
    }

    /// Reads an `application/x-www-form-urlencoded` body (the first value of each key).
    pub fn from_form(body: &[u8]) -> Self {
        let mut fields = CheckFields::default();
        for (key, value) in url::form_urlencoded::parse(body) {
            let slot = match key.as_ref() {
                "name" => &mut fields.name,
                "idCard" => &mut fields.id_card,
                "image" => &mut fields.image,
                "imgUrl" => &mut fields.img_url,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.into_owned());
            }
        }
        fields
    }
}

/// Body encodings accepted by the check endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Json,
    Form,
}

fn encoding_of(request: &Request) -> Result<Option<Encoding>, ApiError> {
    let Some(value) = request.headers().get(CONTENT_TYPE) else {
        return Ok(None);
    };
    let essence = value
        .to_str()
        .map_err(|_| ApiError::UnsupportedMediaType)?
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "text/json" => Ok(Some(Encoding::Json)),
        e if e.ends_with("+json") => Ok(Some(Encoding::Json)),
        "application/x-www-form-urlencoded" => Ok(Some(Encoding::Form)),
        _ => Err(ApiError::UnsupportedMediaType),
    }
}

/// Reads the body under the route's limit (413 beyond) and parses it by content type;
/// without a content type, a body starting with `{` is JSON and anything else form data.
pub async fn read_fields(request: Request, state: &AppState) -> Result<CheckFields, ApiError> {
    let encoding = encoding_of(&request)?;
    let body = Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge {
                    limit: state.settings.limits.max_body_bytes,
                }
            } else {
                ApiError::MalformedBody("the body could not be read".into())
            }
        })?;
    let encoding = encoding.unwrap_or_else(|| {
        if body.trim_ascii_start().first() == Some(&b'{') {
            Encoding::Json
        } else {
            Encoding::Form
        }
    });
    match encoding {
        Encoding::Json => CheckFields::from_json(&body),
        Encoding::Form => Ok(CheckFields::from_form(&body)),
    }
}

/// What the audit record learns as the check proceeds.
#[derive(Default)]
pub struct AuditDraft {
    /// The authenticated app.
    pub app_id: Option<AppId>,
    /// The parsed name.
    pub name: Option<PersonName>,
    /// The parsed ID number.
    pub id_number: Option<IdNumber>,
}

/// Marks a response with its result code, for the request metrics.
#[derive(Debug, Clone, Copy)]
pub struct ResultLabel(pub u8);

/// `POST /faceidcard/check`.
pub async fn handler(
    State(state): State<AppState>,
    auth: Result<Authenticated, ApiError>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let arrived_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let mut draft = AuditDraft::default();
    let timeout = state.settings.limits.request_timeout();
    let outcome = match tokio::time::timeout(timeout, run(&state, auth, request, &mut draft)).await
    {
        Ok(outcome) => outcome,
        Err(_) => Err(ApiError::Timeout),
    };

    let (status, result, score, error_code) = match &outcome {
        Ok(data) => (StatusCode::OK, Some(data.result), data.score, None),
        Err(e) => {
            let (status, code) = e.status_and_code();
            (status, None, None, Some(code))
        }
    };
    if let Some(code) = result {
        tracing::info!(
            result = code,
            score,
            name = draft.name.as_ref().map(PersonName::masked),
            id_number = draft.id_number.as_ref().map(IdNumber::masked),
            "check completed"
        );
    }
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let request_id = RequestId::current()
        .map(|id| id.to_string())
        .unwrap_or_default();
    let mut entry = AuditEntry::new(request_id, status.as_u16(), latency_ms);
    entry.at = arrived_ms;
    entry.app_id = draft.app_id.clone();
    entry.result = result.map(i64::from);
    entry.score = score;
    entry.error_code = error_code.map(str::to_owned);
    if let Some(name) = &draft.name {
        entry = entry.with_name(name);
    }
    if let Some(id) = &draft.id_number {
        entry = entry.with_id_number(id, &state.audit_key);
    }
    if let Err(e) = state.store.record_audit(&entry).await {
        // The answer is already decided; a lost audit row is an operator alarm, not the
        // caller's problem.
        tracing::error!(error = %e, "could not write the audit record");
    }

    match outcome {
        Ok(data) => {
            let code = data.result;
            let mut response = success(StatusCode::OK, data);
            response.extensions_mut().insert(ResultLabel(code));
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn run(
    state: &AppState,
    auth: Result<Authenticated, ApiError>,
    request: Request,
    draft: &mut AuditDraft,
) -> Result<CheckData, ApiError> {
    let Authenticated(caller) = auth?;
    draft.app_id = Some(caller.app_id);
    let fields = read_fields(request, state).await?;
    service::verify(state, fields, draft).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_and_types() {
        let f = CheckFields::from_json(br#"{"name":"a","idCard":123,"image":"x","imgUrl":null}"#)
            .unwrap();
        assert_eq!(f.name.as_deref(), Some("a"));
        assert_eq!(f.id_card.as_deref(), Some("123"));
        assert_eq!(f.image.as_deref(), Some("x"));
        assert!(f.img_url.is_none());
        assert!(matches!(
            CheckFields::from_json(br#"{"name":1}"#),
            Err(ApiError::FieldType("name"))
        ));
        assert!(matches!(
            CheckFields::from_json(b"[1]"),
            Err(ApiError::MalformedBody(_))
        ));
        assert!(matches!(
            CheckFields::from_json(b"{"),
            Err(ApiError::MalformedBody(_))
        ));
    }

    #[test]
    fn form_fields_first_value_wins() {
        let f = CheckFields::from_form(
            "name=%E5%BC%A0%E4%B8%89&idCard=1&idCard=2&image=a+b".as_bytes(),
        );
        assert_eq!(f.name.as_deref(), Some("张三"));
        assert_eq!(f.id_card.as_deref(), Some("1"));
        assert_eq!(f.image.as_deref(), Some("a b"));
    }
}
