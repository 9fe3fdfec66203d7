//! `renzheng bench --images DIR`: per-stage latency and whole-pipeline throughput.
//!
//! Every photo is read into memory first, so disk time is not measured. Each thread count
//! runs the whole set once to warm up, then `--rounds` times measured. The recognition
//! network's in-engine time is reported next to a bare ONNX Runtime session running the
//! same batch-of-one input, to show the engine's overhead around the network.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use renzheng_vision::pack::Pipeline;
use renzheng_vision::runtime::{self, SessionPool};
use renzheng_vision::{Engine, EngineConfig, EngineError, StageTimings};
use serde::Serialize;

/// Arguments of `renzheng bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder of photos (searched recursively for .jpg/.jpeg/.png/.webp/.bmp).
    #[arg(long)]
    pub images: PathBuf,
    /// Thread counts to measure (default: 1 and 2).
    #[arg(long, value_delimiter = ',')]
    pub threads: Vec<usize>,
    /// Measured passes over the set per thread count.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Use at most this many photos.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct StageStats {
    p50_ms: f64,
    p99_ms: f64,
    mean_ms: f64,
}

#[derive(Debug, Serialize)]
struct ThreadResult {
    threads: usize,
    images_per_second: f64,
    pipeline: StageStats,
    decode: StageStats,
    detect: StageStats,
    landmarks: StageStats,
    align: StageStats,
    embed: StageStats,
}

#[derive(Debug, Serialize)]
struct BenchReport {
    images: usize,
    faces_found: usize,
    results: Vec<ThreadResult>,
    recognition_bare_session_ms: StageStats,
    recognition_in_engine_ms: StageStats,
    peak_rss_mb: Option<f64>,
}

