//! Test harness: a real server (real SQLite in a temp dir) on a free port, plus helpers to
//! call it.
//!
//! Two engines:
//! * [`spawn_app`] runs the real engine on the real photos of `../shared/faces` (needs the
//!   model pack): for everything the engine decides;
//! * [`spawn_test_app`] runs the deterministic colour engine of `renzheng_vision::testing`
//!   on generated photos: for authentication, validation, admin and operations, which
//!   need no model pack and no shared photos.
//!
//! Tests name photos by their shared path (`HU_SAME`…) and fetch them with
//! [`TestApp::photo`]; on the colour engine each such name stands for a generated photo
//! with the same role (the same person, another person, no face…).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use renzheng_app::settings::{LogFormat, Secret};
use renzheng_app::telemetry::{get_subscriber, init_subscriber};
use renzheng_app::testing::{solid_png, TestEngine};
use renzheng_app::Settings;
use renzheng_domain::{IdNumber, PersonName};
use renzheng_server::{AppState, Application};
use renzheng_store::{AppId, NewPortrait, Store};
use renzheng_vision::{Engine, EngineConfig, FaceEngine};
use serde_json::Value;

/// The admin token of every test app.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A registry person used by the tests.
#[derive(Debug, Clone, Copy)]
pub struct Person {
    /// Name in clear.
    pub name: &'static str,
    /// The first 17 characters of the ID number; the check character is computed.
    pub id17: &'static str,
    /// Portrait enrolled for them (relative to the faces folder), if any.
    pub portrait: Option<&'static str>,
}

impl Person {
    /// The full, valid 18-character ID number.
    pub fn id(&self) -> String {
        with_check_char(self.id17)
    }
}

/// Enrolled with a Hu Jintao portrait.
pub const HU: Person = Person {
    name: "胡锦涛",
    id17: "11010519421221001",
    portrait: Some("lfw_eastasian_dev/Hu_Jintao/Hu_Jintao_0004.jpg"),
};
/// Enrolled with a Jiang Zemin portrait.
pub const JIANG: Person = Person {
    name: "江泽民",
    id17: "31010419260817003",
    portrait: Some("lfw_eastasian_dev/Jiang_Zemin/Jiang_Zemin_0001.jpg"),
};
/// Enrolled without a portrait.
pub const NO_PHOTO: Person = Person {
    name: "王小明",
    id17: "33010619900307002",
    portrait: None,
};
/// Never enrolled.
pub const UNKNOWN: Person = Person {
    name: "李四",
    id17: "44030519850101005",
    portrait: None,
};
/// A minority name with a middle dot, enrolled with a portrait (for the admin tests).
pub const DOT_NAME: Person = Person {
    name: "买买提·艾力",
    id17: "65010219800101003",
    portrait: None,
};

/// Never enrolled: a child, born 2016-05-01 (under 14 until 2030-05-01), whose face
/// needs a guardian's consent on a consent or contract basis.
pub const CHILD: Person = Person {
    name: "张小雨",
    id17: "11010520160501002",
    portrait: None,
};

/// Everyone whose name or ID must never appear in clear in the logs.
pub const ALL_PEOPLE: [Person; 6] = [HU, JIANG, NO_PHOTO, UNKNOWN, DOT_NAME, CHILD];

/// Same person as [`HU`]'s portrait (distance ≈ 0.14 under dlib).
pub const HU_SAME: &str = "lfw_eastasian_dev/Hu_Jintao/Hu_Jintao_0008.jpg";
/// A photo in the "can't tell" band of [`JIANG`]'s portrait and clearly different from
/// [`HU`]'s, on the default (sface) pack: Li Peng, cosine 0.34 to Jiang Zemin (the band is
/// 0.28–0.45) and 0.21 to Hu Jintao. (On the dlib pack, Jiang Zemin's own 0003 photo plays
/// this role.)
pub const JIANG_OTHER: &str = "lfw_eastasian_dev/Li_Peng/Li_Peng_0007.jpg";
/// Someone enrolled by no test app at start: Wen Jiabao, for the tests that enrol a new
/// face (the registry refuses a face already enrolled under another ID number).
pub const WEN_PORTRAIT: &str = "lfw_eastasian_dev/Wen_Jiabao/Wen_Jiabao_0001.jpg";
/// Wen Jiabao in another photo: "same" as [`WEN_PORTRAIT`] on both packs.
pub const WEN_SAME: &str = "lfw_eastasian_dev/Wen_Jiabao/Wen_Jiabao_0002.jpg";
/// No face at all.
pub const NO_FACE: &str = "bad_inputs/no_face/skimage_horse.png";
/// A face, too dark (verified: the engine's quality gate says `too_dark`).
pub const TOO_DARK: &str = "bad_inputs/dark/Hu_Jintao_0001_x0.12_noise6.jpg";
/// A JPEG cut short.
pub const TRUNCATED: &str = "bad_inputs/corrupt/Zhu_Rongji_0003_truncated40pct.jpg";
/// Text named .jpg.
pub const TEXT_AS_JPG: &str = "bad_inputs/corrupt/text_named_jpg.jpg";

