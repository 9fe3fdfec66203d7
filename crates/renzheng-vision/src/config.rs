//! What the engine is configured with: the pack, the pools, and the rules around the
//! networks (decoding limits, detection scaling, quality gate, verdict bands).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::decode::DecodeLimits;
use crate::pack;
use crate::quality::QualityThresholds;
use crate::score::VerdictThresholds;

/// How photos are scaled before detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectionMode {
    /// Production: large photos are reduced, small photos enlarged when no face is found at
    /// their own size (see [`DetectionConfig`]).
    Auto,
    /// dlib-exact: the detector sees the photo as it is (no scaling, no upsampling), as
    /// `face_recognition`'s `cnn_face_detector(img, 0)` does. For parity tests.
    Exact,
}

/// Detector scaling rule.
///
/// In [`DetectionMode::Auto`], a photo whose long side exceeds `max_side` is reduced by the
/// smallest integer factor k that brings it within `max_side`, averaging k×k blocks. The
/// detector's window is 80 px, so this finds faces of about 80·k px and larger — ID-check
/// selfies have faces far larger than that, and the pixels in between cannot change the
/// answer. A photo whose long side is at most `upsample_max_side` is, when no face is found
/// at its own size, enlarged 2× and searched again, which finds faces down to about 40 px
/// (dlib's CNN path upsamples once for the same reason; doing it only on a miss keeps the
/// common case fast). Coordinates are always reported in the original photo.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionConfig {
    /// Scaling mode.
    pub mode: DetectionMode,
    /// Longest side the detector works on.
    pub max_side: u32,
    /// Photos up to this long side get a 2× retry when no face is found.
    pub upsample_max_side: u32,
    /// Minimum MMOD score for a detection (dlib: 0).
    pub min_score: f32,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        Self {
            mode: DetectionMode::Auto,
            max_side: 800,
            upsample_max_side: 640,
            min_score: 0.0,
        }
    }
}

/// Everything the engine needs to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// The model pack directory.
    pub pack_dir: PathBuf,
    /// Sessions per network (concurrent inferences).
    pub sessions: usize,
    /// ONNX Runtime intra-op threads per session.
    pub intra_threads: usize,
    /// Decoding limits.
    pub decode: DecodeLimits,
    /// Detector scaling.
    pub detection: DetectionConfig,
    /// Quality gate.
    pub quality: QualityThresholds,
    /// Verdict thresholds; `None` uses the pack's calibrated ones.
    pub verdict: Option<VerdictThresholds>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            pack_dir: pack::default_pack_dir(),
            sessions: 2,
            intra_threads: 1,
            decode: DecodeLimits::default(),
            detection: DetectionConfig::default(),
            quality: QualityThresholds::default(),
            verdict: None,
        }
    }
}

impl EngineConfig {
    /// Defaults with the given pack directory.
    pub fn new(pack_dir: impl Into<PathBuf>) -> Self {
        Self {
            pack_dir: pack_dir.into(),
            ..Self::default()
        }
    }
}
