//! `POST /faceidcard/check`, the Alibaba-compatible endpoint: the body (JSON or form) in,
//! the product's envelope out. The check itself is a
//! [`CheckTicket`](renzheng_app::CheckTicket) of the application, which keeps its order
//! and its one record; this module only reads HTTP (the credential, the body, its
//! encoding) and maps answers and errors to statuses.

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use renzheng_app::settings::Limits;
use renzheng_app::{Authentication, CheckFields, CheckTicket, Ending, Origin, Verification};
use renzheng_vision::{QualityIssue, QualityReport};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{verify_signed, Presented, NONCE_VALID_MS};
use crate::error::{body_rejection, success, ApiError, Envelope, NoData};
use crate::request_id::RequestId;
use crate::state::AppState;

/// The check route, documented, with its body limit.
pub fn router(limits: &Limits) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handler))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
}

/// The JSON body of a check (`application/json`); [`CheckForm`] is the same fields
/// form-encoded.
// Documentation only: `fields_from_json` reads these names.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Only its schema is used: the parser reads the fields by name.
pub struct CheckBody {
    /// 姓名, the name on the ID card.
    name: String,
    /// 身份证号: 18 characters, or a legacy 15-digit number (a JSON number is accepted too).
    #[schema(rename = "idCard")]
    id_card: String,
    // The configured size limit is appended when the document is built.
    /// The photo as base64, optionally a `data:` URI; wins over `imgUrl`.
    image: Option<String>,
    /// An http(s) URL of the photo; non-public addresses are refused.
    #[schema(rename = "imgUrl")]
    img_url: Option<String>,
}

/// The form-encoded body of a check (`application/x-www-form-urlencoded`): the fields of
/// [`CheckBody`], under the same names, each a string.
// A schema of its own rather than `CheckBody` twice: client generators make one type per
// schema and choose the encoding by the type of the body they are given, so one schema
// under both media types gives a client that cannot say which to send
// (openapi-python-client's sends every body form-encoded). Documentation only:
// `fields_from_form` reads these names.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Only its schema is used: the parser reads the fields by name.
pub struct CheckForm {
    /// 姓名, the name on the ID card.
    name: String,
    /// 身份证号: 18 characters, or a legacy 15-digit number.
    #[schema(rename = "idCard")]
    id_card: String,
    // The configured size limit is appended when the document is built.
    /// The photo as base64 (percent-encoded, as every form value is), optionally a
    /// `data:` URI; wins over `imgUrl`.
    image: Option<String>,
    /// An http(s) URL of the photo; non-public addresses are refused.
    #[schema(rename = "imgUrl")]
    img_url: Option<String>,
}

/// Marks a response with its result code, for the request metrics.
#[derive(Debug, Clone, Copy)]
pub struct ResultLabel(pub u8);

/// `POST /faceidcard/check`.
#[utoipa::path(
    post,
    path = "/faceidcard/check",
    operation_id = "check",
    tag = "check",
    summary = "Verify a photo against the registry portrait of an ID number",
    description = "Checks the name/ID pair against the registry, then compares the face in the photo with the registry portrait. Every 200 carries one result code 1-8 in `data.result`. `image` or `imgUrl` is required.",
    security(("appCode" = []), ("appKeySignature" = [])),
    request_body(content(
        (CheckBody = "application/json"),
        (CheckForm = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "A result 1-8 in `data`", body = Envelope<CheckData>),
        (status = 400, description = "A missing or invalid field, or an unusable photo; or a signed request that does not verify (`X-Ca-Error-Message`: `Invalid Signature, Server StringToSign:...`, `Timestamp Expired`, `Nonce Used`, `Invalid Content-MD5`, `Invalid AppKey`...). Never charged.", body = Envelope<NoData>),
        (status = 403, description = "Missing, unknown or disabled credentials (`Unauthorized`); no calls left (`X-Ca-Error-Message: Quota Exhausted` or `Quota Expired`); the app's rate limit (`Throttled by APP Flow Control`, with `Retry-After`). Never charged.", body = Envelope<NoData>),
        (status = 429, description = "Too many checks of this ID number by this app this minute or day (`limits.per_id_per_minute`, `limits.per_id_per_day`); `Retry-After` says when. Not charged.", body = Envelope<NoData>),
        (status = 413, description = "Body over the limit", body = Envelope<NoData>),
        (status = 415, description = "Neither JSON nor form data", body = Envelope<NoData>),
        (status = 503, description = "Engine saturated, or the database unreachable; `Retry-After` says when to retry. Never charged.", body = Envelope<NoData>),
        (status = 504, description = "The check did not finish in time", body = Envelope<NoData>),
        (status = 500, description = "Internal error", body = Envelope<NoData>),
    ),
)]
pub async fn handler(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let mut ticket = state
        .app
        .begin_check(RequestId::current_string(), Origin::Api);
    // The caller is proven before anything costs: an AppCode from the head; a signature
    // once the body it covers is read (only for an AppKey known to be allowed to call).
    let signed_body = match authenticate(&state, &mut ticket, &parts, body).await {
        Ok(read) => read,
        Err(e) => {
            if e.is_refused_credential() {
                state.metrics.auth_failed();
            }
            return finish(ticket, Err(e)).await;
        }
    };
    tracing::Span::current().record("app_id", ticket.caller().map(|c| c.app_id.as_str()));
    let limit = state.app.settings().limits.max_body_bytes;
    let outcome = async {
        ticket.admit().await?;
        let bytes = match signed_body {
            Read::Done(bytes) => bytes,
            Read::Pending(body) => read_body(body, limit, ticket.deadline()).await?,
        };
        let fields = fields_of(&parts.headers, &bytes)?;
        Ok(ticket.run(fields).await?.verification)
    }
    .await;
    finish(ticket, outcome).await
}

