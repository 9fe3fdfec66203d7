//! [`Engine`]: the verified pack, the session pools and the models, and the pipeline that
//! strings them together. The pack's manifest decides the pipeline ([`Pipeline`]): dlib's
//! (MMOD → shape predictor → 150×150 chip → ResNet, Euclidean) or YuNet + SFace (YuNet's
//! boxes and five points → 112×112 ArcFace crop → SFace, cosine). Both run behind the same
//! methods and the same [`FaceEngine`] trait; only the parts differ.

use std::path::Path;
use std::time::Instant;

use image::RgbImage;

use crate::align;
use crate::analysis::{Analysis, AnalyzedFace, FaceBox, StageTimings};
use crate::cancel::Cancel;
use crate::config::EngineConfig;
use crate::decode;
use crate::detection;
use crate::detector::Detection;
use crate::error::EngineError;
use crate::face_engine::FaceEngine;
use crate::geometry::{Point, Rect};
use crate::landmarks::ShapePredictor;
use crate::pack::{self, DlibPipeline, ModelPack, Pipeline, YunetSfacePipeline};
use crate::quality::{self, FacePoints, QualityThresholds};
use crate::recognition;
use crate::runtime::{self, SessionPool};
use crate::score::{Comparison, Embedding, Metric, SizeBand, VerdictThresholds};
use crate::sface;
use crate::yunet::{self, YunetFace};

/// The loaded parts of one pipeline.
enum Parts {
    Dlib {
        spec: DlibPipeline,
        detector: SessionPool,
        recognizer: SessionPool,
        shape: ShapePredictor,
    },
    YunetSface {
        spec: YunetSfacePipeline,
        detector: SessionPool,
        recognizer: SessionPool,
    },
}

/// The loaded engine. Cheap to share (`Arc<Engine>`); every method is blocking CPU work and
/// belongs off the async runtime.
pub struct Engine {
    pack: ModelPack,
    config: EngineConfig,
    thresholds: VerdictThresholds,
    size_bands: Vec<SizeBand>,
    quality: QualityThresholds,
    parts: Parts,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("pack", &self.pack.manifest().pack_id)
            .field("sessions", &self.config.sessions)
            .finish()
    }
}

/// One face found, with its landmarks when the detector gives them.
struct Found {
    rect: Rect,
    score: f32,
    landmarks: Option<Vec<Point>>,
}

impl Engine {
    /// Verifies the pack, loads ONNX Runtime and creates the session pools.
    ///
    /// When the configuration names a pack kind, the pack found must be of that kind.
    pub fn open(config: &EngineConfig) -> Result<Self, EngineError> {
        let dir = config.resolved_pack_dir();
        let pack = ModelPack::open(&dir)?;
        let m = pack.manifest().clone();
        if let Some(kind) = config.pack {
            if !kind.matches(&m.pipeline) {
                return Err(EngineError::pack(
                    &dir,
                    format!(
                        "pack {} is not a `{kind}` pack; install it with `renzheng models install --pack {kind}` or point the pack directory at one",
                        m.pack_id
                    ),
                ));
            }
        }
        let thresholds = config
            .verdict
            .unwrap_or(m.thresholds)
            .with_default_score_map(m.score_map());
        thresholds
            .validate()
            .map_err(|e| EngineError::pack(&dir, e))?;
        let size_bands = config
            .size_bands
            .clone()
            .unwrap_or_else(|| m.size_bands.clone());
        crate::score::validate_size_bands(&size_bands).map_err(|e| EngineError::pack(&dir, e))?;
        let quality = config
            .quality
            .as_deref()
            .copied()
            .or(m.quality)
            .unwrap_or_default();
        let env = runtime::environment(&pack.path(&m.runtime.file))?;
        let pool = |file: &str| {
            SessionPool::new(
                &env,
                &pack.path(file),
                config.sessions,
                config.intra_threads,
            )
        };
        let parts = match m.pipeline {
            Pipeline::Dlib(spec) => {
                let shape = ShapePredictor::load(&pack.path(&spec.landmarks.file))?;
                if shape.num_landmarks() != 5 {
                    return Err(EngineError::pack(
                        pack.path(&spec.landmarks.file),
                        format!(
                            "expected a 5-point model, found {} points",
                            shape.num_landmarks()
                        ),
                    ));
                }
                Parts::Dlib {
                    detector: pool(&spec.detector.file)?,
                    recognizer: pool(&spec.recognition.file)?,
                    shape,
                    spec,
                }
            }
            Pipeline::YunetSface(spec) => {
                if spec.landmarks.source != "detector"
                    || spec.landmarks.num_landmarks != 5
                    || spec.alignment.points.len() != 5
                    || spec.alignment.estimator != "umeyama"
                    || spec.alignment.interpolation != "bilinear"
                {
                    return Err(EngineError::pack(
                        &dir,
                        "this build aligns five detector landmarks to a template (umeyama, bilinear) only",
                    ));
                }
                Parts::YunetSface {
                    detector: pool(&spec.detector.file)?,
                    recognizer: pool(&spec.recognition.file)?,
                    spec,
                }
            }
        };
        Ok(Self {
            pack,
            config: config.clone(),
            thresholds,
            size_bands,
            quality,
            parts,
        })
    }

