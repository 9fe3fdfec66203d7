//! `renzheng compare A B`: the quickest way to see the engine work on two photos.

use std::path::{Path, PathBuf};

use anyhow::Context;
use renzheng_vision::{Analysis, Engine, EngineConfig, Outcome};
use serde_json::json;

/// Arguments of `renzheng compare`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// First photo.
    pub a: PathBuf,
    /// Second photo.
    pub b: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(args: &Args, engine_cfg: &EngineConfig) -> anyhow::Result<()> {
    super::models::require_installed(engine_cfg)?;
    let engine = Engine::open(engine_cfg)?;
    let a = analyze(&engine, &args.a)?;
    let b = analyze(&engine, &args.b)?;
    let comparison = match (&a.face, &b.face) {
        (Some(fa), Some(fb)) => Some(engine.compare(&fa.embedding, &fb.embedding)),
        _ => None,
    };
    let (same, different) = engine.thresholds().as_scores();
    if args.json {
        let out = json!({
            "distance": comparison.map(|c| c.distance),
            "score": comparison.map(|c| c.score),
            "verdict": comparison.map(|c| c.verdict),
            "thresholds": {"same": same, "different": different},
            "a": describe(&args.a, &a),
            "b": describe(&args.b, &b),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    for (path, an) in [(&args.a, &a), (&args.b, &b)] {
        print_analysis(path, an);
    }
    match comparison {
        Some(c) => println!(
            "distance {:.4}  score {:.3}  verdict {:?}  (same ≥ {same:.3}, different ≤ {different:.3})",
            c.distance, c.score, c.verdict
        ),
        None => println!("no comparison: a face is missing"),
    }
    Ok(())
}

fn analyze(engine: &Engine, path: &Path) -> anyhow::Result<Analysis> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    engine
        .analyze(&bytes)
        .with_context(|| format!("analysing {}", path.display()))
}

/// One image: every face's box and score; the face that is compared (always the first)
/// also carries its landmarks and quality report.
fn describe(path: &Path, a: &Analysis) -> serde_json::Value {
    let faces: Vec<serde_json::Value> = a
        .faces
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut v = json!({"box": f.rect, "score": f.score, "compared": i == 0});
            if let (0, Some(chosen)) = (i, &a.face) {
                v["landmarks"] = json!(chosen.landmarks);
                v["quality"] = json!(chosen.quality);
            }
            v
        })
        .collect();
    json!({
        "file": path.display().to_string(),
        "width": a.width,
        "height": a.height,
        "outcome": outcome_name(a.outcome()),
        "faces": faces,
    })
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::NoFace => "no_face",
        Outcome::QualityRefused => "quality_refused",
        Outcome::Usable => "usable",
    }
}

fn print_analysis(path: &Path, a: &Analysis) {
    println!(
        "{} ({}×{}): {} face(s)",
        path.display(),
        a.width,
        a.height,
        a.faces.len()
    );
    if let Some(f) = &a.face {
        let q = &f.quality;
        println!(
            "  chosen face {:?} score {:.2}; inter-eye {:.0}px sharpness {:.1} brightness {:.0} yaw {:.2} roll {:.0}°",
            f.rect, f.score, q.inter_eye_px, q.sharpness, q.brightness, q.yaw, q.roll_deg
        );
        if !q.passed() {
            let names: Vec<_> = q.issues.iter().map(|i| i.as_str()).collect();
            println!("  quality refused: {}", names.join(", "));
        }
    }
}
