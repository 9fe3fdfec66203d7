//! Moving the registry between databases (SQLite → PostgreSQL, or one server to another):
//! `registry export` writes every person, line by line, each line sealed under a key
//! derived from the template key; `registry import FILE` reads it into the configured
//! database. The file holds names, ID numbers and face templates, so nothing in it is
//! readable without the template key, which the two ends share (as nodes of one
//! deployment must).
//!
//! ```text
//! {"format":"renzheng-registry","version":1}
//! base64(nonce ‖ XChaCha20-Poly1305(person JSON))      one line per person
//! {"end":true,"persons":N}                             a truncated file is refused
//! ```

use std::io::{BufRead, Write};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use renzheng_domain::{IdNumber, PersonName};
use renzheng_store::NewPortrait;
use serde::{Deserialize, Serialize};

use crate::audit::Actor;
use crate::keys::SecretBox;
use crate::{App, AppError};

const FORMAT: &str = "renzheng-registry";
const VERSION: u32 = 1;
/// Associated data of every sealed line: a line of another file type does not open.
const AAD: &str = "renzheng registry export v1";
/// Persons read from the store per page.
const PAGE: u32 = 500;

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
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
}

#[derive(Serialize, Deserialize)]
struct PortraitLine {
    model_id: String,
    embedding: Vec<f32>,
    quality: Option<serde_json::Value>,
    /// A kept photo, still encrypted under the photo key.
    photo: Option<String>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TransferSummary {
    /// Persons written.
    pub imported: u64,
    /// Persons already in the database, left as they are.
    pub already_present: u64,
}

/// The key of export files: derived from the template key, so that it is never used for
/// two purposes.
pub(crate) fn export_box(template_key: &[u8]) -> SecretBox {
    SecretBox::new(&crate::keys::derive(
        template_key,
        "renzheng registry export key v1",
    ))
}

fn io(e: std::io::Error) -> AppError {
    AppError::Import(format!("export file: {e}"))
}

impl App {
    /// Writes every person of the registry to `out`; returns how many.
    pub async fn export_registry(&self, out: &mut dyn Write) -> Result<u64, AppError> {
        let header = Header {
            format: FORMAT.into(),
            version: VERSION,
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
                };
                let json = serde_json::to_string(&line).expect("serializes");
                let sealed = self.export_box.seal(AAD, &json);
                writeln!(out, "{}", STANDARD.encode(sealed)).map_err(io)?;
                count += 1;
            }
            after = Some(last);
        }
        let trailer = Trailer {
            end: true,
            persons: count,
        };
        writeln!(
            out,
            "{}",
            serde_json::to_string(&trailer).expect("serializes")
        )
        .map_err(io)?;
        out.flush().map_err(io)?;
        Ok(count)
    }

    /// Reads an export into the registry. Persons already present are left as they are
    /// (an import can be re-run after an interruption); each person is one transaction.
    pub async fn import_registry(
        &self,
        actor: &Actor,
        input: &mut dyn BufRead,
    ) -> Result<TransferSummary, AppError> {
        let bad = |n: usize, why: &str| AppError::Import(format!("export file line {n}: {why}"));
        let mut lines = input.lines().enumerate().map(|(i, l)| (i + 1, l));
        let (_, first) = lines.next().ok_or_else(|| bad(1, "empty file"))?;
        let header: Header = serde_json::from_str(&first.map_err(io)?)
            .map_err(|_| bad(1, "not a Renzheng registry export"))?;
        if header.format != FORMAT || header.version != VERSION {
            return Err(bad(1, "not a Renzheng registry export of a known version"));
        }
        let mut summary = TransferSummary::default();
        let mut seen = 0u64;
        let mut finished = false;
        for (n, line) in lines {
            let line = line.map_err(io)?;
            if finished {
                return Err(bad(n, "data after the end marker"));
            }
            if line.starts_with('{') {
                let trailer: Trailer =
                    serde_json::from_str(&line).map_err(|_| bad(n, "not an end marker"))?;
                if !trailer.end || trailer.persons != seen {
                    return Err(bad(n, "the end marker does not match the persons read"));
                }
                finished = true;
                continue;
            }
            let sealed = STANDARD
                .decode(line.trim())
                .map_err(|_| bad(n, "not base64"))?;
            let json = self.export_box.open(AAD, &sealed).ok_or_else(|| {
                bad(
                    n,
                    "does not open with this template key (exported under another key?)",
                )
            })?;
            let person: PersonLine =
                serde_json::from_str(&json).map_err(|_| bad(n, "not a person record"))?;
            seen += 1;
            let id = IdNumber::parse(&person.id).map_err(|_| bad(n, "invalid ID number"))?;
            let name = PersonName::parse(&person.name).map_err(|_| bad(n, "invalid name"))?;
            if self.store.get_person(&id).await?.is_some() {
                summary.already_present += 1;
                continue;
            }
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
            self.store
                .enrol(&id, &name, portraits, None, self.now_ms())
                .await?;
            summary.imported += 1;
        }
        if !finished {
            return Err(AppError::Import(
                "the export file is truncated (no end marker); re-run the import with a whole file"
                    .into(),
            ));
        }
        let mut event = self.event(actor, "registry.imported");
        event.detail = Some(format!(
            "imported={} already_present={}",
            summary.imported, summary.already_present
        ));
        self.record_event(event).await;
        Ok(summary)
    }
}
