//! What one analysis of one photo returns.

use std::time::Duration;

use serde::Serialize;

use crate::geometry::{Point, Rect};
use crate::quality::QualityReport;
use crate::score::Embedding;

/// A face found in the photo (original coordinates).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FaceBox {
    /// Inclusive box; may extend past the photo's edges.
    pub rect: Rect,
    /// MMOD score.
    pub score: f32,
}

/// The face the engine chose (the largest) with everything measured on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalyzedFace {
    /// Its box.
    pub rect: Rect,
    /// MMOD score.
    pub score: f32,
    /// Five landmarks in original pixels.
    pub landmarks: Vec<Point>,
    /// The quality gate's measurements and verdict.
    pub quality: QualityReport,
    /// The embedding (computed even when quality fails, for diagnostics).
    #[serde(skip)]
    pub embedding: Embedding,
}

/// Time spent in each stage of one analysis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageTimings {
    /// Bytes → pixels.
    pub decode: Duration,
    /// Scaling, pyramid, network and NMS.
    pub detect: Duration,
    /// Shape predictor.
    pub landmarks: Duration,
    /// Chip extraction and quality measures.
    pub align: Duration,
    /// Recognition network.
    pub embed: Duration,
}

/// Everything the engine found in one photo.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// Photo width after orientation.
    pub width: u32,
    /// Photo height after orientation.
    pub height: u32,
    /// Every face found, largest first.
    pub faces: Vec<FaceBox>,
    /// The chosen face; `None` when no face was found.
    pub face: Option<AnalyzedFace>,
    /// Whether a reticulate watermark (网纹) was found on the photo and removed before
    /// detection and recognition (see `demesh`); `false` for a clean photo, which is
    /// analysed exactly as decoded.
    pub reticulate_removed: bool,
    /// Per-stage time.
    #[serde(skip)]
    pub timings: StageTimings,
}

/// What a photo amounts to for a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No face (the service answers 6).
    NoFace,
    /// A face, but not good enough (the service answers 8).
    QualityRefused,
    /// A usable face.
    Usable,
}

impl Analysis {
    /// Classifies the analysis.
    pub fn outcome(&self) -> Outcome {
        match &self.face {
            None => Outcome::NoFace,
            Some(f) if !f.quality.passed() => Outcome::QualityRefused,
            Some(_) => Outcome::Usable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_classification() {
        let a = Analysis {
            width: 1,
            height: 1,
            faces: vec![],
            face: None,
            reticulate_removed: false,
            timings: StageTimings::default(),
        };
        assert_eq!(a.outcome(), Outcome::NoFace);
    }
}
