//! Numerical parity of the `sface` pack with OpenCV (`cv2.FaceDetectorYN`,
//! `cv2.FaceRecognizerSF`) on the goldens in `tests/golden/sface/`, made by
//! `tools/opencv_goldens.py`: the same faces, boxes and landmarks within 1 px, crops within
//! one grey level, embeddings at cosine ≥ 0.9999.
//!
//! Needs the `sface` pack (`renzheng models install --pack sface`) and `../shared/faces`.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use image::RgbImage;
use renzheng_vision::{DetectionMode, Embedding, Engine, EngineConfig, PackKind, Point};
use serde::Deserialize;

#[derive(Deserialize)]
struct GoldenPhoto {
    set: String,
    file: String,
    rgb_sha256: String,
    score_threshold: f32,
    faces: Vec<GoldenFace>,
    feature: Option<Vec<f32>>,
}

#[derive(Deserialize)]
struct GoldenFace {
    #[serde(rename = "box")]
    bbox: [f32; 4],
    landmarks: [[f64; 2]; 5],
    score: f32,
}

#[derive(Deserialize)]
struct GoldenCrop {
    pattern: [u32; 2],
    landmarks: [[f64; 2]; 5],
    rgb_b64: String,
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sface")
}

fn lines<T: serde::de::DeserializeOwned>(name: &str) -> Vec<T> {
    let path = golden_dir().join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("golden line"))
        .collect()
}

/// The `sface` engine in exact mode: YuNet at the photo's own size, as OpenCV runs it.
fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut cfg = EngineConfig {
                pack: Some(PackKind::Sface),
                ..EngineConfig::default()
            };
            cfg.detection.mode = DetectionMode::Exact;
            Arc::new(Engine::open(&cfg).unwrap_or_else(|e| {
                panic!(
                    "cannot open the sface pack ({e}); run `renzheng models install --pack sface`"
                )
            }))
        })
        .clone()
}

fn points(lm: &[[f64; 2]]) -> Vec<Point> {
    lm.iter().map(|p| Point::new(p[0], p[1])).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    Embedding(a.to_vec()).cosine(&Embedding(b.to_vec()))
}

#[test]
fn yunet_and_sface_agree_with_opencv() {
    let engine = engine();
    let threshold = match &engine.manifest().pipeline {
        renzheng_vision::pack::Pipeline::YunetSface(p) => p.detector.params.score_threshold,
        _ => panic!("not the sface pack"),
    };
    let goldens: Vec<GoldenPhoto> = lines("detections.jsonl");
    assert!(goldens.len() >= 40, "{} golden photos", goldens.len());
    let (mut faces, mut worst_box, mut worst_lm, mut worst_cos) = (0, 0f64, 0f64, 1f64);
    for g in &goldens {
        let path = common::faces_dir().join(&g.set).join(&g.file);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (img, _) = renzheng_vision::decode_rgb(&bytes, &Default::default()).expect("decodes");
        assert_eq!(
            renzheng_vision::pack::sha256_hex(img.as_raw()),
            g.rgb_sha256,
            "{}: decoded pixels differ from OpenCV's",
            g.file
        );
        // The goldens were made with a lower threshold; the faces above the pack's are the
        // same ones (suppression never lets a lower score remove a higher one).
        assert!(g.score_threshold <= threshold);
        let want: Vec<&GoldenFace> = g.faces.iter().filter(|f| f.score > threshold).collect();
        let got = engine.detect_yunet(&img).expect("detects");
        assert_eq!(got.len(), want.len(), "{}: face count", g.file);
        for (a, b) in got.iter().zip(&want) {
            for k in 0..4 {
                let e = f64::from((a.bbox[k] - b.bbox[k]).abs());
                worst_box = worst_box.max(e);
                assert!(
                    e <= 1.0,
                    "{}: box {:?} vs OpenCV {:?}",
                    g.file,
                    a.bbox,
                    b.bbox
                );
            }
            for (p, q) in a.landmarks.iter().zip(&b.landmarks) {
                let e = (f64::from(p[0]) - q[0]).hypot(f64::from(p[1]) - q[1]);
                worst_lm = worst_lm.max(e);
                assert!(e <= 1.0, "{}: landmark {p:?} vs OpenCV {q:?}", g.file);
            }
            assert!((a.score - b.score).abs() < 1e-3, "{}: score", g.file);
            faces += 1;
        }
        if let (Some(feature), Some(first)) = (&g.feature, g.faces.first()) {
            // OpenCV's feature is of its best face; crop that face from its landmarks.
            let crop = engine.face_chip(&img, &points(&first.landmarks));
            let ours = engine.embed_chips(&[crop]).expect("embeds").remove(0);
            let c = cosine(&ours.0, feature);
            worst_cos = worst_cos.min(c);
            assert!(c >= 0.9999, "{}: cosine {c} to OpenCV's feature", g.file);
            let n = ours.0.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>();
            assert!((n - 1.0).abs() < 1e-5, "embeddings are L2-normalised");
        }
    }
    eprintln!(
        "{} photos, {faces} faces: worst box error {worst_box:.3} px, worst landmark {worst_lm:.3} px, worst cosine {worst_cos:.6}",
        goldens.len()
    );
    assert!(faces >= 40);
}

