//! The integer dot product every search spends its time in.
//!
//! Written as plain safe Rust over fixed-size blocks so that LLVM vectorises it on
//! baseline x86-64 (SSE2): the `i8` codes are sign-extended to `i16` and multiplied
//! with `pmaddwd`. Measured per 128-D template (one core, 10k templates, in cache):
//! 32 independent lanes with a compile-time length ≈ 8 ns; 16 lanes with a run-time
//! length ≈ 21 ns; a plain iterator `sum` ≈ 23 ns; 16-bit pair sums written out by
//! hand ≈ 43 ns (LLVM then fails to use `pmaddwd`); an `f32` query against `i8`
//! codes ≈ 34 ns. Out of cache the scan is bound by memory bandwidth (~128 MB per
//! query at 1M templates), so the fixed-length kernel is used for the usual
//! template sizes and the run-time one for the rest.

/// Lanes of the accumulator; also the granularity every stored row is padded to.
pub(crate) const BLOCK: usize = 32;

/// `Σ q_i·c_i`. Both slices have the same length, a multiple of [`BLOCK`]; the caller
/// keeps `|q_i| · 127 · len ≤ i32::MAX`, so no partial sum can overflow.
#[inline(always)]
pub(crate) fn dot(q: &[i16], c: &[i8]) -> i32 {
    let mut acc = [0i32; BLOCK];
    let (qb, _) = q.as_chunks::<BLOCK>();
    let (cb, _) = c.as_chunks::<BLOCK>();
    for (x, y) in qb.iter().zip(cb) {
        for ((a, &qi), &ci) in acc.iter_mut().zip(x).zip(y) {
            *a += i32::from(qi) * i32::from(ci);
        }
    }
    acc.iter().sum()
}

/// Calls `f(slot, dot(query, row(slot)))` for every stored row, in slot order.
///
/// The fixed-length arms exist only so the compiler sees the row length (full
/// unrolling, no loop over blocks): 128 is dlib/SFace, 512 ArcFace-style models.
#[inline(always)]
pub(crate) fn for_each_dot(q: &[i16], codes: &[i8], stride: usize, mut f: impl FnMut(usize, i32)) {
    match stride {
        128 => fixed::<128>(q, codes, &mut f),
        256 => fixed::<256>(q, codes, &mut f),
        512 => fixed::<512>(q, codes, &mut f),
        _ => any(q, codes, stride, &mut f),
    }
}

#[inline(always)]
fn fixed<const N: usize>(q: &[i16], codes: &[i8], f: &mut impl FnMut(usize, i32)) {
    let Ok(q) = <&[i16; N]>::try_from(q) else {
        return any(q, codes, N, f);
    };
    for (slot, row) in codes.as_chunks::<N>().0.iter().enumerate() {
        f(slot, dot(q, row));
    }
}

#[inline(always)]
fn any(q: &[i16], codes: &[i8], stride: usize, f: &mut impl FnMut(usize, i32)) {
    for (slot, row) in codes.chunks_exact(stride).enumerate() {
        f(slot, dot(q, row));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_scalar_at_the_extremes() {
        // The largest magnitudes the encoder can produce, all of one sign: the case
        // that would overflow first.
        let len = 512;
        let q = vec![i16::MAX; len];
        let c = vec![-127i8; len];
        let want: i64 = -(i64::from(i16::MAX) * 127 * len as i64);
        assert_eq!(i64::from(dot(&q, &c)), want);
        let mut seen = Vec::new();
        for_each_dot(&q, &[c.clone(), c].concat(), len, |slot, d| {
            seen.push((slot, d))
        });
        assert_eq!(seen, vec![(0, want as i32), (1, want as i32)]);
    }

    #[test]
    fn every_stride_arm_agrees_with_scalar() {
        for stride in [32usize, 64, 128, 160, 256, 512] {
            let q: Vec<i16> = (0..stride).map(|i| (i as i16 * 37) - 500).collect();
            let rows = 3;
            let codes: Vec<i8> = (0..stride * rows)
                .map(|i| ((i * 7) % 255) as u8 as i8)
                .collect();
            let mut got = Vec::new();
            for_each_dot(&q, &codes, stride, |_, d| got.push(d));
            let want: Vec<i32> = codes
                .chunks(stride)
                .map(|r| {
                    r.iter()
                        .zip(&q)
                        .map(|(&c, &x)| i32::from(c) * i32::from(x))
                        .sum()
                })
                .collect();
            assert_eq!(got, want, "stride {stride}");
        }
    }
}
