//! The registry's integrity rules, applied to every write of portraits (enrolment,
//! folder import, replacement), whoever asks (CLI, admin API, console):
//!
//! * a person's portraits all show them: every new photo must be "same person" (result
//!   1, quality cap included) against the portraits on record and the submission's other
//!   photos;
//! * one face sits under one ID number: every new photo is searched against every other
//!   person's portraits, at the pack's duplicate-face line for the registry's size
//!   ([`DuplicateLine`]), unless the operator allows it with a reason;
//! * a photo already on record for the person (the same bytes, or a re-encoded copy) is
//!   skipped, so importing a folder twice changes nothing.
//!
//! The search runs on the in-memory [`TemplateIndex`] of the active pack's templates,
//! built once per process and brought up to date from the registry's change log before
//! every use (so it follows what other nodes sharing the database wrote). Its candidates
//! are re-scored exactly from the store. A guarded write names the registry version its
//! checks saw; if another write landed meanwhile, the checks run again.

use std::sync::Arc;

use renzheng_domain::IdNumber;
use renzheng_index::{Metric as IndexMetric, TemplateIndex};
use renzheng_store::{DuplicateScan, NewPortrait, PersonHandle, Portrait, StoredTemplate};
use renzheng_vision::{
    Comparison, DuplicateLine, Embedding, FaceEngine, Metric, QualityReport, Verdict,
};
use serde::Serialize;
use tokio::sync::{Mutex, MutexGuard};

use crate::audit::Actor;
use crate::error::Against;
use crate::{App, AppError};

/// Templates read from the store per page when the index is built.
const BUILD_PAGE: u32 = 2_000;

/// How many times a guarded write is re-checked when other writes keep landing first.
pub(crate) const WRITE_ATTEMPTS: usize = 5;

/// The in-memory index and the registry version it reflects.
pub(crate) struct IndexState {
    model_id: String,
    version: i64,
    metric: IndexMetric,
    /// Created with the first template's length (`None` while the registry holds none).
    index: Option<TemplateIndex>,
}

/// The process's one index, built on first use.
#[derive(Default)]
pub(crate) struct FaceIndex {
    slot: Mutex<Option<IndexState>>,
}

/// The size of the in-memory template index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TemplateIndexStats {
    /// Templates held (the active pack's portraits).
    pub templates: usize,
    /// Bytes the index holds.
    pub memory_bytes: usize,
}

/// An operator's reason for doing what the registry refuses by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    /// Longest reason kept, in characters.
    pub const MAX_CHARS: usize = 500;

    /// Parses a reason: not blank, at most [`MAX_CHARS`](Self::MAX_CHARS) characters, no
    /// control characters (it is shown in the console and printed by the CLI).
    pub fn parse(text: &str) -> Result<Self, AppError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AppError::ReasonRequired);
        }
        if text.chars().count() > Self::MAX_CHARS || text.chars().any(char::is_control) {
            return Err(AppError::Invalid(format!(
                "a reason is one line of at most {} characters",
                Self::MAX_CHARS
            )));
        }
        Ok(Reason(text.to_owned()))
    }

    /// The reason's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new portrait, analysed, and where it came from.
#[derive(Clone)]
pub(crate) struct NewFace {
    /// 1-based position of the photo in the submission.
    pub(crate) index: usize,
    pub(crate) portrait: NewPortrait,
}

/// A face found under another ID number.
#[derive(Debug, Clone)]
pub(crate) struct DuplicateHit {
    /// 1-based position of the new photo.
    pub(crate) index: usize,
    /// The other person.
    pub(crate) other: IdNumber,
    pub(crate) handle: PersonHandle,
    pub(crate) score: f64,
}

/// Whether a portrait's stored quality report carries a warning (its comparisons are
/// capped at "can't tell", as a check's would be).
pub(crate) fn quality_warned(quality: &Option<serde_json::Value>) -> bool {
    quality
        .as_ref()
        .and_then(|q| serde_json::from_value::<QualityReport>(q.clone()).ok())
        .is_some_and(|q| q.warned())
}

