//! The verification, in the product's order: look up the ID (7) → compare names (4) →
//! portraits of this engine (5) → get the photo → engine (6: no face, 8: quality) → the
//! nearest portrait decides (1 / 2 / 3). Every step before the engine is cheap, so a
//! request that can be answered early never costs inference.

use renzheng_domain::{BasisKind, IdNumber, Sex};
use renzheng_vision::{Analysis, Embedding, QualityReport, Verdict};

use super::{CheckRequest, PhotoSource};
use crate::{App, AppError};

pub use crate::rules::ResultCode;

/// What the ID number itself says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdFacts {
    /// Sex, from the sequence digit.
    pub sex: Sex,
    /// `YYYYMMDD`.
    pub birthday: String,
    /// Issuing region, from the GB/T 2260 code.
    pub address: String,
}

impl From<&IdNumber> for IdFacts {
    fn from(id: &IdNumber) -> Self {
        IdFacts {
            sex: id.sex(),
            birthday: id.birthday().to_owned(),
            address: id.address(),
        }
    }
}

/// A comparison's similarity with the bands it was judged by, all as scores in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Similarity of the photo to the nearest portrait.
    pub score: f64,
    /// Scores at or above this are "same person".
    pub same: f64,
    /// Scores at or below this are "different people".
    pub different: f64,
    /// When the bands of a small face applied: the bound of its size band (faces whose
    /// eyes are closer than this many pixels); `None`: the clean bands.
    pub size_band_below_px: Option<f64>,
}

/// The answer to a check.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// Result 1–8.
    pub result: ResultCode,
    /// What the ID number says (every result has it).
    pub facts: IdFacts,
    /// Results 1–3: the score and bands.
    pub scored: Option<Scored>,
    /// Whenever a face was analysed: its quality (with reasons for result 8).
    pub quality: Option<QualityReport>,
    /// Whenever the photo was analysed: how many faces it shows.
    pub faces: Option<usize>,
    /// The legal basis on record for the person checked, when they were found and have
    /// one (the check's processing record names it).
    pub basis: Option<BasisKind>,
}

impl Verification {
    fn of(result: ResultCode, id: &IdNumber) -> Self {
        Verification {
            result,
            facts: IdFacts::from(id),
            scored: None,
            quality: None,
            faces: None,
            basis: None,
        }
    }
}

impl App {
    /// Runs a parsed check. The answer (results 1–8) is `Ok`; `Err` is for what stops a
    /// check from having a result: an unfetchable or undecodable photo, saturation,
    /// failures of ours.
    pub async fn verify(&self, request: &CheckRequest) -> Result<Verification, AppError> {
        Ok(self.verify_explained(request).await?.0)
    }

    /// [`verify`](Self::verify), with the engine's analysis of the photo when it got that
    /// far (faces, the chosen face's box and landmarks, quality): what the console draws.
    pub async fn verify_explained(
        &self,
        request: &CheckRequest,
    ) -> Result<(Verification, Option<Analysis>), AppError> {
        let id = &request.id;
        let Some(record) = self.store.get_person(id).await? else {
            return Ok((Verification::of(ResultCode::UnknownId, id), None));
        };
        let basis = record.basis.as_ref().map(|b| b.basis.kind());
        let of = |result| Verification {
            basis,
            ..Verification::of(result, id)
        };
        if record.person.name != request.name {
            return Ok((of(ResultCode::NameMismatch), None));
        }
        let engine = self.engine().await?;
        // Embeddings of another model are not comparable: such a person needs re-enrolment.
        let enrolled: Vec<Embedding> = record
            .portraits
            .iter()
            .filter(|p| p.model_id == engine.model_id())
            .map(|p| Embedding(p.embedding.clone()))
            .collect();
        if enrolled.is_empty() {
            if !record.portraits.is_empty() {
                tracing::warn!(id_number = %id, "portraits exist only for other models; re-enrol this person");
            }
            return Ok((of(ResultCode::NoPortrait), None));
        }

        let bytes = match &request.photo {
            PhotoSource::Inline(bytes) => bytes.clone(),
            PhotoSource::Url(url) => self.fetcher.fetch(url.clone()).await?,
        };
        let analysis = self.engine.analyze(bytes).await?;
        let mut answer = decide(engine.as_ref(), id, &analysis, &enrolled);
        answer.basis = basis;
        if answer.scored.is_some() {
            self.note_checked(id, record.last_checked_at).await;
        }
        Ok((answer, Some(analysis)))
    }

    /// Notes the person's last check for `registry.inactive_days`, at most once a day (a
    /// write per check would serialise the checks of one person on the database). A
    /// failure is logged: the check's answer stands.
    async fn note_checked(&self, id: &IdNumber, last: Option<i64>) {
        let now = self.now_ms();
        if last.is_some_and(|at| self.local_day(at) == self.local_day(now)) {
            return;
        }
        if let Err(e) = self.store.note_person_checked(id, now).await {
            tracing::warn!(error = %e, "could not note the person's last check");
        }
    }

    /// Compares the faces of two photos (the console's two-photo try-it): both analyses
    /// and, when both show a usable face, their similarity judged by the engine's bands.
    pub async fn compare_photos(
        &self,
        a: Vec<u8>,
        b: Vec<u8>,
    ) -> Result<(Analysis, Analysis, Option<(Scored, Verdict)>), AppError> {
        let engine = self.engine().await?;
        let first = self.engine.analyze(a).await?;
        let second = self.engine.analyze(b).await?;
        let judged = match (&first.face, &second.face) {
            (Some(x), Some(y)) if x.quality.passed() && y.quality.passed() => {
                let c = engine.compare(&x.embedding, &y.embedding);
                let (same, different) = engine.thresholds().as_scores();
                Some((
                    Scored {
                        score: c.score,
                        same,
                        different,
                        size_band_below_px: None,
                    },
                    c.verdict,
                ))
            }
            _ => None,
        };
        Ok((first, second, judged))
    }
}

/// Turns an analysis into result 6, 8, 5 or 1/2/3 against the nearest portrait (the
/// check's rule, [`crate::rules::judge`]), with what the answer shows.
fn decide(
    engine: &dyn renzheng_vision::FaceEngine,
    id: &IdNumber,
    analysis: &Analysis,
    enrolled: &[Embedding],
) -> Verification {
    let judged = crate::rules::judge(engine, analysis, enrolled);
    let mut answer = Verification::of(judged.code, id);
    if judged.code == ResultCode::NoPortrait {
        return answer;
    }
    answer.faces = Some(analysis.faces.len());
    if judged.code != ResultCode::NoFace {
        answer.quality = analysis.face.as_ref().map(|f| f.quality.clone());
    }
    if let (Some(nearest), Some(bands)) = (judged.nearest, judged.bands) {
        // The thresholds that decided this answer: the size band's for a small face.
        let (same, different) = bands.thresholds.as_scores();
        answer.scored = Some(Scored {
            score: nearest.score,
            same,
            different,
            size_band_below_px: bands.size_band.map(|b| b.below_inter_eye_px),
        });
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_the_products() {
        assert_eq!(
            ResultCode::Same.desc(),
            "身份证号与姓名匹配,照片系统判断为同一人"
        );
        assert_eq!(ResultCode::UnknownId.code(), 7);
        assert_eq!(ResultCode::PoorQuality.desc(), "照片质量不合格");
    }
}
