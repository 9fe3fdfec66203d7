//! `renzheng registry add|import|reembed|remove|show`.
//!
//! Output never shows a name or ID number in clear: people are printed masked, and photo
//! file names (which are ID numbers) are printed with their ID part masked.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use indicatif::{ProgressBar, ProgressStyle};
use renzheng_app::{Actor, AppError, EnrolFields, EnrolRequest, PersonView, Settings};
use renzheng_domain::IdNumber;

use super::{explain, with_app};
use crate::cli::RegistryCommand;

/// `registry export --out FILE`.
fn export(settings: &Settings, out: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(out)
        .with_context(|| format!("creating {} (it must not exist)", out.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    let result = with_app(settings, |app| async move {
        let result = app.export_registry(&mut writer).await.map_err(explain);
        (app, result)
    });
    match result {
        Ok(count) => {
            println!("exported {count} persons to {}", out.display());
            Ok(())
        }
        Err(e) => {
            // Half a registry is not an export.
            let _ = std::fs::remove_file(out);
            Err(e)
        }
    }
}

/// `registry import FILE` of a `registry export` file.
fn import_export(settings: &Settings, file: &Path, json: bool) -> anyhow::Result<()> {
    let reader =
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut reader = std::io::BufReader::new(reader);
    with_app(settings, |app| async move {
        let result = app
            .import_registry(&Actor::Cli, &mut reader)
            .await
            .map_err(explain)
            .map(|summary| {
                if json {
                    println!("{}", serde_json::to_string(&summary).expect("serializes"));
                } else {
                    println!(
                        "imported {} persons ({} already present, left as they were)",
                        summary.imported, summary.already_present
                    );
                }
            });
        (app, result)
    })
}

/// Runs a `registry` subcommand.
pub fn run(cmd: RegistryCommand, settings: &Settings) -> anyhow::Result<()> {
    match cmd {
        RegistryCommand::Add {
            name,
            id_number,
            photos,
            json,
        } => {
            let mut stdin = Stdin::new();
            let name = stdin.or_read(name, "name")?;
            let id_number = stdin.or_read(id_number, "ID number")?;
            add(settings, name, id_number, &photos, json)
        }
        RegistryCommand::Import { dir, csv, json } if dir.is_file() && csv.is_none() => {
            import_export(settings, &dir, json)
        }
        RegistryCommand::Import { dir, csv, json } => import(settings, &dir, csv.as_deref(), json),
        RegistryCommand::Export { out } => export(settings, &out),
        RegistryCommand::Reembed {
            from: Some(dir),
            csv,
            json,
        } => import(settings, &dir, csv.as_deref(), json),
        RegistryCommand::Reembed {
            from: None,
            csv: _,
            json,
        } => reembed(settings, json),
        RegistryCommand::Remove { id_number } => {
            let id = parse_id(&Stdin::new().or_read(id_number, "ID number")?)?;
            with_app(settings, |app| async move {
                let result = match app.remove_person(&Actor::Cli, &id).await {
                    Ok(()) => {
                        println!("removed {id}");
                        Ok(())
                    }
                    Err(AppError::NotFound(_)) => {
                        Err(anyhow!("no person with ID number {id} in the registry"))
                    }
                    Err(e) => Err(explain(e)),
                };
                (app, result)
            })
        }
        RegistryCommand::Show { id_number, json } => {
            let id = parse_id(&Stdin::new().or_read(id_number, "ID number")?)?;
            with_app(settings, |app| async move {
                let result = match app.person(&id).await {
                    Ok(Some(view)) => {
                        print_person(&view, json);
                        Ok(())
                    }
                    Ok(None) => Err(anyhow!("no person with ID number {id} in the registry")),
                    Err(e) => Err(explain(e)),
                };
                (app, result)
            })
        }
    }
}

/// Personal data read from standard input, one value a line, instead of the command line
/// (where `ps` and the shell's history would show it). On a terminal, each value is
/// asked for by name on stderr.
struct Stdin {
    lines: std::io::Lines<std::io::StdinLock<'static>>,
    terminal: bool,
}

impl Stdin {
    fn new() -> Self {
        use std::io::{BufRead, IsTerminal};
        let stdin = std::io::stdin();
        Stdin {
            terminal: stdin.is_terminal(),
            lines: stdin.lock().lines(),
        }
    }

    /// `given`, or the next line of standard input.
    fn or_read(&mut self, given: Option<String>, what: &str) -> anyhow::Result<String> {
        if let Some(value) = given {
            return Ok(value);
        }
        if self.terminal {
            eprint!("{what}: ");
        }
        let line = self
            .lines
            .next()
            .transpose()
            .context("reading standard input")?
            .ok_or_else(|| {
                anyhow!("no {what} given: pass it as an argument or on standard input")
            })?;
        Ok(line.trim().to_owned())
    }
}

/// Re-embeds from kept photos; lists (masked) who still needs a re-import.
fn reembed(settings: &Settings, json: bool) -> anyhow::Result<()> {
    let summary = with_app(settings, |app| async move {
        let result = app.reembed(&Actor::Cli).await.map_err(explain);
        (app, result)
    })?;
    if json {
        println!(
            "{}",
            serde_json::to_string(&summary).expect("a summary serialises")
        );
        return Ok(());
    }
    println!(
        "{} person(s) lacked embeddings of {}; {} re-embedded from kept photos ({} portrait(s))",
        summary.missing, summary.model_id, summary.reembedded, summary.portraits
    );
    for id in &summary.without_photo {
        println!("  {id}: no kept photo; re-import with `renzheng registry reembed --from DIR`");
    }
    for id in &summary.refused {
        println!("  {id}: no kept photo is usable with this pack; enrol a new portrait");
    }
    Ok(())
}

fn parse_id(raw: &str) -> anyhow::Result<IdNumber> {
    IdNumber::parse(raw).map_err(|e| anyhow!("invalid ID number: {e}"))
}

fn print_person(view: &PersonView, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(view).expect("a view serialises")
        );
    } else {
        println!("id_number: {}", view.id_number);
        println!("name:      {}", view.name);
        println!("portraits: {}", view.portraits.len());
        for p in &view.portraits {
            println!(
                "  #{} model {}{}",
                p.id,
                p.model_id,
                if p.has_photo { " (photo kept)" } else { "" }
            );
        }
    }
}

