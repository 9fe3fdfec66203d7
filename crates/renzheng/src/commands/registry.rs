//! `renzheng registry add|basis|rename|replace|duplicates|import|reembed|remove|show`.
//!
//! Output never shows a name or ID number in clear: people are printed masked, and photo
//! file names (which are ID numbers) are printed with their ID part masked.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use indicatif::{ProgressBar, ProgressStyle};
use renzheng_app::{
    Actor, App, AppError, BasisStatement, BasisView, EnrolFields, EnrolRequest, Enrolled,
    PersonReport, PersonView, Reason, Settings,
};
use renzheng_domain::BasisFields;

use super::{explain, with_app};
use crate::cli::{BasisArgs, RegistryCommand};

/// The basis flags, parsed (`None`: none given).
fn basis_statement(args: BasisArgs) -> anyhow::Result<Option<BasisStatement>> {
    let fields = BasisFields {
        basis: args.basis,
        consent_ref: args.consent_ref,
        law: args.law,
        guardian_consent_ref: args.guardian_consent_ref,
    };
    BasisStatement::parse(&fields, args.purpose.as_deref()).map_err(explain)
}

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
            allow_duplicate_face,
            reason,
            basis,
            json,
        } => {
            let basis = basis_statement(basis)?;
            let mut stdin = Stdin::new();
            let name = stdin.or_read(name, "name")?;
            let id_number = stdin.or_read(id_number, "ID number")?;
            let allow = match (allow_duplicate_face, reason) {
                (true, Some(reason)) => Some(Reason::parse(&reason).map_err(explain)?),
                (true, None) => return Err(explain(AppError::ReasonRequired)),
                (false, _) => None,
            };
            add(settings, name, id_number, &photos, allow, basis, json)
        }
        RegistryCommand::Basis {
            id_number,
            basis,
            json,
        } => {
            let Some(basis) = basis_statement(basis)? else {
                return Err(anyhow!(
                    "no basis given: add --basis consent --consent-ref TEXT, --basis contract \
                     --consent-ref TEXT or --basis law --law TEXT"
                ));
            };
            let who = Stdin::new().or_read(id_number, "ID number")?;
            with_app(settings, |app| async move {
                let result = async {
                    let id = app.resolve_person(&who).await?;
                    app.record_basis(&Actor::Cli, &id, basis)
                        .await
                        .map(|view| (id, view))
                }
                .await
                .map(|(id, view)| {
                    if json {
                        println!("{}", serde_json::to_string(&view).expect("serialises"));
                    } else {
                        println!("recorded for {}: {}", id.masked(), basis_line(&view));
                    }
                })
                .map_err(not_found_or_explain);
                (app, result)
            })
        }
        RegistryCommand::Rename {
            id_number,
            name,
            reason,
            json,
        } => {
            let reason = Reason::parse(&reason).map_err(explain)?;
            let mut stdin = Stdin::new();
            let who = stdin.or_read(id_number, "ID number")?;
            let name = stdin.or_read(name, "new name")?;
            let name = renzheng_domain::PersonName::parse(&name)
                .map_err(|e| anyhow!("invalid name: {e}"))?;
            with_app(settings, |app| async move {
                let result = async {
                    let id = app.resolve_person(&who).await?;
                    app.rename_person(&Actor::Cli, &id, &name, reason).await
                }
                .await
                .map(|view| {
                    if json {
                        print_person(&view, true);
                    } else {
                        println!("renamed {} to {}", view.id_number, view.name);
                    }
                })
                .map_err(not_found_or_explain);
                (app, result)
            })
        }
        RegistryCommand::Replace {
            id_number,
            photos,
            reason,
            allow_duplicate_face,
            basis,
            json,
        } => {
            let basis = basis_statement(basis)?;
            let reason = Reason::parse(&reason).map_err(explain)?;
            let allow = allow_duplicate_face.then(|| reason.clone());
            let who = Stdin::new().or_read(id_number, "ID number")?;
            let bytes = read_photos(&photos)?;
            with_app(settings, |app| async move {
                let result = async {
                    let id = app.resolve_person(&who).await?;
                    app.replace_portraits(&Actor::Cli, &id, bytes, reason, allow, basis)
                        .await
                }
                .await
                .map(|done| {
                    if json {
                        println!("{}", serde_json::to_string(&done).expect("serialises"));
                    } else {
                        println!(
                            "replaced the portraits of {}: {} portrait(s) now",
                            done.person.id_number,
                            done.person.portraits.len()
                        );
                    }
                })
                .map_err(|e| refusal(e, &photos));
                (app, result)
            })
        }
        RegistryCommand::Duplicates {
            json,
            reveal,
            reason,
            restart,
        } => super::duplicates::run(settings, json, reveal, reason, restart),
        RegistryCommand::Import {
            dir,
            csv,
            basis,
            json,
        } if dir.is_file() && csv.is_none() => {
            if basis_statement(basis)?.is_some() {
                return Err(anyhow!(
                    "a registry export carries each person's basis: --basis applies to folder imports"
                ));
            }
            import_export(settings, &dir, json)
        }
        RegistryCommand::Import {
            dir,
            csv,
            basis,
            json,
        } => import(
            settings,
            &dir,
            csv.as_deref(),
            basis_statement(basis)?,
            json,
        ),
        RegistryCommand::Export { out } => export(settings, &out),
        RegistryCommand::Reembed {
            from: Some(dir),
            csv,
            json,
        } => import(settings, &dir, csv.as_deref(), None, json),
        RegistryCommand::Reembed {
            from: None,
            csv: _,
            json,
        } => reembed(settings, json),
        RegistryCommand::Remove {
            id_number,
            request_ref,
        } => {
            let request = App::request_ref(request_ref.as_deref())?;
            let who = Stdin::new().or_read(id_number, "ID number")?;
            with_app(settings, |app| async move {
                let result = async {
                    let id = app.resolve_person(&who).await?;
                    app.remove_person_on_request(&Actor::Cli, &id, request.as_ref())
                        .await
                        .map(|()| id)
                }
                .await
                .map(|id| println!("removed {id}"))
                .map_err(not_found_or_explain);
                (app, result)
            })
        }
        RegistryCommand::Report { id_number, json } => {
            let who = Stdin::new().or_read(id_number, "ID number")?;
            with_app(settings, |app| async move {
                let result = async {
                    let id = app.resolve_person(&who).await?;
                    app.person_report(&id)
                        .await?
                        .ok_or(AppError::NotFound("person"))
                }
                .await
                .map(|report| print_report(&report, json))
                .map_err(not_found_or_explain);
                (app, result)
            })
        }
        RegistryCommand::Purge { dry_run, json } => with_app(settings, |app| async move {
            let result = app
                .purge_registry(&Actor::Cli, dry_run)
                .await
                .map(|report| print_purge(&report, json))
                .map_err(explain);
            (app, result)
        }),
        RegistryCommand::Show { id_number, json } => {
            let who = Stdin::new().or_read(id_number, "ID number")?;
            with_app(settings, |app| async move {
                let result = async {
                    let id = app.resolve_person(&who).await?;
                    app.person(&id).await?.ok_or(AppError::NotFound("person"))
                }
                .await
                .map(|view| print_person(&view, json))
                .map_err(not_found_or_explain);
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

/// A missing person said plainly; anything else explained.
fn not_found_or_explain(e: AppError) -> anyhow::Error {
    match e {
        AppError::NotFound("person") => {
            anyhow!("no person with this ID number or handle in the registry")
        }
        other => explain(other),
    }
}

/// A refused photo named by its (masked) file; anything else explained.
fn refusal(e: AppError, photos: &[PathBuf]) -> anyhow::Error {
    match e {
        AppError::PortraitRefused { index, reason } => {
            anyhow!("photo {} refused: {reason}", photos_label(photos, index))
        }
        AppError::PortraitMismatch {
            index,
            against,
            score,
        } => anyhow!(
            "photo {} refused: it does not match {against} (score {score:.3}); a person's \
             portraits must all show them, and nothing was stored. To replace their portraits: \
             renzheng registry replace --id-number ID --photo FILE --reason TEXT",
            photos_label(photos, index)
        ),
        AppError::DuplicateFace {
            index,
            other,
            handle,
            score,
        } => anyhow!(
            "photo {} refused: this face is already enrolled under {other} ({handle}, score \
             {score:.3}); nothing was stored. If both ID numbers really belong to one person, \
             add --allow-duplicate-face --reason TEXT",
            photos_label(photos, index)
        ),
        other => not_found_or_explain(other),
    }
}

fn read_photos(photos: &[PathBuf]) -> anyhow::Result<Vec<Vec<u8>>> {
    photos
        .iter()
        .map(|path| std::fs::read(path).with_context(|| format!("reading {}", path.display())))
        .collect()
}

fn print_person(view: &PersonView, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(view).expect("a view serialises")
        );
    } else {
        println!("handle:    {}", view.handle);
        println!("id_number: {}", view.id_number);
        println!("name:      {}", view.name);
        println!(
            "basis:     {}",
            view.basis
                .as_ref()
                .map_or_else(|| "none recorded".to_owned(), basis_line)
        );
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

fn print_report(report: &PersonReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(report).expect("a report serialises")
        );
        return;
    }
    print_person(&report.person, false);
    println!(
        "checks:    {} (newest first, at most {})",
        report.checks.len(),
        report.limit
    );
    for c in &report.checks {
        println!(
            "  {} app {} result {} (HTTP {})",
            c.day,
            c.app_id.as_deref().unwrap_or("-"),
            c.result.map_or_else(|| "-".to_owned(), |r| r.to_string()),
            c.http_status
        );
    }
    println!("events:    {}", report.events.len());
    for e in &report.events {
        println!(
            "  {} {} by {}{}",
            e.day,
            e.action,
            e.actor,
            e.detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        );
    }
    println!("records:   {}", report.records.len());
    for r in &report.records {
        println!(
            "  {} {} by {}{}{}",
            r.at,
            r.action,
            r.actor,
            r.basis
                .as_deref()
                .map(|b| format!(", basis {b}"))
                .unwrap_or_default(),
            r.result
                .map(|code| format!(", result {code}"))
                .unwrap_or_default()
        );
    }
}

/// A recorded basis on one line.
fn basis_line(view: &BasisView) -> String {
    let guardian = view
        .guardian_consent_ref
        .as_deref()
        .map(|g| format!(", guardian's consent {g}"))
        .unwrap_or_default();
    format!(
        "{} ({}){guardian}, for {}, recorded by {}",
        view.basis, view.reference, view.purpose, view.recorded_by
    )
}

fn add(
    settings: &Settings,
    name: String,
    id_number: String,
    photos: &[PathBuf],
    allow_duplicate_face: Option<Reason>,
    basis: Option<BasisStatement>,
    json: bool,
) -> anyhow::Result<()> {
    let mut request = EnrolRequest::parse(EnrolFields {
        name: Some(name),
        id_card: Some(id_number),
        ..EnrolFields::default()
    })
    .map_err(explain)?;
    request.photos = read_photos(photos)?;
    request.allow_duplicate_face = allow_duplicate_face;
    request.basis = basis;
    with_app(settings, |app| async move {
        let result = match app.enrol(&Actor::Cli, request).await {
            Ok(done) => {
                print_enrolled(&done, photos, json);
                Ok(())
            }
            Err(e) => Err(refusal(e, photos)),
        };
        (app, result)
    })
}

fn print_enrolled(done: &Enrolled, photos: &[PathBuf], json: bool) {
    if json {
        println!("{}", serde_json::to_string(done).expect("serialises"));
        return;
    }
    let view = &done.person;
    println!(
        "enrolled {} ({}, {}): {} portrait(s) added, {} on record",
        view.id_number,
        view.name,
        view.handle,
        done.added,
        view.portraits.len()
    );
    for index in &done.skipped {
        println!(
            "  photo {} skipped: already on record",
            photos_label(photos, *index)
        );
    }
}

/// The file the operator named for the `index`-th (1-based) photo, with anything that
/// looks like an ID number masked (photo files are often named by it).
fn photos_label(photos: &[PathBuf], index: usize) -> String {
    photos.get(index.saturating_sub(1)).map_or_else(
        || index.to_string(),
        |p| mask_id_runs(&p.display().to_string()),
    )
}

/// Masks every run of 15 or more digits (an `X` may end it), keeping its first two and last
/// two characters.
fn mask_id_runs(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let mut j = i;
        while j < chars.len() && chars[j].is_ascii_digit() {
            j += 1;
        }
        if j < chars.len() && j > i && matches!(chars[j], 'X' | 'x') {
            j += 1;
        }
        if j - i >= 15 {
            out.extend(&chars[i..i + 2]);
            out.extend(std::iter::repeat_n('*', j - i - 4));
            out.extend(&chars[j - 2..j]);
            i = j;
        } else if j > i {
            out.extend(&chars[i..j]);
            i = j;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

fn import(
    settings: &Settings,
    dir: &Path,
    csv: Option<&Path>,
    basis: Option<BasisStatement>,
    json: bool,
) -> anyhow::Result<()> {
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
                .import_folder(&Actor::Cli, dir, csv, basis, |p| {
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
            "imported {} person(s) with {} portrait(s); {} without a photo; {} photo(s) already on record; {} item(s) refused",
            summary.persons,
            summary.portraits,
            summary.without_photo,
            summary.already_on_record,
            summary.refused.len()
        );
        for r in &summary.refused {
            println!("  refused {}: {}", r.item, r.reason);
        }
    }
    Ok(())
}

fn print_purge(report: &renzheng_app::PurgeReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string(report).expect("serialises"));
        return;
    }
    if report.retention_days == 0 && report.inactive_days == 0 {
        println!(
            "the registry's retention is off (registry.retention_days and registry.inactive_days are 0): nothing to purge"
        );
        return;
    }
    for line in &report.persons {
        println!(
            "{}  {}  {:<9}  enrolled {}  basis {}  last checked {}",
            line.handle,
            line.id_number,
            line.reason.as_str(),
            line.enrolled_on,
            line.basis_recorded_on.as_deref().unwrap_or("-"),
            line.last_checked_on.as_deref().unwrap_or("never"),
        );
    }
    println!(
        "{} person(s) {}",
        report.persons.len(),
        if report.dry_run {
            "due (dry run: nothing removed)"
        } else {
            "purged"
        }
    );
}

#[cfg(test)]
mod tests {
    use super::mask_id_runs;

    #[test]
    fn id_numbers_in_file_names_are_masked() {
        assert_eq!(
            mask_id_runs("/photos/11010519491231002X_2.jpg"),
            "/photos/11**************2X_2.jpg"
        );
        assert_eq!(mask_id_runs("portrait-2024.jpg"), "portrait-2024.jpg");
        assert_eq!(mask_id_runs("123456789012345.png"), "12***********45.png");
    }
}