/// What a check would answer for these two portraits: the engine's comparison, capped
/// when either photo carries a quality warning.
pub(crate) fn portrait_comparison(
    engine: &dyn FaceEngine,
    a: (&[f32], bool),
    b: (&[f32], bool),
) -> Comparison {
    let c = engine.compare(&Embedding(a.0.to_vec()), &Embedding(b.0.to_vec()));
    if a.1 || b.1 {
        c.capped(engine.thresholds())
    } else {
        c
    }
}

/// The largest distance at which the same photo, re-encoded or resized, is taken to be
/// already on record: the pack's duplicate line never goes below it.
pub(crate) fn same_photo_distance(engine: &dyn FaceEngine) -> f64 {
    engine.duplicate_line().floor_distance
}

/// The duplicate-face line for a registry of `templates` templates.
pub(crate) fn duplicate_distance(engine: &dyn FaceEngine, templates: usize) -> f64 {
    let line: DuplicateLine = engine.duplicate_line();
    line.max_distance(templates as u64, engine.thresholds().same_max_distance)
}

fn index_metric(metric: Metric) -> IndexMetric {
    match metric {
        Metric::Cosine => IndexMetric::Cosine,
        Metric::Euclidean => IndexMetric::Euclidean,
    }
}

impl IndexState {
    fn apply(&mut self, removed: &[i64], added: &[StoredTemplate]) -> Result<(), AppError> {
        if let Some(index) = self.index.as_mut() {
            for key in removed {
                index.remove(*key);
            }
        }
        for t in added {
            let metric = self.metric;
            self.index
                .get_or_insert_with(|| TemplateIndex::new(t.embedding.len(), metric))
                .insert(t.portrait_id, t.owner.as_i64(), &t.embedding)
                .map_err(|e| AppError::Internal(format!("a stored template: {e}")))?;
        }
        Ok(())
    }

    /// Templates held.
    pub(crate) fn len(&self) -> usize {
        self.index.as_ref().map_or(0, TemplateIndex::len)
    }

    /// The registry version the index reflects.
    pub(crate) fn version(&self) -> i64 {
        self.version
    }

    /// Bytes the index holds.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.index.as_ref().map_or(0, TemplateIndex::memory_bytes)
    }

    /// The candidates within `max_distance` of `query`, other than `owner`'s.
    fn candidates(
        &self,
        query: &[f32],
        max_distance: f64,
        owner: PersonHandle,
    ) -> Result<Vec<i64>, AppError> {
        let Some(index) = &self.index else {
            return Ok(Vec::new());
        };
        // The index is searched a hair wider than the line (f32 against the f64 exact
        // distance); the exact re-score decides.
        let found = index
            .search(query, max_distance as f32 + 1e-6, Some(owner.as_i64()))
            .map_err(|e| AppError::Internal(format!("template search: {e}")))?;
        Ok(found.iter().map(|c| c.key).collect())
    }
}

