//! Build time, memory and single-thread search latency of `TemplateIndex`.
//!
//! ```sh
//! cargo bench -p renzheng-index --bench template_index -- 100000 1000000
//! ```
//!
//! Synthetic 128-D Cosine templates, threshold 0.35, in two shapes: "uniform"
//! (Gaussian vectors normalised to unit length) and "clustered" (1,000 centres;
//! template = centre + N(0, 0.1²) per dimension, normalised, so two templates of one
//! cluster are ~0.55 apart: closer than random, not duplicates). Queries: half fresh
//! draws from the same distribution, half near-copies of stored templates (+ N(0,
//! 0.03²) per dimension, ~0.05 away) so that candidates are found. Real face templates
//! are neither shape; these bound the scan cost, which does not depend on the data.

use std::hint::black_box;
use std::time::{Duration, Instant};

use renzheng_index::{Metric, TemplateIndex};

const DIM: usize = 128;
const MAX_DISTANCE: f32 = 0.35;
const QUERIES: usize = 256;
const CENTRES: usize = 1_000;
const CLUSTER_NOISE: f64 = 0.1;
const COPY_NOISE: f64 = 0.03;

/// splitmix64 with Box–Muller Gaussians (both outputs used).
struct Rng {
    state: u64,
    spare: Option<f64>,
}

impl Rng {
    fn new(seed: u64) -> Self {
        Self {
            state: seed,
            spare: None,
        }
    }
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        if let Some(g) = self.spare.take() {
            return g;
        }
        let r = (-2.0 * (1.0 - self.unit()).ln()).sqrt();
        let (s, c) = (std::f64::consts::TAU * self.unit()).sin_cos();
        self.spare = Some(r * s);
        r * c
    }
}

fn normalised(v: &[f64]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter().map(|x| (x / n) as f32).collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Uniform,
    Clustered,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Self::Uniform => "uniform",
            Self::Clustered => "clustered",
        }
    }
}

struct Source {
    shape: Shape,
    rng: Rng,
    centres: Vec<Vec<f64>>,
}

impl Source {
    fn new(shape: Shape, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let centres = match shape {
            Shape::Uniform => Vec::new(),
            Shape::Clustered => (0..CENTRES)
                .map(|_| {
                    let c: Vec<f64> = (0..DIM).map(|_| rng.gauss()).collect();
                    let n = c.iter().map(|x| x * x).sum::<f64>().sqrt();
                    c.iter().map(|x| x / n).collect()
                })
                .collect(),
        };
        Self {
            shape,
            rng,
            centres,
        }
    }

    fn template(&mut self) -> Vec<f32> {
        let v: Vec<f64> = match self.shape {
            Shape::Uniform => (0..DIM).map(|_| self.rng.gauss()).collect(),
            Shape::Clustered => {
                let c = self.rng.next_u64() as usize % CENTRES;
                (0..DIM)
                    .map(|i| self.centres[c][i] + CLUSTER_NOISE * self.rng.gauss())
                    .collect()
            }
        };
        normalised(&v)
    }

    fn near_copy(&mut self, t: &[f32]) -> Vec<f32> {
        let v: Vec<f64> = t
            .iter()
            .map(|&x| f64::from(x) + COPY_NOISE * self.rng.gauss())
            .collect();
        normalised(&v)
    }
}

