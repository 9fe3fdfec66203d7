//! `renzheng calibrate --pairs FILE`: verdict bands from an operator's own
//! portrait-vs-photo pairs, per face-size bucket of the caller's photo, with the TOML that
//! sets them.
//!
//! Pairs are analysed as `eval` analyses them (`file_x` the enrolled portrait under the
//! enrolment's portrait rule, `file_y` the caller's photo, optionally degraded by one or
//! more `--photo-as` conditions so that small-face evidence can be made from larger
//! photos). The pairs whose two photos the service would compare are split by the caller's
//! eye distance into buckets (`--bands 20,30`: below 20 px, 20–30 px, and the clean bucket
//! from 30 px up), and each bucket gets its own two thresholds:
//!
//! - **"same"** (d ≤ `same_max_distance`): the impostor distances' lower tail is modelled as
//!   exponential below its 1 % quantile (at least 10 pairs), `P(D ≤ d) = rate ·
//!   exp((d − anchor) / scale)`, and the threshold is where that model, with the scale at
//!   its 95 % upper confidence bound, reaches `--target-far`. A finite set of impostors
//!   cannot show a rate of 1e-3 directly; the bound errs on the safe side (a longer tail
//!   means a lower threshold). Rounded down to 0.01.
//! - **"different"** (d ≥ `different_min_distance`): the genuine distances' upper tail is
//!   modelled the same way above its 95th percentile, and the threshold is where the model
//!   (scale at its upper bound) leaves `--target-frr` of genuine pairs. Rounded up to 0.01.
//!
//! A small-face bucket is never looser than the clean one: its "same" threshold is at
//! most, its "different" threshold at least, the clean bucket's. A bucket with fewer than
//! [`MIN_GENUINE`] genuine or [`MIN_IMPOSTOR`] impostor pairs gets no band: its faces stay
//! capped at "can't tell" when they carry a quality warning.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::bail;
use renzheng_vision::{Engine, EngineConfig, Outcome, SizeBand, VerdictThresholds};
use serde::Serialize;

use super::degrade::Degradation;
use super::eval::{analyse_all, read_pairs, ImageResult, Job, Pair, Rate};

/// Fewest genuine pairs a bucket needs for a band of its own.
pub const MIN_GENUINE: usize = 20;
/// Fewest impostor pairs a bucket needs for a band of its own.
pub const MIN_IMPOSTOR: usize = 100;
/// Share of the impostor distances that anchors the lower-tail model (1 %).
const IMPOSTOR_ANCHOR: f64 = 0.01;
/// Share of the genuine distances that anchors the upper-tail model (5 %).
const GENUINE_ANCHOR: f64 = 0.05;
/// Fewest points a tail model is fitted on.
const MIN_TAIL_POINTS: usize = 10;

/// Arguments of `renzheng calibrate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// CSV with columns `file_x,file_y,same`: `file_x` an enrolled portrait, `file_y` a
    /// caller's photo, `same` 1 for the same person. Repeat for several lists; each list's
    /// paths are relative to its own folder unless `--root` is given.
    #[arg(long, required = true)]
    pub pairs: Vec<PathBuf>,
    /// Folder every pair path is relative to.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// The false-accept rate "same" should not exceed, per comparison.
    #[arg(long, default_value_t = 1e-3)]
    pub target_far: f64,
    /// The share of genuine pairs "different" may take, at most.
    #[arg(long, default_value_t = 1e-2)]
    pub target_frr: f64,
    /// Upper bounds of the small-face buckets, eye distance in pixels, ascending
    /// (default: 20 and the quality gate's "face too small" warning limit).
    #[arg(long, value_delimiter = ',')]
    pub bands: Vec<f64>,
    /// Also check every caller's photo degraded this way (repeatable; `none` keeps the
    /// photo as it is), e.g. `--photo-as none --photo-as scale:0.3 --photo-as scale:0.2`
    /// to make small-face evidence from larger photos. Default: the photos as they are.
    #[arg(long, value_name = "SPEC", value_parser = parse_photo_spec)]
    pub photo_as: Vec<Option<Degradation>>,
    /// Degrade every portrait this way (`chip`, `watermark:mesh`…).
    #[arg(long, value_name = "SPEC", value_parser = super::degrade::parse_spec)]
    pub portrait_as: Option<Degradation>,
    /// Keep the clean bands in force: suggest size bands only, never looser than those
    /// (the TOML then sets `engine.size_bands` alone).
    #[arg(long)]
    pub keep_clean: bool,
    /// Print one JSON object instead of the report and the TOML.
    #[arg(long)]
    pub json: bool,
    /// Worker threads (each uses one inference session).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

