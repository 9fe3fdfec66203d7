//! [`Engine`]: the verified pack, the session pools and the landmark model, and the
//! pipeline that strings them together.

use std::path::Path;
use std::time::Instant;

use image::RgbImage;

use crate::analysis::{Analysis, AnalyzedFace, FaceBox, StageTimings};
use crate::config::EngineConfig;
use crate::decode;
use crate::detection;
use crate::detector::Detection;
use crate::error::EngineError;
use crate::face_engine::FaceEngine;
use crate::geometry::{Point, Rect};
use crate::landmarks::ShapePredictor;
use crate::pack::{self, ModelPack};
use crate::quality;
use crate::recognition;
use crate::runtime::{self, SessionPool};
use crate::score::{Comparison, Embedding, VerdictThresholds};

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
        detection::order_faces(&mut faces, img.dimensions());
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
        let params = &self.pack.manifest().detector.params;
        let min_score = self.config.detection.min_score;
        detection::detect_scaled(img, &self.config.detection, |scaled| {
            detection::run_detector(&self.detector, params, min_score, scaled)
        })
    }

    /// Predicts the five landmarks of the face in `rect`.
    pub fn landmarks(&self, img: &RgbImage, rect: Rect) -> Vec<Point> {
        self.shape.predict(img, rect)
    }

    /// Cuts the aligned chip for `landmarks` out of `img`.
    pub fn face_chip(&self, img: &RgbImage, landmarks: &[Point]) -> RgbImage {
        recognition::face_chip(&self.pack.manifest().recognition, img, landmarks)
    }

    /// Embeds aligned chips in one batch.
    pub fn embed_chips(&self, chips: &[RgbImage]) -> Result<Vec<Embedding>, EngineError> {
        recognition::embed_chips(&self.recognizer, &self.pack.manifest().recognition, chips)
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
