//! The registry (the 库): enrolling a person with portraits, showing them masked, removing
//! everything about them. The CLI and the admin API both come here.

use renzheng_domain::{BasisFields, IdNumber, PersonName, Reference};
use renzheng_store::{
    BasisRecord, NewPortrait, PersonHandle, PersonRecord, Processing, ProcessingAction, StoreError,
};
use renzheng_vision::{EngineError, FaceEngine};
use serde::Serialize;

use crate::audit::Actor;
use crate::check::required;
use crate::compliance::{BasisStatement, BasisView};
use crate::integrity::{
    first_disagreement, refusal_cause, skip_on_record, DuplicateHit, NewFace, Reason,
    WRITE_ATTEMPTS,
};
use crate::keys::PhotoCipher;
use crate::{App, AppError};

/// An enrolment as sent (all optional until parsed). No `Debug`: clear personal data.
#[derive(Default)]
pub struct EnrolFields {
    /// The name as on the ID card.
    pub name: Option<String>,
    /// The ID number.
    pub id_card: Option<String>,
    /// Portrait photos, as bytes.
    pub photos: Vec<Vec<u8>>,
    /// Enrol even when a face is enrolled under another ID number (needs `reason`).
    pub allow_duplicate_face: bool,
    /// The operator's reason for `allow_duplicate_face`.
    pub reason: Option<String>,
    /// The legal basis for storing the faces (`compliance.require_basis`).
    pub basis: BasisFields,
    /// The purpose, when not `compliance.purpose`.
    pub purpose: Option<String>,
}

/// An enrolment whose name and ID number parsed. No `Debug`: clear personal data.
pub struct EnrolRequest {
    /// The person's name.
    pub name: PersonName,
    /// Their ID number.
    pub id: IdNumber,
    /// Portrait photos (zero or more; without any, checks answer 5).
    pub photos: Vec<Vec<u8>>,
    /// Enrol even when a photo's face is enrolled under another ID number, for this
    /// reason (recorded with the event).
    pub allow_duplicate_face: Option<Reason>,
    /// The legal basis stated with the enrolment (none keeps the person's).
    pub basis: Option<BasisStatement>,
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
            allow_duplicate_face: match (fields.allow_duplicate_face, fields.reason) {
                (false, _) => None,
                (true, Some(reason)) => Some(Reason::parse(&reason)?),
                (true, None) => return Err(AppError::ReasonRequired),
            },
            basis: BasisStatement::parse(&fields.basis, fields.purpose.as_deref())?,
        })
    }
}

/// Why one portrait photo cannot be enrolled.
#[derive(Debug)]
pub(crate) enum PortraitError {
    /// The photo is unusable as a portrait.
    Refused(crate::rules::PortraitRefusal),
    /// The engine failed (not the photo's fault).
    Engine(EngineError),
}

/// Analyses a portrait photo of `owner` (blocking CPU work) and returns what to store
/// (the photo, when kept, sealed for `owner`), or why not.
pub(crate) fn analyze_portrait(
    engine: &dyn FaceEngine,
    photo: &[u8],
    owner: &IdNumber,
    cipher: Option<&PhotoCipher>,
) -> Result<NewPortrait, PortraitError> {
    let analysis = match engine.analyze(photo) {
        Ok(a) => a,
        Err(EngineError::Image(e)) => {
            return Err(PortraitError::Refused(
                crate::rules::PortraitRefusal::UnusableImage(e.to_string()),
            ))
        }
        Err(e) => return Err(PortraitError::Engine(e)),
    };
    if let Some(reason) = crate::rules::portrait_refusal(&analysis) {
        return Err(PortraitError::Refused(reason));
    }
    let face = analysis
        .face
        .as_ref()
        .expect("a portrait the rule accepts has a face");
    let quality = serde_json::to_value(&face.quality).ok();
    Ok(NewPortrait {
        model_id: engine.model_id().to_owned(),
        embedding: face.embedding.0.clone(),
        quality,
        photo: cipher.map(|c| c.encrypt(owner.as_str(), photo)),
    })
}

