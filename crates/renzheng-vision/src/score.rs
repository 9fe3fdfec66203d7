//! Distances, scores and the three-way verdict.
//!
//! dlib's embeddings are compared by Euclidean distance (dlib's own rule: ≤ 0.6 is the same
//! person). Callers get a *score* in [0, 1] instead, a fixed logistic map of the distance:
//!
//! ```text
//! score(d) = 1 / (1 + exp((d − 0.5) / 0.06))
//! ```
//!
//! It is strictly decreasing, 0.5 at d = 0.5, ≈ 0.84 at d = 0.4, ≈ 0.16 at d = 0.6. The map
//! never changes; only the two verdict thresholds move, and they are reported in both units.
//!
//! Other packs compare differently: the pack's manifest names its [`Metric`] (Euclidean
//! for dlib, cosine for SFace, whose *distance* is `1 − cos`, so that smaller is always
//! more alike) and may carry its own fixed [`ScoreMap`] (centre and width of the same
//! logistic), because a distance of 0.5 means different things to different networks.

use serde::{Deserialize, Serialize};

/// A 128-d face embedding as produced by the recognition network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding(pub Vec<f32>);

impl Embedding {
    /// Euclidean distance to `other` (infinite when the dimensions differ).
    pub fn distance(&self, other: &Embedding) -> f64 {
        if self.0.len() != other.0.len() {
            return f64::INFINITY;
        }
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum::<f64>()
            .sqrt()
    }
}

impl Embedding {
    /// Cosine similarity to `other` in [−1, 1] (0 when either is zero or the dimensions
    /// differ).
    pub fn cosine(&self, other: &Embedding) -> f64 {
        if self.0.len() != other.0.len() {
            return 0.0;
        }
        let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
        for (a, b) in self.0.iter().zip(&other.0) {
            let (a, b) = (f64::from(*a), f64::from(*b));
            dot += a * b;
            na += a * a;
            nb += b * b;
        }
        if na == 0.0 || nb == 0.0 {
            return 0.0;
        }
        dot / (na.sqrt() * nb.sqrt())
    }

    /// The same vector scaled to unit length (unchanged when it is zero).
    pub fn l2_normalized(mut self) -> Embedding {
        let n = self
            .0
            .iter()
            .map(|v| f64::from(*v).powi(2))
            .sum::<f64>()
            .sqrt();
        if n > 0.0 {
            for v in &mut self.0 {
                *v = (f64::from(*v) / n) as f32;
            }
        }
        self
    }
}

/// How two embeddings of a pack are compared; the pack's manifest says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Euclidean distance (dlib's ResNet).
    #[default]
    Euclidean,
    /// Cosine distance `1 − cos(a, b)`, in [0, 2] (SFace).
    Cosine,
}

impl Metric {
    /// The distance between `a` and `b` under this metric (infinite when the dimensions
    /// differ: embeddings of different networks never compare).
    pub fn distance(self, a: &Embedding, b: &Embedding) -> f64 {
        if a.0.len() != b.0.len() {
            return f64::INFINITY;
        }
        match self {
            Metric::Euclidean => a.distance(b),
            Metric::Cosine => 1.0 - a.cosine(b),
        }
    }
}

/// A fixed, strictly decreasing distance → score map,
/// `score(d) = 1 / (1 + exp((d − centre) / width))`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreMap {
    /// The distance that scores 0.5.
    pub centre: f64,
    /// How fast the score falls around the centre.
    pub width: f64,
}

impl Default for ScoreMap {
    /// dlib's map (centre 0.5, width 0.06), documented in the module.
    fn default() -> Self {
        Self {
            centre: 0.5,
            width: 0.06,
        }
    }
}

impl ScoreMap {
    /// The score of `distance` (0 for a non-finite distance).
    pub fn score(&self, distance: f64) -> f64 {
        if !distance.is_finite() {
            return 0.0;
        }
        1.0 / (1.0 + ((distance - self.centre) / self.width).exp())
    }

    /// Checks that the map is usable; a message for the operator when not.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.centre.is_finite() && self.width.is_finite() && self.width > 0.0) {
            return Err("the score map needs a finite centre and a positive width".into());
        }
        Ok(())
    }
}

