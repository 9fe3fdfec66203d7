//! Encoding templates and queries, and the error bound that makes search exact.
//!
//! All bookkeeping is done in `f64` from the caller's `f32` values, so the only
//! rounding left unaccounted for is `f64` arithmetic (relative ~1e-16), which the
//! [`SLACK`] term covers with seven orders of magnitude to spare.

use crate::{IndexError, Metric};

/// Largest code magnitude: `i8` without `-128`, so the range is symmetric.
pub(crate) const CODE_MAX: f64 = 127.0;

/// Relative slack added to every threshold, for `f64` rounding in the norms, the
/// normalisation of Cosine templates and the threshold arithmetic (each ≲ 1e-14
/// relative). It widens the kept set by a negligible 1e-9 of `‖q‖·‖x‖`.
pub(crate) const SLACK: f64 = 1e-9;

/// Stored Euclidean norms are `f32`, rounded to nearest: their relative error is at
/// most 2⁻²⁴, so `‖x‖²` is off by at most 2⁻²³ of itself. Thresholds allow twice that.
pub(crate) const NORM_ROUNDING: f64 = 1.0 / (1u64 << 22) as f64;

/// Per-template scalars kept beside the codes (16 bytes).
///
/// For a stored vector `y` (the template itself under Euclidean, the template
/// divided by its norm under Cosine) and codes `c`, the residual is
/// `e = y − scale·c`, computed exactly in `f64`; its norms are stored rounded *up*.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Meta {
    /// `max|y_i| / 127` (0 for a zero or vanishingly small vector).
    pub scale: f32,
    /// `‖y‖`: 1 under Cosine, the template's norm (rounded to nearest) under Euclidean.
    pub norm: f32,
    /// `‖e‖₂`, rounded up.
    pub err_l2: f32,
    /// `max|e_i|` (≤ scale/2), rounded up.
    pub err_max: f32,
}

/// The smallest `f32` that is ≥ `v` (for finite, non-negative `v` within range).
fn f32_at_least(v: f64) -> f32 {
    let r = v as f32;
    if f64::from(r) < v {
        r.next_up()
    } else {
        r
    }
}

/// A template that passed every check, ready to be written; splitting the check from
/// the write lets `insert` refuse a template before it touches (or grows) any column.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checked {
    /// What each value is divided by: the norm under Cosine, 1 under Euclidean.
    divisor: f64,
    stored_norm: f32,
    scale: f32,
}

/// Checks a template: finite values, a direction under Cosine, a norm that fits `f32`
/// under Euclidean.
pub(crate) fn check_template(metric: Metric, x: &[f32]) -> Result<Checked, IndexError> {
    let mut sum_sq = 0.0f64;
    let mut max_abs = 0.0f64;
    for &v in x {
        if !v.is_finite() {
            return Err(IndexError::NotFinite);
        }
        let v = f64::from(v);
        sum_sq += v * v;
        max_abs = max_abs.max(v.abs());
    }
    let norm = sum_sq.sqrt();
    // Cosine stores the direction only, so a template's scale never matters and the
    // codes always use the full range; Euclidean stores the vector as given.
    let (divisor, stored_norm) = match metric {
        Metric::Cosine => {
            if norm == 0.0 {
                return Err(IndexError::NotFinite);
            }
            (norm, 1.0f32)
        }
        Metric::Euclidean => {
            let n = norm as f32;
            if !n.is_finite() {
                return Err(IndexError::NotFinite);
            }
            (1.0, n)
        }
    };
    Ok(Checked {
        divisor,
        stored_norm,
        scale: (max_abs / divisor / CODE_MAX) as f32,
    })
}

