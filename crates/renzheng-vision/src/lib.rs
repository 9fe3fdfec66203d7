//! Renzheng's face engine.
//!
//! Photo bytes in; faces, landmarks, a quality report and a 128-d embedding out. The
//! pipeline is dlib's (MMOD CNN detector, 5-point shape predictor, 150×150 face chip, ResNet
//! embedding) with the two networks run by ONNX Runtime:
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

pub mod chip;
pub mod decode;
pub mod detector;
mod error;
mod face_engine;
pub mod geometry;
pub mod landmarks;
pub mod pack;
pub mod quality;
pub mod runtime;
pub mod score;
#[cfg(feature = "testing")]
pub mod testing;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::RgbImage;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};

pub use crate::decode::DecodeLimits;
pub use crate::error::{EngineError, ImageError};
pub use crate::face_engine::FaceEngine;
pub use crate::geometry::{Point, Rect};
pub use crate::quality::{QualityIssue, QualityReport, QualityThresholds};
pub use crate::score::{Comparison, Embedding, Verdict, VerdictThresholds};

use crate::detector::Detection;
use crate::landmarks::ShapePredictor;
use crate::pack::ModelPack;
use crate::runtime::SessionPool;

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
    /// The model pack directory.
    pub pack_dir: PathBuf,
    /// Sessions per network (concurrent inferences).
    pub sessions: usize,
    /// ONNX Runtime intra-op threads per session.
    pub intra_threads: usize,
    /// Decoding limits.
    pub decode: DecodeLimits,
    /// Detector scaling.
    pub detection: DetectionConfig,
    /// Quality gate.
    pub quality: QualityThresholds,
    /// Verdict thresholds; `None` uses the pack's calibrated ones.
    pub verdict: Option<VerdictThresholds>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            pack_dir: pack::default_pack_dir(),
            sessions: 2,
            intra_threads: 1,
            decode: DecodeLimits::default(),
            detection: DetectionConfig::default(),
            quality: QualityThresholds::default(),
            verdict: None,
        }
    }
}

impl EngineConfig {
    /// Defaults with the given pack directory.
    pub fn new(pack_dir: impl Into<PathBuf>) -> Self {
        Self {
            pack_dir: pack_dir.into(),
            ..Self::default()
        }
    }
}

/// A face found in the photo (original coordinates).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FaceBox {
    /// Inclusive box; may extend past the photo's edges.
    pub rect: Rect,
    /// MMOD score.
    pub score: f32,
}

/// The face the engine chose (the largest) with everything measured on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalyzedFace {
    /// Its box.
    pub rect: Rect,
    /// MMOD score.
    pub score: f32,
    /// Five landmarks in original pixels.
    pub landmarks: Vec<Point>,
    /// The quality gate's measurements and verdict.
    pub quality: QualityReport,
    /// The embedding (computed even when quality fails, for diagnostics).
    #[serde(skip)]
    pub embedding: Embedding,
}

/// Time spent in each stage of one analysis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageTimings {
    /// Bytes → pixels.
    pub decode: Duration,
    /// Scaling, pyramid, network and NMS.
    pub detect: Duration,
    /// Shape predictor.
    pub landmarks: Duration,
    /// Chip extraction and quality measures.
    pub align: Duration,
    /// Recognition network.
    pub embed: Duration,
}

/// Everything the engine found in one photo.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// Photo width after orientation.
    pub width: u32,
    /// Photo height after orientation.
    pub height: u32,
    /// Every face found, largest first.
    pub faces: Vec<FaceBox>,
    /// The chosen face; `None` when no face was found.
    pub face: Option<AnalyzedFace>,
    /// Per-stage time.
    #[serde(skip)]
    pub timings: StageTimings,
}

/// What a photo amounts to for a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No face (the service answers 6).
    NoFace,
    /// A face, but not good enough (the service answers 8).
    QualityRefused,
    /// A usable face.
    Usable,
}

impl Analysis {
    /// Classifies the analysis.
    pub fn outcome(&self) -> Outcome {
        match &self.face {
            None => Outcome::NoFace,
            Some(f) if !f.quality.passed() => Outcome::QualityRefused,
            Some(_) => Outcome::Usable,
        }
    }
}

/// The loaded engine. Cheap to share (`Arc<Engine>`); every method is blocking CPU work and
/// belongs off the async runtime.
pub struct Engine {
    pack: ModelPack,
    config: EngineConfig,
    thresholds: VerdictThresholds,
    detector: SessionPool,
    recognizer: SessionPool,
    shape: ShapePredictor,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("pack", &self.pack.manifest().pack_id)
            .field("sessions", &self.detector.size())
            .finish()
    }
}

