//! Packages, balances, call history and usage over HTTP: the operator's side (admin
//! token, every app) and the app's own side (its AppCode or signature, itself only).
//!
//! | method | path | who | what |
//! |---|---|---|---|
//! | GET, PUT | `/admin/packages` | admin | the catalogue; PUT adds or replaces one package |
//! | POST | `/admin/apps/{id}/grants` | admin | grant a package or a number of calls |
//! | PATCH | `/admin/apps/{id}/grants/{grant}` | admin | adjust a grant's calls or expiry |
//! | POST | `/admin/apps/{id}/grants/{grant}/revoke` | admin | take back a grant's unused calls |
//! | GET | `/admin/apps/{id}/balance` | admin | remaining, charged, grants |
//! | PUT | `/admin/apps/{id}/policy` | admin | rate limit, alert threshold, webhook |
//! | POST | `/admin/apps/{id}/reset-code` | admin | a new AppCode (old one: optional grace) |
//! | POST | `/admin/apps/{id}/reveal-code` | admin | the current AppCode again (an event) |
//! | POST | `/admin/apps/{id}/reset-secret` | admin | a new AppKey/AppSecret |
//! | GET | `/admin/usage`, `/admin/calls` | admin | per day / call history, all apps or `app_id=` |
//! | GET | `/v1/app/balance`, `/v1/app/usage`, `/v1/app/calls` | the app | its own |
//!
//! Call history answers JSON, or CSV with `format=csv`, streamed a page of rows at a time.
//! The app's own endpoints have a per-app limit of their own (`Throttled by APP Flow
//! Control` with `Retry-After` beyond it; CSV exports a stricter one): see
//! [`App::admit_own_request`](renzheng_app::App::admit_own_request).

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use renzheng_app::metering::CallsCsv;
use renzheng_app::{
    Actor, AppError, BalanceView, CallFilter, CallView, Caller, GrantAdjustment, GrantRequest,
    GrantView, NewAppCode, NewAppSecret, PackageView, PolicyView, UsageView,
};
use renzheng_store::AppId;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Admin, Authenticated};
use crate::error::{success, ApiError, Envelope, NoData};
use crate::request_id::RequestId;
use crate::state::AppState;

/// The metering routes, documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_packages, put_package))
        .routes(routes!(grant))
        .routes(routes!(adjust_grant))
        .routes(routes!(revoke_grant))
        .routes(routes!(balance))
        .routes(routes!(set_policy))
        .routes(routes!(reset_code))
        .routes(routes!(reveal_code))
        .routes(routes!(reset_secret))
        .routes(routes!(admin_usage))
        .routes(routes!(admin_calls))
        .routes(routes!(own_balance))
        .routes(routes!(own_usage))
        .routes(routes!(own_calls))
}

fn actor(id: &RequestId) -> Actor {
    Actor::AdminApi {
        request_id: id.to_string(),
    }
}

fn json<T: serde::de::DeserializeOwned>(body: &[u8], shape: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let why = if e.is_data() {
            "a field is missing, unknown or of the wrong type"
        } else {
            "not valid JSON"
        };
        ApiError::MalformedBody(format!("expected {shape}: {why}"))
    })
}

/// `GET /admin/packages`.
#[utoipa::path(get, path = "/admin/packages", tag = "metering",
    summary = "The package catalogue, by price",
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "Packages", body = Envelope<Vec<PackageView>>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
    ),
)]
pub async fn list_packages(_: Admin, State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(success(StatusCode::OK, state.app.packages().await?))
}

/// `PUT /admin/packages`.
#[utoipa::path(put, path = "/admin/packages", tag = "metering",
    summary = "Add or replace a package (grants already made keep their calls)",
    security(("adminToken" = [])),
    request_body(content((PackageView = "application/json"))),
    responses(
        (status = 200, description = "Saved", body = Envelope<PackageView>),
        (status = 400, description = "Invalid package", body = Envelope<NoData>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
    ),
)]
pub async fn put_package(
    _: Admin,
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let package: PackageView = json(&body, "a package")?;
    Ok(success(
        StatusCode::OK,
        state.app.put_package(&actor(&id), package).await?,
    ))
}

