//! The admin API (`Authorization: Bearer <admin token>`): registry and apps.
//!
//! | method | path | what |
//! |---|---|---|
//! | POST | `/admin/persons` | enrol or add portraits: JSON `{"name","idCard","photos":[base64…],"allowDuplicateFace","reason"}` and the basis fields (`basis`, `consentRef`, `law`, `guardianConsentRef`, `purpose`) or multipart (the same names, `photo` files…); 409 `NameMismatch` / `PortraitMismatch` / `DuplicateFace` when the registry's rules refuse; 400 `BasisRequired` / `GuardianConsentRequired` / `InvalidBasis` |
//! | POST | `/admin/persons/basis` | record or renew a person's legal basis: `{"idCard", "basis", …}` |
//! | GET | `/admin/compliance` | the registry against the filing line, persons without a basis, retention |
//! | GET | `/admin/compliance/records?from=DATE&to=DATE&after=ID&limit=N` | a page of the processing records (masked and keyed), oldest first |
//! | POST | `/admin/registry/purge` | `{"dryRun"}`: remove (or list) the persons the registry's retention has come to |
//! | POST | `/admin/persons/lookup` | show, masked: `{"idCard"}` (an ID number or a `p-…` handle) |
//! | POST | `/admin/persons/rename` | `{"idCard","name","reason"}` |
//! | POST | `/admin/persons/replace` | replace all portraits: `{"idCard","photos","reason","allowDuplicateFace"}` and the basis fields (a renewal; left out, the basis is kept) |
//! | POST | `/admin/persons/remove` | `{"idCard","requestRef"}`: remove everything about the person (`requestRef`: the data subject's request it answers, kept in the event) |
//! | POST | `/admin/registry/duplicates` | the duplicate-face report `{"reveal","reason"}` |
//! | GET, DELETE | `/admin/persons/{handle}` | show, remove by the person's handle (`p-…`; `?requestRef=` as above); an ID number in the path is refused (it would reach access logs: use the POST forms) |
//! | POST | `/admin/registry/reembed` | embeddings of the active pack from kept photos |
//! | POST | `/admin/apps` | create an app `{"name"}`; the AppCode is in this answer only |
//! | GET | `/admin/apps` | list apps |
//! | POST | `/admin/apps/{id}/disable`, `/admin/apps/{id}/enable` | switch an app |
//! | GET | `/admin/audit?limit=N` | the latest audit records (masked) |
//! | GET | `/admin/events?limit=N` | the latest operator events (who changed what) |
//!
//! Handlers only translate: the body into the application's fields, its answer or
//! [`AppError`](renzheng_app::AppError) into the envelope.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use renzheng_app::check::decode_image_field;
use renzheng_app::settings::Limits;
use renzheng_app::{
    Actor, App, AppError, AppName, AppView, BasisStatement, BasisView, ComplianceStatus,
    CreatedApp, DuplicateReport, EnrolFields, EnrolRequest, Enrolled, PersonView, ProcessingLine,
    PurgeReport, Reason,
};
use renzheng_domain::{BasisFields, IdNumber, PersonName};
use renzheng_store::AppId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Admin;
use crate::error::{body_rejection, success, ApiError, Envelope, NoData};
use crate::request_id::RequestId;
use crate::state::AppState;

/// The admin routes, documented, with their body limit.
pub fn router(limits: &Limits) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enrol))
        .routes(routes!(lookup))
        .routes(routes!(rename))
        .routes(routes!(replace))
        .routes(routes!(record_basis))
        .routes(routes!(compliance))
        .routes(routes!(processing_records))
        .routes(routes!(purge))
        .routes(routes!(remove_by_body))
        .routes(routes!(duplicates))
        .routes(routes!(show, remove))
        .routes(routes!(reembed))
        .routes(routes!(create_app, list_apps))
        .routes(routes!(disable_app))
        .routes(routes!(enable_app))
        .routes(routes!(audit))
        .routes(routes!(events))
        .layer(DefaultBodyLimit::max(limits.max_admin_body_bytes))
}

/// The admin API as the actor of a change, named by the request.
fn actor(id: &RequestId) -> Actor {
    Actor::AdminApi {
        request_id: id.to_string(),
    }
}

