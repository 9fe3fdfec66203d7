//! What the engine is configured with: the pack, the pools, and the rules around the
//! networks (decoding limits, detection scaling, quality gate, verdict bands).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::decode::DecodeLimits;
use crate::pack::{self, PackKind};
use crate::quality::QualityThresholds;
use crate::score::{SizeBand, VerdictThresholds};

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
    /// Which model pack (`dlib` or `sface`); `None`: the default kind, or whatever pack
    /// `pack_dir` holds. When given, the pack found must be of this kind.
    pub pack: Option<PackKind>,
    /// The model pack directory; `None`: `$RENZHENG_MODELS_DIR`, else the cache directory
    /// of the chosen pack ([`pack::default_pack_dir_for`]).
    pub pack_dir: Option<PathBuf>,
    /// Sessions per network (concurrent inferences).
    pub sessions: usize,
    /// ONNX Runtime intra-op threads per session.
    pub intra_threads: usize,
    /// Decoding limits.
    pub decode: DecodeLimits,
    /// Detector scaling.
    pub detection: DetectionConfig,
    /// Quality gate; `None` uses the pack's calibrated limits (and the defaults, which
    /// are dlib's, for a pack that ships none). A value replaces the pack's limits whole.
    /// (Boxed: the configuration travels by value and this is its largest part.)
    pub quality: Option<Box<QualityThresholds>>,
    /// Verdict thresholds; `None` uses the pack's calibrated ones.
    pub verdict: Option<VerdictThresholds>,
    /// Bands for small faces; `None` uses the pack's. A value replaces the pack's list
    /// whole (an empty list: no size bands, a small face is capped at "can't tell").
    pub size_bands: Option<Vec<SizeBand>>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            pack: None,
            pack_dir: None,
            sessions: 2,
            intra_threads: 1,
            decode: DecodeLimits::default(),
            detection: DetectionConfig::default(),
            quality: None,
            verdict: None,
            size_bands: None,
        }
    }
}

impl EngineConfig {
    /// Defaults with the given pack directory (its manifest decides the pipeline).
    pub fn new(pack_dir: impl Into<PathBuf>) -> Self {
        Self {
            pack_dir: Some(pack_dir.into()),
            ..Self::default()
        }
    }

    /// The pack kind asked for, or the default one.
    pub fn pack_kind(&self) -> PackKind {
        self.pack.unwrap_or_default()
    }

    /// The pack directory in force: the configured one, else the default directory of
    /// [`pack_kind`](Self::pack_kind).
    pub fn resolved_pack_dir(&self) -> PathBuf {
        self.pack_dir
            .clone()
            .unwrap_or_else(|| pack::default_pack_dir_for(self.pack_kind()))
    }
}
