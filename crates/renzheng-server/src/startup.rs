//! Building and running the application: state, router, middleware, graceful shutdown.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use renzheng_store::{SqliteStore, Store, StoreError};
use renzheng_vision::{Analysis, Engine, EngineError};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

use crate::auth::{AppCodeAuthenticator, Authenticator};
use crate::check::ResultLabel;
use crate::error::{ApiError, X_CA_REQUEST_ID};
use crate::fetch::Fetcher;
use crate::gate::EngineGate;
use crate::keys::{self, KeyError, PhotoCipher};
use crate::metrics::{Metrics, RequestLabels};
use crate::request_id::RequestId;
use crate::settings::{Settings, SettingsError};
use crate::telemetry::spawn_blocking_with_tracing;
use crate::{admin, check, ops};

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Bad configuration.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The database could not be opened or migrated.
    #[error("database {path}: {source}")]
    Store {
        /// The database file.
        path: String,
        /// The failure.
        source: StoreError,
    },
    /// The face engine could not be loaded.
    #[error("face engine: {0}")]
    Engine(#[from] EngineError),
    /// A key file is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The failure.
        source: std::io::Error,
    },
    /// The HTTP client for imgUrl could not be built.
    #[error("HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    /// A background task failed.
    #[error("start-up task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Everything handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The configuration in force.
    pub settings: Arc<Settings>,
    /// Storage.
    pub store: Arc<dyn Store>,
    /// The face engine.
    pub engine: Arc<Engine>,
    /// Who is calling.
    pub authenticator: Arc<dyn Authenticator>,
    /// The imgUrl fetcher.
    pub fetcher: Fetcher,
    /// Engine admission control.
    pub gate: Arc<EngineGate>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Key of the audit log's keyed hashes.
    pub audit_key: Arc<[u8]>,
    /// Encrypts kept enrolment photos (`keep_photos`).
    pub photo_cipher: Option<PhotoCipher>,
}

impl AppState {
    /// The 503 for a saturated engine (and its metric).
    pub fn busy(&self) -> ApiError {
        self.metrics.saturated();
        ApiError::Busy {
            retry_after_secs: self.settings.limits.retry_after_secs,
        }
    }

    /// Runs the engine on `bytes` within the gate, off the async runtime.
    pub async fn analyze(&self, bytes: Vec<u8>) -> Result<Analysis, ApiError> {
        let permit = self.gate.acquire().await.map_err(|_| self.busy())?;
        let engine = self.engine.clone();
        let analysed = spawn_blocking_with_tracing(move || {
            // Held by the blocking task: the slot is busy exactly as long as the CPU is.
            let _permit = permit;
            engine.analyze(&bytes)
        })
        .await
        .map_err(ApiError::internal)?;
        match analysed {
            Ok(analysis) => {
                self.metrics.observe_stages(&analysis.timings);
                Ok(analysis)
            }
            Err(EngineError::Image(e)) => Err(ApiError::InvalidImage(e.into())),
            Err(e) => Err(ApiError::internal(e)),
        }
    }
}

/// Opens the SQLite store of `settings`.
pub async fn open_store(settings: &Settings) -> Result<SqliteStore, StartupError> {
    let path = settings.database_path();
    SqliteStore::open(&path)
        .await
        .map_err(|source| StartupError::Store {
            path: path.display().to_string(),
            source,
        })
}

/// The audit hashing key: configured, or generated once in the data directory.
pub fn audit_key(settings: &Settings) -> Result<Vec<u8>, KeyError> {
    match &settings.audit_key {
        Some(key) => Ok(key.expose().as_bytes().to_vec()),
        None => keys::load_or_create_key(&settings.data_dir.join(keys::AUDIT_KEY_FILE)),
    }
}

/// The photo cipher when `keep_photos` is on.
pub fn photo_cipher(settings: &Settings) -> Result<Option<PhotoCipher>, KeyError> {
    if !settings.keep_photos {
        return Ok(None);
    }
    let key = keys::load_or_create_key(&settings.data_dir.join(keys::PHOTO_KEY_FILE))?;
    Ok(Some(PhotoCipher::new(&key)))
}

/// Loads the engine off the async runtime.
pub async fn load_engine(settings: &Settings) -> Result<Arc<Engine>, StartupError> {
    let config = settings.engine.clone();
    let engine = spawn_blocking_with_tracing(move || Engine::open(&config)).await??;
    Ok(Arc::new(engine))
}