/// The legal basis for storing a person's face (`docs/compliance.md`).
#[derive(Deserialize, ToSchema, Default)]
struct BasisJson {
    /// `consent`, `law` or `contract`.
    basis: Option<String>,
    /// With consent or contract: where the separate consent (or the contract) is kept.
    #[serde(rename = "consentRef")]
    #[schema(rename = "consentRef")]
    consent_ref: Option<String>,
    /// With law: the statute or regulation.
    law: Option<String>,
    /// A holder under 14 on consent or contract: where the guardian's consent is kept.
    #[serde(rename = "guardianConsentRef")]
    #[schema(rename = "guardianConsentRef")]
    guardian_consent_ref: Option<String>,
    /// The purpose, when not `compliance.purpose`.
    purpose: Option<String>,
}

impl BasisJson {
    /// The basis fields and the purpose.
    fn split(self) -> (BasisFields, Option<String>) {
        (
            BasisFields {
                basis: self.basis,
                consent_ref: self.consent_ref,
                law: self.law,
                guardian_consent_ref: self.guardian_consent_ref,
            },
            self.purpose,
        )
    }
}

/// A JSON enrolment.
#[derive(Deserialize, ToSchema)]
struct EnrolJson {
    /// The name on the ID card.
    name: Option<String>,
    /// The ID number (also accepted as `id_number` or `idNumber`).
    #[serde(alias = "id_number", alias = "idNumber")]
    #[serde(rename = "idCard")]
    id_card: Option<String>,
    /// Portraits, base64 (each optionally a `data:` URI).
    #[serde(default)]
    photos: Vec<String>,
    /// Enrol even if a face is already enrolled under another ID number (needs `reason`).
    #[serde(default, rename = "allowDuplicateFace")]
    allow_duplicate_face: bool,
    /// Why (recorded with the event).
    reason: Option<String>,
    /// The legal basis (required to store a face unless the person has one on record).
    #[serde(flatten)]
    basis: BasisJson,
}

/// A multipart enrolment.
// Documentation only: `read_enrolment` reads these names.
#[derive(ToSchema)]
#[allow(dead_code)] // Only its schema is used: the multipart reader reads fields by name.
struct EnrolMultipart {
    /// The name on the ID card.
    name: String,
    /// The ID number.
    #[schema(rename = "idCard")]
    id_card: String,
    /// Portrait files, one field each.
    #[schema(value_type = Vec<String>, format = Binary)]
    photo: Vec<Vec<u8>>,
    /// `true` to enrol even if a face is enrolled under another ID number.
    #[schema(rename = "allowDuplicateFace")]
    allow_duplicate_face: Option<bool>,
    /// Why (recorded with the event).
    reason: Option<String>,
    /// `consent`, `law` or `contract`.
    basis: Option<String>,
    /// Where the separate consent (or the contract) is kept.
    #[schema(rename = "consentRef")]
    consent_ref: Option<String>,
    /// The statute or regulation (with `law`).
    law: Option<String>,
    /// Where a guardian's consent is kept (a holder under 14).
    #[schema(rename = "guardianConsentRef")]
    guardian_consent_ref: Option<String>,
    /// The purpose, when not `compliance.purpose`.
    purpose: Option<String>,
}

