//! Every 400 / 403 / 413 / 415 path of the check endpoint.

use base64::Engine as _;
use serde_json::json;

use crate::helpers::*;

async fn expect_error(app: &TestApp, body: serde_json::Value, status: u16, code: &str) -> String {
    let (got_status, got_code, msg) = error_of(app.check_json(&body).await).await;
    assert_eq!(
        (got_status, got_code.as_str()),
        (status, code),
        "{body:?} → {msg}"
    );
    msg
}

#[tokio::test]
async fn missing_wrong_or_disabled_appcode_is_403_unauthorized() {
    let app = spawn_test_app().await;
    let body = json!({"name": HU.name, "idCard": HU.id(), "image": app.photo_b64(HU_SAME)});
    for auth in [
        None,
        Some("APPCODE wrong-code"),
        Some("Bearer something"),
        Some("APPCODE "),
    ] {
        let mut request = app
            .request(reqwest::Method::POST, "/faceidcard/check")
            .json(&body);
        if let Some(value) = auth {
            request = request.header("Authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["x-ca-error-message"], "Unauthorized");
        let (status, code, _) = error_of(response).await;
        assert_eq!((status, code.as_str()), (403, "Unauthorized"), "{auth:?}");
    }
    // A disabled app is refused the same way, and enabled again works.
    let apps = app.store.list_apps().await.unwrap();
    app.store.set_app_enabled(&apps[0].id, false).await.unwrap();
    let (status, code, _) = error_of(app.check_json(&body).await).await;
    assert_eq!((status, code.as_str()), (403, "Unauthorized"));
    app.store.set_app_enabled(&apps[0].id, true).await.unwrap();
    let (status, _) = status_and_body(app.check_json(&body).await).await;
    assert_eq!(status, 200);
    // Only the one authenticated check is in the audit.
    let audit = app.store.recent_audit(100).await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
}

#[tokio::test]
async fn auth_comes_before_validation() {
    let app = spawn_test_app().await;
    let response = app
        .request(reqwest::Method::POST, "/faceidcard/check")
        .header("Authorization", "APPCODE nope")
        .json(&json!({"idCard": "garbage"}))
        .send()
        .await
        .unwrap();
    let (status, _, _) = error_of(response).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn missing_fields_are_400() {
    let app = spawn_test_app().await;
    let img = app.photo_b64(HU_SAME);
    let m = expect_error(
        &app,
        json!({"idCard": HU.id(), "image": img}),
        400,
        "MissingParameter",
    )
    .await;
    assert!(m.contains("name"), "{m}");
    let m = expect_error(
        &app,
        json!({"name": HU.name, "image": img}),
        400,
        "MissingParameter",
    )
    .await;
    assert!(m.contains("idCard"), "{m}");
    let m = expect_error(
        &app,
        json!({"name": HU.name, "idCard": HU.id()}),
        400,
        "MissingParameter",
    )
    .await;
    assert!(m.contains("image") && m.contains("imgUrl"), "{m}");
    let m = expect_error(
        &app,
        json!({"name": "  ", "idCard": HU.id(), "image": img}),
        400,
        "MissingParameter",
    )
    .await;
    assert!(m.contains("name"), "{m}");
    expect_error(
        &app,
        json!({"name": 5, "idCard": HU.id(), "image": img}),
        400,
        "InvalidParameter",
    )
    .await;
    expect_error(
        &app,
        json!({"name": "张3", "idCard": HU.id(), "image": img}),
        400,
        "InvalidName",
    )
    .await;
}

#[tokio::test]
async fn each_id_number_error_has_its_reason() {
    let app = spawn_test_app().await;
    let img = app.photo_b64(HU_SAME);
    let cases = [
        ("1101051942122", "18 characters"),  // length
        ("11010519421221A01X", "character"), // characters
        (
            with_check_char("11010519420230001").leak() as &str,
            "not a real date",
        ), // impossible date
        (
            with_check_char("11010520990101001").leak() as &str,
            "future",
        ), // future date
        (
            with_check_char("99010519421221001").leak() as &str,
            "region",
        ), // unknown region
        ("110105194212210010", "check character"), // checksum
    ];
    for (id, reason) in cases {
        let m = expect_error(
            &app,
            json!({"name": HU.name, "idCard": id, "image": img}),
            400,
            "InvalidIdCard",
        )
        .await;
        assert!(m.contains(reason), "{id}: {m}");
        assert!(!m.contains(id), "the message must not echo the number: {m}");
    }
}

#[tokio::test]
async fn bad_photos_are_400_with_specific_messages() {
    let app = spawn_test_app().await;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let with = |image: String| json!({"name": HU.name, "idCard": HU.id(), "image": image});

    let m = expect_error(&app, with("@@not base64@@".into()), 400, "InvalidImage").await;
    assert!(m.contains("base64"), "{m}");
    let m = expect_error(
        &app,
        with("data:image/jpeg,abc".into()),
        400,
        "InvalidImage",
    )
    .await;
    assert!(m.contains("data:"), "{m}");
    // Over 1 MB decoded (a JPEG signature followed by padding), inside the body limit.
    let mut big = app.photo(HU_SAME);
    big.resize(1024 * 1024 + 1, 0);
    let m = expect_error(&app, with(b64(&big)), 400, "ImageTooLarge").await;
    assert!(m.contains("limit"), "{m}");
    let m = expect_error(
        &app,
        with(b64(&app.photo(TEXT_AS_JPG))),
        400,
        "InvalidImage",
    )
    .await;
    assert!(m.contains("not an image"), "{m}");
    let m = expect_error(
        &app,
        with(b64(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")),
        400,
        "InvalidImage",
    )
    .await;
    assert!(m.contains("unsupported"), "{m}");
    // Corrupt: a JPEG cut short passes the signature check and fails in the decoder.
    let m = expect_error(&app, with(b64(&app.photo(TRUNCATED))), 400, "InvalidImage").await;
    assert!(m.contains("corrupt") || m.contains("truncated"), "{m}");
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let app = spawn_test_app().await;
    let huge = "A".repeat(3 * 1024 * 1024);
    let response = app
        .check_json(&json!({"name": HU.name, "idCard": HU.id(), "image": huge}))
        .await;
    let (status, code, _) = error_of(response).await;
    assert_eq!((status, code.as_str()), (413, "PayloadTooLarge"));
}

#[tokio::test]
async fn malformed_and_unsupported_bodies() {
    let app = spawn_test_app().await;
    let send = |ct: &'static str, body: &'static str| {
        app.request(reqwest::Method::POST, "/faceidcard/check")
            .header("Authorization", format!("APPCODE {}", app.app_code))
            .header("Content-Type", ct)
            .body(body)
            .send()
    };
    let (status, code, _) = error_of(send("application/json", "{not json").await.unwrap()).await;
    assert_eq!((status, code.as_str()), (400, "MalformedBody"));
    let (status, code, _) = error_of(send("application/json", "[1,2]").await.unwrap()).await;
    assert_eq!((status, code.as_str()), (400, "MalformedBody"));
    let (status, code, _) = error_of(send("text/plain", "name=x").await.unwrap()).await;
    assert_eq!((status, code.as_str()), (415, "UnsupportedMediaType"));
}

#[tokio::test]
async fn a_field_sent_twice_is_refused_in_every_encoding() {
    let app = spawn_test_app().await;
    let photo = app.photo_b64(HU_SAME);
    let id = HU.id();
    // JSON: a raw body, since a JSON value cannot hold a key twice.
    let raw = format!(
        r#"{{"name":"{}","name":"{}","idCard":"{id}","image":"{photo}"}}"#,
        HU.name, JIANG.name
    );
    let response = app
        .request(reqwest::Method::POST, "/faceidcard/check")
        .header("Authorization", format!("APPCODE {}", app.app_code))
        .header("Content-Type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    let (status, code, msg) = error_of(response).await;
    assert_eq!((status, code.as_str()), (400, "MalformedBody"), "{msg}");
    assert!(msg.contains("name"), "{msg}");
    let response = app
        .check_form(&[
            ("name", HU.name),
            ("idCard", &id),
            ("idCard", &id),
            ("image", &photo),
        ])
        .await;
    let (status, code, msg) = error_of(response).await;
    assert_eq!((status, code.as_str()), (400, "MalformedBody"), "{msg}");
    assert!(msg.contains("idCard"), "{msg}");
    // Admin multipart enrolment.
    let form = reqwest::multipart::Form::new()
        .text("name", HU.name)
        .text("name", JIANG.name)
        .text("idCard", id.clone());
    let response = app
        .admin(reqwest::Method::POST, "/admin/persons")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(response).await;
    assert_eq!((status, code.as_str()), (400, "MalformedBody"));
    assert!(app
        .store
        .recent_audit(10)
        .await
        .unwrap()
        .iter()
        .all(|r| r.result.is_none()));
}
