//! `renzheng eval --pairs FILE --root DIR`: accuracy of the engine on a pairs list.
//!
//! Every image is analysed once by the production pipeline. By default a pair is scored
//! as the service answers it: `file_x` is the enrolled portrait (the enrolment's portrait
//! rule applies: face found, one face, quality; a refused portrait is counted as such,
//! result 0) and `file_y` the caller's photo, answered by the check's rule (6, 8, or 1/2/3,
//! only the caller's photo's quality warnings capping "same") — both rules are
//! `renzheng_app::rules`, the very functions the service runs. `--symmetric` applies the
//! older rule instead: either photo's warning caps "same", and either photo's refusal
//! answers 6 or 8. Threshold-free figures (best accuracy, AUC, TAR at FAR) use every pair
//! whose two photos have a face, quality aside, so they describe the embeddings.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use renzheng_vision::{Analysis, Engine, EngineConfig, Outcome, Verdict, VerdictThresholds};
use serde::Serialize;

/// Arguments of `renzheng eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// CSV with columns `file_x,file_y,same` (paths relative to `--root`).
    #[arg(long)]
    pub pairs: PathBuf,
    /// Folder the pair paths are relative to (default: the pairs file's folder).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Write one CSV row per pair: `file_x,file_y,same,distance,score,result`.
    #[arg(long)]
    pub per_pair: Option<PathBuf>,
    /// Write one CSV row per image with its outcome and quality measurements (for
    /// calibrating the quality gate).
    #[arg(long)]
    pub per_image: Option<PathBuf>,
    /// Worker threads (each uses one inference session).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Also report the band rates on this many random halves of the people (a person is
    /// a pair path's first folder): how the rates vary for people the bands were not
    /// calibrated on. 0: off.
    #[arg(long, default_value_t = 0)]
    pub holdout_splits: usize,
    /// Score both photos alike (either one's quality warning caps "same", either one's
    /// refusal answers 6 or 8) instead of as the service does (`file_x` the enrolled
    /// portrait, `file_y` the caller's photo).
    #[arg(long)]
    pub symmetric: bool,
    /// Degrade every `file_x` (the portrait) in memory before analysing it: `chip` (an
    /// ID-card chip portrait, 102×126 JPEG, framed on the detected face),
    /// `scale:F[:Q]` (downscaled by F, JPEG quality Q), `watermark:waves|mesh` (a
    /// reticulate watermark).
    #[arg(long, value_name = "SPEC", value_parser = super::degrade::parse_spec)]
    pub portrait_as: Option<super::degrade::Degradation>,
    /// Degrade every `file_y` (the caller's photo) the same way, e.g. `scale:0.3` for
    /// small faces.
    #[arg(long, value_name = "SPEC", value_parser = super::degrade::parse_spec)]
    pub photo_as: Option<super::degrade::Degradation>,
}

/// One pair of the list.
#[derive(Debug, Clone)]
pub(super) struct Pair {
    pub(super) x: String,
    pub(super) y: String,
    pub(super) same: bool,
}

/// What one image amounted to.
#[derive(Debug, Clone)]
pub(super) struct ImageResult {
    pub(super) outcome: Outcome,
    faces: usize,
    pub(super) embedding: Option<renzheng_vision::Embedding>,
    pub(super) quality: Option<renzheng_vision::QualityReport>,
    /// The analysis itself (`None`: the file did not decode).
    analysis: Option<Analysis>,
    /// Why the enrolment's portrait rule refuses it (`None`: it would be enrolled).
    pub(super) portrait_refusal: Option<String>,
}

