//! `renzheng console …`: a password's hash for the configuration, and the operator
//! accounts (the way back in when the last owner is locked out).

use anyhow::Context;
use renzheng_app::operators::parse_role;
use renzheng_app::{Actor, App, AppError, Settings};

use super::{explain, with_app};
use crate::cli::{ConsoleCommand, OperatorsCommand};

/// Runs a `console` subcommand.
pub fn run(cmd: ConsoleCommand, settings: &Settings) -> anyhow::Result<()> {
    match cmd {
        ConsoleCommand::HashPassword => {
            let password = password_from_stdin()?;
            println!(
                "{}",
                renzheng_app::console::hash_password(&password).map_err(explain)?
            );
            Ok(())
        }
        ConsoleCommand::Operators(cmd) => {
            // Read before the database is opened: a command waiting for a password holds
            // no connection.
            let password = match &cmd {
                OperatorsCommand::Add { .. } | OperatorsCommand::SetPassword { .. } => {
                    Some(password_from_stdin()?)
                }
                _ => None,
            };
            with_app(settings, |app| async move {
                // The configured first owner, if no account exists yet: listed, and never
                // removed by a command that did not know of it.
                let result = match app.seed_first_owner().await {
                    Ok(()) => operators(&app, cmd, password).await,
                    Err(e) => Err(explain(e)),
                };
                (app, result)
            })
        }
    }
}

/// The first line of stdin without its line ending (never an argument: it would show in
/// `ps` and the shell's history).
fn password_from_stdin() -> anyhow::Result<zeroize::Zeroizing<String>> {
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let trimmed = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(trimmed);
    Ok(line)
}

async fn operators(
    app: &App,
    cmd: OperatorsCommand,
    password: Option<zeroize::Zeroizing<String>>,
) -> anyhow::Result<()> {
    let password = password.as_deref().map(String::as_str).unwrap_or_default();
    let named = |e: AppError, name: &str| match e {
        AppError::NotFound(_) => anyhow::anyhow!("no operator named {name:?}"),
        other => explain(other),
    };
    match cmd {
        OperatorsCommand::List { json } => {
            let list = app.operators().await.map_err(explain)?;
            if json {
                let rows: Vec<_> = list
                    .iter()
                    .map(|o| {
                        serde_json::json!({
                            "name": o.name,
                            "role": o.role.as_str(),
                            "created_at": o.created_at,
                            "updated_at": o.updated_at,
                            "two_step": o.two_step,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if list.is_empty() {
                println!(
                    "no operators: add one with `renzheng console operators add NAME --role owner`"
                );
            } else {
                for o in &list {
                    let two_step = if o.two_step { "\ttwo-step" } else { "" };
                    println!("{}\t{}{two_step}", o.name, o.role.as_str());
                }
            }
        }
        OperatorsCommand::Add { name, role } => {
            let role = parse_role(&role).map_err(explain)?;
            app.add_operator(&Actor::Cli, &name, role, password)
                .await
                .map_err(explain)?;
            println!("added operator {name} ({})", role.as_str());
        }
        OperatorsCommand::Remove { name } => {
            app.remove_operator(&Actor::Cli, &name)
                .await
                .map_err(|e| named(e, &name))?;
            println!("removed operator {name}; their sessions have ended");
        }
        OperatorsCommand::SetRole { name, role } => {
            let role = parse_role(&role).map_err(explain)?;
            app.set_operator_role(&Actor::Cli, &name, role)
                .await
                .map_err(|e| named(e, &name))?;
            println!("{name} is now {}", role.as_str());
        }
        OperatorsCommand::SetPassword { name } => {
            app.set_operator_password(&Actor::Cli, &name, password)
                .await
                .map_err(|e| named(e, &name))?;
            println!("password of {name} set; their sessions have ended");
        }
        OperatorsCommand::ResetTwoStep { name } => {
            app.reset_operator_totp(&Actor::Cli, &name)
                .await
                .map_err(|e| named(e, &name))?;
            println!("two-step sign-in of {name} is off; they sign in with their password");
        }
    }
    Ok(())
}