async fn read_enrolment(state: &AppState, request: Request) -> Result<EnrolFields, ApiError> {
    let is_multipart = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let limit = state.app.settings().limits.max_admin_body_bytes;
    let multipart_error = |status: StatusCode| body_rejection(status, limit);
    if is_multipart {
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|e| ApiError::MalformedBody(e.body_text()))?;
        let mut fields = EnrolFields::default();
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|e| multipart_error(e.status()))?
        {
            let key = field.name().unwrap_or_default().to_owned();
            let bytes = field
                .bytes()
                .await
                .map_err(|e| multipart_error(e.status()))?;
            let text = || {
                String::from_utf8(bytes.to_vec()).map_err(|_| ApiError::FieldType("name/idCard"))
            };
            let once = |slot: &mut Option<String>, value: String| {
                if slot.replace(value).is_some() {
                    return Err(ApiError::MalformedBody(format!(
                        "the field {key} is sent more than once"
                    )));
                }
                Ok(())
            };
            match key.as_str() {
                "name" => once(&mut fields.name, text()?)?,
                "idCard" | "id_number" | "idNumber" => once(&mut fields.id_card, text()?)?,
                "photo" | "photos" | "image" => fields.photos.push(bytes.to_vec()),
                "allowDuplicateFace" => {
                    fields.allow_duplicate_face = matches!(text()?.trim(), "true" | "1" | "on")
                }
                "reason" => once(&mut fields.reason, text()?)?,
                "basis" => once(&mut fields.basis.basis, text()?)?,
                "consentRef" => once(&mut fields.basis.consent_ref, text()?)?,
                "law" => once(&mut fields.basis.law, text()?)?,
                "guardianConsentRef" => once(&mut fields.basis.guardian_consent_ref, text()?)?,
                "purpose" => once(&mut fields.purpose, text()?)?,
                _ => {}
            }
        }
        Ok(fields)
    } else {
        let body = Bytes::from_request(request, &())
            .await
            .map_err(|r| body_rejection(r.status(), limit))?;
        let parsed: EnrolJson = serde_json::from_slice(&body).map_err(|e| {
            ApiError::MalformedBody(format!(
                "expected {{\"name\", \"idCard\", \"photos\": [base64…]}} (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let photos = parsed
            .photos
            .iter()
            .map(|p| decode_image_field(p, limit))
            .collect::<Result<Vec<_>, _>>()?;
        let (basis, purpose) = parsed.basis.split();
        Ok(EnrolFields {
            name: parsed.name,
            id_card: parsed.id_card,
            photos,
            allow_duplicate_face: parsed.allow_duplicate_face,
            reason: parsed.reason,
            basis,
            purpose,
        })
    }
}

/// `POST /admin/persons`: enrols a person with zero or more portraits. Every photo must
/// show a usable face, else nothing is written and the answer says which photo and why.
#[utoipa::path(
    post,
    path = "/admin/persons",
    tag = "admin",
    summary = "Enrol a person",
    description = "JSON with base64 photos, or multipart with `name`, `idCard` and `photo` files. Every photo must show a usable face, else nothing is written and the answer says which photo and why.",
    security(("adminToken" = [])),
    request_body(content(
        (EnrolJson = "application/json"),
        (EnrolMultipart = "multipart/form-data"),
    )),
    responses(
        (status = 201, description = "Enrolled; the person, masked, with the portraits added and those skipped as already on record", body = Envelope<Enrolled>),
        (status = 400, description = "Invalid field or refused portrait; `BasisRequired` (no legal basis stated and none on record), `GuardianConsentRequired` (a holder under 14 on consent or contract), `InvalidBasis`", body = Envelope<NoData>),
        (status = 409, description = "Refused by the registry's rules: `NameMismatch` (enrolled under another name), `PortraitMismatch` (a photo does not match the person's portraits), `DuplicateFace` (the face is enrolled under another ID number); nothing was stored", body = Envelope<NoData>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
        (status = 404, description = "The admin API is off", body = Envelope<NoData>),
        (status = 413, description = "Body over the limit", body = Envelope<NoData>),
    ),
)]
pub async fn enrol(
    _: Admin,
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    request: Request,
) -> Result<Response, ApiError> {
    let fields = read_enrolment(&state, request).await?;
    let request = EnrolRequest::parse(fields)?;
    let person = state.app.enrol(&actor(&id), request).await?;
    Ok(success(StatusCode::CREATED, person))
}

/// Parses a JSON body, or says what was expected.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], expected: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::MalformedBody(format!(
            "expected {expected} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

/// A body naming one person: the ID number stays out of the path (and so out of access
/// logs and proxies).
#[derive(Deserialize, ToSchema)]
struct PersonJson {
    /// An ID number, or a person handle (`p-…`) from the registry's reports.
    #[serde(rename = "idCard", alias = "id_number", alias = "idNumber")]
    id_card: String,
}

/// `POST /admin/persons/lookup`: the person, masked.
#[utoipa::path(
    post,
    path = "/admin/persons/lookup",
    tag = "admin",
    summary = "Show a person, masked",
    security(("adminToken" = [])),
    request_body(content((PersonJson = "application/json"))),
    responses(
        (status = 200, description = "The person, masked", body = Envelope<PersonView>),
        (status = 400, description = "Invalid ID number or handle", body = Envelope<NoData>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
        (status = 404, description = "No such person", body = Envelope<NoData>),
    ),
)]
pub async fn lookup(
    _: Admin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let PersonJson { id_card } = json_body(&body, "{\"idCard\"}")?;
    let id = state.app.resolve_person(&id_card).await?;
    let person = state
        .app
        .person(&id)
        .await?
        .ok_or(ApiError::App(AppError::NotFound("person")))?;
    Ok(success(StatusCode::OK, person))
}

/// Body of `POST /admin/persons/remove`.
#[derive(Deserialize, ToSchema)]
struct RemoveJson {
    /// An ID number, or a person handle (`p-…`).
    #[serde(rename = "idCard", alias = "id_number", alias = "idNumber")]
    id_card: String,
    /// The reference of the data subject's request this removal answers (a withdrawn
    /// consent, a deletion request), kept in the removal's event.
    #[serde(rename = "requestRef")]
    #[schema(rename = "requestRef")]
    request_ref: Option<String>,
}

/// Query of `DELETE /admin/persons/{handle}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RemoveQuery {
    /// The reference of the data subject's request this removal answers.
    #[serde(rename = "requestRef")]
    #[param(rename = "requestRef")]
    pub request_ref: Option<String>,
}