/// The figures `eval` reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Pairs in the list.
    pub pairs: usize,
    /// Distinct images.
    pub images: usize,
    /// Images where no face was found.
    pub no_face: usize,
    /// Images refused by the quality gate.
    pub quality_refused: usize,
    /// Images compared with a quality warning (never "same").
    pub quality_warned: usize,
    /// How pairs were scored: `service` (`file_x` the enrolled portrait, `file_y` the
    /// caller's photo) or `symmetric`.
    pub rule: &'static str,
    /// Pairs whose `file_x` the enrolment's portrait rule refuses (result 0; the service
    /// rule only).
    pub portrait_refused_pairs: usize,
    /// Pairs with a face in both photos (used for the threshold-free figures).
    pub scored_pairs: usize,
    /// Fraction of pairs answered correctly: genuine → 1, impostor → 3 or 2… see `accuracy_rule`.
    pub accuracy: f64,
    /// How `accuracy` is counted.
    pub accuracy_rule: &'static str,
    /// Accuracy of the best single distance threshold.
    pub best_accuracy: f64,
    /// That threshold.
    pub best_threshold: f64,
    /// ROC area under the curve (distance as the score).
    pub auc: f64,
    /// True-accept rate at a false-accept rate of 1e-2.
    #[serde(rename = "tar_at_far_1e-2")]
    pub tar_at_far_1e_2: f64,
    /// True-accept rate at a false-accept rate of 1e-3.
    #[serde(rename = "tar_at_far_1e-3")]
    pub tar_at_far_1e_3: f64,
    /// Impostor pairs answered 1 / impostor pairs answered 1, 2 or 3.
    pub false_accept_rate: f64,
    /// Genuine pairs answered 3 / genuine pairs answered 1, 2 or 3.
    pub false_reject_rate: f64,
    /// Genuine pairs answered 2 / genuine pairs answered 1, 2 or 3.
    pub genuine_uncertain_rate: f64,
    /// Impostor pairs answered 2 / impostor pairs answered 1, 2 or 3.
    pub impostor_uncertain_rate: f64,
    /// Pairs by result code.
    pub results: BTreeMap<u8, usize>,
    /// The thresholds used.
    pub thresholds: VerdictThresholds,
    /// The bands for small faces used (the service rule only).
    pub size_bands: Vec<renzheng_vision::SizeBand>,
    /// With `--holdout-splits`: the band rates over random halves of the people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout: Option<Holdout>,
    /// The band rates by the face size of the caller's photo (`file_y`'s eye distance).
    pub buckets: Vec<Bucket>,
}

/// The band rates of the pairs whose caller's photo falls in one face-size bucket, each
/// with its 95 % Wilson interval (a bucket's evidence is small: the interval says how
/// far the rate may be from the truth).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Bucket {
    /// The bucket: eye distance of `file_y` in pixels (`"<20"`, `"20-30"`, `"30-45"`,
    /// `">=45"`) or `"no face"`.
    pub inter_eye_px: &'static str,
    /// Genuine pairs answered 1, 2 or 3.
    pub genuine: usize,
    /// Impostor pairs answered 1, 2 or 3.
    pub impostor: usize,
    /// Genuine pairs answered 1.
    pub genuine_same: Rate,
    /// Genuine pairs answered 3.
    pub genuine_different: Rate,
    /// Impostor pairs answered 1.
    pub impostor_same: Rate,
    /// Impostor pairs answered 3.
    pub impostor_different: Rate,
}

/// A proportion with its 95 % Wilson score interval.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Rate {
    /// Pairs counted.
    pub count: usize,
    /// `count` over the pairs compared.
    pub rate: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
}

impl Rate {
    /// `count` of `total`, with its interval.
    pub fn of(count: usize, total: usize) -> Rate {
        if total == 0 {
            return Rate {
                count,
                rate: 0.0,
                low: 0.0,
                high: 1.0,
            };
        }
        let (n, p, z) = (total as f64, count as f64 / total as f64, 1.96f64);
        let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
        let half = z * ((p * (1.0 - p) + z * z / (4.0 * n)) / n).sqrt() / (1.0 + z * z / n);
        Rate {
            count,
            rate: p,
            low: (centre - half).max(0.0),
            high: (centre + half).min(1.0),
        }
    }
}

/// The face-size bucket of an eye distance.
fn bucket_of(inter_eye_px: Option<f64>) -> &'static str {
    match inter_eye_px {
        None => "no face",
        Some(d) if d < 20.0 => "<20",
        Some(d) if d < 30.0 => "20-30",
        Some(d) if d < 45.0 => "30-45",
        Some(_) => ">=45",
    }
}

/// The band rates per face-size bucket of the caller's photo.
fn buckets(
    per_pair: &[(Pair, Option<f64>, u8)],
    images: &HashMap<String, ImageResult>,
    key_y: &dyn Fn(&str) -> String,
) -> Vec<Bucket> {
    ["<20", "20-30", "30-45", ">=45", "no face"]
        .into_iter()
        .filter_map(|name| {
            let inside: Vec<&(Pair, Option<f64>, u8)> = per_pair
                .iter()
                .filter(|(p, _, _)| {
                    let y = &images[&key_y(&p.y)];
                    bucket_of(y.quality.as_ref().map(|q| q.inter_eye_px)) == name
                })
                .collect();
            if inside.is_empty() {
                return None;
            }
            let compared = |same: bool| {
                inside
                    .iter()
                    .filter(|(p, _, r)| p.same == same && (1..=3).contains(r))
                    .count()
            };
            let answered = |same: bool, code: u8| {
                inside
                    .iter()
                    .filter(|(p, _, r)| p.same == same && *r == code)
                    .count()
            };
            let (genuine, impostor) = (compared(true), compared(false));
            Some(Bucket {
                inter_eye_px: name,
                genuine,
                impostor,
                genuine_same: Rate::of(answered(true, 1), genuine),
                genuine_different: Rate::of(answered(true, 3), genuine),
                impostor_same: Rate::of(answered(false, 1), impostor),
                impostor_different: Rate::of(answered(false, 3), impostor),
            })
        })
        .collect()
}

