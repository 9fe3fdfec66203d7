//! Registry operations shared by the CLI (`renzheng registry …`) and the admin API:
//! turning a portrait photo into a stored embedding (or a refusal with its reason) and
//! showing a person masked.

use std::sync::Arc;

use renzheng_domain::{IdNumber, PersonName};
use renzheng_store::{NewPortrait, PersonRecord, Store, StoreError};
use renzheng_vision::{Engine, EngineError, Outcome};
use serde::Serialize;

use crate::keys::PhotoCipher;

/// A second face at least this fraction of the first one's area makes a portrait
/// ambiguous (whose face is enrolled?). Smaller background faces are tolerated.
const RIVAL_FACE_AREA: f64 = 0.5;

/// Why a portrait was not enrolled.
#[derive(Debug, thiserror::Error)]
pub enum PortraitError {
    /// The photo is unusable as a portrait; the reason is for the operator.
    #[error("{0}")]
    Refused(String),
    /// The engine failed (not the photo's fault).
    #[error("face engine: {0}")]
    Engine(EngineError),
}

/// Analyses a portrait photo (blocking CPU work) and returns what to store, or why not.
pub fn analyze_portrait(
    engine: &Engine,
    photo: &[u8],
    cipher: Option<&PhotoCipher>,
) -> Result<NewPortrait, PortraitError> {
    let analysis = match engine.analyze(photo) {
        Ok(a) => a,
        Err(EngineError::Image(e)) => {
            return Err(PortraitError::Refused(format!("unusable image: {e}")))
        }
        Err(e) => return Err(PortraitError::Engine(e)),
    };
    let face = match (analysis.outcome(), &analysis.face) {
        (Outcome::NoFace, _) | (_, None) => {
            return Err(PortraitError::Refused("no face found".into()))
        }
        (Outcome::QualityRefused, Some(face)) => {
            let issues: Vec<&str> = face.quality.issues.iter().map(|i| i.as_str()).collect();
            return Err(PortraitError::Refused(format!(
                "photo quality too low: {}",
                issues.join(", ")
            )));
        }
        (Outcome::Usable, Some(face)) => face,
    };
    if let [first, second, ..] = analysis.faces.as_slice() {
        let (a, b) = (first.rect.area() as f64, second.rect.area() as f64);
        if a > 0.0 && b / a >= RIVAL_FACE_AREA {
            return Err(PortraitError::Refused(format!(
                "{} faces of similar size; a portrait must show one person",
                analysis.faces.len()
            )));
        }
    }
    let quality = serde_json::to_value(&face.quality).ok();
    Ok(NewPortrait {
        model_id: engine.model_id().to_owned(),
        embedding: face.embedding.0.clone(),
        quality,
        photo: cipher.map(|c| c.encrypt(photo)),
    })
}

/// Creates or renames the person and adds the analysed portraits.
pub async fn enrol(
    store: &Arc<dyn Store>,
    id: &IdNumber,
    name: &PersonName,
    portraits: Vec<NewPortrait>,
) -> Result<PersonRecord, StoreError> {
    store.enrol(id, name, portraits).await?;
    store
        .get_person(id)
        .await?
        .ok_or(StoreError::NotFound("person"))
}

/// A person, masked, for display.
#[derive(Debug, Clone, Serialize)]
pub struct PersonView {
    /// Masked ID number (`110105********002X`).
    pub id_number: String,
    /// Masked name (`张*`).
    pub name: String,
    /// Registration time, unix milliseconds.
    pub created_at: i64,
    /// Last rename, unix milliseconds.
    pub updated_at: i64,
    /// The portraits (no embeddings, no photos).
    pub portraits: Vec<PortraitView>,
}

/// A portrait, for display.
#[derive(Debug, Clone, Serialize)]
pub struct PortraitView {
    /// Its id.
    pub id: i64,
    /// The embedding model.
    pub model_id: String,
    /// Whether the (encrypted) photo is kept.
    pub has_photo: bool,
    /// When it was added, unix milliseconds.
    pub created_at: i64,
}

impl From<&PersonRecord> for PersonView {
    fn from(r: &PersonRecord) -> Self {
        PersonView {
            id_number: r.person.id_number.masked(),
            name: r.person.name.masked(),
            created_at: r.person.created_at,
            updated_at: r.person.updated_at,
            portraits: r
                .portraits
                .iter()
                .map(|p| PortraitView {
                    id: p.id,
                    model_id: p.model_id.clone(),
                    has_photo: p.has_photo,
                    created_at: p.created_at,
                })
                .collect(),
        }
    }
}