/// `POST /admin/persons/remove`: removes the person and everything about them.
#[utoipa::path(
    post,
    path = "/admin/persons/remove",
    tag = "admin",
    summary = "Remove a person and everything about them",
    description = "`requestRef`: the reference of the data subject's request the removal answers (a withdrawn consent, a deletion request), kept in the `person.removed` event.",
    security(("adminToken" = [])),
    request_body(content((RemoveJson = "application/json"))),
    responses(
        (status = 200, description = "Removed", body = Envelope<Done>),
        (status = 400, description = "Invalid ID number or handle, or an invalid `requestRef`", body = Envelope<NoData>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
        (status = 404, description = "No such person", body = Envelope<NoData>),
    ),
)]
pub async fn remove_by_body(
    _: Admin,
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let RemoveJson {
        id_card,
        request_ref,
    } = json_body(&body, "{\"idCard\", \"requestRef\"}")?;
    let request = App::request_ref(request_ref.as_deref())?;
    let id = state.app.resolve_person(&id_card).await?;
    state
        .app
        .remove_person_on_request(&actor(&request_id), &id, request.as_ref())
        .await?;
    Ok(success(StatusCode::OK, Done { done: true }))
}

/// Body of `POST /admin/persons/rename`.
#[derive(Deserialize, ToSchema)]
struct RenameJson {
    /// An ID number, or a person handle (`p-…`).
    #[serde(rename = "idCard", alias = "id_number", alias = "idNumber")]
    id_card: String,
    /// The new name.
    name: String,
    /// Why (recorded with the event).
    reason: Option<String>,
}

/// `POST /admin/persons/rename`: gives an enrolled person another name, for a reason.
#[utoipa::path(
    post,
    path = "/admin/persons/rename",
    tag = "admin",
    summary = "Rename a person (with a reason)",
    security(("adminToken" = [])),
    request_body(content((RenameJson = "application/json"))),
    responses(
        (status = 200, description = "Renamed; the person, masked", body = Envelope<PersonView>),
        (status = 400, description = "Invalid field, or no reason", body = Envelope<NoData>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
        (status = 404, description = "No such person", body = Envelope<NoData>),
    ),
)]
pub async fn rename(
    _: Admin,
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let RenameJson {
        id_card,
        name,
        reason,
    } = json_body(&body, "{\"idCard\", \"name\", \"reason\"}")?;
    let reason = Reason::parse(reason.as_deref().unwrap_or_default())?;
    let name = PersonName::parse(&name).map_err(AppError::from)?;
    let id = state.app.resolve_person(&id_card).await?;
    let person = state
        .app
        .rename_person(&actor(&request_id), &id, &name, reason)
        .await?;
    Ok(success(StatusCode::OK, person))
}

/// Body of `POST /admin/persons/replace`.
#[derive(Deserialize, ToSchema)]
struct ReplaceJson {
    /// An ID number, or a person handle (`p-…`).
    #[serde(rename = "idCard", alias = "id_number", alias = "idNumber")]
    id_card: String,
    /// The new portraits, base64 (at least one; they must agree with each other).
    photos: Vec<String>,
    /// Why (recorded with the event).
    reason: Option<String>,
    /// Replace even if a face is enrolled under another ID number.
    #[serde(default, rename = "allowDuplicateFace")]
    allow_duplicate_face: bool,
    /// A renewed legal basis (left out: the person's is kept).
    #[serde(flatten)]
    basis: BasisJson,
}

/// `POST /admin/persons/replace`: replaces all of a person's portraits, for a reason.
#[utoipa::path(
    post,
    path = "/admin/persons/replace",
    tag = "admin",
    summary = "Replace all of a person's portraits (with a reason)",
    security(("adminToken" = [])),
    request_body(content((ReplaceJson = "application/json"))),
    responses(
        (status = 200, description = "Replaced; the person, masked", body = Envelope<Enrolled>),
        (status = 400, description = "Invalid field, refused photo, or no reason", body = Envelope<NoData>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
        (status = 404, description = "No such person", body = Envelope<NoData>),
        (status = 409, description = "`PortraitMismatch` or `DuplicateFace`; nothing was changed", body = Envelope<NoData>),
    ),
)]
pub async fn replace(
    _: Admin,
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let ReplaceJson {
        id_card,
        photos,
        reason,
        allow_duplicate_face,
        basis,
    } = json_body(&body, "{\"idCard\", \"photos\": [base64…], \"reason\"}")?;
    let reason = Reason::parse(reason.as_deref().unwrap_or_default())?;
    let (basis, purpose) = basis.split();
    let basis = BasisStatement::parse(&basis, purpose.as_deref())?;
    let limit = state.app.settings().limits.max_admin_body_bytes;
    let photos = photos
        .iter()
        .map(|p| decode_image_field(p, limit))
        .collect::<Result<Vec<_>, _>>()?;
    let id = state.app.resolve_person(&id_card).await?;
    let allow = allow_duplicate_face.then(|| reason.clone());
    let done = state
        .app
        .replace_portraits(&actor(&request_id), &id, photos, reason, allow, basis)
        .await?;
    Ok(success(StatusCode::OK, done))
}