/// Band rates over random halves of the people of a pairs list.
///
/// Each split keeps a random half of the people and the pairs whose two photos both show
/// someone of that half, so genuine and impostor pairs of one split never involve the
/// other half. The spread across splits shows what the same bands would give on a set of
/// people of the same kind that they were not calibrated on.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Holdout {
    /// Splits drawn (with a fixed seed, so the figures are reproducible).
    pub splits: usize,
    /// People in the list; each split keeps half of them.
    pub people: usize,
    /// Genuine pairs answered 1, over the genuine pairs compared.
    pub genuine_same: Spread,
    /// Genuine pairs answered 3.
    pub genuine_different: Spread,
    /// Impostor pairs answered 1.
    pub impostor_same: Spread,
    /// Impostor pairs answered 3.
    pub impostor_different: Spread,
}

/// Mean and 5th/95th percentiles (nearest rank) of a rate across splits.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Spread {
    /// Mean over the splits.
    pub mean: f64,
    /// 5th percentile.
    pub p05: f64,
    /// 95th percentile.
    pub p95: f64,
}

/// Runs the command.
pub fn run(args: &Args, engine_cfg: &EngineConfig) -> anyhow::Result<()> {
    super::models::require_installed(engine_cfg)?;
    let pairs = read_pairs(&args.pairs)?;
    let root = args
        .root
        .clone()
        .or_else(|| args.pairs.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let mut cfg = engine_cfg.clone();
    cfg.sessions = args.threads.max(1);
    let engine = Engine::open(&cfg)?;

    // A degraded photo is a different image from its file: it is analysed under a key of
    // its own ("portrait:" / "photo:" + the file), once.
    let key_x = |name: &str| match &args.portrait_as {
        Some(_) => format!("portrait:{name}"),
        None => name.to_owned(),
    };
    let key_y = |name: &str| match &args.photo_as {
        Some(_) => format!("photo:{name}"),
        None => name.to_owned(),
    };
    let mut jobs: Vec<Job> = pairs
        .iter()
        .flat_map(|p| {
            [
                Job {
                    key: key_x(&p.x),
                    file: p.x.clone(),
                    degradation: args.portrait_as.clone(),
                },
                Job {
                    key: key_y(&p.y),
                    file: p.y.clone(),
                    degradation: args.photo_as.clone(),
                },
            ]
        })
        .collect();
    jobs.sort_by(|a, b| a.key.cmp(&b.key));
    jobs.dedup_by(|a, b| a.key == b.key);
    let images: Vec<String> = jobs.iter().map(|j| j.key.clone()).collect();
    let analysed = analyse_all(&engine, &root, &jobs, args.threads.max(1))?;

    let mut per_pair = Vec::with_capacity(pairs.len());
    for p in &pairs {
        let (a, b) = (&analysed[&key_x(&p.x)], &analysed[&key_y(&p.y)]);
        let distance = match (&a.embedding, &b.embedding) {
            (Some(ea), Some(eb)) => Some(engine.metric().distance(ea, eb)),
            _ => None,
        };
        let result = if args.symmetric {
            let warned = a.quality.as_ref().is_some_and(|q| q.warned())
                || b.quality.as_ref().is_some_and(|q| q.warned());
            result_code(a.outcome, b.outcome, distance, warned, engine.thresholds())
        } else {
            service_result(&engine, a, b)
        };
        per_pair.push((p.clone(), distance, result));
    }
    let mut report = summarise(&analysed, &per_pair, *engine.thresholds());
    report.buckets = buckets(&per_pair, &analysed, &key_y);
    if !args.symmetric {
        report.size_bands = engine.size_bands().to_vec();
    }
    if args.symmetric {
        report.rule = "symmetric";
    }
    if args.holdout_splits > 0 {
        report.holdout = holdout(&per_pair, args.holdout_splits);
    }

    if let Some(path) = &args.per_pair {
        let mut w =
            csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
        w.write_record(["file_x", "file_y", "same", "distance", "score", "result"])?;
        for (p, d, r) in &per_pair {
            w.write_record([
                p.x.clone(),
                p.y.clone(),
                u8::from(p.same).to_string(),
                d.map(|d| format!("{d:.6}")).unwrap_or_default(),
                d.map(|d| format!("{:.6}", engine.thresholds().score_map().score(d)))
                    .unwrap_or_default(),
                r.to_string(),
            ])?;
        }
        w.flush()?;
    }
    if let Some(path) = &args.per_image {
        write_per_image(path, &images, &analysed)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&args.pairs, &report);
    }
    Ok(())
}