fn add(
    settings: &Settings,
    name: String,
    id_number: String,
    photos: &[PathBuf],
    json: bool,
) -> anyhow::Result<()> {
    let mut request = EnrolRequest::parse(EnrolFields {
        name: Some(name),
        id_card: Some(id_number),
        photos: Vec::new(),
    })
    .map_err(explain)?;
    for path in photos {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        request.photos.push(bytes);
    }
    with_app(settings, |app| async move {
        let result = match app.enrol(&Actor::Cli, request).await {
            Ok(view) => {
                if json {
                    print_person(&view, true);
                } else {
                    println!(
                        "enrolled {} ({}) with {} portrait(s)",
                        view.id_number,
                        view.name,
                        view.portraits.len()
                    );
                }
                Ok(())
            }
            Err(AppError::PortraitRefused { index, reason }) => Err(anyhow!(
                "photo {} refused: {reason}",
                photos_label(photos, index)
            )),
            Err(e) => Err(explain(e)),
        };
        (app, result)
    })
}

/// The file the operator named for the `index`-th (1-based) photo.
fn photos_label(photos: &[PathBuf], index: usize) -> String {
    photos
        .get(index.saturating_sub(1))
        .map_or_else(|| index.to_string(), |p| p.display().to_string())
}

fn import(settings: &Settings, dir: &Path, csv: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let summary = with_app(settings, |app| {
        let bar = bar.clone();
        async move {
            let result = app
                .import_folder(&Actor::Cli, dir, csv, |p| {
                    bar.set_length(p.total as u64);
                    bar.set_position(p.done as u64);
                    bar.set_message(p.current.clone());
                })
                .await
                .map_err(explain);
            (app, result)
        }
    })?;
    bar.finish_and_clear();

    if json {
        println!(
            "{}",
            serde_json::to_string(&summary).expect("a summary serialises")
        );
    } else {
        println!(
            "imported {} person(s) with {} portrait(s); {} without a photo; {} item(s) refused",
            summary.persons,
            summary.portraits,
            summary.without_photo,
            summary.refused.len()
        );
        for r in &summary.refused {
            println!("  refused {}: {}", r.item, r.reason);
        }
    }
    Ok(())
}
