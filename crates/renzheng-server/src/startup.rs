//! Building and running the server: the application, the router with its middleware, the
//! listener, graceful shutdown.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::middleware;
use axum::response::IntoResponse;
use axum::{Extension, Router};
use renzheng_app::settings::{Limits, SettingsError};
use renzheng_app::{App, AppError, EngineSource, OpenError, Settings};
use renzheng_vision::FaceEngine;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::auth::AdminToken;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::middleware::{record_route, request_context};
use crate::ops::ApiDocument;
use crate::state::AppState;
use crate::{admin, check, metering, ops};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Bad configuration.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The application (database, keys, imgUrl client) could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The face engine could not be loaded.
    #[error("{0}")]
    Engine(AppError),
    /// The registry's templates could not be read into the duplicate-face index.
    #[error("reading the registry's templates: {0}")]
    Registry(AppError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The failure.
        source: std::io::Error,
    },
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    /// Opens the application, loads the engine from the configured pack and binds the
    /// listener.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let engine = EngineSource::Pack(settings.engine.clone());
        Self::build_with(settings, engine).await
    }

    /// As [`build`](Self::build) with an engine already loaded (ONNX Runtime allows one
    /// environment per process, so tests share one) or a test engine.
    pub async fn build_with_engine(
        settings: Settings,
        engine: Arc<dyn FaceEngine>,
    ) -> Result<Self, StartupError> {
        Self::build_with(settings, EngineSource::Ready(engine)).await
    }

    async fn build_with(settings: Settings, engine: EngineSource) -> Result<Self, StartupError> {
        settings.validate()?;
        // Decode the GB/T 2260 table now, so the first check does not pay for it.
        tokio::task::spawn_blocking(renzheng_domain::preload_region_table)
            .await
            .expect("loading the region table does not panic");
        let addr = settings.listen_addr()?;
        let admin_token = AdminToken(settings.admin_token.clone());
        let metrics = Arc::new(Metrics::new());
        let app = App::open(settings, engine)
            .await?
            .with_observer(metrics.clone());
        // A server answers checks: it loads the engine before it listens, never on the
        // first request.
        app.engine().await.map_err(StartupError::Engine)?;
        // The registry's template index too: the first enrolment does not build it.
        let index = app
            .warm_template_index()
            .await
            .map_err(StartupError::Registry)?;
        tracing::info!(
            templates = index.templates,
            memory_bytes = index.memory_bytes,
            "duplicate-face index ready"
        );
        warn_about_unembedded_persons(&app).await;
        let listener =
            crate::serve::bind(addr).map_err(|source| StartupError::Bind { addr, source })?;
        let app = Arc::new(app);
        let state = AppState {
            admin_token,
            app,
            metrics,
            imports: Arc::default(),
            duplicates: Arc::default(),
        };
        let router = router(state.clone());
        Ok(Application {
            listener,
            router,
            state,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The shared state (tests use its application).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests (bounded by
    /// `limits.shutdown_grace_ms`).
    pub async fn run_until<F>(self, shutdown: F) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let app = &self.state.app;
        let grace = Duration::from_millis(app.settings().limits.shutdown_grace_ms);
        let model_id = app
            .loaded_engine()
            .map(|e| e.model_id().to_owned())
            .unwrap_or_default();
        tracing::info!(addr = %self.local_addr(), model_id, "listening");
        let limits = app.settings().limits.clone();
        // Background upkeep: retention (audit, processing records, registry) and the
        // filing line, lapsed quota holds and expired counters,
        // balance alerts, key records. Each loops until the server stops.
        let upkeep = [
            tokio::spawn({
                let app = app.clone();
                async move { app.run_retention().await }
            }),
            tokio::spawn({
                let app = app.clone();
                async move { app.run_metering_upkeep().await }
            }),
            tokio::spawn({
                let app = app.clone();
                async move { app.run_alerts().await }
            }),
            // A key rotation run elsewhere (`renzheng keys rotate`) is followed here.
            tokio::spawn({
                let app = app.clone();
                async move { app.run_key_refresh().await }
            }),
        ];
        crate::serve::serve(self.listener, self.router, &limits, shutdown, grace).await;
        app.settle_abandoned(Duration::from_secs(5)).await;
        for task in upkeep {
            task.abort();
        }
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Every route with its documentation: each HTTP module's documented router. A route
/// can only be added through `routes!` on a `#[utoipa::path]` handler, so the document
/// describes exactly what is served.
pub fn routes(limits: &Limits) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(check::router(limits))
        .merge(admin::router(limits))
        .merge(metering::router())
        .merge(ops::router())
}

/// The document's fixed parts: title, description, security schemes, tags.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Renzheng",
        description = "Self-hosted face ↔ ID-card verification, compatible with the Alibaba Cloud API Market product 人脸身份证比对V2 (POST /faceidcard/check). Every response carries X-Ca-Request-Id, equal to taskNo in the body; error responses carry X-Ca-Error-Code and X-Ca-Error-Message.",
    ),
    // Relative: "the host that served this document". The service knows only the address
    // it binds (often 0.0.0.0, or a port a proxy hides), not the one its callers use, so
    // an absolute URL from `listen` would be wrong behind any proxy; "/" is right on every
    // host and is what generators and proxies accept (a client is given its base URL).
    servers((url = "/", description = "The host that served this document")),
    modifiers(&SecuritySchemes),
    tags(
        (name = "check", description = "The Alibaba-compatible verification endpoint (AppCode or AppKey signature; only 2xx answers use quota)"),
        (name = "admin", description = "Registry and apps (admin bearer token; off unless configured)"),
        (name = "metering", description = "Packages, grants, balances, policies, usage and call history (admin bearer token)"),
        (name = "app", description = "The calling app's own balance, usage and call history (AppCode or signature)"),
        (name = "ops", description = "Health, readiness, metrics and this document"),
    ),
)]
struct ApiDoc;