/// Body of `POST /admin/persons/basis`.
#[derive(Deserialize, ToSchema)]
struct RecordBasisJson {
    /// An ID number, or a person handle (`p-…`).
    #[serde(rename = "idCard", alias = "id_number", alias = "idNumber")]
    id_card: String,
    /// The legal basis.
    #[serde(flatten)]
    basis: BasisJson,
}

/// `POST /admin/persons/basis`: records (or renews) an enrolled person's legal basis.
#[utoipa::path(
    post,
    path = "/admin/persons/basis",
    tag = "admin",
    summary = "Record a person's legal basis",
    description = "For persons enrolled before bases were recorded, or to renew one (a new consent). A holder under 14 on consent or contract needs `guardianConsentRef`.",
    security(("adminToken" = [])),
    request_body(content((RecordBasisJson = "application/json"))),
    responses(
        (status = 200, description = "Recorded", body = Envelope<BasisView>),
        (status = 400, description = "`InvalidBasis` (incomplete or contradictory), `GuardianConsentRequired`, or no basis", body = Envelope<NoData>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
        (status = 404, description = "No such person", body = Envelope<NoData>),
    ),
)]
pub async fn record_basis(
    _: Admin,
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let RecordBasisJson { id_card, basis } =
        json_body(&body, "{\"idCard\", \"basis\", \"consentRef\" or \"law\"}")?;
    let (basis, purpose) = basis.split();
    let basis = BasisStatement::parse(&basis, purpose.as_deref())?
        .ok_or(AppError::MissingField("basis"))?;
    let id = state.app.resolve_person(&id_card).await?;
    let view = state
        .app
        .record_basis(&actor(&request_id), &id, basis)
        .await?;
    Ok(success(StatusCode::OK, view))
}

/// `GET /admin/compliance`: the registry against the filing line.
#[utoipa::path(
    get,
    path = "/admin/compliance",
    tag = "admin",
    summary = "Compliance status",
    description = "Persons with face data stored against the filing line (order No. 19: 100,000), the day it was reached, the persons without a recorded legal basis, the oldest face data (`docs/compliance.md`).",
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "The status", body = Envelope<ComplianceStatus>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
    ),
)]
pub async fn compliance(_: Admin, State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(success(
        StatusCode::OK,
        state.app.compliance_status().await?,
    ))
}

/// Query of `GET /admin/compliance/records`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordsQuery {
    /// The first day, `YYYY-MM-DD` in the operator's calendar (required; optional here so
    /// that its absence is answered in the envelope).
    pub from: Option<String>,
    /// The last day, inclusive (required).
    pub to: Option<String>,
    /// The `id` of the last record of the previous page (default: from the first).
    pub after: Option<i64>,
    /// Records per page (default 1000, at most 5000).
    pub limit: Option<u32>,
}

/// A page of processing records.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordsPage {
    /// The records, oldest first.
    pub records: Vec<ProcessingLine>,
    /// `after` for the next page; null on the last.
    pub next_after: Option<i64>,
}

