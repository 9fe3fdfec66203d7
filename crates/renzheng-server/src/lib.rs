//! Renzheng's HTTP service: the only crate that knows HTTP and JSON. It translates; the
//! use cases live in `renzheng-app`.
//!
//! * [`check`] — `POST /faceidcard/check`, the Alibaba-compatible endpoint;
//! * [`admin`] — the admin API (registry, apps, audit, events) behind a bearer token;
//! * [`metering`] — packages, grants, balances, policies, usage and call history, for the
//!   operator (`/admin/…`) and for the calling app (`/v1/app/…`);
//! * [`console`] — the operator console at `/console` (server-rendered HTML);
//! * [`ops`] — `/healthz`, `/readyz`, `/metrics`, `/openapi.json`;
//! * [`signature`] — the Alibaba API-gateway AppKey/AppSecret request signature, pure;
//! * [`startup`] — the application, the router and its middleware, graceful shutdown;
//! * [`auth`], [`error`], [`metrics`], [`request_id`], [`state`], [`import_jobs`] (the
//!   console's background jobs: folder imports, duplicate-face scans) — the pieces around
//!   them.
//!
//! ```text
//! request ─▶ request_context (id, span, timeout, metrics) ─▶ route ─▶ handler
//!            check: a CheckTicket of the app: authenticate (head) ─▶ signature (body) ─▶
//!                   admit (rate, quota) ─▶ run (parse, per-ID limit, verify) ─▶ finish
//!                   (one record: charged for an answer, else given back) ─▶ envelope
//! ```

#![deny(missing_docs)]

pub mod admin;
pub mod auth;
pub mod check;
pub mod console;
pub mod error;
pub mod import_jobs;
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