/// ISO 7064 MOD 11-2 check character of a 17-digit prefix.
pub fn with_check_char(id17: &str) -> String {
    let sum: u32 = id17
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * ((1u32 << (17 - i)) % 11))
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{id17}{check}")
}

/// The shared faces folder: `$RENZHENG_SHARED_DIR/faces`, else `<workspace>/../shared/faces`.
pub fn faces_dir() -> PathBuf {
    let shared = std::env::var_os("RENZHENG_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let faces = shared.join("faces");
    assert!(
        faces.is_dir(),
        "test photos not found at {}: set RENZHENG_SHARED_DIR to the shared folder",
        faces.display()
    );
    faces
}

/// A test photo's bytes.
pub fn photo(rel: &str) -> Vec<u8> {
    let path = faces_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Base64 of a test photo.
pub fn photo_b64(rel: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(photo(rel))
}

/// Everything logged by every app of this test binary (JSON lines).
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Writes log lines to [`LOGS`] (and to stdout with `TEST_LOG=1`).
#[derive(Clone, Copy)]
struct CaptureWriter;

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        if std::env::var_os("TEST_LOG").is_some() {
            std::io::stdout().write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The captured logs so far.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

fn init_logging() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        // Debug level for our crates so that the PII check sees everything we log.
        let subscriber = get_subscriber(
            "info,renzheng_server=debug,renzheng_store=debug",
            LogFormat::Json,
            || CaptureWriter,
        );
        init_subscriber(subscriber).expect("installing the test subscriber");
    });
}

/// The real engine, loaded once per test binary (one ONNX Runtime environment per process).
pub fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let config = EngineConfig::default();
            match Engine::open(&config) {
                Ok(engine) => Arc::new(engine),
                Err(e) => panic!(
                    "the face engine cannot load its model pack from {}: {e}. Run `renzheng models install` (or set RENZHENG_MODELS_DIR to an installed pack).",
                    config.resolved_pack_dir().display()
                ),
            }
        })
        .clone()
}

/// A portrait embedding per photo, computed once by the real engine.
pub fn portrait_of(rel: &'static str) -> NewPortrait {
    static CACHE: OnceLock<Mutex<HashMap<&'static str, NewPortrait>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(p) = cache.lock().unwrap().get(rel) {
        return p.clone();
    }
    let engine = engine();
    let analysis = engine
        .analyze(&photo(rel))
        .unwrap_or_else(|e| panic!("enrolling {rel}: {e}"));
    let face = analysis
        .face
        .unwrap_or_else(|| panic!("enrolling {rel}: no face"));
    let portrait = NewPortrait {
        model_id: engine.model_id().to_owned(),
        embedding: face.embedding.0,
        quality: None,
        photo: None,
    };
    cache.lock().unwrap().insert(rel, portrait.clone());
    portrait
}

/// Colours of the colour engine's people (see `renzheng_vision::testing`).
const HU_RGB: [u8; 3] = [200, 40, 40];
const JIANG_RGB: [u8; 3] = [40, 60, 200];
/// Distance ≈ 0.55 from JIANG_RGB: "can't tell", as the real JIANG_OTHER is.
const JIANG_OTHER_RGB: [u8; 3] = [40, 200, 200];
/// Far from both: a third person.
const WEN_RGB: [u8; 3] = [40, 200, 60];