/// `POST /admin/apps/{id}/grants`.
#[utoipa::path(post, path = "/admin/apps/{id}/grants", tag = "metering",
    summary = "Add a package's calls (or a number of calls) to an app's balance",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "The app id")),
    request_body(content((GrantRequest = "application/json"))),
    responses(
        (status = 201, description = "Granted", body = Envelope<GrantView>),
        (status = 400, description = "Neither or both of package and calls, a retired package, a past expiry", body = Envelope<NoData>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
        (status = 404, description = "No such app or package", body = Envelope<NoData>),
    ),
)]
pub async fn grant(
    _: Admin,
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(app): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: GrantRequest = json(&body, "{\"package\"} or {\"calls\"}")?;
    let granted = state
        .app
        .grant(&actor(&rid), &AppId::from(app), request)
        .await?;
    Ok(success(StatusCode::CREATED, granted))
}

/// A grant's id from its path segment (anything else names no grant).
fn grant_id(segment: &str) -> Result<i64, ApiError> {
    segment
        .parse::<i64>()
        .map_err(|_| AppError::NotFound("grant").into())
}

/// `PATCH /admin/apps/{id}/grants/{grant}`.
#[utoipa::path(patch, path = "/admin/apps/{id}/grants/{grant}", tag = "metering",
    summary = "Adjust a grant: its calls (not below what is charged and held), its expiry, or both",
    security(("adminToken" = [])),
    params(
        ("id" = String, Path, description = "The app id"),
        ("grant" = i64, Path, description = "The grant id (grant_id in the balance)"),
    ),
    request_body(content((GrantAdjustment = "application/json"))),
    responses(
        (status = 200, description = "Adjusted; the ledger records a change of calls", body = Envelope<GrantView>),
        (status = 400, description = "Nothing to change, calls out of range, a past expiry", body = Envelope<NoData>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
        (status = 404, description = "No such app, or no such grant of it", body = Envelope<NoData>),
        (status = 409, description = "GrantBelowCommitted: fewer calls than are charged and held; GrantRevoked: the grant was revoked", body = Envelope<NoData>),
    ),
)]
pub async fn adjust_grant(
    _: Admin,
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path((app, grant)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let grant = grant_id(&grant)?;
    let adjustment: GrantAdjustment = json(
        &body,
        "{\"calls\"}, {\"expires_at\"} or {\"never_expires\": true}",
    )?;
    let adjusted = state
        .app
        .adjust_grant(&actor(&rid), &AppId::from(app), grant, adjustment)
        .await?;
    Ok(success(StatusCode::OK, adjusted))
}

/// `POST /admin/apps/{id}/grants/{grant}/revoke`.
#[utoipa::path(post, path = "/admin/apps/{id}/grants/{grant}/revoke", tag = "metering",
    summary = "Revoke a grant: its unused calls are taken back (a check holding one still settles)",
    security(("adminToken" = [])),
    params(
        ("id" = String, Path, description = "The app id"),
        ("grant" = i64, Path, description = "The grant id (grant_id in the balance)"),
    ),
    responses(
        (status = 200, description = "Revoked; the ledger records the calls taken back", body = Envelope<GrantView>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
        (status = 404, description = "No such app, or no such grant of it", body = Envelope<NoData>),
        (status = 409, description = "GrantRevoked: revoked already", body = Envelope<NoData>),
    ),
)]
pub async fn revoke_grant(
    _: Admin,
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path((app, grant)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let grant = grant_id(&grant)?;
    let revoked = state
        .app
        .revoke_grant(&actor(&rid), &AppId::from(app), grant)
        .await?;
    Ok(success(StatusCode::OK, revoked))
}

/// `GET /admin/apps/{id}/balance`.
#[utoipa::path(get, path = "/admin/apps/{id}/balance", tag = "metering",
    summary = "An app's balance: remaining, charged, and its grants",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "The app id")),
    responses(
        (status = 200, description = "Balance", body = Envelope<BalanceView>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
        (status = 404, description = "No such app", body = Envelope<NoData>),
    ),
)]
pub async fn balance(
    _: Admin,
    State(state): State<AppState>,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    Ok(success(
        StatusCode::OK,
        state.app.balance(&AppId::from(app)).await?,
    ))
}