impl App {
    /// The index, locked and brought up to date with the registry (built on first use,
    /// and again when the active pack changed). Holding the guard keeps this node's other
    /// registry writes waiting, so they do not race each other to a stale write.
    pub(crate) async fn current_index(
        &self,
        engine: &Arc<dyn FaceEngine>,
    ) -> Result<MutexGuard<'_, Option<IndexState>>, AppError> {
        let mut slot = self.face_index.slot.lock().await;
        let fresh = match slot.take() {
            Some(state) if state.model_id == engine.model_id() => state,
            _ => self.build_index(engine).await?,
        };
        let mut state = fresh;
        let changes = self
            .store
            .template_changes(&state.model_id, state.version)
            .await?;
        if changes.version != state.version {
            state.apply(&changes.removed, &changes.added)?;
            state.version = changes.version;
        }
        *slot = Some(state);
        Ok(slot)
    }

    /// Reads every template of the active pack into a new index.
    async fn build_index(&self, engine: &Arc<dyn FaceEngine>) -> Result<IndexState, AppError> {
        #[allow(clippy::disallowed_methods, reason = "measures the build for the log")]
        let started = std::time::Instant::now();
        let model_id = engine.model_id().to_owned();
        // Changes from this version on are applied after the pages are read, so a write
        // landing mid-build is not missed (applying it twice is harmless).
        let version = self.store.registry_version().await?;
        let mut state = IndexState {
            model_id: model_id.clone(),
            version,
            metric: index_metric(engine.metric()),
            index: None,
        };
        let mut after = 0;
        loop {
            let page = self
                .store
                .templates_after(&model_id, after, BUILD_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.portrait_id;
            state.apply(&[], &page)?;
        }
        tracing::info!(
            templates = state.len(),
            memory_bytes = state.memory_bytes(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "template index built"
        );
        Ok(state)
    }

    /// Builds (or brings up to date) the template index now: the server calls it at
    /// start, so that the first enrolment does not pay for it.
    pub async fn warm_template_index(&self) -> Result<TemplateIndexStats, AppError> {
        let engine = self.engine().await?;
        let guard = self.current_index(&engine).await?;
        Ok(TemplateIndexStats {
            templates: guard.as_ref().map_or(0, IndexState::len),
            memory_bytes: guard.as_ref().map_or(0, IndexState::memory_bytes),
        })
    }

    /// The faces among `faces` that the registry holds under another person than `owner`
    /// at the duplicate line, best match per face, read exactly from the store.
    pub(crate) async fn duplicate_hits(
        &self,
        engine: &Arc<dyn FaceEngine>,
        state: &IndexState,
        owner: PersonHandle,
        faces: &[NewFace],
    ) -> Result<Vec<DuplicateHit>, AppError> {
        let line = duplicate_distance(engine.as_ref(), state.len());
        let mut hits = Vec::new();
        for face in faces {
            let keys = state.candidates(&face.portrait.embedding, line, owner)?;
            if keys.is_empty() {
                continue;
            }
            let query = Embedding(face.portrait.embedding.clone());
            let mut best: Option<DuplicateHit> = None;
            for stored in self.store.templates_by_ids(&keys).await? {
                if stored.owner == owner {
                    continue;
                }
                // Quality does not excuse a duplicate: the line is on the raw distance.
                let c = engine.compare(&query, &Embedding(stored.embedding));
                if c.distance <= line && best.as_ref().is_none_or(|b| c.score > b.score) {
                    best = Some(DuplicateHit {
                        index: face.index,
                        other: stored.id_number,
                        handle: stored.owner,
                        score: c.score,
                    });
                }
            }
            hits.extend(best);
        }
        Ok(hits)
    }
}

/// Splits `faces` into those to add and those already on record for the person (a copy of
/// one of `on_record`, or of an earlier new face): their 1-based photo positions.
pub(crate) fn skip_on_record(
    engine: &dyn FaceEngine,
    on_record: &[Portrait],
    faces: Vec<NewFace>,
) -> (Vec<NewFace>, Vec<usize>) {
    let same_photo = same_photo_distance(engine);
    let model = engine.model_id();
    let mut kept: Vec<NewFace> = Vec::with_capacity(faces.len());
    let mut skipped = Vec::new();
    for face in faces {
        let a = Embedding(face.portrait.embedding.clone());
        let copy = on_record
            .iter()
            .filter(|p| p.model_id == model)
            .map(|p| p.embedding.as_slice())
            .chain(kept.iter().map(|k| k.portrait.embedding.as_slice()))
            .any(|b| engine.compare(&a, &Embedding(b.to_vec())).distance <= same_photo);
        if copy {
            skipped.push(face.index);
        } else {
            kept.push(face);
        }
    }
    (kept, skipped)
}

/// The refusal of the first new face a check would not answer "same person" (result 1)
/// for against a portrait on record or another new face, with the comparison's score.
pub(crate) fn first_disagreement(
    engine: &dyn FaceEngine,
    on_record: &[Portrait],
    faces: &[NewFace],
) -> Option<AppError> {
    let model = engine.model_id();
    let refusal = |index, against, c: Comparison| AppError::PortraitMismatch {
        index,
        against,
        score: c.score,
    };
    for (i, face) in faces.iter().enumerate() {
        let a = (
            face.portrait.embedding.as_slice(),
            quality_warned(&face.portrait.quality),
        );
        for p in on_record.iter().filter(|p| p.model_id == model) {
            let c = portrait_comparison(engine, a, (&p.embedding, quality_warned(&p.quality)));
            if c.verdict != Verdict::Same {
                return Some(refusal(face.index, Against::OnRecord(p.id), c));
            }
        }
        for other in &faces[..i] {
            let b = (
                other.portrait.embedding.as_slice(),
                quality_warned(&other.portrait.quality),
            );
            let c = portrait_comparison(engine, a, b);
            if c.verdict != Verdict::Same {
                return Some(refusal(face.index, Against::Photo(other.index), c));
            }
        }
    }
    None
}

/// What a registry refusal is about, in words every edge can show and every record can
/// keep: neither the photo's position (the edges name the photo their own way) nor the
/// advice each edge adds (a CLI flag, an admin-API field, a console form).
pub(crate) fn refusal_cause(refusal: &AppError) -> String {
    match refusal {
        AppError::NameMismatch => "this ID number is enrolled under another name (a name \
            changes only by a rename, with a reason)"
            .into(),
        AppError::PortraitMismatch { against, score, .. } => {
            format!("does not match {against} (score {score:.3})")
        }
        AppError::DuplicateFace {
            other,
            handle,
            score,
            ..
        } => format!("this face is already enrolled under {other} ({handle}, score {score:.3})"),
        AppError::PortraitRefused { reason, .. } => reason.to_string(),
        AppError::BasisRequired => "no legal basis stated, none on record".into(),
        AppError::Basis(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// One person in the duplicate-face report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportedPerson {
    /// The stable handle, accepted by the other registry commands.
    pub handle: String,
    /// The ID number: masked, or in full when the report was revealed.
    pub id_number: String,
}

/// Two persons whose portraits show one face.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DuplicatePair {
    /// One person.
    pub a: ReportedPerson,
    /// The other.
    pub b: ReportedPerson,
    /// The best-matching portraits' score.
    pub score: f64,
    /// Their distance.
    pub distance: f64,
}

/// A person whose own portraits a check would not call one person.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Disagreement {
    /// The person.
    pub person: ReportedPerson,
    /// The portraits that disagree (their ids).
    pub portraits: (i64, i64),
    /// Their comparison's score.
    pub score: f64,
}

/// The registry's duplicate-face report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DuplicateReport {
    /// The pack whose templates were compared.
    pub model_id: String,
    /// Templates compared.
    pub templates: usize,
    /// Persons looked at for disagreeing portraits.
    pub persons: usize,
    /// The duplicate line used (a distance): the pack's line for this many templates.
    pub line_distance: f64,
    /// Pairs of persons above the line, best score first.
    pub pairs: Vec<DuplicatePair>,
    /// Persons whose own portraits disagree.
    pub disagreeing: Vec<Disagreement>,
    /// Whether full ID numbers are shown.
    pub revealed: bool,
}