impl App {
    /// Analyses one portrait within the engine gate: `Ok(Err(reason))` when the photo is
    /// refused, `Err` when the engine could not run it.
    pub(crate) async fn analyze_portrait(
        &self,
        photo: Vec<u8>,
        owner: &IdNumber,
    ) -> Result<Result<NewPortrait, crate::rules::PortraitRefusal>, AppError> {
        let cipher = self.photo_cipher();
        let owner = owner.clone();
        let analysed = self
            .engine
            .run(move |engine| analyze_portrait(engine, &photo, &owner, cipher.as_ref()))
            .await?;
        match analysed {
            Ok(portrait) => Ok(Ok(portrait)),
            Err(PortraitError::Refused(reason)) => Ok(Err(reason)),
            Err(PortraitError::Engine(e)) => Err(AppError::Engine(e)),
        }
    }

    /// Analyses every photo of a submission; the first refused one fails it all (and is
    /// recorded as a refusal about `id`).
    async fn analyse_faces(
        &self,
        actor: &Actor,
        id: &IdNumber,
        photos: Vec<Vec<u8>>,
    ) -> Result<Vec<NewFace>, AppError> {
        let mut faces = Vec::with_capacity(photos.len());
        for (i, photo) in photos.into_iter().enumerate() {
            match self.analyze_portrait(photo, id).await? {
                Ok(portrait) => faces.push(NewFace {
                    index: i + 1,
                    portrait,
                }),
                Err(reason) => {
                    let refusal = AppError::PortraitRefused {
                        index: i + 1,
                        reason,
                    };
                    return Err(self.refused(actor, id, refusal).await);
                }
            }
        }
        Ok(faces)
    }

    /// Records a refused registry write about `id` (`person.portrait-refused`, or
    /// `person.basis-refused` for want of a legal basis), so that an operator sees what was
    /// tried, and gives the refusal back to be returned.
    pub(crate) async fn refused(
        &self,
        actor: &Actor,
        id: &IdNumber,
        refusal: AppError,
    ) -> AppError {
        let cause = refusal_cause(&refusal);
        let kind = match refusal {
            AppError::BasisRequired | AppError::Basis(_) => "person.basis-refused",
            _ => "person.portrait-refused",
        };
        let mut event = self.event(actor, kind).about_person(id, &self.audit_key);
        event.detail = Some(match &refusal {
            AppError::PortraitRefused { index, .. }
            | AppError::PortraitMismatch { index, .. }
            | AppError::DuplicateFace { index, .. } => format!("photo {index}: {cause}"),
            _ => cause,
        });
        self.record_event(event).await;
        refusal
    }

    /// Enrols a person, or adds portraits to an enrolled one, under the registry's rules
    /// (`integrity.rs`): every photo must show a usable face that matches the person's
    /// other portraits and is not enrolled under another ID number (unless
    /// `allow_duplicate_face`); an enrolled person is never renamed here
    /// ([`AppError::NameMismatch`]). Photos already on record are skipped. On any refusal
    /// nothing is written.
    pub async fn enrol(&self, actor: &Actor, request: EnrolRequest) -> Result<Enrolled, AppError> {
        let EnrolRequest {
            name,
            id,
            photos,
            allow_duplicate_face,
            basis,
        } = request;
        // Before the photos are analysed: a refusal for want of a basis costs no inference.
        let basis = self
            .basis_to_record(actor, &id, basis, !photos.is_empty())
            .await?;
        let faces = self.analyse_faces(actor, &id, photos).await?;
        self.enrol_faces(
            actor,
            &id,
            &name,
            faces,
            allow_duplicate_face.as_ref(),
            basis.as_ref(),
        )
        .await
    }

