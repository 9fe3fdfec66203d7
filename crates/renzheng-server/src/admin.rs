//! The admin API (`Authorization: Bearer <admin token>`): registry and apps.
//!
//! | method | path | what |
//! |---|---|---|
//! | POST | `/admin/persons` | enrol: JSON `{"name","idCard","photos":[base64…]}` or multipart (`name`, `idCard`, `photo` files) |
//! | GET | `/admin/persons/{id}` | show, masked |
//! | DELETE | `/admin/persons/{id}` | remove everything about the person |
//! | POST | `/admin/apps` | create an app `{"name"}`; the AppCode is in this answer only |
//! | GET | `/admin/apps` | list apps |
//! | POST | `/admin/apps/{id}/disable`, `/admin/apps/{id}/enable` | switch an app |
//! | GET | `/admin/audit?limit=N` | the latest audit records (masked) |

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::Response;
use renzheng_domain::{IdNumber, PersonName};
use renzheng_store::{AppCode, AppId, StoreError};
use serde::{Deserialize, Serialize};

use crate::auth::Admin;
use crate::check::photo::decode_image_field;
use crate::error::{success, ApiError};
use crate::registry::{self, PersonView, PortraitError};
use crate::startup::AppState;
use crate::telemetry::spawn_blocking_with_tracing;

/// An enrolment request, as parsed from either encoding. No `Debug`: clear PII.
struct Enrolment {
    name: Option<String>,
    id_card: Option<String>,
    photos: Vec<Vec<u8>>,
}

#[derive(Deserialize)]
struct EnrolJson {
    name: Option<String>,
    #[serde(alias = "id_number", alias = "idNumber")]
    #[serde(rename = "idCard")]
    id_card: Option<String>,
    #[serde(default)]
    photos: Vec<String>,
}

fn too_large(state: &AppState) -> ApiError {
    ApiError::PayloadTooLarge {
        limit: state.settings.limits.max_admin_body_bytes,
    }
}

async fn read_enrolment(state: &AppState, request: Request) -> Result<Enrolment, ApiError> {
    let is_multipart = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let photo_limit = state.settings.limits.max_admin_body_bytes;
    if is_multipart {
        let mut multipart = Multipart::from_request(request, state)
            .await
            .map_err(|e| ApiError::MalformedBody(e.body_text()))?;
        let mut enrolment = Enrolment {
            name: None,
            id_card: None,
            photos: Vec::new(),
        };
        while let Some(field) = multipart.next_field().await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large(state)
            } else {
                ApiError::MalformedBody("malformed multipart body".into())
            }
        })? {
            let key = field.name().unwrap_or_default().to_owned();
            let bytes = field.bytes().await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large(state)
                } else {
                    ApiError::MalformedBody("malformed multipart body".into())
                }
            })?;
            let text = || {
                String::from_utf8(bytes.to_vec()).map_err(|_| ApiError::FieldType("name/idCard"))
            };
            match key.as_str() {
                "name" => enrolment.name = Some(text()?),
                "idCard" | "id_number" | "idNumber" => enrolment.id_card = Some(text()?),
                "photo" | "photos" | "image" => enrolment.photos.push(bytes.to_vec()),
                _ => {}
            }
        }
        Ok(enrolment)
    } else {
        let body = Bytes::from_request(request, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large(state)
            } else {
                ApiError::MalformedBody("the body could not be read".into())
            }
        })?;
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
            .map(|p| decode_image_field(p, photo_limit))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Enrolment {
            name: parsed.name,
            id_card: parsed.id_card,
            photos,
        })
    }
}

/// `POST /admin/persons`: enrols a person with zero or more portraits. Every photo must
/// show a usable face, else nothing is written and the answer says which photo and why.
pub async fn enrol(
    _: Admin,
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let enrolment = read_enrolment(&state, request).await?;
    let name = enrolment
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or(ApiError::MissingField("name"))?;
    let id = enrolment
        .id_card
        .filter(|n| !n.trim().is_empty())
        .ok_or(ApiError::MissingField("idCard"))?;
    let name = PersonName::parse(&name)?;
    let id = IdNumber::parse(&id)?;

    let mut portraits = Vec::with_capacity(enrolment.photos.len());
    for (index, photo) in enrolment.photos.into_iter().enumerate() {
        let permit = state.gate.acquire().await.map_err(|_| state.busy())?;
        let engine = state.engine.clone();
        let cipher = state.photo_cipher.clone();
        let analysed = spawn_blocking_with_tracing(move || {
            let _permit = permit;
            registry::analyze_portrait(&engine, &photo, cipher.as_ref())
        })
        .await
        .map_err(ApiError::internal)?;
        match analysed {
            Ok(portrait) => portraits.push(portrait),
            Err(PortraitError::Refused(reason)) => {
                return Err(ApiError::PortraitRefused(format!(
                    "photo {}: {reason}",
                    index + 1
                )))
            }
            Err(PortraitError::Engine(e)) => return Err(ApiError::internal(e)),
        }
    }
    let record = registry::enrol(&state.store, &id, &name, portraits).await?;
    tracing::info!(id_number = %id, name = %name, portraits = record.portraits.len(), "person enrolled");
    Ok(success(StatusCode::CREATED, PersonView::from(&record)))
}