/// The documented distance → score map of the dlib pack ([`ScoreMap::default`]).
pub fn score_from_distance(distance: f64) -> f64 {
    ScoreMap::default().score(distance)
}

/// What the comparison says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Same person (result 1).
    Same,
    /// Can't tell (result 2).
    Uncertain,
    /// Different people (result 3).
    Different,
}

/// The two distance thresholds that split the verdict bands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictThresholds {
    /// Distances at or below this are "same person".
    pub same_max_distance: f64,
    /// Distances at or above this are "different people".
    pub different_min_distance: f64,
    /// The distance → score map; `None` means the pack's own (and dlib's, for a bare
    /// value), so that configuration overriding only the two thresholds keeps the pack's
    /// map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<ScoreMap>,
}

impl Default for VerdictThresholds {
    /// The dlib pack's, calibrated on East-Asian impostors first; see `docs/calibration.md`.
    fn default() -> Self {
        Self {
            same_max_distance: 0.39,
            different_min_distance: 0.70,
            score: None,
        }
    }
}

impl VerdictThresholds {
    /// Checks the ordering and range; returns a message for the operator when wrong.
    pub fn validate(&self) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && v > 0.0 && v < 2.0;
        if !ok(self.same_max_distance) || !ok(self.different_min_distance) {
            return Err("verdict thresholds must be distances in (0, 2)".into());
        }
        if let Some(map) = &self.score {
            map.validate()?;
        }
        if self.same_max_distance > self.different_min_distance {
            return Err(format!(
                "same_max_distance ({}) must not exceed different_min_distance ({})",
                self.same_max_distance, self.different_min_distance
            ));
        }
        Ok(())
    }

    /// The verdict for `distance`.
    pub fn verdict(&self, distance: f64) -> Verdict {
        if distance <= self.same_max_distance {
            Verdict::Same
        } else if distance >= self.different_min_distance {
            Verdict::Different
        } else {
            Verdict::Uncertain
        }
    }

    /// The score map in force.
    pub fn score_map(&self) -> ScoreMap {
        self.score.unwrap_or_default()
    }

    /// The thresholds with `map` as their score map unless they name one already.
    pub fn with_default_score_map(self, map: Option<ScoreMap>) -> Self {
        Self {
            score: self.score.or(map),
            ..self
        }
    }

    /// The thresholds expressed as scores: (same, different).
    pub fn as_scores(&self) -> (f64, f64) {
        let map = self.score_map();
        (
            map.score(self.same_max_distance),
            map.score(self.different_min_distance),
        )
    }
}

/// The bands for a caller's photo whose face is small, where the clean bands' promises
/// do not hold: a small face's embedding drifts from its owner's (genuine distances grow)
/// and strangers' small faces look more alike (the impostor tail moves closer), so such a
/// photo gets bands calibrated on photos of its own size (`docs/calibration.md`,
/// `renzheng calibrate`).
///
/// A band covers the eye distances (the quality report's `inter_eye_px`) from the next
/// smaller band's bound up to, not including, `below_inter_eye_px`; the smallest band
/// reaches down to the quality gate's refusal limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeBand {
    /// Faces whose eyes are closer than this many pixels (and not closer than the next
    /// smaller band's bound) get this band.
    pub below_inter_eye_px: f64,
    /// Distances at or below this are "same person".
    pub same_max_distance: f64,
    /// Distances at or above this are "different people".
    pub different_min_distance: f64,
}

impl SizeBand {
    /// The band as thresholds with `clean`'s score map.
    pub fn thresholds(&self, clean: &VerdictThresholds) -> VerdictThresholds {
        VerdictThresholds {
            same_max_distance: self.same_max_distance,
            different_min_distance: self.different_min_distance,
            score: clean.score,
        }
    }
}