    /// [`enrol`](Self::enrol) with the photos analysed.
    pub(crate) async fn enrol_faces(
        &self,
        actor: &Actor,
        id: &IdNumber,
        name: &PersonName,
        faces: Vec<NewFace>,
        allow_duplicate_face: Option<&Reason>,
        basis: Option<&BasisRecord>,
    ) -> Result<Enrolled, AppError> {
        let engine = if faces.is_empty() {
            None
        } else {
            Some(self.engine().await?)
        };
        let handle = self.store.person_handle(id);
        for _ in 0..WRITE_ATTEMPTS {
            let index = match &engine {
                Some(engine) => Some(self.current_index(engine).await?),
                None => None,
            };
            let version = match index.as_ref().and_then(|g| g.as_ref()) {
                Some(state) => state.version(),
                None => self.store.registry_version().await?,
            };
            let existing = self.store.get_person(id).await?;
            let was_enrolled = existing.is_some();
            if existing.as_ref().is_some_and(|r| r.person.name != *name) {
                return Err(self.refused(actor, id, AppError::NameMismatch).await);
            }
            let on_record = existing.map(|r| r.portraits).unwrap_or_default();
            let (faces, skipped, duplicates) = match (&engine, &index) {
                (Some(engine), Some(index)) => {
                    let (kept, skipped) =
                        skip_on_record(engine.as_ref(), &on_record, faces.clone());
                    if let Some(refusal) = first_disagreement(engine.as_ref(), &on_record, &kept) {
                        return Err(self.refused(actor, id, refusal).await);
                    }
                    let state = index.as_ref().expect("the index is built when locked");
                    let hits = self.duplicate_hits(engine, state, handle, &kept).await?;
                    (kept, skipped, hits)
                }
                _ => (Vec::new(), Vec::new(), Vec::new()),
            };
            self.allow_duplicates(actor, id, &duplicates, allow_duplicate_face)
                .await?;
            let added = faces.len();
            let portraits = faces.into_iter().map(|f| f.portrait).collect();
            match self
                .store
                .enrol_with_basis(id, name, portraits, basis, Some(version), self.now_ms())
                .await
            {
                Err(StoreError::Stale) => continue,
                Err(StoreError::Conflict(_)) => return Err(AppError::NameMismatch),
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            drop(index);
            self.record_duplicates_allowed(actor, id, &duplicates, allow_duplicate_face)
                .await;
            tracing::info!(
                portraits = added,
                skipped = skipped.len(),
                "person enrolled"
            );
            let record = self
                .store
                .get_person(id)
                .await?
                .ok_or(AppError::NotFound("person"))?;
            let mut event = self
                .event(actor, "person.enrolled")
                .about_person(id, &self.audit_key);
            let mut detail = format!(
                "{added} portrait(s) added, {} already on record",
                skipped.len()
            );
            if let Some(basis) = basis {
                detail = format!("{detail}; {}", Self::basis_detail(basis));
            }
            event.detail = Some(detail);
            // The record the law asks for: a face stored (or a person enrolled without one).
            let action = if !was_enrolled {
                Some(ProcessingAction::Enrolled)
            } else if added > 0 {
                Some(ProcessingAction::PortraitsAdded)
            } else {
                None
            };
            event.processing = action.map(|a| self.processing(a, id, record.basis.as_ref()));
            self.record_event(event).await;
            return Ok(Enrolled {
                person: PersonView::from(&record),
                added,
                skipped,
            });
        }
        Err(AppError::Busy {
            retry_after_secs: 1,
        })
    }

    /// Refuses the write when faces are enrolled under other ID numbers and the operator
    /// gave no reason to allow it.
    async fn allow_duplicates(
        &self,
        actor: &Actor,
        id: &IdNumber,
        hits: &[DuplicateHit],
        allow: Option<&Reason>,
    ) -> Result<(), AppError> {
        match (hits.first(), allow) {
            (None, _) | (Some(_), Some(_)) => Ok(()),
            (Some(hit), None) => {
                let refusal = AppError::DuplicateFace {
                    index: hit.index,
                    other: hit.other.masked(),
                    handle: hit.handle.to_string(),
                    score: hit.score,
                };
                Err(self.refused(actor, id, refusal).await)
            }
        }
    }

    /// One `person.duplicate-allowed` event per face allowed under a second ID number.
    async fn record_duplicates_allowed(
        &self,
        actor: &Actor,
        id: &IdNumber,
        hits: &[DuplicateHit],
        allow: Option<&Reason>,
    ) {
        let Some(reason) = allow else { return };
        for hit in hits {
            let mut event = self
                .event(actor, "person.duplicate-allowed")
                .about_person(id, &self.audit_key);
            event.detail = Some(format!(
                "photo {}: the face enrolled under {} ({}), score {:.3}",
                hit.index,
                hit.other.masked(),
                hit.handle,
                hit.score
            ));
            event.reason = Some(reason.as_str().to_owned());
            self.record_event(event).await;
        }
    }

    /// Replaces all of an enrolled person's portraits with `photos` (at least one), for
    /// `reason`: the new photos must agree with each other and, unless
    /// `allow_duplicate_face`, not be enrolled under another ID number. The old portraits
    /// (and their kept photos) are deleted in the same transaction.
    pub async fn replace_portraits(
        &self,
        actor: &Actor,
        id: &IdNumber,
        photos: Vec<Vec<u8>>,
        reason: Reason,
        allow_duplicate_face: Option<Reason>,
        basis: Option<BasisStatement>,
    ) -> Result<Enrolled, AppError> {
        if photos.is_empty() {
            return Err(AppError::MissingField("photo"));
        }
        let before = self
            .store
            .get_person(id)
            .await?
            .ok_or(AppError::NotFound("person"))?;
        let basis = self.basis_to_record(actor, id, basis, true).await?;
        let faces = self.analyse_faces(actor, id, photos).await?;
        let engine = self.engine().await?;
        if let Some(refusal) = first_disagreement(engine.as_ref(), &[], &faces) {
            return Err(self.refused(actor, id, refusal).await);
        }
        let handle = self.store.person_handle(id);
        for _ in 0..WRITE_ATTEMPTS {
            let index = self.current_index(&engine).await?;
            let state = index.as_ref().expect("the index is built when locked");
            let version = state.version();
            let hits = self.duplicate_hits(&engine, state, handle, &faces).await?;
            self.allow_duplicates(actor, id, &hits, allow_duplicate_face.as_ref())
                .await?;
            let portraits = faces.iter().map(|f| f.portrait.clone()).collect();
            match self
                .store
                .replace_portraits_with_basis(
                    id,
                    portraits,
                    basis.as_ref(),
                    Some(version),
                    self.now_ms(),
                )
                .await
            {
                Err(StoreError::Stale) => continue,
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            drop(index);
            self.record_duplicates_allowed(actor, id, &hits, allow_duplicate_face.as_ref())
                .await;
            tracing::info!(portraits = faces.len(), "portraits replaced");
            let mut event = self
                .event(actor, "person.portraits-replaced")
                .about_person(id, &self.audit_key);
            let mut detail = format!(
                "{} portrait(s) replaced by {}",
                before.portraits.len(),
                faces.len()
            );
            if let Some(basis) = &basis {
                detail = format!("{detail}; {}", Self::basis_detail(basis));
            }
            event.detail = Some(detail);
            event.reason = Some(reason.as_str().to_owned());
            let record = self
                .store
                .get_person(id)
                .await?
                .ok_or(AppError::NotFound("person"))?;
            event.processing =
                Some(self.processing(ProcessingAction::Replaced, id, record.basis.as_ref()));
            self.record_event(event).await;
            return Ok(Enrolled {
                person: PersonView::from(&record),
                added: faces.len(),
                skipped: Vec::new(),
            });
        }
        Err(AppError::Busy {
            retry_after_secs: 1,
        })
    }

    /// Gives an enrolled person another name, for `reason` (`person.renamed`).
    pub async fn rename_person(
        &self,
        actor: &Actor,
        id: &IdNumber,
        name: &PersonName,
        reason: Reason,
    ) -> Result<PersonView, AppError> {
        let before = self
            .store
            .get_person(id)
            .await?
            .ok_or(AppError::NotFound("person"))?;
        if before.person.name == *name {
            return Err(crate::Rule::SameName.into());
        }
        match self.store.rename_person(id, name, self.now_ms()).await {
            Err(StoreError::NotFound(_)) => return Err(AppError::NotFound("person")),
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        tracing::info!("person renamed");
        let mut event = self
            .event(actor, "person.renamed")
            .about_person(id, &self.audit_key);
        event.detail = Some(format!(
            "name {} -> {}",
            before.person.name.masked(),
            name.masked()
        ));
        event.reason = Some(reason.as_str().to_owned());
        event.processing =
            Some(self.processing(ProcessingAction::Renamed, id, before.basis.as_ref()));
        self.record_event(event).await;
        self.person(id).await?.ok_or(AppError::NotFound("person"))
    }

    /// A page of the registry (newest enrolment first), masked, with its size.
    pub async fn registry_page(&self, offset: u64, limit: u32) -> Result<RegistryPage, AppError> {
        Ok(RegistryPage {
            total: self.store.count_persons().await?,
            persons: self
                .store
                .persons_page(offset, limit)
                .await?
                .iter()
                .map(PersonLine::from)
                .collect(),
        })
    }

    /// The persons an operator's search names, masked: a full ID number or a handle (at
    /// most one person), or else an exact name (everyone registered under it, up to
    /// `limit`).
    pub async fn find_persons(&self, query: &str, limit: u32) -> Result<Vec<PersonLine>, AppError> {
        let query = query.trim();
        let by_id = if query.starts_with("p-") {
            Some(self.resolve_person(query).await)
        } else {
            IdNumber::parse(query).ok().map(Ok)
        };
        if let Some(id) = by_id {
            return match id {
                Err(AppError::NotFound(_)) => Ok(Vec::new()),
                Err(e) => Err(e),
                Ok(id) => Ok(self
                    .store
                    .get_person(&id)
                    .await?
                    .iter()
                    .map(PersonLine::from)
                    .collect()),
            };
        }
        let name = PersonName::parse(query)?;
        Ok(self
            .store
            .persons_named(&name, limit)
            .await?
            .iter()
            .map(PersonLine::from)
            .collect())
    }

    /// The ID number an operator named: an ID number, or a person handle (`p-…`) as the
    /// registry's reports print them.
    pub async fn resolve_person(&self, text: &str) -> Result<IdNumber, AppError> {
        let text = text.trim();
        if text.starts_with("p-") {
            let handle: PersonHandle = text
                .parse()
                .map_err(|e: StoreError| AppError::Invalid(e.to_string()))?;
            return self
                .store
                .person_by_handle(handle)
                .await?
                .ok_or(AppError::NotFound("person"));
        }
        Ok(IdNumber::parse(text)?)
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
        self.remove_person_on_request(actor, id, None).await
    }

    /// Parses the reference of a data subject's request (`--request-ref`, `requestRef`):
    /// one line, at most 200 characters; blank is none.
    pub fn request_ref(text: Option<&str>) -> Result<Option<Reference>, AppError> {
        text.filter(|t| !t.trim().is_empty())
            .map(|t| {
                Reference::parse(t, "requestRef").map_err(|e| AppError::Invalid(e.to_string()))
            })
            .transpose()
    }

    /// [`App::remove_person`], recording in its event the reference of the data subject's
    /// request it answers (a withdrawn consent, a deletion request), when there is one:
    /// the processing record the law requires keeps that, and nothing of the person.
    pub async fn remove_person_on_request(
        &self,
        actor: &Actor,
        id: &IdNumber,
        request: Option<&Reference>,
    ) -> Result<(), AppError> {
        let detail = request.map(|r| format!("at the data subject's request {r}"));
        self.remove_with_record(actor, id, ProcessingAction::Removed, detail)
            .await
    }

    /// Removes the person with their processing record: the event is about nobody (the
    /// removed person must leave no trace there), the processing record masked and keyed
    /// (the one trace the law asks to keep).
    pub(crate) async fn remove_with_record(
        &self,
        actor: &Actor,
        id: &IdNumber,
        action: ProcessingAction,
        detail: Option<String>,
    ) -> Result<(), AppError> {
        let basis = self
            .store
            .get_person(id)
            .await?
            .ok_or(AppError::NotFound("person"))?
            .basis;
        let mut audit_keys: Vec<&[u8]> = vec![&self.audit_key];
        audit_keys.extend(self.audit_legacy.as_deref());
        if !self.store.remove_person(id, &audit_keys).await? {
            return Err(AppError::NotFound("person"));
        }
        tracing::info!(id_number = %id, action = action.as_str(), "person removed");
        let mut event = self.event(
            actor,
            match action {
                ProcessingAction::Purged => "person.purged",
                _ => "person.removed",
            },
        );
        event.detail = detail;
        event.processing = Some(self.processing(action, id, basis.as_ref()));
        self.record_event(event).await;
        Ok(())
    }

    /// A processing record of `action` on `id` under `basis`.
    pub(crate) fn processing(
        &self,
        action: ProcessingAction,
        id: &IdNumber,
        basis: Option<&BasisRecord>,
    ) -> Processing {
        Processing::about(action, id, &self.audit_key, basis.map(|b| b.basis.kind()))
    }
}

/// One person of the registry's list, masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonLine {
    /// The person's handle (`p-…`).
    pub handle: String,
    /// Masked ID number.
    pub id_number: String,
    /// Masked name.
    pub name: String,
    /// Portraits on record.
    pub portraits: u32,
    /// Enrolment time, unix milliseconds.
    pub created_at: i64,
}

impl From<&renzheng_store::PersonSummary> for PersonLine {
    fn from(s: &renzheng_store::PersonSummary) -> Self {
        PersonLine {
            handle: s.handle.to_string(),
            id_number: s.id_number.masked(),
            name: s.name.masked(),
            portraits: s.portraits,
            created_at: s.created_at,
        }
    }
}

impl From<&PersonRecord> for PersonLine {
    fn from(r: &PersonRecord) -> Self {
        PersonLine {
            handle: r.person.handle.to_string(),
            id_number: r.person.id_number.masked(),
            name: r.person.name.masked(),
            portraits: u32::try_from(r.portraits.len()).unwrap_or(u32::MAX),
            created_at: r.person.created_at,
        }
    }
}

/// A page of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistryPage {
    /// Persons in the registry.
    pub total: u64,
    /// This page, newest enrolment first.
    pub persons: Vec<PersonLine>,
}

/// What an enrolment or a replacement did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Enrolled {
    /// The person as now enrolled, masked (its fields at the top level of the JSON, as
    /// the enrolment's answer has always had them).
    #[serde(flatten)]
    pub person: PersonView,
    /// Portraits added.
    pub added: usize,
    /// 1-based positions of the photos skipped because they were already on record.
    pub skipped: Vec<usize>,
}

/// A person, masked, for display.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonView {
    /// The person's stable handle (`p-` and 16 hex digits), accepted wherever an ID
    /// number is.
    pub handle: String,
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
    /// The legal basis their face is processed under; null when none is recorded.
    pub basis: Option<BasisView>,
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
            handle: r.person.handle.to_string(),
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
            basis: r.basis.as_ref().map(BasisView::from),
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
            let photos: Vec<Vec<u8>> = match self.photo_cipher() {
                Some(cipher) => sealed
                    .iter()
                    .filter_map(|s| cipher.decrypt(id.as_str(), s).map(|p| p.to_vec()))
                    .collect(),
                None => Vec::new(),
            };
            if photos.is_empty() {
                summary.without_photo.push(id);
                continue;
            }
            let mut portraits = Vec::new();
            for photo in photos {
                if let Ok(mut portrait) = self.analyze_portrait(photo, &id).await? {
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