/// `PUT /admin/apps/{id}/policy`.
#[utoipa::path(put, path = "/admin/apps/{id}/policy", tag = "metering",
    summary = "Set an app's rate limit, alert threshold and webhook",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "The app id")),
    request_body(content((PolicyView = "application/json"))),
    responses(
        (status = 200, description = "The app with its new policy", body = Envelope<renzheng_app::AppView>),
        (status = 400, description = "A value out of its range", body = Envelope<NoData>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
        (status = 404, description = "No such app", body = Envelope<NoData>),
    ),
)]
pub async fn set_policy(
    _: Admin,
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(app): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let policy: PolicyView = json(&body, "a policy")?;
    let view = state
        .app
        .set_app_policy(&actor(&rid), &AppId::from(app), policy)
        .await?;
    Ok(success(StatusCode::OK, view))
}

/// The body of a code reset.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetCode {
    /// How long the old AppCode keeps working, seconds (0 to 30 days; default 0).
    #[serde(default)]
    pub grace_seconds: i64,
}

/// `POST /admin/apps/{id}/reset-code`.
#[utoipa::path(post, path = "/admin/apps/{id}/reset-code", tag = "metering",
    summary = "Give an app a new AppCode (shown once); the old one stops, after an optional grace period",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "The app id")),
    request_body(content((ResetCode = "application/json"))),
    responses(
        (status = 200, description = "The new AppCode", body = Envelope<NewAppCode>),
        (status = 400, description = "Grace period out of range", body = Envelope<NoData>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
        (status = 404, description = "No such app", body = Envelope<NoData>),
    ),
)]
pub async fn reset_code(
    _: Admin,
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(app): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let ResetCode { grace_seconds } = if body.is_empty() {
        ResetCode::default()
    } else {
        json(&body, "{\"grace_seconds\": N}")?
    };
    let code = state
        .app
        .reset_app_code(
            &actor(&rid),
            &AppId::from(app),
            grace_seconds.saturating_mul(1000),
        )
        .await?;
    Ok(success(StatusCode::OK, code))
}

/// The AppCode shown again.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RevealedCode {
    /// The app.
    pub app_id: String,
    /// Its current AppCode.
    pub app_code: String,
}

/// `POST /admin/apps/{id}/reveal-code` (a POST: it is recorded, and no cache may keep it).
#[utoipa::path(post, path = "/admin/apps/{id}/reveal-code", tag = "metering",
    summary = "Show an app's current AppCode again (each reveal is an operator event)",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "The app id")),
    responses(
        (status = 200, description = "The current AppCode", body = Envelope<RevealedCode>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
        (status = 404, description = "No such app", body = Envelope<NoData>),
        (status = 409, description = "CodeNotViewable: issued before codes were kept (hash only); reset it to make it viewable", body = Envelope<NoData>),
    ),
)]
pub async fn reveal_code(
    _: Admin,
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    let app_id = AppId::from(app);
    let code = state.app.reveal_app_code(&actor(&rid), &app_id).await?;
    Ok(success(
        StatusCode::OK,
        RevealedCode {
            app_id: app_id.to_string(),
            app_code: code.to_string(),
        },
    ))
}

/// `POST /admin/apps/{id}/reset-secret`.
#[utoipa::path(post, path = "/admin/apps/{id}/reset-secret", tag = "metering",
    summary = "Give an app a new AppKey and AppSecret (shown once); the old pair stops at once",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "The app id")),
    responses(
        (status = 200, description = "The new credentials", body = Envelope<NewAppSecret>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
        (status = 404, description = "No such app", body = Envelope<NoData>),
    ),
)]
pub async fn reset_secret(
    _: Admin,
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    let secret = state
        .app
        .reset_app_secret(&actor(&rid), &AppId::from(app))
        .await?;
    Ok(success(StatusCode::OK, secret))
}

