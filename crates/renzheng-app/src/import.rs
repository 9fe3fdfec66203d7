//! Enrolling a whole folder: photos named by ID number (`<id>.jpg`, `<id>_2.jpg`…) and one
//! CSV of `id,name[,basis,reference,guardian_consent_ref,purpose]` rows (the reference is
//! the consent's or contract's, or the statute with `law`; a row without a basis takes
//! the import's own, else keeps the person's). Every refusal is reported with its reason; nothing refused stops
//! the others. Reports never show a name or ID number in clear: file names are masked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use renzheng_domain::{
    BasisFields, BasisKind, IdNumber, IdNumberError, PersonName, PersonNameError,
};
use serde::Serialize;

use crate::audit::Actor;
use crate::compliance::BasisStatement;
use crate::integrity::{refusal_cause, NewFace};
use crate::rules::PortraitRefusal;
use crate::{App, AppError};

const PHOTO_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "bmp"];

/// The largest file (photo or CSV) a folder import reads: a photo is read whole before it
/// is decoded, and a folder may hold anything.
pub const MAX_IMPORT_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// How a folder is walked: as the CLI walks the operator's own folder (links followed),
/// or as the console walks one under `console.import_root` (only regular files: a link
/// could lead out of the root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    FollowLinks,
    RegularFilesOnly,
}

/// One refused item of an import: `item` and `reason` in English (the CLI's report and
/// the JSON), `at` and `problem` typed (the console words them in the operator's
/// language).
#[derive(Debug, Clone, Serialize)]
pub struct ImportRefusal {
    /// What was refused (a masked file name, a CSV line).
    pub item: String,
    /// Why.
    pub reason: String,
    /// What was refused, typed.
    #[serde(skip)]
    pub at: ImportItem,
    /// Why, typed.
    #[serde(skip)]
    pub problem: ImportProblem,
}

/// What an import refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportItem {
    /// A line of the CSV, with its masked ID number when it has a valid one.
    CsvLine {
        /// The line number (1: the first).
        line: usize,
        /// The masked ID number.
        id: Option<String>,
    },
    /// A photo file, its ID-number part masked.
    Photo(String),
    /// A photo file whose name is no ID number.
    UnnamedPhoto,
    /// A symbolic link.
    Link,
}

impl ImportRefusal {
    /// A refusal of `at` for `reason` (its English sentence), typed as `problem`.
    fn new(at: ImportItem, reason: impl Into<String>, problem: ImportProblem) -> Self {
        ImportRefusal {
            item: at.to_string(),
            reason: reason.into(),
            at,
            problem,
        }
    }
}

/// The item in English, as the CLI's report names it.
impl std::fmt::Display for ImportItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportItem::CsvLine { line, id: Some(id) } => write!(f, "CSV line {line} ({id})"),
            ImportItem::CsvLine { line, id: None } => write!(f, "CSV line {line}"),
            ImportItem::Photo(file) => f.write_str(file),
            ImportItem::UnnamedPhoto => f.write_str("a photo file"),
            ImportItem::Link => f.write_str("a link"),
        }
    }
}

impl ImportItem {
    fn csv(line: usize, id: &IdNumber) -> Self {
        ImportItem::CsvLine {
            line,
            id: Some(id.masked()),
        }
    }
}

/// Why an import refused an item.
#[derive(Debug, Clone)]
pub enum ImportProblem {
    /// A photo of an ID number the CSV does not list.
    NoCsvRow,
    /// A file that could not be read.
    Unreadable,
    /// A photo the enrolment rules refuse.
    Photo(PortraitRefusal),
    /// The face engine failed on a photo.
    EngineFailed,
    /// None of a person's photos is usable: the person is not enrolled.
    NoUsablePhoto,
    /// A symbolic link (a console import follows none).
    LinkNotFollowed,
    /// A photo file whose name is not an ID number.
    FileNameNotId(IdNumberError),
    /// A CSV line whose ID number is invalid.
    InvalidIdNumber(IdNumberError),
    /// A CSV line whose name is invalid.
    InvalidName(PersonNameError),
    /// The registry's or the legal basis's rules refused the person: not enrolled.
    NotEnrolled(Arc<AppError>),
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportSummary {
    /// Persons enrolled.
    pub persons: usize,
    /// Portraits enrolled.
    pub portraits: usize,
    /// Persons enrolled without a photo (their checks answer 5).
    pub without_photo: usize,
    /// Photos skipped because the person already has them on record (the same photo, or
    /// a re-encoded copy): importing a folder twice changes nothing.
    pub already_on_record: usize,
    /// Everything refused, with reasons.
    pub refused: Vec<ImportRefusal>,
}

/// Progress of an import, reported after each person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProgress {
    /// Persons handled so far.
    pub done: usize,
    /// Persons in the CSV.
    pub total: usize,
    /// The masked ID number just handled.
    pub current: String,
}