/// How far a duplicate scan has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanProgress {
    /// Templates (first pass) or persons (second pass) done.
    pub done: usize,
    /// Of how many.
    pub total: usize,
    /// 1: faces under two ID numbers; 2: persons whose portraits disagree.
    pub pass: u8,
}

/// What a scan has found so far, as saved between batches: person handles (as integers),
/// best score and distance per pair of persons.
#[derive(Debug, Default, serde::Deserialize, Serialize)]
struct ScanFindings {
    /// Templates searched.
    done: usize,
    /// `(handle a, handle b, score, distance)`, a < b, best per pair.
    pairs: Vec<(i64, i64, f64, f64)>,
}

impl ScanFindings {
    fn note(&mut self, x: PersonHandle, y: PersonHandle, score: f64, distance: f64) {
        let (a, b) = if x < y { (x, y) } else { (y, x) };
        let (a, b) = (a.as_i64(), b.as_i64());
        match self.pairs.iter_mut().find(|p| p.0 == a && p.1 == b) {
            Some(p) if score > p.2 => *p = (a, b, score, distance),
            Some(_) => {}
            None => self.pairs.push((a, b, score, distance)),
        }
    }
}

/// Templates searched per lock of the index: other registry writes of this node wait at
/// most one batch.
const SCAN_BATCH: u32 = 500;

