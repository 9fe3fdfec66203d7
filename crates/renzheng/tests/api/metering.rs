//! Packages, quota, limits, signatures, history and alerts, through the real server and
//! database (the deterministic colour engine: none of this is about faces).

use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// A new app (through the admin API) with `calls` granted, if any: `(id, code, key,
/// secret)`.
pub async fn new_app(app: &TestApp, calls: Option<i64>) -> (String, String, String, String) {
    let response = app
        .admin(Method::POST, "/admin/apps")
        .json(&json!({"name": "metered"}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 201, "{body}");
    let d = &body["data"];
    let id = d["app_id"].as_str().unwrap().to_owned();
    if let Some(calls) = calls {
        grant(app, &id, json!({"calls": calls})).await;
    }
    (
        id,
        d["app_code"].as_str().unwrap().to_owned(),
        d["app_key"].as_str().unwrap().to_owned(),
        d["app_secret"].as_str().unwrap().to_owned(),
    )
}

async fn grant(app: &TestApp, id: &str, body: Value) -> Value {
    let response = app
        .admin(Method::POST, &format!("/admin/apps/{id}/grants"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 201, "{body}");
    body["data"].clone()
}

pub(crate) fn check_body(app: &TestApp) -> Value {
    json!({"name": HU.name, "idCard": HU.id(), "image": app.photo_b64(HU_SAME)})
}

pub(crate) async fn check_with(app: &TestApp, code: &str, body: &Value) -> reqwest::Response {
    app.request(Method::POST, "/faceidcard/check")
        .header("Authorization", format!("APPCODE {code}"))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The app's balance as the admin API gives it (`remaining`, `charged`…).
pub async fn balance(app: &TestApp, id: &str) -> Value {
    let response = app
        .admin(Method::GET, &format!("/admin/apps/{id}/balance"))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

fn message(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-ca-error-message")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_new_app_has_no_quota_until_a_package_is_granted() {
    let app = spawn_test_app().await;
    let (id, code, _, _) = new_app(&app, None).await;
    let response = check_with(&app, &code, &check_body(&app)).await;
    assert_eq!(message(&response), "Quota Exhausted");
    let (status, code_header, _) = error_of(response).await;
    assert_eq!((status, code_header.as_str()), (403, "QuotaExhausted"));

    let granted = grant(&app, &id, json!({"package": "trial"})).await;
    assert_eq!(granted["calls"], 20);
    assert!(granted["expires_at"].as_i64().is_some(), "{granted}");
    let response = check_with(&app, &code, &check_body(&app)).await;
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["charged"], 1);
    let b = balance(&app, &id).await;
    assert_eq!(
        (b["remaining"].as_i64(), b["charged"].as_i64()),
        (Some(19), Some(1))
    );
}

#[tokio::test]
async fn only_2xx_answers_are_charged_and_the_last_unit_is_the_last() {
    let app = spawn_test_app().await;
    let (id, code, _, _) = new_app(&app, Some(2)).await;
    // Client errors are free, whatever they are.
    for bad in [
        json!({"name": HU.name, "idCard": "123", "image": app.photo_b64(HU_SAME)}),
        json!({"name": HU.name, "idCard": HU.id()}),
        json!({"name": HU.name, "idCard": HU.id(), "image": "!!!"}),
    ] {
        let response = check_with(&app, &code, &bad).await;
        assert_eq!(response.status(), 400);
    }
    // Every result code is a 200 and is charged: 7 (no such ID), then 1.
    let unknown =
        json!({"name": UNKNOWN.name, "idCard": UNKNOWN.id(), "image": app.photo_b64(HU_SAME)});
    let (status, body) = status_and_body(check_with(&app, &code, &unknown).await).await;
    assert_eq!((status, body["data"]["result"].as_i64()), (200, Some(7)));
    let (status, _) = status_and_body(check_with(&app, &code, &check_body(&app)).await).await;
    assert_eq!(status, 200);
    let response = check_with(&app, &code, &check_body(&app)).await;
    assert_eq!(message(&response), "Quota Exhausted");
    assert_eq!(response.status(), 403);

    let b = balance(&app, &id).await;
    assert_eq!(
        (b["remaining"].as_i64(), b["charged"].as_i64()),
        (Some(0), Some(2))
    );
    let rec = app
        .store
        .reconcile(&renzheng_store::AppId::from(id.clone()), 0)
        .await
        .unwrap();
    assert_eq!(
        (rec.ledger_charges, rec.audit_charged, rec.audit_succeeded),
        (2, 2, 2)
    );
}

#[tokio::test]
async fn expired_calls_answer_quota_expired() {
    let app = spawn_test_app().await;
    let (id, code, _, _) = new_app(&app, None).await;
    let now = app.state.app.now_ms();
    // Granted in the past with an expiry already gone (the API refuses past expiries).
    app.store
        .grant(
            &renzheng_store::AppId::from(id.clone()),
            None,
            5,
            Some(now - 1),
            now - 10_000,
        )
        .await
        .unwrap();
    let response = check_with(&app, &code, &check_body(&app)).await;
    assert_eq!(message(&response), "Quota Expired");
    assert_eq!(response.status(), 403);
    // The API refuses a grant that is already over.
    let response = app
        .admin(Method::POST, &format!("/admin/apps/{id}/grants"))
        .json(&json!({"calls": 5, "expires_at": now - 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, 400);
}

/// Status, error code (`X-Ca-Error-Code`, empty on success) and body of an admin
/// request about a grant.
async fn change_grant(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, String, Value) {
    let mut request = app.admin(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let code = response
        .headers()
        .get("x-ca-error-code")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let (status, body) = status_and_body(response).await;
    (status, code, body)
}

#[tokio::test]
async fn grants_are_adjusted_and_revoked_and_checks_follow_the_ledger() {
    let app = spawn_test_app().await;
    let (id, code, _, _) = new_app(&app, Some(3)).await;
    let (other, _, _, _) = new_app(&app, Some(1)).await;
    let first = balance(&app, &id).await["grants"][0]["grant_id"]
        .as_i64()
        .unwrap();
    let path = format!("/admin/apps/{id}/grants/{first}");
    let (status, _) = status_and_body(check_with(&app, &code, &check_body(&app)).await).await;
    assert_eq!(status, 200);

    // Refused, changing nothing: out of range, nothing to change, both expiries, a past
    // expiry, below the one call charged, unknown fields, no such grant (or another
    // app's, or not a number).
    let now = app.state.app.now_ms();
    for (body, expected, code_expected) in [
        (json!({"calls": 0}), 400, "InvalidParameter"),
        (json!({}), 400, "InvalidParameter"),
        (
            json!({"expires_at": now + 86_400_000, "never_expires": true}),
            400,
            "InvalidParameter",
        ),
        (json!({"expires_at": now - 1}), 400, "InvalidParameter"),
        (json!({"callz": 5}), 400, "MalformedBody"),
    ] {
        let (status, code, answer) =
            change_grant(&app, Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!(
            (status, code.as_str()),
            (expected, code_expected),
            "{body}: {answer}"
        );
    }
    for wrong in [
        format!("/admin/apps/{other}/grants/{first}"),
        format!("/admin/apps/{id}/grants/{}", first + 1000),
        format!("/admin/apps/{id}/grants/first"),
        format!("/admin/apps/app_missing/grants/{first}"),
    ] {
        let (status, _, answer) =
            change_grant(&app, Method::PATCH, &wrong, Some(json!({"calls": 9}))).await;
        assert_eq!(status, 404, "{wrong}: {answer}");
        let revoke = format!("{wrong}/revoke");
        let (status, _, _) = change_grant(&app, Method::POST, &revoke, None).await;
        assert_eq!(status, 404, "{wrong}");
    }
    assert_eq!(balance(&app, &id).await["remaining"], 2);

    // Down to the one call charged: nothing left, and the check says so.
    let one = Some(json!({"calls": 1}));
    let (status, _, answer) = change_grant(&app, Method::PATCH, &path, one).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            answer["data"]["calls"].as_i64(),
            answer["data"]["remaining"].as_i64()
        ),
        (Some(1), Some(0))
    );
    let response = check_with(&app, &code, &check_body(&app)).await;
    assert_eq!(message(&response), "Quota Exhausted");
    // Up to 5 calls with an expiry, then the expiry lifted: checks pass again.
    let expiry = now + 10 * 86_400_000;
    let body = json!({"calls": 5, "expires_at": expiry});
    let (status, _, answer) = change_grant(&app, Method::PATCH, &path, Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["expires_at"], expiry);
    let body = json!({"never_expires": true});
    let (status, _, answer) = change_grant(&app, Method::PATCH, &path, Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["data"]["expires_at"].is_null(), "{answer}");
    let (status, _) = status_and_body(check_with(&app, &code, &check_body(&app)).await).await;
    assert_eq!(status, 200);
    assert_eq!(balance(&app, &id).await["remaining"], 3);

    // Revoked: the 3 unused calls are taken back, checks are refused, and the grant
    // changes no more.
    let revoke = format!("{path}/revoke");
    let (status, _, answer) = change_grant(&app, Method::POST, &revoke, None).await;
    assert_eq!(status, 200, "{answer}");
    let revoked_at = answer["data"]["revoked_at"].clone();
    assert!(answer["data"]["revoked_at"].as_i64().is_some(), "{answer}");
    assert_eq!(answer["data"]["remaining"], 0);
    let response = check_with(&app, &code, &check_body(&app)).await;
    assert_eq!(message(&response), "Quota Exhausted");
    let (status, code, _) = change_grant(&app, Method::POST, &revoke, None).await;
    assert_eq!((status, code.as_str()), (409, "GrantRevoked"));
    let nine = Some(json!({"calls": 9}));
    let (status, code, _) = change_grant(&app, Method::PATCH, &path, nine).await;
    assert_eq!((status, code.as_str()), (409, "GrantRevoked"));
    let b = balance(&app, &id).await;
    assert_eq!(
        (b["remaining"].as_i64(), b["charged"].as_i64()),
        (Some(0), Some(2))
    );
    assert_eq!(b["grants"][0]["revoked_at"], revoked_at, "{b}");
    assert_eq!(b["ledger"]["consistent"], true, "{b}");
    // The ledger nets to what was used: +3, -2, +4, then -3 taken back.
    let rec = app
        .store
        .reconcile(&renzheng_store::AppId::from(id.clone()), 0)
        .await
        .unwrap();
    assert_eq!((rec.ledger_granted, rec.ledger_charges), (2, 2));

    // Below what is held by checks in flight: refused with the floor, on a fresh grant.
    let fresh = grant(&app, &id, json!({"calls": 4})).await["grant_id"]
        .as_i64()
        .unwrap();
    let fresh_path = format!("/admin/apps/{id}/grants/{fresh}");
    for _ in 0..2 {
        let held = app
            .store
            .reserve_unit(&renzheng_store::AppId::from(id.clone()), now, 60_000)
            .await
            .unwrap();
        assert!(matches!(held, renzheng_store::Reserved::Held(_)));
    }
    let one = Some(json!({"calls": 1}));
    let (status, code, answer) = change_grant(&app, Method::PATCH, &fresh_path, one).await;
    assert_eq!(
        (status, code.as_str()),
        (409, "GrantBelowCommitted"),
        "{answer}"
    );
    assert!(answer["msg"].as_str().unwrap().contains("(2)"), "{answer}");

    // Each change is an operator event, attributed.
    let response = app
        .admin(Method::GET, "/admin/events?limit=10")
        .send()
        .await
        .unwrap();
    let (_, events) = status_and_body(response).await;
    let actions: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "app.grant-adjusted")
            .count(),
        3,
        "{events}"
    );
    assert!(actions.contains(&"app.grant-revoked"), "{events}");
}

/// The proof: many concurrent checks at an app with fewer units than requests →
/// exactly that many 200s, the rest 403, and the ledger equals the audit.
#[tokio::test]
async fn concurrent_checks_never_overdraw_and_the_ledger_matches_the_audit() {
    let app = spawn_test_app_with(|s| {
        s.limits.max_queued_jobs = 256;
        s.limits.queue_timeout_ms = 20_000;
    })
    .await;
    let (id, code, _, _) = new_app(&app, Some(12)).await;
    let body = check_body(&app);
    let requests = (0..48).map(|_| check_with(&app, &code, &body));
    let responses = futures_util::future::join_all(requests).await;
    let mut ok = 0;
    let mut exhausted = 0;
    for r in responses {
        match (r.status().as_u16(), message(&r).as_str()) {
            (200, _) => ok += 1,
            (403, "Quota Exhausted") => exhausted += 1,
            (status, m) => panic!("unexpected {status} {m}"),
        }
    }
    assert_eq!((ok, exhausted), (12, 36));
    let rec = app
        .store
        .reconcile(&renzheng_store::AppId::from(id.clone()), 0)
        .await
        .unwrap();
    assert_eq!(
        (rec.ledger_charges, rec.audit_charged, rec.audit_succeeded),
        (12, 12, 12)
    );
    let b = balance(&app, &id).await;
    assert_eq!(
        (b["remaining"].as_i64(), b["reserved"].as_i64()),
        (Some(0), Some(0))
    );
}

#[tokio::test]
async fn the_rate_limit_throttles_with_retry_after_and_is_not_charged() {
    let app = spawn_test_app().await;
    let (id, code, _, _) = new_app(&app, Some(100)).await;
    let response = app
        .admin(Method::PUT, &format!("/admin/apps/{id}/policy"))
        .json(&json!({"rate_per_sec": 0.5, "rate_burst": 2, "alert_percent": 20, "webhook_url": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for _ in 0..2 {
        assert_eq!(
            check_with(&app, &code, &check_body(&app)).await.status(),
            200
        );
    }
    let response = check_with(&app, &code, &check_body(&app)).await;
    assert_eq!(response.status(), 403);
    assert_eq!(message(&response), "Throttled by APP Flow Control");
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(balance(&app, &id).await["charged"], 2);
    // Bad policies are refused.
    let response = app
        .admin(Method::PUT, &format!("/admin/apps/{id}/policy"))
        .json(&json!({"rate_per_sec": -1, "alert_percent": 20}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, 400);
}

#[tokio::test]
async fn checks_of_one_id_number_are_limited_and_the_refusal_is_free() {
    let app = spawn_test_app_with(|s| s.limits.per_id_per_minute = 2).await;
    let (id, code, _, _) = new_app(&app, Some(100)).await;
    for _ in 0..2 {
        assert_eq!(
            check_with(&app, &code, &check_body(&app)).await.status(),
            200
        );
    }
    let response = check_with(&app, &code, &check_body(&app)).await;
    assert!(response.headers().contains_key("retry-after"));
    let (status, error, msg) = error_of(response).await;
    assert_eq!((status, error.as_str()), (429, "TooManyAttempts"));
    assert!(msg.contains("minute"), "{msg}");
    assert!(!msg.contains(&HU.id()));
    // Another ID number, and another app, are counted apart.
    let other = json!({"name": JIANG.name, "idCard": JIANG.id(), "image": app.photo_b64(HU_SAME)});
    assert_eq!(check_with(&app, &code, &other).await.status(), 200);
    assert_eq!(app.check_json(&check_body(&app)).await.status(), 200);
    assert_eq!(balance(&app, &id).await["charged"], 3);
}

#[tokio::test]
async fn reset_code_rotates_the_appcode_with_an_optional_grace() {
    let app = spawn_test_app().await;
    let (id, old, _, _) = new_app(&app, Some(10)).await;
    let reset = |grace: i64| {
        app.admin(Method::POST, &format!("/admin/apps/{id}/reset-code"))
            .json(&json!({"grace_seconds": grace}))
            .send()
    };
    let (status, body) = status_and_body(reset(3600).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let new = body["data"]["app_code"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    // Both work during the grace period; the balance is the app's, not the code's.
    assert_eq!(
        check_with(&app, &old, &check_body(&app)).await.status(),
        200
    );
    assert_eq!(
        check_with(&app, &new, &check_body(&app)).await.status(),
        200
    );
    let (_, body) = status_and_body(reset(0).await.unwrap()).await;
    let newest = body["data"]["app_code"].as_str().unwrap().to_owned();
    for gone in [&old, &new] {
        assert_eq!(
            check_with(&app, gone, &check_body(&app)).await.status(),
            403
        );
    }
    assert_eq!(
        check_with(&app, &newest, &check_body(&app)).await.status(),
        200
    );
    assert_eq!(balance(&app, &id).await["charged"], 3);
}

struct Signed {
    headers: Vec<(String, String)>,
    body: String,
}

fn signed_check(app: &TestApp, key: &str, secret: &str, timestamp_ms: i64, nonce: &str) -> Signed {
    let body = check_body(app).to_string();
    let mut headers = vec![
        (
            "Content-Type".to_owned(),
            "application/json; charset=utf-8".to_owned(),
        ),
        ("Accept".to_owned(), "application/json".to_owned()),
        ("X-Ca-Key".to_owned(), key.to_owned()),
        ("X-Ca-Timestamp".to_owned(), timestamp_ms.to_string()),
        ("X-Ca-Nonce".to_owned(), nonce.to_owned()),
        ("X-Ca-Signature-Method".to_owned(), "HmacSHA256".to_owned()),
        (
            "X-Ca-Signature-Headers".to_owned(),
            "x-ca-timestamp,x-ca-key,x-ca-nonce,x-ca-signature-method".to_owned(),
        ),
    ];
    let signed = python_sign(&json!({
        "method": "POST", "path": "/faceidcard/check", "query": "",
        "headers": headers, "body": body, "secret": secret,
    }));
    headers.push((
        "Content-MD5".into(),
        signed["content_md5"].as_str().unwrap().into(),
    ));
    headers.push((
        "X-Ca-Signature".into(),
        signed["signature"].as_str().unwrap().into(),
    ));
    Signed { headers, body }
}

async fn send_signed(app: &TestApp, s: &Signed) -> reqwest::Response {
    let mut request = app.request(Method::POST, "/faceidcard/check");
    for (name, value) in &s.headers {
        request = request.header(name, value);
    }
    request.body(s.body.clone()).send().await.unwrap()
}

#[tokio::test]
async fn appkey_signatures_are_verified_replays_refused_and_errors_are_the_gateways() {
    let app = spawn_test_app().await;
    let now = app.state.app.now_ms();
    let good = signed_check(&app, &app.app_key, &app.app_secret, now, "nonce-1");
    let (status, body) = status_and_body(send_signed(&app, &good).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["charged"], 1);

    // The same nonce again: a replay.
    let response = send_signed(&app, &good).await;
    assert_eq!(message(&response), "Nonce Used");
    assert_eq!(response.status(), 400);

    // A changed body no longer matches its Content-MD5; a changed body with a matching
    // MD5 no longer matches the signature.
    let mut tampered = signed_check(&app, &app.app_key, &app.app_secret, now, "nonce-2");
    tampered.body = tampered.body.replace(&HU.id(), &JIANG.id());
    let response = send_signed(&app, &tampered).await;
    assert_eq!(message(&response), "Invalid Content-MD5");
    let wrong_secret = signed_check(&app, &app.app_key, "not-the-secret", now, "nonce-3");
    let response = send_signed(&app, &wrong_secret).await;
    assert_eq!(response.status(), 400);
    // The gateway's message: the server's string-to-sign, line breaks as '#'.
    let msg = message(&response);
    assert!(
        msg.starts_with("Invalid Signature, Server StringToSign:`POST#application/json#"),
        "{msg}"
    );
    assert!(msg.ends_with("#/faceidcard/check`"), "{msg}");
    // A refused signature spends no nonce: the right one still goes through.
    let retry = signed_check(&app, &app.app_key, &app.app_secret, now, "nonce-3");
    assert_eq!(send_signed(&app, &retry).await.status(), 200);

    // Outside the 15-minute window, either way.
    for skew in [-16 * 60_000, 16 * 60_000] {
        let stale = signed_check(&app, &app.app_key, &app.app_secret, now + skew, "nonce-4");
        let response = send_signed(&app, &stale).await;
        assert_eq!(message(&response), "Timestamp Expired");
    }
    // An unknown key.
    let stranger = signed_check(&app, "unknownkey", &app.app_secret, now, "nonce-5");
    let response = send_signed(&app, &stranger).await;
    assert_eq!(message(&response), "Invalid AppKey");
    // A new secret: the old one stops.
    let response = app
        .admin(
            Method::POST,
            &format!("/admin/apps/{}/reset-secret", app.app_id),
        )
        .send()
        .await
        .unwrap();
    let (_, body) = status_and_body(response).await;
    let (key, secret) = (
        body["data"]["app_key"].as_str().unwrap().to_owned(),
        body["data"]["app_secret"].as_str().unwrap().to_owned(),
    );
    let old = signed_check(&app, &app.app_key, &app.app_secret, now, "nonce-6");
    assert_eq!(message(&send_signed(&app, &old).await), "Invalid AppKey");
    let new = signed_check(&app, &key, &secret, now, "nonce-6");
    assert_eq!(send_signed(&app, &new).await.status(), 200);

    // A signed GET of the app's own balance: the query is signed too.
    let mut headers = vec![
        ("Accept".to_owned(), "application/json".to_owned()),
        ("X-Ca-Key".to_owned(), key.clone()),
        ("X-Ca-Timestamp".to_owned(), now.to_string()),
        ("X-Ca-Nonce".to_owned(), "nonce-7".to_owned()),
        (
            "X-Ca-Signature-Headers".to_owned(),
            "X-Ca-Key,X-Ca-Nonce,X-Ca-Timestamp".to_owned(),
        ),
    ];
    let signed = python_sign(&json!({
        "method": "GET", "path": "/v1/app/calls", "query": "limit=1&result=1",
        "headers": headers, "body": "", "secret": secret,
    }));
    headers.push((
        "X-Ca-Signature".into(),
        signed["signature"].as_str().unwrap().into(),
    ));
    let get = |query: &'static str| {
        let mut request = app.request(Method::GET, &format!("/v1/app/calls?{query}"));
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        request.send()
    };
    // The query changed: refused (and the nonce not spent); as signed: answered.
    let response = get("limit=2&result=1").await.unwrap();
    assert!(
        message(&response).starts_with("Invalid Signature"),
        "{}",
        message(&response)
    );
    let (status, body) = status_and_body(get("limit=1&result=1").await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_app_sees_its_own_balance_history_and_usage_masked() {
    let app = spawn_test_app().await;
    let (_, code, _, _) = new_app(&app, Some(5)).await;
    check_with(&app, &code, &check_body(&app)).await;
    check_with(&app, &code, &json!({"name": HU.name, "idCard": "12"})).await;
    let get = |path: &str| {
        app.request(Method::GET, path)
            .header("Authorization", format!("APPCODE {code}"))
            .send()
    };
    let (status, body) = status_and_body(get("/v1/app/balance").await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            body["data"]["remaining"].as_i64(),
            body["data"]["charged"].as_i64()
        ),
        (Some(4), Some(1))
    );

    let (_, body) = status_and_body(get("/v1/app/calls").await.unwrap()).await;
    let calls = body["data"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "{body}");
    assert_eq!(
        (
            calls[0]["http_status"].as_i64(),
            calls[0]["charged"].as_bool()
        ),
        (Some(400), Some(false))
    );
    assert_eq!(
        (calls[1]["result"].as_i64(), calls[1]["charged"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(calls[1]["name"], "胡**");
    let text = body.to_string();
    assert!(
        !text.contains(&HU.id()) && !text.contains(HU.name),
        "{text}"
    );
    // Filters and paging.
    let (_, body) = status_and_body(get("/v1/app/calls?result=1&limit=1").await.unwrap()).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    let first = calls[0]["id"].as_i64().unwrap();
    let (_, body) =
        status_and_body(get(&format!("/v1/app/calls?before={first}")).await.unwrap()).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    for bad in [
        "/v1/app/calls?from=2026-13-01",
        "/v1/app/calls?format=xml",
        "/v1/app/calls?limit=0",
        "/v1/app/calls?limit=501",
        "/v1/app/calls?result=9",
        "/v1/app/calls?app_id=app_other",
        "/v1/app/usage?from=2026-12-02&to=2026-12-01",
    ] {
        let response = get(bad).await.unwrap();
        assert_eq!(error_of(response).await.0, 400, "{bad}");
    }

    // CSV export, masked.
    let response = get("/v1/app/calls?format=csv").await.unwrap();
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = response.text().await.unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    // A byte-order mark for spreadsheets, then times in ISO 8601 with the operator's offset.
    assert!(csv.starts_with("\u{feff}id,at,task_no,"), "{csv}");
    let at = csv.lines().nth(1).unwrap().split(',').nth(1).unwrap();
    assert!(
        at.len() == 25 && at.as_bytes()[10] == b'T' && at.ends_with("+08:00"),
        "{at}"
    );
    assert!(!csv.contains(&HU.id()));

    let (_, body) = status_and_body(get("/v1/app/usage").await.unwrap()).await;
    let usage = &body["data"];
    assert_eq!(
        (
            usage["calls"].as_i64(),
            usage["charged"].as_i64(),
            usage["remaining"].as_i64()
        ),
        (Some(2), Some(1), Some(4))
    );
    assert_eq!(usage["days"][0]["results"]["1"], 1);
    assert_eq!(usage["days"][0]["errors"], 1);

    // The app sees only itself; a stranger sees nothing.
    let (_, body) = status_and_body(
        app.request(Method::GET, "/v1/app/calls")
            .header("Authorization", format!("APPCODE {}", app.app_code))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(body["data"].as_array().unwrap().is_empty());
    let response = app
        .request(Method::GET, "/v1/app/balance")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, 403);
}

#[tokio::test]
async fn the_package_catalogue_is_the_products_and_editable() {
    let app = spawn_test_app().await;
    let (_, body) = status_and_body(
        app.admin(Method::GET, "/admin/packages")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let calls: Vec<i64> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["calls"].as_i64().unwrap())
        .collect();
    assert_eq!(calls.len(), 9);
    for n in [100, 1000, 5000, 10_000, 30_000, 50_000, 100_000] {
        assert!(calls.contains(&n), "{calls:?}");
    }
    let response = app
        .admin(Method::PUT, "/admin/packages")
        .json(&json!({"name": "vip", "title": "VIP", "calls": 3, "price_fen": 100, "valid_days": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (id, _, _, _) = new_app(&app, None).await;
    let granted = grant(&app, &id, json!({"package": "vip"})).await;
    assert_eq!(
        (granted["calls"].as_i64(), granted["expires_at"].as_i64()),
        (Some(3), None)
    );
    for bad in [
        json!({"name": "x y", "title": "t", "calls": 3, "price_fen": 1, "valid_days": null}),
        json!({"name": "x", "title": "t", "calls": 0, "price_fen": 1, "valid_days": null}),
        json!({"name": "x", "title": "t", "calls": 3, "price_fen": 1, "valid_days": null, "extra": 1}),
    ] {
        let response = app
            .admin(Method::PUT, "/admin/packages")
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(response).await.0, 400, "{bad}");
    }
    for bad in [
        json!({}),
        json!({"package": "vip", "calls": 3}),
        json!({"calls": -1}),
    ] {
        let response = app
            .admin(Method::POST, &format!("/admin/apps/{id}/grants"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(response).await.0, 400, "{bad}");
    }
    let response = app
        .admin(Method::POST, &format!("/admin/apps/{id}/grants"))
        .json(&json!({"package": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, 404);
}

/// A local webhook receiver: what it was posted, in order.
pub(crate) async fn webhook_receiver() -> (String, Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>)
{
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, received)
}

#[tokio::test]
async fn balance_alerts_are_posted_signed_once_a_day_without_blocking_checks() {
    let app = spawn_test_app().await;
    let (hook, received) = webhook_receiver().await;
    let (id, code, _, secret) = new_app(&app, Some(4)).await;
    let response = app
        .admin(Method::PUT, &format!("/admin/apps/{id}/policy"))
        .json(&json!({"rate_per_sec": null, "alert_percent": 50, "webhook_url": hook}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // 4 → 3: above 50 %; 3 → 2: at 50 %, an alert; 2 → 1: the same day, no second one.
    for _ in 0..3 {
        assert_eq!(
            check_with(&app, &code, &check_body(&app)).await.status(),
            200
        );
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while received.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let posts = received.lock().unwrap().clone();
    assert_eq!(posts.len(), 1, "{posts:?}");
    let (headers, body) = &posts[0];
    let alert: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        (alert["kind"].as_str(), alert["purchased"].as_i64()),
        (Some("low"), Some(4))
    );
    // What was left when the runner looked: the third check may already be charged.
    let remaining = alert["remaining"].as_i64().unwrap();
    assert!((1..=2).contains(&remaining), "{alert}");
    // The signature is HMAC-SHA256 of "<t>.<body>" under the app's secret.
    let signature = headers["x-renzheng-signature"].to_str().unwrap();
    let t: i64 = signature
        .trim_start_matches("t=")
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        signature,
        renzheng_app::webhook_signature(&secret, t, body.as_bytes())
    );

    // Exhausted: another alert kind, recorded and posted.
    check_with(&app, &code, &check_body(&app)).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while received.lock().unwrap().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let kinds: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| {
            serde_json::from_str::<Value>(b).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, ["low", "exhausted"]);
    // The delivery is noted right after the receiver answers: wait for it.
    let app_id = renzheng_store::AppId::from(id);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let alerts = app.store.recent_alerts(Some(&app_id), 10).await.unwrap();
        assert_eq!(alerts.len(), 2);
        if alerts
            .iter()
            .all(|a| a.delivered_at.is_some() && a.attempts == 1)
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{alerts:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_unreachable_webhook_is_retried_and_never_delays_a_check() {
    let app = spawn_test_app_with(|s| {
        s.alerts.webhook_backoff_ms = 50;
        s.alerts.webhook_attempts = 3;
        s.alerts.webhook_timeout_ms = 1_000;
    })
    .await;
    // A port bound for the whole test but never listening: connections are refused, and
    // no other test can take the port and hold the webhook open (a dropped listener's
    // port can be handed to a parallel test's silent server).
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let dead = format!("http://{}/hook", reserved.local_addr().unwrap());
    let (id, code, _, _) = new_app(&app, Some(1)).await;
    app.admin(Method::PUT, &format!("/admin/apps/{id}/policy"))
        .json(&json!({"alert_percent": 20, "webhook_url": dead}))
        .send()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        check_with(&app, &code, &check_body(&app)).await.status(),
        200
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let app_id = renzheng_store::AppId::from(id);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let alerts = app.store.recent_alerts(Some(&app_id), 10).await.unwrap();
        if alerts.first().is_some_and(|a| a.attempts == 3) {
            assert!(alerts[0].delivered_at.is_none());
            assert_eq!(alerts[0].last_error.as_deref(), Some("connection failed"));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{alerts:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(reserved);
}

#[tokio::test]
async fn a_client_that_goes_away_gets_its_unit_back_at_once_and_is_audited() {
    let app = spawn_test_app().await;
    let (id, code, _, _) = new_app(&app, Some(3)).await;
    // A photo server that accepts and never answers: the check waits on it.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/photo.jpg", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let impatient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(300))
        .build()
        .unwrap();
    let gave_up = impatient
        .post(format!("{}/faceidcard/check", app.address))
        .header("Authorization", format!("APPCODE {code}"))
        .json(&json!({"name": HU.name, "idCard": HU.id(), "imgUrl": url}))
        .send()
        .await;
    assert!(gave_up.is_err(), "the client timed out");
    let app_id = renzheng_store::AppId::from(id.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let b = balance(&app, &id).await;
        let rows = app
            .store
            .audit_page(&renzheng_store::AuditQuery {
                app_id: Some(app_id.clone()),
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        if b["reserved"] == 0 && !rows.is_empty() {
            assert_eq!(
                (b["remaining"].as_i64(), b["charged"].as_i64()),
                (Some(3), Some(0))
            );
            assert_eq!(rows.len(), 1);
            assert_eq!((rows[0].http_status, rows[0].charged), (499, false));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{b} {rows:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    hold.abort();
}

/// The audit rows of one app (at most 500).
async fn audit_rows(app: &TestApp, id: &str) -> Vec<renzheng_store::AuditRecord> {
    app.store
        .audit_page(&renzheng_store::AuditQuery {
            app_id: Some(renzheng_store::AppId::from(id.to_owned())),
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap()
}

/// `renzheng_checks_refused_total{reason}` as the app's `/metrics` says now.
async fn refused_metric(app: &TestApp, reason: &str) -> u64 {
    let text = app
        .request(Method::GET, "/metrics")
        .header("Accept", "text/plain")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("renzheng_checks_refused_total{{reason=\"{reason}\"}} ");
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix}in {text}"));
    value.parse::<f64>().unwrap() as u64
}

/// Issue 21, item 5: quota and throttle refusals are counted, not written. 1,000 checks
/// of an app without quota write no row; the throttled and expired ones neither; the
/// checks that were admitted are recorded as before.
async fn refusals_are_counted_not_audited(app: &TestApp) {
    let (id, code, _, _) = new_app(app, None).await;
    let body = check_body(app);
    let started = std::time::Instant::now();
    for _ in 0..20 {
        let batch = (0..50).map(|_| check_with(app, &code, &body));
        for response in futures_util::future::join_all(batch).await {
            assert_eq!(response.status(), 403);
            assert_eq!(message(&response), "Quota Exhausted");
        }
    }
    let rows = audit_rows(app, &id).await;
    eprintln!(
        "1000 quota-refused checks in {:?}: {} audit rows written",
        started.elapsed(),
        rows.len()
    );
    assert!(rows.is_empty(), "{rows:?}");
    assert_eq!(refused_metric(app, "quota_exhausted").await, 1000);

    // Expired calls: refused, counted, not written.
    let now = app.state.app.now_ms();
    let app_id = renzheng_store::AppId::from(id.clone());
    app.store
        .grant(&app_id, None, 5, Some(now - 1), now - 10_000)
        .await
        .unwrap();
    let response = check_with(app, &code, &body).await;
    assert_eq!(message(&response), "Quota Expired");
    assert_eq!(refused_metric(app, "quota_expired").await, 1);
    assert!(audit_rows(app, &id).await.is_empty());

    // Throttled: the admitted check is recorded (and charged), the throttled one is not.
    grant(app, &id, json!({"calls": 10})).await;
    let response = app
        .admin(Method::PUT, &format!("/admin/apps/{id}/policy"))
        .json(&json!({"rate_per_sec": 0.1, "rate_burst": 1, "alert_percent": 20}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(check_with(app, &code, &body).await.status(), 200);
    let response = check_with(app, &code, &body).await;
    assert_eq!(message(&response), "Throttled by APP Flow Control");
    assert_eq!(refused_metric(app, "throttled").await, 1);
    let rows = audit_rows(app, &id).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].http_status, rows[0].charged), (200, true));
    // Other refusals of an admitted check are still recorded, and free.
    app.admin(Method::PUT, &format!("/admin/apps/{id}/policy"))
        .json(&json!({"alert_percent": 20}))
        .send()
        .await
        .unwrap();
    let response = check_with(app, &code, &json!({"name": HU.name, "idCard": "12"})).await;
    assert_eq!(response.status(), 400);
    let rows = audit_rows(app, &id).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[0].http_status, rows[0].charged), (400, false));
    // The ledger still reconciles with the audit.
    let rec = app.store.reconcile(&app_id, 0).await.unwrap();
    assert_eq!((rec.ledger_charges, rec.audit_charged), (1, 1));
}

#[tokio::test]
async fn quota_and_throttle_refusals_are_counted_not_audited() {
    let app = spawn_test_app_with(|s| {
        s.limits.max_queued_jobs = 256;
    })
    .await;
    refusals_are_counted_not_audited(&app).await;
}

#[tokio::test]
async fn on_postgresql_quota_and_throttle_refusals_are_counted_not_audited() {
    let Some(db) = crate::postgres::scratch_database("refusals_are_counted_not_audited").await
    else {
        return;
    };
    let app = spawn_test_app_with(crate::postgres::node(&db)).await;
    refusals_are_counted_not_audited(&app).await;
}

/// Issue 21, item 5: the app's own endpoints have a limit of their own (apart from the
/// checks' rate limit, which they do not use up), and CSV exports a stricter one.
async fn own_endpoints_are_limited(app: &TestApp) {
    let (_, code, _, _) = new_app(app, Some(5)).await;
    let get = |path: &'static str| {
        app.request(Method::GET, path)
            .header("Authorization", format!("APPCODE {code}"))
            .send()
    };
    let responses = futures_util::future::join_all((0..40).map(|_| get("/v1/app/balance"))).await;
    let mut ok = 0;
    let mut throttled = 0;
    for response in responses {
        let response = response.unwrap();
        match response.status().as_u16() {
            200 => ok += 1,
            403 => {
                assert_eq!(message(&response), "Throttled by APP Flow Control");
                assert!(response.headers().contains_key("retry-after"));
                throttled += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        ok >= 20 && throttled >= 1,
        "{ok} answered, {throttled} throttled"
    );
    // The checks have their own budget.
    assert_eq!(check_with(app, &code, &check_body(app)).await.status(), 200);

    // Exports: three at once, then one a minute.
    let (_, code, _, _) = new_app(app, Some(5)).await;
    let export = || {
        app.request(Method::GET, "/v1/app/calls?format=csv")
            .header("Authorization", format!("APPCODE {code}"))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(export().await.unwrap().status(), 200);
    }
    let response = export().await.unwrap();
    assert_eq!(message(&response), "Throttled by APP Flow Control");
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // JSON pages are not exports.
    let response = app
        .request(Method::GET, "/v1/app/calls")
        .header("Authorization", format!("APPCODE {code}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_apps_own_endpoints_have_a_limit_of_their_own() {
    let app = spawn_test_app().await;
    own_endpoints_are_limited(&app).await;
}

#[tokio::test]
async fn on_postgresql_the_apps_own_endpoints_have_a_limit_of_their_own() {
    let Some(db) = crate::postgres::scratch_database("own_endpoints_are_limited").await else {
        return;
    };
    let app = spawn_test_app_with(crate::postgres::node(&db)).await;
    own_endpoints_are_limited(&app).await;
}

/// Issue 21, item 5: the CSV export is streamed a page at a time (no length known in
/// advance), every row once, newest first, across pages.
#[tokio::test]
async fn the_csv_export_is_streamed_page_by_page() {
    let app = spawn_test_app().await;
    let (id, code, _, _) = new_app(&app, None).await;
    let now = app.state.app.now_ms();
    let rows = 1_203;
    for n in 0..rows {
        let mut entry =
            renzheng_store::AuditEntry::new(now - 1_000 + n, format!("task-{n}"), 400, 1);
        entry.app_id = Some(renzheng_store::AppId::from(id.clone()));
        entry.error_code = Some("InvalidIdCard".into());
        app.store
            .finish_check(&entry, renzheng_store::Settle::Nothing)
            .await
            .unwrap();
    }
    for (request, what) in [
        (
            app.request(Method::GET, "/v1/app/calls?format=csv")
                .header("Authorization", format!("APPCODE {code}")),
            "the app's",
        ),
        (
            app.admin(Method::GET, &format!("/admin/calls?format=csv&app_id={id}")),
            "the operator's",
        ),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{what}");
        assert!(
            response.headers().get("content-length").is_none(),
            "{what} export is streamed: {:?}",
            response.headers()
        );
        let csv = response.text().await.unwrap();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some(renzheng_app::metering::CallsCsv::HEADER.trim_end())
        );
        let ids: Vec<i64> = lines
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(ids.len(), rows as usize, "{what}");
        assert!(
            ids.windows(2).all(|w| w[0] > w[1]),
            "{what}: newest first, once"
        );
    }
    // A bad filter is refused before anything is sent.
    let response = app
        .request(Method::GET, "/v1/app/calls?format=csv&from=2026-13-01")
        .header("Authorization", format!("APPCODE {code}"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, 400);
}

/// Issue 21, item 7: webhooks are held to imgUrl's address policy when set and when
/// delivered, and the test alert says only whether it arrived.
#[tokio::test]
async fn webhooks_reach_only_allowed_addresses_and_the_test_alert_says_only_delivered_or_not() {
    // No network opened: loopback and private addresses are refused when set.
    let strict = spawn_test_app_with(|s| s.img_url.allow = Vec::new()).await;
    let (hook, received) = webhook_receiver().await;
    let (id, code, _, _) = new_app(&strict, Some(1)).await;
    let port = hook.split(':').nth(2).unwrap().split('/').next().unwrap();
    for url in [
        hook.clone(),
        format!("http://localhost:{port}/hook"),
        "http://10.1.2.3/hook".to_owned(),
        "http://[::1]/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://[::ffff:127.0.0.1]/hook".to_owned(),
    ] {
        let response = strict
            .admin(Method::PUT, &format!("/admin/apps/{id}/policy"))
            .json(&json!({"alert_percent": 20, "webhook_url": url}))
            .send()
            .await
            .unwrap();
        let (status, _, why) = error_of(response).await;
        assert_eq!(status, 400, "{url}");
        assert!(why.contains("public address"), "{url}: {why}");
    }
    // One set before this release (or whose name now resolves elsewhere) is checked
    // again at delivery: nothing is posted, neither the test alert nor a real one.
    let app_id = renzheng_store::AppId::from(id.clone());
    let stored = renzheng_store::AppPolicy {
        webhook_url: Some(hook.clone()),
        ..Default::default()
    };
    strict.store.set_app_policy(&app_id, &stored).await.unwrap();
    let refused = strict
        .state
        .app
        .send_test_alert(&renzheng_app::Actor::Cli, &app_id)
        .await
        .unwrap();
    assert_eq!(
        refused.as_ref().unwrap_err(),
        "not delivered (no 2xx answer from an allowed address; the server log says why)"
    );
    assert_eq!(
        check_with(&strict, &code, &check_body(&strict))
            .await
            .status(),
        200
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let alerts = strict.store.recent_alerts(Some(&app_id), 10).await.unwrap();
        if let Some(alert) = alerts.first().filter(|a| a.last_error.is_some()) {
            assert!(alert.delivered_at.is_none());
            assert_eq!(
                alert.last_error.as_deref(),
                Some("refused: not an allowed address")
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{alerts:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        received.lock().unwrap().is_empty(),
        "nothing reached loopback"
    );

    // With the network opened (img_url.allow), the webhook works; a closed port and a
    // refused address read the same to the operator.
    let open = spawn_test_app().await;
    let (id, _, _, _) = new_app(&open, Some(1)).await;
    let app_id = renzheng_store::AppId::from(id.clone());
    let set = |url: String| {
        let open = &open;
        let id = id.clone();
        async move {
            let response = open
                .admin(Method::PUT, &format!("/admin/apps/{id}/policy"))
                .json(&json!({"alert_percent": 20, "webhook_url": url}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    };
    set(hook.clone()).await;
    let sent = open
        .state
        .app
        .send_test_alert(&renzheng_app::Actor::Cli, &app_id)
        .await
        .unwrap();
    assert_eq!(sent, Ok(()));
    assert_eq!(received.lock().unwrap().len(), 1);
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    set(format!("http://{}/hook", closed.local_addr().unwrap())).await;
    let not_sent = open
        .state
        .app
        .send_test_alert(&renzheng_app::Actor::Cli, &app_id)
        .await
        .unwrap();
    assert_eq!(
        not_sent, refused,
        "a closed port reads as a refused address"
    );
    drop(closed);
}
