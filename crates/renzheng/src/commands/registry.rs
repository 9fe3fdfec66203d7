//! `renzheng registry add|import|remove|show`.
//!
//! Output never shows a name or ID number in clear: people are printed masked, and photo
//! file names (which are ID numbers) are printed with their ID part masked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use renzheng_domain::{IdNumber, PersonName};
use renzheng_server::keys::PhotoCipher;
use renzheng_server::registry::{self, PersonView, PortraitError};
use renzheng_server::startup::{open_store, photo_cipher};
use renzheng_server::Settings;
use renzheng_store::{NewPortrait, Store};
use renzheng_vision::Engine;
use serde::Serialize;

use crate::cli::RegistryCommand;

const PHOTO_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "bmp"];

/// Runs a `registry` subcommand.
pub fn run(cmd: RegistryCommand, settings: &Settings) -> anyhow::Result<()> {
    match cmd {
        RegistryCommand::Add {
            name,
            id_number,
            photos,
            json,
        } => add(settings, &name, &id_number, &photos, json),
        RegistryCommand::Import { dir, csv, json } => import(settings, &dir, csv.as_deref(), json),
        RegistryCommand::Remove { id_number } => {
            let id = parse_id(&id_number)?;
            // The same key the server hashes audit rows with, so they can be unlinked.
            let audit_key =
                renzheng_server::startup::audit_key(settings).context("loading the audit key")?;
            with_store(settings, |store| async move {
                if store
                    .remove_person(&id, &audit_key)
                    .await
                    .context("removing the person")?
                {
                    println!("removed {id}");
                    Ok(())
                } else {
                    bail!("no person with ID number {id} in the registry")
                }
            })
        }
        RegistryCommand::Show { id_number, json } => {
            let id = parse_id(&id_number)?;
            with_store(settings, |store| async move {
                let record = store
                    .get_person(&id)
                    .await
                    .context("reading the registry")?
                    .ok_or_else(|| anyhow!("no person with ID number {id} in the registry"))?;
                print_person(&PersonView::from(&record), json);
                Ok(())
            })
        }
    }
}

fn parse_id(raw: &str) -> anyhow::Result<IdNumber> {
    IdNumber::parse(raw).map_err(|e| anyhow!("invalid ID number: {e}"))
}

fn parse_name(raw: &str) -> anyhow::Result<PersonName> {
    PersonName::parse(raw).map_err(|e| anyhow!("invalid name: {e}"))
}

/// Opens the store, runs `f`, closes the store.
fn with_store<F, Fut, T>(settings: &Settings, f: F) -> anyhow::Result<T>
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    super::runtime()?.block_on(async {
        let sqlite = open_store(settings).await?;
        let store: Arc<dyn Store> = Arc::new(sqlite.clone());
        let result = f(store).await;
        sqlite.close().await;
        result
    })
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

fn open_engine(settings: &Settings) -> anyhow::Result<Engine> {
    let config = super::engine_config(settings)?;
    Engine::open(&config).context("loading the face engine")
}

fn analyze(
    engine: &Engine,
    path: &Path,
    cipher: Option<&PhotoCipher>,
) -> Result<NewPortrait, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    registry::analyze_portrait(engine, &bytes, cipher).map_err(|e| match e {
        PortraitError::Refused(reason) => reason,
        PortraitError::Engine(e) => format!("face engine failed: {e}"),
    })
}

fn add(
    settings: &Settings,
    name: &str,
    id_number: &str,
    photos: &[PathBuf],
    json: bool,
) -> anyhow::Result<()> {
    let name = parse_name(name)?;
    let id = parse_id(id_number)?;
    let cipher = photo_cipher(settings)?;
    let mut portraits = Vec::new();
    if !photos.is_empty() {
        let engine = open_engine(settings)?;
        for path in photos {
            let portrait = analyze(&engine, path, cipher.as_ref())
                .map_err(|reason| anyhow!("photo {} refused: {reason}", path.display()))?;
            portraits.push(portrait);
        }
    }
    with_store(settings, |store| async move {
        let record = registry::enrol(&store, &id, &name, portraits)
            .await
            .context("writing to the registry")?;
        let view = PersonView::from(&record);
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
    })
}

/// One refused item of an import.
#[derive(Debug, Serialize)]
struct Refusal {
    item: String,
    reason: String,
}

/// What an import did.
#[derive(Debug, Default, Serialize)]
struct ImportSummary {
    persons: usize,
    portraits: usize,
    without_photo: usize,
    refused: Vec<Refusal>,
}

/// A photo file name with its ID-number part masked.
fn masked_file_name(id: &IdNumber, path: &Path) -> String {
    let file = path
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    let rest = file.get(id_stem(file).len()..).unwrap_or_default();
    format!("{}{rest}", id.masked())
}