struct Report {
    n: usize,
    shape: Shape,
    build: Duration,
    memory: usize,
    search_p50: Duration,
    search_p99: Duration,
    search_max: Duration,
    nearest_p50: Duration,
    cand_fresh: f64,
    cand_copy: f64,
    cand_max: usize,
    past_threshold: usize,
    copies_found: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn run(n: usize, shape: Shape) -> Report {
    let mut src = Source::new(shape, 0x5EED ^ n as u64);
    // Which stored templates the near-copy queries will copy.
    let copies = QUERIES / 2;
    let mut picks: Vec<usize> = (0..copies)
        .map(|_| src.rng.next_u64() as usize % n)
        .collect();
    picks.sort_unstable();
    picks.dedup();
    let mut kept: Vec<(i64, Vec<f32>)> = Vec::new();

    let mut index = TemplateIndex::new(DIM, Metric::Cosine);
    let mut build = Duration::ZERO;
    let batch = 10_000;
    let mut next_pick = 0;
    for start in (0..n).step_by(batch) {
        let rows: Vec<Vec<f32>> = (start..(start + batch).min(n))
            .map(|_| src.template())
            .collect();
        let began = Instant::now();
        for (i, row) in rows.iter().enumerate() {
            let key = (start + i) as i64;
            // One person per template except for pairs, so exclude_owner has work.
            index.insert(key, key / 2, row).expect("finite template");
        }
        build += began.elapsed();
        while next_pick < picks.len() && picks[next_pick] < start + rows.len() {
            let p = picks[next_pick];
            kept.push((p as i64, rows[p - start].clone()));
            next_pick += 1;
        }
    }

    let mut queries: Vec<(Option<i64>, Vec<f32>)> = Vec::new();
    for i in 0..QUERIES {
        if i % 2 == 0 {
            queries.push((None, src.template()));
        } else {
            let (key, t) = &kept[(i / 2) % kept.len()];
            let q = src.near_copy(t);
            queries.push((Some(*key), q));
        }
    }
    // Warm caches and page in the codes once.
    black_box(
        index
            .search(&queries[0].1, MAX_DISTANCE, None)
            .expect("query"),
    );

    let mut times = Vec::with_capacity(QUERIES);
    let (mut fresh_total, mut copy_total, mut cand_max, mut past, mut found) = (0, 0, 0, 0, 0);
    for (copy_of, q) in &queries {
        let began = Instant::now();
        let got = index.search(q, MAX_DISTANCE, Some(-1)).expect("query");
        times.push(began.elapsed());
        cand_max = cand_max.max(got.len());
        past += got.iter().filter(|c| c.distance > MAX_DISTANCE).count();
        match copy_of {
            Some(key) => {
                copy_total += got.len();
                found += usize::from(got.iter().any(|c| c.key == *key));
            }
            None => fresh_total += got.len(),
        }
    }
    times.sort_unstable();
    let mut nearest_times: Vec<Duration> = queries
        .iter()
        .take(64)
        .map(|(_, q)| {
            let began = Instant::now();
            black_box(index.nearest(q, 10, None).expect("query"));
            began.elapsed()
        })
        .collect();
    nearest_times.sort_unstable();
    let half = (QUERIES / 2) as f64;
    Report {
        n,
        shape,
        build,
        memory: index.memory_bytes(),
        search_p50: percentile(&times, 0.5),
        search_p99: percentile(&times, 0.99),
        search_max: *times.last().expect("queries"),
        nearest_p50: percentile(&nearest_times, 0.5),
        cand_fresh: fresh_total as f64 / half,
        cand_copy: copy_total as f64 / half,
        cand_max,
        past_threshold: past,
        copies_found: found,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    // `cargo bench` appends `--bench`; everything numeric is a template count.
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes.push(100_000);
    }
    println!(
        "renzheng-index: {DIM}-D Cosine, max_distance {MAX_DISTANCE}, {QUERIES} queries \
         (half fresh, half near-copies), one thread"
    );
    println!(
        "{:>9} {:>9} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9} {:>10} {:>10} {:>8} {:>8} {:>7}",
        "N",
        "shape",
        "build_s",
        "mem_MB",
        "B/tmpl",
        "p50_ms",
        "p99_ms",
        "max_ms",
        "knn10_p50",
        "cand_fresh",
        "cand_cp",
        "cand_max",
        "found"
    );
    let mut json = Vec::new();
    for &n in &sizes {
        for shape in [Shape::Uniform, Shape::Clustered] {
            let r = run(n, shape);
            println!(
                "{:>9} {:>9} {:>9.2} {:>9.1} {:>7.1} {:>9.2} {:>9.2} {:>9.2} {:>10.2} {:>10.2} {:>8.2} {:>8} {:>3}/{:<3}",
                r.n,
                r.shape.name(),
                r.build.as_secs_f64(),
                r.memory as f64 / 1e6,
                r.memory as f64 / r.n as f64,
                ms(r.search_p50),
                ms(r.search_p99),
                ms(r.search_max),
                ms(r.nearest_p50),
                r.cand_fresh,
                r.cand_copy,
                r.cand_max,
                r.copies_found,
                QUERIES / 2,
            );
            json.push(format!(
                "{{\"n\":{},\"shape\":\"{}\",\"dim\":{DIM},\"metric\":\"cosine\",\"max_distance\":{MAX_DISTANCE},\
                 \"build_s\":{:.3},\"memory_bytes\":{},\"search_p50_ms\":{:.3},\"search_p99_ms\":{:.3},\
                 \"search_max_ms\":{:.3},\"nearest10_p50_ms\":{:.3},\"candidates_fresh_mean\":{:.3},\
                 \"candidates_copy_mean\":{:.3},\"candidates_max\":{},\"candidates_past_threshold\":{},\
                 \"copies_found\":{},\"copies\":{}}}",
                r.n,
                r.shape.name(),
                r.build.as_secs_f64(),
                r.memory,
                ms(r.search_p50),
                ms(r.search_p99),
                ms(r.search_max),
                ms(r.nearest_p50),
                r.cand_fresh,
                r.cand_copy,
                r.cand_max,
                r.past_threshold,
                r.copies_found,
                QUERIES / 2,
            ));
        }
    }
    for line in json {
        println!("{line}");
    }
}
