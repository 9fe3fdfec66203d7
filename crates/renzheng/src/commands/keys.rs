//! `renzheng keys …`: making, rotating and retiring the keys, and their state.

use std::time::Duration;

use anyhow::{anyhow, Context};
use renzheng_app::keys::{self, KeyName};
use renzheng_app::rotation::short;
use renzheng_app::Settings;

use super::{explain, with_app};
use crate::cli::KeysCommand;

fn key_name(name: &str) -> anyhow::Result<KeyName> {
    KeyName::parse(name)
        .ok_or_else(|| anyhow!("unknown key {name:?}: template, secrets or photo (the audit key is not rotated, see SECURITY.md)"))
}

/// Runs `renzheng keys …`.
pub fn run(cmd: KeysCommand, settings: &Settings) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::New { key } => {
            let name = key_name(&key)?;
            let bytes = keys::new_key();
            println!("{}", hex::encode(&*bytes));
            eprintln!(
                "a new {name} key, fingerprint {}: give it to every node as RENZHENG_{} (next_{name}_key), then run `renzheng keys rotate {name}` once",
                keys::fingerprint(&bytes),
                name.next_env()
            );
            Ok(())
        }
        KeysCommand::Rotate { key, grace } => {
            let name = key_name(&key)?;
            if !(0.0..=3600.0).contains(&grace) {
                return Err(anyhow!("--grace must be between 0 and 3600 seconds"));
            }
            with_app(settings, |app| async move {
                let progress = |line: String| eprintln!("{line}");
                let result = app
                    .rotate_key(name, Duration::from_secs_f64(grace), &progress)
                    .await
                    .map_err(explain)
                    .map(|s| {
                        println!(
                            "rotated the {} key {}… → {}… in {:.1} s: {} persons, {} templates, {} AppSecrets, {} photos re-sealed; the previous key is kept until `renzheng keys retire {}`",
                            s.key,
                            short(&s.from),
                            short(&s.to),
                            s.seconds,
                            s.persons,
                            s.templates,
                            s.secrets,
                            s.photos,
                            s.key
                        );
                    });
                (app, result)
            })
        }
        KeysCommand::Retire { key } => {
            let name = key_name(&key)?;
            with_app(settings, |app| async move {
                let result = app.retire_key(name).await.map_err(explain).map(|fp| {
                    println!(
                        "retired the previous {name} key {}…: nodes holding only it refuse to start",
                        short(&fp)
                    );
                });
                (app, result)
            })
        }
        KeysCommand::Status { json } => with_app(settings, |app| async move {
            let result = app.key_status().await.map_err(explain).and_then(|status| {
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&status).context("serializing")?
                    );
                } else {
                    for key in &status {
                        let shown = |fp: &Option<String>| {
                            fp.as_deref()
                                .map_or("-".to_owned(), |f| format!("{}…", short(f)))
                        };
                        println!(
                            "{:<9} current {}  previous {}  retired {}  rows under other keys {}",
                            key.key,
                            shown(&key.current),
                            shown(&key.previous),
                            key.retired.len(),
                            key.rows_under_other_keys
                        );
                        for held in &key.held {
                            println!(
                                "          holds {}… ({}) from {}",
                                short(&held.fingerprint),
                                held.role,
                                held.source
                            );
                        }
                    }
                }
                Ok(())
            });
            (app, result)
        }),
    }
}
