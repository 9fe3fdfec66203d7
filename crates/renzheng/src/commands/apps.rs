//! `renzheng apps create|list|disable|enable|grant|revoke-grant|adjust-grant|usage|show-code|reset-code|reset-secret|policy`
//! and `renzheng packages list|set`.

use renzheng_app::{
    Actor, App, AppError, AppName, GrantAdjustment, GrantRequest, GrantView, PackageView,
    PolicyView, Settings,
};
use renzheng_store::AppId;

use super::{explain, with_app};
use crate::cli::{AppsCommand, PackagesCommand};

/// Runs a `packages` subcommand.
pub fn run_packages(cmd: PackagesCommand, settings: &Settings) -> anyhow::Result<()> {
    with_app(settings, |app| async move {
        let result = packages(cmd, &app).await;
        (app, result)
    })
}

async fn packages(cmd: PackagesCommand, app: &App) -> anyhow::Result<()> {
    match cmd {
        PackagesCommand::List { json } => {
            let packages = app.packages().await.map_err(explain)?;
            if json {
                println!("{}", serde_json::to_string(&packages)?);
            } else {
                for p in packages {
                    let valid = p
                        .valid_days
                        .map_or("no expiry".to_owned(), |d| format!("{d} days"));
                    let state = if p.active { "" } else { "  (retired)" };
                    println!(
                        "{:<10} {:>8} calls  {:>10.2} 元  {:<10}  {}{state}",
                        p.name,
                        p.calls,
                        p.price_fen as f64 / 100.0,
                        valid,
                        p.title
                    );
                }
            }
        }
        PackagesCommand::Set {
            name,
            title,
            calls,
            price_fen,
            valid_days,
            retired,
        } => {
            let saved = app
                .put_package(
                    &Actor::Cli,
                    PackageView {
                        name,
                        title,
                        calls,
                        price_fen,
                        valid_days,
                        active: !retired,
                    },
                )
                .await
                .map_err(explain)?;
            println!("{}", serde_json::to_string(&saved)?);
        }
    }
    Ok(())
}

/// Runs an `apps` subcommand.
pub fn run(cmd: AppsCommand, settings: &Settings) -> anyhow::Result<()> {
    with_app(settings, |app| async move {
        let result = dispatch(cmd, &app).await;
        (app, result)
    })
}

async fn dispatch(cmd: AppsCommand, app: &App) -> anyhow::Result<()> {
    match cmd {
        AppsCommand::Create { name, json } => create(app, &name, json).await,
        AppsCommand::List { json } => list(app, json).await,
        AppsCommand::Disable { app_id } => switch(app, app_id, false).await,
        AppsCommand::Enable { app_id } => switch(app, app_id, true).await,
        AppsCommand::Grant {
            app_id,
            package,
            calls,
            expires_at,
            json,
        } => {
            let grant = GrantArgs {
                package,
                calls,
                expires_at,
            };
            self::grant(app, &app_id, grant, json).await
        }
        AppsCommand::RevokeGrant {
            app_id,
            grant_id,
            json,
        } => {
            let id = AppId::from(app_id.clone());
            let revoked = app.revoke_grant(&Actor::Cli, &id, grant_id).await;
            let grant = revoked.map_err(|e| grant_not_found(e, &app_id, grant_id))?;
            print_changed_grant(app, &id, &grant, "revoked", json).await
        }
        AppsCommand::AdjustGrant {
            app_id,
            grant_id,
            calls,
            expires_at,
            never_expires,
            json,
        } => {
            let expires_at = expires_at
                .map(|d| app.end_of_day_ms(&d))
                .transpose()
                .map_err(explain)?;
            let adjustment = GrantAdjustment {
                calls,
                expires_at,
                never_expires,
            };
            let id = AppId::from(app_id.clone());
            let adjusted = app
                .adjust_grant(&Actor::Cli, &id, grant_id, adjustment)
                .await;
            let grant = adjusted.map_err(|e| grant_not_found(e, &app_id, grant_id))?;
            print_changed_grant(app, &id, &grant, "adjusted", json).await
        }
        AppsCommand::Usage {
            app_id,
            from,
            to,
            json,
        } => usage(app, &app_id, from.as_deref(), to.as_deref(), json).await,
        AppsCommand::ShowCode { app_id, json } => show_code(app, &app_id, json).await,
        AppsCommand::ResetCode {
            app_id,
            grace_seconds,
            json,
        } => reset_code(app, &app_id, grace_seconds, json).await,
        AppsCommand::ResetSecret { app_id, json } => reset_secret(app, &app_id, json).await,
        AppsCommand::Policy {
            app_id,
            rate,
            burst,
            alert_percent,
            webhook,
            alert_emails,
        } => {
            let policy = PolicyView {
                rate_per_sec: rate,
                rate_burst: burst,
                alert_percent,
                webhook_url: webhook,
                alert_emails,
            };
            self::policy(app, &app_id, policy).await
        }
    }
}

async fn create(app: &App, name: &str, json: bool) -> anyhow::Result<()> {
    let name = AppName::parse(name).map_err(explain)?;
    let created = app.create_app(&Actor::Cli, &name).await.map_err(explain)?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "app_id": created.app_id,
                "app_code": created.app_code,
                "app_key": created.app_key,
                "app_secret": created.app_secret,
            })
        );
        return Ok(());
    }
    println!("app_id:     {}", created.app_id);
    println!("app_code:   {}", created.app_code);
    println!("app_key:    {}", created.app_key);
    println!("app_secret: {}", created.app_secret);
    println!("Keep the AppCode and AppSecret now: they cannot be shown again.");
    println!("Callers send: Authorization: APPCODE <app_code>, or sign with the key and secret.");
    println!(
        "The app has no calls yet: renzheng apps grant {} --package trial",
        created.app_id
    );
    Ok(())
}

