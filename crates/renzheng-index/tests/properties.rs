//! Properties of `TemplateIndex` against brute force over the exact (`f64`) distances.

use std::collections::{HashMap, HashSet};

use renzheng_index::{Candidate, IndexError, Metric, TemplateIndex};

/// splitmix64 with Box–Muller Gaussians: deterministic, no dependency.
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
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    fn gauss(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    fn gauss_vec(&mut self, d: usize) -> Vec<f64> {
        (0..d).map(|_| self.gauss()).collect()
    }
    fn unit_vec(&mut self, d: usize) -> Vec<f64> {
        let v = self.gauss_vec(d);
        let n = norm(&v);
        v.iter().map(|x| x / n).collect()
    }
    /// A background template: unit Gaussian, rescaled, spiky or sparse.
    fn template(&mut self, d: usize) -> Vec<f32> {
        let mut v = self.gauss_vec(d);
        match self.below(4) {
            1 => v[self.below(d as u64) as usize] *= 30.0,
            2 => v.iter_mut().skip(1).for_each(|x| {
                if self.unit() < 0.8 {
                    *x = 0.0;
                }
            }),
            _ => {}
        }
        let scale = 10f64.powf(self.unit() * 2.0 - 1.0) / norm(&v);
        to_f32(&v, scale)
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn to_f32(v: &[f64], scale: f64) -> Vec<f32> {
    v.iter().map(|&x| (x * scale) as f32).collect()
}

/// The exact distance between the `f32` values, in `f64`.
fn exact(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb, mut diff) = (0.0, 0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
        diff += (x - y) * (x - y);
    }
    match metric {
        Metric::Cosine => 1.0 - ab / (aa.sqrt() * bb.sqrt()),
        Metric::Euclidean => diff.sqrt(),
    }
}

/// A-priori bound on `|approximate − exact|` (in distance for Cosine, in squared distance
/// for Euclidean), from `|e_i| ≤ s/2` and `s ≤ ‖y‖/127` alone: much looser than what
/// the index uses, but independent of its internals.
fn a_priori(metric: Metric, q: &[f32], x: &[f32]) -> f64 {
    let d = q.len() as f64;
    let n = |v: &[f32]| v.iter().map(|&a| f64::from(a).powi(2)).sum::<f64>().sqrt();
    let rel = d.sqrt() / 254.0 * 1.001 + d.sqrt() / 60_000.0 + 1e-9;
    match metric {
        Metric::Cosine => rel,
        Metric::Euclidean => 2.0 * n(q) * n(x) * rel + 1e-6 * (n(q) + n(x)).powi(2),
    }
}

/// Whether the approximate distance reported is within the a-priori bound.
fn approx_ok(metric: Metric, q: &[f32], x: &[f32], c: &Candidate) -> bool {
    let e = exact(metric, q, x);
    let a = f64::from(c.distance);
    let tol = a_priori(metric, q, x) + 1e-6 * (1.0 + e);
    match metric {
        Metric::Cosine => (a - e).abs() <= tol,
        Metric::Euclidean => (a * a - e * e).abs() <= tol,
    }
}

/// A template at (nearly) exactly `target` from `q`, in a random direction.
fn planted(rng: &mut Rng, metric: Metric, q: &[f32], target: f64) -> Vec<f32> {
    let d = q.len();
    let qv: Vec<f64> = q.iter().map(|&x| f64::from(x)).collect();
    let nq = norm(&qv);
    match metric {
        Metric::Cosine => {
            let qh: Vec<f64> = qv.iter().map(|x| x / nq).collect();
            let mut u = rng.gauss_vec(d);
            let along: f64 = u.iter().zip(&qh).map(|(a, b)| a * b).sum();
            u.iter_mut().zip(&qh).for_each(|(a, b)| *a -= along * b);
            let nu = norm(&u);
            let cos = (1.0 - target).clamp(-1.0, 1.0);
            let sin = (1.0 - cos * cos).max(0.0).sqrt();
            let v: Vec<f64> = qh
                .iter()
                .zip(&u)
                .map(|(a, b)| cos * a + sin * b / nu)
                .collect();
            to_f32(&v, 10f64.powf(rng.unit() * 4.0 - 2.0))
        }
        Metric::Euclidean => {
            let u = rng.unit_vec(d);
            qv.iter()
                .zip(&u)
                .map(|(a, b)| (a + target * b) as f32)
                .collect()
        }
    }
}

/// Checks one search against brute force: superset, soundness, order, exclusion.
/// Returns (returned, exactly inside).
fn check_search(
    index: &TemplateIndex,
    model: &HashMap<i64, (i64, Vec<f32>)>,
    q: &[f32],
    t: f32,
    exclude: Option<i64>,
) -> (usize, usize) {
    let metric = index.metric();
    let got = index.search(q, t, exclude).unwrap();
    let keys: HashSet<i64> = got.iter().map(|c| c.key).collect();
    assert_eq!(keys.len(), got.len(), "a key returned twice");
    let mut inside = 0;
    for (&key, (owner, x)) in model {
        if Some(*owner) == exclude {
            assert!(!keys.contains(&key), "excluded owner's template returned");
            continue;
        }
        let e = exact(metric, q, x);
        if e <= f64::from(t) {
            inside += 1;
            assert!(
                keys.contains(&key),
                "{metric:?}: key {key} at exact distance {e} ≤ {t} missing"
            );
        }
    }
    for w in got.windows(2) {
        assert!(w[0].distance <= w[1].distance, "not sorted");
    }
    for c in &got {
        let (owner, x) = model.get(&c.key).expect("returned key is stored");
        assert_eq!(c.owner, *owner);
        assert!(
            approx_ok(metric, q, x, c),
            "approximate distance off: {c:?}"
        );
        // Sound: nothing farther than twice the error bound past the threshold.
        let e = exact(metric, q, x);
        let t = f64::from(t);
        let slack = a_priori(metric, q, x);
        match metric {
            Metric::Cosine => assert!(e <= t + 2.0 * slack + 1e-6, "{e} far past {t}"),
            Metric::Euclidean => assert!(e * e <= t * t + 2.0 * slack + 1e-6, "{e} far past {t}"),
        }
    }
    (got.len(), inside)
}

fn build(
    rng: &mut Rng,
    metric: Metric,
    d: usize,
    n: usize,
    owners: u64,
) -> (TemplateIndex, HashMap<i64, (i64, Vec<f32>)>) {
    let mut index = TemplateIndex::new(d, metric);
    let mut model = HashMap::new();
    for key in 0..n as i64 {
        let owner = rng.below(owners) as i64;
        let x = rng.template(d);
        index.insert(key, owner, &x).unwrap();
        model.insert(key, (owner, x));
    }
    (index, model)
}

/// (1) and (3): every template within the threshold is found, including templates
/// planted a hair inside (and outside) it, for thousands of queries per metric.
#[test]
fn search_is_a_superset_of_the_exact_answer() {
    let mut rng = Rng(1);
    for metric in [Metric::Cosine, Metric::Euclidean] {
        let mut queries = 0;
        let mut returned = 0;
        let mut inside = 0;
        for (d, rounds, per_round) in [(128usize, 20, 100), (100, 4, 60), (7, 4, 60), (1000, 2, 20)]
        {
            for _ in 0..rounds {
                let (mut index, mut model) = build(&mut rng, metric, d, 300, 60);
                let mut next_key = 1_000_000;
                let qs: Vec<(Vec<f32>, f32)> = (0..per_round)
                    .map(|_| {
                        let q = rng.template(d);
                        let nq = q.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
                        let t = match metric {
                            Metric::Cosine => [0.05, 0.2, 0.35, 0.6, 1.0][rng.below(5) as usize],
                            Metric::Euclidean => nq * (0.05 + rng.unit()),
                        };
                        (q, t as f32)
                    })
                    .collect();
                // Half the queries get templates planted around their threshold.
                for (q, t) in qs.iter().take(per_round / 2) {
                    for offset in [-1e-7, -1e-5, -1e-3, -1e-2, 0.0, 1e-7, 1e-3] {
                        let target = (f64::from(*t) * (1.0 + offset)).max(0.0);
                        let x = planted(&mut rng, metric, q, target);
                        let owner = rng.below(60) as i64;
                        index.insert(next_key, owner, &x).unwrap();
                        model.insert(next_key, (owner, x));
                        next_key += 1;
                    }
                }
                for (i, (q, t)) in qs.iter().enumerate() {
                    let exclude = if i % 3 == 0 {
                        Some(rng.below(60) as i64)
                    } else {
                        None
                    };
                    let (r, k) = check_search(&index, &model, q, *t, exclude);
                    queries += 1;
                    returned += r;
                    inside += k;
                }
            }
        }
        println!("{metric:?}: {queries} queries, {inside} exactly inside, {returned} returned");
        assert!(queries >= 2_000);
        // The planted ones are mostly (offsets < 0) inside; make sure the test bites.
        assert!(inside >= queries / 2 * 4, "{inside}");
    }
}

/// (1), boundary: templates whose exact distance is within 1e-6 of the threshold (on
/// either side) are returned whenever they are inside.
#[test]
fn templates_on_the_threshold_are_found() {
    let mut rng = Rng(2);
    for metric in [Metric::Cosine, Metric::Euclidean] {
        let d = 128;
        let mut hits = 0;
        for _ in 0..400 {
            let q = rng.template(d);
            let t = match metric {
                Metric::Cosine => 0.35f32,
                Metric::Euclidean => 0.5 * q.iter().map(|&v| v * v).sum::<f32>().sqrt(),
            };
            let mut index = TemplateIndex::new(d, metric);
            let mut model = HashMap::new();
            for key in 0..20 {
                let x = planted(&mut rng, metric, &q, f64::from(t));
                let e = exact(metric, &q, &x);
                if (e - f64::from(t)).abs() < 1e-6 * f64::from(t).max(1.0) && e <= f64::from(t) {
                    hits += 1;
                }
                index.insert(key, key, &x).unwrap();
                model.insert(key, (key, x));
            }
            check_search(&index, &model, &q, t, None);
        }
        println!("{metric:?}: {hits} templates within 1e-6 inside the threshold");
        assert!(hits > 1_000, "{hits}");
    }
}

/// (2): replace, remove and remove_owner keep the index equal to a brute-force model.
#[test]
fn mutations_keep_search_consistent() {
    let mut rng = Rng(3);
    for metric in [Metric::Cosine, Metric::Euclidean] {
        for d in [128usize, 45] {
            let mut index = TemplateIndex::new(d, metric);
            let mut model: HashMap<i64, (i64, Vec<f32>)> = HashMap::new();
            for step in 0..3_000 {
                match rng.below(10) {
                    0..=5 => {
                        let key = rng.below(400) as i64;
                        let owner = rng.below(40) as i64;
                        // Sometimes a near-copy of a stored template, so searches hit.
                        let x = match model.get(&(rng.below(400) as i64)) {
                            Some((_, y)) if rng.unit() < 0.5 => y
                                .iter()
                                .map(|&v| v * (1.0 + 0.01 * rng.gauss() as f32))
                                .collect(),
                            _ => rng.template(d),
                        };
                        index.insert(key, owner, &x).unwrap();
                        model.insert(key, (owner, x));
                    }
                    6..=8 => {
                        let key = rng.below(400) as i64;
                        assert_eq!(index.remove(key), model.remove(&key).is_some());
                    }
                    _ => {
                        let owner = rng.below(40) as i64;
                        let before = model.len();
                        model.retain(|_, (o, _)| *o != owner);
                        assert_eq!(index.remove_owner(owner), before - model.len());
                    }
                }
                assert_eq!(index.len(), model.len());
                if step % 25 == 0 {
                    for key in 0..400 {
                        assert_eq!(index.contains(key), model.contains_key(&key));
                        assert_eq!(index.owner_of(key), model.get(&key).map(|m| m.0));
                    }
                    for _ in 0..4 {
                        let q = match model
                            .values()
                            .nth(rng.below(model.len().max(1) as u64) as usize)
                        {
                            Some((_, y)) if rng.unit() < 0.7 => y.clone(),
                            _ => rng.template(d),
                        };
                        let exclude = Some(rng.below(40) as i64).filter(|_| rng.unit() < 0.5);
                        let t = match metric {
                            Metric::Cosine => 0.35,
                            Metric::Euclidean => q.iter().map(|&v| v * v).sum::<f32>().sqrt() * 0.5,
                        };
                        check_search(&index, &model, &q, t, exclude);
                        // An infinite threshold returns every eligible template once.
                        let all = index.search(&q, f32::INFINITY, exclude).unwrap();
                        let eligible = model.values().filter(|(o, _)| Some(*o) != exclude).count();
                        assert_eq!(all.len(), eligible);
                    }
                }
            }
        }
    }
}

/// (3): a person's own templates never come back when they are excluded, even
/// identical ones, and everyone else's still do.
#[test]
fn exclude_owner_hides_only_that_owner() {
    let mut rng = Rng(4);
    for metric in [Metric::Cosine, Metric::Euclidean] {
        let mut index = TemplateIndex::new(128, metric);
        let x = rng.template(128);
        for key in 0..10 {
            index.insert(key, key % 3, &x).unwrap();
        }
        for owner in 0..3 {
            for found in [
                index.search(&x, 0.0, Some(owner)).unwrap(),
                index.nearest(&x, 10, Some(owner)).unwrap(),
            ] {
                let want: Vec<i64> = (0..10).filter(|k| k % 3 != owner).collect();
                let mut got: Vec<i64> = found.iter().map(|c| c.key).collect();
                got.sort_unstable();
                assert_eq!(got, want);
                assert!(found.iter().all(|c| c.owner != owner));
            }
        }
        assert_eq!(index.search(&x, 0.0, None).unwrap().len(), 10);
        assert_eq!(index.search(&x, 0.0, Some(99)).unwrap().len(), 10);
    }
}

/// (4): `nearest(k)` is the top k of the approximate ranking; so no template is
/// missed unless it is within twice the error bound of the k-th one returned.
/// Near-duplicate queries always get their original first; for fresh random queries
/// (where the nearest few are nearly tied) the exact nearest is checked to be among
/// the top 10, which is an empirical rate, printed and held to ≥ 99%.
#[test]
fn nearest_returns_the_approximate_top_k() {
    let mut rng = Rng(5);
    for metric in [Metric::Cosine, Metric::Euclidean] {
        let d = 128;
        let (index, model) = build(&mut rng, metric, d, 2_000, 500);
        let mut fresh = 0;
        let mut fresh_top1 = 0;
        let mut fresh_top10 = 0;
        for i in 0..1_000 {
            let copy_of = rng.below(2_000) as i64;
            let near_copy = i % 2 == 0;
            let q: Vec<f32> = if near_copy {
                model[&copy_of]
                    .1
                    .iter()
                    .map(|&v| v + 0.002 * rng.gauss() as f32 * v.abs().max(0.05))
                    .collect()
            } else {
                rng.template(d)
            };
            let exclude = Some(rng.below(500) as i64).filter(|_| i % 5 == 0);
            let k = 1 + rng.below(12) as usize;
            let got = index.nearest(&q, k, exclude).unwrap();
            let all = index.search(&q, f32::INFINITY, exclude).unwrap();
            assert_eq!(got.len(), k.min(all.len()));
            let got_d: Vec<f32> = got.iter().map(|c| c.distance).collect();
            let all_d: Vec<f32> = all.iter().take(k).map(|c| c.distance).collect();
            assert_eq!(got_d, all_d, "nearest disagrees with the full ranking");
            let returned: HashSet<i64> = got.iter().map(|c| c.key).collect();
            let worst = f64::from(got.last().unwrap().distance);
            // Exact ranking, and the rigorous no-miss property.
            let mut ranked: Vec<(f64, i64)> = model
                .iter()
                .filter(|(_, (o, _))| Some(*o) != exclude)
                .map(|(&key, (_, x))| (exact(metric, &q, x), key))
                .collect();
            ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
            for &(e, key) in &ranked {
                if returned.contains(&key) {
                    continue;
                }
                let x = &model[&key].1;
                let bound = a_priori(metric, &q, x);
                match metric {
                    Metric::Cosine => {
                        assert!(e >= worst - bound - 1e-6, "missed {key} at {e} < {worst}")
                    }
                    Metric::Euclidean => {
                        assert!(
                            e * e >= worst * worst - bound - 1e-6,
                            "missed {key} at {e} < {worst}"
                        )
                    }
                }
            }
            let best = ranked[0].1;
            if near_copy && exclude != Some(model[&copy_of].0) {
                assert_eq!(got[0].key, copy_of, "near-duplicate not ranked first");
            } else if !near_copy {
                fresh += 1;
                let top10: HashSet<i64> = index
                    .nearest(&q, 10, exclude)
                    .unwrap()
                    .iter()
                    .map(|c| c.key)
                    .collect();
                fresh_top10 += usize::from(top10.contains(&best));
                fresh_top1 += usize::from(got[0].key == best);
            }
        }
        println!(
            "{metric:?}: fresh queries {fresh}: exact nearest ranked first {fresh_top1}, in top 10 {fresh_top10}"
        );
        assert!(fresh_top10 * 100 >= fresh * 99, "{fresh_top10}/{fresh}");
        assert!(index.nearest(&rng.template(d), 0, None).unwrap().is_empty());
        assert_eq!(
            index.nearest(&rng.template(d), 5_000, None).unwrap().len(),
            2_000
        );
    }
}

/// (5): bad input is an error, never a panic, and a refused insert changes nothing.
#[test]
fn bad_input_is_refused() {
    for metric in [Metric::Cosine, Metric::Euclidean] {
        let mut index = TemplateIndex::new(4, metric);
        let good = [1.0f32, 2.0, 3.0, 4.0];
        index.insert(1, 10, &good).unwrap();
        let before = (
            index.len(),
            index.memory_bytes(),
            index.search(&good, 0.5, None).unwrap(),
        );
        let mismatch = IndexError::DimensionMismatch {
            expected: 4,
            got: 3,
        };
        assert_eq!(index.insert(2, 10, &[1.0; 3]), Err(mismatch));
        assert_eq!(
            index.insert(1, 10, &[1.0; 5]),
            Err(IndexError::DimensionMismatch {
                expected: 4,
                got: 5
            })
        );
        assert_eq!(index.search(&[1.0; 3], 0.5, None), Err(mismatch));
        assert_eq!(index.nearest(&[1.0; 3], 1, None), Err(mismatch));
        assert_eq!(
            index.search(&[], 0.5, None),
            Err(IndexError::DimensionMismatch {
                expected: 4,
                got: 0
            })
        );
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let v = [1.0, bad, 0.0, 0.0];
            assert_eq!(index.insert(2, 10, &v), Err(IndexError::NotFinite));
            // Replacing with a bad template keeps the old one.
            assert_eq!(index.insert(1, 11, &v), Err(IndexError::NotFinite));
            assert_eq!(index.search(&v, 0.5, None), Err(IndexError::NotFinite));
            assert_eq!(index.nearest(&v, 1, None), Err(IndexError::NotFinite));
        }
        assert_eq!(
            index.search(&good, f32::NAN, None),
            Err(IndexError::NotFinite)
        );
        assert!(index.search(&good, -1.0, None).unwrap().is_empty());
        assert_eq!(index.search(&good, f32::INFINITY, None).unwrap().len(), 1);
        let zero = [0.0f32; 4];
        match metric {
            Metric::Cosine => {
                assert_eq!(index.insert(2, 10, &zero), Err(IndexError::NotFinite));
                assert_eq!(index.search(&zero, 0.5, None), Err(IndexError::NotFinite));
                assert_eq!(index.nearest(&zero, 1, None), Err(IndexError::NotFinite));
            }
            Metric::Euclidean => {
                assert_eq!(
                    index.insert(2, 10, &[f32::MAX; 4]),
                    Err(IndexError::NotFinite)
                );
                // Zero is a point like any other under Euclidean.
                assert!(index.search(&zero, 0.5, None).unwrap().is_empty());
            }
        }
        let after = (
            index.len(),
            index.memory_bytes(),
            index.search(&good, 0.5, None).unwrap(),
        );
        assert_eq!(before, after);
        assert_eq!(index.owner_of(1), Some(10));
        assert!(!index.contains(2));
        // Messages say what is wrong without echoing the data.
        assert_eq!(
            mismatch.to_string(),
            "template has 3 dimensions, the index expects 4"
        );
        let err: Box<dyn std::error::Error> = Box::new(IndexError::NotFinite);
        assert!(err.to_string().contains("not finite"));
    }
    // An index sized from an empty template does not panic either.
    let mut empty = TemplateIndex::new(0, Metric::Euclidean);
    empty.insert(1, 1, &[]).unwrap();
    assert_eq!(empty.search(&[], 0.0, None).unwrap().len(), 1);
    let mut empty = TemplateIndex::new(0, Metric::Cosine);
    assert_eq!(empty.insert(1, 1, &[]), Err(IndexError::NotFinite));
    assert_eq!(empty.nearest(&[], 1, None), Err(IndexError::NotFinite));
}

