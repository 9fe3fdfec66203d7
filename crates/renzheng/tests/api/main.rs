//! Black-box API suite: the real server (real SQLite, real models, real photos from
//! `../shared/faces`) on a free port. One test binary, so the engine loads once.

mod admin;
mod cli;
mod compat;
mod compliance;
mod console;
mod email;
mod helpers;
mod hostile_clients;
mod img_url;
mod keys;
mod metering;
mod openapi_client;
mod ops;
mod pii;
mod portraits;
mod postgres;
mod registry_integrity;
mod results;
mod signatures;
mod validation;