fn parse_photo_spec(s: &str) -> Result<Option<Degradation>, String> {
    if s.trim() == "none" {
        Ok(None)
    } else {
        super::degrade::parse_spec(s).map(Some)
    }
}

/// An exponential model of one tail of a set of distances.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct TailFit {
    /// The distance the model starts from (between the k-th and (k+1)-th point).
    pub anchor: f64,
    /// The share of the distances beyond the anchor (k / n).
    pub anchor_rate: f64,
    /// The exponential scale's estimate (mean excess beyond the anchor).
    pub scale: f64,
    /// Its 95 % upper confidence bound (the safe side).
    pub scale_high: f64,
    /// Points beyond the anchor (k).
    pub points: usize,
}

impl TailFit {
    /// Fits the tail of `sorted` (ascending) below its `share` quantile (`lower`), or
    /// above its `1 − share` quantile. `None` with too few points.
    pub fn fit(sorted: &[f64], share: f64, lower: bool) -> Option<TailFit> {
        let n = sorted.len();
        let k = ((share * n as f64).ceil() as usize).max(MIN_TAIL_POINTS);
        if n < 2 * k {
            return None;
        }
        // Work on the tail as excesses beyond the anchor, whichever side it is on.
        let (anchor, excess): (f64, Vec<f64>) = if lower {
            let anchor = (sorted[k - 1] + sorted[k]) / 2.0;
            (anchor, sorted[..k].iter().map(|d| anchor - d).collect())
        } else {
            let anchor = (sorted[n - k] + sorted[n - k - 1]) / 2.0;
            (anchor, sorted[n - k..].iter().map(|d| d - anchor).collect())
        };
        let scale = excess.iter().sum::<f64>() / k as f64;
        // The MLE of an exponential scale from k points: 2k·scale/θ ~ χ²(2k), so the 95 %
        // upper bound is 2k·scale / χ²₀.₀₅(2k).
        let scale_high = 2.0 * k as f64 * scale / chi_square_quantile(0.05, 2 * k);
        Some(TailFit {
            anchor,
            anchor_rate: k as f64 / n as f64,
            scale,
            scale_high,
            points: k,
        })
    }

    /// How far beyond the anchor the modelled rate falls to `rate`, with the scale at its
    /// upper bound (0 when `rate` is not below the anchor's).
    fn reach(&self, rate: f64) -> f64 {
        if rate >= self.anchor_rate {
            return 0.0;
        }
        self.scale_high * (self.anchor_rate / rate).ln()
    }

    /// The modelled share of the distances beyond `d` (towards the tail) with the scale's
    /// estimate and with its upper bound: (estimate, upper).
    fn rate_beyond(&self, excess: f64) -> (f64, f64) {
        let at = |scale: f64| {
            if excess <= 0.0 {
                self.anchor_rate
            } else {
                self.anchor_rate * (-excess / scale).exp()
            }
        };
        (at(self.scale), at(self.scale_high))
    }
}

/// The p-quantile of χ² with `dof` degrees of freedom (Wilson–Hilferty; within 1 % from
/// 10 degrees of freedom up, which is all [`TailFit`] uses).
fn chi_square_quantile(p: f64, dof: usize) -> f64 {
    let z = normal_quantile(p);
    let v = dof as f64;
    let a = 2.0 / (9.0 * v);
    v * (1.0 - a + z * a.sqrt()).powi(3)
}

/// The standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9).
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// One compared pair: what the bands decide on.
#[derive(Debug, Clone, Copy)]
struct Compared {
    same: bool,
    distance: f64,
    inter_eye_px: f64,
    /// The photo's quality caps "same" when a size band covers it
    /// ([`renzheng_app::rules::caps_same`]).
    capped_in_band: bool,
    /// … and when none does.
    capped_clean: bool,
}

