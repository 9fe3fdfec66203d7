//! `renzheng serve` and `renzheng openapi`.

use anyhow::Context;
use renzheng_app::Settings;
use renzheng_server::Application;

/// Starts the service on the installed model pack and serves until SIGTERM / Ctrl-C.
pub fn run(mut settings: Settings) -> anyhow::Result<()> {
    settings.engine = super::engine_config(&settings)?;
    super::runtime()?.block_on(async move {
        let app = Application::build(settings)
            .await
            .context("starting the service")?;
        app.run_until_stopped().await.context("serving")
    })
}

/// Prints the OpenAPI document of the service as configured (the photo limit is part of it).
pub fn print_openapi(settings: &Settings) -> anyhow::Result<()> {
    let document = renzheng_server::startup::openapi_document(&settings.limits);
    println!("{}", serde_json::to_string_pretty(&document)?);
    Ok(())
}
