//! Numerical parity with dlib on the golden answers in `shared/faces/golden/` (produced by
//! `face_recognition` with the CNN detector, upsample 0): same faces found, box corners
//! within 2 px, landmarks within 1 px, embeddings within Euclidean 1e-3.

mod common;

use image::RgbImage;
use renzheng_vision::{Point, Rect};
use serde::Deserialize;

#[derive(Deserialize)]
struct GoldenImage {
    file: String,
    faces: Vec<GoldenFace>,
}

#[derive(Deserialize)]
struct GoldenFace {
    #[serde(rename = "box")]
    bbox: [i64; 4],
    landmarks: Vec<[f64; 2]>,
    encoding: Vec<f32>,
}

fn load_golden(set: &str) -> Vec<GoldenImage> {
    let path = common::faces_dir()
        .join("golden")
        .join(format!("{set}.jsonl"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("golden line"))
        .collect()
}

/// Like `face_recognition.load_image_file`: PIL → RGB, no EXIF rotation.
fn load_unrotated(path: &std::path::Path) -> RgbImage {
    let bytes = std::fs::read(path).expect("photo");
    renzheng_vision::decode_rgb_as_stored(&bytes, &Default::default()).expect("decodes")
}

#[derive(Default)]
struct Stats {
    images: usize,
    faces: usize,
    box_err: Vec<f64>,
    lm_err: Vec<f64>,
    enc_err: Vec<f64>,
}

impl Stats {
    fn summary(v: &[f64]) -> (f64, f64) {
        if v.is_empty() {
            return (0.0, 0.0);
        }
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        (s[s.len() / 2], *s.last().unwrap())
    }
}

/// Checks every `step`-th image of a set and returns the statistics.
fn check_set(set: &str, step: usize) -> Stats {
    let engine = common::exact_engine();
    let root = common::faces_dir().join(set);
    let mut st = Stats::default();
    for g in load_golden(set).into_iter().step_by(step) {
        let img = load_unrotated(&root.join(&g.file));
        let dets = engine.detect(&img).expect("detect");
        assert_eq!(
            dets.len(),
            g.faces.len(),
            "{set}/{}: found {} faces, dlib found {}",
            g.file,
            dets.len(),
            g.faces.len()
        );
        st.images += 1;
        for gf in &g.faces {
            let grect = Rect::new(gf.bbox[0], gf.bbox[1], gf.bbox[2], gf.bbox[3]);
            // Pair each golden face with the detection whose corners are nearest.
            let d = dets
                .iter()
                .min_by_key(|d| corner_err(d.rect, grect))
                .expect("a detection");
            let be = corner_err(d.rect, grect);
            assert!(
                be <= 2,
                "{set}/{}: box {:?} vs dlib {:?}",
                g.file,
                d.rect,
                grect
            );
            st.box_err.push(be as f64);

            // Landmarks and the embedding from dlib's own box, so each stage is judged
            // on its own.
            let lm = engine.landmarks(&img, grect).expect("landmarks");
            let lme = lm
                .iter()
                .zip(&gf.landmarks)
                .map(|(p, q)| (p.x - q[0]).abs().max((p.y - q[1]).abs()))
                .fold(0.0, f64::max);
            assert!(
                lme <= 1.0,
                "{set}/{}: landmarks {lm:?} vs dlib {:?}",
                g.file,
                gf.landmarks
            );
            st.lm_err.push(lme);

            let golden_lm: Vec<Point> = gf
                .landmarks
                .iter()
                .map(|p| Point::new(p[0], p[1]))
                .collect();
            let chip = engine.face_chip(&img, &golden_lm);
            let emb = engine.embed_chips(&[chip]).expect("embed").remove(0);
            let ee = emb.distance(&renzheng_vision::Embedding(gf.encoding.clone()));
            assert!(
                ee <= 1e-3,
                "{set}/{}: embedding differs from dlib's by {ee}",
                g.file
            );
            st.enc_err.push(ee);
            st.faces += 1;
        }
    }
    let (bm, bx) = Stats::summary(&st.box_err);
    let (lm, lx) = Stats::summary(&st.lm_err);
    let (em, ex) = Stats::summary(&st.enc_err);
    eprintln!(
        "parity {set}: {} images, {} faces; box corner px median {bm} max {bx}; \
         landmark px median {lm} max {lx}; embedding L2 median {em:.2e} max {ex:.2e}",
        st.images, st.faces
    );
    st
}

fn corner_err(a: Rect, b: Rect) -> i64 {
    [
        a.left - b.left,
        a.top - b.top,
        a.right - b.right,
        a.bottom - b.bottom,
    ]
    .iter()
    .map(|v| v.abs())
    .max()
    .unwrap()
}

#[test]
fn parity_fr_examples() {
    let st = check_set("fr_examples", 1);
    assert!(st.faces >= 10);
}

#[test]
fn parity_lfw_eastasian_dev() {
    let st = check_set("lfw_eastasian_dev", 6);
    assert!(st.faces >= 25);
}

#[test]
fn parity_celeb5() {
    // celeb5 includes photos where dlib finds no face: the engine must agree on those too.
    let st = check_set("celeb5", 4);
    assert!(st.images >= 25);
}

#[test]
fn parity_lfw_fold1() {
    let st = check_set("lfw_fold1", 40);
    assert!(st.faces >= 15);
}

/// The production pipeline (photos scaled before detection) must give the CNN pipeline's
/// answers on the face it verifies: the same face, and an embedding close to dlib's.
fn check_auto(set: &str, step: usize) -> (usize, f64, f64) {
    let engine = common::auto_engine();
    let root = common::faces_dir().join(set);
    let (mut n, mut worst, mut sum) = (0usize, 0.0f64, 0.0f64);
    for g in load_golden(set).into_iter().step_by(step) {
        if g.faces.is_empty() {
            continue;
        }
        let img = load_unrotated(&root.join(&g.file));
        let analysis = engine.analyze_image(&img).expect("analyze");
        let face = analysis
            .face
            .unwrap_or_else(|| panic!("{set}/{}: no face in auto mode; dlib found one", g.file));
        // The golden face nearest to the chosen one.
        let gf = g
            .faces
            .iter()
            .min_by_key(|gf| {
                corner_err(
                    face.rect,
                    Rect::new(gf.bbox[0], gf.bbox[1], gf.bbox[2], gf.bbox[3]),
                )
            })
            .expect("golden faces");
        let d = face
            .embedding
            .distance(&renzheng_vision::Embedding(gf.encoding.clone()));
        if std::env::var_os("PARITY_VERBOSE").is_some() {
            eprintln!(
                "{set}/{}: auto {:?} dlib {:?} d {d:.4}",
                g.file, face.rect, gf.bbox
            );
        }
        assert!(
            d < 0.1,
            "{set}/{}: auto-mode embedding {d:.4} from dlib's",
            g.file
        );
        worst = worst.max(d);
        sum += d;
        n += 1;
    }
    eprintln!(
        "auto vs dlib {set}: {n} faces, embedding L2 mean {:.4} max {worst:.4}",
        sum / n.max(1) as f64
    );
    (n, worst, sum)
}

#[test]
fn auto_mode_agrees_with_dlib_fr_examples() {
    assert!(check_auto("fr_examples", 1).0 >= 10);
}

#[test]
fn auto_mode_agrees_with_dlib_lfw_eastasian_dev() {
    assert!(check_auto("lfw_eastasian_dev", 6).0 >= 25);
}

#[test]
fn auto_mode_agrees_with_dlib_celeb5() {
    assert!(check_auto("celeb5", 4).0 >= 15);
}
