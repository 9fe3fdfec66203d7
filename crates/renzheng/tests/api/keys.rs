//! Key rotation, online (issue 21): the template, secrets and photo keys replaced while
//! checks run, on SQLite and PostgreSQL; an interrupted rotation resumed; retirement; a
//! node holding only a retired key refused; the CLI exactly as documented. Through the
//! real server and database, on the deterministic colour engine (none of this is about
//! faces) except the CLI test, which runs the real binary on real photos.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use renzheng_app::keys::{self, KeyName, PhotoCipher};
use renzheng_app::settings::{Secret, Settings};
use renzheng_app::{App, EngineSource, EnrolFields, EnrolRequest};
use renzheng_domain::{IdNumber, PersonName};
use renzheng_store::{AppId, NewPortrait};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::postgres::{node, scratch_database};

/// Enrols `id` under `name` with HU's template (the store does not judge faces).
async fn enrol_with_hus_template(app: &TestApp, id: &IdNumber, name: &str) {
    let hu = IdNumber::parse(&HU.id()).unwrap();
    let template = app.store.get_person(&hu).await.unwrap().unwrap().portraits[0].clone();
    app.store
        .enrol(
            id,
            &PersonName::parse(name).unwrap(),
            vec![NewPortrait {
                model_id: template.model_id,
                embedding: template.embedding,
                quality: None,
                photo: None,
            }],
            None,
            app.state.app.now_ms(),
        )
        .await
        .unwrap();
}

/// Enrols `n` more persons with HU's template and returns their ID numbers.
async fn enrol_many(app: &TestApp, n: usize) -> Vec<IdNumber> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = IdNumber::parse(&with_check_char(&format!(
            "330106199003{:02}{:03}",
            1 + i / 1000,
            i % 1000
        )))
        .unwrap();
        enrol_with_hus_template(app, &id, "王五").await;
        ids.push(id);
    }
    ids
}

/// Checks HU against their own photo on every node in turn until `stop`, each expected
/// to answer 200 with result 1; returns how many were answered and what went wrong.
async fn check_until(nodes: Vec<&TestApp>, stop: Arc<AtomicBool>) -> (u64, Vec<String>) {
    let mut answered = 0;
    let mut failures = Vec::new();
    let bodies: Vec<Value> = nodes
        .iter()
        .map(|n| json!({"name": HU.name, "idCard": HU.id(), "image": n.photo_b64(HU_SAME)}))
        .collect();
    let mut turn = 0;
    while !stop.load(Ordering::Relaxed) {
        let i = turn % nodes.len();
        turn += 1;
        let (status, body) = status_and_body(nodes[i].check_json(&bodies[i]).await).await;
        if status == 200 && body["data"]["result"] == 1 {
            answered += 1;
        } else {
            failures.push(format!("node {i}: {status} {body}"));
        }
    }
    (answered, failures)
}

/// Calls charged to the test app so far.
async fn charged(app: &TestApp) -> i64 {
    crate::metering::balance(app, &app.app_id).await["charged"]
        .as_i64()
        .unwrap()
}

/// Rows of `key` not under its current key, as `keys status` reports them.
async fn rows_left(app: &App, key: &str) -> u64 {
    let status = app.key_status().await.unwrap();
    status
        .iter()
        .find(|s| s.key == key)
        .unwrap()
        .rows_under_other_keys
}