/// `GET /admin/compliance/records`: the processing records of a range of days.
#[utoipa::path(
    get,
    path = "/admin/compliance/records",
    tag = "admin",
    summary = "Processing records",
    description = "Who enrolled, changed, checked or deleted which person's face (masked ID number and its keyed hash), when, under which basis: kept `compliance.records_retention_days` (three years) independently of the audit, and kept when the person is deleted (`docs/compliance.md`).",
    security(("adminToken" = [])),
    params(RecordsQuery),
    responses(
        (status = 200, description = "A page of records", body = Envelope<RecordsPage>),
        (status = 400, description = "A date that is not `YYYY-MM-DD`, or `to` before `from`", body = Envelope<NoData>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
    ),
)]
pub async fn processing_records(
    _: Admin,
    State(state): State<AppState>,
    Query(q): Query<RecordsQuery>,
) -> Result<Response, ApiError> {
    let from = q.from.as_deref().ok_or(AppError::MissingField("from"))?;
    let to = q.to.as_deref().ok_or(AppError::MissingField("to"))?;
    let range = state.app.day_range(from, to)?;
    let limit = q.limit.unwrap_or(1000);
    let records = state
        .app
        .processing_records(range, q.after.unwrap_or(0), limit)
        .await?;
    let next_after = (records.len()
        >= limit.clamp(1, renzheng_app::retention::MAX_RECORDS_PAGE) as usize)
        .then(|| records.last().map(|r| r.id))
        .flatten();
    Ok(success(
        StatusCode::OK,
        RecordsPage {
            records,
            next_after,
        },
    ))
}

/// Body of `POST /admin/registry/purge`.
#[derive(Deserialize, ToSchema, Default)]
struct PurgeJson {
    /// Only list who would be removed.
    #[serde(default, rename = "dryRun", alias = "dry_run")]
    dry_run: bool,
}

/// `POST /admin/registry/purge`: applies the registry's retention now.
#[utoipa::path(
    post,
    path = "/admin/registry/purge",
    tag = "admin",
    summary = "Apply the registry's retention",
    description = "Removes every person enrolled (or whose basis was last renewed) longer than `registry.retention_days` ago, or not checked for `registry.inactive_days`, each with everything stored about them, each an event (`person.purged`) and a processing record. `dryRun` lists them only. The server does this hourly.",
    security(("adminToken" = [])),
    request_body(content((PurgeJson = "application/json"))),
    responses(
        (status = 200, description = "Who was (or would be) removed, masked", body = Envelope<PurgeReport>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
    ),
)]
pub async fn purge(
    _: Admin,
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let PurgeJson { dry_run } = if body.is_empty() {
        PurgeJson::default()
    } else {
        json_body(&body, "{\"dryRun\"}")?
    };
    let report = state
        .app
        .purge_registry(&actor(&request_id), dry_run)
        .await?;
    Ok(success(StatusCode::OK, report))
}

/// Body of `POST /admin/registry/duplicates`.
#[derive(Deserialize, ToSchema, Default)]
struct DuplicatesJson {
    /// Show full ID numbers (recorded as an event; needs `reason`).
    #[serde(default)]
    reveal: bool,
    /// Why the numbers are revealed.
    reason: Option<String>,
}

/// `POST /admin/registry/duplicates`: faces enrolled under two ID numbers, and persons
/// whose own portraits disagree.
#[utoipa::path(
    post,
    path = "/admin/registry/duplicates",
    tag = "admin",
    summary = "The duplicate-face report",
    description = "Every template of the active pack is searched against every other person's at the pack's duplicate line for the registry's size; persons whose own portraits a check would not call one person are listed too. Persons are named by masked ID number and handle; `reveal` shows full numbers and is recorded.",
    security(("adminToken" = [])),
    request_body(content((DuplicatesJson = "application/json"))),
    responses(
        (status = 200, description = "The report", body = Envelope<DuplicateReport>),
        (status = 400, description = "`reveal` without a reason", body = Envelope<NoData>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
    ),
)]
pub async fn duplicates(
    _: Admin,
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let DuplicatesJson { reveal, reason } = if body.is_empty() {
        DuplicatesJson::default()
    } else {
        json_body(&body, "{\"reveal\", \"reason\"}")?
    };
    let reveal = match (reveal, reason) {
        (false, _) => None,
        (true, reason) => Some(Reason::parse(reason.as_deref().unwrap_or_default())?),
    };
    let report = state
        .app
        .duplicate_report(&actor(&request_id), reveal, |_| {})
        .await?;
    Ok(success(StatusCode::OK, report))
}

/// The person a URL names: only by handle. An ID number in a path is written to every
/// access log and proxy log on the way, so it is refused with where to send it instead.
async fn person_in_path(state: &AppState, raw: &str) -> Result<IdNumber, ApiError> {
    if !raw.trim().starts_with("p-") {
        return Err(ApiError::BadRequest(
            "persons are named in URLs by handle (p-…) only: an ID number in a URL reaches \
             access logs; POST it to /admin/persons/lookup or /admin/persons/remove as idCard"
                .into(),
        ));
    }
    Ok(state.app.resolve_person(raw).await?)
}

