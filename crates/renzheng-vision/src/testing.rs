//! A small deterministic engine for tests that are not about faces (authentication,
//! validation, billing, storage): it decodes photos with the real decoder, so corrupt or
//! oversized images fail exactly as they do in production, and then reads the photo's
//! *colour* instead of looking for a face. Enabled by the `testing` feature.
//!
//! The rule, on the mean colour of the photo (each channel in 0–255):
//!
//! | photo | analysis |
//! |---|---|
//! | mean brightness below 16 (black) | no face |
//! | pure white (every channel ≥ 240) | one face, quality issue `too_bright` |
//! | anything else | one face; the embedding is the colour scaled to [0, 1] in its first three dimensions |
//!
//! So two photos of the same colour are the same person (distance 0), a colour and a
//! somewhat different one (one channel off by about 140) are "can't tell" under the default bands,
//! and clearly different colours are different people. [`solid_png`] makes such photos.

use std::io::Cursor;

use image::{ImageFormat, RgbImage};

use crate::decode::{self, DecodeLimits};
use crate::face_engine::FaceEngine;
use crate::geometry::{Point, Rect};
use crate::quality::{QualityIssue, QualityReport};
use crate::score::{Embedding, VerdictThresholds};
use crate::{Analysis, AnalyzedFace, EngineError, FaceBox, StageTimings};

/// Length of the test engine's embeddings (the dlib pack's, so stored vectors look alike).
pub const TEST_EMBEDDING_DIM: usize = 128;

/// The deterministic colour engine described in the [module docs](self).
#[derive(Debug, Clone)]
pub struct TestEngine {
    model_id: String,
    thresholds: VerdictThresholds,
    limits: DecodeLimits,
}

impl Default for TestEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEngine {
    /// The engine with model id `test-colour-v1`, bands 0.39 / 0.70 and the default
    /// decoding limits.
    pub fn new() -> Self {
        TestEngine {
            model_id: "test-colour-v1".into(),
            thresholds: VerdictThresholds {
                same_max_distance: 0.39,
                different_min_distance: 0.70,
                score: None,
            },
            limits: DecodeLimits::default(),
        }
    }

    /// The same engine reporting another model id (embeddings of other ids never compare).
    pub fn with_model_id(mut self, id: impl Into<String>) -> Self {
        self.model_id = id.into();
        self
    }

    /// The embedding a photo of colour `rgb` gets.
    pub fn embedding_of(rgb: [u8; 3]) -> Embedding {
        let mut v = vec![0f32; TEST_EMBEDDING_DIM];
        for c in 0..3 {
            v[c] = f32::from(rgb[c]) / 255.0;
        }
        Embedding(v)
    }
}

impl FaceEngine for TestEngine {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn thresholds(&self) -> &VerdictThresholds {
        &self.thresholds
    }

    /// Colours within 0.05 of each other (about 13 of 255 on one channel) are one face
    /// under two ID numbers, whatever the registry's size.
    fn duplicate_line(&self) -> crate::DuplicateLine {
        crate::DuplicateLine {
            anchor_distance: 0.39,
            anchor_rate: 1e-3,
            scale: 0.02,
            floor_distance: 0.05,
        }
    }

    fn analyze(&self, photo: &[u8]) -> Result<Analysis, EngineError> {
        let (img, _) = decode::decode_rgb(photo, &self.limits)?;
        let (w, h) = img.dimensions();
        let mean = mean_colour(&img);
        let brightness = mean.iter().map(|&c| f64::from(c)).sum::<f64>() / 3.0;
        if brightness < 16.0 {
            return Ok(Analysis {
                width: w,
                height: h,
                faces: Vec::new(),
                face: None,
                reticulate_removed: false,
                timings: StageTimings::default(),
            });
        }
        let rect = Rect::new(0, 0, i64::from(w) - 1, i64::from(h) - 1);
        let mut issues = Vec::new();
        if mean.iter().all(|&c| c >= 240) {
            issues.push(QualityIssue::TooBright);
        }
        let (fw, fh) = (f64::from(w), f64::from(h));
        let landmarks = [
            (0.30, 0.40),
            (0.40, 0.40),
            (0.70, 0.40),
            (0.60, 0.40),
            (0.50, 0.60),
        ]
        .iter()
        .map(|(x, y)| Point::new(x * fw, y * fh))
        .collect();
        let quality = QualityReport {
            inter_eye_px: 0.35 * fw,
            sharpness: 10.0,
            brightness,
            clipped_bright: 0.0,
            clipped_dark: 0.0,
            yaw: 0.0,
            roll_deg: 0.0,
            outside_fraction: 0.0,
            detector_score: 1.0,
            issues,
            warnings: Vec::new(),
        };
        Ok(Analysis {
            width: w,
            height: h,
            faces: vec![FaceBox { rect, score: 1.0 }],
            face: Some(AnalyzedFace {
                rect,
                score: 1.0,
                landmarks,
                quality,
                embedding: Self::embedding_of(mean),
            }),
            reticulate_removed: false,
            timings: StageTimings::default(),
        })
    }
}

fn mean_colour(img: &RgbImage) -> [u8; 3] {
    let n = u64::from(img.width()) * u64::from(img.height());
    let mut acc = [0u64; 3];
    for p in img.pixels() {
        for c in 0..3 {
            acc[c] += u64::from(p[c]);
        }
    }
    let n = n.max(1);
    acc.map(|a| u8::try_from((a + n / 2) / n).unwrap_or(u8::MAX))
}

/// A `side`×`side` PNG of one colour: a photo for the [`TestEngine`].
pub fn solid_png(rgb: [u8; 3], side: u32) -> Vec<u8> {
    let img = RgbImage::from_pixel(side, side, image::Rgb(rgb));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .expect("encoding a PNG in memory cannot fail");
    out.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::Verdict;
    use crate::Outcome;

    #[test]
    fn colours_decide_deterministically() {
        let engine = TestEngine::new();
        let a = engine.analyze(&solid_png([200, 40, 40], 64)).unwrap();
        let b = engine.analyze(&solid_png([200, 40, 40], 32)).unwrap();
        let c = engine.analyze(&solid_png([200, 180, 40], 64)).unwrap();
        let d = engine.analyze(&solid_png([20, 40, 240], 64)).unwrap();
        let e = |x: &Analysis| x.face.as_ref().unwrap().embedding.clone();
        assert_eq!(engine.compare(&e(&a), &e(&b)).verdict, Verdict::Same);
        assert_eq!(engine.compare(&e(&a), &e(&c)).verdict, Verdict::Uncertain);
        assert_eq!(engine.compare(&e(&a), &e(&d)).verdict, Verdict::Different);
        let black = engine.analyze(&solid_png([0, 0, 0], 64)).unwrap();
        assert_eq!(black.outcome(), Outcome::NoFace);
        let white = engine.analyze(&solid_png([255, 255, 255], 64)).unwrap();
        assert_eq!(white.outcome(), Outcome::QualityRefused);
    }

    #[test]
    fn bad_bytes_fail_as_in_production() {
        let engine = TestEngine::new();
        assert!(matches!(
            engine.analyze(b"not an image at all"),
            Err(EngineError::Image(_))
        ));
    }
}
