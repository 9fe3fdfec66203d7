//! Renzheng's HTTP service: the only crate that knows HTTP and JSON. It translates; the
//! use cases live in `renzheng-app`.
//!
//! * [`check`] — `POST /faceidcard/check`, the Alibaba-compatible endpoint;
//! * [`admin`] — the admin API (registry, apps, audit, events) behind a bearer token;
//! * [`ops`] — `/healthz`, `/readyz`, `/metrics`, `/openapi.json`;
//! * [`signature`] — the Alibaba API-gateway AppKey/AppSecret request signature, pure;
//! * [`startup`] — the application, the router and its middleware, graceful shutdown;
//! * [`auth`], [`error`], [`metrics`], [`request_id`], [`state`] — the pieces around them.
//!
//! ```text
//! request ─▶ request_context (id, span, timeout, metrics) ─▶ route ─▶ handler
//!            handler: Authenticated ─▶ body ─▶ App::parse_check ─▶ App::verify ─▶ envelope
//! ```

#![deny(missing_docs)]

pub mod admin;
pub mod auth;
pub mod check;
pub mod error;
pub mod metering;
pub mod metrics;
mod middleware;
pub mod ops;
pub mod request_id;
mod serve;
pub mod signature;
pub mod startup;
pub mod state;

pub use error::ApiError;
pub use startup::{Application, StartupError};
pub use state::AppState;
