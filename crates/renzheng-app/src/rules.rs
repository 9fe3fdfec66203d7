//! The service's two face rules, pure (no store, no I/O): what makes a photo an
//! acceptable portrait at enrolment, and what a caller's photo is answered against a
//! person's portraits in a check. The service applies them (`registry.rs`,
//! `check/verify.rs`) and so does `renzheng eval`, so that an evaluation measures what
//! the service answers, not a rule of its own. The product's result codes are their
//! vocabulary, so they live here too.

use renzheng_vision::{Analysis, Comparison, Embedding, FaceEngine, Outcome, Verdict};

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

/// Why `analysis` cannot be enrolled as a portrait, for the operator; `None` when it can.
pub fn portrait_refusal(analysis: &Analysis) -> Option<String> {
    match (analysis.outcome(), &analysis.face) {
        (Outcome::NoFace, _) | (_, None) => return Some("no face found".into()),
        (Outcome::QualityRefused, Some(face)) => {
            let issues: Vec<&str> = face.quality.issues.iter().map(|i| i.as_str()).collect();
            return Some(format!("photo quality too low: {}", issues.join(", ")));
        }
        (Outcome::Usable, Some(_)) => {}
    }
    if let [first, second, ..] = analysis.faces.as_slice() {
        let (a, b) = (first.rect.area() as f64, second.rect.area() as f64);
        if a > 0.0 && b / a >= RIVAL_FACE_AREA {
            return Some(format!(
                "{} faces of similar size; a portrait must show one person",
                analysis.faces.len()
            ));
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
}

/// The check's rule: the caller's photo `analysis` against the person's `enrolled`
/// portraits (the nearest decides). Only the caller's photo's quality caps "same": the
/// portraits passed the portrait rule when they were enrolled.
pub fn judge(engine: &dyn FaceEngine, analysis: &Analysis, enrolled: &[Embedding]) -> Judgement {
    let face = match (analysis.outcome(), &analysis.face) {
        (Outcome::NoFace, _) | (_, None) => {
            return Judgement {
                code: ResultCode::NoFace,
                nearest: None,
            }
        }
        (Outcome::QualityRefused, Some(_)) => {
            return Judgement {
                code: ResultCode::PoorQuality,
                nearest: None,
            }
        }
        (Outcome::Usable, Some(face)) => face,
    };
    let Some(nearest) = enrolled
        .iter()
        .filter(|r| r.0.len() == face.embedding.0.len())
        .map(|r| engine.compare(&face.embedding, r))
        .min_by(|a, b| a.distance.total_cmp(&b.distance))
    else {
        return Judgement {
            code: ResultCode::NoPortrait,
            nearest: None,
        };
    };
    // Product policy, not the engine's: a face with a quality warning may be compared, but
    // never called the same person (the false-accept promise is made on clean photos).
    let nearest = if face.quality.warned() {
        nearest.capped(engine.thresholds())
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
    }
}
