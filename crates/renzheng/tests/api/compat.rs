//! Compatibility with the clients people already have: the API gateway's own demos and
//! SDK, run as separate programs against the real server (`tests/compat/`,
//! `docs/compatibility.md`).
//!
//! * Java, JDK only, signing as Alibaba's `api-gateway-demo-sign-java` does: a timestamp
//!   and no nonce, `Content-MD5`, HmacSHA256, JSON (`application/json; charset=UTF-8`)
//!   and form;
//! * Python, standard library only, signing as `api-gateway-demo-sign-python` does: JSON
//!   as `application/octet-stream` (its only JSON mode), form, and HmacSHA1;
//! * the npm package `aliyun-api-gateway` itself (pinned in `tests/compat/node`): its
//!   signed `Client` (JSON and form) and its AppCode `SimpleClient`.
//!
//! Each client makes billed calls (a 200 of any result is charged once) and refused ones
//! (never charged); every expectation of a test is checked and the failures listed
//! together, so that one run says everything that differs.
//!
//! The toolchains come from `scripts/compat-setup.sh`. Without them a test prints
//! "skipped: run scripts/compat-setup.sh" and passes, unless `RENZHENG_COMPAT_REQUIRED=1`
//! (as `scripts/test.sh` sets), which makes anything missing a failure.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn compat_dir() -> PathBuf {
    root().join("tests/compat")
}

fn python() -> String {
    std::env::var("RENZHENG_COMPAT_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".to_owned())
}

/// Whether a missing toolchain is a failure (`RENZHENG_COMPAT_REQUIRED=1`).
fn required() -> bool {
    std::env::var("RENZHENG_COMPAT_REQUIRED").is_ok_and(|v| v == "1")
}

fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[derive(Debug, Clone, Copy)]
enum Toolchain {
    Java,
    Python,
    Node,
}

impl Toolchain {
    /// What is missing for this client, if anything.
    fn missing(self) -> Option<String> {
        match self {
            Toolchain::Java => (!runs("javac", "-version") || !runs("java", "-version"))
                .then(|| "javac and java (JDK 11 or later) are not on PATH".to_owned()),
            Toolchain::Python => {
                let python = python();
                (!runs(&python, "--version")).then(|| format!("{python} does not run"))
            }
            Toolchain::Node => {
                if !runs("node", "--version") {
                    Some("node is not on PATH".to_owned())
                } else if !compat_dir()
                    .join("node/node_modules/aliyun-api-gateway/package.json")
                    .is_file()
                {
                    Some("tests/compat/node/node_modules is not installed (npm ci)".to_owned())
                } else {
                    None
                }
            }
        }
    }

    /// Whether the client can run; skips (or, when required, fails) saying why not.
    fn available(self) -> bool {
        match self.missing() {
            None => true,
            Some(what) if required() => panic!(
                "compatibility client {self:?}: {what}; RENZHENG_COMPAT_REQUIRED=1, so this \
                 fails: run scripts/compat-setup.sh"
            ),
            Some(what) => {
                println!("skipped: run scripts/compat-setup.sh ({self:?}: {what})");
                false
            }
        }
    }
}

/// The Java client, compiled once per test run into the target directory.
fn java_classes() -> PathBuf {
    static CLASSES: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    CLASSES
        .get_or_init(|| {
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compat-java");
            std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
            let compiled = Command::new("javac")
                .arg("-encoding")
                .arg("UTF-8")
                .arg("-d")
                .arg(&out)
                .arg(compat_dir().join("java/GatewayClient.java"))
                .output()
                .map_err(|e| format!("javac: {e}"))?;
            if compiled.status.success() {
                Ok(out)
            } else {
                Err(String::from_utf8_lossy(&compiled.stderr).into_owned())
            }
        })
        .clone()
        .unwrap_or_else(|e| panic!("tests/compat/java does not compile:\n{e}"))
}