impl Engine {
    /// Verifies the pack, loads ONNX Runtime and creates the session pools.
    pub fn open(config: &EngineConfig) -> Result<Self, EngineError> {
        let pack = ModelPack::open(&config.pack_dir)?;
        let m = pack.manifest().clone();
        let thresholds = config.verdict.unwrap_or(m.thresholds);
        thresholds
            .validate()
            .map_err(|e| EngineError::pack(&config.pack_dir, e))?;
        let env = runtime::environment(&pack.path(&m.runtime.file))?;
        let detector = SessionPool::new(
            &env,
            &pack.path(&m.detector.file),
            config.sessions,
            config.intra_threads,
        )?;
        let recognizer = SessionPool::new(
            &env,
            &pack.path(&m.recognition.file),
            config.sessions,
            config.intra_threads,
        )?;
        let shape = ShapePredictor::load(&pack.path(&m.landmarks.file))?;
        if shape.num_landmarks() != 5 {
            return Err(EngineError::pack(
                pack.path(&m.landmarks.file),
                format!(
                    "expected a 5-point model, found {} points",
                    shape.num_landmarks()
                ),
            ));
        }
        Ok(Self {
            pack,
            config: config.clone(),
            thresholds,
            detector,
            recognizer,
            shape,
        })
    }

    /// The id of the embedding model; enrolled embeddings are only comparable with the same id.
    pub fn model_id(&self) -> &str {
        &self.pack.manifest().recognition.id
    }

    /// The pack's manifest.
    pub fn manifest(&self) -> &pack::Manifest {
        self.pack.manifest()
    }

    /// The configuration in force.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The verdict thresholds in force.
    pub fn thresholds(&self) -> &VerdictThresholds {
        &self.thresholds
    }

    /// Decodes and analyses a photo.
    pub fn analyze(&self, bytes: &[u8]) -> Result<Analysis, EngineError> {
        let t0 = Instant::now();
        let (img, _) = decode::decode_rgb(bytes, &self.config.decode)?;
        let decode_time = t0.elapsed();
        let mut analysis = self.analyze_image(&img)?;
        analysis.timings.decode = decode_time;
        Ok(analysis)
    }

    /// Analyses decoded pixels.
    pub fn analyze_image(&self, img: &RgbImage) -> Result<Analysis, EngineError> {
        let mut timings = StageTimings::default();
        let t = Instant::now();
        let mut faces: Vec<FaceBox> = self
            .detect(img)?
            .into_iter()
            .map(|d| FaceBox {
                rect: d.rect,
                score: d.score,
            })
            .collect();
        order_faces(&mut faces, img.dimensions());
        timings.detect = t.elapsed();

        let face = match faces.first() {
            None => None,
            Some(best) => {
                let t = Instant::now();
                let landmarks = self.shape.predict(img, best.rect);
                timings.landmarks = t.elapsed();

                let t = Instant::now();
                let chip = self.face_chip(img, &landmarks);
                let quality = quality::assess(
                    &landmarks,
                    &chip,
                    best.rect,
                    img.dimensions(),
                    best.score,
                    &self.config.quality,
                );
                timings.align = t.elapsed();

                let t = Instant::now();
                let embedding = self
                    .embed_chips(std::slice::from_ref(&chip))?
                    .pop()
                    .ok_or_else(|| EngineError::BadOutput("no embedding returned".into()))?;
                timings.embed = t.elapsed();
                Some(AnalyzedFace {
                    rect: best.rect,
                    score: best.score,
                    landmarks,
                    quality,
                    embedding,
                })
            }
        };
        Ok(Analysis {
            width: img.width(),
            height: img.height(),
            faces,
            face,
            timings,
        })
    }

    /// Compares two embeddings under the thresholds in force.
    pub fn compare(&self, a: &Embedding, b: &Embedding) -> Comparison {
        Comparison::new(a, b, &self.thresholds)
    }

