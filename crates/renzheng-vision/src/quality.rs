//! Photo-quality gate: is this face good enough to compare at all?
//!
//! Measures are taken where they mean the same thing for every photo: size in original
//! pixels (from the landmarks), sharpness and exposure on the aligned 150×150 chip (so a
//! large photo is not "sharper" just for being large), pose from the landmark geometry.
//! Thresholds are configuration; the defaults were calibrated on `shared/faces` (see
//! `docs/calibration.md`).

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::geometry::{Point, Rect};

/// A reason the photo is not good enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityIssue {
    /// The eyes are too close together in pixels: too little detail to compare.
    FaceTooSmall,
    /// The aligned face lacks fine detail (out of focus, motion, heavy compression).
    Blurry,
    /// The face is underexposed.
    TooDark,
    /// The face is overexposed or washed out.
    TooBright,
    /// The head is turned too far from frontal.
    ExtremePose,
    /// A large part of the face lies outside the photo.
    FaceCutOff,
    /// The detector itself is unsure this is a face (occlusion, odd crops).
    LowConfidence,
}

impl QualityIssue {
    /// Stable snake_case name, as used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            QualityIssue::FaceTooSmall => "face_too_small",
            QualityIssue::Blurry => "blurry",
            QualityIssue::TooDark => "too_dark",
            QualityIssue::TooBright => "too_bright",
            QualityIssue::ExtremePose => "extreme_pose",
            QualityIssue::FaceCutOff => "face_cut_off",
            QualityIssue::LowConfidence => "low_confidence",
        }
    }
}

/// Limits of the quality gate.
///
/// Two tiers. Below a `min_*`/beyond a `max_*` limit the photo is refused (an *issue*: the
/// service answers 8). Below a `warn_*` limit the photo is still compared but carries a
/// *warning*, and a face with a warning can never be called "same person" (its verdict is
/// capped at "can't tell"): a small, soft or turned face still separates strangers well but
/// does not support a 1e-3 false-accept claim.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityThresholds {
    /// Refuse when the eye centres are closer than this, original pixels.
    pub min_inter_eye_px: f64,
    /// Warn when the eye centres are closer than this (the 150-px chip then magnifies the
    /// face more than 2×: its eyes are 52.5 px apart).
    pub warn_inter_eye_px: f64,
    /// Refuse below this sharpness (mean absolute Laplacian of the chip's inner face,
    /// normalised by brightness).
    pub min_sharpness: f64,
    /// Warn below this sharpness.
    pub warn_sharpness: f64,
    /// Refuse when the inner face's mean grey level is below this (0–255).
    pub min_brightness: f64,
    /// Refuse when the inner face's mean grey level is above this (0–255).
    pub max_brightness: f64,
    /// Refuse when more than this fraction of the inner face is at ≥ 250 (blown out).
    pub max_clipped_bright: f64,
    /// Refuse when more than this fraction of the inner face is at ≤ 5 (crushed).
    pub max_clipped_dark: f64,
    /// Warn when the yaw asymmetry exceeds this (0 frontal, 1 profile).
    pub warn_yaw: f64,
    /// Warn when the eye line is tilted more than this, degrees.
    pub warn_roll_deg: f64,
    /// Refuse when more than this fraction of the face box lies outside the photo.
    pub max_outside_fraction: f64,
    /// Warn when more than this fraction of the face box lies outside the photo.
    pub warn_outside_fraction: f64,
    /// Refuse below this detector score (0 keeps every detection dlib keeps).
    pub min_detector_score: f32,
}

impl Default for QualityThresholds {
    /// Calibrated on `shared/faces` (docs/calibration.md): no clean photo of the four
    /// evaluation sets is refused; the degraded photos of `bad_inputs` are refused or warned.
    fn default() -> Self {
        Self {
            min_inter_eye_px: 9.0,
            warn_inter_eye_px: 26.0,
            min_sharpness: 1.4,
            warn_sharpness: 2.2,
            min_brightness: 40.0,
            max_brightness: 230.0,
            max_clipped_bright: 0.5,
            max_clipped_dark: 0.5,
            warn_yaw: 0.75,
            warn_roll_deg: 45.0,
            max_outside_fraction: 0.5,
            warn_outside_fraction: 0.1,
            min_detector_score: 0.0,
        }
    }
}