impl Checked {
    /// Writes the codes of `x` (the template that was checked) into `out`, one padded
    /// row, and measures the residual.
    pub(crate) fn write(self, x: &[f32], out: &mut [i8]) -> Meta {
        let s = f64::from(self.scale);
        let mut err_sq = 0.0f64;
        let mut err_max = 0.0f64;
        for (o, &v) in out.iter_mut().zip(x) {
            let y = f64::from(v) / self.divisor;
            // `scale` may have rounded below max|y|/127, hence the clamp; the residual
            // is measured afterwards, so the bound holds whatever code was chosen.
            let c = if s > 0.0 {
                (y / s).round().clamp(-CODE_MAX, CODE_MAX)
            } else {
                0.0
            };
            *o = c as i8;
            let e = (y - s * c).abs();
            err_sq += e * e;
            err_max = err_max.max(e);
        }
        for o in out.iter_mut().skip(x.len()) {
            *o = 0;
        }
        Meta {
            scale: self.scale,
            norm: self.stored_norm,
            err_l2: f32_at_least(err_sq.sqrt() * (1.0 + SLACK)),
            err_max: f32_at_least(err_max),
        }
    }
}

/// Checks and encodes a template in one go.
#[cfg(test)]
pub(crate) fn encode_template(
    metric: Metric,
    x: &[f32],
    out: &mut [i8],
) -> Result<Meta, IndexError> {
    Ok(check_template(metric, x)?.write(x, out))
}

/// A query quantised to `i16` codes `p` with step `t`: `q = t·p + f`.
#[derive(Debug, Clone)]
pub(crate) struct QueryCode {
    /// `p`, padded with zeros to the row stride.
    pub codes: Vec<i16>,
    /// `t`.
    pub step: f64,
    /// `‖q‖₂`.
    pub norm: f64,
    /// `‖q‖₁`.
    pub norm_l1: f64,
    /// `‖f‖₂`, the query's own rounding residual (slightly overestimated).
    pub resid: f64,
}

/// Largest query code such that `stride · p_max · 127` fits an `i32`, so the kernel's
/// integer sums cannot overflow; 32767 for every stride up to 516.
pub(crate) fn query_code_max(stride: usize) -> f64 {
    let by_overflow = i32::MAX as usize / (127 * stride.max(1));
    by_overflow.clamp(1, i16::MAX as usize) as f64
}

/// Checks and quantises a query.
pub(crate) fn encode_query(
    metric: Metric,
    q: &[f32],
    stride: usize,
) -> Result<QueryCode, IndexError> {
    let mut sum_sq = 0.0f64;
    let mut l1 = 0.0f64;
    let mut max_abs = 0.0f64;
    for &v in q {
        if !v.is_finite() {
            return Err(IndexError::NotFinite);
        }
        let v = f64::from(v);
        sum_sq += v * v;
        l1 += v.abs();
        max_abs = max_abs.max(v.abs());
    }
    if metric == Metric::Cosine && sum_sq == 0.0 {
        return Err(IndexError::NotFinite);
    }
    let p_max = query_code_max(stride);
    let step = max_abs / p_max;
    let mut codes = vec![0i16; stride];
    let mut resid_sq = 0.0f64;
    for (p, &v) in codes.iter_mut().zip(q) {
        let v = f64::from(v);
        let c = if step > 0.0 {
            (v / step).round().clamp(-p_max, p_max)
        } else {
            0.0
        };
        *p = c as i16;
        let f = v - step * c;
        resid_sq += f * f;
    }
    Ok(QueryCode {
        codes,
        step,
        norm: sum_sq.sqrt(),
        norm_l1: l1,
        resid: resid_sq.sqrt() * (1.0 + SLACK),
    })
}

impl QueryCode {
    /// The approximate dot product `a = t·s·(p·c)` of the query with a stored vector.
    #[inline(always)]
    pub(crate) fn approx_dot(&self, m: &Meta, int_dot: i32) -> f64 {
        self.step * f64::from(m.scale) * f64::from(int_dot)
    }