/// The generated photo that plays the role of the shared photo `rel` on the colour engine.
pub fn colour_photo(rel: &str) -> Vec<u8> {
    let hu = HU.portrait.unwrap();
    let jiang = JIANG.portrait.unwrap();
    match rel {
        r if r == hu => solid_png(HU_RGB, 64),
        // The same person in another photo: same colour, another size.
        HU_SAME => solid_png(HU_RGB, 48),
        r if r == jiang => solid_png(JIANG_RGB, 64),
        JIANG_OTHER => solid_png(JIANG_OTHER_RGB, 64),
        WEN_PORTRAIT => solid_png(WEN_RGB, 64),
        WEN_SAME => solid_png(WEN_RGB, 48),
        NO_FACE => solid_png([0, 0, 0], 64),
        // The colour engine's quality refusal is over-exposure, not darkness.
        TOO_DARK => solid_png([255, 255, 255], 64),
        TRUNCATED => {
            let png = solid_png(HU_RGB, 64);
            png[..png.len() * 6 / 10].to_vec()
        }
        TEXT_AS_JPG => b"This is a text file that was named .jpg by mistake.\n".to_vec(),
        other => panic!("no colour stand-in for {other}: use spawn_app() for it"),
    }
}

/// Which engine a test application runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// The real model pack, real photos.
    Real,
    /// The deterministic colour engine, generated photos.
    Colour,
}

/// A running test application.
pub struct TestApp {
    /// Its engine.
    pub engine: EngineKind,
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The AppCode of an enabled app with a million calls.
    pub app_code: String,
    /// Its id.
    pub app_id: String,
    /// Its AppKey.
    pub app_key: String,
    /// Its AppSecret.
    pub app_secret: String,
    /// The store behind the server.
    pub store: Arc<dyn Store>,
    /// The server's state (gate, settings…).
    pub state: AppState,
    /// An HTTP client.
    pub client: reqwest::Client,
    _data_dir: tempfile::TempDir,
}

/// Starts an app on the real engine with the test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts an app on the real engine with the test settings adjusted by `configure`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let engine = engine();
    let config = engine.config().clone();
    start(EngineKind::Real, engine, config, configure).await
}

/// Starts an app on the colour engine (no model pack, no shared photos).
pub async fn spawn_test_app() -> TestApp {
    spawn_test_app_with(|_| {}).await
}

/// Starts an app on the colour engine with the test settings adjusted by `configure`.
pub async fn spawn_test_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let engine = Arc::new(TestEngine::new());
    start(
        EngineKind::Colour,
        engine,
        EngineConfig::new("/nonexistent/no-pack-needed"),
        configure,
    )
    .await
}

async fn start(
    kind: EngineKind,
    engine: Arc<dyn FaceEngine>,
    engine_config: EngineConfig,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    init_logging();
    let data_dir = tempfile::tempdir().expect("temporary data directory");
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: data_dir.path().join("data"),
        key_dir: Some(data_dir.path().join("keys")),
        admin_token: Some(Secret::new(ADMIN_TOKEN)),
        ..Settings::default()
    };
    settings.engine = engine_config;
    settings.img_url.allow = vec!["127.0.0.1/32".parse().unwrap()];
    settings.img_url.timeout_ms = 1_500;
    // Tests check the same few people many times; the limit has its own tests.
    settings.limits.per_id_per_minute = 0;
    settings.limits.per_id_per_day = 0;
    configure(&mut settings);

    let app = Application::build_with_engine(settings, engine.clone())
        .await
        .expect("building the application");
    let address = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let store = state.app.store().clone();

    let created = state
        .app
        .create_app(
            &renzheng_app::Actor::Cli,
            &renzheng_app::AppName::parse("test app").unwrap(),
        )
        .await
        .expect("creating the test app");
    // Enough calls for any test that is not about quota.
    state
        .app
        .grant(
            &renzheng_app::Actor::Cli,
            &AppId::from(created.app_id.clone()),
            renzheng_app::GrantRequest {
                calls: Some(1_000_000),
                ..Default::default()
            },
        )
        .await
        .expect("granting the test app its calls");
    for person in [HU, JIANG, NO_PHOTO] {
        let id = IdNumber::parse(&person.id()).expect("test ID numbers are valid");
        let name = PersonName::parse(person.name).expect("test names are valid");
        let portraits: Vec<NewPortrait> = match kind {
            EngineKind::Real => person.portrait.into_iter().map(portrait_of).collect(),
            EngineKind::Colour => person
                .portrait
                .map(|rel| {
                    let analysis = engine.analyze(&colour_photo(rel)).expect("colour photo");
                    NewPortrait {
                        model_id: engine.model_id().to_owned(),
                        embedding: analysis.face.expect("a colour face").embedding.0,
                        quality: None,
                        photo: None,
                    }
                })
                .into_iter()
                .collect(),
        };
        // Enrolled as an operator would be: with a legal basis on record.
        let basis = renzheng_store::BasisRecord {
            basis: renzheng_domain::LegalBasis::new(
                renzheng_domain::BasisKind::Consent,
                renzheng_domain::Reference::parse("CF-2026-0000", "consentRef").unwrap(),
                None,
            ),
            purpose: renzheng_domain::Reference::parse("identity verification", "purpose").unwrap(),
            recorded_at: state.app.now_ms(),
            actor: "cli".into(),
        };
        store
            .enrol_with_basis(
                &id,
                &name,
                portraits,
                Some(&basis),
                None,
                state.app.now_ms(),
            )
            .await
            .expect("enrolling");
    }

    tokio::spawn(app.run_until_stopped());
    TestApp {
        engine: kind,
        address,
        app_code: created.app_code,
        app_id: created.app_id,
        app_key: created.app_key,
        app_secret: created.app_secret,
        store,
        state,
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        _data_dir: data_dir,
    }
}