/// Filters of the usage and history endpoints.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only this app (operator endpoints).
    pub app_id: Option<String>,
    /// From this day, `YYYY-MM-DD` (inclusive), in `metering.utc_offset_minutes`.
    pub from: Option<String>,
    /// To this day, `YYYY-MM-DD` (inclusive).
    pub to: Option<String>,
    /// Only this result code (1–8).
    pub result: Option<i64>,
    /// Only this HTTP status.
    pub status: Option<u16>,
    /// Only calls older than this id (the last `id` of the previous page).
    pub before: Option<i64>,
    /// Only the call answered with this taskNo.
    pub task_no: Option<String>,
    /// Page size (default 50, at most 500).
    pub limit: Option<u32>,
    /// `json` (default) or `csv` (every matching call, up to 100,000).
    pub format: Option<String>,
}

impl HistoryQuery {
    fn filter(&self) -> CallFilter {
        CallFilter {
            from: self.from.clone(),
            to: self.to.clone(),
            result: self.result,
            status: self.status,
            before: self.before,
            task_no: self.task_no.clone(),
            // Never from a URL: an ID number is personal data.
            id_number: None,
            limit: self.limit,
        }
    }
}

/// Pages of a CSV export read ahead of the client, at most: memory stays at a few pages
/// whatever the export's size, and a slow client slows the reads.
const CSV_PAGES_AHEAD: usize = 2;

/// A response body fed a page at a time by a task reading the export from the store. When
/// the client goes away the body is dropped, and the task stops at its next page. A read
/// that fails mid-way ends the body with an error, so the client sees a broken transfer,
/// never a short file that looks complete.
struct CsvBody(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl CsvBody {
    fn spawn(mut export: CallsCsv) -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(CSV_PAGES_AHEAD);
        tokio::spawn(async move {
            loop {
                let chunk = match export.next_chunk().await {
                    Ok(Some(chunk)) => Ok(Bytes::from(chunk)),
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "the calls export stopped");
                        Err(std::io::Error::other("the export could not be read"))
                    }
                };
                let failed = chunk.is_err();
                if tx.send(chunk).await.is_err() || failed {
                    return;
                }
            }
        });
        CsvBody(rx)
    }
}

impl HttpBody for CsvBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| c.map(hyper::body::Frame::data)))
    }
}

/// The calling app's own request, within its limit (`export`: a CSV export).
async fn admit_own(state: &AppState, caller: &Caller, export: bool) -> Result<(), ApiError> {
    Ok(state.app.admit_own_request(caller, export).await?)
}

async fn usage_of(
    state: &AppState,
    app: Option<&AppId>,
    q: &HistoryQuery,
) -> Result<Response, ApiError> {
    let usage = state
        .app
        .usage(app, q.from.as_deref(), q.to.as_deref())
        .await?;
    Ok(success(StatusCode::OK, usage))
}

async fn calls_of(
    state: &AppState,
    app: Option<&AppId>,
    q: &HistoryQuery,
) -> Result<Response, ApiError> {
    match q.format.as_deref() {
        None | Some("json") => Ok(success(
            StatusCode::OK,
            state.app.calls(app, &q.filter()).await?,
        )),
        Some("csv") => {
            let export = state.app.calls_csv_export(app, &q.filter())?;
            Ok((
                StatusCode::OK,
                [
                    (CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (CONTENT_DISPOSITION, "attachment; filename=\"calls.csv\""),
                ],
                Body::new(CsvBody::spawn(export)),
            )
                .into_response())
        }
        Some(_) => Err(ApiError::BadRequest("format must be json or csv".into())),
    }
}

/// `GET /admin/usage`.
#[utoipa::path(get, path = "/admin/usage", tag = "metering",
    summary = "Checks per day and result code (default: the last 30 days), of every app or one",
    security(("adminToken" = [])),
    params(HistoryQuery),
    responses(
        (status = 200, description = "Usage", body = Envelope<UsageView>),
        (status = 400, description = "Bad date or range", body = Envelope<NoData>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
        (status = 404, description = "No such app", body = Envelope<NoData>),
    ),
)]
pub async fn admin_usage(
    _: Admin,
    State(state): State<AppState>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    let app = q.app_id.clone().map(AppId::from);
    usage_of(&state, app.as_ref(), &q).await
}

