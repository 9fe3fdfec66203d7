//! Moving the registry between databases (SQLite → PostgreSQL, or one server to another):
//! `registry export` writes every person, line by line, each line sealed under a key
//! derived from the template key; `registry import FILE` reads it into the configured
//! database. The file holds names, ID numbers and face templates, so nothing in it is
//! readable without the template key, which the two ends share (as nodes of one
//! deployment must).
//!
//! ```text
//! {"format":"renzheng-registry","version":2,"export":"<32 hex digits, random>"}
//! base64(seal(person JSON))                  one line per person, i = 0, 1, …
//!     associated data: "renzheng registry export v2" NUL export NUL i (in decimal)
//! base64(seal({"end":true,"persons":N}))     the end marker
//!     associated data: "renzheng registry export v2" NUL export NUL "trailer"
//! ```
//!
//! `seal` is the export key's `SecretBox` (XChaCha20-Poly1305 under a key derived from
//! the template key, its nonce in front).
//!
//! Every line is bound to its export (the random `export` of the header) and to its
//! place in it, and the end marker is sealed like the persons: a line removed, moved,
//! repeated or taken from another export does not open where it stands, and a file cut
//! short (even with a forged end marker) has no end marker that opens with the right
//! count. Such a file is refused, naming the line and why (never what it holds), and
//! nothing of it is written: an import checks the whole file before its first write.
//!
//! Version 1 files, written by the previous release, are still read, with a warning:
//! their person lines all share the associated data `"renzheng registry export v1"` and
//! their end marker, `{"end":true,"persons":N}`, is clear text, so lines removed,
//! reordered, repeated or taken from another version 1 export of the same key (with the
//! count fixed to match) go unnoticed; only a count that does not match the lines is
//! caught (still before anything is written). An operator holding one should re-export
//! with this release where the source database still exists.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::RngCore;
use renzheng_domain::{BasisKind, IdNumber, LegalBasis, PersonName, Reference};
use renzheng_store::{BasisRecord, NewPortrait};
use serde::{Deserialize, Serialize};

use crate::audit::Actor;
use crate::{App, AppError};

const FORMAT: &str = "renzheng-registry";
/// The version written.
const VERSION: u32 = 2;
/// The previous release's version, still read.
const VERSION_1: u32 = 1;
/// Associated data of every person line of a version 1 file.
const V1_AAD: &str = "renzheng registry export v1";
/// The start of the associated data of every version 2 line (then the export id and the
/// line's place).
const V2_AAD: &str = "renzheng registry export v2";
/// Random bytes of an export's id.
const EXPORT_ID_BYTES: usize = 16;
/// How many places either side of the expected one a line that does not open is tried
/// at, to tell the operator whether lines were removed, moved or repeated. Only the
/// first bad line is tried (the import stops there), so this bounds the extra work.
const NEARBY: u64 = 8;
/// Persons read from the store per page.
const PAGE: u32 = 500;

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    /// The export's random id (version 2 on), bound into every line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    export: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    end: bool,
    persons: u64,
}

#[derive(Serialize, Deserialize)]
struct PersonLine {
    id: String,
    name: String,
    portraits: Vec<PortraitLine>,
    /// The person's legal basis (absent: none recorded, or an export of an earlier
    /// release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    basis: Option<BasisLine>,
}

#[derive(Serialize, Deserialize)]
struct BasisLine {
    kind: String,
    reference: String,
    guardian_consent_ref: Option<String>,
    purpose: String,
    recorded_at: i64,
    recorded_by: String,
}

impl From<&BasisRecord> for BasisLine {
    fn from(b: &BasisRecord) -> Self {
        BasisLine {
            kind: b.basis.kind().as_str().to_owned(),
            reference: b.basis.reference().as_str().to_owned(),
            guardian_consent_ref: b.basis.guardian_consent().map(|g| g.as_str().to_owned()),
            purpose: b.purpose.as_str().to_owned(),
            recorded_at: b.recorded_at,
            recorded_by: b.actor.clone(),
        }
    }
}