/// The ID-number part of a photo file name: everything before the first `_`, `-` or `.`.
fn id_stem(file: &str) -> &str {
    file.split(['_', '-', '.']).next().unwrap_or(file)
}

fn find_csv(dir: &Path, csv: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(csv) = csv {
        return Ok(csv.to_owned());
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        {
            found.push(path);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!(
            "{} has no .csv file of id,name rows; give one with --csv",
            dir.display()
        ),
        _ => bail!(
            "{} has several .csv files; choose one with --csv",
            dir.display()
        ),
    }
}

fn import(settings: &Settings, dir: &Path, csv: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let csv_path = find_csv(dir, csv)?;
    let mut summary = ImportSummary::default();

    // Photos by canonical ID number.
    let mut photos: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    for path in entries {
        let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
            continue;
        };
        if !PHOTO_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()) {
            continue;
        }
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default();
        match IdNumber::parse(id_stem(file)) {
            Ok(id) => photos.entry(id.as_str().to_owned()).or_default().push(path),
            Err(e) => summary.refused.push(Refusal {
                item: "a photo file".into(),
                reason: format!("its name is not a valid ID number ({e})"),
            }),
        }
    }

    // People from the CSV.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(&csv_path)
        .with_context(|| format!("opening {}", csv_path.display()))?;
    let mut people: Vec<(usize, IdNumber, PersonName)> = Vec::new();
    for (index, row) in reader.records().enumerate() {
        let line = index + 1;
        let row = row.with_context(|| format!("{} line {line}", csv_path.display()))?;
        let (raw_id, raw_name) = (
            row.get(0).unwrap_or_default(),
            row.get(1).unwrap_or_default(),
        );
        if line == 1
            && IdNumber::parse(raw_id).is_err()
            && raw_id.chars().all(|c| c.is_alphabetic() || c == '_')
        {
            continue; // a header row such as "id,name"
        }
        let id = match IdNumber::parse(raw_id) {
            Ok(id) => id,
            Err(e) => {
                summary.refused.push(Refusal {
                    item: format!("CSV line {line}"),
                    reason: format!("invalid ID number: {e}"),
                });
                continue;
            }
        };
        match PersonName::parse(raw_name) {
            Ok(name) => people.push((line, id, name)),
            Err(e) => summary.refused.push(Refusal {
                item: format!("CSV line {line} ({id})"),
                reason: format!("invalid name: {e}"),
            }),
        }
    }
    for (id_text, paths) in &photos {
        if !people.iter().any(|(_, id, _)| id.as_str() == id_text) {
            for path in paths {
                let id = IdNumber::parse(id_text).expect("parsed above");
                summary.refused.push(Refusal {
                    item: masked_file_name(&id, path),
                    reason: "no CSV row for this ID number".into(),
                });
            }
        }
    }

    let cipher = photo_cipher(settings)?;
    let engine = if people
        .iter()
        .any(|(_, id, _)| photos.contains_key(id.as_str()))
    {
        Some(open_engine(settings)?)
    } else {
        None
    };

    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(people.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let mut batch: Vec<(IdNumber, PersonName, Vec<NewPortrait>)> = Vec::new();
    for (line, id, name) in people {
        bar.set_message(id.masked());
        let files = photos.get(id.as_str()).cloned().unwrap_or_default();
        let mut portraits = Vec::new();
        for path in &files {
            let engine = engine.as_ref().expect("loaded when there are photos");
            match analyze(engine, path, cipher.as_ref()) {
                Ok(p) => portraits.push(p),
                Err(reason) => summary.refused.push(Refusal {
                    item: masked_file_name(&id, path),
                    reason,
                }),
            }
        }
        if !files.is_empty() && portraits.is_empty() {
            summary.refused.push(Refusal {
                item: format!("CSV line {line} ({id})"),
                reason: "not enrolled: none of the person's photos is usable".into(),
            });
        } else {
            if files.is_empty() {
                summary.without_photo += 1;
            }
            summary.persons += 1;
            summary.portraits += portraits.len();
            batch.push((id, name, portraits));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();

    with_store(settings, |store| async move {
        for (id, name, portraits) in batch {
            registry::enrol(&store, &id, &name, portraits)
                .await
                .with_context(|| format!("writing {id} to the registry"))?;
        }
        Ok(())
    })?;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_stems() {
        assert_eq!(id_stem("11010519491231002X.jpg"), "11010519491231002X");
        assert_eq!(id_stem("11010519491231002X_2.png"), "11010519491231002X");
        assert_eq!(id_stem("11010519491231002X-b.png"), "11010519491231002X");
    }
}