    /// The id of the embedding model; enrolled embeddings are only comparable with the same id.
    pub fn model_id(&self) -> &str {
        self.pack.manifest().model_id()
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

    /// The quality limits in force.
    pub fn quality(&self) -> &QualityThresholds {
        &self.quality
    }

    /// The bands for small faces in force.
    pub fn size_bands(&self) -> &[SizeBand] {
        &self.size_bands
    }

    /// How embeddings are compared (the pack's metric).
    pub fn metric(&self) -> Metric {
        self.pack.manifest().metric
    }

    /// Decodes and analyses a photo.
    pub fn analyze(&self, bytes: &[u8]) -> Result<Analysis, EngineError> {
        self.analyze_cancellable(bytes, &Cancel::new())
    }

    /// [`analyze`](Self::analyze), stopping with [`EngineError::Cancelled`] at the next
    /// stage boundary once `cancel` is raised.
    pub fn analyze_cancellable(
        &self,
        bytes: &[u8],
        cancel: &Cancel,
    ) -> Result<Analysis, EngineError> {
        cancel.check()?;
        let t0 = Instant::now();
        let (img, _) = decode::decode_rgb(bytes, &self.config.decode)?;
        let decode_time = t0.elapsed();
        cancel.check()?;
        let mut analysis = self.analyze_pixels(&img, cancel)?;
        analysis.timings.decode = decode_time;
        Ok(analysis)
    }

    /// Analyses decoded pixels.
    pub fn analyze_image(&self, img: &RgbImage) -> Result<Analysis, EngineError> {
        self.analyze_pixels(img, &Cancel::new())
    }

    fn analyze_pixels(&self, img: &RgbImage, cancel: &Cancel) -> Result<Analysis, EngineError> {
        let mut timings = StageTimings::default();
        let t = Instant::now();
        // A reticulate watermark (网纹) hides faces and moves embeddings: when the photo
        // carries one, everything below sees the photo with it removed. A clean photo is
        // never touched. The filter's time counts as detection's.
        let reticulate = crate::demesh::detect(img);
        let demeshed = reticulate.map(|r| crate::demesh::remove(img, &r));
        let img = demeshed.as_ref().unwrap_or(img);
        let mut found = self.find(img)?;
        cancel.check()?;
        detection::order_by_rect(&mut found, |f| f.rect, img.dimensions());
        let faces: Vec<FaceBox> = found
            .iter()
            .map(|f| FaceBox {
                rect: f.rect,
                score: f.score,
            })
            .collect();
        timings.detect = t.elapsed();

        let face = match found.into_iter().next() {
            None => None,
            Some(best) => {
                let t = Instant::now();
                let (landmarks, points) = match (&self.parts, best.landmarks) {
                    (_, Some(lm)) => {
                        let points = FacePoints::from_yunet(&lm);
                        (lm, points)
                    }
                    (Parts::Dlib { shape, .. }, None) => {
                        let lm = shape.predict(img, best.rect);
                        let points = FacePoints::from_dlib(&lm);
                        (lm, points)
                    }
                    (Parts::YunetSface { .. }, None) => {
                        return Err(EngineError::BadOutput("YuNet gave no landmarks".into()))
                    }
                };
                timings.landmarks = t.elapsed();

                let t = Instant::now();
                let chip = self.face_chip(img, &landmarks);
                let extent = match &self.parts {
                    Parts::Dlib { .. } => best.rect,
                    Parts::YunetSface { spec, .. } => {
                        align::footprint(&landmarks, &spec.alignment.points, spec.alignment.size)
                            .unwrap_or(best.rect)
                    }
                };
                let quality = quality::assess(
                    points,
                    &chip,
                    extent,
                    img.dimensions(),
                    best.score,
                    &self.quality,
                );
                timings.align = t.elapsed();
                cancel.check()?;

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
            reticulate_removed: reticulate.is_some(),
            timings,
        })
    }

    /// Every face the detector finds, with the detector's landmarks when it gives them.
    fn find(&self, img: &RgbImage) -> Result<Vec<Found>, EngineError> {
        Ok(match &self.parts {
            Parts::Dlib { .. } => self
                .detect(img)?
                .into_iter()
                .map(|d| Found {
                    rect: d.rect,
                    score: d.score,
                    landmarks: None,
                })
                .collect(),
            Parts::YunetSface { .. } => self
                .detect_yunet(img)?
                .into_iter()
                .map(|f| Found {
                    rect: f.rect(),
                    score: f.score,
                    landmarks: Some(f.points()),
                })
                .collect(),
        })
    }

    /// Compares two embeddings under the pack's metric and the thresholds in force.
    pub fn compare(&self, a: &Embedding, b: &Embedding) -> Comparison {
        Comparison::with_metric(a, b, self.metric(), &self.thresholds)
    }

    /// Finds faces, in original coordinates, in the order the detector ranks them.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>, EngineError> {
        match &self.parts {
            Parts::Dlib { spec, detector, .. } => {
                let params = &spec.detector.params;
                let min_score = self.config.detection.min_score;
                detection::detect_scaled(img, &self.config.detection, |scaled| {
                    detection::run_detector(detector, params, min_score, scaled)
                })
            }
            Parts::YunetSface { .. } => Ok(self
                .detect_yunet(img)?
                .into_iter()
                .map(|f| Detection {
                    rect: f.rect(),
                    score: f.score,
                })
                .collect()),
        }
    }