/// Checks a list of size bands: each band valid, bounds positive and distinct.
pub fn validate_size_bands(bands: &[SizeBand]) -> Result<(), String> {
    let mut bounds = Vec::with_capacity(bands.len());
    for b in bands {
        if !(b.below_inter_eye_px.is_finite() && b.below_inter_eye_px > 0.0) {
            return Err(format!(
                "size band below_inter_eye_px = {} must be a positive number of pixels",
                b.below_inter_eye_px
            ));
        }
        VerdictThresholds {
            same_max_distance: b.same_max_distance,
            different_min_distance: b.different_min_distance,
            score: None,
        }
        .validate()
        .map_err(|e| format!("size band below {} px: {e}", b.below_inter_eye_px))?;
        bounds.push(b.below_inter_eye_px);
    }
    bounds.sort_by(f64::total_cmp);
    if bounds.windows(2).any(|w| w[0] == w[1]) {
        return Err("two size bands have the same below_inter_eye_px".into());
    }
    Ok(())
}

/// The bands that apply to one caller's photo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AppliedBands {
    /// The thresholds in force for this photo.
    pub thresholds: VerdictThresholds,
    /// The size band they come from (`None`: the clean bands).
    pub size_band: Option<SizeBand>,
}

/// The bands for a face whose eyes are `inter_eye_px` apart: the smallest size band whose
/// bound lies above it, else `clean`.
pub fn bands_for_face(
    clean: &VerdictThresholds,
    size_bands: &[SizeBand],
    inter_eye_px: f64,
) -> AppliedBands {
    let band = size_bands
        .iter()
        .filter(|b| inter_eye_px < b.below_inter_eye_px)
        .min_by(|a, b| a.below_inter_eye_px.total_cmp(&b.below_inter_eye_px))
        .copied();
    AppliedBands {
        thresholds: band.map_or(*clean, |b| b.thresholds(clean)),
        size_band: band,
    }
}

/// The result of comparing two embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Comparison {
    /// The distance under the pack's [`Metric`].
    pub distance: f64,
    /// The thresholds' [`ScoreMap`] of the distance.
    pub score: f64,
    /// The band the distance falls in.
    pub verdict: Verdict,
}

impl Comparison {
    /// Compares `a` and `b` by Euclidean distance under `thresholds`.
    pub fn new(a: &Embedding, b: &Embedding, thresholds: &VerdictThresholds) -> Self {
        Self::with_metric(a, b, Metric::Euclidean, thresholds)
    }

    /// Compares `a` and `b` under `metric` and `thresholds`.
    pub fn with_metric(
        a: &Embedding,
        b: &Embedding,
        metric: Metric,
        thresholds: &VerdictThresholds,
    ) -> Self {
        let distance = metric.distance(a, b);
        Self {
            distance,
            score: thresholds.score_map().score(distance),
            verdict: thresholds.verdict(distance),
        }
    }
}