/// `appCode` (`Authorization: APPCODE <code>`) and `adminToken` (bearer).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "appCode",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "APPCODE <code>",
            ))),
        );
        components.add_security_scheme(
            "appKeySignature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Ca-Signature",
                "The API gateway's AppKey/AppSecret signature: X-Ca-Key, X-Ca-Signature (base64 HmacSHA256 or HmacSHA1 of the string-to-sign), X-Ca-Signature-Method, X-Ca-Timestamp (epoch ms, within 15 minutes), X-Ca-Nonce (once), X-Ca-Signature-Headers, Content-MD5",
            ))),
        );
        components.add_security_scheme(
            "adminToken",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document of [`routes`], in the shapes client generators read
/// ([`for_generators`]), with the configured photo limit written into the check body's
/// field descriptions.
pub fn openapi_document(limits: &Limits) -> serde_json::Value {
    let (_, api) = routes(limits).split_for_parts();
    document_with_limits(api, limits)
}

fn document_with_limits(api: utoipa::openapi::OpenApi, limits: &Limits) -> serde_json::Value {
    let mut doc = serde_json::to_value(&api).expect("an OpenAPI document serializes");
    for_generators(&mut doc);
    let photo_limit = human_bytes(limits.max_photo_bytes);
    // The check's body in each of its encodings.
    for schema in ["CheckBody", "CheckForm"] {
        for (field, note) in [
            ("image", format!("At most {photo_limit} decoded.")),
            ("imgUrl", format!("At most {photo_limit}.")),
        ] {
            let pointer = format!("/components/schemas/{schema}/properties/{field}/description");
            if let Some(serde_json::Value::String(text)) = doc.pointer_mut(&pointer) {
                text.push(' ');
                text.push_str(&note);
            }
        }
    }
    doc
}

/// Rewrites three things utoipa writes into the shapes client generators read; each keeps
/// what the document says:
/// * a tuple's `items: false` (nothing past its `prefixItems`) becomes `minItems` and
///   `maxItems`: openapi-python-client cannot parse a boolean schema, and fails on the
///   whole document;
/// * a generic's argument, which utoipa copies inline (the `data` of `Envelope<CheckData>`
///   is a copy of `CheckData`), becomes a `$ref` to the component it copies, so that a
///   generator makes one type for it rather than one per envelope;
/// * every property of a schema that only responses use is required. Serde writes every
///   field of our response types, `null` for a `None` (none uses `skip_serializing_if`),
///   but utoipa lists an `Option` as optional, and a generator then types the field
///   "maybe absent" as well as "maybe null". A schema that a request also uses keeps
///   utoipa's reading: there an `Option` may be left out.
fn for_generators(doc: &mut Value) {
    close_tuples(doc);
    refer_to_copies(doc);
    let mut in_requests = BTreeSet::new();
    let mut in_responses = BTreeSet::new();
    if let Some(paths) = doc["paths"].as_object() {
        for operation in paths
            .values()
            .filter_map(Value::as_object)
            .flat_map(|item| item.values())
        {
            referenced(doc, &operation["requestBody"], &mut in_requests);
            referenced(doc, &operation["parameters"], &mut in_requests);
            referenced(doc, &operation["responses"], &mut in_responses);
        }
    }
    for name in in_responses.difference(&in_requests) {
        if let Some(schema) = doc.pointer_mut(&format!("/components/schemas/{name}")) {
            require_all(schema);
        }
    }
    // Schemas written inline in a response.
    if let Some(paths) = doc["paths"].as_object_mut() {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut() {
                require_all(&mut operation["responses"]);
            }
        }
    }
}

