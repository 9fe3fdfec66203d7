//! Renzheng's face engine.
//!
//! Photo bytes in; faces, landmarks, a quality report and a 128-d embedding out. The model
//! pack's manifest decides the pipeline: the `sface` pack's is OpenCV Zoo's (YuNet boxes
//! and five points → 112×112 ArcFace crop → SFace, cosine); the `dlib` pack's is dlib's
//! (MMOD CNN detector, 5-point shape predictor, 150×150 face chip, ResNet embedding),
//! with the networks run by ONNX Runtime:
//!
//! ```text
//! bytes ─decode─▶ RGB ─scale─▶ tiled pyramid ─detector.onnx─▶ boxes (NMS)
//!        └─ EXIF, limits       └─ the largest face ─landmarks─▶ 5 points ─chip─▶ 150×150
//!                                          quality gate ◀─┘        recognition.onnx ─▶ 128-d
//! ```
//!
//! The engine knows images and tensors only: it never sees names or ID numbers.
//!
//! ```no_run
//! # fn main() -> Result<(), renzheng_vision::EngineError> {
//! use renzheng_vision::{Engine, EngineConfig};
//! let engine = Engine::open(&EngineConfig::new("/path/to/pack"))?;
//! let a = engine.analyze(&std::fs::read("a.jpg").unwrap())?;
//! let b = engine.analyze(&std::fs::read("b.jpg").unwrap())?;
//! if let (Some(fa), Some(fb)) = (&a.face, &b.face) {
//!     println!("{:?}", engine.compare(&fa.embedding, &fb.embedding));
//! }
//! # Ok(()) }
//! ```
//!
//! Everything an application needs is at the crate root. Three modules are public because
//! their users need more than one item of them: [`pack`] (the model-pack contract that
//! `renzheng models install` writes and [`Engine::open`] verifies), [`runtime`] (the
//! process-wide ONNX Runtime environment and session pools, for benchmarks that time a
//! bare session) and [`demesh`] (the reticulate-watermark filter the engine applies, for
//! measuring it on its own). [`testing`] (feature `testing`) holds a deterministic engine for tests
//! that are not about faces.

#![deny(missing_docs)]

mod align;
mod analysis;
mod cancel;
mod chip;
mod config;
mod decode;
pub mod demesh;
mod detection;
mod detector;
mod duplicate;
mod engine;
mod error;
mod face_engine;
mod geometry;
mod hash;
mod landmarks;
pub mod pack;
mod quality;
mod recognition;
pub mod runtime;
mod score;
mod sface;
#[cfg(feature = "testing")]
pub mod testing;
mod yunet;

pub use crate::analysis::{Analysis, AnalyzedFace, FaceBox, Outcome, StageTimings};
pub use crate::cancel::Cancel;
pub use crate::config::{DetectionConfig, DetectionMode, EngineConfig};
pub use crate::decode::{
    decode_rgb, decode_rgb_as_stored, sniff_format, DecodeLimits, PhotoFormat,
};
pub use crate::detector::{Detection, DetectorParams};
pub use crate::duplicate::{DuplicateLine, FALSE_MATCH_BUDGET};
pub use crate::engine::Engine;
pub use crate::error::{EngineError, ImageError};
pub use crate::face_engine::FaceEngine;
pub use crate::geometry::{Point, Rect};
pub use crate::pack::PackKind;
pub use crate::quality::{QualityIssue, QualityReport, QualityThresholds};
pub use crate::score::{
    bands_for_face, score_from_distance, validate_size_bands, AppliedBands, Comparison, Embedding,
    Metric, ScoreMap, SizeBand, Verdict, VerdictThresholds,
};
pub use crate::yunet::YunetFace;