impl App {
    /// Scans the whole registry for faces under two ID numbers (every template against the
    /// index, at the line for the registry's size) and persons whose own portraits
    /// disagree. With `reveal`, full ID numbers are shown and the reveal is recorded with
    /// its reason (`registry.duplicates-revealed`).
    pub async fn duplicate_report(
        &self,
        actor: &Actor,
        reveal: Option<Reason>,
        progress: impl Fn(ScanProgress),
    ) -> Result<DuplicateReport, AppError> {
        let engine = self.engine().await?;
        let model_id = engine.model_id().to_owned();
        let total = {
            let guard = self.current_index(&engine).await?;
            guard.as_ref().map_or(0, IndexState::len)
        };
        // An interrupted scan resumes where it stopped, at the line it started with.
        let mut scan = match self.store.duplicate_scan(&model_id).await? {
            Some(saved) => {
                let findings: ScanFindings =
                    serde_json::from_str(&saved.findings).unwrap_or_default();
                (saved, findings)
            }
            None => (
                DuplicateScan {
                    model_id: model_id.clone(),
                    started_at: self.now_ms(),
                    line_distance: duplicate_distance(engine.as_ref(), total),
                    cursor: 0,
                    findings: String::new(),
                    updated_at: self.now_ms(),
                },
                ScanFindings::default(),
            ),
        };
        let line = scan.0.line_distance;
        loop {
            let page = self
                .store
                .templates_after(&model_id, scan.0.cursor, SCAN_BATCH)
                .await?;
            let Some(last) = page.last() else { break };
            let found: Vec<(usize, Vec<i64>)> = {
                let guard = self.current_index(&engine).await?;
                let state = guard.as_ref().expect("the index is built when locked");
                page.iter()
                    .enumerate()
                    .map(|(i, t)| {
                        // Each pair once: only the later portrait looks back.
                        state.candidates(&t.embedding, line, t.owner).map(|keys| {
                            (i, keys.into_iter().filter(|k| *k < t.portrait_id).collect())
                        })
                    })
                    .collect::<Result<_, _>>()?
            };
            for (i, keys) in found {
                if keys.is_empty() {
                    continue;
                }
                let t = &page[i];
                let query = Embedding(t.embedding.clone());
                for other in self.store.templates_by_ids(&keys).await? {
                    if other.owner == t.owner {
                        continue;
                    }
                    let c = engine.compare(&query, &Embedding(other.embedding.clone()));
                    if c.distance <= line {
                        scan.1.note(t.owner, other.owner, c.score, c.distance);
                    }
                }
            }
            scan.1.done += page.len();
            scan.0.cursor = last.portrait_id;
            scan.0.updated_at = self.now_ms();
            scan.0.findings = serde_json::to_string(&scan.1).expect("findings serialise");
            self.store.save_duplicate_scan(&scan.0).await?;
            progress(ScanProgress {
                done: scan.1.done,
                total: total.max(scan.1.done),
                pass: 1,
            });
        }
        let (_, findings) = scan;
        let done = findings.done;
        let show = |id: &IdNumber, handle: PersonHandle| ReportedPerson {
            handle: handle.to_string(),
            id_number: if reveal.is_some() {
                id.as_str().to_owned()
            } else {
                id.masked()
            },
        };
        let mut pairs = Vec::with_capacity(findings.pairs.len());
        for (a, b, score, distance) in findings.pairs {
            let (a, b) = (PersonHandle::from_i64(a), PersonHandle::from_i64(b));
            // A person removed since the pair was found is no longer a duplicate.
            let (Some(id_a), Some(id_b)) = (
                self.store.person_by_handle(a).await?,
                self.store.person_by_handle(b).await?,
            ) else {
                continue;
            };
            pairs.push(DuplicatePair {
                a: show(&id_a, a),
                b: show(&id_b, b),
                score,
                distance,
            });
        }
        pairs.sort_by(|a, b| b.score.total_cmp(&a.score));

        let disagreeing = self.disagreeing_persons(&engine, &show, &progress).await?;
        self.store.end_duplicate_scan(&model_id).await?;
        let report = DuplicateReport {
            model_id,
            templates: done,
            persons: disagreeing.1,
            line_distance: line,
            pairs,
            disagreeing: disagreeing.0,
            revealed: reveal.is_some(),
        };
        if let Some(reason) = reveal {
            let mut event = self.event(actor, "registry.duplicates-revealed");
            event.detail = Some(format!(
                "{} pair(s), {} person(s) with disagreeing portraits shown with full ID numbers",
                report.pairs.len(),
                report.disagreeing.len()
            ));
            event.reason = Some(reason.as_str().to_owned());
            self.record_event(event).await;
        }
        Ok(report)
    }

