//! `renzheng apps create|list|disable|enable`.

use anyhow::{bail, Context};
use renzheng_server::startup::open_store;
use renzheng_server::Settings;
use renzheng_store::{AppCode, AppId, Store, StoreError};

use crate::cli::AppsCommand;

/// Runs an `apps` subcommand.
pub fn run(cmd: AppsCommand, settings: &Settings) -> anyhow::Result<()> {
    super::runtime()?.block_on(async {
        let store = open_store(settings).await?;
        let result = dispatch(cmd, &store).await;
        store.close().await;
        result
    })
}

async fn dispatch(cmd: AppsCommand, store: &dyn Store) -> anyhow::Result<()> {
    match cmd {
        AppsCommand::Create { name, json } => {
            let name = name.trim();
            if name.is_empty() {
                bail!("the app name must not be empty");
            }
            let (code, hash) = AppCode::generate_with_hash();
            let app = store
                .create_app(name, &hash)
                .await
                .context("creating the app")?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"app_id": app.id.as_str(), "app_code": code.expose()})
                );
            } else {
                println!("app_id:   {}", app.id);
                println!("app_code: {}", code.expose());
                println!("Keep the AppCode now: it is stored hashed and cannot be shown again.");
                println!("Callers send it as: Authorization: APPCODE <app_code>");
            }
        }
        AppsCommand::List { json } => {
            let apps = store.list_apps().await.context("listing apps")?;
            if json {
                let list: Vec<_> = apps
                    .iter()
                    .map(|a| {
                        serde_json::json!({"app_id": a.id.as_str(), "name": a.name, "enabled": a.enabled, "created_at": a.created_at})
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else if apps.is_empty() {
                println!("no apps (create one with `renzheng apps create --name NAME`)");
            } else {
                for a in apps {
                    let state = if a.enabled { "enabled" } else { "disabled" };
                    println!("{}  {:<8}  {}", a.id, state, a.name);
                }
            }
        }
        AppsCommand::Disable { app_id } => switch(store, app_id, false).await?,
        AppsCommand::Enable { app_id } => switch(store, app_id, true).await?,
    }
    Ok(())
}

async fn switch(store: &dyn Store, app_id: String, enabled: bool) -> anyhow::Result<()> {
    match store
        .set_app_enabled(&AppId::from(app_id.clone()), enabled)
        .await
    {
        Ok(()) => {
            println!("{app_id} {}", if enabled { "enabled" } else { "disabled" });
            Ok(())
        }
        Err(StoreError::NotFound(_)) => bail!("no app with id {app_id}"),
        Err(e) => Err(e).context("updating the app"),
    }
}