/// The suggestion for one bucket.
#[derive(Debug, Clone, Serialize)]
pub struct BucketReport {
    /// Eye distances covered, pixels: [from, to).
    pub inter_eye_px: (f64, Option<f64>),
    /// Genuine pairs compared.
    pub genuine: usize,
    /// Impostor pairs compared.
    pub impostor: usize,
    /// The suggested thresholds (`None`: too little evidence; see `note`).
    pub suggested: Option<VerdictThresholds>,
    /// The impostor lower-tail model behind "same".
    pub impostor_tail: Option<TailFit>,
    /// The genuine upper-tail model behind "different".
    pub genuine_tail: Option<TailFit>,
    /// The modelled false-accept rate at the suggested "same" threshold: estimate and
    /// 95 % upper bound.
    pub modelled_far: Option<(f64, f64)>,
    /// The band rates under the suggested thresholds, as the service would answer.
    pub with_suggested: Option<Rates>,
    /// The band rates under the thresholds in force now.
    pub in_force: Rates,
    /// Why a threshold is where it is, when a rule other than the model set it.
    pub note: Option<String>,
}

/// The four band rates of a bucket, each with its 95 % Wilson interval.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rates {
    /// Genuine answered 1.
    pub genuine_same: Rate,
    /// Genuine answered 3.
    pub genuine_different: Rate,
    /// Impostor answered 1.
    pub impostor_same: Rate,
    /// Impostor answered 3.
    pub impostor_different: Rate,
}

/// What `calibrate` prints with `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Pairs read (times photo conditions).
    pub pairs: usize,
    /// Pairs not compared: the portrait refused by the portrait rule.
    pub portrait_refused: usize,
    /// Pairs not compared: no face (6) or refused (8) in the caller's photo.
    pub photo_not_compared: usize,
    /// The false-accept target of "same".
    pub target_far: f64,
    /// The genuine-pairs target of "different".
    pub target_frr: f64,
    /// The clean bucket first, then the small-face buckets, largest first.
    pub buckets: Vec<BucketReport>,
    /// The TOML block that sets the suggestion.
    pub toml: String,
}