    /// Forgets an unfinished duplicate scan of the active pack, so that the next report
    /// starts over (at the line for the registry's size now).
    pub async fn restart_duplicate_scan(&self) -> Result<(), AppError> {
        let engine = self.engine().await?;
        Ok(self.store.end_duplicate_scan(engine.model_id()).await?)
    }

    /// Every person whose portraits of the active pack a check would not call one person,
    /// and how many persons were looked at.
    async fn disagreeing_persons(
        &self,
        engine: &Arc<dyn FaceEngine>,
        show: &impl Fn(&IdNumber, PersonHandle) -> ReportedPerson,
        progress: &impl Fn(ScanProgress),
    ) -> Result<(Vec<Disagreement>, usize), AppError> {
        let model = engine.model_id();
        let mut found = Vec::new();
        let mut after: Option<IdNumber> = None;
        let mut seen = 0;
        loop {
            let ids = self
                .store
                .list_person_ids(after.as_ref(), SCAN_BATCH)
                .await?;
            let Some(last) = ids.last() else { break };
            after = Some(last.clone());
            for id in &ids {
                seen += 1;
                let Some(record) = self.store.get_person(id).await? else {
                    continue;
                };
                let own: Vec<&Portrait> = record
                    .portraits
                    .iter()
                    .filter(|p| p.model_id == model)
                    .collect();
                'pairs: for (i, a) in own.iter().enumerate() {
                    for b in &own[..i] {
                        let c = portrait_comparison(
                            engine.as_ref(),
                            (&a.embedding, quality_warned(&a.quality)),
                            (&b.embedding, quality_warned(&b.quality)),
                        );
                        if c.verdict != Verdict::Same {
                            found.push(Disagreement {
                                person: show(id, record.person.handle),
                                portraits: (b.id, a.id),
                                score: c.score,
                            });
                            break 'pairs;
                        }
                    }
                }
            }
            progress(ScanProgress {
                done: seen,
                total: seen,
                pass: 2,
            });
        }
        Ok((found, seen))
    }
}
