//! The `dlib` pack: dlib's MMOD detector, 5-point shape predictor and ResNet from the
//! `face_recognition_models` sdist, converted by `tools/dlib_to_onnx.py`; its id, the
//! converter's report and the manifest built from it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::common::{
    hash_pack_files, read_report, runtime_library, RegistryDownload, ReportSource,
    ONNXRUNTIME_WHEEL, RUNTIME_FILE,
};
use super::manifest::{
    DetectorModel, DlibPipeline, LandmarkModel, Manifest, Pipeline, RecognitionModel,
    MANIFEST_FORMAT,
};
use crate::detector::DetectorParams;
use crate::error::EngineError;
use crate::score::{Metric, SizeBand, VerdictThresholds};

/// The converter version this build expects in `convert_report.json`
/// (`CONVERTER_VERSION` in `tools/dlib_to_onnx.py`); it is the `conv` part of [`PACK_ID`].
pub const CONVERTER_VERSION: u32 = 1;

/// The id of the pack this build installs; its directory name under the cache. The
/// verdict thresholds are calibrated for the pack's networks and shipped in its manifest,
/// so a recalibration bumps the `cal` part and installs a fresh pack beside the old one.
pub const PACK_ID: &str = concat!("dlib-frm0.3.0-ort", onnxruntime_version!(), "-conv1-cal2");

/// The sdist with dlib's networks (`mmod_human_face_detector.dat`,
/// `shape_predictor_5_face_landmarks.dat`, `dlib_face_recognition_resnet_model_v1.dat`).
pub const FACE_RECOGNITION_MODELS: RegistryDownload = RegistryDownload {
    file: "face_recognition_models-0.3.0.tar.gz",
    requirement: "face_recognition_models==0.3.0",
    sha256: "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
};

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

/// The manifest of the `dlib` pack whose files are in `staging`, from the converter's
/// report there, checked against the files written.
pub(super) fn manifest(staging: &Path) -> Result<Manifest, EngineError> {
    let text = read_report(staging, CONVERTER_REPORT_FILE)?;
    let report = ConverterReport::parse(&text).map_err(|e| {
        EngineError::pack(
            staging.join(CONVERTER_REPORT_FILE),
            format!("{e}; the converter and this binary disagree (rebuild renzheng)"),
        )
    })?;
    manifest_from_report(&report, staging)
}

fn manifest_from_report(report: &ConverterReport, staging: &Path) -> Result<Manifest, EngineError> {
    let r = &report.recognition;
    let files = hash_pack_files(
        staging,
        &[
            "detector.onnx",
            "recognition.onnx",
            "landmarks.rzsp",
            RUNTIME_FILE,
            CONVERTER_REPORT_FILE,
        ],
        CONVERTER_REPORT_FILE,
        &report.outputs,
    )?;
    Ok(Manifest {
        format: MANIFEST_FORMAT,
        pack_id: PACK_ID.to_string(),
        sources: vec![FACE_RECOGNITION_MODELS.source(), ONNXRUNTIME_WHEEL.source()],
        files,
        runtime: runtime_library(),
        pipeline: Pipeline::Dlib(DlibPipeline {
            detector: DetectorModel {
                id: "dlib-mmod-human-face-detector".into(),
                file: "detector.onnx".into(),
                params: report.detector_params(),
            },
            landmarks: LandmarkModel {
                id: "dlib-shape-predictor-5-face-landmarks".into(),
                file: "landmarks.rzsp".into(),
                num_landmarks: report.landmarks.num_landmarks,
            },
            // The id predates pack digests and is kept: registries enrolled with this pack
            // keep working (the pack's networks have never changed).
            recognition: RecognitionModel {
                id: "dlib-face-recognition-resnet-v1".into(),
                file: "recognition.onnx".into(),
                input_avg_rgb: r.input_avg_rgb.map(|v| v as f32),
                input_scale: r.input_scale as f32,
                chip_size: r.chip_size,
                chip_padding: r.chip_padding,
                embedding_dim: r.embedding_dim,
            },
        }),
        metric: Metric::Euclidean,
        thresholds: VerdictThresholds::default(),
        size_bands: dlib_size_bands(),
        quality: None,
    })
}

/// The `dlib` pack's bands for small faces (`cal2`; `docs/calibration.md`, "Bands by face
/// size"), as `renzheng --pack dlib calibrate --bands 15,20,26 --keep-clean` suggests them
/// on the same evidence as the `sface` pack's ([`super::sface_size_bands`]). "Same" stays
/// the clean 0.39; "different" moves out from the clean 0.70 as faces shrink, where 1.6 %,
/// 1.9 % and 3.3 % of the small-face genuine pairs of the three buckets would otherwise be
/// told "different person".
pub fn dlib_size_bands() -> Vec<SizeBand> {
    vec![
        SizeBand {
            below_inter_eye_px: 15.0,
            same_max_distance: 0.39,
            different_min_distance: 0.77,
        },
        SizeBand {
            below_inter_eye_px: 20.0,
            same_max_distance: 0.39,
            different_min_distance: 0.73,
        },
        SizeBand {
            below_inter_eye_px: 26.0,
            same_max_distance: 0.39,
            different_min_distance: 0.73,
        },
    ]
}

/// The `dlib` pack's duplicate-face line: calibrated, `docs/calibration.md`
/// § Duplicate-face line (`tools/duplicate_line.py` reproduces it). Fitted on the 15,837
/// East-Asian impostor pairs of `lfw_eastasian_dev` (all against all): 1 % of them lie at
/// or below distance 0.455 (rounded down to 0.45); the exponential scale's estimate is
/// 0.024; 0.028 is its 95th percentile over resamples of the set's 43 people (0.0273,
/// rounded up). LFW fold 1 and celeb5 ask for no stricter line. The floor 0.25 catches
/// every JPEG re-encode at quality 90 or 70 and 95.5 % of the clean copies of 60 photos;
/// it lies 0.115 below the closest East-Asian impostor (0.365), at a modelled impostor
/// rate of 7.9e-6: beyond about 1,300 portraits the line rests on the floor and exceeds
/// the false-match budget (prefer the `sface` pack for large registries).
pub fn dlib_duplicate_line() -> crate::DuplicateLine {
    crate::DuplicateLine {
        anchor_distance: 0.45,
        anchor_rate: 0.01,
        scale: 0.028,
        floor_distance: 0.25,
    }
}
