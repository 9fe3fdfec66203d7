//! The registry at scale, through the application (real SQLite, sealed templates, the
//! in-memory index): how long a node takes to read every template at start, what one
//! guarded enrolment costs in a large registry (warm, as on a server, and cold, as a CLI
//! `registry add` that opens the database first), a full duplicate scan and, with
//! `--rotate`, a rotation of the template key (every person's identity, lookup hashes and
//! template re-sealed, as `renzheng keys rotate template` does).
//!
//! ```sh
//! cargo bench -p renzheng-app --bench registry_scale -- 100000
//! cargo bench -p renzheng-app --bench registry_scale -- 1000000 --skip-scan
//! cargo bench -p renzheng-app --bench registry_scale -- 10000 --skip-scan --rotate
//! createdb renzheng_bench && cargo bench -p renzheng-app --bench registry_scale -- 10000 \
//!     --skip-scan --rotate --database-url postgres://postgres@127.0.0.1:5432/renzheng_bench
//! ```
//!
//! (`--skip-scan`: a full scan of a million templates takes hours on one core.
//! `--database-url`: PostgreSQL instead of SQLite; the database must be empty, and is
//! left filled.)
//!
//! Templates are synthetic: 128-D Gaussian vectors normalised to unit length, one
//! portrait per person, of the colour test engine's model (so that the engine needs no
//! model pack); the new enrolments are colour photos, which are far from every stored
//! template. What is measured is the storage, the index and the search, not a face
//! model. The database is filled directly through the store (one transaction per
//! person, as an import writes), which takes a while at 100,000 persons.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use renzheng_app::keys::KeyName;
use renzheng_app::settings::Secret;
use renzheng_app::{Actor, App, EngineSource, EnrolFields, EnrolRequest, Settings};
use renzheng_domain::{IdNumber, PersonName};
use renzheng_store::NewPortrait;
use renzheng_vision::testing::{solid_png, TestEngine};
use renzheng_vision::FaceEngine;

const DIM: usize = 128;
const ENROLMENTS: usize = 20;

/// A valid 18-character ID number for person `n` (region 110105, birth 1980-01-01 +
/// n / 1000 days, sequence n % 1000).
fn id_number(n: usize) -> IdNumber {
    let day = time::Date::from_calendar_date(1950, time::Month::January, 1).unwrap()
        + time::Duration::days((n / 1000) as i64);
    let body = format!(
        "110105{:04}{:02}{:02}{:03}",
        day.year(),
        u8::from(day.month()),
        day.day(),
        n % 1000
    );
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    IdNumber::parse(&format!("{body}{check}")).expect("a generated ID number is valid")
}