/// `items: false` beside `prefixItems` → `minItems` = `maxItems` = their number.
fn close_tuples(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let tuple = map
                .get("prefixItems")
                .and_then(Value::as_array)
                .map(Vec::len);
            if let (Some(Value::Bool(false)), Some(len)) = (map.get("items"), tuple) {
                map.remove("items");
                map.insert("minItems".into(), len.into());
                map.insert("maxItems".into(), len.into());
            }
            map.values_mut().for_each(close_tuples);
        }
        Value::Array(items) => items.iter_mut().for_each(close_tuples),
        _ => {}
    }
}

/// Replaces each inline copy of a component object schema, anywhere below the
/// components' roots and in the paths, by a `$ref` to that component.
fn refer_to_copies(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    else {
        return;
    };
    // Objects only: a copy of a scalar schema is no type of its own to a generator.
    let models: Vec<(String, Value)> = schemas
        .iter()
        .filter(|(_, schema)| schema.get("properties").is_some() || schema.get("allOf").is_some())
        .map(|(name, schema)| (name.clone(), schema.clone()))
        .collect();
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for schema in schemas.values_mut() {
            replace_copies(schema, &models);
        }
    }
    replace_copies(&mut doc["paths"], &models);
}

/// [`refer_to_copies`] below `value` (not `value` itself).
fn replace_copies(value: &mut Value, models: &[(String, Value)]) {
    let children: Vec<&mut Value> = match value {
        Value::Object(map) => map.values_mut().collect(),
        Value::Array(items) => items.iter_mut().collect(),
        _ => return,
    };
    for child in children {
        match models.iter().find(|(_, model)| *model == *child) {
            Some((name, _)) => *child = json!({ "$ref": format!("#/components/schemas/{name}") }),
            None => replace_copies(child, models),
        }
    }
}

/// Adds to `names` every component `value` refers to, directly or through others.
fn referenced(doc: &Value, value: &Value, names: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                let name = reference.trim_start_matches("#/components/schemas/");
                if names.insert(name.to_owned()) {
                    if let Some(schema) = doc.pointer(&format!("/components/schemas/{name}")) {
                        referenced(doc, schema, names);
                    }
                }
            }
            map.values()
                .for_each(|member| referenced(doc, member, names));
        }
        Value::Array(items) => items.iter().for_each(|item| referenced(doc, item, names)),
        _ => {}
    }
}