async fn list(app: &App, json: bool) -> anyhow::Result<()> {
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
    Ok(())
}

/// What `apps grant` was asked for, before the expiry date is resolved.
struct GrantArgs {
    package: Option<String>,
    calls: Option<i64>,
    expires_at: Option<String>,
}

async fn grant(app: &App, app_id: &str, args: GrantArgs, json: bool) -> anyhow::Result<()> {
    let expires_at = args
        .expires_at
        .map(|d| app.end_of_day_ms(&d))
        .transpose()
        .map_err(explain)?;
    let id = AppId::from(app_id.to_owned());
    let request = GrantRequest {
        package: args.package,
        calls: args.calls,
        expires_at,
    };
    let grant = app
        .grant(&Actor::Cli, &id, request)
        .await
        .map_err(|e| not_found(e, app_id))?;
    if json {
        println!("{}", serde_json::to_string(&grant)?);
    } else {
        let balance = app.balance(&id).await.map_err(explain)?;
        println!(
            "granted {} calls to {app_id} (grant {}); remaining {}",
            grant.calls, grant.grant_id, balance.remaining
        );
    }
    Ok(())
}

async fn usage(
    app: &App,
    app_id: &str,
    from: Option<&str>,
    to: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let id = AppId::from(app_id.to_owned());
    let balance = app.balance(&id).await.map_err(|e| not_found(e, app_id))?;
    let usage = app.usage(Some(&id), from, to).await.map_err(explain)?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "app_id": app_id,
                "remaining": balance.remaining,
                "purchased": balance.purchased,
                // Every charge of the app, whatever the period.
                "charged": balance.charged,
                "reserved": balance.reserved,
                "grants": balance.grants,
                "ledger": balance.ledger,
                "period": {"calls": usage.calls, "charged": usage.charged},
                "days": usage.days,
            })
        );
        return Ok(());
    }
    println!(
        "{app_id}: remaining {} of {} bought; charged {} in all",
        balance.remaining, balance.purchased, balance.charged
    );
    for d in usage.days {
        println!(
            "{}  calls {:>6}  charged {:>6}  errors {:>5}  results {:?}",
            d.date, d.calls, d.charged, d.errors, d.results
        );
    }
    Ok(())
}

async fn show_code(app: &App, app_id: &str, json: bool) -> anyhow::Result<()> {
    let code = match app
        .reveal_app_code(&Actor::Cli, &AppId::from(app_id.to_owned()))
        .await
    {
        Ok(code) => code,
        Err(AppError::CodeNotViewable) => anyhow::bail!(
            "the AppCode of {app_id} was issued before codes were kept and only its hash is \
             stored: `renzheng apps reset-code {app_id} --grace-seconds N` issues one that can \
             be shown again"
        ),
        Err(e) => return Err(not_found(e, app_id)),
    };
    if json {
        println!(
            "{}",
            serde_json::json!({ "app_id": app_id, "app_code": code.as_str() })
        );
    } else {
        println!("app_code: {}", code.as_str());
    }
    Ok(())
}

async fn reset_code(app: &App, app_id: &str, grace_seconds: i64, json: bool) -> anyhow::Result<()> {
    let code = app
        .reset_app_code(
            &Actor::Cli,
            &AppId::from(app_id.to_owned()),
            grace_seconds.saturating_mul(1000),
        )
        .await
        .map_err(|e| not_found(e, app_id))?;
    if json {
        println!("{}", serde_json::to_string(&code)?);
        return Ok(());
    }
    println!("app_code: {}", code.app_code);
    match code.previous_valid_until {
        Some(_) => println!("The old AppCode works for {grace_seconds} more seconds."),
        None => println!("The old AppCode no longer works."),
    }
    Ok(())
}

async fn reset_secret(app: &App, app_id: &str, json: bool) -> anyhow::Result<()> {
    let secret = app
        .reset_app_secret(&Actor::Cli, &AppId::from(app_id.to_owned()))
        .await
        .map_err(|e| not_found(e, app_id))?;
    if json {
        println!("{}", serde_json::to_string(&secret)?);
    } else {
        println!("app_key:    {}", secret.app_key);
        println!("app_secret: {}", secret.app_secret);
    }
    Ok(())
}

async fn policy(app: &App, app_id: &str, policy: PolicyView) -> anyhow::Result<()> {
    let view = app
        .set_app_policy(&Actor::Cli, &AppId::from(app_id.to_owned()), policy)
        .await
        .map_err(|e| not_found(e, app_id))?;
    println!("{}", serde_json::to_string(&view.policy)?);
    Ok(())
}

fn grant_not_found(e: AppError, app_id: &str, grant_id: i64) -> anyhow::Error {
    match e {
        AppError::NotFound("grant") => anyhow::anyhow!("{app_id} has no grant {grant_id}"),
        e => not_found(e, app_id),
    }
}

async fn print_changed_grant(
    app: &App,
    id: &AppId,
    grant: &GrantView,
    what: &str,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(grant)?);
        return Ok(());
    }
    let balance = app.balance(id).await.map_err(explain)?;
    let expires = grant.expires_at.map_or_else(
        || "never".to_owned(),
        |at| renzheng_app::metering::iso_time(at, app.settings().metering.utc_offset_minutes),
    );
    println!(
        "grant {} of {id} {what}: {} calls, {} used, expires {expires}; remaining {}",
        grant.grant_id, grant.calls, grant.used, balance.remaining
    );
    Ok(())
}

fn not_found(e: AppError, app_id: &str) -> anyhow::Error {
    match e {
        AppError::NotFound("app") => anyhow::anyhow!("no app with id {app_id}"),
        e => explain(e),
    }
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
