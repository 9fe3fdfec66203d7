//! The connection loop: hyper with a timer, so that hostile clients cannot hold the
//! server's connections (and file descriptors).
//!
//! `axum::serve` runs hyper without a timer, which silently disables hyper's header-read
//! timeout: a client dribbling one header byte every few seconds keeps its connection
//! forever, and a thousand of them exhaust the descriptors. Here:
//! - every HTTP/1 connection has `limits.header_read_timeout_ms` to send each request's
//!   headers; hyper starts that clock whenever it waits for a request, so it is also the
//!   idle keep-alive timeout;
//! - HTTP/2 connections are pinged and dropped when the peer stops answering;
//! - at most `limits.max_connections` connections are open; the next client waits in the
//!   listen backlog until one closes;
//! - an `accept` error (e.g. out of descriptors) is logged and retried after a pause
//!   instead of spinning.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use renzheng_app::settings::Limits;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Serves `router` on `listener` until `shutdown` completes, then lets open connections
/// finish their requests for at most `grace`.
pub(crate) async fn serve<F>(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    shutdown: F,
    grace: Duration,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout())
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_read_timeout())
        .keep_alive_timeout(limits.header_read_timeout());
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        // A slot first: at the cap, clients wait in the kernel's backlog, not in memory.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; pausing");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service =
            TowerToHyperService::new(router.clone().map_request(
                |request: hyper::Request<Incoming>| request.map(axum::body::Body::new),
            ));
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Errors here are the client's (reset, timeout, bad framing): nothing to log
            // above debug.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }

    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; abandoning remaining requests");
    }
}