fn template(rng: &mut rand::rngs::StdRng) -> Vec<f32> {
    let mut v: Vec<f32> = (0..DIM)
        .map(|_| {
            // Box–Muller: a Gaussian from two uniforms.
            let (u, w): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * w).cos()) as f32
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// Opens the app on SQLite in `dir` (keys in `dir` too), or on the PostgreSQL database
/// `url` with the keys a node of several is given (the next template key included, so
/// that a rotation has somewhere to go).
async fn open(dir: &std::path::Path, url: Option<&str>) -> App {
    let settings = match url {
        None => Settings {
            data_dir: dir.join("data"),
            key_dir: Some(dir.join("keys")),
            ..Settings::default()
        },
        Some(url) => Settings {
            data_dir: dir.join("data"),
            database_url: Some(Secret::new(url)),
            audit_key: Some(Secret::new("44".repeat(32))),
            template_key: Some(Secret::new("11".repeat(32))),
            next_template_key: Some(Secret::new("33".repeat(32))),
            secrets_key: Some(Secret::new("22".repeat(32))),
            ..Settings::default()
        },
    };
    App::open(settings, EngineSource::Ready(Arc::new(TestEngine::new())))
        .await
        .expect("opening the app")
}

fn enrolment(n: usize, rgb: [u8; 3]) -> EnrolRequest {
    EnrolRequest::parse(EnrolFields {
        name: Some("测试".into()),
        id_card: Some(id_number(n).as_str().to_owned()),
        photos: vec![solid_png(rgb, 32)],
        basis: renzheng_domain::BasisFields {
            basis: Some("consent".into()),
            consent_ref: Some("bench".into()),
            ..Default::default()
        },
        ..EnrolFields::default()
    })
    .expect("a valid enrolment")
}

/// The `i`-th of 27 colours at least 0.35 apart (in the colour engine's units), so that
/// no two new enrolments are one face.
fn colour(i: usize) -> [u8; 3] {
    const LEVELS: [u8; 3] = [40, 140, 230];
    [LEVELS[i % 3], LEVELS[(i / 3) % 3], LEVELS[(i / 9) % 3]]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let persons: usize = std::env::args()
        .skip(1)
        .find(|a| a.chars().all(|c| c.is_ascii_digit()))
        .map_or(100_000, |a| a.parse().expect("the number of persons"));
    let args: Vec<String> = std::env::args().collect();
    let scan = !args.iter().any(|a| a == "--skip-scan");
    let rotate = args.iter().any(|a| a == "--rotate");
    let url = args
        .iter()
        .position(|a| a == "--database-url")
        .map(|i| args.get(i + 1).expect("--database-url URL").clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(persons, scan, rotate, url.as_deref()));
}

async fn run(persons: usize, full_scan: bool, rotate: bool, url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let model = TestEngine::new().model_id().to_owned();
    let mut rng = rand::rngs::StdRng::seed_from_u64(19);
    let name = PersonName::parse("测试").unwrap();

    let app = open(dir.path(), url).await;
    let started = Instant::now();
    for n in 0..persons {
        let portrait = NewPortrait {
            model_id: model.clone(),
            embedding: template(&mut rng),
            quality: None,
            photo: None,
        };
        app.store()
            .enrol(&id_number(n), &name, vec![portrait], None, n as i64)
            .await
            .expect("filling the registry");
    }
    let fill = started.elapsed();
    app.close().await;

    // A node starting: open the database, read and index every template.
    let started = Instant::now();
    let app = open(dir.path(), url).await;
    let stats = app.warm_template_index().await.unwrap();
    let start_up = started.elapsed();
    assert_eq!(stats.templates, persons);

    // Warm enrolments (a server): refresh from the log, search, exact re-score, write.
    let mut warm = Vec::with_capacity(ENROLMENTS);
    for i in 0..ENROLMENTS {
        let request = enrolment(persons + i, colour(i));
        let started = Instant::now();
        app.enrol(&Actor::Cli, request).await.expect("enrolling");
        warm.push(started.elapsed());
    }
    warm.sort();

    // The compliance status (what `/metrics` and the console's about page read): the
    // persons with face data counted, the filing line compared.
    // The first call past the line also dates it; the second is what a scrape costs.
    let started = Instant::now();
    let status = app.compliance_status().await.unwrap();
    let compliance_first = started.elapsed();
    assert_eq!(status.persons_with_face_data as usize, persons + ENROLMENTS);
    let started = Instant::now();
    app.compliance_status().await.unwrap();
    let compliance = started.elapsed();

    // A full duplicate scan.
    let started = Instant::now();
    let report = if full_scan {
        Some(
            app.duplicate_report(&Actor::Cli, None, |_| {})
                .await
                .unwrap(),
        )
    } else {
        None
    };
    let scan = started.elapsed();

    // A rotation of the template key while nothing else runs (grace 0: one node).
    let rotation = if rotate {
        Some(
            app.rotate_key(KeyName::Template, Duration::ZERO, &|_| {})
                .await
                .expect("rotating the template key"),
        )
    } else {
        None
    };
    app.close().await;

    // A CLI `registry add`: open, build the index, enrol, close.
    let started = Instant::now();
    let app = open(dir.path(), url).await;
    app.enrol(
        &Actor::Cli,
        enrolment(persons + ENROLMENTS, colour(ENROLMENTS)),
    )
    .await
    .expect("enrolling");
    app.close().await;
    let cold = started.elapsed();

    let p = |q: f64| ms(warm[((warm.len() - 1) as f64 * q).round() as usize]);
    let backend = if url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!("registry_scale: {persons} persons, one {DIM}-D template each ({backend})");
    println!(
        "  fill (one transaction per person)  {:>9.1} s",
        fill.as_secs_f64()
    );
    println!(
        "  start-up: open + index build       {:>9.1} ms",
        ms(start_up)
    );
    println!(
        "  index memory                       {:>9.1} MB",
        stats.memory_bytes as f64 / 1e6
    );
    println!(
        "  guarded enrolment, warm p50 / max  {:>9.1} / {:.1} ms",
        p(0.5),
        p(1.0)
    );
    println!("  CLI registry add, cold             {:>9.1} ms", ms(cold));
    println!(
        "  compliance status, first / again   {:>9.1} / {:.1} ms",
        ms(compliance_first),
        ms(compliance)
    );
    if let Some(report) = &report {
        println!(
            "  duplicate scan                     {:>9.1} s ({} templates, {} persons, line {:.3})",
            scan.as_secs_f64(),
            report.templates,
            report.persons,
            report.line_distance
        );
    }
    if let Some(rotation) = &rotation {
        println!(
            "  template-key rotation              {:>9.1} s ({} persons, {} templates; {:.1} s per 10,000 persons)",
            rotation.seconds,
            rotation.persons,
            rotation.templates,
            rotation.seconds * 10_000.0 / rotation.persons.max(1) as f64
        );
    }
    println!(
        "{{\"backend\":\"{backend}\",\"persons\":{persons},\"fill_s\":{:.1},\"start_up_ms\":{:.1},\"index_bytes\":{},\"enrol_warm_p50_ms\":{:.1},\"enrol_warm_max_ms\":{:.1},\"cli_add_cold_ms\":{:.1},\"compliance_status_ms\":{:.1},\"duplicate_scan_s\":{:.1},\"rotation_s\":{}}}",
        fill.as_secs_f64(),
        ms(start_up),
        stats.memory_bytes,
        p(0.5),
        p(1.0),
        ms(cold),
        ms(compliance),
        scan.as_secs_f64(),
        rotation.map_or("null".to_owned(), |r| format!("{:.1}", r.seconds))
    );
}
