//! The verification pipeline, in the product's order: validate every field → look up the
//! ID → name check → portrait → get the photo → engine → verdict.

use renzheng_domain::{IdNumber, PersonName};
use renzheng_vision::{Analysis, Embedding, Outcome, QualityIssue, QualityReport, Verdict};
use serde::Serialize;
use url::Url;

use super::photo::decode_image_field;
use super::{AuditDraft, CheckFields};
use crate::error::ApiError;
use crate::startup::AppState;

/// The product's result codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultCode {
    /// 1: same person.
    Same = 1,
    /// 2: cannot tell.
    Uncertain = 2,
    /// 3: different people.
    Different = 3,
    /// 4: name and ID number do not match.
    NameMismatch = 4,
    /// 5: no portrait on record.
    NoPortrait = 5,
    /// 6: no face found in the photo.
    NoFace = 6,
    /// 7: no such ID number in the registry.
    UnknownId = 7,
    /// 8: the photo's quality is too low.
    PoorQuality = 8,
}

impl ResultCode {
    /// The product's description, verbatim.
    pub fn desc(self) -> &'static str {
        match self {
            ResultCode::Same => "身份证号与姓名匹配,照片系统判断为同一人",
            ResultCode::Uncertain => "身份证号与姓名匹配,照片不能确定是否为同一人",
            ResultCode::Different => "身份证号与姓名匹配,照片系统判断为不同人",
            ResultCode::NameMismatch => "身份证号与姓名不匹配",
            ResultCode::NoPortrait => "身份证号与姓名匹配,库中无照片",
            ResultCode::NoFace => "身份证号与姓名匹配,照片检测失败",
            ResultCode::UnknownId => "库中无此号",
            ResultCode::PoorQuality => "照片质量不合格",
        }
    }
}

/// The decision thresholds, as scores.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Thresholds {
    /// Scores at or above this are "same person".
    pub same: f64,
    /// Scores at or below this are "different people".
    pub different: f64,
}

/// The photo's quality, as reported to the caller.
#[derive(Debug, Clone, Serialize)]
pub struct QualityView {
    /// Whether the photo passed.
    pub passed: bool,
    /// Machine-readable reasons (`too_dark`, `blurry`…).
    pub issues: Vec<&'static str>,
    /// The same reasons in Chinese.
    pub reasons: Vec<&'static str>,
    /// Soft problems (`face_too_small`, `blurry`, `extreme_pose`, `face_cut_off`): the
    /// photo was compared, but such a face is never judged "same person" (at most 2).
    pub warnings: Vec<&'static str>,
    /// Distance between the eyes, pixels.
    pub inter_eye_px: f64,
    /// Sharpness of the aligned face.
    pub sharpness: f64,
    /// Mean brightness of the face, 0–255.
    pub brightness: f64,
    /// Head turn, 0 (frontal) – 1 (profile).
    pub yaw: f64,
    /// Roll of the eye line, degrees.
    pub roll_deg: f64,
}

fn reason_zh(issue: QualityIssue) -> &'static str {
    match issue {
        QualityIssue::FaceTooSmall => "人脸过小",
        QualityIssue::Blurry => "照片模糊",
        QualityIssue::TooDark => "照片过暗",
        QualityIssue::TooBright => "照片过亮",
        QualityIssue::ExtremePose => "人脸角度过大",
        QualityIssue::FaceCutOff => "人脸不完整",
        QualityIssue::LowConfidence => "人脸不清晰或有遮挡",
    }
}

impl From<&QualityReport> for QualityView {
    fn from(q: &QualityReport) -> Self {
        let round2 = |v: f64| (v * 100.0).round() / 100.0;
        QualityView {
            passed: q.passed(),
            issues: q.issues.iter().map(|i| i.as_str()).collect(),
            reasons: q.issues.iter().map(|i| reason_zh(*i)).collect(),
            warnings: q.warnings.iter().map(|i| i.as_str()).collect(),
            inter_eye_px: round2(q.inter_eye_px),
            sharpness: round2(q.sharpness),
            brightness: round2(q.brightness),
            yaw: round2(q.yaw),
            roll_deg: round2(q.roll_deg),
        }
    }
}

/// The `data` of a successful check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckData {
    /// Result code 1–8.
    pub result: u8,
    /// The product's description of the result.
    pub desc: &'static str,
    /// Similarity in [0, 1] (results 1–3 only).
    pub score: Option<f64>,
    /// Decision thresholds as scores (results 1–3 only).
    pub thresholds: Option<Thresholds>,
    /// "男"/"女", from the ID number.
    pub sex: &'static str,
    /// `YYYYMMDD`, from the ID number.
    pub birthday: String,
    /// Issuing region, from the ID number's GB/T 2260 code.
    pub address: String,
    /// The photo's quality (whenever a face was analysed; with reasons for result 8).
    pub quality: Option<QualityView>,
    /// Faces found in the photo (whenever the photo was analysed).
    pub faces: Option<usize>,
}

