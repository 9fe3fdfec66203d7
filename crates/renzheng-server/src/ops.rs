//! Operational endpoints: liveness, readiness, metrics, the OpenAPI description.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Envelope, NoData};
use crate::metrics::{Format, Scrape};
use crate::state::AppState;

/// The operational routes, documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi))
}

/// The answer of `/healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The answer of `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// Always `ready`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// The embedding model of the loaded engine.
    pub model_id: String,
    /// Engine jobs running now.
    pub engine_jobs_running: usize,
    /// Engine jobs waiting for a slot.
    pub engine_jobs_waiting: usize,
}

/// `GET /healthz`: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    summary = "Liveness",
    responses((status = 200, description = "The process answers", body = Health)),
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// `GET /readyz`: the engine is loaded and the database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    summary = "Readiness: the engine is loaded and the database answers",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready, and why", body = Envelope<NoData>),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    let app = &state.app;
    app.ping()
        .await
        .map_err(|e| ApiError::NotReady(format!("database: {e}")))?;
    let engine = app
        .loaded_engine()
        .ok_or_else(|| ApiError::NotReady("the face engine is not loaded".into()))?;
    Ok(Json(Readiness {
        status: "ready",
        model_id: engine.model_id().to_owned(),
        engine_jobs_running: app.gate().running(),
        engine_jobs_waiting: app.gate().waiting(),
    }))
}

/// `GET /metrics`: the metrics, in the format the scraper asks for (see
/// [`Format::negotiate`]). The process, build and quota figures are read now, for this
/// scrape.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    summary = "Prometheus metrics",
    description = "OpenMetrics 1.0.0 when `Accept` asks for `application/openmetrics-text` (as Prometheus does) at least as strongly as for `text/plain`; otherwise (`text/plain; version=0.0.4`, `*/*`, no `Accept`) the classic Prometheus text format 0.0.4. Counters, histograms and gauges of requests, latency, engine stages, refusals; the process (`process_*`, Linux); `renzheng_build_info{version,pack}`; `renzheng_app_quota_remaining{app_id}` per enabled app (metering on).",
    responses(
        (status = 200, description = "The metrics, in the negotiated format (`Vary: Accept`)",
            content(
                (String = "application/openmetrics-text"),
                (String = "text/plain"),
            ),
        ),
    ),
)]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    // Several Accept headers are one list (RFC 9110, 5.3).
    let accept = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let format = Format::negotiate(&accept);
    let scrape = Scrape::collect(&state.app).await;
    let mut response = state.metrics.render(&scrape, format).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    // The answer depends on Accept: a cache between the scraper and us must not hand
    // one format to a client that asked for the other.
    headers.insert(VARY, HeaderValue::from_static("accept"));
    response
}

/// The served OpenAPI document, rendered to JSON once at start-up.
#[derive(Debug, Clone)]
pub struct ApiDocument(pub Bytes);

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    summary = "This document (OpenAPI 3.1), generated from the handlers and the types they serialize",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json", body = Object)),
)]
pub async fn openapi(Extension(document): Extension<ApiDocument>) -> Response {
    ([(CONTENT_TYPE, "application/json")], document.0).into_response()
}