/// Lists every property of every object schema in `value` (itself and the inline ones
/// below it) as required.
fn require_all(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let names: Vec<String> = map
                .get("properties")
                .and_then(Value::as_object)
                .map(|properties| properties.keys().cloned().collect())
                .unwrap_or_default();
            if !names.is_empty() {
                let required = map.entry("required").or_insert_with(|| json!([]));
                if let Value::Array(required) = required {
                    for name in names {
                        if !required.iter().any(|r| r == name.as_str()) {
                            required.push(name.into());
                        }
                    }
                }
            }
            map.values_mut().for_each(require_all);
        }
        Value::Array(items) => items.iter_mut().for_each(require_all),
        _ => {}
    }
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

/// Builds the router over `state`: each HTTP module's routes, then the middleware.
pub fn router(state: AppState) -> Router {
    let limits = &state.app.settings().limits;
    let (routes, api) = routes(limits).split_for_parts();
    let document =
        serde_json::to_vec(&document_with_limits(api, limits)).expect("a JSON value serializes");
    routes
        .layer(Extension(ApiDocument(document.into())))
        // The console is HTML for people: outside the API document.
        .merge(crate::console::router(limits.max_admin_body_bytes))
        .route_layer(middleware::from_fn(record_route))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // Inside the request context, so a panic's 500 still carries the request id.
        .layer(CatchPanicLayer::custom(|_panic| {
            ApiError::internal("a handler panicked").into_response()
        }))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .with_state(state)
}

/// Switching model packs must not silently turn a registry into result 5: say at start-up
/// how many persons have no embedding of the active pack, who (masked), and the fix.
async fn warn_about_unembedded_persons(app: &App) {
    match app.persons_without_embeddings().await {
        Ok((model_id, ids)) if !ids.is_empty() => {
            let shown: Vec<String> = ids.iter().take(20).map(ToString::to_string).collect();
            tracing::warn!(
                model_id,
                persons = ids.len(),
                first = %shown.join(" "),
                "persons enrolled with another model pack have no embedding of the active one: \
                 their checks answer 5; run `renzheng registry reembed` (kept photos) or \
                 `renzheng registry reembed --from DIR`"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not check the registry's embeddings"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_photo_bytes: usize) -> Limits {
        let mut settings = Settings::default();
        settings.limits.max_photo_bytes = max_photo_bytes;
        settings.limits
    }

    #[test]
    fn photo_limit_follows_the_configuration() {
        let document = openapi_document(&limits(512 * 1024));
        // In both encodings of the check's body.
        for schema in ["CheckBody", "CheckForm"] {
            let image = &document["components"]["schemas"][schema]["properties"]["image"];
            let text = image["description"].as_str().unwrap();
            assert!(
                text.ends_with("At most 512 KB decoded."),
                "{schema}: {text}"
            );
        }
        let doc = document.to_string();
        assert!(!doc.contains("1 MB"));
        assert_eq!(human_bytes(1024 * 1024), "1 MB");
        assert_eq!(human_bytes(1000), "1000 bytes");
    }

    #[test]
    fn every_operation_is_secured_tagged_and_answers_errors_with_the_envelope() {
        let doc = openapi_document(&limits(1 << 20));
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() >= 12, "{paths:?}");
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                assert!(op["tags"].is_array(), "{method} {path} has no tag");
                let wants_auth = path.starts_with("/admin")
                    || path.starts_with("/v1/app/")
                    || path == "/faceidcard/check";
                assert_eq!(op["security"].is_array(), wants_auth, "{method} {path}");
                for (status, response) in op["responses"].as_object().unwrap() {
                    if !status.starts_with('2') {
                        let mut schema = &response["content"]["application/json"]["schema"];
                        if let Some(reference) = schema["$ref"].as_str() {
                            let name = reference.trim_start_matches("#/components/schemas/");
                            schema = &doc["components"]["schemas"][name];
                        }
                        assert!(
                            schema["properties"]["taskNo"].is_object(),
                            "{method} {path} {status}: {schema}"
                        );
                    }
                }
            }
        }
        // Every schema a response refers to is in the document.
        let text = doc.to_string();
        for reference in text.split("\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{name} missing"
            );
        }
    }
}
