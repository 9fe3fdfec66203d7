//! The production pipeline on real photos, for every model pack: `shared/faces/bad_inputs`
//! must be refused, flagged or scored low as its `labels.csv` says, and clean photos must
//! pass the quality gate. Each check is a function of the pack; `both_packs!` makes one
//! test of it per pack.

mod common;

use std::collections::HashMap;

use std::sync::Arc;

use renzheng_vision::{Analysis, Engine, EngineError, Outcome, PackKind, Verdict};

/// One `#[test]` per pack for each `fn check(kind: PackKind)`.
macro_rules! both_packs {
    ($($check:ident => $dlib:ident, $sface:ident;)*) => {$(
        #[test]
        fn $dlib() {
            $check(PackKind::Dlib)
        }
        #[test]
        fn $sface() {
            $check(PackKind::Sface)
        }
    )*};
}

both_packs! {
    bad_inputs_are_handled_as_labelled => bad_inputs_dlib, bad_inputs_sface;
    corrupt_files_are_clean_image_errors => corrupt_files_dlib, corrupt_files_sface;
    edge_formats_decode_upright_and_match_their_owner => edge_formats_dlib, edge_formats_sface;
    clean_photos_pass_the_quality_gate => clean_photos_dlib, clean_photos_sface;
    mutated_files_decode_or_fail_cleanly => mutated_files_dlib, mutated_files_sface;
    odd_shapes_analyse_without_panic => odd_shapes_dlib, odd_shapes_sface;
}

fn engine(kind: PackKind) -> Arc<Engine> {
    common::pack_engine(kind)
}

struct Label {
    file: String,
    category: String,
    expected: String,
    identity: String,
}

fn labels() -> Vec<Label> {
    let path = common::faces_dir().join("bad_inputs/labels.csv");
    let text = std::fs::read_to_string(&path).expect("labels.csv");
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Label {
                file: f[0].into(),
                category: f[1].into(),
                expected: f[2].into(),
                identity: f[3].into(),
            }
        })
        .collect()
}

fn analyse(kind: PackKind, file: &str) -> Result<Analysis, EngineError> {
    let bytes = std::fs::read(common::faces_dir().join("bad_inputs").join(file)).expect("read");
    engine(kind).analyze(&bytes)
}

/// The best verdict of `a` against the clean reference photos of `identity`, as the
/// service would give it (warnings cap "same").
fn verdict_against_references(
    kind: PackKind,
    a: &Analysis,
    identity: &str,
    refs: &HashMap<String, Vec<Analysis>>,
) -> Option<Verdict> {
    let face = a.face.as_ref()?;
    let embeddings: Vec<_> = refs
        .get(identity)?
        .iter()
        .filter_map(|r| r.face.as_ref().map(|f| f.embedding.clone()))
        .collect();
    // The service's rule (renzheng-server's check service): the nearest reference decides,
    // and a photo with a quality warning is capped at "can't tell".
    let engine = engine(kind);
    let best = embeddings
        .iter()
        .filter(|r| r.0.len() == face.embedding.0.len())
        .map(|r| engine.compare(&face.embedding, r))
        .min_by(|a, b| a.distance.total_cmp(&b.distance))?;
    let best = if face.quality.warned() {
        best.capped(engine.thresholds())
    } else {
        best
    };
    Some(best.verdict)
}