fn write_per_image(
    path: &Path,
    images: &[String],
    analysed: &HashMap<String, ImageResult>,
) -> anyhow::Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
    w.write_record([
        "file",
        "outcome",
        "faces",
        "inter_eye_px",
        "sharpness",
        "brightness",
        "clipped_bright",
        "clipped_dark",
        "yaw",
        "roll_deg",
        "outside_fraction",
        "detector_score",
        "issues",
        "warnings",
        "reticulate_removed",
    ])?;
    for name in images {
        let r = &analysed[name];
        let mut row = vec![
            name.clone(),
            format!("{:?}", r.outcome),
            r.faces.to_string(),
        ];
        match &r.quality {
            Some(q) => {
                row.extend(
                    [
                        q.inter_eye_px,
                        q.sharpness,
                        q.brightness,
                        q.clipped_bright,
                        q.clipped_dark,
                        q.yaw,
                        q.roll_deg,
                        q.outside_fraction,
                        f64::from(q.detector_score),
                    ]
                    .iter()
                    .map(|v| format!("{v:.4}")),
                );
                for list in [&q.issues, &q.warnings] {
                    row.push(
                        list.iter()
                            .map(|i| i.as_str())
                            .collect::<Vec<_>>()
                            .join(" "),
                    );
                }
            }
            None => row.extend(std::iter::repeat_n(String::new(), 11)),
        }
        let removed = r.analysis.as_ref().is_some_and(|a| a.reticulate_removed);
        row.push(u8::from(removed).to_string());
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}

pub(super) fn read_pairs(path: &Path) -> anyhow::Result<Vec<Pair>> {
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let headers = r.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .with_context(|| format!("{}: no column {name}", path.display()))
    };
    let (cx, cy, cs) = (col("file_x")?, col("file_y")?, col("same")?);
    let mut pairs = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec?;
        let same = match rec.get(cs).map(str::trim) {
            Some("1") | Some("true") => true,
            Some("0") | Some("false") => false,
            other => bail!("{} row {}: same = {other:?}", path.display(), i + 2),
        };
        pairs.push(Pair {
            x: rec.get(cx).unwrap_or_default().trim().to_string(),
            y: rec.get(cy).unwrap_or_default().trim().to_string(),
            same,
        });
    }
    if pairs.is_empty() {
        bail!("{}: no pairs", path.display());
    }
    Ok(pairs)
}

/// One image to analyse: a file of the list, degraded or not, under its key.
#[derive(Debug, Clone)]
pub(super) struct Job {
    pub(super) key: String,
    pub(super) file: String,
    pub(super) degradation: Option<super::degrade::Degradation>,
}

/// The bytes of `job`'s photo, degraded as it says (a chip portrait is framed on the face
/// the engine finds in the original).
fn job_bytes(engine: &Engine, root: &Path, job: &Job, seed: u64) -> anyhow::Result<Vec<u8>> {
    let path = root.join(&job.file);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let Some(degradation) = &job.degradation else {
        return Ok(bytes);
    };
    let Ok(photo) = image::load_from_memory(&bytes) else {
        // Undecodable stays undecodable (counted as "no face", as the service's 400).
        return Ok(bytes);
    };
    let framed_on_face = match degradation {
        super::degrade::Degradation::Chip => true,
        super::degrade::Degradation::Chain(steps) => {
            steps.first() == Some(&super::degrade::Degradation::Chip)
        }
        _ => false,
    };
    let face = match framed_on_face {
        true => engine.analyze(&bytes).ok().and_then(|a| {
            a.face.map(|f| super::degrade::FaceBox {
                x: f.rect.left as f32,
                y: f.rect.top as f32,
                width: (f.rect.right - f.rect.left) as f32,
                height: (f.rect.bottom - f.rect.top) as f32,
            })
        }),
        _ => None,
    };
    match super::degrade::apply(degradation, &photo, face, seed) {
        Ok(degraded) => Ok(degraded),
        // No face to frame a chip portrait around: the original, which the engine will
        // find no face in either.
        Err(_) => Ok(bytes),
    }
}