/// Why the folder cannot be imported at all.
fn unreadable(what: &Path, e: impl std::fmt::Display) -> AppError {
    AppError::Import(format!("{}: {e}", what.display()))
}

impl App {
    /// Imports the folder `dir` with the CSV `csv` (default: the only `.csv` in `dir`),
    /// telling `progress` after each person.
    /// Rows without a basis of their own take `basis`.
    pub async fn import_folder(
        &self,
        actor: &Actor,
        dir: &Path,
        csv: Option<&Path>,
        basis: Option<BasisStatement>,
        progress: impl Fn(&ImportProgress),
    ) -> Result<ImportSummary, AppError> {
        self.import_walked(actor, dir, csv, Walk::FollowLinks, basis, progress)
            .await
    }

    /// The console's folder import: `folder` as the operator typed it, taken relative to
    /// `console.import_root` (an absolute path must lie inside it), resolved without
    /// leaving it, and walked for regular files only. [`AppError::Import`] when the
    /// console's import is off (no root) or the folder is not inside the root.
    pub async fn import_folder_under_root(
        &self,
        actor: &Actor,
        folder: &str,
        basis: Option<BasisStatement>,
        progress: impl Fn(&ImportProgress),
    ) -> Result<ImportSummary, AppError> {
        let dir = self.folder_under_root(folder)?;
        self.import_walked(actor, &dir, None, Walk::RegularFilesOnly, basis, progress)
            .await
    }

    /// `folder` resolved under `console.import_root` (see
    /// [`App::import_folder_under_root`]), for the console to refuse a bad folder at once.
    pub fn folder_under_root(&self, folder: &str) -> Result<PathBuf, AppError> {
        let Some(root) = &self.settings.console.import_root else {
            return Err(AppError::Import(
                "folder import from the console is off (set console.import_root)".into(),
            ));
        };
        confined_dir(root, folder)
    }