/// Runs the command.
pub fn run(args: &Args, engine_cfg: &EngineConfig) -> anyhow::Result<()> {
    super::models::require_installed(engine_cfg)?;
    let rate = |r: f64| r > 0.0 && r < 0.5;
    if !rate(args.target_far) || !rate(args.target_frr) {
        bail!("--target-far and --target-frr must be rates between 0 and 0.5");
    }
    let mut cfg = engine_cfg.clone();
    cfg.sessions = args.threads.max(1);
    let engine = Engine::open(&cfg)?;
    let mut bounds = if args.bands.is_empty() {
        vec![20.0, engine.quality().warn_inter_eye_px]
    } else {
        args.bands.clone()
    };
    if bounds.iter().any(|b| !(b.is_finite() && *b > 0.0)) {
        bail!("--bands takes positive eye distances in pixels, e.g. --bands 20,30");
    }
    bounds.sort_by(f64::total_cmp);
    bounds.dedup();
    let conditions: Vec<Option<Degradation>> = if args.photo_as.is_empty() {
        vec![None]
    } else {
        args.photo_as.clone()
    };

    // Every list's pairs under every photo condition; images keyed by list, condition
    // and file so that each is analysed once.
    let mut lists: Vec<(PathBuf, Vec<Pair>)> = Vec::new();
    for path in &args.pairs {
        let root = args
            .root
            .clone()
            .or_else(|| path.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        lists.push((root, read_pairs(path)?));
    }
    let portrait_key = |root: &Path, f: &str| format!("{}|portrait|{f}", root.display());
    let photo_key = |root: &Path, c: &Option<Degradation>, f: &str| {
        let c = c
            .as_ref()
            .map_or_else(|| "none".to_string(), |d| d.to_string());
        format!("{}|{c}|{f}", root.display())
    };
    let mut by_root: HashMap<PathBuf, Vec<Job>> = HashMap::new();
    for (root, pairs) in &lists {
        let jobs = by_root.entry(root.clone()).or_default();
        for p in pairs {
            jobs.push(Job {
                key: portrait_key(root, &p.x),
                file: p.x.clone(),
                degradation: args.portrait_as.clone(),
            });
            for c in &conditions {
                jobs.push(Job {
                    key: photo_key(root, c, &p.y),
                    file: p.y.clone(),
                    degradation: c.clone(),
                });
            }
        }
    }
    let mut analysed: HashMap<String, ImageResult> = HashMap::new();
    for (root, mut jobs) in by_root {
        jobs.sort_by(|a, b| a.key.cmp(&b.key));
        jobs.dedup_by(|a, b| a.key == b.key);
        analysed.extend(analyse_all(&engine, &root, &jobs, args.threads.max(1))?);
    }

    let metric = engine.metric();
    let (mut total, mut portrait_refused, mut photo_not_compared) = (0, 0, 0);
    let mut compared = Vec::new();
    for (root, pairs) in &lists {
        for p in pairs {
            for c in &conditions {
                total += 1;
                let portrait = &analysed[&portrait_key(root, &p.x)];
                let photo = &analysed[&photo_key(root, c, &p.y)];
                let (None, Some(enrolled)) = (&portrait.portrait_refusal, &portrait.embedding)
                else {
                    portrait_refused += 1;
                    continue;
                };
                let (Outcome::Usable, Some(embedding), Some(q)) =
                    (photo.outcome, &photo.embedding, &photo.quality)
                else {
                    photo_not_compared += 1;
                    continue;
                };
                compared.push(Compared {
                    same: p.same,
                    distance: metric.distance(enrolled, embedding),
                    inter_eye_px: q.inter_eye_px,
                    capped_in_band: renzheng_app::rules::caps_same(q, true),
                    capped_clean: renzheng_app::rules::caps_same(q, false),
                });
            }
        }
    }
    if compared.is_empty() {
        bail!("no pair could be compared (no usable portrait and photo): nothing to calibrate on");
    }

    let report = suggest(
        &compared,
        &bounds,
        (engine.thresholds(), engine.size_bands()),
        args.target_far,
        args.target_frr,
        args.keep_clean,
        (total, portrait_refused, photo_not_compared),
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// The suggestion for every bucket and the TOML that sets it.
fn suggest(
    compared: &[Compared],
    bounds: &[f64],
    (in_force, in_force_bands): (&VerdictThresholds, &[SizeBand]),
    target_far: f64,
    target_frr: f64,
    keep_clean: bool,
    (pairs, portrait_refused, photo_not_compared): (usize, usize, usize),
) -> Report {
    // The clean bucket first: the small-face buckets are clamped to it.
    let clean_from = bounds.last().copied().unwrap_or(0.0);
    let clean_pairs: Vec<Compared> = compared
        .iter()
        .filter(|c| c.inter_eye_px >= clean_from)
        .copied()
        .collect();
    let clean = bucket(
        &clean_pairs,
        (clean_from, None),
        None,
        in_force,
        in_force_bands,
        target_far,
        target_frr,
    );
    let clamp_to = match clean.suggested {
        Some(suggested) if !keep_clean => suggested,
        _ => *in_force,
    };
    let mut buckets = vec![clean];
    let mut upper = clean_from;
    for lower in bounds.iter().rev().skip(1).copied().chain([0.0]) {
        let inside: Vec<Compared> = compared
            .iter()
            .filter(|c| c.inter_eye_px >= lower && c.inter_eye_px < upper)
            .copied()
            .collect();
        buckets.push(bucket(
            &inside,
            (lower, Some(upper)),
            Some(&clamp_to),
            in_force,
            in_force_bands,
            target_far,
            target_frr,
        ));
        upper = lower;
    }
    let toml = toml_block(&buckets, keep_clean);
    Report {
        pairs,
        portrait_refused,
        photo_not_compared,
        target_far,
        target_frr,
        buckets,
        toml,
    }
}

fn bucket(
    pairs: &[Compared],
    range: (f64, Option<f64>),
    clamp_to: Option<&VerdictThresholds>,
    in_force: &VerdictThresholds,
    in_force_bands: &[SizeBand],
    target_far: f64,
    target_frr: f64,
) -> BucketReport {
    let mut genuine: Vec<f64> = pairs
        .iter()
        .filter(|c| c.same)
        .map(|c| c.distance)
        .collect();
    let mut impostor: Vec<f64> = pairs
        .iter()
        .filter(|c| !c.same)
        .map(|c| c.distance)
        .collect();
    genuine.sort_by(f64::total_cmp);
    impostor.sort_by(f64::total_cmp);
    let impostor_tail = TailFit::fit(&impostor, IMPOSTOR_ANCHOR, true);
    let genuine_tail = TailFit::fit(&genuine, GENUINE_ANCHOR, false);
    let in_force_rates = rates(pairs, |c| {
        let applied = renzheng_vision::bands_for_face(in_force, in_force_bands, c.inter_eye_px);
        (applied.thresholds, applied.size_band.is_some())
    });
    let mut report = BucketReport {
        inter_eye_px: range,
        genuine: genuine.len(),
        impostor: impostor.len(),
        suggested: None,
        impostor_tail,
        genuine_tail,
        modelled_far: None,
        with_suggested: None,
        in_force: in_force_rates,
        note: None,
    };
    let (Some(imp), Some(gen), true) = (
        impostor_tail,
        genuine_tail,
        genuine.len() >= MIN_GENUINE && impostor.len() >= MIN_IMPOSTOR,
    ) else {
        report.note = Some(format!(
            "too little evidence for bands of its own: {} genuine and {} impostor pairs compared, at least {MIN_GENUINE} and {MIN_IMPOSTOR} needed",
            genuine.len(),
            impostor.len()
        ));
        return report;
    };
    let mut notes = Vec::new();
    let mut same = floor2(imp.anchor - imp.reach(target_far));
    let mut different = ceil2(gen.anchor + gen.reach(target_frr));
    if let Some(clean) = clamp_to {
        if same > clean.same_max_distance {
            same = clean.same_max_distance;
            notes.push(
                "\"same\" held at the clean bucket's (a small face is never accepted more readily)",
            );
        }
        if different < clean.different_min_distance {
            different = clean.different_min_distance;
            notes.push("\"different\" held at the clean bucket's (a small face is never called different more readily)");
        }
    }
    if same > different {
        same = different;
        notes.push("\"same\" lowered to \"different\": the tails cross");
    }
    if same < 0.01 {
        // The model leaves nothing: a threshold of one hundredth still names a band, and
        // no real pair falls under it, so the bucket never answers "same".
        same = 0.01;
        notes.push("the impostor tail leaves no room for \"same\" at this target");
    }
    let suggested = VerdictThresholds {
        same_max_distance: same,
        different_min_distance: different.max(same),
        score: in_force.score,
    };
    report.modelled_far = Some(imp.rate_beyond(imp.anchor - same));
    report.with_suggested = Some(rates(pairs, |_| (suggested, clamp_to.is_some())));
    report.suggested = Some(suggested);
    if !notes.is_empty() {
        report.note = Some(notes.join("; "));
    }
    report
}

/// The band rates of `pairs` as the service answers them under the thresholds `at` gives
/// each pair (and whether a size band covers it, which lifts the small-face cap).
fn rates(pairs: &[Compared], at: impl Fn(&Compared) -> (VerdictThresholds, bool)) -> Rates {
    let (mut gen, mut imp) = ([0usize; 3], [0usize; 3]);
    for c in pairs {
        let (t, in_band) = at(c);
        let capped = if in_band {
            c.capped_in_band
        } else {
            c.capped_clean
        };
        let code = match t.verdict(c.distance) {
            renzheng_vision::Verdict::Same if capped => 1,
            renzheng_vision::Verdict::Same => 0,
            renzheng_vision::Verdict::Uncertain => 1,
            renzheng_vision::Verdict::Different => 2,
        };
        if c.same {
            gen[code] += 1;
        } else {
            imp[code] += 1;
        }
    }
    let (g, i) = (gen.iter().sum(), imp.iter().sum());
    Rates {
        genuine_same: Rate::of(gen[0], g),
        genuine_different: Rate::of(gen[2], g),
        impostor_same: Rate::of(imp[0], i),
        impostor_different: Rate::of(imp[2], i),
    }
}

fn floor2(v: f64) -> f64 {
    (v * 100.0 + 1e-9).floor() / 100.0
}

fn ceil2(v: f64) -> f64 {
    (v * 100.0 - 1e-9).ceil() / 100.0
}

fn toml_block(buckets: &[BucketReport], keep_clean: bool) -> String {
    let mut out = String::from("# renzheng calibrate: paste into renzheng.toml\n");
    if let Some(clean) = buckets
        .first()
        .and_then(|b| b.suggested)
        .filter(|_| !keep_clean)
    {
        out.push_str(&format!(
            "[engine.verdict]\nsame_max_distance = {:.2}\ndifferent_min_distance = {:.2}\n",
            clean.same_max_distance, clean.different_min_distance
        ));
    }
    let mut small: Vec<&BucketReport> = buckets
        .iter()
        .skip(1)
        .filter(|b| b.suggested.is_some())
        .collect();
    small.sort_by(|a, b| a.inter_eye_px.0.total_cmp(&b.inter_eye_px.0));
    if small.is_empty() {
        out.push_str("# no small-face bucket had enough evidence: no size bands\n[engine]\nsize_bands = []\n");
    }
    for b in small {
        let (Some(t), (_, Some(below))) = (b.suggested, b.inter_eye_px) else {
            continue;
        };
        out.push_str(&format!(
            "\n[[engine.size_bands]]\nbelow_inter_eye_px = {below}\nsame_max_distance = {:.2}\ndifferent_min_distance = {:.2}\n",
            t.same_max_distance, t.different_min_distance
        ));
    }
    out
}

fn print_report(r: &Report) {
    println!(
        "pairs: {} (portrait refused: {}, caller's photo not compared: {}); targets: FAR {} FRR {}",
        r.pairs, r.portrait_refused, r.photo_not_compared, r.target_far, r.target_frr
    );
    let pct = |x: &Rate| {
        format!(
            "{:.1} % [{:.1}–{:.1}]",
            100.0 * x.rate,
            100.0 * x.low,
            100.0 * x.high
        )
    };
    for b in &r.buckets {
        let range = match b.inter_eye_px {
            (from, Some(to)) => format!("eye distance {from}–{to} px"),
            (from, None) => format!("eye distance ≥ {from} px (clean)"),
        };
        println!(
            "\n{range}: {} genuine, {} impostor pairs",
            b.genuine, b.impostor
        );
        match &b.suggested {
            Some(t) => println!(
                "  suggested: same d ≤ {:.2}, different d ≥ {:.2}",
                t.same_max_distance, t.different_min_distance
            ),
            None => println!("  suggested: none"),
        }
        if let Some((est, high)) = b.modelled_far {
            println!("  modelled false accepts at \"same\": {est:.1e} (95 % upper {high:.1e})");
        }
        let show = |label: &str, x: &Rates| {
            println!(
                "  {label:<10} genuine→1 {}  genuine→3 {}  impostor→1 {}  impostor→3 {}",
                pct(&x.genuine_same),
                pct(&x.genuine_different),
                pct(&x.impostor_same),
                pct(&x.impostor_different)
            )
        };
        if let Some(s) = &b.with_suggested {
            show("suggested", s);
        }
        show("in force", &b.in_force);
        if let Some(note) = &b.note {
            println!("  note: {note}");
        }
    }
    println!("\n{}", r.toml);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_and_chi_square_quantiles() {
        assert!((normal_quantile(0.05) + 1.644854).abs() < 1e-5);
        assert!((normal_quantile(0.975) - 1.959964).abs() < 1e-5);
        assert!(normal_quantile(0.5).abs() < 1e-9);
        // χ²₀.₀₅(20) = 10.851, χ²₀.₀₅(200) = 168.279.
        assert!((chi_square_quantile(0.05, 20) - 10.851).abs() < 0.05);
        assert!((chi_square_quantile(0.05, 200) - 168.279).abs() < 0.2);
    }

    /// Evenly spread quantiles of an exponential tail: `n` points whose lower tail below
    /// `anchor` falls off with `scale`.
    fn exponential_lower(n: usize, anchor: f64, scale: f64) -> Vec<f64> {
        let mut v: Vec<f64> = (0..n)
            .map(|i| {
                let u = (i as f64 + 0.5) / n as f64;
                // P(D ≤ d) = 0.5·exp((d − anchor)/scale) below anchor, uniform above.
                if u < 0.5 {
                    anchor + scale * (u / 0.5).ln()
                } else {
                    anchor + (u - 0.5)
                }
            })
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }

    #[test]
    fn tail_fit_recovers_an_exponential_and_errs_safe() {
        let v = exponential_lower(20_000, 0.6, 0.05);
        let fit = TailFit::fit(&v, 0.01, true).expect("enough points");
        assert_eq!(fit.points, 200);
        assert!((fit.anchor_rate - 0.01).abs() < 1e-12);
        assert!((fit.scale - 0.05).abs() < 0.004, "{fit:?}");
        assert!(fit.scale_high > fit.scale);
        // True 1e-3 quantile: 0.6 + 0.05·ln(2e-3) = 0.2893; the model's, with the upper
        // scale, lies below it (safe).
        let at = fit.anchor - fit.reach(1e-3);
        assert!(at < 0.2893 + 0.005 && at > 0.2893 - 0.05, "{at}");
        assert!(TailFit::fit(&v[..15], 0.01, true).is_none());
    }

    #[test]
    fn upper_tail_mirrors_the_lower() {
        let v: Vec<f64> = exponential_lower(5_000, 0.6, 0.05)
            .into_iter()
            .map(|d| 2.0 - d)
            .rev()
            .collect();
        let lower = TailFit::fit(&exponential_lower(5_000, 0.6, 0.05), 0.05, true).unwrap();
        let upper = TailFit::fit(&v, 0.05, false).unwrap();
        assert!((upper.anchor - (2.0 - lower.anchor)).abs() < 1e-9);
        assert!((upper.scale - lower.scale).abs() < 1e-9);
    }

    fn pair(same: bool, distance: f64, inter_eye_px: f64) -> Compared {
        Compared {
            same,
            distance,
            inter_eye_px,
            capped_in_band: false,
            capped_clean: inter_eye_px < 30.0,
        }
    }

    #[test]
    fn small_buckets_are_never_looser_than_the_clean_one() {
        // Clean: genuine near 0.3, impostors from 0.6. Small: both spread wider.
        let mut pairs = Vec::new();
        for i in 0..400 {
            let u = i as f64 / 400.0;
            pairs.push(pair(true, 0.2 + 0.2 * u, 50.0));
            pairs.push(pair(true, 0.3 + 0.4 * u, 15.0));
        }
        for i in 0..5_000 {
            let u = i as f64 / 5_000.0;
            pairs.push(pair(false, 0.6 + 0.4 * u, 50.0));
            pairs.push(pair(false, 0.5 + 0.5 * u, 15.0));
        }
        let in_force = VerdictThresholds::default();
        let r = suggest(
            &pairs,
            &[20.0, 30.0],
            (&in_force, &[]),
            1e-3,
            1e-2,
            false,
            (0, 0, 0),
        );
        assert_eq!(r.buckets.len(), 3);
        let clean = r.buckets[0].suggested.expect("clean evidence");
        let small = r.buckets[2].suggested.expect("small evidence");
        assert_eq!(r.buckets[2].inter_eye_px, (0.0, Some(20.0)));
        assert!(small.same_max_distance <= clean.same_max_distance);
        assert!(small.different_min_distance >= clean.different_min_distance);
        assert!(small.same_max_distance < 0.5, "{small:?}");
        // The 20–30 bucket is empty: no band, and the TOML says only what was found.
        assert!(r.buckets[1].suggested.is_none());
        assert!(r.toml.contains("below_inter_eye_px = 20"));
        assert!(!r.toml.contains("below_inter_eye_px = 30"));
        assert!(r.toml.contains("[engine.verdict]"));
        // Under the suggestion no impostor is accepted.
        let rates = r.buckets[2].with_suggested.unwrap();
        assert_eq!(rates.impostor_same.count, 0);
        assert!(rates.genuine_same.count > 0);
        // Keeping the clean bands: no [engine.verdict], small bands held to the bands in
        // force.
        let kept = suggest(
            &pairs,
            &[20.0, 30.0],
            (&in_force, &[]),
            1e-3,
            1e-2,
            true,
            (0, 0, 0),
        );
        assert!(!kept.toml.contains("[engine.verdict]"));
        let small = kept.buckets[2].suggested.unwrap();
        assert!(small.same_max_distance <= in_force.same_max_distance);
        assert!(small.different_min_distance >= in_force.different_min_distance);
    }
}