    /// An upper bound on `|q·y − a|`.
    ///
    /// `q·y − t·p·s·c = q·e + f·(s·c)`, and
    /// `|q·e| ≤ min(‖q‖₂‖e‖₂, ‖q‖₁ max|e_i|)` (Cauchy–Schwarz, Hölder; the second is
    /// at most the textbook `(s/2)‖q‖₁`; for dense queries the first is ~30% tighter),
    /// `|f·(s·c)| ≤ ‖f‖₂ (‖y‖ + ‖e‖₂)`.
    #[inline(always)]
    pub(crate) fn dot_error(&self, m: &Meta) -> f64 {
        let err_l2 = f64::from(m.err_l2);
        let from_template = (self.norm * err_l2).min(self.norm_l1 * f64::from(m.err_max));
        let norm_up = f64::from(m.norm) * (1.0 + NORM_ROUNDING);
        from_template + self.resid * (norm_up + err_l2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::dot;

    /// splitmix64, so the test needs no dependency and every run sees the same data.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn unit(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }
        fn gauss(&mut self) -> f64 {
            let u1 = 1.0 - self.unit();
            let u2 = self.unit();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        }
        /// Vectors of the shapes that stress the bound: dense, spiky (one value sets
        /// the scale for all), sparse, tiny and huge magnitudes, constant.
        fn vector(&mut self, d: usize) -> Vec<f32> {
            let kind = self.next_u64() % 6;
            let mag = 10f64.powf(self.unit() * 8.0 - 4.0);
            let mut v: Vec<f64> = (0..d).map(|_| self.gauss()).collect();
            match kind {
                1 => v[self.next_u64() as usize % d] *= 60.0,
                2 => v.iter_mut().for_each(|x| {
                    if self.unit() < 0.9 {
                        *x = 0.0;
                    }
                }),
                3 => v.iter_mut().for_each(|x| *x = 1.0),
                _ => {}
            }
            if v.iter().all(|&x| x == 0.0) {
                v[0] = 1.0;
            }
            v.iter().map(|&x| (x * mag) as f32).collect()
        }
    }

    fn stride(d: usize) -> usize {
        d.div_ceil(crate::kernel::BLOCK).max(1) * crate::kernel::BLOCK
    }

    #[test]
    fn approximate_dot_is_within_the_bound() {
        let mut rng = Rng(7);
        let mut worst_ratio: f64 = 0.0;
        for metric in [Metric::Cosine, Metric::Euclidean] {
            for &d in &[1usize, 3, 31, 100, 128, 512, 1000] {
                let st = stride(d);
                let trials = if d >= 512 { 300 } else { 2_000 };
                for _ in 0..trials {
                    let x = rng.vector(d);
                    let q = rng.vector(d);
                    let mut row = vec![0i8; st];
                    let m = encode_template(metric, &x, &mut row).unwrap();
                    let qc = encode_query(metric, &q, st).unwrap();
                    let a = qc.approx_dot(&m, dot(&qc.codes, &row));
                    let e = qc.dot_error(&m);
                    let norm_x = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
                    let div = if metric == Metric::Cosine {
                        norm_x
                    } else {
                        1.0
                    };
                    let exact: f64 = q
                        .iter()
                        .zip(&x)
                        .map(|(&a, &b)| f64::from(a) * f64::from(b))
                        .sum::<f64>()
                        / div;
                    let ny = norm_x / div;
                    let tol = 1e-12 * qc.norm * ny;
                    assert!(
                        (exact - a).abs() <= e + tol,
                        "{metric:?} d={d}: |{exact} - {a}| > {e}"
                    );
                    // Not vacuous: never looser than the a-priori (s/2)·√d·‖q‖ bound.
                    let a_priori =
                        qc.norm * ny * (d as f64).sqrt() / 254.0 * 1.001 + qc.resid * ny * 1.01;
                    assert!(e <= a_priori + tol, "{e} > {a_priori}");
                    if a_priori > 0.0 {
                        worst_ratio = worst_ratio.max(e / a_priori);
                    }
                }
            }
        }
        assert!(worst_ratio > 0.0);
    }

    #[test]
    fn refuses_what_it_cannot_bound() {
        let mut row = [0i8; 32];
        for metric in [Metric::Cosine, Metric::Euclidean] {
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                assert_eq!(
                    encode_template(metric, &[1.0, bad], &mut row),
                    Err(IndexError::NotFinite)
                );
                assert_eq!(
                    encode_query(metric, &[bad, 1.0], 32).unwrap_err(),
                    IndexError::NotFinite
                );
            }
        }
        assert_eq!(
            encode_template(Metric::Cosine, &[0.0; 4], &mut row),
            Err(IndexError::NotFinite)
        );
        assert!(encode_query(Metric::Cosine, &[0.0; 4], 32).is_err());
        // Euclidean: a zero vector is a point like any other; a norm past f32 is not.
        let zero = encode_template(Metric::Euclidean, &[0.0; 4], &mut row).unwrap();
        assert_eq!((zero.scale, zero.err_l2), (0.0, 0.0));
        assert!(encode_query(Metric::Euclidean, &[0.0; 4], 32).is_ok());
        assert_eq!(
            encode_template(Metric::Euclidean, &[f32::MAX; 4], &mut row),
            Err(IndexError::NotFinite)
        );
        // ... but Cosine only needs its direction.
        assert!(encode_template(Metric::Cosine, &[f32::MAX; 4], &mut row).is_ok());
        // Subnormal values: the scale underflows to zero, the residual carries it all.
        let tiny = encode_template(Metric::Euclidean, &[1e-45, -1e-45], &mut row).unwrap();
        assert!(tiny.err_l2 > 0.0);
    }