    /// Finds faces, in original coordinates, in the order the detector ranks them.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>, EngineError> {
        let cfg = &self.config.detection;
        if cfg.mode == DetectionMode::Exact {
            return self.detect_at_scale(img, 1.0);
        }
        let long = img.width().max(img.height());
        if long > cfg.max_side {
            let k = long.div_ceil(cfg.max_side.max(1));
            let small = box_reduce(img, k);
            let dets = self.detect_at_scale(&small, 1.0 / f64::from(k))?;
            return Ok(dets);
        }
        let dets = self.detect_at_scale(img, 1.0)?;
        if dets.is_empty() && long <= cfg.upsample_max_side {
            let big = image::imageops::resize(
                img,
                img.width() * 2,
                img.height() * 2,
                image::imageops::FilterType::Triangle,
            );
            return self.detect_at_scale(&big, 2.0);
        }
        Ok(dets)
    }

    /// Runs the detector on `img`, which is the original scaled by `scale`, and maps the
    /// boxes back to the original.
    fn detect_at_scale(&self, img: &RgbImage, scale: f64) -> Result<Vec<Detection>, EngineError> {
        let params = &self.pack.manifest().detector.params;
        let pyramid = detector::build_pyramid(img, params);
        // Three unpadded 5×5 stride-2 convolutions need at least 29 px on each side; a
        // smaller tensor (a photo of a few pixels) cannot hold a face anyway.
        const MIN_TENSOR_SIDE: usize = 29;
        if pyramid.rects.is_empty() || pyramid.height.min(pyramid.width) < MIN_TENSOR_SIDE {
            return Ok(Vec::new());
        }
        let shape = [1usize, 3, pyramid.height, pyramid.width];
        let dets = self
            .detector
            .with(|session| -> Result<Vec<Detection>, EngineError> {
                let input = TensorRef::from_array_view((shape, pyramid.data.as_slice()))?;
                let outputs = session.run(ort::inputs!["image" => input])?;
                let (out_shape, scores) = outputs["scores"].try_extract_tensor::<f32>()?;
                if out_shape.len() != 4 || out_shape[0] != 1 || out_shape[1] != 1 {
                    return Err(EngineError::BadOutput(format!(
                        "detector output shape {out_shape:?}"
                    )));
                }
                let (mh, mw) = (out_shape[2] as usize, out_shape[3] as usize);
                Ok(detector::decode_detections(
                    scores,
                    mh,
                    mw,
                    &pyramid,
                    params,
                    self.config.detection.min_score,
                ))
            })?;
        if scale == 1.0 {
            return Ok(dets);
        }
        // Pixel centres: original x ↦ scaled (x + 0.5)·s − 0.5, and back.
        let back = |v: i64| (((v as f64) + 0.5) / scale - 0.5).round() as i64;
        Ok(dets
            .into_iter()
            .map(|d| Detection {
                rect: Rect::new(
                    back(d.rect.left),
                    back(d.rect.top),
                    back(d.rect.right),
                    back(d.rect.bottom),
                ),
                score: d.score,
            })
            .collect())
    }

    /// Predicts the five landmarks of the face in `rect`.
    pub fn landmarks(&self, img: &RgbImage, rect: Rect) -> Vec<Point> {
        self.shape.predict(img, rect)
    }

    /// Cuts the aligned chip for `landmarks` out of `img`.
    pub fn face_chip(&self, img: &RgbImage, landmarks: &[Point]) -> RgbImage {
        let r = &self.pack.manifest().recognition;
        let details = chip::face_chip_details(landmarks, r.chip_size, r.chip_padding);
        chip::extract_chip(img, &details)
    }

    /// Embeds aligned chips in one batch.
    pub fn embed_chips(&self, chips: &[RgbImage]) -> Result<Vec<Embedding>, EngineError> {
        if chips.is_empty() {
            return Ok(Vec::new());
        }
        let r = &self.pack.manifest().recognition;
        let size = r.chip_size;
        let plane = size * size;
        let mut data = vec![0f32; chips.len() * 3 * plane];
        for (n, chip) in chips.iter().enumerate() {
            if chip.width() as usize != size || chip.height() as usize != size {
                return Err(EngineError::BadOutput(format!(
                    "chip is {}×{}, the network takes {size}×{size}",
                    chip.width(),
                    chip.height()
                )));
            }
            let base = n * 3 * plane;
            for (i, p) in chip.pixels().enumerate() {
                for c in 0..3 {
                    data[base + c * plane + i] =
                        (f32::from(p[c]) - r.input_avg_rgb[c]) / r.input_scale;
                }
            }
        }
        let dim = r.embedding_dim;
        let shape = [chips.len(), 3, size, size];
        self.recognizer.with(|session| {
            let input = TensorRef::from_array_view((shape, data.as_slice()))?;
            let outputs = session.run(ort::inputs!["chip" => input])?;
            let (out_shape, values) = outputs["embedding"].try_extract_tensor::<f32>()?;
            if out_shape.len() != 2
                || out_shape[0] as usize != chips.len()
                || out_shape[1] as usize != dim
            {
                return Err(EngineError::BadOutput(format!(
                    "recognition output shape {out_shape:?}"
                )));
            }
            Ok(values
                .chunks_exact(dim)
                .map(|c| Embedding(c.to_vec()))
                .collect())
        })
    }

    /// The pack directory.
    pub fn pack_dir(&self) -> &Path {
        self.pack.dir()
    }
}

