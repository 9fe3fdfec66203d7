//! `renzheng serve`.

use anyhow::Context;
use renzheng_server::{Application, Settings};

/// Installs the models if needed, starts the service and serves until SIGTERM / Ctrl-C.
pub fn run(mut settings: Settings) -> anyhow::Result<()> {
    settings.engine = super::engine_config(&settings)?;
    super::runtime()?.block_on(async move {
        let app = Application::build(settings)
            .await
            .context("starting the service")?;
        app.run_until_stopped().await.context("serving")
    })
}