/// `GET /admin/calls`.
#[utoipa::path(get, path = "/admin/calls", tag = "metering",
    summary = "Call history (调用结果), newest first, masked; JSON pages or CSV",
    security(("adminToken" = [])),
    params(HistoryQuery),
    responses(
        (status = 200, description = "Calls (or text/csv with format=csv)", body = Envelope<Vec<CallView>>),
        (status = 400, description = "Bad filter", body = Envelope<NoData>),
        (status = 401, description = "Missing or wrong admin token", body = Envelope<NoData>),
    ),
)]
pub async fn admin_calls(
    _: Admin,
    State(state): State<AppState>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    let app = q.app_id.clone().map(AppId::from);
    calls_of(&state, app.as_ref(), &q).await
}

/// `GET /v1/app/balance`.
#[utoipa::path(get, path = "/v1/app/balance", tag = "app",
    summary = "The calling app's balance",
    security(("appCode" = []), ("appKeySignature" = [])),
    responses(
        (status = 200, description = "Balance", body = Envelope<BalanceView>),
        (status = 400, description = "A signature that does not verify", body = Envelope<NoData>),
        (status = 403, description = "Missing, unknown or disabled credentials; or too many requests to the app's own endpoints (`Throttled by APP Flow Control`, with `Retry-After`)", body = Envelope<NoData>),
    ),
)]
pub async fn own_balance(
    Authenticated(caller): Authenticated,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    admit_own(&state, &caller, false).await?;
    Ok(success(
        StatusCode::OK,
        state.app.balance(&caller.app_id).await?,
    ))
}

/// `GET /v1/app/usage`.
#[utoipa::path(get, path = "/v1/app/usage", tag = "app",
    summary = "The calling app's checks per day and result code (default: the last 30 days)",
    security(("appCode" = []), ("appKeySignature" = [])),
    params(HistoryQuery),
    responses(
        (status = 200, description = "Usage", body = Envelope<UsageView>),
        (status = 400, description = "Bad date or range, or a signature that does not verify", body = Envelope<NoData>),
        (status = 403, description = "Missing, unknown or disabled credentials; or too many requests to the app's own endpoints (`Throttled by APP Flow Control`, with `Retry-After`)", body = Envelope<NoData>),
    ),
)]
pub async fn own_usage(
    Authenticated(caller): Authenticated,
    State(state): State<AppState>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    admit_own(&state, &caller, false).await?;
    if q.app_id.is_some() {
        return Err(ApiError::BadRequest(
            "app_id is the caller's own here".into(),
        ));
    }
    usage_of(&state, Some(&caller.app_id), &q).await
}

/// `GET /v1/app/calls`.
#[utoipa::path(get, path = "/v1/app/calls", tag = "app",
    summary = "The calling app's call history (调用结果), newest first, masked; JSON pages or CSV",
    security(("appCode" = []), ("appKeySignature" = [])),
    params(HistoryQuery),
    responses(
        (status = 200, description = "Calls (or text/csv with format=csv)", body = Envelope<Vec<CallView>>),
        (status = 400, description = "Bad filter, or a signature that does not verify", body = Envelope<NoData>),
        (status = 403, description = "Missing, unknown or disabled credentials; or too many requests to the app's own endpoints, or more than a CSV export a minute (`Throttled by APP Flow Control`, with `Retry-After`)", body = Envelope<NoData>),
    ),
)]
pub async fn own_calls(
    Authenticated(caller): Authenticated,
    State(state): State<AppState>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    admit_own(&state, &caller, q.format.as_deref() == Some("csv")).await?;
    if q.app_id.is_some() {
        return Err(ApiError::BadRequest(
            "app_id is the caller's own here".into(),
        ));
    }
    calls_of(&state, Some(&caller.app_id), &q).await
}