/// The same synthetic pattern as `pattern` in `tools/opencv_goldens.py`.
fn pattern(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let (x, y) = (i64::from(x), i64::from(y));
        image::Rgb([
            ((x * 7 + y * 3 + (x * y) % 29) % 256) as u8,
            ((x * 2 + y * 11 + (x ^ y) % 37) % 256) as u8,
            (((x / 4) * 40 + (y / 4) * 70) % 256) as u8,
        ])
    })
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.trim_end_matches('=').as_bytes().chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c) << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn crops_agree_with_opencv_align_crop() {
    let engine = engine();
    let crops: Vec<GoldenCrop> = lines("crops.jsonl");
    assert!(!crops.is_empty());
    let (mut worst, mut total, mut n) = (0u8, 0u64, 0u64);
    for c in &crops {
        let img = pattern(c.pattern[0], c.pattern[1]);
        let ours = engine.face_chip(&img, &points(&c.landmarks));
        let want = base64_decode(&c.rgb_b64);
        assert_eq!(ours.as_raw().len(), want.len(), "crop size");
        for (a, b) in ours.as_raw().iter().zip(&want) {
            let d = a.abs_diff(*b);
            worst = worst.max(d);
            total += u64::from(d);
            n += 1;
        }
    }
    eprintln!(
        "{} crops: worst {worst} grey levels, mean |diff| {:.5}",
        crops.len(),
        total as f64 / n as f64
    );
    assert!(worst <= 1, "a crop pixel differs by {worst} grey levels");
}

/// A raised cancel flag stops an analysis at a stage boundary; a flag never raised
/// changes nothing.
#[test]
fn a_cancelled_analysis_stops_and_an_uncancelled_one_is_unchanged() {
    let engine = engine();
    let photo =
        std::fs::read(common::faces_dir().join("lfw_eastasian_dev/Hu_Jintao/Hu_Jintao_0004.jpg"))
            .expect("a shared photo");
    let cancel = renzheng_vision::Cancel::new();
    let whole = engine.analyze_cancellable(&photo, &cancel).unwrap();
    let plain = engine.analyze(&photo).unwrap();
    assert_eq!(whole.faces, plain.faces);
    assert_eq!(
        whole.face.as_ref().map(|f| &f.embedding),
        plain.face.as_ref().map(|f| &f.embedding)
    );
    cancel.cancel();
    assert!(matches!(
        engine.analyze_cancellable(&photo, &cancel),
        Err(renzheng_vision::EngineError::Cancelled)
    ));
}
