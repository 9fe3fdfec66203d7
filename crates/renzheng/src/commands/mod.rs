//! The service-side commands: `serve`, `registry`, `apps`, `keys`, `compliance`,
//! `console`.

pub mod apps;
pub mod compliance;
pub mod config;
pub mod console;
pub mod duplicates;
pub mod keys;
pub mod registry;
pub mod serve;

use anyhow::Context;
use renzheng_app::{App, AppError, EngineSource, Settings};
use renzheng_vision::EngineConfig;

/// A tokio runtime for a command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The engine configuration, once the model pack is known to be installed. A missing pack
/// is an error that names the fix (`renzheng models install`): only that command downloads.
pub fn engine_config(settings: &Settings) -> anyhow::Result<EngineConfig> {
    let pack_dir = crate::vision_cli::models::require_installed(&settings.engine)?;
    Ok(EngineConfig {
        pack_dir: Some(pack_dir),
        ..settings.engine.clone()
    })
}

/// Opens the application for a command, runs `f`, closes the database. The engine is
/// loaded only if `f` needs it (a command that touches no photo needs no model pack).
pub fn with_app<F, Fut, T>(settings: &Settings, f: F) -> anyhow::Result<T>
where
    F: FnOnce(App) -> Fut,
    Fut: std::future::Future<Output = (App, anyhow::Result<T>)>,
{
    runtime()?.block_on(async {
        let engine = EngineSource::Pack(settings.engine.clone());
        let app = App::open(settings.clone(), engine)
            .await
            .context("opening the registry")?;
        let (app, result) = f(app).await;
        app.close().await;
        result
    })
}

/// `renzheng migrate`: opening the application migrates the schema and checks the keys.
pub fn migrate(settings: &Settings) -> anyhow::Result<()> {
    with_app(settings, |app| async move {
        println!("database {} is up to date", app.settings().database_label());
        (app, Ok(()))
    })
}

/// An application error as the command line says it: one line, the way an operator
/// reads it.
pub fn explain(e: AppError) -> anyhow::Error {
    match e {
        AppError::InvalidIdNumber(e) => anyhow::anyhow!("invalid ID number: {e}"),
        AppError::InvalidName(e) => anyhow::anyhow!("invalid name: {e}"),
        AppError::PortraitRefused { index, reason } => {
            anyhow::anyhow!("photo {index} refused: {reason}")
        }
        other => anyhow::Error::new(other),
    }
}
