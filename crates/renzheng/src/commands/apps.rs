//! `renzheng apps create|list|disable|enable`.

use renzheng_app::{Actor, App, AppError, AppName, Settings};
use renzheng_store::AppId;

use super::{explain, with_app};
use crate::cli::AppsCommand;

/// Runs an `apps` subcommand.
pub fn run(cmd: AppsCommand, settings: &Settings) -> anyhow::Result<()> {
    with_app(settings, |app| async move {
        let result = dispatch(cmd, &app).await;
        (app, result)
    })
}

async fn dispatch(cmd: AppsCommand, app: &App) -> anyhow::Result<()> {
    match cmd {
        AppsCommand::Create { name, json } => {
            let name = AppName::parse(&name).map_err(explain)?;
            let created = app.create_app(&Actor::Cli, &name).await.map_err(explain)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"app_id": created.app_id, "app_code": created.app_code})
                );
            } else {
                println!("app_id:   {}", created.app_id);
                println!("app_code: {}", created.app_code);
                println!("Keep the AppCode now: it is stored hashed and cannot be shown again.");
                println!("Callers send it as: Authorization: APPCODE <app_code>");
            }
        }
        AppsCommand::List { json } => {
            let apps = app.list_apps().await.map_err(explain)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&apps).expect("app views serialise")
                );
            } else if apps.is_empty() {
                println!("no apps (create one with `renzheng apps create --name NAME`)");
            } else {
                for a in apps {
                    let state = if a.enabled { "enabled" } else { "disabled" };
                    println!("{}  {:<8}  {}", a.app_id, state, a.name);
                }
            }
        }
        AppsCommand::Disable { app_id } => switch(app, app_id, false).await?,
        AppsCommand::Enable { app_id } => switch(app, app_id, true).await?,
    }
    Ok(())
}

async fn switch(app: &App, app_id: String, enabled: bool) -> anyhow::Result<()> {
    match app
        .set_app_enabled(&Actor::Cli, &AppId::from(app_id.clone()), enabled)
        .await
    {
        Ok(()) => {
            println!("{app_id} {}", if enabled { "enabled" } else { "disabled" });
            Ok(())
        }
        Err(AppError::NotFound(_)) => anyhow::bail!("no app with id {app_id}"),
        Err(e) => Err(explain(e)),
    }
}