fn parse_path_id(raw: &str) -> Result<IdNumber, ApiError> {
    Ok(IdNumber::parse(raw)?)
}

/// `GET /admin/persons/{id}`: the person, masked.
pub async fn show(
    _: Admin,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_path_id(&raw)?;
    let record = state
        .store
        .get_person(&id)
        .await?
        .ok_or(ApiError::ResourceNotFound("person"))?;
    Ok(success(StatusCode::OK, PersonView::from(&record)))
}

/// Answer of removals and switches.
#[derive(Debug, Serialize)]
struct Done {
    done: bool,
}

/// `DELETE /admin/persons/{id}`: removes the person and everything about them.
pub async fn remove(
    _: Admin,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_path_id(&raw)?;
    if !state.store.remove_person(&id, &state.audit_key).await? {
        return Err(ApiError::ResourceNotFound("person"));
    }
    tracing::info!(id_number = %id, "person removed");
    Ok(success(StatusCode::OK, Done { done: true }))
}

/// Body of `POST /admin/apps`.
#[derive(Debug, Deserialize)]
pub struct NewApp {
    /// Display name.
    pub name: String,
}

/// Answer of `POST /admin/apps`; the only time the AppCode is shown.
#[derive(Debug, Serialize)]
pub struct CreatedApp {
    /// The app's id.
    pub app_id: String,
    /// The AppCode, in clear, once.
    pub app_code: String,
    /// Display name.
    pub name: String,
}

/// An app, for listing.
#[derive(Debug, Serialize)]
pub struct AppView {
    /// The app's id.
    pub app_id: String,
    /// Display name.
    pub name: String,
    /// Whether it may call.
    pub enabled: bool,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
}

/// `POST /admin/apps`.
pub async fn create_app(
    _: Admin,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let NewApp { name } = serde_json::from_slice(&body)
        .map_err(|_| ApiError::MalformedBody("expected {\"name\": \"…\"}".into()))?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest(
            "name must be 1 to 100 characters".into(),
        ));
    }
    let (code, hash) = AppCode::generate_with_hash();
    let app = state.store.create_app(name, &hash).await?;
    tracing::info!(app_id = %app.id, "app created");
    Ok(success(
        StatusCode::CREATED,
        CreatedApp {
            app_id: app.id.to_string(),
            app_code: code.expose().to_owned(),
            name: app.name,
        },
    ))
}

/// `GET /admin/apps`.
pub async fn list_apps(_: Admin, State(state): State<AppState>) -> Result<Response, ApiError> {
    let apps: Vec<AppView> = state
        .store
        .list_apps()
        .await?
        .into_iter()
        .map(|a| AppView {
            app_id: a.id.to_string(),
            name: a.name,
            enabled: a.enabled,
            created_at: a.created_at,
        })
        .collect();
    Ok(success(StatusCode::OK, apps))
}

async fn switch_app(state: &AppState, id: String, enabled: bool) -> Result<Response, ApiError> {
    match state.store.set_app_enabled(&AppId::from(id), enabled).await {
        Ok(()) => Ok(success(StatusCode::OK, Done { done: true })),
        Err(StoreError::NotFound(_)) => Err(ApiError::ResourceNotFound("app")),
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/apps/{id}/disable`.
pub async fn disable_app(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    switch_app(&state, id, false).await
}

/// `POST /admin/apps/{id}/enable`.
pub async fn enable_app(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    switch_app(&state, id, true).await
}

/// Query of `GET /admin/audit`.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    /// How many records, newest first (default 50, at most 1000).
    pub limit: Option<u32>,
}

/// An audit record as shown (already masked in storage).
#[derive(Debug, Serialize)]
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
pub async fn audit(
    _: Admin,
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let rows: Vec<AuditView> = state
        .store
        .recent_audit(limit)
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