/// The body, read to verify a signature, or still to read.
enum Read {
    Done(Bytes),
    Pending(Body),
}

/// Authenticates the caller of a check from the head and, for a signature, the body
/// (read under the deadline and the route's limit).
async fn authenticate(
    state: &AppState,
    ticket: &mut CheckTicket,
    parts: &Parts,
    body: Body,
) -> Result<Read, ApiError> {
    let presented = Presented::of(parts, state.app.now_ms(), &state.app.settings().signature)?;
    let authentication = ticket.authenticate(presented.credential()).await?;
    let (Authentication::NeedsSignature { secret }, Presented::Signed(signed)) =
        (authentication, &presented)
    else {
        return Ok(Read::Pending(body));
    };
    let limit = state.app.settings().limits.max_body_bytes;
    let bytes = read_body(body, limit, ticket.deadline()).await?;
    let token = verify_signed(signed, parts, &bytes, &secret)?;
    ticket.signature_verified(&token, NONCE_VALID_MS).await?;
    Ok(Read::Done(bytes))
}

/// Records the check as answered (one record, the unit charged for an answer and given
/// back otherwise) and gives the answer. An answer that could not be recorded (nor
/// charged) is not given as a success.
async fn finish(ticket: CheckTicket, outcome: Result<Verification, ApiError>) -> Response {
    let recorded = ticket.finish(ending(outcome.as_ref())).await;
    match (outcome, recorded) {
        (Ok(verification), Ok(charged)) => {
            let mut data = CheckData::from(&verification);
            data.charged = u8::from(charged);
            let label = ResultLabel(data.result);
            let mut response = success(StatusCode::OK, data);
            response.extensions_mut().insert(label);
            response
        }
        (Ok(_), Err(_)) => {
            ApiError::NotReady("the check could not be recorded; retry".into()).into_response()
        }
        (Err(e), _) => e.into_response(),
    }
}

/// How a check was answered, for its record: an answer is sent as a 200, a refusal
/// with its error's status and code (the console's try-it records the same way).
pub fn ending<'a>(outcome: Result<&'a Verification, &ApiError>) -> Ending<'a> {
    match outcome {
        Ok(verification) => Ending::Answer {
            verification,
            status: StatusCode::OK.as_u16(),
        },
        Err(e) => {
            let (status, code) = e.status_and_code();
            Ending::Refusal {
                status: status.as_u16(),
                code,
            }
        }
    }
}

/// Body encodings accepted by the check endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Json,
    Form,
}

/// The encoding a body is read in: JSON and form by their media types; under any other
/// type, or none, a body that starts with `{` is read as a JSON object. Alibaba's own
/// Python demo can send JSON only as `application/octet-stream`, and other clients send
/// `text/plain`; such a body is still unmistakably JSON. Anything else is form data
/// without a type (what `curl -d` sends), or unsupported under another type.
fn encoding_of(headers: &HeaderMap, body: &[u8]) -> Result<Encoding, ApiError> {
    let looks_like_json = body.trim_ascii_start().first() == Some(&b'{');
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(if looks_like_json {
            Encoding::Json
        } else {
            Encoding::Form
        });
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
        "application/json" | "text/json" => Ok(Encoding::Json),
        e if e.ends_with("+json") => Ok(Encoding::Json),
        "application/x-www-form-urlencoded" => Ok(Encoding::Form),
        _ if looks_like_json => Ok(Encoding::Json),
        _ => Err(ApiError::UnsupportedMediaType),
    }
}