    async fn import_walked(
        &self,
        actor: &Actor,
        dir: &Path,
        csv: Option<&Path>,
        walk: Walk,
        default_basis: Option<BasisStatement>,
        progress: impl Fn(&ImportProgress),
    ) -> Result<ImportSummary, AppError> {
        let csv_path = find_csv(dir, csv, walk)?;
        let mut summary = ImportSummary::default();
        let photos = photos_by_id(dir, walk, &mut summary)?;
        let people = read_people(&csv_path, &mut summary)?;
        for (id_text, paths) in &photos {
            if !people.iter().any(|row| row.id.as_str() == id_text) {
                let id = IdNumber::parse(id_text).expect("keys were parsed as ID numbers");
                for path in paths {
                    summary.refused.push(ImportRefusal::new(
                        ImportItem::Photo(masked_file_name(&id, path)),
                        "no CSV row for this ID number",
                        ImportProblem::NoCsvRow,
                    ));
                }
            }
        }

        // A missing or broken pack fails the import once, not every photo.
        if people
            .iter()
            .any(|row| photos.contains_key(row.id.as_str()))
        {
            self.engine().await?;
        }
        let total = people.len();
        let mut batch = Vec::with_capacity(total);
        for (done, row) in people.into_iter().enumerate() {
            let Row {
                line,
                id,
                name,
                basis,
            } = row;
            let files = photos.get(id.as_str()).cloned().unwrap_or_default();
            let basis = match self
                .basis_to_record(
                    actor,
                    &id,
                    basis.or_else(|| default_basis.clone()),
                    !files.is_empty(),
                )
                .await
            {
                Ok(basis) => basis,
                Err(refusal @ (AppError::BasisRequired | AppError::Basis(_))) => {
                    summary.refused.push(ImportRefusal::new(
                        ImportItem::csv(line, &id),
                        format!("not enrolled: {}", refusal_cause(&refusal)),
                        ImportProblem::NotEnrolled(Arc::new(refusal)),
                    ));
                    progress(&ImportProgress {
                        done: done + 1,
                        total,
                        current: id.masked(),
                    });
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut faces = Vec::new();
            let mut labels = Vec::new();
            for path in &files {
                let label = masked_file_name(&id, path);
                let refusal = match read_capped(path).await {
                    Err(e) => Some((format!("cannot read: {e}"), ImportProblem::Unreadable)),
                    Ok(bytes) => match self.analyze_portrait(bytes, &id).await {
                        Ok(Ok(portrait)) => {
                            faces.push(NewFace {
                                index: faces.len() + 1,
                                portrait,
                            });
                            labels.push(label.clone());
                            None
                        }
                        Ok(Err(reason)) => Some((reason.to_string(), ImportProblem::Photo(reason))),
                        Err(AppError::Engine(e)) => Some((
                            format!("face engine failed: {e}"),
                            ImportProblem::EngineFailed,
                        )),
                        Err(e) => return Err(e),
                    },
                };
                if let Some((reason, problem)) = refusal {
                    summary.refused.push(ImportRefusal::new(
                        ImportItem::Photo(label),
                        reason,
                        problem,
                    ));
                }
            }
            if !files.is_empty() && faces.is_empty() {
                summary.refused.push(ImportRefusal::new(
                    ImportItem::csv(line, &id),
                    "not enrolled: none of the person's photos is usable",
                    ImportProblem::NoUsablePhoto,
                ));
            } else {
                batch.push((line, id.clone(), name, faces, labels, basis));
            }
            progress(&ImportProgress {
                done: done + 1,
                total,
                current: id.masked(),
            });
        }
        // Written after every photo was analysed, so that an engine failure midway leaves
        // the registry as it was. Each person is checked against the registry as the
        // import has left it so far, so two rows with one face are caught too.
        for (line, id, name, faces, labels, basis) in batch {
            let photos = faces.len();
            match self
                .enrol_faces(actor, &id, &name, faces, None, basis.as_ref())
                .await
            {
                Ok(enrolled) => {
                    if photos == 0 {
                        summary.without_photo += 1;
                    }
                    summary.persons += 1;
                    summary.portraits += enrolled.added;
                    summary.already_on_record += enrolled.skipped.len();
                }
                Err(refusal @ AppError::NameMismatch) => summary.refused.push(ImportRefusal::new(
                    ImportItem::csv(line, &id),
                    refusal_cause(&refusal),
                    ImportProblem::NotEnrolled(Arc::new(refusal)),
                )),
                Err(
                    refusal @ (AppError::PortraitMismatch { index, .. }
                    | AppError::DuplicateFace { index, .. }),
                ) => {
                    let at = labels
                        .get(index - 1)
                        .cloned()
                        .map_or_else(|| ImportItem::csv(line, &id), ImportItem::Photo);
                    summary.refused.push(ImportRefusal::new(
                        at,
                        format!("person not enrolled: {}", refusal_cause(&refusal)),
                        ImportProblem::NotEnrolled(Arc::new(refusal)),
                    ))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(summary)
    }
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

/// `folder` under `root`, both resolved (links included), refused unless the result is a
/// directory inside the resolved root: `..` and links cannot lead out.
fn confined_dir(root: &Path, folder: &str) -> Result<PathBuf, AppError> {
    let root = root
        .canonicalize()
        .map_err(|e| unreadable(Path::new("console.import_root"), e))?;
    let asked = Path::new(folder.trim());
    let joined = if asked.is_absolute() {
        asked.to_owned()
    } else {
        root.join(asked)
    };
    let outside = || {
        AppError::Import(format!(
            "{} is not a folder inside console.import_root ({})",
            asked.display(),
            root.display()
        ))
    };
    let dir = joined.canonicalize().map_err(|_| outside())?;
    if !dir.starts_with(&root) || !dir.is_dir() {
        return Err(outside());
    }
    Ok(dir)
}

/// Whether a folder entry is read: a regular file, or with [`Walk::FollowLinks`] anything
/// that leads to one.
fn is_readable_file(entry: &std::fs::DirEntry, walk: Walk) -> bool {
    match walk {
        Walk::FollowLinks => entry.path().is_file(),
        Walk::RegularFilesOnly => entry.file_type().is_ok_and(|t| t.is_file()),
    }
}

/// A file's bytes, refused beyond [`MAX_IMPORT_FILE_BYTES`] before any is read.
async fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let len = tokio::fs::metadata(path)
        .await
        .map_err(|e| e.to_string())?
        .len();
    if len > MAX_IMPORT_FILE_BYTES {
        return Err(format!(
            "the file is over {} MiB",
            MAX_IMPORT_FILE_BYTES / (1024 * 1024)
        ));
    }
    tokio::fs::read(path).await.map_err(|e| e.to_string())
}

fn find_csv(dir: &Path, csv: Option<&Path>, walk: Walk) -> Result<PathBuf, AppError> {
    if let Some(csv) = csv {
        return Ok(csv.to_owned());
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| unreadable(dir, e))? {
        let entry = entry.map_err(|e| unreadable(dir, e))?;
        if !is_readable_file(&entry, walk) {
            continue;
        }
        let path = entry.path();
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
        0 => Err(AppError::Import(format!(
            "{} has no .csv file of id,name rows; give one with --csv",
            dir.display()
        ))),
        _ => Err(AppError::Import(format!(
            "{} has several .csv files; choose one with --csv",
            dir.display()
        ))),
    }
}

/// Photos by canonical ID number; files whose name is not an ID number are refused.
fn photos_by_id(
    dir: &Path,
    walk: Walk,
    summary: &mut ImportSummary,
) -> Result<BTreeMap<String, Vec<PathBuf>>, AppError> {
    let mut photos: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)
        .map_err(|e| unreadable(dir, e))?
        .filter_map(Result::ok)
    {
        if is_readable_file(&entry, walk) {
            entries.push(entry.path());
        } else if entry.file_type().is_ok_and(|t| t.is_symlink()) {
            // Said, not silently skipped: the operator sees why a photo is missing.
            summary.refused.push(ImportRefusal::new(
                ImportItem::Link,
                "symbolic links are not followed in a console import",
                ImportProblem::LinkNotFollowed,
            ));
        }
    }
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
            Err(e) => summary.refused.push(ImportRefusal::new(
                ImportItem::UnnamedPhoto,
                format!("its name is not a valid ID number ({e})"),
                ImportProblem::FileNameNotId(e),
            )),
        }
    }
    Ok(photos)
}

/// The CSV's people, with their line numbers; bad rows are refused.
/// One person of the CSV.
struct Row {
    line: usize,
    id: IdNumber,
    name: PersonName,
    basis: Option<BasisStatement>,
}

/// The basis of a CSV row from its columns `basis,reference,guardian_consent_ref,purpose`
/// (all blank: none).
fn row_basis(row: &csv::StringRecord) -> Result<Option<BasisStatement>, AppError> {
    let column = |i: usize| row.get(i).filter(|s| !s.is_empty()).map(str::to_owned);
    let kind = column(2);
    let is_law = kind
        .as_deref()
        .is_some_and(|k| BasisKind::parse(k) == Ok(BasisKind::Law));
    let reference = column(3);
    let fields = BasisFields {
        basis: kind,
        consent_ref: if is_law { None } else { reference.clone() },
        law: if is_law { reference } else { None },
        guardian_consent_ref: column(4),
    };
    BasisStatement::parse(&fields, column(5).as_deref())
}

fn read_people(csv_path: &Path, summary: &mut ImportSummary) -> Result<Vec<Row>, AppError> {
    let len = std::fs::metadata(csv_path)
        .map_err(|e| unreadable(csv_path, e))?
        .len();
    if len > MAX_IMPORT_FILE_BYTES {
        return Err(unreadable(
            csv_path,
            format!("over {} MiB", MAX_IMPORT_FILE_BYTES / (1024 * 1024)),
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(csv_path)
        .map_err(|e| unreadable(csv_path, e))?;
    let mut people = Vec::new();
    for (index, row) in reader.records().enumerate() {
        let line = index + 1;
        let row = row.map_err(|e| unreadable(csv_path, format!("line {line}: {e}")))?;
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
                summary.refused.push(ImportRefusal::new(
                    ImportItem::CsvLine { line, id: None },
                    format!("invalid ID number: {e}"),
                    ImportProblem::InvalidIdNumber(e),
                ));
                continue;
            }
        };
        let name = match PersonName::parse(raw_name) {
            Ok(name) => name,
            Err(e) => {
                summary.refused.push(ImportRefusal::new(
                    ImportItem::csv(line, &id),
                    format!("invalid name: {e}"),
                    ImportProblem::InvalidName(e),
                ));
                continue;
            }
        };
        match row_basis(&row) {
            Ok(basis) => people.push(Row {
                line,
                id,
                name,
                basis,
            }),
            Err(e) => summary.refused.push(ImportRefusal::new(
                ImportItem::csv(line, &id),
                e.to_string(),
                ImportProblem::NotEnrolled(Arc::new(e)),
            )),
        }
    }
    Ok(people)
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