impl Comparison {
    /// Caps a comparison whose photo carries a quality warning: it cannot be "same person"
    /// (verdict at most "can't tell"), and its score stays just below the "same" threshold,
    /// so that score and verdict never disagree.
    pub fn capped(self, thresholds: &VerdictThresholds) -> Self {
        if self.verdict != Verdict::Same {
            return self;
        }
        let (same_score, _) = thresholds.as_scores();
        Self {
            verdict: Verdict::Uncertain,
            score: self.score.min(same_score - 1e-3),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_monotone_and_bounded() {
        let mut prev = 1.0;
        for i in 0..=200 {
            let s = score_from_distance(i as f64 * 0.01);
            assert!((0.0..=1.0).contains(&s));
            assert!(s < prev || (s == prev && s == 0.0));
            prev = s;
        }
        assert!((score_from_distance(0.5) - 0.5).abs() < 1e-12);
        assert_eq!(score_from_distance(f64::NAN), 0.0);
    }

    #[test]
    fn score_matches_the_documented_points() {
        // The module docs: ≈ 0.84 at d = 0.4, ≈ 0.16 at d = 0.6.
        assert!((score_from_distance(0.4) - 0.8411).abs() < 1e-4);
        assert!((score_from_distance(0.6) - 0.1589).abs() < 1e-4);
    }

    #[test]
    fn verdict_bands() {
        let t = VerdictThresholds {
            same_max_distance: 0.4,
            different_min_distance: 0.55,
            score: None,
        };
        assert_eq!(t.verdict(0.4), Verdict::Same);
        assert_eq!(t.verdict(0.5), Verdict::Uncertain);
        assert_eq!(t.verdict(0.55), Verdict::Different);
        let (s, d) = t.as_scores();
        assert!(s > d);
        assert!(VerdictThresholds {
            same_max_distance: 0.6,
            different_min_distance: 0.5,
            score: None,
        }
        .validate()
        .is_err());
    }

    #[test]
    fn capping_only_touches_same() {
        let t = VerdictThresholds::default();
        let a = Embedding(vec![0.0]);
        let same = Comparison::new(&a, &Embedding(vec![0.1]), &t).capped(&t);
        assert_eq!(same.verdict, Verdict::Uncertain);
        assert!(same.score < t.as_scores().0);
        let diff = Comparison::new(&a, &Embedding(vec![0.9]), &t);
        assert_eq!(diff.capped(&t), diff);
    }

    #[test]
    fn cosine_metric_and_its_score_map() {
        let a = Embedding(vec![3.0, 4.0]).l2_normalized();
        assert!((a.0[0] - 0.6).abs() < 1e-7 && (a.0[1] - 0.8).abs() < 1e-7);
        let b = Embedding(vec![4.0, -3.0]);
        assert!(Metric::Cosine.distance(&a, &b) - 1.0 < 1e-12);
        assert!(Metric::Cosine.distance(&a, &a).abs() < 1e-7);
        assert_eq!(
            Metric::Cosine.distance(&a, &Embedding(vec![1.0])),
            f64::INFINITY
        );
        let t = VerdictThresholds {
            same_max_distance: 0.6,
            different_min_distance: 0.8,
            score: Some(ScoreMap {
                centre: 0.7,
                width: 0.05,
            }),
        };
        let c = Comparison::with_metric(&a, &a, Metric::Cosine, &t);
        assert_eq!(c.verdict, Verdict::Same);
        assert!(c.score > 0.99);
        let (same, different) = t.as_scores();
        assert!((same - 1.0 / (1.0 + (-2.0f64).exp())).abs() < 1e-12);
        assert!(different < 0.5 && same > 0.5);
        // A configured override of the thresholds alone keeps the pack's map.
        let cfg = VerdictThresholds::default().with_default_score_map(t.score);
        assert_eq!(cfg.score_map(), t.score.unwrap());
        assert!(VerdictThresholds {
            score: Some(ScoreMap {
                centre: 0.7,
                width: 0.0
            }),
            ..t
        }
        .validate()
        .is_err());
    }

    #[test]
    fn size_bands_pick_the_smallest_bound_above_the_face() {
        let clean = VerdictThresholds::default();
        let bands = [
            SizeBand {
                below_inter_eye_px: 30.0,
                same_max_distance: 0.3,
                different_min_distance: 0.8,
            },
            SizeBand {
                below_inter_eye_px: 20.0,
                same_max_distance: 0.2,
                different_min_distance: 0.9,
            },
        ];
        assert!(validate_size_bands(&bands).is_ok());
        let at = |px: f64| bands_for_face(&clean, &bands, px);
        assert_eq!(at(12.0).thresholds.same_max_distance, 0.2);
        assert_eq!(at(20.0).thresholds.same_max_distance, 0.3);
        assert_eq!(at(29.9).size_band, Some(bands[0]));
        assert_eq!(at(30.0).size_band, None);
        assert_eq!(at(30.0).thresholds, clean);
        assert_eq!(bands_for_face(&clean, &[], 5.0).thresholds, clean);
        let twice = [bands[0], bands[0]];
        assert!(validate_size_bands(&twice).is_err());
        let crossed = [SizeBand {
            same_max_distance: 0.9,
            ..bands[0]
        }];
        assert!(validate_size_bands(&crossed).is_err());
        let nowhere = [SizeBand {
            below_inter_eye_px: f64::NAN,
            ..bands[0]
        }];
        assert!(validate_size_bands(&nowhere).is_err());
    }

    #[test]
    fn embedding_distance() {
        let a = Embedding(vec![0.0, 0.0]);
        assert_eq!(a.distance(&Embedding(vec![3.0, 4.0])), 5.0);
        assert_eq!(a.distance(&Embedding(vec![1.0])), f64::INFINITY);
    }
}