    #[test]
    fn query_codes_never_overflow_the_kernel() {
        for stride in [32usize, 128, 512, 544, 4096, 65_536] {
            let p = query_code_max(stride);
            assert!(p >= 1.0);
            assert!(
                p * 127.0 * stride as f64 <= f64::from(i32::MAX),
                "stride {stride}"
            );
        }
        assert_eq!(query_code_max(128), 32_767.0);
    }
}

#[cfg(test)]
mod typical {
    use super::*;
    use crate::kernel::dot;

    /// The figures the crate docs quote: for unit Gaussian 128-D templates and queries,
    /// the Cosine bound `E/‖q‖` (a distance) and the error actually seen.
    #[test]
    fn bound_is_a_few_thousandths_for_face_sized_templates() {
        let mut state = 11u64;
        let mut gauss = move || {
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 11) as f64 / (1u64 << 53) as f64
            };
            let (u1, u2) = (1.0 - next(), next());
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        };
        let (mut bound_sum, mut seen_sum, mut seen_max) = (0.0, 0.0, 0.0f64);
        let trials = 2_000;
        for _ in 0..trials {
            let x: Vec<f32> = (0..128).map(|_| gauss()).collect();
            let q: Vec<f32> = (0..128).map(|_| gauss()).collect();
            let mut row = [0i8; 128];
            let m = encode_template(Metric::Cosine, &x, &mut row).unwrap();
            let qc = encode_query(Metric::Cosine, &q, 128).unwrap();
            let a = qc.approx_dot(&m, dot(&qc.codes, &row));
            let nx = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
            let exact: f64 = q
                .iter()
                .zip(&x)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum::<f64>()
                / nx;
            bound_sum += qc.dot_error(&m) / qc.norm;
            let seen = (exact - a).abs() / qc.norm;
            seen_sum += seen;
            seen_max = seen_max.max(seen);
        }
        let (bound, seen) = (bound_sum / trials as f64, seen_sum / trials as f64);
        println!(
            "Cosine 128-D: mean bound {bound:.5}, mean error {seen:.6}, max error {seen_max:.6}"
        );
        assert!(bound < 0.01 && seen < bound / 5.0, "{bound} {seen}");
    }
}