impl BasisLine {
    /// The record, as it was recorded; `None` when a field does not parse.
    fn record(self) -> Option<BasisRecord> {
        let text = |t: &str| Reference::parse(t, "basis").ok();
        Some(BasisRecord {
            basis: LegalBasis::new(
                BasisKind::parse(&self.kind).ok()?,
                text(&self.reference)?,
                match self.guardian_consent_ref {
                    Some(g) => Some(text(&g)?),
                    None => None,
                },
            ),
            purpose: text(&self.purpose)?,
            recorded_at: self.recorded_at,
            actor: self.recorded_by,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct PortraitLine {
    model_id: String,
    embedding: Vec<f32>,
    quality: Option<serde_json::Value>,
    /// A kept photo, still encrypted under the photo key.
    photo: Option<String>,
}

/// A person line, opened and checked, ready to be written.
struct Record {
    id: IdNumber,
    name: PersonName,
    portraits: Vec<NewPortrait>,
    basis: Option<BasisRecord>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TransferSummary {
    /// Persons written.
    pub imported: u64,
    /// Persons already in the database, left as they are.
    pub already_present: u64,
}

/// How the lines of one file are sealed, as its header says.
enum Sealing {
    /// Version 1: one associated data for every person line; a clear end marker.
    V1,
    /// Version 2: every line bound to this export and to its place in it.
    V2 { export: String },
}

impl Sealing {
    /// Reads the header (line 1).
    fn of_header(line: &str) -> Result<Self, AppError> {
        let header: Header =
            serde_json::from_str(line).map_err(|_| bad(1, "not a Renzheng registry export"))?;
        if header.format != FORMAT {
            return Err(bad(1, "not a Renzheng registry export"));
        }
        match (header.version, header.export) {
            (VERSION_1, _) => Ok(Sealing::V1),
            (VERSION, Some(export))
                if export.len() == 2 * EXPORT_ID_BYTES
                    && export.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                Ok(Sealing::V2 { export })
            }
            (VERSION, _) => Err(bad(1, "the header's export id is missing or malformed")),
            (other, _) => Err(bad(
                1,
                format!(
                    "not a Renzheng registry export of a known version ({other}; this \
                     release reads {VERSION_1} and {VERSION})"
                ),
            )),
        }
    }

    fn version(&self) -> u32 {
        match self {
            Sealing::V1 => VERSION_1,
            Sealing::V2 { .. } => VERSION,
        }
    }

    /// The associated data of the `index`-th (0-based) person line.
    fn person(&self, index: u64) -> String {
        match self {
            Sealing::V1 => V1_AAD.to_owned(),
            Sealing::V2 { export } => v2_person_aad(export, index),
        }
    }
}

fn v2_person_aad(export: &str, index: u64) -> String {
    format!("{V2_AAD}\0{export}\0{index}")
}

fn v2_trailer_aad(export: &str) -> String {
    format!("{V2_AAD}\0{export}\0trailer")
}

fn io(e: std::io::Error) -> AppError {
    AppError::Import(format!("export file: {e}"))
}

/// A refusal naming the file's line `n` (1-based) and why; never what the line holds.
fn bad(n: usize, why: impl std::fmt::Display) -> AppError {
    AppError::Import(format!("export file line {n}: {why}"))
}

/// A person line's JSON (line `n` of the file), checked down to its photos' base64.
fn record(n: usize, json: &str) -> Result<Record, AppError> {
    let person: PersonLine =
        serde_json::from_str(json).map_err(|_| bad(n, "not a person record"))?;
    let id = IdNumber::parse(&person.id).map_err(|_| bad(n, "invalid ID number"))?;
    let name = PersonName::parse(&person.name).map_err(|_| bad(n, "invalid name"))?;
    let portraits = person
        .portraits
        .into_iter()
        .map(|p| {
            let photo = p
                .photo
                .map(|b| STANDARD.decode(b))
                .transpose()
                .map_err(|_| bad(n, "a photo is not base64"))?;
            Ok(NewPortrait {
                model_id: p.model_id,
                embedding: p.embedding,
                quality: p.quality,
                photo,
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    let basis = person
        .basis
        .map(|b| b.record().ok_or_else(|| bad(n, "an invalid legal basis")))
        .transpose()?;
    Ok(Record {
        id,
        name,
        portraits,
        basis,
    })
}

impl App {
    /// Writes every person of the registry to `out`; returns how many.
    pub async fn export_registry(&self, out: &mut dyn Write) -> Result<u64, AppError> {
        let mut id = [0u8; EXPORT_ID_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let export = hex::encode(id);
        let header = Header {
            format: FORMAT.into(),
            version: VERSION,
            export: Some(export.clone()),
        };
        writeln!(
            out,
            "{}",
            serde_json::to_string(&header).expect("serializes")
        )
        .map_err(io)?;
        let mut after: Option<IdNumber> = None;
        let mut count = 0;
        loop {
            let page = self.store.list_person_ids(after.as_ref(), PAGE).await?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            for id in page {
                // Removed meanwhile: nothing to export.
                let Some(record) = self.store.get_person(&id).await? else {
                    continue;
                };
                let mut photos = self.store.kept_photos(&id).await?.into_iter();
                let portraits = record
                    .portraits
                    .into_iter()
                    .map(|p| PortraitLine {
                        photo: if p.has_photo {
                            photos.next().map(|bytes| STANDARD.encode(bytes))
                        } else {
                            None
                        },
                        model_id: p.model_id,
                        embedding: p.embedding,
                        quality: p.quality,
                    })
                    .collect();
                let line = PersonLine {
                    id: id.as_str().to_owned(),
                    name: record.person.name.as_str().to_owned(),
                    portraits,
                    basis: record.basis.as_ref().map(BasisLine::from),
                };
                let json = serde_json::to_string(&line).expect("serializes");
                let sealed = self.export_box.seal(&v2_person_aad(&export, count), &json);
                writeln!(out, "{}", STANDARD.encode(sealed)).map_err(io)?;
                count += 1;
            }
            after = Some(last);
        }
        let trailer = Trailer {
            end: true,
            persons: count,
        };
        let json = serde_json::to_string(&trailer).expect("serializes");
        let sealed = self.export_box.seal(&v2_trailer_aad(&export), &json);
        writeln!(out, "{}", STANDARD.encode(sealed)).map_err(io)?;
        out.flush().map_err(io)?;
        Ok(count)
    }

    /// Reads an export into the registry. The whole file is checked first (every line
    /// opened at its place, the end marker's count matched): a tampered or truncated file
    /// is refused before anything is written. Persons already present are left as they
    /// are (an import can be re-run after an interruption); each person is one
    /// transaction.
    pub async fn import_registry(
        &self,
        actor: &Actor,
        input: &mut dyn BufRead,
    ) -> Result<TransferSummary, AppError> {
        let mut lines = input.lines().enumerate().map(|(i, l)| (i + 1, l));
        let (_, first) = lines.next().ok_or_else(|| bad(1, "empty file"))?;
        let sealing = Sealing::of_header(&first.map_err(io)?)?;
        if let Sealing::V1 = sealing {
            tracing::warn!(
                "this registry export is of format version 1, whose lines are not bound to \
                 their file or place and whose end marker is not sealed: lines removed, \
                 reordered, repeated or taken from another version 1 export would go \
                 unnoticed. Re-export with this release if the source database still exists."
            );
        }

        // Why two passes and a spool: nothing may be written before the end marker has
        // been checked (a file cut short or spliced must not leave half of itself in the
        // registry), but `input` can be read only once, and holding it in memory is not
        // bounded (kept photos make a large registry's export gigabytes). So the first
        // pass opens and checks every line and copies the person lines, still sealed as in
        // the file, to a spool file; the second reads them back and writes.
        let mut spool = Spool::create(&self.settings.data_dir)?;
        let persons = self.check_export(&sealing, lines, &mut spool)?;
        let mut spooled = spool.rewind()?;

        let changed = || {
            AppError::Import(
                "the import's spool file changed between the check and the writes; the import \
                 stopped part way: re-run it"
                    .into(),
            )
        };
        let mut summary = TransferSummary::default();
        // The file's line number: the header is line 1.
        let mut n = 1;
        for index in 0..persons {
            n += 1;
            let line = spooled
                .lines
                .next()
                .transpose()
                .map_err(spool_error)?
                .ok_or_else(changed)?;
            let sealed = STANDARD.decode(line).map_err(|_| changed())?;
            let json = self
                .export_box
                .open(&sealing.person(index), &sealed)
                .ok_or_else(changed)?;
            let Record {
                id,
                name,
                portraits,
                basis,
            } = record(n, &json)?;
            if self.store.get_person(&id).await?.is_some() {
                summary.already_present += 1;
                continue;
            }
            // The basis moves with the face, as it was recorded (its date and author).
            self.store
                .enrol_with_basis(&id, &name, portraits, basis.as_ref(), None, self.now_ms())
                .await?;
            summary.imported += 1;
        }
        let mut event = self.event(actor, "registry.imported");
        event.detail = Some(format!(
            "imported={} already_present={} format_version={}",
            summary.imported,
            summary.already_present,
            sealing.version()
        ));
        self.record_event(event).await;
        Ok(summary)
    }

    /// The first pass of an import: opens every line at its place, checks each person
    /// record and the end marker, and copies the (sealed) person lines to `spool`.
    /// Returns how many persons the file holds. Writes nothing to the registry.
    fn check_export(
        &self,
        sealing: &Sealing,
        lines: impl Iterator<Item = (usize, std::io::Result<String>)>,
        spool: &mut Spool,
    ) -> Result<u64, AppError> {
        let mut persons = 0u64;
        let mut ended = false;
        for (n, line) in lines {
            let line = line.map_err(io)?;
            if ended {
                return Err(bad(n, "data after the end marker"));
            }
            let text = line.trim();
            if text.starts_with('{') {
                let Sealing::V1 = sealing else {
                    return Err(bad(
                        n,
                        "a clear end marker, where this version seals it: the file was altered",
                    ));
                };
                let trailer: Trailer =
                    serde_json::from_str(text).map_err(|_| bad(n, "not an end marker"))?;
                if !trailer.end || trailer.persons != persons {
                    return Err(bad(n, "the end marker does not match the persons read"));
                }
                ended = true;
                continue;
            }
            let sealed = STANDARD.decode(text).map_err(|_| bad(n, "not base64"))?;
            if let Some(json) = self.export_box.open(&sealing.person(persons), &sealed) {
                record(n, &json)?;
                spool.push(text)?;
                persons += 1;
                continue;
            }
            let Sealing::V2 { export } = sealing else {
                return Err(bad(
                    n,
                    "does not open with this template key (exported under another key?)",
                ));
            };
            let Some(json) = self.export_box.open(&v2_trailer_aad(export), &sealed) else {
                return Err(bad(n, self.misplaced(export, persons, &sealed)));
            };
            let trailer: Trailer =
                serde_json::from_str(&json).map_err(|_| bad(n, "not an end marker"))?;
            if !trailer.end || trailer.persons != persons {
                return Err(bad(
                    n,
                    format!(
                        "the end marker counts {} persons but {persons} came before it: person \
                         lines were removed or added",
                        trailer.persons
                    ),
                ));
            }
            ended = true;
        }
        if !ended {
            return Err(AppError::Import(
                "the export file is truncated (no end marker); re-run the import with a whole file"
                    .into(),
            ));
        }
        Ok(persons)
    }

    /// Why a line of version 2 export `export` that should be its `expected`-th (0-based)
    /// person does not open there: the place it belongs if it is nearby, else where it may
    /// come from. Says nothing of what the line holds.
    fn misplaced(&self, export: &str, expected: u64, sealed: &[u8]) -> String {
        let found = (expected.saturating_sub(NEARBY)..=expected.saturating_add(NEARBY))
            .filter(|&i| i != expected)
            .find(|&i| {
                self.export_box
                    .open(&v2_person_aad(export, i), sealed)
                    .is_some()
            });
        match found {
            Some(i) if i > expected => format!(
                "person record {} of this export, where record {} belongs: records before it \
                 were removed or moved",
                i + 1,
                expected + 1
            ),
            Some(i) => format!(
                "person record {} of this export, where record {} belongs: records were \
                 repeated or moved",
                i + 1,
                expected + 1
            ),
            None if self.export_box.open(V1_AAD, sealed).is_some() => {
                "a line of a version 1 export, spliced into this one".into()
            }
            None => format!(
                "does not open as person record {} of this export: it comes from another \
                 export or was altered, or the file was exported under another template key",
                expected + 1
            ),
        }
    }
}

fn spool_error(e: std::io::Error) -> AppError {
    AppError::Import(format!("the import's spool file: {e}"))
}

/// The sealed person lines of an import between its two passes: a file only this
/// process reads, whose name is removed as soon as it is created where the system
/// allows it (Unix: nothing is left behind even if the process dies), else when it is
/// dropped. The lines in it are as sealed as in the export file.
struct Spool {
    // Declared before `removal`, so closed before the name is removed (where an open
    // file cannot be removed).
    file: BufWriter<File>,
    removal: Removal,
}

/// The spool, read back.
struct Spooled {
    lines: std::io::Lines<BufReader<File>>,
    _removal: Removal,
}

/// Removes a spool file's name when dropped, if it is still there.
struct Removal(Option<PathBuf>);

impl Drop for Removal {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Spool {
    /// A spool in the data directory, else in the temporary directory. Why the data
    /// directory first: it is where the operator keeps room for the registry, while the
    /// temporary directory is often a RAM-backed tmpfs (which would hold the file in
    /// memory after all); a PostgreSQL node may have no data directory, hence the second.
    fn create(data_dir: &Path) -> Result<Self, AppError> {
        let mut failures = Vec::new();
        for dir in [data_dir.to_path_buf(), std::env::temp_dir()] {
            match Self::create_in(&dir) {
                Ok(spool) => return Ok(spool),
                Err(e) => failures.push(format!("{}: {e}", dir.display())),
            }
        }
        Err(AppError::Import(format!(
            "no room for the import's spool file ({})",
            failures.join("; ")
        )))
    }

    fn create_in(dir: &Path) -> std::io::Result<Self> {
        let mut name = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut name);
        let path = dir.join(format!(".registry-import-{}.spool", hex::encode(name)));
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path)?;
        let removal = if cfg!(unix) && std::fs::remove_file(&path).is_ok() {
            Removal(None)
        } else {
            Removal(Some(path))
        };
        Ok(Spool {
            file: BufWriter::new(file),
            removal,
        })
    }

    fn push(&mut self, line: &str) -> Result<(), AppError> {
        writeln!(self.file, "{line}").map_err(spool_error)
    }

    /// The spooled lines, from the first.
    fn rewind(self) -> Result<Spooled, AppError> {
        let Spool { file, removal } = self;
        let mut file = file.into_inner().map_err(|e| spool_error(e.into_error()))?;
        file.rewind().map_err(spool_error)?;
        Ok(Spooled {
            lines: BufReader::new(file).lines(),
            _removal: removal,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use renzheng_store::NewPortrait;
    use renzheng_vision::testing::TestEngine;

    use super::*;
    use crate::keys::SecretBox;
    use crate::settings::{Secret, Settings};
    use crate::EngineSource;

    const PEOPLE: [(&str, &str); 3] = [
        ("11010519491231002X", "胡兰"),
        ("310101199001010020", "江伟"),
        ("440304198501010013", "李娜"),
    ];

    /// A node on its own database, under the template key every node here shares.
    async fn open(dir: &tempfile::TempDir) -> App {
        let settings = Settings {
            data_dir: dir.path().join("data"),
            key_dir: Some(dir.path().join("keys")),
            template_key: Some(Secret::new("5a".repeat(32))),
            ..Settings::default()
        };
        App::open(settings, EngineSource::Ready(Arc::new(TestEngine::new())))
            .await
            .expect("opening the app")
    }

    /// A node holding `PEOPLE`, the first with a kept photo.
    async fn source(dir: &tempfile::TempDir) -> App {
        let app = open(dir).await;
        for (i, (id, name)) in PEOPLE.into_iter().enumerate() {
            let portrait = NewPortrait {
                model_id: "test-model".into(),
                embedding: vec![i as f32 + 0.5, -1.25, 3.0],
                quality: Some(serde_json::json!({ "sharpness": i })),
                photo: (i == 0).then(|| vec![1, 2, 3, 4]),
            };
            app.store
                .enrol(
                    &IdNumber::parse(id).unwrap(),
                    &PersonName::parse(name).unwrap(),
                    vec![portrait],
                    None,
                    app.now_ms(),
                )
                .await
                .unwrap();
        }
        app
    }

    async fn export(app: &App) -> Vec<String> {
        let mut out = Vec::new();
        app.export_registry(&mut out).await.unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    async fn import(target: &App, lines: &[String]) -> Result<TransferSummary, AppError> {
        let file = lines.join("\n") + "\n";
        target
            .import_registry(&Actor::Cli, &mut file.as_bytes())
            .await
    }

    /// Imports `lines` into a fresh node and returns why they were refused, having checked
    /// that the refusal names no one and that nothing was written.
    async fn refused(lines: &[String]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let target = open(&dir).await;
        let result = import(&target, lines).await;
        assert_eq!(
            target.store.count_persons().await.unwrap(),
            0,
            "a refused file wrote persons ({result:?})"
        );
        let Err(AppError::Import(why)) = result else {
            panic!("not refused as an import: {result:?}");
        };
        for (id, name) in PEOPLE {
            assert!(!why.contains(id) && !why.contains(name), "{why}");
        }
        why
    }

    fn header(lines: &[String]) -> serde_json::Value {
        serde_json::from_str(&lines[0]).unwrap()
    }

    #[tokio::test]
    async fn an_export_round_trips_and_names_no_one() {
        let from = tempfile::tempdir().unwrap();
        let app = source(&from).await;
        let lines = export(&app).await;
        assert_eq!(lines.len(), 5, "header, three persons, end marker");
        let head = header(&lines);
        assert_eq!(head["format"], "renzheng-registry");
        assert_eq!(head["version"], 2);
        assert_eq!(head["export"].as_str().unwrap().len(), 32);
        assert_ne!(header(&export(&app).await)["export"], head["export"]);
        let text = lines.join("\n");
        for (id, name) in PEOPLE {
            assert!(!text.contains(id) && !text.contains(name), "sealed");
        }
        assert!(!text.contains("persons"), "the end marker is sealed too");

        let to = tempfile::tempdir().unwrap();
        let target = open(&to).await;
        let summary = import(&target, &lines).await.unwrap();
        assert_eq!((summary.imported, summary.already_present), (3, 0));
        for (id, name) in PEOPLE {
            let id = IdNumber::parse(id).unwrap();
            let (a, b) = (
                app.store.get_person(&id).await.unwrap().unwrap(),
                target.store.get_person(&id).await.unwrap().unwrap(),
            );
            assert_eq!(b.person.name.as_str(), name);
            assert_eq!(a.portraits.len(), b.portraits.len());
            for (p, q) in a.portraits.iter().zip(&b.portraits) {
                assert_eq!(
                    (&p.model_id, &p.embedding, &p.quality, p.has_photo),
                    (&q.model_id, &q.embedding, &q.quality, q.has_photo)
                );
            }
            assert_eq!(
                app.store.kept_photos(&id).await.unwrap(),
                target.store.kept_photos(&id).await.unwrap()
            );
        }
        // A re-run adds nothing twice.
        let again = import(&target, &lines).await.unwrap();
        assert_eq!((again.imported, again.already_present), (0, 3));
        // No spool file is left behind.
        let left: Vec<_> = std::fs::read_dir(to.path().join("data"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains("spool"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[tokio::test]
    async fn a_file_with_lines_removed_moved_or_repeated_is_refused_whole() {
        let from = tempfile::tempdir().unwrap();
        let lines = export(&source(&from).await).await;

        let mut removed = lines.clone();
        removed.remove(2);
        let why = refused(&removed).await;
        assert!(
            why.contains("line 3: person record 3 of this export, where record 2 belongs"),
            "{why}"
        );

        let mut swapped = lines.clone();
        swapped.swap(2, 3);
        let why = refused(&swapped).await;
        assert!(
            why.contains("line 3: person record 3 of this export, where record 2 belongs"),
            "{why}"
        );

        let mut repeated = lines.clone();
        repeated.insert(2, lines[1].clone());
        let why = refused(&repeated).await;
        assert!(
            why.contains("line 3: person record 1 of this export, where record 2 belongs"),
            "{why}"
        );

        // The last person removed: the end marker's count gives it away.
        let mut shortened = lines.clone();
        shortened.remove(3);
        let why = refused(&shortened).await;
        assert!(
            why.contains("line 4: the end marker counts 3 persons but 2 came before it"),
            "{why}"
        );
    }

    #[tokio::test]
    async fn a_line_from_another_export_of_the_same_registry_is_refused() {
        let from = tempfile::tempdir().unwrap();
        let app = source(&from).await;
        let jiang = IdNumber::parse(PEOPLE[1].0).unwrap();
        // An older export, from before a rename: its record of the person would undo it.
        app.store
            .rename_person(&jiang, &PersonName::parse("江文").unwrap(), app.now_ms())
            .await
            .unwrap();
        let older = export(&app).await;
        app.store
            .rename_person(
                &jiang,
                &PersonName::parse(PEOPLE[1].1).unwrap(),
                app.now_ms(),
            )
            .await
            .unwrap();
        let newer = export(&app).await;

        let mut spliced = newer.clone();
        spliced[2] = older[2].clone();
        let why = refused(&spliced).await;
        assert!(
            why.contains("line 3: does not open as person record 2 of this export"),
            "{why}"
        );

        // Nor can the header claim the other export's id: then no line of this one opens.
        let mut relabelled = newer.clone();
        relabelled[0] = older[0].clone();
        let why = refused(&relabelled).await;
        assert!(why.contains("line 2: does not open"), "{why}");

        // Nor can another export's end marker stand in for this one's.
        let mut other_end = newer.clone();
        other_end[4] = older[4].clone();
        let why = refused(&other_end).await;
        assert!(why.contains("line 5: does not open"), "{why}");
    }

    #[tokio::test]
    async fn a_file_without_its_sealed_end_marker_is_refused() {
        let from = tempfile::tempdir().unwrap();
        let lines = export(&source(&from).await).await;

        let why = refused(&lines[..4]).await;
        assert!(why.contains("truncated"), "{why}");

        // The last person and the end marker dropped, a clear marker with the count fixed
        // put in their place (what a version 1 file would have taken).
        let mut forged = lines[..3].to_vec();
        forged.push(r#"{"end":true,"persons":2}"#.into());
        let why = refused(&forged).await;
        assert!(why.contains("line 4: a clear end marker"), "{why}");

        // The sealed marker's count edited in place: it no longer opens.
        let mut edited = lines.clone();
        let mut sealed = STANDARD.decode(&lines[4]).unwrap();
        *sealed.last_mut().unwrap() ^= 1;
        edited[4] = STANDARD.encode(sealed);
        let why = refused(&edited).await;
        assert!(why.contains("line 5: does not open"), "{why}");

        let mut extra = lines.clone();
        extra.push(lines[2].clone());
        let why = refused(&extra).await;
        assert!(why.contains("line 6: data after the end marker"), "{why}");
    }

    #[tokio::test]
    async fn a_version_2_file_cannot_pass_for_version_1() {
        let from = tempfile::tempdir().unwrap();
        let mut lines = export(&source(&from).await).await;
        lines[0] = r#"{"format":"renzheng-registry","version":1}"#.into();
        let why = refused(&lines).await;
        assert!(why.contains("line 2: does not open"), "{why}");
    }

    #[tokio::test]
    async fn an_export_under_another_key_is_refused() {
        let from = tempfile::tempdir().unwrap();
        let app = source(&from).await;
        let stranger = SecretBox::new(&[7; 32]);
        let mut lines = export(&app).await;
        let export_id = header(&lines)["export"].as_str().unwrap().to_owned();
        let json = app
            .export_box
            .open(
                &v2_person_aad(&export_id, 0),
                &STANDARD.decode(&lines[1]).unwrap(),
            )
            .unwrap();
        lines[1] = STANDARD.encode(stranger.seal(&v2_person_aad(&export_id, 0), &json));
        let why = refused(&lines).await;
        assert!(
            why.contains("line 2: does not open as person record 1 of this export"),
            "{why}"
        );
    }

    /// A file as the previous release wrote it: each person sealed `nonce ‖ ciphertext`
    /// under the export key derived from the template key, all with one associated data,
    /// and a clear end marker.
    fn version_1(persons: &[String]) -> Vec<String> {
        use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
        use chacha20poly1305::XChaCha20Poly1305;
        let key = crate::keys::derive(&[0x5a; 32], "renzheng registry export key v1");
        let cipher = XChaCha20Poly1305::new_from_slice(&key).unwrap();
        let mut lines = vec![r#"{"format":"renzheng-registry","version":1}"#.to_owned()];
        lines.extend(persons.iter().map(|json| {
            let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
            let payload = Payload {
                msg: json.as_bytes(),
                aad: V1_AAD.as_bytes(),
            };
            let mut sealed = nonce.to_vec();
            sealed.extend(cipher.encrypt(&nonce, payload).unwrap());
            STANDARD.encode(sealed)
        }));
        lines.push(format!(r#"{{"end":true,"persons":{}}}"#, persons.len()));
        lines
    }

    #[tokio::test]
    async fn a_version_1_file_is_still_imported_and_checked_before_writing() {
        let from = tempfile::tempdir().unwrap();
        let app = source(&from).await;
        let current = export(&app).await;
        let export_id = header(&current)["export"].as_str().unwrap().to_owned();
        let persons: Vec<String> = (0..3)
            .map(|i| {
                let sealed = STANDARD.decode(&current[i + 1]).unwrap();
                app.export_box
                    .open(&v2_person_aad(&export_id, i as u64), &sealed)
                    .unwrap()
                    .to_string()
            })
            .collect();
        let old = version_1(&persons);

        let to = tempfile::tempdir().unwrap();
        let target = open(&to).await;
        let summary = import(&target, &old).await.unwrap();
        assert_eq!((summary.imported, summary.already_present), (3, 0));

        // Its weaker checks still hold, and still before anything is written.
        let why = refused(&old[..4]).await;
        assert!(why.contains("truncated"), "{why}");
        let mut miscounted = old.clone();
        miscounted[4] = r#"{"end":true,"persons":4}"#.into();
        let why = refused(&miscounted).await;
        assert!(
            why.contains("line 5: the end marker does not match"),
            "{why}"
        );
    }
}