/// `GET /admin/persons/{handle}`: the person, masked.
#[utoipa::path(
    get,
    path = "/admin/persons/{handle}",
    tag = "admin",
    summary = "Show a person by handle, masked",
    security(("adminToken" = [])),
    params(("handle" = String, Path, description = "The person's handle (`p-` and 16 hex digits); an ID number is refused")),
    responses(
        (status = 200, description = "The person, masked", body = Envelope<PersonView>),
        (status = 400, description = "Not a handle (an ID number is refused)", body = Envelope<NoData>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
        (status = 404, description = "No such person", body = Envelope<NoData>),
    ),
)]
pub async fn show(
    _: Admin,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = person_in_path(&state, &raw).await?;
    let person = state
        .app
        .person(&id)
        .await?
        .ok_or(ApiError::App(AppError::NotFound("person")))?;
    Ok(success(StatusCode::OK, person))
}

/// Answer of removals and switches.
#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    /// Always `true`.
    pub done: bool,
}

/// `DELETE /admin/persons/{handle}`: removes the person and everything about them.
#[utoipa::path(
    delete,
    path = "/admin/persons/{handle}",
    tag = "admin",
    summary = "Remove a person by handle, and everything about them",
    security(("adminToken" = [])),
    params(("handle" = String, Path, description = "The person's handle (`p-` and 16 hex digits); an ID number is refused"), RemoveQuery),
    responses(
        (status = 200, description = "Removed", body = Envelope<Done>),
        (status = 400, description = "Not a handle (an ID number is refused), or an invalid `requestRef`", body = Envelope<NoData>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
        (status = 404, description = "No such person", body = Envelope<NoData>),
    ),
)]
pub async fn remove(
    _: Admin,
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    Path(raw): Path<String>,
    Query(RemoveQuery { request_ref }): Query<RemoveQuery>,
) -> Result<Response, ApiError> {
    let request = App::request_ref(request_ref.as_deref())?;
    let id = person_in_path(&state, &raw).await?;
    state
        .app
        .remove_person_on_request(&actor(&request_id), &id, request.as_ref())
        .await?;
    Ok(success(StatusCode::OK, Done { done: true }))
}

/// `POST /admin/registry/reembed`: after a model-pack switch, computes the active pack's
/// embeddings for every person who lacks them, from their kept photos.
#[utoipa::path(
    post,
    path = "/admin/registry/reembed",
    tag = "admin",
    summary = "Embed every person who lacks the active pack's embeddings, from kept photos",
    description = "Persons enrolled under another model pack answer 5 until they have an embedding of the active one. This computes it from the encrypted photos kept at enrolment (`keep_photos`); persons without a usable kept photo are listed (masked) for a re-import with `renzheng registry reembed --from DIR`. The other pack's portraits stay.",
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "What was done", body = Envelope<renzheng_app::ReembedSummary>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
    ),
)]
pub async fn reembed(
    _: Admin,
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
) -> Result<Response, ApiError> {
    Ok(success(
        StatusCode::OK,
        state.app.reembed(&actor(&id)).await?,
    ))
}

/// Body of `POST /admin/apps`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewApp {
    /// Display name.
    pub name: String,
}

/// `POST /admin/apps`.
#[utoipa::path(
    post,
    path = "/admin/apps",
    tag = "admin",
    summary = "Create an app; its AppCode is shown only in this answer",
    security(("adminToken" = [])),
    request_body(content((NewApp = "application/json"))),
    responses(
        (status = 201, description = "Created", body = Envelope<CreatedApp>),
        (status = 400, description = "Invalid name", body = Envelope<NoData>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
    ),
)]
pub async fn create_app(
    _: Admin,
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let NewApp { name } = serde_json::from_slice(&body)
        .map_err(|_| ApiError::MalformedBody("expected {\"name\": \"…\"}".into()))?;
    let name = AppName::parse(&name)?;
    let created = state.app.create_app(&actor(&id), &name).await?;
    Ok(success(StatusCode::CREATED, created))
}

/// `GET /admin/apps`.
#[utoipa::path(
    get,
    path = "/admin/apps",
    tag = "admin",
    summary = "List apps",
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "Apps", body = Envelope<Vec<AppView>>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
    ),
)]
pub async fn list_apps(_: Admin, State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(success(StatusCode::OK, state.app.list_apps().await?))
}

async fn switch_app(
    state: &AppState,
    request_id: &RequestId,
    id: String,
    enabled: bool,
) -> Result<Response, ApiError> {
    state
        .app
        .set_app_enabled(&actor(request_id), &AppId::from(id), enabled)
        .await?;
    Ok(success(StatusCode::OK, Done { done: true }))
}