/// Measurements of one face and the verdict of the gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    /// Distance between eye centres, original pixels.
    pub inter_eye_px: f64,
    /// Mean absolute Laplacian of the inner face on the aligned chip.
    pub sharpness: f64,
    /// Mean grey level of the inner face (0–255).
    pub brightness: f64,
    /// Fraction of inner-face pixels at ≥ 250.
    pub clipped_bright: f64,
    /// Fraction of inner-face pixels at ≤ 5.
    pub clipped_dark: f64,
    /// Yaw asymmetry in [0, 1].
    pub yaw: f64,
    /// Roll of the eye line, degrees.
    pub roll_deg: f64,
    /// Fraction of the face box outside the photo.
    pub outside_fraction: f64,
    /// MMOD detector score.
    pub detector_score: f32,
    /// Every failed hard check; empty when the face passes.
    pub issues: Vec<QualityIssue>,
    /// Soft problems: the face is compared, but cannot be called the same person.
    pub warnings: Vec<QualityIssue>,
}

impl QualityReport {
    /// True when no hard check failed.
    pub fn passed(&self) -> bool {
        self.issues.is_empty()
    }

    /// True when the face passed but carries a warning.
    pub fn warned(&self) -> bool {
        !self.warnings.is_empty()
    }
}

/// The points the gate measures pose and size with, whatever landmark model gave them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FacePoints {
    /// One eye centre.
    pub eye_a: Point,
    /// The other eye centre.
    pub eye_b: Point,
    /// The nose tip (or bottom).
    pub nose: Point,
    /// The face's size for the "too small" checks, pixels: the eye distance, or a
    /// pose-robust stand-in for it where the landmarks allow one.
    pub size_px: f64,
}

impl FacePoints {
    /// From dlib's five points: two corners of each eye, then the bottom of the nose.
    pub(crate) fn from_dlib(landmarks: &[Point]) -> Self {
        let (eye_a, eye_b) = (
            landmarks[0].midpoint(landmarks[1]),
            landmarks[2].midpoint(landmarks[3]),
        );
        Self {
            eye_a,
            eye_b,
            nose: landmarks[4],
            size_px: eye_a.distance(eye_b),
        }
    }

    /// From YuNet's five points: the two eye centres, the nose tip, the mouth corners.
    ///
    /// A turned head brings the eyes together while the face stays as large, so the size
    /// is the larger of the eye distance and 0.87 × the eyes-to-mouth distance (their
    /// ratio on the ArcFace template, 35.2 / 40.7): a profile is not taken for a tiny face.
    pub(crate) fn from_yunet(landmarks: &[Point]) -> Self {
        let (eye_a, eye_b) = (landmarks[0], landmarks[1]);
        let eyes = eye_a.midpoint(eye_b);
        let mouth = landmarks[3].midpoint(landmarks[4]);
        Self {
            eye_a,
            eye_b,
            nose: landmarks[2],
            size_px: eye_a.distance(eye_b).max(0.87 * eyes.distance(mouth)),
        }
    }
}