/// (6): about 128 bytes of codes + 16 of scalars + 16 of key and owner per template,
/// plus the key map (~17 bytes a bucket, ≤ 2 buckets a template).
#[test]
fn memory_is_about_180_bytes_a_template() {
    let mut rng = Rng(6);
    let n = 10_000;
    let mut exact_fit = TemplateIndex::with_capacity(128, Metric::Cosine, n);
    let mut grown = TemplateIndex::new(128, Metric::Cosine);
    let empty = exact_fit.memory_bytes();
    for key in 0..n as i64 {
        let x = rng.template(128);
        exact_fit.insert(key, key, &x).unwrap();
        grown.insert(key, key, &x).unwrap();
    }
    assert_eq!(exact_fit.memory_bytes(), empty, "with_capacity reallocated");
    let per = |i: &TemplateIndex| i.memory_bytes() as f64 / n as f64;
    println!(
        "bytes per template: exact fit {:.1}, grown {:.1}",
        per(&exact_fit),
        per(&grown)
    );
    // 160 bytes of columns + 16384 buckets × 17 / 10k ≈ 27.9.
    assert!(
        (180.0..195.0).contains(&per(&exact_fit)),
        "{}",
        per(&exact_fit)
    );
    // Doubling leaves up to twice the columns.
    assert!((180.0..360.0).contains(&per(&grown)), "{}", per(&grown));
    grown.shrink_to_fit();
    assert!(per(&grown) < 195.0, "{}", per(&grown));
    // Removing everything keeps the capacity: memory is capacity, not length.
    assert_eq!(exact_fit.remove_owner(7), 1);
    assert_eq!(exact_fit.memory_bytes(), empty);
}