/// Rotates the template key of `rotator` while checks run on `nodes`: no check fails,
/// every one is charged once, everything ends under the new key.
async fn rotate_while_checking(rotator: &App, nodes: Vec<&TestApp>, grace: Duration) {
    let first = nodes[0];
    // Each node's test app is an app of its own.
    let mut before = 0;
    for node in &nodes {
        before += charged(node).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let checking = {
        let stop = stop.clone();
        let nodes = nodes.clone();
        async move {
            let runs = (0..3).map(|_| check_until(nodes.clone(), stop.clone()));
            futures_util::future::join_all(runs).await
        }
    };
    let rotating = async {
        let summary = rotator
            .rotate_key(KeyName::Template, grace, &|_| {})
            .await
            .expect("rotating the template key");
        stop.store(true, Ordering::Relaxed);
        summary
    };
    let (runs, summary) = tokio::join!(checking, rotating);
    let answered: u64 = runs.iter().map(|(n, _)| n).sum();
    let failures: Vec<&String> = runs.iter().flat_map(|(_, f)| f).collect();
    assert!(
        failures.is_empty(),
        "checks failed during the rotation: {failures:?}"
    );
    assert!(answered >= 3, "checks ran during the rotation ({answered})");
    assert!(summary.persons >= 300, "{summary:?}");
    assert_eq!(rows_left(rotator, "template").await, 0);
    // No charge lost or doubled, and the ledger agrees with the audit.
    let mut after = 0;
    for node in &nodes {
        after += charged(node).await;
        let reconciled = first
            .store
            .reconcile(&AppId::from(node.app_id.clone()), 0)
            .await
            .unwrap();
        assert_eq!(reconciled.ledger_charges, reconciled.audit_charged);
    }
    assert_eq!(after - before, answered as i64);
    for node in &nodes {
        assert_eq!(node.check_result(HU, HU_SAME).await["result"], 1);
        assert_eq!(node.check_result(UNKNOWN, HU_SAME).await["result"], 7);
    }
}

#[tokio::test]
async fn a_rotation_while_checks_run_fails_no_check_and_loses_no_charge_on_sqlite() {
    let app = spawn_test_app().await;
    enrol_many(&app, 450).await;
    // One node: the rotation runs in it, and it makes the new key in its key directory.
    rotate_while_checking(&app.state.app, vec![&app], Duration::ZERO).await;
    let key_dir = app.state.app.settings().key_dir.clone().unwrap();
    assert!(key_dir.join("template.previous.key").exists());
    assert!(!key_dir.join("template.next.key").exists());

    // The secrets key: signed checks keep verifying, and the AppCode an operator can
    // see again is re-sealed with the AppSecret and still shows.
    let signed_before = crate::signatures::signed_hu_check(&app).await;
    assert_eq!(signed_before, 200);
    let app_id = AppId::from(app.app_id.clone());
    let code_before = app
        .state
        .app
        .reveal_app_code(&renzheng_app::Actor::Cli, &app_id)
        .await
        .unwrap();
    // A console operator's two-step secret is sealed under the secrets key too.
    let core = &app.state.app;
    let password = "an operator's long password";
    let role = renzheng_store::OperatorRole::Admin;
    core.add_operator(&renzheng_app::Actor::Cli, "ops", role, password)
        .await
        .unwrap();
    let signed = core.sign_in(None, "ops", password, None).await.unwrap();
    let setup = core.start_totp(&signed.session).await.unwrap();
    let now_step = renzheng_app::totp::step_at(core.now_ms());
    let code = renzheng_app::totp::code_at(&setup.secret, now_step).unwrap();
    core.confirm_totp(&signed.session, &signed.token, &code)
        .await
        .unwrap();
    let summary = app
        .state
        .app
        .rotate_key(KeyName::Secrets, Duration::ZERO, &|_| {})
        .await
        .unwrap();
    assert!(
        summary.secrets >= 3,
        "the AppSecret, the AppCode and the TOTP secret: {summary:?}"
    );
    assert_eq!(rows_left(&app.state.app, "secrets").await, 0);
    assert_eq!(crate::signatures::signed_hu_check(&app).await, 200);
    let code_after = app
        .state
        .app
        .reveal_app_code(&renzheng_app::Actor::Cli, &app_id)
        .await
        .unwrap();
    assert_eq!(*code_after, *code_before);
    // The operator still signs in with their authenticator's next code.
    let next = renzheng_app::totp::code_at(&setup.secret, now_step + 1).unwrap();
    assert!(core.sign_in(None, "ops", password, None).await.is_err());
    core.sign_in(None, "ops", password, Some(&next))
        .await
        .expect("the re-sealed TOTP secret opens");
}

#[tokio::test]
async fn two_nodes_on_postgresql_rotate_while_checks_run_and_a_retired_key_is_refused() {
    let Some(db) = scratch_database("two_nodes_on_postgresql_rotate").await else {
        return;
    };
    let next = "33".repeat(32);
    // Every node is given the next key before the rotation (a rolling restart).
    let with_next = |s: &mut Settings| {
        node(&db)(s);
        s.next_template_key = Some(Secret::new(next.clone()));
    };
    let a = spawn_test_app_with(with_next).await;
    let b = spawn_test_app_with(with_next).await;
    enrol_many(&a, 320).await;
    // `keys rotate template`, as a third process would run it.
    let mut settings = a.state.app.settings().clone();
    settings.listen = "127.0.0.1:0".into();
    let rotator = App::open(
        settings.clone(),
        EngineSource::Ready(Arc::new(renzheng_app::testing::TestEngine::new())),
    )
    .await
    .unwrap();
    // The nodes learn the new key within their refresh interval (2 s).
    rotate_while_checking(&rotator, vec![&a, &b], Duration::from_secs(5)).await;

    // A person enrolled on one node after the rotation is found on the other.
    let late = IdNumber::parse(&with_check_char("44052419800101777")).unwrap();
    enrol_with_hus_template(&b, &late, "赵六").await;
    assert!(a.store.get_person(&late).await.unwrap().is_some());

    let retired = rotator.retire_key(KeyName::Template).await.unwrap();
    assert_eq!(retired, keys::fingerprint(&[0x11; 32]));
    rotator.close().await;

    // A node holding only the retired key refuses to start, saying so.
    let mut old_only = settings.clone();
    old_only.next_template_key = None;
    let refused = App::open(
        old_only,
        EngineSource::Ready(Arc::new(renzheng_app::testing::TestEngine::new())),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(refused.contains("retired"), "{refused}");
    // The new key alone is all a node needs now.
    let mut new_only = settings;
    new_only.template_key = Some(Secret::new(next));
    new_only.next_template_key = None;
    let fresh = App::open(
        new_only,
        EngineSource::Ready(Arc::new(renzheng_app::testing::TestEngine::new())),
    )
    .await
    .unwrap();
    assert!(fresh.store().get_person(&late).await.unwrap().is_some());
    fresh.close().await;
}

#[tokio::test]
async fn an_interrupted_rotation_answers_meanwhile_and_resumes() {
    let app = spawn_test_app_with(|s| s.keep_photos = true).await;
    let moved_later = enrol_many(&app, 250).await;
    let key_dir = app.state.app.settings().key_dir.clone().unwrap();
    let old = keys::read_key(&key_dir.join("template.key")).unwrap();

    // A kept photo, sealed for its person under the photo key.
    let kept = IdNumber::parse(&with_check_char("11010119600101123")).unwrap();
    let kept_photo = app.photo(WEN_PORTRAIT);
    app.state
        .app
        .enrol(
            &renzheng_app::Actor::Cli,
            EnrolRequest::parse(EnrolFields {
                name: Some("温家宝".into()),
                id_card: Some(kept.as_str().to_owned()),
                photos: vec![kept_photo.clone()],
                basis: renzheng_domain::BasisFields {
                    basis: Some("consent".into()),
                    consent_ref: Some("CF-2026-0301".into()),
                    ..Default::default()
                },
                ..EnrolFields::default()
            })
            .unwrap(),
        )
        .await
        .unwrap();

    // `keys rotate template` started, moved one batch and died.
    let new = keys::create_key_file(&key_dir.join("template.next.key")).unwrap();
    app.store
        .begin_key_rotation(
            "template",
            &keys::fingerprint(&old),
            &keys::fingerprint(&new),
            app.state.app.now_ms(),
        )
        .await
        .unwrap();
    app.state.app.refresh_keys().await.unwrap();
    let batch = app.store.rekey_registry(None, 100).await.unwrap();
    assert_eq!(batch.persons, 100);

    // Meanwhile every person is found, moved or not.
    assert_eq!(app.check_result(HU, HU_SAME).await["result"], 1);
    assert_eq!(app.check_result(JIANG, HU_SAME).await["result"], 3);
    for id in &moved_later {
        assert!(app.store.get_person(id).await.unwrap().is_some());
    }
    let left = rows_left(&app.state.app, "template").await;
    assert!(left > 100, "{left}");
    // The previous key cannot be retired while rows remain under it.
    let refused = app
        .state
        .app
        .retire_key(KeyName::Template)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("keys rotate template"), "{refused}");

    // Run again: it resumes and finishes.
    let summary = app
        .state
        .app
        .rotate_key(KeyName::Template, Duration::ZERO, &|_| {})
        .await
        .unwrap();
    assert_eq!(summary.to, keys::fingerprint(&new));
    assert!(summary.persons >= 150, "{summary:?}");
    assert_eq!(rows_left(&app.state.app, "template").await, 0);
    assert_eq!(app.check_result(HU, HU_SAME).await["result"], 1);
    assert_eq!(
        keys::read_key(&key_dir.join("template.key")).unwrap(),
        new,
        "the new key is the key file now"
    );

    // The photo key: the kept photo re-sealed under the new key, still bound to its
    // person.
    let before = app.store.kept_photos(&kept).await.unwrap();
    assert_eq!(before.len(), 1);
    app.state
        .app
        .rotate_key(KeyName::Photo, Duration::ZERO, &|_| {})
        .await
        .unwrap();
    let after = app.store.kept_photos(&kept).await.unwrap();
    assert_ne!(before, after);
    let new_photo_key = keys::read_key(&key_dir.join("photo.key")).unwrap();
    let cipher = PhotoCipher::new(&new_photo_key);
    assert!(cipher.ring().is_current(&after[0]));
    assert_eq!(
        &cipher.decrypt(kept.as_str(), &after[0]).unwrap()[..],
        &kept_photo[..]
    );
    assert!(cipher.decrypt(&HU.id(), &after[0]).is_none());

    // Retired: the database forgets the old key and its file goes.
    app.state.app.retire_key(KeyName::Template).await.unwrap();
    assert!(!key_dir.join("template.previous.key").exists());
    // A node given the old key files refuses to start.
    let old_dir = tempfile::tempdir().unwrap();
    for file in ["secrets.key", "audit.key", "photo.key"] {
        std::fs::copy(key_dir.join(file), old_dir.path().join(file)).unwrap();
    }
    std::fs::write(old_dir.path().join("template.key"), hex_of(&old)).unwrap();
    let mut settings = app.state.app.settings().clone();
    settings.key_dir = Some(old_dir.path().to_owned());
    let refused = App::open(
        settings,
        EngineSource::Ready(Arc::new(renzheng_app::testing::TestEngine::new())),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(refused.contains("retired"), "{refused}");
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn renzheng(data_dir: &Path, args: &[&str]) -> Output {
    crate::cli::renzheng_env(data_dir, &[("RENZHENG_KEEP_PHOTOS", "true")], args)
}

fn succeeds(data_dir: &Path, args: &[&str]) -> String {
    let out = renzheng(data_dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status_of(data_dir: &Path) -> Value {
    serde_json::from_str(&succeeds(data_dir, &["keys", "status", "--json"])).unwrap()
}

fn key_entry<'a>(status: &'a Value, key: &str) -> &'a Value {
    status
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == key)
        .unwrap()
}

#[test]
fn keys_rotate_retire_and_status_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let photo = faces_dir().join(HU.portrait.unwrap());
    succeeds(
        data,
        &[
            "registry",
            "add",
            "--name",
            HU.name,
            "--id-number",
            &HU.id(),
            "--photo",
            photo.to_str().unwrap(),
            "--basis",
            "consent",
            "--consent-ref",
            "CF-2026-0300",
        ],
    );
    succeeds(data, &["apps", "create", "--name", "cli app"]);

    // A key that is not rotatable, or a bad grace, is refused with the way out.
    let out = renzheng(data, &["keys", "rotate", "audit"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("template, secrets or photo"));
    let out = renzheng(data, &["keys", "rotate", "template", "--grace", "-1"]);
    assert!(!out.status.success());

    let before = status_of(data);
    let old_template = key_entry(&before, "template")["current"]
        .as_str()
        .unwrap()
        .to_owned();
    for key in ["template", "secrets", "photo"] {
        assert_eq!(key_entry(&before, key)["rows_under_other_keys"], 0);
        assert_eq!(key_entry(&before, key)["previous"], Value::Null);
        let out = succeeds(data, &["keys", "rotate", key, "--grace", "0"]);
        assert!(out.contains("rotated"), "{out}");
    }
    let after = status_of(data);
    for key in ["template", "secrets", "photo"] {
        let entry = key_entry(&after, key);
        assert_eq!(entry["rows_under_other_keys"], 0, "{entry}");
        assert_eq!(entry["previous"], key_entry(&before, key)["current"]);
        assert_ne!(entry["current"], key_entry(&before, key)["current"]);
    }
    let shown: Value =
        serde_json::from_str(&succeeds(data, &["registry", "show", &HU.id(), "--json"])).unwrap();
    assert_eq!(shown["portraits"].as_array().unwrap().len(), 1);

    let keys_dir = data.join("keys");
    let old_key = std::fs::read_to_string(keys_dir.join("template.previous.key")).unwrap();
    succeeds(data, &["keys", "retire", "template"]);
    assert!(!keys_dir.join("template.previous.key").exists());
    let out = renzheng(data, &["keys", "retire", "template"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no previous key"));
    let retired = status_of(data);
    assert_eq!(
        key_entry(&retired, "template")["retired"],
        json!([old_template])
    );

    // A node given the old key files refuses to start.
    std::fs::write(keys_dir.join("template.key"), old_key).unwrap();
    let out = renzheng(data, &["migrate"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("retired"), "{stderr}");
}

/// The one-node flow exactly as an operator runs it: the server answering, `renzheng keys
/// rotate template` run beside it as another process on the same data and key
/// directories; the server follows the new key and no check fails.
#[tokio::test]
async fn the_cli_rotates_the_key_of_a_running_server_while_it_answers() {
    let app = spawn_test_app().await;
    enrol_many(&app, 300).await;
    let settings = app.state.app.settings().clone();
    let (data_dir, key_dir) = (settings.data_dir.clone(), settings.key_dir.clone().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let checking = tokio::spawn({
        let stop = stop.clone();
        let address = app.address.clone();
        let code = app.app_code.clone();
        let body = json!({"name": HU.name, "idCard": HU.id(), "image": app.photo_b64(HU_SAME)});
        async move {
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            let (mut answered, mut failures) = (0u64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let response = client
                    .post(format!("{address}/faceidcard/check"))
                    .header("Authorization", format!("APPCODE {code}"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let (status, body) = status_and_body(response).await;
                if status == 200 && body["data"]["result"] == 1 {
                    answered += 1;
                } else {
                    failures.push(format!("{status} {body}"));
                }
            }
            (answered, failures)
        }
    });
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_renzheng"))
            .args(["keys", "rotate", "template", "--grace", "3"])
            .env("RENZHENG_DATA_DIR", &data_dir)
            .env("RENZHENG_KEY_DIR", &key_dir)
            .env_remove("RENZHENG_LISTEN")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    let (answered, failures) = checking.await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(failures.is_empty(), "checks failed: {failures:?}");
    assert!(answered > 0);
    assert_eq!(rows_left(&app.state.app, "template").await, 0);
    // The server seals with the new key now: a person enrolled through it is under it.
    let new = keys::read_key(&settings.key_dir.unwrap().join("template.key")).unwrap();
    let status = app.state.app.key_status().await.unwrap();
    assert_eq!(
        status[0].current.as_deref(),
        Some(keys::fingerprint(&new).as_str())
    );
    let late = IdNumber::parse(&with_check_char("44052419800101888")).unwrap();
    enrol_with_hus_template(&app, &late, "钱七").await;
    assert_eq!(rows_left(&app.state.app, "template").await, 0);
    assert_eq!(app.check_result(HU, HU_SAME).await["result"], 1);
}