/// Reads the body under the route's limit (413 beyond) by the check's deadline.
async fn read_body(
    body: Body,
    limit: usize,
    deadline: tokio::time::Instant,
) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let read = http_body_util::Limited::new(body, limit).collect();
    match tokio::time::timeout_at(deadline, read).await {
        Err(_) => Err(ApiError::Timeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) => {
            let status = if e.is::<http_body_util::LengthLimitError>() {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            Err(body_rejection(status, limit))
        }
    }
}

/// Parses a body in its encoding ([`encoding_of`]).
fn fields_of(headers: &HeaderMap, body: &[u8]) -> Result<CheckFields, ApiError> {
    match encoding_of(headers, body)? {
        Encoding::Json => fields_from_json(body),
        Encoding::Form => fields_from_form(body),
    }
}

/// A JSON object's members in order, duplicates kept: `serde_json::Value` would keep the
/// last of two `name`s silently, and a form body the first, so two parsers of the same
/// request could disagree about who is being checked.
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// The fields of a check, by their wire names.
const FIELDS: [&str; 4] = ["name", "idCard", "image", "imgUrl"];

/// Reads a JSON object body. `idCard` may also be a JSON number (some clients send it
/// so); any other non-string value is refused with the field's name only, never its value.
/// A field sent twice is refused.
pub fn fields_from_json(body: &[u8]) -> Result<CheckFields, ApiError> {
    // One parse: a syntax error is "not valid JSON", valid JSON of another type is "not
    // an object".
    let Members(members) = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::MalformedBody("the JSON body must be an object".into())
        } else {
            ApiError::MalformedBody(format!(
                "not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        }
    })?;
    let mut seen = std::collections::HashSet::new();
    for (key, _) in &members {
        if !seen.insert(key.as_str()) {
            return Err(duplicate(key));
        }
    }
    let map: std::collections::HashMap<&str, &serde_json::Value> =
        members.iter().map(|(k, v)| (k.as_str(), v)).collect();
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

/// The refusal of a field sent twice, naming the field only when it is one of ours (an
/// unknown key is the caller's text).
fn duplicate(key: &str) -> ApiError {
    match FIELDS.iter().find(|f| **f == key) {
        Some(field) => ApiError::MalformedBody(format!("the field {field} is sent more than once")),
        None => ApiError::MalformedBody("a field is sent more than once".into()),
    }
}

/// Reads an `application/x-www-form-urlencoded` body. A field of ours sent twice is
/// refused (unknown keys are ignored, repeated or not).
pub fn fields_from_form(body: &[u8]) -> Result<CheckFields, ApiError> {
    let mut fields = CheckFields::default();
    for (key, value) in url::form_urlencoded::parse(body) {
        let slot = match key.as_ref() {
            "name" => &mut fields.name,
            "idCard" => &mut fields.id_card,
            "image" => &mut fields.image,
            "imgUrl" => &mut fields.img_url,
            _ => continue,
        };
        if slot.is_some() {
            return Err(duplicate(&key));
        }
        *slot = Some(value.into_owned());
    }
    Ok(fields)
}

/// The decision thresholds, as scores.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Thresholds {
    /// Scores at or above this are "same person".
    pub same: f64,
    /// Scores at or below this are "different people".
    pub different: f64,
    /// Present when the photo's face is small and its size band's thresholds applied
    /// (calibrated on faces of that size): the band covers faces whose eyes are closer
    /// than this many pixels. Absent: the pack's clean bands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_band_below_px: Option<f64>,
}

/// The photo's quality, as reported to the caller.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QualityView {
    /// Whether the photo passed.
    pub passed: bool,
    /// Machine-readable reasons (`too_dark`, `blurry`…).
    pub issues: Vec<&'static str>,
    /// The same reasons in Chinese.
    pub reasons: Vec<&'static str>,
    /// Soft problems (`face_too_small`, `blurry`, `extreme_pose` — on packs that warn
    /// on it, `dlib` — and `face_cut_off`): the photo was compared, but such a face is
    /// never judged "same person" (at most 2) — except a small face when the pack has a
    /// size band for it, whose own thresholds then decide (see `thresholds`).
    pub warnings: Vec<&'static str>,
    /// Distance between the eyes, pixels.
    pub inter_eye_px: f64,
    /// Sharpness of the aligned face.
    pub sharpness: f64,
    /// Mean brightness of the face, 0–255.
    pub brightness: f64,
    /// Head turn, 0 (frontal) – 1 (profile).
    pub yaw: f64,
    /// Roll of the eye line, degrees.
    pub roll_deg: f64,
}

fn reason_zh(issue: QualityIssue) -> &'static str {
    match issue {
        QualityIssue::FaceTooSmall => "人脸过小",
        QualityIssue::Blurry => "照片模糊",
        QualityIssue::TooDark => "照片过暗",
        QualityIssue::TooBright => "照片过亮",
        QualityIssue::ExtremePose => "人脸角度过大",
        QualityIssue::FaceCutOff => "人脸不完整",
        QualityIssue::LowConfidence => "人脸不清晰或有遮挡",
    }
}