impl FaceEngine for Engine {
    fn model_id(&self) -> &str {
        Engine::model_id(self)
    }

    fn thresholds(&self) -> &VerdictThresholds {
        Engine::thresholds(self)
    }

    fn analyze(&self, photo: &[u8]) -> Result<Analysis, EngineError> {
        Engine::analyze(self, photo)
    }
}

/// Puts the face to verify first: the largest, and among faces of about the same size
/// (within 10 % of the largest area) the one nearest the centre — the subject of a photo
/// is framed, bystanders are not. The rest follow by decreasing size.
fn order_faces(faces: &mut [FaceBox], (w, h): (u32, u32)) {
    faces.sort_by_key(|f| std::cmp::Reverse(f.rect.area()));
    let Some(largest) = faces.first().map(|f| f.rect.area() as f64) else {
        return;
    };
    let centre = Point::new(f64::from(w) / 2.0, f64::from(h) / 2.0);
    let best = faces
        .iter()
        .enumerate()
        .take_while(|(_, f)| f.rect.area() as f64 >= 0.9 * largest)
        .min_by(|(_, a), (_, b)| {
            a.rect
                .center()
                .distance(centre)
                .total_cmp(&b.rect.center().distance(centre))
        })
        .map(|(i, _)| i)
        .unwrap_or(0);
    faces[..=best].rotate_right(1);
}

/// Shrinks by an integer factor, averaging each k×k block (a cheap, alias-free reduction).
fn box_reduce(img: &RgbImage, k: u32) -> RgbImage {
    if k <= 1 {
        return img.clone();
    }
    let (w, h) = (img.width() / k, img.height() / k);
    let (w, h) = (w.max(1), h.max(1));
    let area = k * k;
    RgbImage::from_fn(w, h, |x, y| {
        let mut acc = [0u32; 3];
        for dy in 0..k {
            for dx in 0..k {
                let (sx, sy) = (
                    (x * k + dx).min(img.width() - 1),
                    (y * k + dy).min(img.height() - 1),
                );
                let p = img.get_pixel(sx, sy);
                for c in 0..3 {
                    acc[c] += u32::from(p[c]);
                }
            }
        }
        image::Rgb([
            ((acc[0] + area / 2) / area) as u8,
            ((acc[1] + area / 2) / area) as u8,
            ((acc[2] + area / 2) / area) as u8,
        ])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_reduce_averages_blocks() {
        let img = RgbImage::from_fn(4, 2, |x, _| {
            image::Rgb([if x < 2 { 0 } else { 200 }, 10, 255])
        });
        let r = box_reduce(&img, 2);
        assert_eq!(r.dimensions(), (2, 1));
        assert_eq!(r.get_pixel(0, 0).0, [0, 10, 255]);
        assert_eq!(r.get_pixel(1, 0).0, [200, 10, 255]);
    }

    #[test]
    fn the_central_face_wins_among_equals() {
        let face = |l: i64, t: i64, side: i64| FaceBox {
            rect: Rect::new(l, t, l + side - 1, t + side - 1),
            score: 1.0,
        };
        // Two equal faces: the one nearer the centre of a 250×250 photo goes first.
        let mut faces = vec![face(164, 60, 80), face(92, 84, 80), face(0, 0, 40)];
        order_faces(&mut faces, (250, 250));
        assert_eq!(faces[0].rect.left, 92);
        assert_eq!(faces.len(), 3);
        // A clearly larger face wins even off-centre.
        let mut faces = vec![face(100, 100, 60), face(0, 0, 100)];
        order_faces(&mut faces, (250, 250));
        assert_eq!(faces[0].rect.left, 0);
    }

    #[test]
    fn outcome_classification() {
        let a = Analysis {
            width: 1,
            height: 1,
            faces: vec![],
            face: None,
            timings: StageTimings::default(),
        };
        assert_eq!(a.outcome(), Outcome::NoFace);
    }
}