fn bad_inputs_are_handled_as_labelled(kind: PackKind) {
    let labels = labels();
    let mut refs: HashMap<String, Vec<Analysis>> = HashMap::new();
    for l in labels.iter().filter(|l| l.category == "reference") {
        let a = analyse(kind, &l.file).expect("reference photos decode");
        assert_eq!(
            a.outcome(),
            Outcome::Usable,
            "reference {} must pass",
            l.file
        );
        // A clean portrait shows one person: a background detection would make enrolment
        // refuse it as "several faces".
        assert_eq!(
            a.faces.len(),
            1,
            "{kind}: reference {} shows one face",
            l.file
        );
        refs.entry(l.identity.clone()).or_default().push(a);
    }

    let mut failures = Vec::new();
    for l in labels.iter().filter(|l| l.category != "reference") {
        let result = analyse(kind, &l.file);
        let expectation = l.expected.split(':').next().unwrap_or_default();
        let refused = match &result {
            Err(EngineError::Image(_)) => true,
            Err(e) => panic!("{}: engine failure {e}", l.file),
            Ok(a) => a.outcome() != Outcome::Usable,
        };
        let verdict = result
            .as_ref()
            .ok()
            .and_then(|a| verdict_against_references(kind, a, &l.identity, &refs));
        let multiple = result.as_ref().is_ok_and(|a| a.faces.len() > 1);
        let ok = match expectation {
            // Processed, and not mistaken for somebody else.
            "accept" => !refused && verdict != Some(Verdict::Different),
            "reject" => refused,
            // Refused, or compared but not called the same person.
            "reject_or_low_score" => refused || verdict != Some(Verdict::Same),
            "reject_or_flag" => refused || multiple || verdict != Some(Verdict::Same),
            "accept_or_low_score" | "accept_or_reject" => true,
            other => panic!("unknown expectation {other}"),
        };
        eprintln!(
            "{:<55} {:<40} refused={refused:<5} verdict={verdict:?}",
            l.file, l.expected
        );
        if !ok {
            failures.push(format!(
                "{}: expected {}, refused={refused}, verdict={verdict:?}",
                l.file, l.expected
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{kind}: mishandled bad inputs:\n{}",
        failures.join("\n")
    );
}

fn corrupt_files_are_clean_image_errors(kind: PackKind) {
    for file in [
        "corrupt/zero_bytes.jpg",
        "corrupt/text_named_jpg.jpg",
        "corrupt/Zhu_Rongji_0003_truncated40pct.jpg",
    ] {
        match analyse(kind, file) {
            Err(EngineError::Image(e)) => eprintln!("{file}: {e}"),
            other => panic!(
                "{file}: expected an image error, got {:?}",
                other.map(|a| a.outcome())
            ),
        }
    }
}

fn edge_formats_decode_upright_and_match_their_owner(kind: PackKind) {
    let engine = engine(kind);
    let read = |f: &str| std::fs::read(common::faces_dir().join("bad_inputs").join(f)).unwrap();
    for (probe, reference) in [
        (
            "edge_format/Jackie_Chan_0003_exif_orientation6.jpg",
            "reference/Jackie_Chan/Jackie_Chan_0002.jpg",
        ),
        (
            "edge_format/Yao_Ming_0003_cmyk.jpg",
            "reference/Yao_Ming/Yao_Ming_0002.jpg",
        ),
        (
            "edge_format/Hu_Jintao_0003_grayscale.jpg",
            "reference/Hu_Jintao/Hu_Jintao_0002.jpg",
        ),
        (
            "edge_format/obama2_rgba_32bit.png",
            "reference/Barack_Obama/obama.jpg",
        ),
        (
            "edge_format/Wen_Jiabao_0003_upscaled_3000px.jpg",
            "reference/Wen_Jiabao/Wen_Jiabao_0002.jpg",
        ),
    ] {
        let a = engine.analyze(&read(probe)).unwrap();
        let b = engine.analyze(&read(reference)).unwrap();
        let (fa, fb) = (a.face.expect(probe), b.face.expect(reference));
        let c = engine.compare(&fa.embedding, &fb.embedding);
        eprintln!("{probe}: distance {:.3} {:?}", c.distance, c.verdict);
        assert_ne!(
            c.verdict,
            Verdict::Different,
            "{probe} vs {reference}: {c:?}"
        );
        // EXIF orientation 6 means the stored pixels are sideways: upright faces have a
        // nearly level eye line.
        assert!(
            fa.quality.roll_deg.abs() < 20.0,
            "{probe}: roll {}",
            fa.quality.roll_deg
        );
    }
}

/// No clean photo of the evaluation sets is refused (false-refusal rate; aim below 1 %).
fn clean_photos_pass_the_quality_gate(kind: PackKind) {
    let engine = engine(kind);
    let (mut total, mut refused) = (0, Vec::new());
    for set in ["lfw_eastasian_dev", "lfw_fold1", "celeb5", "fr_examples"] {
        let root = common::faces_dir().join(set);
        let mut files: Vec<String> = std::fs::read_to_string(root.join("pairs.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .flat_map(|l| l.split(',').take(2).map(str::to_owned).collect::<Vec<_>>())
            .collect();
        files.sort();
        files.dedup();
        // Every 4th image keeps the test quick; `renzheng eval` covers every image.
        for f in files.iter().step_by(4) {
            let a = engine
                .analyze(&std::fs::read(root.join(f)).unwrap())
                .unwrap();
            total += 1;
            if a.outcome() == Outcome::QualityRefused {
                refused.push(format!("{set}/{f}: {:?}", a.face.map(|f| f.quality.issues)));
            }
        }
    }
    let rate = refused.len() as f64 / total as f64;
    eprintln!(
        "{kind}: clean photos refused: {}/{total} ({:.2} %)",
        refused.len(),
        rate * 100.0
    );
    assert!(rate < 0.01, "false refusals {rate}: {refused:?}");
}

/// Damaged files never panic or break the pipeline: every byte-level mutation of real
/// JPEG, PNG and WebP photos is either analysed or refused with a typed image error.
fn mutated_files_decode_or_fail_cleanly(kind: PackKind) {
    let files = [
        "reference/Hu_Jintao/Hu_Jintao_0002.jpg",
        "edge_format/obama2_rgba_32bit.png",
        "edge_format/Zhang_Ziyi_0003.webp",
        "edge_format/Yao_Ming_0003_cmyk.jpg",
    ];
    // A fixed-seed LCG keeps the test repeatable without a dependency.
    let mut state: u64 = 0x5eed_1234_abcd_0001;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    let (mut decoded, mut refused) = (0, 0);
    for f in files {
        let original = std::fs::read(common::faces_dir().join("bad_inputs").join(f)).unwrap();
        for round in 0..120 {
            let mut bytes = original.clone();
            match round % 3 {
                // Flip a few bytes anywhere (headers included).
                0 => {
                    for _ in 0..1 + next() % 8 {
                        let i = next() % bytes.len();
                        bytes[i] ^= (next() % 255 + 1) as u8;
                    }
                }
                // Cut the file short.
                1 => bytes.truncate(next() % bytes.len()),
                // Overwrite a run with garbage.
                _ => {
                    let start = next() % bytes.len();
                    let end = (start + 1 + next() % 64).min(bytes.len());
                    for b in &mut bytes[start..end] {
                        *b = next() as u8;
                    }
                }
            }
            // The whole pipeline, not just the decoder: whatever decodes is analysed.
            let outcome = std::panic::catch_unwind(|| engine(kind).analyze(&bytes));
            match outcome {
                Ok(Ok(_)) => decoded += 1,
                Ok(Err(EngineError::Image(_))) => refused += 1,
                Ok(Err(e)) => panic!("{f}: mutation round {round} is an engine failure: {e}"),
                Err(_) => panic!("{f}: the pipeline panicked on mutation round {round}"),
            }
        }
    }
    eprintln!("mutations: {decoded} decoded, {refused} refused with an image error");
    assert!(refused > 0);
}

/// Degenerate shapes (1×1, a 1-pixel line, a thin strip, a flat colour) go through the
/// whole pipeline without a panic and simply find no face.
fn odd_shapes_analyse_without_panic(kind: PackKind) {
    let engine = engine(kind);
    for (w, h) in [
        (1, 1),
        (1, 1000),
        (1000, 1),
        (3, 7),
        (9, 9),
        (40, 2000),
        (641, 5),
    ] {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([128, 90, 60]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let a = engine
            .analyze(&png)
            .unwrap_or_else(|e| panic!("{w}×{h}: {e}"));
        assert_eq!(a.outcome(), Outcome::NoFace, "{w}×{h}");
    }
}
