//! The service's two face rules, pure (no store, no I/O): what makes a photo an
//! acceptable portrait at enrolment, and what a caller's photo is answered against a
//! person's portraits in a check. The service applies them (`registry.rs`,
//! `check/verify.rs`) and so does `renzheng eval`, so that an evaluation measures what
//! the service answers, not a rule of its own. The product's result codes are their
//! vocabulary, so they live here too.

use renzheng_vision::{
    Analysis, AppliedBands, Comparison, Embedding, FaceEngine, Outcome, QualityIssue,
    QualityReport, Verdict,
};

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
    /// The code as sent (1–8).
    pub fn code(self) -> u8 {
        self as u8
    }

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

/// A second face at least this fraction of the first one's area makes a portrait
/// ambiguous (whose face is enrolled?). Smaller background faces are tolerated.
const RIVAL_FACE_AREA: f64 = 0.5;

/// Why a photo cannot be enrolled as a portrait. Its `Display` is the English sentence of
/// the CLI and the admin API; the console words each kind in the operator's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortraitRefusal {
    /// No face was found.
    NoFace,
    /// The face's quality is refused, for these issues.
    Quality(Vec<QualityIssue>),
    /// This many faces, two of similar size: whose face would be enrolled?
    RivalFaces(usize),
    /// The image could not be read as an image (the decoder's words).
    UnusableImage(String),
}

impl std::fmt::Display for PortraitRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortraitRefusal::NoFace => f.write_str("no face found"),
            PortraitRefusal::Quality(issues) => {
                let issues: Vec<&str> = issues.iter().map(|i| i.as_str()).collect();
                write!(f, "photo quality too low: {}", issues.join(", "))
            }
            PortraitRefusal::RivalFaces(n) => {
                write!(
                    f,
                    "{n} faces of similar size; a portrait must show one person"
                )
            }
            PortraitRefusal::UnusableImage(e) => write!(f, "unusable image: {e}"),
        }
    }
}

/// Why `analysis` cannot be enrolled as a portrait; `None` when it can.
pub fn portrait_refusal(analysis: &Analysis) -> Option<PortraitRefusal> {
    match (analysis.outcome(), &analysis.face) {
        (Outcome::NoFace, _) | (_, None) => return Some(PortraitRefusal::NoFace),
        (Outcome::QualityRefused, Some(face)) => {
            return Some(PortraitRefusal::Quality(face.quality.issues.clone()));
        }
        (Outcome::Usable, Some(_)) => {}
    }
    if let [first, second, ..] = analysis.faces.as_slice() {
        let (a, b) = (first.rect.area() as f64, second.rect.area() as f64);
        if a > 0.0 && b / a >= RIVAL_FACE_AREA {
            return Some(PortraitRefusal::RivalFaces(analysis.faces.len()));
        }
    }
    None
}

/// What a check answers for a caller's photo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    /// The result code: 6 (no face), 8 (quality refused), 5 (no portrait of this
    /// engine's model), or 1/2/3.
    pub code: ResultCode,
    /// The comparison with the nearest portrait that decided 1/2/3 (capped for a warned
    /// photo).
    pub nearest: Option<Comparison>,
    /// The bands that applied (1/2/3 only): the clean ones, or the size band of the
    /// caller's face.
    pub bands: Option<AppliedBands>,
}

impl Judgement {
    fn bare(code: ResultCode) -> Self {
        Self {
            code,
            nearest: None,
            bands: None,
        }
    }
}

/// The check's rule: the caller's photo `analysis` against the person's `enrolled`
/// portraits (the nearest decides), under the bands for the photo's face size. Only the
/// caller's photo's quality caps "same": the portraits passed the portrait rule when they
/// were enrolled.
pub fn judge(engine: &dyn FaceEngine, analysis: &Analysis, enrolled: &[Embedding]) -> Judgement {
    let face = match (analysis.outcome(), &analysis.face) {
        (Outcome::NoFace, _) | (_, None) => return Judgement::bare(ResultCode::NoFace),
        (Outcome::QualityRefused, Some(_)) => return Judgement::bare(ResultCode::PoorQuality),
        (Outcome::Usable, Some(face)) => face,
    };
    let bands = engine.bands_for_face(face.quality.inter_eye_px);
    let metric = engine.metric();
    let Some(nearest) = enrolled
        .iter()
        .filter(|r| r.0.len() == face.embedding.0.len())
        .map(|r| Comparison::with_metric(&face.embedding, r, metric, &bands.thresholds))
        .min_by(|a, b| a.distance.total_cmp(&b.distance))
    else {
        return Judgement::bare(ResultCode::NoPortrait);
    };
    let nearest = if caps_same(&face.quality, bands.size_band.is_some()) {
        nearest.capped(&bands.thresholds)
    } else {
        nearest
    };
    let code = match nearest.verdict {
        Verdict::Same => ResultCode::Same,
        Verdict::Uncertain => ResultCode::Uncertain,
        Verdict::Different => ResultCode::Different,
    };
    Judgement {
        code,
        nearest: Some(nearest),
        bands: Some(bands),
    }
}

/// Whether the caller's photo's quality caps "same" at "can't tell". Product policy, not
/// the engine's: a face with a quality warning may be compared, but never called the same
/// person (the false-accept promise is made on clean photos) — except a small face that
/// has a size band (`in_size_band`): that band was calibrated on small faces as they come,
/// soft ones included (an upscaled small face measures "blurry" on the aligned crop), so
/// its "same" threshold carries the promise for "face too small" and "blurry". Other
/// warnings (cut off, turned, unsure detection) still cap.
pub fn caps_same(quality: &QualityReport, in_size_band: bool) -> bool {
    quality.warnings.iter().any(|w| {
        let covered_by_band = matches!(w, QualityIssue::FaceTooSmall | QualityIssue::Blurry);
        !(covered_by_band && in_size_band)
    })
}
