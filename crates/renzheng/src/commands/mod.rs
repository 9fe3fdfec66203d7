//! The service-side commands: `serve`, `registry`, `apps`.

pub mod apps;
pub mod registry;
pub mod serve;

use anyhow::Context;
use renzheng_server::Settings;
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
        pack_dir,
        ..settings.engine.clone()
    })
}
