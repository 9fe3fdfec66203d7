//! The duplicate-face line: how close two portraits of *different* registry persons must
//! be for the registry to call them one face under two ID numbers (一人多证).
//!
//! The one-to-one "same" band is the wrong line for a search: it accepts about 1e-3 of
//! impostor pairs per comparison, so a registry of a million portraits would flag about
//! a thousand strangers per enrolment. The search's line therefore depends on how many
//! comparisons it makes. It comes from a model of the impostor distances' lower tail,
//! fitted on East-Asian impostor pairs (`docs/calibration.md`):
//!
//! ```text
//! P(D ≤ d) = anchor_rate · exp((d − anchor_distance) / scale)      for d ≤ anchor_distance
//! ```
//!
//! (an exponential tail, the generalised Pareto tail with shape 0, which falls more slowly
//! than a Gaussian one and so errs towards a stricter line). For `n` comparisons the line
//! is the largest distance whose expected false matches `n · P(D ≤ d)` stay within
//! [`FALSE_MATCH_BUDGET`], never looser than the pack's "same" band and never stricter
//! than `floor_distance`, below which the same photo re-encoded or resized always falls.

use serde::{Deserialize, Serialize};

/// Expected false matches allowed per searched portrait.
pub const FALSE_MATCH_BUDGET: f64 = 0.01;

/// A pack's calibrated duplicate-face line (in the pack's distance units).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicateLine {
    /// Where the fitted tail starts: a distance with `anchor_rate` of impostor pairs at or
    /// below it.
    pub anchor_distance: f64,
    /// The share of impostor pairs at or below `anchor_distance`.
    pub anchor_rate: f64,
    /// How fast the tail thins towards smaller distances (the exponential's scale).
    pub scale: f64,
    /// The line never goes below this: a portrait re-encoded, resized or lightly cropped
    /// lies well within it, so reuse of one photo is always caught.
    pub floor_distance: f64,
}

impl DuplicateLine {
    /// Checks the parameters; a message for the operator when wrong.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !(positive(self.anchor_distance)
            && positive(self.scale)
            && positive(self.floor_distance)
            && self.anchor_rate.is_finite()
            && self.anchor_rate > 0.0
            && self.anchor_rate < 1.0)
        {
            return Err("the duplicate line needs positive distances and a rate in (0, 1)".into());
        }
        if self.floor_distance > self.anchor_distance {
            return Err("the duplicate line's floor must not exceed its anchor".into());
        }
        Ok(())
    }

    /// The modelled share of impostor pairs at or below `distance`.
    pub fn impostor_rate(&self, distance: f64) -> f64 {
        if distance >= self.anchor_distance {
            return self.anchor_rate;
        }
        self.anchor_rate * ((distance - self.anchor_distance) / self.scale).exp()
    }

    /// Expected false matches when one portrait is searched against `comparisons` others
    /// at `distance`.
    pub fn expected_false_matches(&self, distance: f64, comparisons: u64) -> f64 {
        comparisons as f64 * self.impostor_rate(distance)
    }

    /// The largest distance counted as a duplicate when one portrait is searched against
    /// `comparisons` others, given the pack's "same" band `same_max_distance`.
    pub fn max_distance(&self, comparisons: u64, same_max_distance: f64) -> f64 {
        let n = comparisons.max(1) as f64;
        let budget_rate = FALSE_MATCH_BUDGET / n;
        let line = if budget_rate >= self.anchor_rate {
            same_max_distance
        } else {
            self.anchor_distance + self.scale * (budget_rate / self.anchor_rate).ln()
        };
        line.min(same_max_distance).max(self.floor_distance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> DuplicateLine {
        DuplicateLine {
            anchor_distance: 0.7,
            anchor_rate: 1e-2,
            scale: 0.05,
            floor_distance: 0.2,
        }
    }

    #[test]
    fn the_line_tightens_as_the_registry_grows_and_keeps_its_budget() {
        let l = line();
        let mut previous = f64::INFINITY;
        for n in [1u64, 10, 1_000, 100_000, 1_000_000] {
            let d = l.max_distance(n, 0.55);
            assert!(d <= previous && (0.2..=0.55).contains(&d));
            if d > l.floor_distance {
                assert!(l.expected_false_matches(d, n) <= FALSE_MATCH_BUDGET * (1.0 + 1e-9));
            }
            previous = d;
        }
        assert_eq!(l.max_distance(1, 0.55), 0.55);
        assert_eq!(l.max_distance(u64::MAX, 0.55), 0.2);
    }

    #[test]
    fn validation_refuses_nonsense() {
        assert!(line().validate().is_ok());
        let bad = DuplicateLine {
            anchor_rate: 1.5,
            ..line()
        };
        assert!(bad.validate().is_err());
        let bad = DuplicateLine {
            floor_distance: 0.9,
            ..line()
        };
        assert!(bad.validate().is_err());
    }
}