impl TestApp {
    /// The photo playing the role of the shared photo `rel` on this app's engine.
    pub fn photo(&self, rel: &str) -> Vec<u8> {
        match self.engine {
            EngineKind::Real => photo(rel),
            EngineKind::Colour => colour_photo(rel),
        }
    }

    /// [`photo`](Self::photo), base64-encoded.
    pub fn photo_b64(&self, rel: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.photo(rel))
    }

    /// The model id of this app's engine.
    pub fn model_id(&self) -> String {
        self.state
            .app
            .loaded_engine()
            .expect("the server loads its engine at start-up")
            .model_id()
            .to_owned()
    }

    /// A request to `path` on this app.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
    }

    /// POST /faceidcard/check with a JSON body and the app's AppCode.
    pub async fn check_json(&self, body: &Value) -> reqwest::Response {
        self.request(reqwest::Method::POST, "/faceidcard/check")
            .header("Authorization", format!("APPCODE {}", self.app_code))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// POST /faceidcard/check with a form body and the app's AppCode.
    pub async fn check_form(&self, fields: &[(&str, &str)]) -> reqwest::Response {
        let body: String = url_encode(fields);
        self.request(reqwest::Method::POST, "/faceidcard/check")
            .header("Authorization", format!("APPCODE {}", self.app_code))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// A check of `person` with the photo at `rel`, expecting a 200; returns `data`.
    pub async fn check_result(&self, person: Person, rel: &str) -> Value {
        let response = self
            .check_json(&serde_json::json!({"name": person.name, "idCard": person.id(), "image": self.photo_b64(rel)}))
            .await;
        let (status, body) = status_and_body(response).await;
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    }

    /// An admin request with the bearer token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.request(method, path).bearer_auth(ADMIN_TOKEN)
    }
}

/// `application/x-www-form-urlencoded` encoding.
pub fn url_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", percent(k), percent(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Status and JSON body; also checks the invariants of every response: the request id
/// header equals `taskNo`, and errors carry the gateway headers and `success: false`.
pub async fn status_and_body(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    let request_id = headers
        .get("x-ca-request-id")
        .expect("X-Ca-Request-Id on every response")
        .to_str()
        .unwrap();
    assert_eq!(
        body["taskNo"], request_id,
        "taskNo must equal X-Ca-Request-Id"
    );
    assert_eq!(body["code"], status);
    if status == 200 || status == 201 {
        assert_eq!(body["success"], true);
        assert_eq!(body["msg"], "成功");
    } else {
        assert_eq!(body["success"], false, "{body}");
        assert!(
            headers.contains_key("x-ca-error-code"),
            "X-Ca-Error-Code on errors"
        );
        assert!(
            headers.contains_key("x-ca-error-message"),
            "X-Ca-Error-Message on errors"
        );
    }
    (status, body)
}

/// Status, JSON body and the `X-Ca-Error-Code` header.
pub async fn error_of(response: reqwest::Response) -> (u16, String, String) {
    let code = response
        .headers()
        .get("x-ca-error-code")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let (status, body) = status_and_body(response).await;
    (
        status,
        code,
        body["msg"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Signs a request with the independent implementation (`tools/ca_signature.py`):
/// `{method, path, query, headers: [[name, value]], body, secret}` in, `{signature,
/// content_md5, string_to_sign}` out.
pub fn python_sign(request: &Value) -> Value {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/ca_signature.py");
    let python = std::env::var("RENZHENG_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = std::process::Command::new(python)
        .arg(script)
        .arg("--sign")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs tools/ca_signature.py");
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        request.to_string().as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}
