//! What every handler shares. Handlers take the parts they need through `FromRef`, so the
//! extractors (`auth`) depend on those parts, not on this module.

use std::sync::Arc;

use axum::extract::FromRef;
use renzheng_app::App;

use crate::auth::AdminToken;
use crate::metrics::Metrics;

/// The router's state. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub app: Arc<App>,
    /// The admin API's bearer token (`None`: the admin API is off).
    pub admin_token: AdminToken,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Folder imports started from the console (their progress pages).
    pub imports: Arc<crate::import_jobs::ImportJobs>,
    /// Duplicate-face scans started from the console (their progress pages).
    pub duplicates: Arc<crate::import_jobs::DuplicateJobs>,
}

impl FromRef<AppState> for Arc<App> {
    fn from_ref(state: &AppState) -> Self {
        state.app.clone()
    }
}

impl FromRef<AppState> for AdminToken {
    fn from_ref(state: &AppState) -> Self {
        state.admin_token.clone()
    }
}
