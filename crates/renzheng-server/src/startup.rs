//! Building and running the server: the application, the router with its middleware, the
//! listener, graceful shutdown.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::middleware;
use axum::response::IntoResponse;
use axum::Router;
use renzheng_app::settings::SettingsError;
use renzheng_app::{App, AppError, EngineSource, OpenError, Settings};
use renzheng_vision::FaceEngine;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::auth::{AdminToken, AppCodeAuthenticator};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::middleware::{record_route, request_context};
use crate::state::AppState;
use crate::{admin, check, ops};

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
        warn_about_unembedded_persons(&app).await;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let app = Arc::new(app);
        let state = AppState {
            authenticator: Arc::new(AppCodeAuthenticator::new(app.clone())),
            admin_token,
            app,
            metrics,
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

/// Builds the router over `state`: each HTTP module's routes, then the middleware.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(check::router(&state))
        .merge(admin::router(&state))
        .merge(ops::router())
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
