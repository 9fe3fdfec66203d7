//! The registry (the 库): enrolling a person with portraits, showing them masked, removing
//! everything about them. The CLI and the admin API both come here.

use renzheng_domain::{IdNumber, PersonName};
use renzheng_store::{NewPortrait, PersonRecord};
use renzheng_vision::{EngineError, FaceEngine, Outcome};
use serde::Serialize;

use crate::audit::Actor;
use crate::check::required;
use crate::keys::PhotoCipher;
use crate::{App, AppError};

/// A second face at least this fraction of the first one's area makes a portrait
/// ambiguous (whose face is enrolled?). Smaller background faces are tolerated.
const RIVAL_FACE_AREA: f64 = 0.5;

/// An enrolment as sent (all optional until parsed). No `Debug`: clear personal data.
#[derive(Default)]
pub struct EnrolFields {
    /// The name as on the ID card.
    pub name: Option<String>,
    /// The ID number.
    pub id_card: Option<String>,
    /// Portrait photos, as bytes.
    pub photos: Vec<Vec<u8>>,
}

/// An enrolment whose name and ID number parsed. No `Debug`: clear personal data.
pub struct EnrolRequest {
    /// The person's name.
    pub name: PersonName,
    /// Their ID number.
    pub id: IdNumber,
    /// Portrait photos (zero or more; without any, checks answer 5).
    pub photos: Vec<Vec<u8>>,
}

impl EnrolRequest {
    /// Parses the name and ID number (name first; blank is missing).
    pub fn parse(fields: EnrolFields) -> Result<Self, AppError> {
        let name = required(fields.name, "name")?;
        let id = required(fields.id_card, "idCard")?;
        Ok(EnrolRequest {
            name: PersonName::parse(&name)?,
            id: IdNumber::parse(&id)?,
            photos: fields.photos,
        })
    }
}

/// Why one portrait photo cannot be enrolled.
#[derive(Debug)]
pub(crate) enum PortraitError {
    /// The photo is unusable as a portrait; the reason is for the operator.
    Refused(String),
    /// The engine failed (not the photo's fault).
    Engine(EngineError),
}

/// Analyses a portrait photo (blocking CPU work) and returns what to store, or why not.
pub(crate) fn analyze_portrait(
    engine: &dyn FaceEngine,
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

impl App {
    /// Analyses one portrait within the engine gate: `Ok(Err(reason))` when the photo is
    /// refused, `Err` when the engine could not run it.
    pub(crate) async fn analyze_portrait(
        &self,
        photo: Vec<u8>,
    ) -> Result<Result<NewPortrait, String>, AppError> {
        let cipher = self.photo_cipher.clone();
        let analysed = self
            .engine
            .run(move |engine| analyze_portrait(engine, &photo, cipher.as_ref()))
            .await?;
        match analysed {
            Ok(portrait) => Ok(Ok(portrait)),
            Err(PortraitError::Refused(reason)) => Ok(Err(reason)),
            Err(PortraitError::Engine(e)) => Err(AppError::Engine(e)),
        }
    }

    /// Enrols (or renames) a person with the request's portraits. Every photo must show a
    /// usable face, else nothing is written and the error says which photo and why.
    pub async fn enrol(
        &self,
        actor: &Actor,
        request: EnrolRequest,
    ) -> Result<PersonView, AppError> {
        let EnrolRequest { name, id, photos } = request;
        let mut portraits = Vec::with_capacity(photos.len());
        for (index, photo) in photos.into_iter().enumerate() {
            match self.analyze_portrait(photo).await? {
                Ok(portrait) => portraits.push(portrait),
                Err(reason) => {
                    return Err(AppError::PortraitRefused {
                        index: index + 1,
                        reason,
                    })
                }
            }
        }
        let record = self.store_enrolment(actor, &id, &name, portraits).await?;
        Ok(PersonView::from(&record))
    }

    /// Writes one enrolment (one transaction) and its event.
    pub(crate) async fn store_enrolment(
        &self,
        actor: &Actor,
        id: &IdNumber,
        name: &PersonName,
        portraits: Vec<NewPortrait>,
    ) -> Result<PersonRecord, AppError> {
        let count = portraits.len();
        self.store.enrol(id, name, portraits, self.now_ms()).await?;
        let record = self
            .store
            .get_person(id)
            .await?
            .ok_or(AppError::NotFound("person"))?;
        tracing::info!(id_number = %id, name = %name, portraits = count, "person enrolled");
        let mut event = self
            .event(actor, "person.enrolled")
            .about_person(id, &self.audit_key);
        event.detail = Some(format!("{count} portrait(s) added"));
        self.record_event(event).await;
        Ok(record)
    }

    /// The person, masked; `None` when they are not in the registry.
    pub async fn person(&self, id: &IdNumber) -> Result<Option<PersonView>, AppError> {
        Ok(self
            .store
            .get_person(id)
            .await?
            .map(|record| PersonView::from(&record)))
    }

    /// Removes the person and everything about them (portraits, kept photos, the link from
    /// past audit rows and events); [`AppError::NotFound`] when there is no such person.
    pub async fn remove_person(&self, actor: &Actor, id: &IdNumber) -> Result<(), AppError> {
        if !self.store.remove_person(id, &self.audit_key).await? {
            return Err(AppError::NotFound("person"));
        }
        tracing::info!(id_number = %id, "person removed");
        // Deliberately about nobody: the removed person must leave no trace.
        self.record_event(self.event(actor, "person.removed")).await;
        Ok(())
    }
}

/// A person, masked, for display.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonView {
    /// Masked ID number (`11**************2X`).
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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// What [`App::reembed`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReembedSummary {
    /// The active pack's embedding id.
    pub model_id: String,
    /// Persons who had portraits, but none of this id.
    pub missing: usize,
    /// Of those, persons now embedded from their kept photos.
    pub reembedded: usize,
    /// Portraits added.
    pub portraits: usize,
    /// Persons without a kept photo (or with `keep_photos` off): re-import their photos
    /// with `renzheng registry reembed --from DIR` (masked when displayed).
    #[serde(serialize_with = "masked_ids")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub without_photo: Vec<IdNumber>,
    /// Persons none of whose kept photos is usable with this pack.
    #[serde(serialize_with = "masked_ids")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub refused: Vec<IdNumber>,
}

