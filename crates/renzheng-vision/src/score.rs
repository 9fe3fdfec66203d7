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

const SCORE_CENTRE: f64 = 0.5;
const SCORE_WIDTH: f64 = 0.06;

/// The documented distance → score map.
pub fn score_from_distance(distance: f64) -> f64 {
    if !distance.is_finite() {
        return 0.0;
    }
    1.0 / (1.0 + ((distance - SCORE_CENTRE) / SCORE_WIDTH).exp())
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
}

impl Default for VerdictThresholds {
    /// Calibrated on East-Asian impostors first; see `docs/calibration.md`.
    fn default() -> Self {
        Self {
            same_max_distance: 0.39,
            different_min_distance: 0.70,
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

    /// The thresholds expressed as scores: (same, different).
    pub fn as_scores(&self) -> (f64, f64) {
        (
            score_from_distance(self.same_max_distance),
            score_from_distance(self.different_min_distance),
        )
    }
}

/// The result of comparing two embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Comparison {
    /// Euclidean distance.
    pub distance: f64,
    /// [`score_from_distance`] of the distance.
    pub score: f64,
    /// The band the distance falls in.
    pub verdict: Verdict,
}

impl Comparison {
    /// Compares `a` and `b` under `thresholds`.
    pub fn new(a: &Embedding, b: &Embedding, thresholds: &VerdictThresholds) -> Self {
        let distance = a.distance(b);
        Self {
            distance,
            score: score_from_distance(distance),
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
        };
        assert_eq!(t.verdict(0.4), Verdict::Same);
        assert_eq!(t.verdict(0.5), Verdict::Uncertain);
        assert_eq!(t.verdict(0.55), Verdict::Different);
        let (s, d) = t.as_scores();
        assert!(s > d);
        assert!(VerdictThresholds {
            same_max_distance: 0.6,
            different_min_distance: 0.5
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
    fn embedding_distance() {
        let a = Embedding(vec![0.0, 0.0]);
        assert_eq!(a.distance(&Embedding(vec![3.0, 4.0])), 5.0);
        assert_eq!(a.distance(&Embedding(vec![1.0])), f64::INFINITY);
    }
}
