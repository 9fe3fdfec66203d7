//! The engine's typed errors.
//!
//! Two families: [`ImageError`] is the caller's fault (bad bytes) and maps to a 400 in the
//! service; [`EngineError`] covers everything else (model pack, runtime) and is the
//! operator's problem.

use std::path::PathBuf;

/// Why a photo could not be turned into pixels.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    /// Zero bytes were given.
    #[error("the image is empty (0 bytes)")]
    Empty,
    /// The bytes are larger than the configured limit.
    #[error("the image is {size} bytes, over the {limit}-byte limit")]
    TooManyBytes {
        /// Bytes received.
        size: usize,
        /// Configured maximum.
        limit: usize,
    },
    /// The bytes are not any image format we know.
    #[error("not an image (unrecognised format)")]
    NotAnImage,
    /// A known image format that we do not accept (e.g. GIF, TIFF).
    #[error("unsupported image format {0}; send JPEG, PNG, WebP or BMP")]
    UnsupportedFormat(String),
    /// The header declares more pixels than we will allocate (a decompression bomb or an
    /// absurdly large photo).
    #[error("the image declares {width}×{height} pixels, over the limit of {max_pixels} pixels or {max_side} per side")]
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Maximum pixel count.
        max_pixels: u64,
        /// Maximum side.
        max_side: u32,
    },
    /// The image has a zero dimension.
    #[error("the image has no pixels ({width}×{height})")]
    ZeroSize {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
    /// The file is cut short or its data is inconsistent.
    #[error("the image is corrupt or truncated: {0}")]
    Corrupt(String),
    /// Decoding would need more memory than the limits allow (the image's layout, not its
    /// declared size, is over the decoder's allocation cap).
    #[error("the image needs more memory to decode than the limit allows")]
    OverMemoryLimit,
    /// A progressive JPEG with more scans than the limit: the decoder walks every pixel
    /// once a scan, so thousands of tiny scans make a small file cost minutes of CPU.
    #[error("the JPEG has {scans} scans, over the limit of {limit}")]
    TooManyScans {
        /// Scans counted (counting stops just past the limit).
        scans: usize,
        /// The limit.
        limit: usize,
    },
}

/// Errors of the engine that are not the photo's fault.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The photo could not be decoded.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The model pack is missing, incomplete, or does not match its manifest.
    #[error("model pack at {path}: {reason}")]
    Pack {
        /// The pack directory or file concerned.
        path: PathBuf,
        /// What is wrong, in words an operator can act on.
        reason: String,
    },
    /// ONNX Runtime could not be loaded or a session failed.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    /// The operation does not exist for this pack's pipeline.
    #[error("not available with this model pack: {0}")]
    Unsupported(&'static str),
    /// A model produced output of an unexpected shape.
    #[error("model output: {0}")]
    BadOutput(String),
    /// The requester raised its [`Cancel`](crate::Cancel) flag: nobody waits for the answer.
    #[error("analysis cancelled: nobody waits for it any more")]
    Cancelled,
}

impl EngineError {
    pub(crate) fn pack(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        EngineError::Pack {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl From<ort::Error> for EngineError {
    fn from(e: ort::Error) -> Self {
        EngineError::Runtime(e.to_string())
    }
}