/// A bound, ready-to-run application.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    /// Opens the store, loads the engine and binds the listener.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let engine = load_engine(&settings).await?;
        Self::build_with_engine(settings, engine).await
    }

    /// As [`build`](Self::build) with an engine already loaded (ONNX Runtime allows one
    /// environment per process, so tests share one).
    pub async fn build_with_engine(
        settings: Settings,
        engine: Arc<Engine>,
    ) -> Result<Self, StartupError> {
        settings.validate()?;
        // Decode the GB/T 2260 table now, so the first check does not pay for it.
        tokio::task::spawn_blocking(renzheng_domain::preload_region_table)
            .await
            .expect("loading the region table does not panic");
        let store: Arc<dyn Store> = Arc::new(open_store(&settings).await?);
        let audit_key: Arc<[u8]> = audit_key(&settings)?.into();
        let photo_cipher = photo_cipher(&settings)?;
        let fetcher = Fetcher::new(&settings.img_url, settings.limits.max_photo_bytes)?;
        let l = &settings.limits;
        let gate = Arc::new(EngineGate::new(
            l.max_engine_jobs,
            l.max_queued_jobs,
            l.queue_timeout(),
        ));
        let addr = settings.listen_addr()?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let state = AppState {
            authenticator: Arc::new(AppCodeAuthenticator::new(store.clone())),
            settings: Arc::new(settings),
            store,
            engine,
            fetcher,
            gate,
            metrics: Arc::new(Metrics::new()),
            audit_key,
            photo_cipher,
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

    /// The shared state (tests use its store and gate).
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
        let grace = Duration::from_millis(self.state.settings.limits.shutdown_grace_ms);
        tracing::info!(addr = %self.local_addr(), model_id = self.state.engine.model_id(), "listening");
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stopping_tx.send(());
        };
        let server = axum::serve(self.listener, self.router).with_graceful_shutdown(signal);
        let server = server.into_future();
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => result,
            () = async {
                let _ = stopping_rx.await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!("shutdown grace period over; abandoning remaining requests");
                Ok(())
            }
        }
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

/// The route template of a matched request, for logs and metrics.
#[derive(Debug, Clone)]
struct RouteLabel(String);

/// Builds the router over `state`.
pub fn router(state: AppState) -> Router {
    let limits = &state.settings.limits;
    let check_routes = Router::new()
        .route("/faceidcard/check", post(check::handler))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes));
    let admin_routes = Router::new()
        .route("/admin/persons", post(admin::enrol))
        .route(
            "/admin/persons/{id}",
            get(admin::show).delete(admin::remove),
        )
        .route("/admin/apps", post(admin::create_app).get(admin::list_apps))
        .route("/admin/apps/{id}/disable", post(admin::disable_app))
        .route("/admin/apps/{id}/enable", post(admin::enable_app))
        .route("/admin/audit", get(admin::audit))
        .layer(DefaultBodyLimit::max(limits.max_admin_body_bytes));
    let ops_routes = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi));
    Router::new()
        .merge(check_routes)
        .merge(admin_routes)
        .merge(ops_routes)
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

/// Records the matched route template on the span and the response. The raw path is
/// never logged: admin paths carry ID numbers.
async fn record_route(matched: MatchedPath, request: Request, next: Next) -> Response {
    let route = matched.as_str().to_owned();
    tracing::Span::current().record("route", route.as_str());
    let mut response = next.run(request).await;
    response.extensions_mut().insert(RouteLabel(route));
    response
}

/// Decrements the in-flight gauge however the request ends.
struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight().dec();
    }
}

/// Outermost middleware: request id (header, task-local, span), safety-net timeout,
/// access log and metrics.
async fn request_context(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let id = RequestId::generate();
    request.extensions_mut().insert(id.clone());
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route = tracing::field::Empty,
        app_id = tracing::field::Empty,
    );
    let started = Instant::now();
    state.metrics.in_flight().inc();
    let _in_flight = InFlight(state.metrics.clone());
    // Handlers enforce `request_timeout` themselves (so the check can still be audited);
    // this outer limit only catches what escapes them.
    let limit = state.settings.limits.request_timeout() + Duration::from_secs(5);
    let mut response = id
        .clone()
        .scope(
            async move {
                match tokio::time::timeout(limit, next.run(request)).await {
                    Ok(response) => response,
                    Err(_) => ApiError::Timeout.into_response(),
                }
            }
            .instrument(span.clone()),
        )
        .await;
    let elapsed = started.elapsed();
    let status = response.status();
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| "unmatched".into());
    let result = response
        .extensions()
        .get::<ResultLabel>()
        .map(|r| r.0.to_string())
        .unwrap_or_else(|| "none".into());
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            latency_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            "request finished"
        );
    });
    state.metrics.observe_request(
        RequestLabels {
            route,
            method: method.to_string(),
            status: status.as_u16(),
            result,
        },
        elapsed,
    );
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(X_CA_REQUEST_ID, value);
    }
    response
}