impl From<&QualityReport> for QualityView {
    fn from(q: &QualityReport) -> Self {
        let round2 = |v: f64| (v * 100.0).round() / 100.0;
        QualityView {
            passed: q.passed(),
            issues: q.issues.iter().map(|i| i.as_str()).collect(),
            reasons: q.issues.iter().map(|i| reason_zh(*i)).collect(),
            warnings: q.warnings.iter().map(|i| i.as_str()).collect(),
            inter_eye_px: round2(q.inter_eye_px),
            sharpness: round2(q.sharpness),
            brightness: round2(q.brightness),
            yaw: round2(q.yaw),
            roll_deg: round2(q.roll_deg),
        }
    }
}

/// The `data` of a successful check.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckData {
    /// Result code: 1 same person, 2 can't tell, 3 different people, 4 name and ID
    /// number don't match, 5 no portrait on record, 6 no face detected, 7 no such ID
    /// number, 8 photo quality unqualified.
    #[schema(minimum = 1, maximum = 8)]
    pub result: u8,
    /// The product's description of the result.
    pub desc: &'static str,
    /// Similarity in [0, 1] (results 1–3 only).
    pub score: Option<f64>,
    /// Decision thresholds as scores (results 1–3 only).
    pub thresholds: Option<Thresholds>,
    /// "男"/"女", from the ID number.
    #[schema(example = "男")]
    pub sex: &'static str,
    /// `YYYYMMDD`, from the ID number.
    #[schema(example = "19900307")]
    pub birthday: String,
    /// Issuing region, from the ID number's GB/T 2260 code.
    pub address: String,
    /// The photo's quality (whenever a face was analysed; with reasons for result 8).
    pub quality: Option<QualityView>,
    /// Faces found in the photo (whenever the photo was analysed).
    pub faces: Option<usize>,
    /// Calls charged to the app's quota for this answer: 1, or 0 when metering is off.
    pub charged: u8,
}

impl From<&Verification> for CheckData {
    fn from(v: &Verification) -> Self {
        let round4 = |v: f64| (v * 10_000.0).round() / 10_000.0;
        CheckData {
            result: v.result.code(),
            desc: v.result.desc(),
            score: v.scored.map(|s| round4(s.score)),
            thresholds: v.scored.map(|s| Thresholds {
                same: round4(s.same),
                different: round4(s.different),
                size_band_below_px: s.size_band_below_px,
            }),
            sex: v.facts.sex.label(),
            birthday: v.facts.birthday.clone(),
            address: v.facts.address.clone(),
            quality: v.quality.as_ref().map(QualityView::from),
            faces: v.faces,
            charged: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_and_types() {
        let f =
            fields_from_json(br#"{"name":"a","idCard":123,"image":"x","imgUrl":null}"#).unwrap();
        assert_eq!(f.name.as_deref(), Some("a"));
        assert_eq!(f.id_card.as_deref(), Some("123"));
        assert_eq!(f.image.as_deref(), Some("x"));
        assert!(f.img_url.is_none());
        assert!(matches!(
            fields_from_json(br#"{"name":1}"#),
            Err(ApiError::FieldType("name"))
        ));
        assert!(matches!(
            fields_from_json(b"[1]"),
            Err(ApiError::MalformedBody(_))
        ));
        assert!(matches!(
            fields_from_json(b"{"),
            Err(ApiError::MalformedBody(_))
        ));
    }

    #[test]
    fn form_fields() {
        let f = fields_from_form("name=%E5%BC%A0%E4%B8%89&idCard=1&image=a+b&x=1&x=2".as_bytes())
            .unwrap();
        assert_eq!(f.name.as_deref(), Some("张三"));
        assert_eq!(f.id_card.as_deref(), Some("1"));
        assert_eq!(f.image.as_deref(), Some("a b"));
    }

    #[test]
    fn duplicate_fields_are_refused_in_both_encodings() {
        let e = fields_from_form(b"name=a&idCard=1&idCard=2").err().unwrap();
        assert!(e.to_string().contains("idCard"), "{e}");
        let e = fields_from_json(br#"{"name":"a","name":"b","idCard":"1"}"#)
            .err()
            .unwrap();
        assert!(matches!(e, ApiError::MalformedBody(_)), "{e:?}");
        assert!(e.to_string().contains("name"), "{e}");
        // An unknown key sent twice is refused without echoing it.
        let e = fields_from_json(br#"{"secret-ish":1,"secret-ish":2}"#)
            .err()
            .unwrap();
        assert!(!e.to_string().contains("secret-ish"), "{e}");
    }
}