/// The fields of a check that the colour engine answers with result 1.
struct Fields {
    name: String,
    id_card: String,
    image: String,
}

impl Fields {
    fn same_person(app: &TestApp) -> Self {
        Fields {
            name: HU.name.to_owned(),
            id_card: HU.id(),
            image: app.photo_b64(HU_SAME),
        }
    }
}

/// One response as a client saw it.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// Lower-case names.
    headers: serde_json::Map<String, Value>,
    /// The body, parsed (`Null` when it is not JSON).
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(Value::as_str)
    }

    /// `X-Ca-Error-Message`, else the envelope's `msg`: what a refusal says.
    fn reason(&self) -> String {
        self.header("x-ca-error-message")
            .map(str::to_owned)
            .or_else(|| self.body["msg"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// What a client printed: its name, its own string-to-sign, its responses.
#[derive(Debug)]
struct Run {
    client: String,
    string_to_sign: Option<String>,
    answers: Vec<Answer>,
}

/// Runs a client program (`argv[0]` and its arguments) with the check's fields in its
/// environment; `repeat` sends the same signed request that many times.
async fn run_client(argv: Vec<String>, fields: &Fields, repeat: u32) -> Run {
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .current_dir(compat_dir())
        .env("RZ_NAME", &fields.name)
        .env("RZ_ID_CARD", &fields.id_card)
        .env("RZ_IMAGE", &fields.image)
        .env("RZ_REPEAT", repeat.to_string())
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("NODE_DEBUG")
        .env_remove("DEBUG");
    // The server runs on this test's runtime: the client must not block it.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the client's thread")
        .unwrap_or_else(|e| panic!("running {argv:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the client failed ({}):\n{}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("the client printed no JSON ({e}): {stdout}"));
    let answers = printed["responses"]
        .as_array()
        .expect("responses")
        .iter()
        .map(|r| Answer {
            status: u16::try_from(r["status"].as_u64().expect("status")).expect("a status"),
            headers: r["headers"]
                .as_object()
                .expect("headers")
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
            body: r["body"]
                .as_str()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or(Value::Null),
        })
        .collect();
    Run {
        client: printed["client"].as_str().unwrap_or_default().to_owned(),
        string_to_sign: printed["string_to_sign"].as_str().map(str::to_owned),
        answers,
    }
}

async fn java(
    app: &TestApp,
    key: &str,
    secret: &str,
    mode: &str,
    fields: &Fields,
    repeat: u32,
) -> Run {
    let classes = java_classes();
    let argv = vec![
        "java".to_owned(),
        "-Dfile.encoding=UTF-8".to_owned(),
        "-cp".to_owned(),
        classes.display().to_string(),
        "GatewayClient".to_owned(),
        app.address.clone(),
        key.to_owned(),
        secret.to_owned(),
        mode.to_owned(),
    ];
    run_client(argv, fields, repeat).await
}

async fn python_client(
    app: &TestApp,
    key: &str,
    secret: &str,
    mode: &str,
    method: &str,
    fields: &Fields,
    repeat: u32,
) -> Run {
    let argv = vec![
        python(),
        compat_dir()
            .join("python/gateway_client.py")
            .display()
            .to_string(),
        app.address.clone(),
        key.to_owned(),
        secret.to_owned(),
        mode.to_owned(),
        method.to_owned(),
    ];
    run_client(argv, fields, repeat).await
}

async fn node(app: &TestApp, key: &str, secret: &str, mode: &str, fields: &Fields) -> Run {
    let argv = vec![
        "node".to_owned(),
        compat_dir().join("node/client.js").display().to_string(),
        app.address.clone(),
        key.to_owned(),
        secret.to_owned(),
        mode.to_owned(),
    ];
    let mut run = run_client(argv, fields, 1).await;
    run.client = format!("{} ({mode})", run.client);
    run
}

/// The only answer of `run`.
fn one(run: &Run) -> &Answer {
    assert_eq!(
        run.answers.len(),
        1,
        "{}: one response expected",
        run.client
    );
    &run.answers[0]
}

/// The expectations of one test, all checked, failures reported together.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn fail(&mut self, what: String) {
        self.0.push(what);
    }

    fn eq<T: PartialEq + Debug>(&mut self, what: &str, got: T, want: T) {
        if got != want {
            self.fail(format!("{what}: got {got:?}, want {want:?}"));
        }
    }

    /// A charged 200 with `result`.
    fn answered(&mut self, label: &str, a: &Answer, result: i64) {
        if a.status != 200 {
            self.fail(format!(
                "{label}: status {} ({}), want 200 with result {result}",
                a.status,
                a.reason()
            ));
            return;
        }
        self.eq(
            &format!("{label}: data.result"),
            &a.body["data"]["result"],
            &json!(result),
        );
        self.eq(
            &format!("{label}: data.charged"),
            &a.body["data"]["charged"],
            &json!(1),
        );
        self.eq(
            &format!("{label}: taskNo = X-Ca-Request-Id"),
            a.body["taskNo"].as_str(),
            a.header("x-ca-request-id"),
        );
    }

    /// A refusal with `status` whose `X-Ca-Error-Message`, percent-decoded, is accepted by
    /// `message` (described by `want`); the header itself must be ASCII.
    fn refused_with(
        &mut self,
        label: &str,
        a: &Answer,
        status: u16,
        want: &str,
        message: impl Fn(&str) -> bool,
    ) {
        let Some(header) = a.header("x-ca-error-message") else {
            self.fail(format!(
                "{label}: status {}, no X-Ca-Error-Message (want {status} {want})",
                a.status
            ));
            return;
        };
        let decoded = percent_decode(header);
        if a.status != status || !message(&decoded) {
            self.fail(format!(
                "{label}: {} `{}`, want {status} `{want}`",
                a.status,
                shorten(&decoded)
            ));
        }
        if !header.is_ascii() {
            self.fail(format!(
                "{label}: X-Ca-Error-Message is not ASCII (non-ASCII must be percent-encoded \
                 UTF-8): `{}`",
                shorten(header)
            ));
        }
        self.eq(
            &format!("{label}: success"),
            &a.body["success"],
            &json!(false),
        );
        if a.header("x-ca-error-code").is_none() {
            self.fail(format!("{label}: no X-Ca-Error-Code"));
        }
    }

    fn refused(&mut self, label: &str, a: &Answer, status: u16, message: &str) {
        self.refused_with(label, a, status, message, |m| m == message);
    }

    /// Refused with the server's string-to-sign, which must be the client's own (the
    /// signature was wrong, not the string).
    fn invalid_signature(&mut self, label: &str, run: &Run) {
        let a = one(run);
        match &run.string_to_sign {
            Some(sts) => {
                let want = format!(
                    "Invalid Signature, Server StringToSign:`{}`",
                    sts.replace('\n', "#")
                );
                self.refused(label, a, 400, &want);
            }
            None => self.refused_with(
                label,
                a,
                400,
                "Invalid Signature, Server StringToSign:`POST#…/faceidcard/check`",
                |m| {
                    m.starts_with("Invalid Signature, Server StringToSign:`POST#")
                        && m.ends_with("#/faceidcard/check`")
                },
            ),
        }
    }

    fn finish(self, suite: &str) {
        assert!(
            self.0.is_empty(),
            "{suite}: {} expectation(s) not met:\n  - {}",
            self.0.len(),
            self.0.join("\n  - ")
        );
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// `%XX` to bytes, as UTF-8; anything else as it is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A new app with `calls` granted: `(id, code, key, secret)`.
async fn new_app(app: &TestApp, calls: i64) -> (String, String, String, String) {
    crate::metering::new_app(app, Some(calls)).await
}

/// `(remaining, charged)` of an app.
async fn balance(app: &TestApp, id: &str) -> (i64, i64) {
    let b = crate::metering::balance(app, id).await;
    (
        b["remaining"].as_i64().unwrap(),
        b["charged"].as_i64().unwrap(),
    )
}

async fn disable(app: &TestApp, id: &str) {
    let response = app
        .admin(Method::POST, &format!("/admin/apps/{id}/disable"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// The Java demo's way: timestamp, no nonce, Content-MD5, HmacSHA256, `X-Ca-Key,
/// X-Ca-Timestamp` signed as spelled.
#[tokio::test]
async fn java_demo_signing_timestamp_without_nonce() {
    if !Toolchain::Java.available() {
        return;
    }
    let app = spawn_test_app().await;
    let (id, _, key, secret) = new_app(&app, 10).await;
    let fields = Fields::same_person(&app);
    let mut f = Findings::default();

    // JSON, sent twice as signed: charged once, then a replay (no nonce: the signature is
    // what is seen again).
    let run = java(&app, &key, &secret, "json", &fields, 2).await;
    assert_eq!(run.answers.len(), 2);
    f.answered("java json", &run.answers[0], 1);
    f.refused(
        "java json, the same request again",
        &run.answers[1],
        400,
        "Nonce Used",
    );
    let run = java(&app, &key, &secret, "form", &fields, 1).await;
    f.answered("java form", one(&run), 1);
    let run = java(&app, &key, "not-the-secret", "json", &fields, 1).await;
    f.invalid_signature("java json, wrong secret", &run);
    let run = java(&app, &key, "not-the-secret", "form", &fields, 1).await;
    f.invalid_signature("java form, wrong secret", &run);
    let run = java(&app, "no-such-app-key", &secret, "json", &fields, 1).await;
    f.refused("java, unknown AppKey", one(&run), 400, "Invalid AppKey");
    f.eq(
        "balance after java (remaining, charged)",
        balance(&app, &id).await,
        (8, 2),
    );

    // An app that may not call is refused as by APPCODE, and nothing is charged.
    disable(&app, &id).await;
    let run = java(&app, &key, &secret, "json", &fields, 1).await;
    f.refused("java, disabled app", one(&run), 403, "Unauthorized");
    f.eq(
        "balance after the disabled app's call",
        balance(&app, &id).await,
        (8, 2),
    );
    f.finish("Java (api-gateway-demo-sign-java style)");
}

/// The Python demo's way: JSON as application/octet-stream with Content-MD5, form,
/// a nonce; HmacSHA256 by default and HmacSHA1 on request.
#[tokio::test]
async fn python_demo_signing_stream_json_form_and_hmac_sha1() {
    if !Toolchain::Python.available() {
        return;
    }
    let app = spawn_test_app().await;
    let (id, _, key, secret) = new_app(&app, 10).await;
    let fields = Fields::same_person(&app);
    let mut f = Findings::default();

    let run = python_client(&app, &key, &secret, "stream", "HmacSHA256", &fields, 1).await;
    f.answered(
        "python stream JSON (application/octet-stream)",
        one(&run),
        1,
    );
    let run = python_client(&app, &key, &secret, "form", "HmacSHA1", &fields, 2).await;
    assert_eq!(run.answers.len(), 2);
    f.answered("python form, HmacSHA1", &run.answers[0], 1);
    f.refused(
        "python form, the same nonce again",
        &run.answers[1],
        400,
        "Nonce Used",
    );
    let run = python_client(&app, &key, &secret, "stream", "HmacSHA1", &fields, 1).await;
    f.answered("python stream JSON, HmacSHA1", one(&run), 1);
    // The form's fields are in the echoed string-to-sign: the name is Chinese, so the
    // header carries it percent-encoded.
    let run = python_client(
        &app,
        &key,
        "not-the-secret",
        "form",
        "HmacSHA256",
        &fields,
        1,
    )
    .await;
    f.invalid_signature("python form, wrong secret", &run);
    let run = python_client(
        &app,
        &key,
        "not-the-secret",
        "stream",
        "HmacSHA1",
        &fields,
        1,
    )
    .await;
    f.invalid_signature("python stream, HmacSHA1, wrong secret", &run);
    let run = python_client(
        &app,
        "no-such-app-key",
        &secret,
        "form",
        "HmacSHA256",
        &fields,
        1,
    )
    .await;
    f.refused("python, unknown AppKey", one(&run), 400, "Invalid AppKey");
    f.eq(
        "balance after python (remaining, charged)",
        balance(&app, &id).await,
        (7, 3),
    );

    disable(&app, &id).await;
    let run = python_client(&app, &key, &secret, "form", "HmacSHA256", &fields, 1).await;
    f.refused("python, disabled app", one(&run), 403, "Unauthorized");
    f.eq(
        "balance after the disabled app's call",
        balance(&app, &id).await,
        (7, 3),
    );
    f.finish("Python (api-gateway-demo-sign-python style)");
}

/// The npm package `aliyun-api-gateway`, unmodified: `Client` (lower-case x-ca-* headers
/// with x-ca-stage and a nonce, HmacSHA256, Content-MD5 on JSON) and `SimpleClient`
/// (AppCode; it sends no Content-Type at all).
#[tokio::test]
async fn npm_aliyun_api_gateway_client_and_simple_client() {
    if !Toolchain::Node.available() {
        return;
    }
    let app = spawn_test_app().await;
    let (id, code, key, secret) = new_app(&app, 10).await;
    let fields = Fields::same_person(&app);
    let mut f = Findings::default();

    let run = node(&app, &key, &secret, "json", &fields).await;
    f.answered("npm Client JSON", one(&run), 1);
    let run = node(&app, &key, &secret, "form", &fields).await;
    f.answered("npm Client form", one(&run), 1);
    let run = node(&app, &key, "not-the-secret", "json", &fields).await;
    f.invalid_signature("npm Client, wrong secret", &run);
    let a = one(&run);
    let message = percent_decode(&a.reason());
    for signed in [
        format!("#x-ca-key:{key}#"),
        "#x-ca-stage:RELEASE#".to_owned(),
    ] {
        if !message.contains(&signed) {
            f.fail(format!(
                "npm Client, wrong secret: `{signed}` not in `{}`",
                shorten(&message)
            ));
        }
    }
    let run = node(&app, "no-such-app-key", &secret, "json", &fields).await;
    f.refused(
        "npm Client, unknown AppKey",
        one(&run),
        400,
        "Invalid AppKey",
    );
    let run = node(&app, &code, "", "appcode-json", &fields).await;
    f.answered(
        "npm SimpleClient JSON (AppCode, no Content-Type)",
        one(&run),
        1,
    );
    let run = node(&app, &code, "", "appcode-form", &fields).await;
    f.answered(
        "npm SimpleClient form (AppCode, no Content-Type)",
        one(&run),
        1,
    );
    let run = node(&app, "not-an-app-code", "", "appcode-json", &fields).await;
    f.refused(
        "npm SimpleClient, wrong AppCode",
        one(&run),
        403,
        "Unauthorized",
    );
    f.eq(
        "balance after npm (remaining, charged)",
        balance(&app, &id).await,
        (6, 4),
    );

    disable(&app, &id).await;
    let run = node(&app, &key, &secret, "json", &fields).await;
    f.refused("npm Client, disabled app", one(&run), 403, "Unauthorized");
    let run = node(&app, &code, "", "appcode-json", &fields).await;
    f.refused(
        "npm SimpleClient, disabled app",
        one(&run),
        403,
        "Unauthorized",
    );
    f.eq(
        "balance after the disabled app's calls",
        balance(&app, &id).await,
        (6, 4),
    );
    f.finish("npm aliyun-api-gateway");
}
