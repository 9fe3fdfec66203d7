//! The service on PostgreSQL, end to end: the real engine's answers, and two nodes
//! sharing one database (quota, nonces, keys).
//!
//! Runs when `RENZHENG_TEST_DATABASE_URL` names a PostgreSQL server where the role may
//! create databases (`scripts/test.sh` sets it when one answers on loopback); otherwise
//! each test prints that it is skipped. Every test works in a database of its own,
//! dropped afterwards.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore;
use renzheng_app::settings::{Secret, Settings};
use reqwest::Method;
use serde_json::json;
use sqlx::{Connection, PgConnection};

use crate::helpers::*;

const PREFIX: &str = "renzheng_api_test_";

/// A scratch database; dropped with the guard.
pub(crate) struct TestDb {
    admin_url: String,
    name: String,
    url: String,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop cannot await: a thread with a runtime of its own runs the DROP.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                        let _ = sqlx::raw_sql(&sql).execute(&mut admin).await;
                    }
                })
        })
        .join();
    }
}

/// `url` with another database name.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let start = base.find("://").map_or(0, |i| i + 3);
    let server = base[start..]
        .find('/')
        .map_or(base, |slash| &base[..start + slash]);
    match query {
        Some(q) => format!("{server}/{database}?{q}"),
        None => format!("{server}/{database}"),
    }
}

/// A fresh database, or `None` (skip) without a configured server.
// The wall clock names the database (leftovers of a crashed run can be told by age).
#[allow(clippy::disallowed_methods)]
pub(crate) async fn scratch_database(test: &str) -> Option<TestDb> {
    let Ok(admin_url) = std::env::var("RENZHENG_TEST_DATABASE_URL") else {
        eprintln!("{test}: skipped (RENZHENG_TEST_DATABASE_URL is not set)");
        return None;
    };
    let mut random = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut random);
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let name = format!("{PREFIX}{secs}_{}", hex_of(&random));
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .expect("connecting to RENZHENG_TEST_DATABASE_URL");
    sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .expect("creating a test database");
    let url = with_database(&admin_url, &name);
    Some(TestDb {
        admin_url,
        name,
        url,
    })
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The settings of a node of `db`: the shared keys every node must be given.
pub(crate) fn node(db: &TestDb) -> impl FnOnce(&mut Settings) + '_ {
    move |s: &mut Settings| {
        s.database_url = Some(Secret::new(db.url.clone()));
        s.database_max_connections = 8;
        s.audit_key = Some(Secret::new("a shared audit key for the nodes"));
        s.template_key = Some(Secret::new("11".repeat(32)));
        s.secrets_key = Some(Secret::new("22".repeat(32)));
        s.limits.max_queued_jobs = 256;
        s.limits.queue_timeout_ms = 20_000;
    }
}