/// Measures a face and applies `t`.
///
/// `points` are the eye centres and the nose, `chip` the aligned face the recognizer
/// sees (measures on it are relative to its size), `rect` the face's extent for the
/// cut-off check (dlib: the detection box; SFace: the crop's footprint in the photo, since
/// YuNet's box only covers the visible part of a face) and `image_size` the photo's size.
pub(crate) fn assess(
    points: FacePoints,
    chip: &RgbImage,
    rect: Rect,
    image_size: (u32, u32),
    detector_score: f32,
    t: &QualityThresholds,
) -> QualityReport {
    let FacePoints {
        eye_a,
        eye_b,
        nose,
        size_px,
    } = points;
    let inter_eye_px = eye_a.distance(eye_b);

    // Roll: angle of the eye line (which eye is first doesn't matter).
    let (left_eye, right_eye) = if eye_a.x <= eye_b.x {
        (eye_a, eye_b)
    } else {
        (eye_b, eye_a)
    };
    let roll_deg = (right_eye.y - left_eye.y)
        .atan2(right_eye.x - left_eye.x)
        .to_degrees();

    // Yaw: where the nose falls between the eyes, measured along the eye line. Frontal
    // faces put it near the middle; a turned head pushes it towards one eye or beyond.
    let ex = right_eye.x - left_eye.x;
    let ey = right_eye.y - left_eye.y;
    let len2 = (ex * ex + ey * ey).max(1e-9);
    let along = ((nose.x - left_eye.x) * ex + (nose.y - left_eye.y) * ey) / len2;
    let yaw = ((along - 0.5).abs() * 2.0).min(1.0);

    let (w, h) = (i64::from(image_size.0), i64::from(image_size.1));
    let inside = rect.intersect(&Rect::from_size(w, h)).area() as f64;
    let outside_fraction = if rect.area() > 0 {
        1.0 - inside / rect.area() as f64
    } else {
        1.0
    };

    let stats = chip_stats(chip);
    let mut issues = Vec::new();
    let mut warnings = Vec::new();
    let mut check = |refuse: bool, warn: bool, issue: QualityIssue| {
        if refuse {
            issues.push(issue);
        } else if warn {
            warnings.push(issue);
        }
    };
    check(
        size_px < t.min_inter_eye_px,
        size_px < t.warn_inter_eye_px,
        QualityIssue::FaceTooSmall,
    );
    check(
        outside_fraction > t.max_outside_fraction,
        outside_fraction > t.warn_outside_fraction,
        QualityIssue::FaceCutOff,
    );
    let dark = stats.brightness < t.min_brightness || stats.clipped_dark > t.max_clipped_dark;
    let bright = stats.brightness > t.max_brightness || stats.clipped_bright > t.max_clipped_bright;
    check(dark, false, QualityIssue::TooDark);
    check(bright, false, QualityIssue::TooBright);
    // A badly exposed face is also flat: judge blur only on a well-exposed one, so the
    // caller hears the real reason.
    if !dark && !bright {
        check(
            stats.sharpness < t.min_sharpness,
            stats.sharpness < t.warn_sharpness,
            QualityIssue::Blurry,
        );
    }
    check(
        false,
        yaw > t.warn_yaw || roll_deg.abs() > t.warn_roll_deg,
        QualityIssue::ExtremePose,
    );
    check(
        detector_score < t.min_detector_score,
        false,
        QualityIssue::LowConfidence,
    );
    QualityReport {
        inter_eye_px,
        sharpness: stats.sharpness,
        brightness: stats.brightness,
        clipped_bright: stats.clipped_bright,
        clipped_dark: stats.clipped_dark,
        yaw,
        roll_deg,
        outside_fraction,
        detector_score,
        issues,
        warnings,
    }
}

struct ChipStats {
    sharpness: f64,
    brightness: f64,
    clipped_bright: f64,
    clipped_dark: f64,
}

