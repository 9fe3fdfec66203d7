//! `renzheng`: the command-line entry point. Every command reads the same configuration
//! (defaults → `--config FILE` → `RENZHENG_*` environment) and exits 0 on success, or
//! non-zero with a one-line reason.

mod cli;
mod commands;
mod vision_cli;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use renzheng_app::settings::LogFormat;
use renzheng_app::telemetry::{get_subscriber, init_subscriber};
use renzheng_app::Settings;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    if let Some(pack) = cli.pack {
        settings.engine.pack = Some(pack);
    }
    if matches!(cli.command, Command::Serve) {
        // The service logs structured lines to stdout.
        init_subscriber(get_subscriber(
            &settings.log.filter,
            settings.log.format,
            std::io::stdout,
        ))
        .context("installing the log subscriber")?;
    } else {
        // Commands keep stdout for their output; only warnings go to stderr.
        init_subscriber(get_subscriber("warn", LogFormat::Pretty, std::io::stderr))
            .context("installing the log subscriber")?;
    }
    match cli.command {
        Command::Serve => commands::serve::run(settings),
        Command::Openapi => commands::serve::print_openapi(&settings),
        Command::Migrate => commands::migrate(&settings),
        Command::Registry(cmd) => commands::registry::run(cmd, &settings),
        Command::Apps(cmd) => commands::apps::run(cmd, &settings),
        Command::Packages(cmd) => commands::apps::run_packages(cmd, &settings),
        Command::Console(cmd) => commands::console::run(cmd, &settings),
        Command::Config(cmd) => commands::config::run(cmd, &settings, cli.config.as_deref()),
        Command::Keys(cmd) => commands::keys::run(cmd, &settings),
        Command::Compliance(cmd) => commands::compliance::run(cmd, &settings),
        Command::Models(args) => vision_cli::models::run(&args, &settings.engine),
        Command::Compare(args) => vision_cli::compare::run(&args, &settings.engine),
        Command::Eval(args) => vision_cli::eval::run(&args, &settings.engine),
        Command::Calibrate(args) => vision_cli::calibrate::run(&args, &settings.engine),
        Command::Bench(args) => vision_cli::bench::run(&args, &settings.engine),
    }
}