impl CheckData {
    fn new(code: ResultCode, id: &IdNumber) -> Self {
        CheckData {
            result: code as u8,
            desc: code.desc(),
            score: None,
            thresholds: None,
            sex: id.sex().label(),
            birthday: id.birthday().to_owned(),
            address: id.address(),
            quality: None,
            faces: None,
        }
    }
}

/// Where the photo comes from.
enum PhotoSource {
    Inline(Vec<u8>),
    Url(Url),
}

/// Validated input.
struct CheckRequest {
    name: PersonName,
    id: IdNumber,
    photo: PhotoSource,
}

fn present(field: Option<String>) -> Option<String> {
    field.filter(|v| !v.trim().is_empty())
}

/// Validates every field, in the order name → idCard → photo; the first problem wins.
fn validate(
    state: &AppState,
    fields: CheckFields,
    draft: &mut AuditDraft,
) -> Result<CheckRequest, ApiError> {
    let name = present(fields.name).ok_or(ApiError::MissingField("name"))?;
    let id = present(fields.id_card).ok_or(ApiError::MissingField("idCard"))?;
    let name = PersonName::parse(&name)?;
    draft.name = Some(name.clone());
    let id = IdNumber::parse(&id)?;
    draft.id_number = Some(id.clone());
    // `image` wins when both are sent, as in the product.
    let photo = match (present(fields.image), present(fields.img_url)) {
        (Some(image), _) => PhotoSource::Inline(decode_image_field(
            &image,
            state.settings.limits.max_photo_bytes,
        )?),
        (None, Some(url)) => PhotoSource::Url(state.fetcher.parse_url(&url)?),
        (None, None) => return Err(ApiError::MissingPhoto),
    };
    Ok(CheckRequest { name, id, photo })
}

/// Runs a check.
pub async fn verify(
    state: &AppState,
    fields: CheckFields,
    draft: &mut AuditDraft,
) -> Result<CheckData, ApiError> {
    let CheckRequest { name, id, photo } = validate(state, fields, draft)?;

    let Some(record) = state.store.get_person(&id).await? else {
        return Ok(CheckData::new(ResultCode::UnknownId, &id));
    };
    if record.person.name != name {
        return Ok(CheckData::new(ResultCode::NameMismatch, &id));
    }
    // Embeddings of another model are not comparable: such a person needs re-enrolment.
    let model_id = state.engine.model_id();
    let enrolled: Vec<Embedding> = record
        .portraits
        .iter()
        .filter(|p| p.model_id == model_id)
        .map(|p| Embedding(p.embedding.clone()))
        .collect();
    if enrolled.is_empty() {
        if !record.portraits.is_empty() {
            tracing::warn!(id_number = %id, "portraits exist only for other models; re-enrol this person");
        }
        return Ok(CheckData::new(ResultCode::NoPortrait, &id));
    }

    let bytes = match photo {
        PhotoSource::Inline(bytes) => bytes,
        PhotoSource::Url(url) => state.fetcher.fetch(url).await?,
    };
    let analysis = state.analyze(bytes).await?;
    Ok(decide(state, &id, &analysis, &enrolled))
}

/// Turns an analysis into result 6, 8 or 1/2/3 against the best (closest) portrait.
fn decide(
    state: &AppState,
    id: &IdNumber,
    analysis: &Analysis,
    enrolled: &[Embedding],
) -> CheckData {
    let faces = analysis.faces.len();
    let face = match (analysis.outcome(), &analysis.face) {
        (Outcome::NoFace, _) | (_, None) => {
            let mut data = CheckData::new(ResultCode::NoFace, id);
            data.faces = Some(faces);
            return data;
        }
        (Outcome::QualityRefused, Some(face)) => {
            let mut data = CheckData::new(ResultCode::PoorQuality, id);
            data.quality = Some(QualityView::from(&face.quality));
            data.faces = Some(faces);
            return data;
        }
        (Outcome::Usable, Some(face)) => face,
    };
    // The nearest portrait decides; a photo with a quality warning is capped at 2.
    let Some(best) = enrolled
        .iter()
        .filter(|r| r.0.len() == face.embedding.0.len())
        .map(|r| state.engine.compare(&face.embedding, r))
        .min_by(|a, b| a.distance.total_cmp(&b.distance))
    else {
        return CheckData::new(ResultCode::NoPortrait, id);
    };
    let best = if face.quality.warned() {
        best.capped(state.engine.thresholds())
    } else {
        best
    };
    let code = match best.verdict {
        Verdict::Same => ResultCode::Same,
        Verdict::Uncertain => ResultCode::Uncertain,
        Verdict::Different => ResultCode::Different,
    };
    let (same, different) = state.engine.thresholds().as_scores();
    let round4 = |v: f64| (v * 10_000.0).round() / 10_000.0;
    let mut data = CheckData::new(code, id);
    data.score = Some(round4(best.score));
    data.thresholds = Some(Thresholds {
        same: round4(same),
        different: round4(different),
    });
    data.quality = Some(QualityView::from(&face.quality));
    data.faces = Some(faces);
    data
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
        assert_eq!(ResultCode::UnknownId as u8, 7);
        assert_eq!(ResultCode::PoorQuality.desc(), "照片质量不合格");
    }
}