fn masked_ids<S: serde::Serializer>(ids: &[IdNumber], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ids.iter().map(ToString::to_string))
}

impl App {
    /// The active pack's embedding id and the persons who cannot be checked with it
    /// (portraits of other packs only: their checks answer 5). Loads the engine.
    pub async fn persons_without_embeddings(&self) -> Result<(String, Vec<IdNumber>), AppError> {
        let model_id = self.engine().await?.model_id().to_owned();
        let ids = self.store.persons_without_model(&model_id).await?;
        Ok((model_id, ids))
    }

    /// Computes the active pack's embeddings for every person who lacks them, from their
    /// kept photos (`keep_photos`); the old pack's portraits stay, so switching back needs
    /// nothing. Persons without a usable kept photo are listed for a re-import.
    pub async fn reembed(&self, actor: &Actor) -> Result<ReembedSummary, AppError> {
        let (model_id, missing) = self.persons_without_embeddings().await?;
        let mut summary = ReembedSummary {
            model_id,
            missing: missing.len(),
            ..ReembedSummary::default()
        };
        for id in missing {
            let sealed = self.store.kept_photos(&id).await?;
            let photos: Vec<Vec<u8>> = match &self.photo_cipher {
                Some(cipher) => sealed.iter().filter_map(|s| cipher.decrypt(s)).collect(),
                None => Vec::new(),
            };
            if photos.is_empty() {
                summary.without_photo.push(id);
                continue;
            }
            let mut portraits = Vec::new();
            for photo in photos {
                if let Ok(mut portrait) = self.analyze_portrait(photo).await? {
                    // The photo is already kept with the person's first portrait.
                    portrait.photo = None;
                    portraits.push(portrait);
                }
            }
            if portraits.is_empty() {
                summary.refused.push(id);
                continue;
            }
            let count = portraits.len();
            for portrait in portraits {
                self.store
                    .add_portrait(&id, portrait, self.now_ms())
                    .await?;
            }
            tracing::info!(id_number = %id, portraits = count, "person re-embedded");
            let mut event = self
                .event(actor, "person.reembedded")
                .about_person(&id, &self.audit_key);
            event.detail = Some(format!("{count} portrait(s) of {}", summary.model_id));
            self.record_event(event).await;
            summary.reembedded += 1;
            summary.portraits += count;
        }
        Ok(summary)
    }
}