    /// YuNet's faces (real-valued boxes and five landmarks, original coordinates), best
    /// score first; the detection scaling rule of the configuration applies. An error on a
    /// pack without YuNet.
    pub fn detect_yunet(&self, img: &RgbImage) -> Result<Vec<YunetFace>, EngineError> {
        let Parts::YunetSface { spec, detector, .. } = &self.parts else {
            return Err(EngineError::Unsupported(
                "this pack's detector is not YuNet",
            ));
        };
        detection::detect_scaled(img, &self.config.detection, |scaled| {
            yunet::detect(detector, &spec.detector.params, scaled)
        })
    }

    /// Predicts the five landmarks of the face in `rect` with the pack's landmark model
    /// (an error on a pack whose landmarks come from its detector).
    pub fn landmarks(&self, img: &RgbImage, rect: Rect) -> Result<Vec<Point>, EngineError> {
        match &self.parts {
            Parts::Dlib { shape, .. } => Ok(shape.predict(img, rect)),
            Parts::YunetSface { .. } => Err(EngineError::Unsupported(
                "this pack's landmarks come from its detector",
            )),
        }
    }

    /// Cuts the aligned chip the recognizer takes for `landmarks` out of `img`.
    pub fn face_chip(&self, img: &RgbImage, landmarks: &[Point]) -> RgbImage {
        match &self.parts {
            Parts::Dlib { spec, .. } => recognition::face_chip(&spec.recognition, img, landmarks),
            Parts::YunetSface { spec, .. } => {
                align::crop(img, landmarks, &spec.alignment.points, spec.alignment.size)
            }
        }
    }

    /// Embeds aligned chips (one batch where the network allows it).
    pub fn embed_chips(&self, chips: &[RgbImage]) -> Result<Vec<Embedding>, EngineError> {
        match &self.parts {
            Parts::Dlib {
                spec, recognizer, ..
            } => recognition::embed_chips(recognizer, &spec.recognition, chips),
            Parts::YunetSface {
                spec, recognizer, ..
            } => sface::embed(recognizer, &spec.recognition, spec.alignment.size, chips),
        }
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

    fn size_bands(&self) -> &[SizeBand] {
        Engine::size_bands(self)
    }

    fn metric(&self) -> Metric {
        Engine::metric(self)
    }

    fn manifest(&self) -> Option<&pack::Manifest> {
        Some(Engine::manifest(self))
    }

    fn duplicate_line(&self) -> crate::DuplicateLine {
        pack::duplicate_line(Engine::manifest(self))
    }

    fn analyze(&self, photo: &[u8]) -> Result<Analysis, EngineError> {
        Engine::analyze(self, photo)
    }

    fn analyze_cancellable(&self, photo: &[u8], cancel: &Cancel) -> Result<Analysis, EngineError> {
        Engine::analyze_cancellable(self, photo, cancel)
    }
}
