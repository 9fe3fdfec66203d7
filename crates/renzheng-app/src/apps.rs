//! The apps that may call the check endpoint, and the one rule for their names.

use renzheng_store::{AppCode, AppCodeHash, AppId, StoreError};
use serde::Serialize;

use crate::audit::Actor;
use crate::{App, AppError};

/// Longest app name, in characters.
const MAX_APP_NAME_CHARS: usize = 100;

/// An app's display name: trimmed, 1 to 100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppName(String);

impl AppName {
    /// Parses a name.
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > MAX_APP_NAME_CHARS {
            return Err(AppError::InvalidAppName(format!(
                "name must be 1 to {MAX_APP_NAME_CHARS} characters"
            )));
        }
        Ok(AppName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who is calling the check endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The app's id.
    pub app_id: AppId,
    /// The app's display name.
    pub app_name: String,
}

/// A new app with its AppCode in clear: the only time the code is shown.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedApp {
    /// The app's id.
    pub app_id: String,
    /// The AppCode, in clear, once.
    pub app_code: String,
    /// Display name.
    pub name: String,
}

/// An app, for listing.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppView {
    /// The app's id.
    pub app_id: String,
    /// Display name.
    pub name: String,
    /// Whether it may call.
    pub enabled: bool,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
}

impl App {
    /// Creates an enabled app and returns its AppCode (stored only as a hash).
    pub async fn create_app(&self, actor: &Actor, name: &AppName) -> Result<CreatedApp, AppError> {
        let (code, hash) = AppCode::generate_with_hash();
        let app = self.store.create_app(name.as_str(), &hash).await?;
        tracing::info!(app_id = %app.id, "app created");
        let mut event = self.event(actor, "app.created");
        event.app_id = Some(app.id.clone());
        self.record_event(event).await;
        Ok(CreatedApp {
            app_id: app.id.to_string(),
            app_code: code.expose().to_owned(),
            name: app.name,
        })
    }

    /// Every app, oldest first.
    pub async fn list_apps(&self) -> Result<Vec<AppView>, AppError> {
        Ok(self
            .store
            .list_apps()
            .await?
            .into_iter()
            .map(|a| AppView {
                app_id: a.id.to_string(),
                name: a.name,
                enabled: a.enabled,
                created_at: a.created_at,
            })
            .collect())
    }

    /// Enables or disables an app; [`AppError::NotFound`] when there is no such app.
    pub async fn set_app_enabled(
        &self,
        actor: &Actor,
        app_id: &AppId,
        enabled: bool,
    ) -> Result<(), AppError> {
        match self.store.set_app_enabled(app_id, enabled).await {
            Ok(()) => {}
            Err(StoreError::NotFound(_)) => return Err(AppError::NotFound("app")),
            Err(e) => return Err(e.into()),
        }
        let action = if enabled {
            "app.enabled"
        } else {
            "app.disabled"
        };
        let mut event = self.event(actor, action);
        event.app_id = Some(app_id.clone());
        self.record_event(event).await;
        Ok(())
    }

    /// The enabled app whose AppCode is `code`, if any. Unknown and disabled codes are
    /// the same `None`, so that probing learns nothing.
    pub async fn authenticate_app_code(&self, code: &str) -> Result<Option<Caller>, AppError> {
        Ok(self
            .store
            .find_app_by_code_hash(&AppCodeHash::of(code))
            .await?
            .filter(|app| app.enabled)
            .map(|app| Caller {
                app_id: app.id,
                app_name: app.name,
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_are_trimmed_and_bounded() {
        assert_eq!(AppName::parse("  shop ").unwrap().as_str(), "shop");
        assert!(AppName::parse("   ").is_err());
        assert!(AppName::parse(&"名".repeat(100)).is_ok());
        assert!(AppName::parse(&"名".repeat(101)).is_err());
    }
}