/// Runs the command.
pub fn run(args: &Args, engine_cfg: &EngineConfig) -> anyhow::Result<()> {
    super::models::require_installed(engine_cfg)?;
    let mut files = Vec::new();
    collect(&args.images, &mut files)?;
    files.sort();
    if let Some(n) = args.limit {
        files.truncate(n);
    }
    if files.is_empty() {
        bail!("no photos under {}", args.images.display());
    }
    let photos: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).with_context(|| format!("reading {}", f.display())))
        .collect::<anyhow::Result<_>>()?;
    let thread_counts = if args.threads.is_empty() {
        vec![1, 2]
    } else {
        args.threads.clone()
    };
    let mut cfg = engine_cfg.clone();
    cfg.sessions = thread_counts.iter().copied().max().unwrap_or(1);
    let engine = Engine::open(&cfg)?;

    let mut faces_found = 0;
    let mut results = Vec::new();
    let mut embed_times = Vec::new();
    for &threads in &thread_counts {
        run_pass(&engine, &photos, threads)?; // warm-up
        let mut timings = Vec::new();
        let mut wall = Duration::ZERO;
        for _ in 0..args.rounds.max(1) {
            let start = Instant::now();
            let (t, faces) = run_pass(&engine, &photos, threads)?;
            wall += start.elapsed();
            faces_found = faces;
            timings.extend(t);
        }
        if threads == 1 {
            embed_times = timings
                .iter()
                .filter(|t| !t.embed.is_zero())
                .map(|t| t.embed)
                .collect();
        }
        let pick = |f: fn(&StageTimings) -> Duration| stats(timings.iter().map(f).collect());
        results.push(ThreadResult {
            threads,
            images_per_second: timings.len() as f64 / wall.as_secs_f64(),
            pipeline: stats(
                timings
                    .iter()
                    .map(|t| t.decode + t.detect + t.landmarks + t.align + t.embed)
                    .collect(),
            ),
            decode: pick(|t| t.decode),
            detect: pick(|t| t.detect),
            landmarks: pick(|t| t.landmarks),
            align: pick(|t| t.align),
            embed: pick(|t| t.embed),
        });
    }

    let bare = bare_recognition_times(&engine, 200)?;
    let report = BenchReport {
        images: photos.len(),
        faces_found,
        results,
        recognition_bare_session_ms: stats(bare),
        recognition_in_engine_ms: stats(embed_times),
        peak_rss_mb: peak_rss_mb(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| {
                matches!(
                    e.to_ascii_lowercase().as_str(),
                    "jpg" | "jpeg" | "png" | "webp" | "bmp"
                )
            })
            .unwrap_or(false)
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Analyses every photo once with `threads` workers; undecodable photos are skipped.
fn run_pass(
    engine: &Engine,
    photos: &[Vec<u8>],
    threads: usize,
) -> anyhow::Result<(Vec<StageTimings>, usize)> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out = std::sync::Mutex::new((Vec::with_capacity(photos.len()), 0usize));
    let failure = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(bytes) = photos.get(i) else { break };
                match engine.analyze(bytes) {
                    Ok(a) => {
                        let mut o = out.lock().expect("lock");
                        o.0.push(a.timings);
                        o.1 += usize::from(a.face.is_some());
                    }
                    // Files that are not usable images are simply not timed.
                    Err(EngineError::Image(_)) => {}
                    Err(e) => {
                        *failure.lock().expect("lock") = Some(e);
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().expect("lock") {
        return Err(e.into());
    }
    Ok(out.into_inner().expect("lock"))
}

/// Times `session.run` alone on a prepared 1×3×size×size input (150 for dlib's ResNet,
/// 112 for SFace).
fn bare_recognition_times(engine: &Engine, n: usize) -> anyhow::Result<Vec<Duration>> {
    let m = engine.manifest();
    let env = runtime::environment(&engine.pack_dir().join(&m.runtime.file))?;
    let pool = SessionPool::new(
        &env,
        &engine.pack_dir().join(m.pipeline.recognition_file()),
        1,
        engine.config().intra_threads,
    )?;
    let (size, input_name) = match &m.pipeline {
        Pipeline::Dlib(p) => (p.recognition.chip_size, "chip"),
        Pipeline::YunetSface(p) => (p.alignment.size as usize, p.recognition.input.as_str()),
    };
    let data: Vec<f32> = (0..3 * size * size)
        .map(|i| ((i % 251) as f32 - 125.0) / 256.0)
        .collect();
    let mut times = Vec::with_capacity(n);
    pool.with(|session| -> anyhow::Result<()> {
        for i in 0..n + 10 {
            let input =
                ort::value::TensorRef::from_array_view(([1usize, 3, size, size], data.as_slice()))?;
            let start = Instant::now();
            let out = session.run(ort::inputs![input_name => input])?;
            let elapsed = start.elapsed();
            drop(out);
            if i >= 10 {
                times.push(elapsed);
            }
        }
        Ok(())
    })?;
    Ok(times)
}

fn stats(mut v: Vec<Duration>) -> StageStats {
    if v.is_empty() {
        return StageStats {
            p50_ms: 0.0,
            p99_ms: 0.0,
            mean_ms: 0.0,
        };
    }
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    StageStats {
        p50_ms: ms(at(0.5)),
        p99_ms: ms(at(0.99)),
        mean_ms: ms(v.iter().sum::<Duration>()) / v.len() as f64,
    }
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn print_report(r: &BenchReport) {
    println!("{} photos, {} with a face", r.images, r.faces_found);
    for t in &r.results {
        println!("threads {}: {:.1} images/s", t.threads, t.images_per_second);
        for (name, s) in [
            ("pipeline", &t.pipeline),
            ("decode", &t.decode),
            ("detect", &t.detect),
            ("landmarks", &t.landmarks),
            ("align", &t.align),
            ("embed", &t.embed),
        ] {
            println!(
                "  {name:<10} p50 {:>8.2} ms  p99 {:>8.2} ms  mean {:>8.2} ms",
                s.p50_ms, s.p99_ms, s.mean_ms
            );
        }
    }
    println!(
        "recognition network: bare session p50 {:.2} ms, in engine p50 {:.2} ms (1 thread)",
        r.recognition_bare_session_ms.p50_ms, r.recognition_in_engine_ms.p50_ms
    );
    if let Some(m) = r.peak_rss_mb {
        println!("peak RSS {m:.0} MB");
    }
}