#[tokio::test]
async fn the_engines_answers_on_postgresql() {
    let Some(db) = scratch_database("the_engines_answers_on_postgresql").await else {
        return;
    };
    let app = spawn_app_with(node(&db)).await;
    assert_eq!(app.check_result(HU, HU_SAME).await["result"], 1);
    assert_eq!(
        app.check_result(HU, JIANG.portrait.unwrap()).await["result"],
        3
    );
    assert_eq!(app.check_result(UNKNOWN, HU_SAME).await["result"], 7);
    assert_eq!(app.check_result(NO_PHOTO, HU_SAME).await["result"], 5);
    // Removal deletes the person everywhere.
    let response = app
        .admin(Method::POST, "/admin/persons/remove")
        .json(&json!({"idCard": HU.id()}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.check_result(HU, HU_SAME).await["result"], 7);
}

#[tokio::test]
async fn two_nodes_share_one_quota_and_one_nonce_space() {
    let Some(db) = scratch_database("two_nodes_share_one_quota_and_one_nonce_space").await else {
        return;
    };
    let a = spawn_test_app_with(node(&db)).await;
    let b = spawn_test_app_with(node(&db)).await;
    // An app made on node a, with 10 calls, called on both.
    let response = a
        .admin(Method::POST, "/admin/apps")
        .json(&json!({"name": "shared"}))
        .send()
        .await
        .unwrap();
    let (_, body) = status_and_body(response).await;
    let id = body["data"]["app_id"].as_str().unwrap().to_owned();
    let code = body["data"]["app_code"].as_str().unwrap().to_owned();
    let response = b
        .admin(Method::POST, &format!("/admin/apps/{id}/grants"))
        .json(&json!({"calls": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    let body = json!({"name": HU.name, "idCard": HU.id(), "image": a.photo_b64(HU_SAME)});
    let requests = (0..40).map(|n| {
        let node = if n % 2 == 0 { &a } else { &b };
        node.request(Method::POST, "/faceidcard/check")
            .header("Authorization", format!("APPCODE {code}"))
            .json(&body)
            .send()
    });
    let mut ok = 0;
    for response in futures_util::future::join_all(requests).await {
        let response = response.unwrap();
        match response.status().as_u16() {
            200 => ok += 1,
            403 => assert_eq!(response.headers()["x-ca-error-message"], "Quota Exhausted"),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 10);
    let rec = a
        .store
        .reconcile(&renzheng_store::AppId::from(id.clone()), 0)
        .await
        .unwrap();
    assert_eq!(
        (rec.ledger_charges, rec.audit_charged, rec.audit_succeeded),
        (10, 10, 10)
    );

    // A nonce used on one node is used on the other.
    let now = a.state.app.now_ms();
    let created = a
        .state
        .app
        .create_app(
            &renzheng_app::Actor::Cli,
            &renzheng_app::AppName::parse("signer").unwrap(),
        )
        .await
        .unwrap();
    a.state
        .app
        .grant(
            &renzheng_app::Actor::Cli,
            &renzheng_store::AppId::from(created.app_id.clone()),
            renzheng_app::GrantRequest {
                calls: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let headers = [
        ("Accept", "application/json".to_owned()),
        ("X-Ca-Key", created.app_key.clone()),
        ("X-Ca-Timestamp", now.to_string()),
        ("X-Ca-Nonce", "once-only".to_owned()),
        (
            "X-Ca-Signature-Headers",
            "x-ca-key,x-ca-nonce,x-ca-timestamp".to_owned(),
        ),
    ];
    // The app crate's own signer is not used: the string-to-sign is written out here.
    let sts = format!(
        "GET\napplication/json\n\n\n\nx-ca-key:{}\nx-ca-nonce:once-only\nx-ca-timestamp:{now}\n/v1/app/balance",
        created.app_key
    );
    let signature = renzheng_server::signature::sign(
        created.app_secret.as_bytes(),
        renzheng_server::signature::SignatureMethod::HmacSha256,
        &sts,
    );
    let get = |node: &TestApp| {
        let mut request = node.request(Method::GET, "/v1/app/balance");
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        request.header("X-Ca-Signature", &signature).send()
    };
    assert_eq!(get(&a).await.unwrap().status(), 200);
    let replay = get(&b).await.unwrap();
    assert_eq!(replay.headers()["x-ca-error-message"], "Nonce Used");
}

#[tokio::test]
async fn a_node_with_other_keys_refuses_to_start() {
    let Some(db) = scratch_database("a_node_with_other_keys_refuses_to_start").await else {
        return;
    };
    let _first = spawn_test_app_with(node(&db)).await;
    let mut settings = Settings::default();
    node(&db)(&mut settings);
    settings.template_key = Some(Secret::new("33".repeat(32)));
    let dir = tempfile::tempdir().unwrap();
    settings.data_dir = dir.path().join("data");
    settings.key_dir = Some(dir.path().join("keys"));
    let err = renzheng_app::App::open(
        settings,
        renzheng_app::EngineSource::Ready(std::sync::Arc::new(
            renzheng_app::testing::TestEngine::new(),
        )),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("template key differs"), "{err}");
}

/// The documented move: the registry of a SQLite node exported, imported into
/// PostgreSQL, and the same person checked there.
#[tokio::test]
async fn a_sqlite_registry_moves_to_postgresql() {
    let Some(db) = scratch_database("a_sqlite_registry_moves_to_postgresql").await else {
        return;
    };
    let shared_template_key = "11".repeat(32);
    let sqlite =
        spawn_app_with(|s| s.template_key = Some(Secret::new(shared_template_key.clone()))).await;
    let mut file = Vec::new();
    let exported = sqlite.state.app.export_registry(&mut file).await.unwrap();
    assert_eq!(exported, 3, "HU, JIANG and NO_PHOTO");

    // A PostgreSQL node without the test people: only the import brings HU.
    let pg = spawn_app_with(node(&db)).await;
    let response = pg
        .admin(Method::POST, "/admin/persons/remove")
        .json(&json!({"idCard": HU.id()}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(pg.check_result(HU, HU_SAME).await["result"], 7);
    let summary = pg
        .state
        .app
        .import_registry(&renzheng_app::Actor::Cli, &mut file.as_slice())
        .await
        .unwrap();
    assert_eq!((summary.imported, summary.already_present), (1, 2));
    assert_eq!(pg.check_result(HU, HU_SAME).await["result"], 1);
}

/// With the database gone, a check is a 503 with `Retry-After` (nothing done, nothing
/// charged) and the node says it is not ready.
#[tokio::test]
async fn an_unreachable_database_is_a_503_and_not_ready() {
    let Some(db) = scratch_database("an_unreachable_database_is_a_503_and_not_ready").await else {
        return;
    };
    let app = spawn_test_app_with(node(&db)).await;
    assert_eq!(
        app.check_json(
            &json!({"name": HU.name, "idCard": HU.id(), "image": app.photo_b64(HU_SAME)})
        )
        .await
        .status(),
        200
    );
    let mut admin = PgConnection::connect(&db.admin_url).await.unwrap();
    sqlx::raw_sql(&format!("DROP DATABASE \"{}\" WITH (FORCE)", db.name))
        .execute(&mut admin)
        .await
        .unwrap();
    let response = app
        .check_json(&json!({"name": HU.name, "idCard": HU.id(), "image": app.photo_b64(HU_SAME)}))
        .await;
    assert!(response.headers().contains_key("retry-after"));
    let (status, code, _) = error_of(response).await;
    assert_eq!((status, code.as_str()), (503, "DatabaseUnavailable"));
    let ready = app.request(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(ready.status(), 503);
}