pub(super) fn analyse_all(
    engine: &Engine,
    root: &Path,
    images: &[Job],
    threads: usize,
) -> anyhow::Result<HashMap<String, ImageResult>> {
    let bar = ProgressBar::new(images.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images {elapsed_precise} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let out = Mutex::new(HashMap::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(job) = images.get(i) else { break };
                let name = &job.key;
                let res = job_bytes(engine, root, job, i as u64)
                    .and_then(|bytes| Ok(engine.analyze(&bytes)?));
                match res {
                    Ok(a) => {
                        out.lock()
                            .expect("lock")
                            .insert(name.clone(), image_result(&a));
                    }
                    Err(e) => {
                        // An undecodable file counts as "no face", like the service's 400;
                        // I/O and engine failures stop the evaluation instead of being
                        // counted as photos.
                        if matches!(
                            e.downcast_ref::<renzheng_vision::EngineError>(),
                            Some(renzheng_vision::EngineError::Image(_))
                        ) {
                            out.lock().expect("lock").insert(
                                name.clone(),
                                ImageResult {
                                    outcome: Outcome::NoFace,
                                    faces: 0,
                                    embedding: None,
                                    quality: None,
                                    analysis: None,
                                    portrait_refusal: Some("unusable image".into()),
                                },
                            );
                        } else {
                            *failure.lock().expect("lock") = Some(e);
                            break;
                        }
                    }
                }
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    if let Some(e) = failure.into_inner().expect("lock") {
        return Err(e);
    }
    Ok(out.into_inner().expect("lock"))
}

fn image_result(a: &Analysis) -> ImageResult {
    ImageResult {
        outcome: a.outcome(),
        faces: a.faces.len(),
        embedding: a.face.as_ref().map(|f| f.embedding.clone()),
        quality: a.face.as_ref().map(|f| f.quality.clone()),
        analysis: Some(a.clone()),
        portrait_refusal: renzheng_app::rules::portrait_refusal(a).map(|r| r.to_string()),
    }
}

/// The service's answer for a pair: `portrait` enrolled (result 0 when the portrait rule
/// refuses it), `photo` checked against it.
fn service_result(engine: &Engine, portrait: &ImageResult, photo: &ImageResult) -> u8 {
    let (None, Some(enrolled)) = (&portrait.portrait_refusal, &portrait.embedding) else {
        return 0;
    };
    let Some(analysis) = &photo.analysis else {
        // Undecodable: the service answers 400; counted with "no face", as before.
        return 6;
    };
    renzheng_app::rules::judge(engine, analysis, std::slice::from_ref(enrolled)).code as u8
}

/// The service's result code for a pair; a photo with a quality warning caps "same" at
/// "can't tell", as the service does.
fn result_code(
    a: Outcome,
    b: Outcome,
    distance: Option<f64>,
    warned: bool,
    t: &VerdictThresholds,
) -> u8 {
    if a == Outcome::NoFace || b == Outcome::NoFace {
        return 6;
    }
    if a == Outcome::QualityRefused || b == Outcome::QualityRefused {
        return 8;
    }
    match distance.map(|d| t.verdict(d)) {
        Some(Verdict::Same) if warned => 2,
        Some(Verdict::Same) => 1,
        Some(Verdict::Uncertain) => 2,
        Some(Verdict::Different) => 3,
        None => 6,
    }
}

fn summarise(
    images: &HashMap<String, ImageResult>,
    per_pair: &[(Pair, Option<f64>, u8)],
    thresholds: VerdictThresholds,
) -> Report {
    let scored: Vec<(f64, bool)> = per_pair
        .iter()
        .filter_map(|(p, d, _)| d.map(|d| (d, p.same)))
        .collect();
    let mut results = BTreeMap::new();
    for (_, _, r) in per_pair {
        *results.entry(*r).or_insert(0) += 1;
    }
    // Band rates are over the pairs the service would compare (results 1, 2, 3).
    let compared = |same: bool| {
        per_pair
            .iter()
            .filter(|(p, _, r)| p.same == same && (1..=3).contains(r))
            .count()
            .max(1) as f64
    };
    let band = |same: bool, code: u8| {
        per_pair
            .iter()
            .filter(|(p, _, r)| p.same == same && *r == code)
            .count() as f64
    };
    let (genuine, impostor) = (compared(true), compared(false));
    // A pair is answered correctly when a genuine pair gets 1 and an impostor gets 3;
    // "can't tell", 6 and 8 count as not correct.
    let correct = per_pair
        .iter()
        .filter(|(p, _, r)| (p.same && *r == 1) || (!p.same && *r == 3))
        .count();
    let (best_accuracy, best_threshold) = best_threshold(&scored);
    Report {
        pairs: per_pair.len(),
        images: images.len(),
        no_face: images
            .values()
            .filter(|i| i.outcome == Outcome::NoFace)
            .count(),
        quality_refused: images
            .values()
            .filter(|i| i.outcome == Outcome::QualityRefused)
            .count(),
        quality_warned: images
            .values()
            .filter(|i| {
                i.outcome == Outcome::Usable && i.quality.as_ref().is_some_and(|q| q.warned())
            })
            .count(),
        rule: "service",
        portrait_refused_pairs: per_pair.iter().filter(|(_, _, r)| *r == 0).count(),
        scored_pairs: scored.len(),
        accuracy: correct as f64 / per_pair.len().max(1) as f64,
        accuracy_rule: "genuine answered 1 or impostor answered 3, over all pairs",
        best_accuracy,
        best_threshold,
        auc: auc(&scored),
        tar_at_far_1e_2: tar_at_far(&scored, 1e-2),
        tar_at_far_1e_3: tar_at_far(&scored, 1e-3),
        false_accept_rate: band(false, 1) / impostor,
        false_reject_rate: band(true, 3) / genuine,
        genuine_uncertain_rate: band(true, 2) / genuine,
        impostor_uncertain_rate: band(false, 2) / impostor,
        results,
        thresholds,
        size_bands: Vec::new(),
        holdout: None,
        buckets: Vec::new(),
    }
}

/// The person a pair path shows: its first folder (the shared sets are
/// `<person>/<photo>`), else the whole path.
fn person(path: &str) -> &str {
    path.split_once('/').map_or(path, |(p, _)| p)
}

/// Band rates of `per_pair` over `splits` random halves of the people. `None` when the
/// list has fewer than 4 people (a half would hold no impostor pair).
fn holdout(per_pair: &[(Pair, Option<f64>, u8)], splits: usize) -> Option<Holdout> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;

    let mut people: Vec<&str> = per_pair
        .iter()
        .flat_map(|(p, _, _)| [person(&p.x), person(&p.y)])
        .collect();
    people.sort_unstable();
    people.dedup();
    if people.len() < 4 {
        return None;
    }
    // Fixed seed: the same list gives the same figures on every run.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_2026);
    let mut rates: [Vec<f64>; 4] = Default::default();
    for _ in 0..splits {
        let mut shuffled = people.clone();
        shuffled.shuffle(&mut rng);
        let half: std::collections::HashSet<&str> =
            shuffled[..people.len() / 2].iter().copied().collect();
        // [same][result 1, 2, 3]
        let mut counts = [[0usize; 3]; 2];
        for (p, _, r) in per_pair {
            if (1..=3).contains(r) && half.contains(person(&p.x)) && half.contains(person(&p.y)) {
                counts[usize::from(p.same)][usize::from(*r - 1)] += 1;
            }
        }
        let [impostor, genuine] = counts.map(|c| c.iter().sum::<usize>() as f64);
        if genuine == 0.0 || impostor == 0.0 {
            continue;
        }
        rates[0].push(counts[1][0] as f64 / genuine);
        rates[1].push(counts[1][2] as f64 / genuine);
        rates[2].push(counts[0][0] as f64 / impostor);
        rates[3].push(counts[0][2] as f64 / impostor);
    }
    let used = rates[0].len();
    if used == 0 {
        return None;
    }
    let [genuine_same, genuine_different, impostor_same, impostor_different] =
        rates.map(|mut v| spread(&mut v));
    Some(Holdout {
        splits: used,
        people: people.len(),
        genuine_same,
        genuine_different,
        impostor_same,
        impostor_different,
    })
}

/// Mean and nearest-rank 5th/95th percentiles of `v` (not empty).
fn spread(v: &mut [f64]) -> Spread {
    v.sort_by(f64::total_cmp);
    let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Spread {
        mean: v.iter().sum::<f64>() / v.len() as f64,
        p05: rank(0.05),
        p95: rank(0.95),
    }
}

/// Best accuracy of a rule "same iff distance ≤ t" and its t (midpoint between neighbours).
fn best_threshold(scored: &[(f64, bool)]) -> (f64, f64) {
    if scored.is_empty() {
        return (0.0, 0.0);
    }
    let mut s = scored.to_vec();
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    let impostors = s.iter().filter(|x| !x.1).count();
    // Threshold below everything: all rejected → correct = impostors.
    let mut correct = impostors as i64;
    let (mut best, mut best_t) = (correct, s[0].0 - 1e-6);
    for i in 0..s.len() {
        correct += if s[i].1 { 1 } else { -1 };
        // Only cut between distinct distances.
        if i + 1 < s.len() && s[i + 1].0 == s[i].0 {
            continue;
        }
        if correct > best {
            best = correct;
            best_t = if i + 1 < s.len() {
                (s[i].0 + s[i + 1].0) / 2.0
            } else {
                s[i].0
            };
        }
    }
    (best as f64 / s.len() as f64, best_t)
}

/// ROC AUC: the probability that a genuine pair is closer than an impostor (ties ½).
fn auc(scored: &[(f64, bool)]) -> f64 {
    let mut s = scored.to_vec();
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (ng, ni) = (
        s.iter().filter(|x| x.1).count() as f64,
        s.iter().filter(|x| !x.1).count() as f64,
    );
    if ng == 0.0 || ni == 0.0 {
        return 0.0;
    }
    // Rank-sum with average ranks for ties; a smaller distance is the "higher" score.
    let mut rank_sum_impostor = 0.0;
    let mut i = 0;
    while i < s.len() {
        let mut j = i;
        while j + 1 < s.len() && s[j + 1].0 == s[i].0 {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_impostor += s[i..=j].iter().filter(|x| !x.1).count() as f64 * avg_rank;
        i = j + 1;
    }
    // Impostors should have the large ranks (large distances).
    (rank_sum_impostor - ni * (ni + 1.0) / 2.0) / (ng * ni)
}

/// Fraction of genuine pairs accepted at the largest threshold that accepts at most
/// `far` of the impostors.
fn tar_at_far(scored: &[(f64, bool)], far: f64) -> f64 {
    let mut imp: Vec<f64> = scored.iter().filter(|x| !x.1).map(|x| x.0).collect();
    let gen: Vec<f64> = scored.iter().filter(|x| x.1).map(|x| x.0).collect();
    if imp.is_empty() || gen.is_empty() {
        return 0.0;
    }
    imp.sort_by(f64::total_cmp);
    let allowed = (far * imp.len() as f64).floor() as usize;
    // Accept d < imp[allowed]: exactly `allowed` impostors lie below it (ties excluded).
    let t = imp.get(allowed).copied().unwrap_or(f64::INFINITY);
    gen.iter().filter(|&&d| d < t).count() as f64 / gen.len() as f64
}

fn print_report(pairs: &Path, r: &Report) {
    println!("{}", pairs.display());
    println!(
        "  pairs {}  images {}  no face {}  quality refused {}  warned {}  scored pairs {}",
        r.pairs, r.images, r.no_face, r.quality_refused, r.quality_warned, r.scored_pairs
    );
    println!(
        "  scored as {}: {} pairs whose portrait (file_x) enrolment refuses (result 0)",
        r.rule, r.portrait_refused_pairs
    );
    println!(
        "  accuracy {:.4} ({})  best accuracy {:.4} at distance {:.3}  AUC {:.4}",
        r.accuracy, r.accuracy_rule, r.best_accuracy, r.best_threshold, r.auc
    );
    println!(
        "  TAR@FAR1e-2 {:.4}  TAR@FAR1e-3 {:.4}",
        r.tar_at_far_1e_2, r.tar_at_far_1e_3
    );
    println!(
        "  at same ≤ {:.3} / different ≥ {:.3}: FAR {:.4}  FRR {:.4}  genuine can't-tell {:.4}  impostor can't-tell {:.4}",
        r.thresholds.same_max_distance,
        r.thresholds.different_min_distance,
        r.false_accept_rate,
        r.false_reject_rate,
        r.genuine_uncertain_rate,
        r.impostor_uncertain_rate
    );
    let codes: Vec<String> = r.results.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    println!("  results {}", codes.join("  "));
    println!("  by the caller's photo's eye distance (px), rate [95 % interval]:");
    for b in &r.buckets {
        let shown = |x: &Rate| {
            format!(
                "{:.1} % [{:.1}–{:.1}]",
                100.0 * x.rate,
                100.0 * x.low,
                100.0 * x.high
            )
        };
        println!(
            "    {:>7}: genuine {} → 1 {}, → 3 {};  impostor {} → 1 {}, → 3 {}",
            b.inter_eye_px,
            b.genuine,
            shown(&b.genuine_same),
            shown(&b.genuine_different),
            b.impostor,
            shown(&b.impostor_same),
            shown(&b.impostor_different)
        );
    }
    if let Some(h) = &r.holdout {
        println!(
            "  over {} random halves of the {} people (mean, 5th–95th percentile):",
            h.splits, h.people
        );
        for (what, s) in [
            ("genuine → 1", h.genuine_same),
            ("genuine → 3", h.genuine_different),
            ("impostor → 1", h.impostor_same),
            ("impostor → 3", h.impostor_different),
        ] {
            println!(
                "    {what}: {:.2} % ({:.2}–{:.2} %)",
                100.0 * s.mean,
                100.0 * s.p05,
                100.0 * s.p95
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_separation() {
        let s = vec![(0.2, true), (0.3, true), (0.7, false), (0.8, false)];
        assert_eq!(auc(&s), 1.0);
        let (acc, t) = best_threshold(&s);
        assert_eq!(acc, 1.0);
        assert!((t - 0.5).abs() < 1e-12);
        assert_eq!(tar_at_far(&s, 1e-2), 1.0);
    }

    #[test]
    fn reversed_and_tied() {
        let s = vec![(0.8, true), (0.2, false)];
        assert_eq!(auc(&s), 0.0);
        let tied = vec![(0.5, true), (0.5, false)];
        assert_eq!(auc(&tied), 0.5);
        // A tie with an impostor is not accepted at FAR 0.
        assert_eq!(tar_at_far(&tied, 1e-3), 0.0);
    }

    #[test]
    fn tar_at_far_allows_the_stated_fraction() {
        // 100 impostors at 0.500, 0.505, …; genuine at 0.495 and 0.5025.
        let mut s: Vec<(f64, bool)> = (0..100).map(|i| (0.5 + i as f64 / 200.0, false)).collect();
        s.push((0.495, true));
        s.push((0.5025, true));
        assert_eq!(tar_at_far(&s, 0.0), 0.5);
        assert_eq!(tar_at_far(&s, 1e-2), 1.0, "one impostor may be accepted");
    }

    #[test]
    fn result_codes() {
        let t = VerdictThresholds::default();
        let code = |a, b, d, w| result_code(a, b, d, w, &t);
        use Outcome::{NoFace, QualityRefused, Usable};
        assert_eq!(code(NoFace, Usable, None, false), 6);
        assert_eq!(code(QualityRefused, Usable, Some(0.1), false), 8);
        assert_eq!(code(Usable, Usable, Some(0.1), false), 1);
        assert_eq!(
            code(Usable, Usable, Some(0.1), true),
            2,
            "a warning caps same"
        );
        assert_eq!(code(Usable, Usable, Some(0.5), false), 2);
        assert_eq!(code(Usable, Usable, Some(0.9), false), 3);
    }

    fn pair(x: &str, y: &str, same: bool, result: u8) -> (Pair, Option<f64>, u8) {
        let p = Pair {
            x: x.into(),
            y: y.into(),
            same,
        };
        (p, Some(0.5), result)
    }

    #[test]
    fn holdout_keeps_pairs_within_one_half_of_the_people() {
        // Person "bad" is the only one whose genuine pair is answered 3 and whose
        // impostor pairs are answered 1: a split holds all of its pairs or none.
        let people = ["a", "b", "c", "d", "e", "bad"];
        let mut pairs = Vec::new();
        for (i, x) in people.iter().enumerate() {
            let bad = *x == "bad";
            pairs.push(pair(
                &format!("{x}/1.jpg"),
                &format!("{x}/2.jpg"),
                true,
                if bad { 3 } else { 1 },
            ));
            for y in &people[i + 1..] {
                let r = if bad || *y == "bad" { 1 } else { 3 };
                pairs.push(pair(&format!("{x}/1.jpg"), &format!("{y}/1.jpg"), false, r));
            }
        }
        // A pair answered 6 is not compared and never counts.
        pairs.push(pair("a/1.jpg", "a/3.jpg", true, 6));
        let h = holdout(&pairs, 400).expect("6 people");
        assert_eq!((h.splits, h.people), (400, 6));
        // A half holds 3 people, so 3 genuine pairs: "bad" in it gives 1/3 of them 3,
        // else none; its impostor pairs are 2 of the half's 3.
        assert_eq!(h.genuine_different.p05, 0.0);
        assert!((h.genuine_different.p95 - 1.0 / 3.0).abs() < 1e-12);
        assert!(
            (h.genuine_different.mean - 0.5 / 3.0).abs() < 0.05,
            "bad is in half the splits"
        );
        assert!((h.impostor_same.p95 - 2.0 / 3.0).abs() < 1e-12);
        assert!((h.genuine_same.mean + h.genuine_different.mean - 1.0).abs() < 1e-12);
        assert_eq!(holdout(&pairs, 400), holdout(&pairs, 400), "a fixed seed");
        assert!(holdout(&pairs[..1], 10).is_none(), "one person: no halves");
    }

    #[test]
    fn wilson_intervals_are_honest_about_small_counts() {
        // 0 of 100: the rate is 0 but the truth may be up to about 3.7 %.
        let r = Rate::of(0, 100);
        assert_eq!(r.rate, 0.0);
        assert!((r.high - 0.0370).abs() < 1e-3, "{r:?}");
        // 50 of 100: about 40–60 %.
        let r = Rate::of(50, 100);
        assert!(
            (r.low - 0.4038).abs() < 1e-3 && (r.high - 0.5962).abs() < 1e-3,
            "{r:?}"
        );
        assert_eq!(Rate::of(0, 0).high, 1.0, "no evidence: anything");
        assert_eq!(bucket_of(Some(19.9)), "<20");
        assert_eq!(bucket_of(Some(30.0)), "30-45");
        assert_eq!(bucket_of(None), "no face");
    }

    #[test]
    fn spread_uses_nearest_ranks() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = spread(&mut v);
        assert_eq!((s.p05, s.p95, s.mean), (5.0, 95.0, 50.5));
        assert_eq!(spread(&mut [7.0]).p05, 7.0);
    }
}
