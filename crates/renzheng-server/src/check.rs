//! `POST /faceidcard/check`, the Alibaba-compatible endpoint: the body (JSON or form) in,
//! the product's envelope out. The handler reads straight down: authenticate → read the
//! fields → [`App::parse_check`](renzheng_app::App::parse_check) →
//! [`App::verify`](renzheng_app::App::verify) → answer, and one audit record whatever
//! happened.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use renzheng_app::settings::Limits;
use renzheng_app::{CheckFields, CheckRecord, CheckRequest, Verification};
use renzheng_vision::{QualityIssue, QualityReport};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth;
use crate::error::{body_rejection, success, ApiError, Envelope, NoData};
use crate::request_id::RequestId;
use crate::state::AppState;

/// The check route, documented, with its body limit.
pub fn router(limits: &Limits) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handler))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
}

/// The body of a check: a JSON object, or the same fields form-encoded.
// Documentation only: `fields_from_json` and `fields_from_form` read these names.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Only its schema is used: the parsers read the fields by name.
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
        (CheckBody = "application/x-www-form-urlencoded"),
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
    let app = &state.app;
    let started = Instant::now();
    let arrived_ms = app.now_ms();
    let deadline = tokio::time::Instant::now() + app.settings().limits.request_timeout();
    let limit = app.settings().limits.max_body_bytes;
    let (parts, body) = request.into_parts();

    // An AppCode names the caller from the head, so strangers cannot make us read a
    // 2 MB body; a signature covers the body, so that one is read first.
    let early = match auth::appcode_of(&parts) {
        Some(_) => Some(state.authenticator.authenticate(&parts, b"").await),
        None => None,
    };
    if let Some(Err(e)) = early {
        return refused(&state, e.into());
    }
    let body = match tokio::time::timeout_at(deadline, read_body(body, limit)).await {
        Err(_) => Err(ApiError::Timeout),
        Ok(body) => body,
    };
    let caller = match early {
        Some(Ok(caller)) => caller,
        _ => {
            let Ok(bytes) = &body else {
                // Nobody known to audit it for.
                return body
                    .err()
                    .map(IntoResponse::into_response)
                    .unwrap_or_default();
            };
            match state.authenticator.authenticate(&parts, bytes).await {
                Ok(caller) => caller,
                Err(e) => return refused(&state, e.into()),
            }
        }
    };
    tracing::Span::current().record("app_id", caller.app_id.as_str());

    // Rate limit and quota before any parsing or engine work.
    let admission = app.admit(&caller).await;
    let reservation = admission.as_ref().ok().and_then(|a| a.reservation);
    let mut unfinished = Unfinished {
        app: state.app.clone(),
        started,
        record: Some(CheckRecord {
            arrived_ms,
            request_id: RequestId::current()
                .map(|id| id.to_string())
                .unwrap_or_default(),
            app_id: Some(caller.app_id.clone()),
            name: None,
            id_number: None,
            result: None,
            score: None,
            status: CLIENT_CLOSED,
            error_code: Some("ClientClosedRequest"),
            latency_ms: 0,
            reservation,
        }),
    };
    let parsed: Result<CheckRequest, ApiError> = admission
        .map_err(ApiError::from)
        .and(body)
        .and_then(|bytes| fields_of(&parts.headers, &bytes))
        .and_then(|f| Ok(app.parse_check(f)?));
    let (request, outcome) = match parsed {
        Err(e) => (None, Err(e)),
        Ok(request) => {
            let outcome = match app.limit_attempts(&caller, &request.id).await {
                Err(e) => Err(ApiError::from(e)),
                Ok(()) => match tokio::time::timeout_at(deadline, app.verify(&request)).await {
                    Err(_) => Err(ApiError::Timeout),
                    Ok(verified) => verified.map_err(ApiError::from),
                },
            };
            (Some(request), outcome)
        }
    };

    // The result code for the audit, the JSON view (with the score as answered) for the caller.
    let data = outcome.map(|v| (v.result, CheckData::from(&v)));
    let (status, error_code) = match &data {
        Ok(_) => (StatusCode::OK, None),
        Err(e) => {
            let (status, code) = e.status_and_code();
            (status, Some(code))
        }
    };
    // Disarmed from here: the record below replaces the one the guard would write.
    let base = unfinished
        .record
        .take()
        .expect("armed until the answer is recorded");
    let recorded = app
        .record_check(CheckRecord {
            name: request.as_ref().map(|r| &r.name),
            id_number: request.as_ref().map(|r| &r.id),
            result: data.as_ref().ok().map(|(result, _)| *result),
            score: data.as_ref().ok().and_then(|(_, d)| d.score),
            status: status.as_u16(),
            error_code,
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            ..base
        })
        .await;

    match (data, recorded) {
        (Ok((_, mut data)), Ok(charged)) => {
            data.charged = u8::from(charged);
            let label = ResultLabel(data.result);
            let mut response = success(StatusCode::OK, data);
            response.extensions_mut().insert(label);
            response
        }
        // An answer that could not be recorded (nor charged) is not given as a success.
        (Ok(_), Err(_)) => {
            ApiError::NotReady("the check could not be recorded; retry".into()).into_response()
        }
        (Err(e), _) => e.into_response(),
    }
}

/// The status audited for a check whose client went away before its answer (nginx's 499).
const CLIENT_CLOSED: u16 = 499;

/// A check whose client disconnected mid-way has its future dropped: this guard then
/// audits it (499) and gives its held unit back at once, instead of leaving the unit held
/// until `metering.hold_ms` lapses and the check unrecorded.
struct Unfinished {
    app: std::sync::Arc<renzheng_app::App>,
    started: Instant,
    record: Option<CheckRecord<'static>>,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        let Some(mut record) = self.record.take() else {
            return;
        };
        record.latency_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let app = self.app.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            SETTLING.fetch_add(1, Ordering::SeqCst);
            runtime.spawn(async move {
                let _ = app.record_check(record).await;
                SETTLING.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }
}

/// Settlements of abandoned checks still being written (see [`Unfinished`]).
static SETTLING: AtomicUsize = AtomicUsize::new(0);

/// Waits (at most `limit`) for the settlements of abandoned checks, so that a stopping
/// server gives their held units back instead of leaving them to lapse.
pub async fn settle_abandoned(limit: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while SETTLING.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A refused credential is counted, not audited: the audit is the record of checks made
/// by callers, and one client hammering with bad credentials must not grow it. (A
/// credential store that fails is not the caller's refusal: not counted.)
fn refused(state: &AppState, e: ApiError) -> Response {
    if matches!(e, ApiError::Unauthorized | ApiError::Signature(_)) {
        state.metrics.auth_failed();
    }
    e.into_response()
}

/// Body encodings accepted by the check endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Json,
    Form,
}

fn encoding_of(headers: &HeaderMap) -> Result<Option<Encoding>, ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
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

/// Reads the body under the route's limit (413 beyond).
async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => {
            let status = if e.is::<http_body_util::LengthLimitError>() {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            Err(body_rejection(status, limit))
        }
    }
}

/// Parses a body by its content type; without one, a body starting with `{` is JSON and
/// anything else form data.
fn fields_of(headers: &HeaderMap, body: &[u8]) -> Result<CheckFields, ApiError> {
    let encoding = encoding_of(headers)?.unwrap_or_else(|| {
        if body.trim_ascii_start().first() == Some(&b'{') {
            Encoding::Json
        } else {
            Encoding::Form
        }
    });
    match encoding {
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
    /// never judged "same person" (at most 2).
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
