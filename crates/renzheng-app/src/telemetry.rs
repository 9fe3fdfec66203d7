//! Logging set-up and the one helper that carries a span onto the blocking pool.
//!
//! Logs never contain a clear name, ID number, photo or embedding: handlers only ever log
//! the domain types, whose `Display`/`Debug` are masked, and spans carry the route
//! template (`/admin/apps/{id}`), never the raw path.

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Registry};

use crate::settings::LogFormat;

/// Builds a subscriber writing to `sink` in `format`, filtered by `RUST_LOG` when set, else
/// by `filter`.
pub fn get_subscriber<Sink>(
    filter: &str,
    format: LogFormat,
    sink: Sink,
) -> Box<dyn Subscriber + Send + Sync>
where
    Sink: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let env_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    match format {
        LogFormat::Json => Box::new(
            Registry::default().with(env_filter).with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_target(true)
                    .with_writer(sink),
            ),
        ),
        LogFormat::Pretty => Box::new(
            Registry::default().with(env_filter).with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_writer(sink),
            ),
        ),
    }
}

/// Installs `subscriber` as the global default (once per process).
pub fn init_subscriber(
    subscriber: Box<dyn Subscriber + Send + Sync>,
) -> Result<(), tracing::subscriber::SetGlobalDefaultError> {
    tracing::subscriber::set_global_default(subscriber)
}

/// `tokio::task::spawn_blocking`, with the caller's span entered on the blocking thread so
/// that the engine's log lines keep the request id.
pub fn spawn_blocking_with_tracing<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
}