/// `POST /admin/apps/{id}/disable`.
#[utoipa::path(
    post,
    path = "/admin/apps/{id}/disable",
    tag = "admin",
    summary = "Disable an app: its AppCode stops working",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "The app id")),
    responses(
        (status = 200, description = "Disabled", body = Envelope<Done>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
        (status = 404, description = "No such app", body = Envelope<NoData>),
    ),
)]
pub async fn disable_app(
    _: Admin,
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    switch_app(&state, &request_id, id, false).await
}

/// `POST /admin/apps/{id}/enable`.
#[utoipa::path(
    post,
    path = "/admin/apps/{id}/enable",
    tag = "admin",
    summary = "Enable an app",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "The app id")),
    responses(
        (status = 200, description = "Enabled", body = Envelope<Done>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
        (status = 404, description = "No such app", body = Envelope<NoData>),
    ),
)]
pub async fn enable_app(
    _: Admin,
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    switch_app(&state, &request_id, id, true).await
}

/// Query of `GET /admin/audit` and `GET /admin/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// How many records, newest first (default 50, at most 1000).
    pub limit: Option<u32>,
}

impl LimitQuery {
    fn limit(&self) -> u32 {
        self.limit.unwrap_or(50).clamp(1, 1000)
    }
}

/// An audit record as shown (already masked in storage).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// Sequence number.
    pub id: i64,
    /// Arrival time, unix milliseconds.
    pub at: i64,
    /// Request id (`taskNo`).
    pub request_id: String,
    /// Calling app.
    pub app_id: Option<String>,
    /// Masked name.
    pub name_masked: Option<String>,
    /// Masked ID number.
    pub id_masked: Option<String>,
    /// Keyed hash of the ID number.
    pub id_hash: Option<String>,
    /// Result code.
    pub result: Option<i64>,
    /// Score.
    pub score: Option<f64>,
    /// HTTP status.
    pub http_status: u16,
    /// Latency, milliseconds.
    pub latency_ms: u64,
    /// Error code.
    pub error_code: Option<String>,
}

/// `GET /admin/audit`.
#[utoipa::path(
    get,
    path = "/admin/audit",
    tag = "admin",
    summary = "The latest audit records, masked, newest first",
    security(("adminToken" = [])),
    params(LimitQuery),
    responses(
        (status = 200, description = "Records", body = Envelope<Vec<AuditView>>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
    ),
)]
pub async fn audit(
    _: Admin,
    State(state): State<AppState>,
    Query(q): Query<LimitQuery>,
) -> Result<Response, ApiError> {
    let rows: Vec<AuditView> = state
        .app
        .recent_audit(q.limit())
        .await?
        .into_iter()
        .map(|r| AuditView {
            id: r.id,
            at: r.at,
            request_id: r.request_id,
            app_id: r.app_id.map(|a| a.to_string()),
            name_masked: r.name_masked,
            id_masked: r.id_masked,
            id_hash: r.id_hash,
            result: r.result,
            score: r.score,
            http_status: r.http_status,
            latency_ms: r.latency_ms,
            error_code: r.error_code,
        })
        .collect();
    Ok(success(StatusCode::OK, rows))
}

/// An operator event as shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Sequence number.
    pub id: i64,
    /// When, unix milliseconds.
    pub at: i64,
    /// `cli` or `admin-api`.
    pub actor: String,
    /// What happened (`person.enrolled`, `app.disabled`…).
    pub action: String,
    /// The app id or the masked ID number concerned.
    pub target: Option<String>,
    /// The admin request's id.
    pub request_id: Option<String>,
    /// Free-form detail.
    pub detail: Option<String>,
    /// The operator's reason, for the changes that need one.
    pub reason: Option<String>,
}

/// `GET /admin/events`.
#[utoipa::path(
    get,
    path = "/admin/events",
    tag = "admin",
    summary = "The latest operator events (enrolments, removals, app changes, by whom), newest first",
    security(("adminToken" = [])),
    params(LimitQuery),
    responses(
        (status = 200, description = "Events", body = Envelope<Vec<EventView>>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
    ),
)]
pub async fn events(
    _: Admin,
    State(state): State<AppState>,
    Query(q): Query<LimitQuery>,
) -> Result<Response, ApiError> {
    let rows: Vec<EventView> = state
        .app
        .recent_events(q.limit())
        .await?
        .into_iter()
        .map(|e| EventView {
            id: e.id,
            at: e.at,
            actor: e.actor,
            action: e.action,
            target: e.target,
            request_id: e.request_id,
            detail: e.detail,
            reason: e.reason,
        })
        .collect();
    Ok(success(StatusCode::OK, rows))
}
