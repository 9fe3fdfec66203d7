//! Renzheng's HTTP service: the only crate that knows HTTP and JSON.
//!
//! * [`check`] — `POST /faceidcard/check`, the Alibaba-compatible endpoint;
//! * [`admin`] — the admin API (registry, apps, audit) behind a bearer token;
//! * [`ops`] — `/healthz`, `/readyz`, `/metrics`, `/openapi.json`;
//! * [`settings`] — the typed, layered configuration every command reads;
//! * [`startup`] — state, router, middleware, graceful shutdown;
//! * [`auth`], [`fetch`], [`gate`], [`keys`], [`metrics`], [`registry`], [`telemetry`] —
//!   the pieces around them.
//!
//! ```text
//! request ─▶ request_context (id, span, timeout, metrics) ─▶ route ─▶ handler
//!            handler: Authenticated ─▶ body ─▶ validate ─▶ store ─▶ fetch ─▶ gate ─▶ engine
//! ```

#![deny(missing_docs)]

pub mod admin;
pub mod auth;
pub mod check;
pub mod error;
pub mod fetch;
pub mod gate;
pub mod keys;
pub mod metrics;
pub mod ops;
pub mod registry;
pub mod request_id;
pub mod settings;
pub mod startup;
pub mod telemetry;

pub use error::ApiError;
pub use settings::Settings;
pub use startup::{AppState, Application, StartupError};