/// Statistics of the inner face: the chip's central region (eyes to mouth), away from
/// hair and background that vary from photo to photo.
fn chip_stats(chip: &RgbImage) -> ChipStats {
    let (w, h) = (chip.width() as usize, chip.height() as usize);
    let grey: Vec<f64> = chip
        .pixels()
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect();
    let (x0, x1) = (w * 3 / 10, w * 7 / 10);
    let (y0, y1) = (h * 3 / 10, h * 8 / 10);
    let (mut sum, mut n, mut bright, mut dark, mut lap) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for y in y0..y1 {
        for x in x0..x1 {
            let v = grey[y * w + x];
            sum += v;
            n += 1.0;
            if v >= 250.0 {
                bright += 1.0;
            }
            if v <= 5.0 {
                dark += 1.0;
            }
            let l = 4.0 * v
                - grey[(y - 1) * w + x]
                - grey[(y + 1) * w + x]
                - grey[y * w + x - 1]
                - grey[y * w + x + 1];
            lap += l.abs();
        }
    }
    let n = n.max(1.0);
    let brightness = sum / n;
    // Normalise by contrast so that a dim but sharp face is not called blurry.
    let contrast = (brightness.max(20.0)) / 128.0;
    ChipStats {
        sharpness: lap / n / contrast,
        brightness,
        clipped_bright: bright / n,
        clipped_dark: dark / n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn frontal(scale: f64) -> FacePoints {
        FacePoints::from_dlib(&[
            Point::new(70.0 * scale, 40.0 * scale),
            Point::new(60.0 * scale, 40.0 * scale),
            Point::new(30.0 * scale, 40.0 * scale),
            Point::new(40.0 * scale, 40.0 * scale),
            Point::new(50.0 * scale, 60.0 * scale),
        ])
    }

    fn textured_chip(level: u8, amp: i16) -> RgbImage {
        RgbImage::from_fn(150, 150, |x, y| {
            let v = i16::from(level) + if (x + y) % 2 == 0 { amp } else { -amp };
            let v = v.clamp(0, 255) as u8;
            Rgb([v, v, v])
        })
    }

    #[test]
    fn a_good_face_passes() {
        let r = assess(
            frontal(1.0),
            &textured_chip(128, 20),
            Rect::new(10, 10, 100, 100),
            (200, 200),
            1.0,
            &QualityThresholds::default(),
        );
        assert!(r.passed(), "{r:?}");
        assert!((r.inter_eye_px - 30.0).abs() < 1e-9);
        assert!(r.yaw < 0.01 && r.roll_deg.abs() < 1e-9);
    }

    #[test]
    fn each_check_can_fail() {
        let t = QualityThresholds::default();
        let check = |lm: FacePoints, chip: &RgbImage, rect: Rect| {
            let r = assess(lm, chip, rect, (200, 200), 1.0, &t);
            [r.issues, r.warnings].concat()
        };
        let good_chip = textured_chip(128, 20);
        let rect = Rect::new(10, 10, 100, 100);
        assert!(check(frontal(0.5), &good_chip, rect).contains(&QualityIssue::FaceTooSmall));
        let tiny = assess(frontal(0.2), &good_chip, rect, (200, 200), 1.0, &t);
        assert_eq!(
            tiny.issues,
            vec![QualityIssue::FaceTooSmall],
            "6 px between the eyes is refused"
        );
        let small = assess(frontal(0.6), &good_chip, rect, (200, 200), 1.0, &t);
        assert!(
            small.passed() && small.warned(),
            "18 px is compared, with a warning"
        );
        assert!(check(frontal(1.0), &textured_chip(128, 0), rect).contains(&QualityIssue::Blurry));
        assert!(check(frontal(1.0), &textured_chip(15, 5), rect).contains(&QualityIssue::TooDark));
        assert!(
            check(frontal(1.0), &textured_chip(245, 5), rect).contains(&QualityIssue::TooBright)
        );
        let mut turned = frontal(1.0);
        turned.nose = Point::new(72.0, 60.0);
        assert!(check(turned, &good_chip, rect).contains(&QualityIssue::ExtremePose));
        assert!(
            check(frontal(1.0), &good_chip, Rect::new(150, 10, 300, 100))
                .contains(&QualityIssue::FaceCutOff)
        );
        let blurred = assess(
            frontal(1.0),
            &textured_chip(128, 0),
            rect,
            (200, 200),
            1.0,
            &t,
        );
        assert_eq!(blurred.issues, vec![QualityIssue::Blurry]);
    }
}
