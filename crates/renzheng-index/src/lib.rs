//! In-memory 1:N search over face templates, for the duplicate-face check at
//! enrolment ("one face under two ID numbers").
//!
//! # Storage
//!
//! A million 128-D `f32` templates would take 512 MB, so each template is stored as
//! int8 codes plus four `f32` scalars: with keys, owners and the key map, 196 MB for a
//! million (203 MB when grown one insert at a time rather than
//! [`with_capacity`](TemplateIndex::with_capacity)).
//! For a stored vector `y` — the template as given under [`Metric::Euclidean`], the
//! template divided by its norm under [`Metric::Cosine`] — the codes are
//! `c_i = round(y_i / s)` with `s = max|y_i| / 127`, and the residual
//! `e = y − s·c` (so `|e_i| ≤ s/2`) is measured when the template is inserted;
//! `‖e‖₂` and `max|e_i|` are kept, rounded up.
//!
//! A query `q` stays `f32` at the edge and is quantised once per search to `i16`
//! codes `p` with step `t` (`q = t·p + f`), so the scan is an integer dot product
//! `p·c` that the compiler vectorises on baseline x86-64. Its approximate dot
//! product with a template is `a = t·s·(p·c)`.
//!
//! # The guarantee
//!
//! [`TemplateIndex::search`] returns *every* template whose exact distance is within
//! the threshold (plus, possibly, a few slightly farther ones). Because
//! `q·y − a = q·e + f·(s·c)`,
//!
//! ```text
//! |q·y − a| ≤ E = min(‖q‖₂‖e‖₂, ‖q‖₁·max|e_i|) + ‖f‖₂·(‖y‖ + ‖e‖₂)
//! ```
//!
//! (Cauchy–Schwarz and Hölder; `‖q‖₁·max|e_i| ≤ (s/2)‖q‖₁`, the textbook bound).
//! Both metrics turn "exact distance ≤ T" into a lower bound on `q·y`, and
//! `q·y ≤ a + E`, so a template is kept when `a + E` reaches that bound:
//!
//! * Cosine (`ŷ = x/‖x‖`, unit): `1 − q·ŷ/‖q‖ ≤ T ⇔ q·ŷ ≥ (1 − T)‖q‖`. Keep if
//!   `a + E ≥ (1 − T)‖q‖`. The template's norm cancels, so non-unit templates are exact.
//! * Euclidean: `‖q − x‖ ≤ T ⇔ q·x ≥ (‖q‖² + ‖x‖² − T²)/2`. Keep if `a + E` reaches it.
//!
//! The integer dot product is exact (the query step is chosen so that no `i32` sum can
//! overflow), and all scalar bookkeeping is `f64` from the `f32` inputs. What remains
//! is `f64` rounding (~1e-16 relative) and the `f32` rounding of a stored Euclidean
//! norm (2⁻²⁴ relative): thresholds are lowered by `1e-9·‖q‖` (Cosine) or
//! `1e-9·‖q‖² + (1e-9 + 2⁻²²)·‖x‖²` (Euclidean) to absorb them, which widens the
//! result by a negligible amount.
//!
//! In distance terms the bound is `E/‖q‖` for Cosine (≈ 0.006 on average for unit
//! Gaussian 128-D templates, whose actual error averages 0.0004 and stays below 0.002)
//! and `≈ E/‖q − x‖` for Euclidean. The distance a [`Candidate`] carries is the
//! approximate one; a caller that must decide on the exact threshold re-checks the few
//! candidates against their full templates.
//!
//! # Cost
//!
//! A search reads every code once (`dim` bytes a template) plus 16 bytes of scalars:
//! at a million 128-D templates that is ~21 ms (median) on one core, bound by memory
//! bandwidth; see `benches/template_index.rs`. Searches take `&self`, so several
//! threads can search one index at once.

#![deny(missing_docs)]

mod error;
mod index;
mod kernel;
mod metric;
mod quant;

pub use error::IndexError;
pub use index::{Candidate, TemplateIndex, MAX_DIM};
pub use metric::Metric;
