//! Operational endpoints: liveness, readiness, metrics, the OpenAPI description.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// The operational routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the engine is loaded and the database answers.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let app = &state.app;
    app.ping()
        .await
        .map_err(|e| ApiError::NotReady(format!("database: {e}")))?;
    let engine = app
        .loaded_engine()
        .ok_or_else(|| ApiError::NotReady("the face engine is not loaded".into()))?;
    Ok(Json(json!({
        "status": "ready",
        "model_id": engine.model_id(),
        "engine_jobs_running": app.gate().running(),
        "engine_jobs_waiting": app.gate().waiting(),
    })))
}

/// `GET /metrics`: Prometheus/OpenMetrics text.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// `GET /openapi.json`.
pub async fn openapi(State(state): State<AppState>) -> Response {
    let max_photo_bytes = state.app.settings().limits.max_photo_bytes;
    (StatusCode::OK, Json(openapi_document(max_photo_bytes))).into_response()
}

/// The OpenAPI 3.0 description of every endpoint, with the photo limit in force.
pub fn openapi_document(max_photo_bytes: usize) -> serde_json::Value {
    let photo_limit = human_bytes(max_photo_bytes);
    let error = json!({"$ref": "#/components/responses/Error"});
    let admin_security = json!([{"adminToken": []}]);
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Renzheng",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Self-hosted face ↔ ID-card verification, compatible with the Alibaba Cloud API Market product 人脸身份证比对V2 (POST /faceidcard/check). Every response carries X-Ca-Request-Id, equal to taskNo in the body; error responses carry X-Ca-Error-Code and X-Ca-Error-Message."
        },
        "components": {
            "securitySchemes": {
                "appCode": {"type": "apiKey", "in": "header", "name": "Authorization", "description": "APPCODE <code>"},
                "adminToken": {"type": "http", "scheme": "bearer"}
            },
            "schemas": {
                "CheckRequest": {
                    "type": "object",
                    "required": ["name", "idCard"],
                    "properties": {
                        "name": {"type": "string", "description": "姓名"},
                        "idCard": {"type": "string", "description": "身份证号 (18 characters, or a legacy 15-digit number)"},
                        "image": {"type": "string", "description": format!("Photo as base64, optionally a data: URI; at most {photo_limit} decoded. Wins over imgUrl.")},
                        "imgUrl": {"type": "string", "description": format!("http(s) URL of the photo, at most {photo_limit}; non-public addresses are refused")}
                    }
                },
                "CheckData": {
                    "type": "object",
                    "properties": {
                        "result": {"type": "integer", "enum": [1,2,3,4,5,6,7,8], "description": "1 same person, 2 can't tell, 3 different, 4 name/ID mismatch, 5 no portrait on record, 6 no face detected, 7 no such ID, 8 photo quality unqualified"},
                        "desc": {"type": "string"},
                        "score": {"type": "number", "nullable": true, "description": "Similarity in [0,1], results 1-3 only"},
                        "thresholds": {"type": "object", "nullable": true, "properties": {"same": {"type": "number"}, "different": {"type": "number"}}},
                        "sex": {"type": "string", "enum": ["男", "女"]},
                        "birthday": {"type": "string", "example": "19900307"},
                        "address": {"type": "string"},
                        "quality": {"type": "object", "nullable": true, "properties": {"passed": {"type": "boolean"}, "issues": {"type": "array", "items": {"type": "string"}}, "reasons": {"type": "array", "items": {"type": "string"}}}},
                        "faces": {"type": "integer", "nullable": true}
                    }
                },
                "Envelope": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "integer"},
                        "success": {"type": "boolean"},
                        "msg": {"type": "string"},
                        "taskNo": {"type": "string"},
                        "data": {"nullable": true}
                    }
                },
                "Enrolment": {
                    "type": "object",
                    "required": ["name", "idCard"],
                    "properties": {
                        "name": {"type": "string"},
                        "idCard": {"type": "string"},
                        "photos": {"type": "array", "items": {"type": "string", "description": "base64"}}
                    }
                }
            },
            "responses": {
                "Error": {
                    "description": "Error envelope (success: false) with X-Ca-Error-Code / X-Ca-Error-Message headers",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}
                }
            }
        },
        "paths": {
            "/faceidcard/check": {"post": {
                "summary": "Verify a photo against the registry portrait of an ID number",
                "security": [{"appCode": []}],
                "requestBody": {"required": true, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/CheckRequest"}},
                    "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/CheckRequest"}}
                }},
                "responses": {
                    "200": {"description": "A result 1-8 in data", "content": {"application/json": {"schema": {"allOf": [{"$ref": "#/components/schemas/Envelope"}, {"properties": {"data": {"$ref": "#/components/schemas/CheckData"}}}]}}}},
                    "400": error, "403": error, "413": error, "415": error, "503": error, "504": error, "500": error
                }
            }},
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
            "/readyz": {"get": {"summary": "Readiness: engine loaded and database reachable", "responses": {"200": {"description": "ready"}, "503": error}}},
            "/metrics": {"get": {"summary": "Prometheus metrics (OpenMetrics text)", "responses": {"200": {"description": "metrics"}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3"}}}},
            "/admin/persons": {"post": {
                "summary": "Enrol a person (JSON with base64 photos, or multipart with name, idCard and photo files)",
                "security": admin_security,
                "requestBody": {"content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Enrolment"}},
                    "multipart/form-data": {"schema": {"type": "object", "properties": {"name": {"type": "string"}, "idCard": {"type": "string"}, "photo": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}
                }},
                "responses": {"201": {"description": "Enrolled (masked view)"}, "400": error, "401": error, "404": error, "413": error}
            }},
            "/admin/persons/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": {"summary": "Show a person, masked", "security": admin_security, "responses": {"200": {"description": "Masked view"}, "404": error}},
                "delete": {"summary": "Remove a person and everything about them", "security": admin_security, "responses": {"200": {"description": "Removed"}, "404": error}}
            },
            "/admin/apps": {
                "post": {"summary": "Create an app; the AppCode is shown only in this answer", "security": admin_security,
                         "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {"name": {"type": "string"}}}}}},
                         "responses": {"201": {"description": "{app_id, app_code, name}"}}},
                "get": {"summary": "List apps", "security": admin_security, "responses": {"200": {"description": "Apps"}}}
            },
            "/admin/apps/{id}/disable": {"post": {"summary": "Disable an app", "security": admin_security,
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "Disabled"}, "404": error}}},
            "/admin/apps/{id}/enable": {"post": {"summary": "Enable an app", "security": admin_security,
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "Enabled"}, "404": error}}},
            "/admin/audit": {"get": {"summary": "Latest audit records (masked)", "security": admin_security,
                "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "Records, newest first"}}}},
            "/admin/events": {"get": {"summary": "Latest operator events: every enrolment, removal and app change, by whom (cli or admin-api)", "security": admin_security,
                "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "Events, newest first"}}}}
        }
    })
}

/// `1048576` → `1 MB`; other sizes in KB or bytes, as the product's page writes them.
fn human_bytes(bytes: usize) -> String {
    const MB: usize = 1024 * 1024;
    if bytes.is_multiple_of(MB) {
        format!("{} MB", bytes / MB)
    } else if bytes.is_multiple_of(1024) {
        format!("{} KB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photo_limit_follows_the_configuration() {
        let doc = openapi_document(512 * 1024).to_string();
        assert!(doc.contains("at most 512 KB decoded"), "{doc}");
        assert!(!doc.contains("1 MB"));
        assert_eq!(human_bytes(1024 * 1024), "1 MB");
        assert_eq!(human_bytes(1000), "1000 bytes");
    }
}
