//! The middleware around every route: the request id (header, task-local, span), the
//! access log, metrics, and a safety-net timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::check::ResultLabel;
use crate::error::{ApiError, X_CA_REQUEST_ID};
use crate::metrics::{method_label, Metrics, RequestLabels};
use crate::request_id::RequestId;
use crate::state::AppState;

/// The route template of a matched request, for logs and metrics.
#[derive(Debug, Clone)]
pub(crate) struct RouteLabel(String);

/// Records the matched route template on the span and the response. The raw path is
/// never logged: admin paths carry ID numbers.
pub(crate) async fn record_route(matched: MatchedPath, request: Request, next: Next) -> Response {
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
pub(crate) async fn request_context(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let id = RequestId::generate();
    request.extensions_mut().insert(id.clone());
    // Every label and log field is bounded: the method is folded, the route is the
    // matched template (or `unmatched`), the status and result are ours.
    let method = method_label(request.method());
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
    let limit = state.app.settings().limits.request_timeout() + Duration::from_secs(5);
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
            method: method.to_owned(),
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
