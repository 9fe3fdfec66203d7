//! No log line may hold a test name or ID number in clear.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn logs_never_contain_names_or_id_numbers_in_clear() {
    let app = spawn_app().await;
    // A full run touching every path that logs: results, refusals, admin.
    for (person, rel) in [
        (HU, HU_SAME),
        (JIANG, JIANG_OTHER),
        (NO_PHOTO, HU_SAME),
        (UNKNOWN, HU_SAME),
        (HU, NO_FACE),
        (HU, TOO_DARK),
    ] {
        app.check_result(person, rel).await;
    }
    let _ = app
        .check_json(&json!({"name": JIANG.name, "idCard": HU.id(), "image": photo_b64(HU_SAME)}))
        .await;
    let _ = app
        .check_json(&json!({"name": HU.name, "idCard": format!("{}0", &HU.id()[..17])}))
        .await;
    let _ = app
        .check_json(&json!({"name": HU.name, "idCard": HU.id(), "image": photo_b64(TRUNCATED)}))
        .await;
    let _ = app
        .admin(Method::POST, "/admin/persons")
        .json(&json!({"name": DOT_NAME.name, "idCard": DOT_NAME.id(), "photos": [photo_b64(HU_SAME)], "basis": "consent", "consentRef": "CF-2026-0002"}))
        .send()
        .await
        .unwrap();
    let _ = app
        .admin(Method::POST, "/admin/persons/lookup")
        .json(&json!({"idCard": DOT_NAME.id()}))
        .send()
        .await
        .unwrap();
    let _ = app
        .admin(Method::POST, "/admin/persons/remove")
        .json(&json!({"idCard": DOT_NAME.id()}))
        .send()
        .await
        .unwrap();
    // A form-encoded check whose signature fails: its string-to-sign holds the decoded
    // name and ID number, and goes back to the client only.
    let body = url_encode(&[("name", HU.name), ("idCard", &HU.id())]);
    let mut headers = vec![
        (
            "Content-Type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("X-Ca-Key".to_owned(), app.app_key.clone()),
        (
            "X-Ca-Timestamp".to_owned(),
            app.state.app.now_ms().to_string(),
        ),
        (
            "X-Ca-Signature-Headers".to_owned(),
            "X-Ca-Key,X-Ca-Timestamp".to_owned(),
        ),
    ];
    let signed = python_sign(&json!({
        "method": "POST", "path": "/faceidcard/check", "headers": headers, "body": body,
        "secret": "not-the-secret", "no_content_md5": true,
    }));
    headers.push((
        "X-Ca-Signature".into(),
        signed["signature"].as_str().unwrap().into(),
    ));
    let mut request = app.request(Method::POST, "/faceidcard/check");
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let response = request.body(body).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let echoed = response.headers()["x-ca-error-message"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        echoed.contains(&HU.id()),
        "the client gets its own string-to-sign"
    );

    // The registry's refusals, which quote what is on record to the caller.
    for (path, body) in [
        (
            "/admin/persons",
            json!({"name": JIANG.name, "idCard": HU.id(), "photos": []}),
        ),
        (
            "/admin/persons/rename",
            json!({"idCard": HU.id(), "name": JIANG.name, "reason": ""}),
        ),
        (
            "/admin/persons/rename",
            json!({"idCard": format!("{}0", &HU.id()[..17]), "name": HU.name, "reason": "x"}),
        ),
        ("/admin/persons/lookup", json!({"idCard": UNKNOWN.id()})),
        (
            "/admin/persons",
            json!({"name": UNKNOWN.name, "idCard": UNKNOWN.id(), "photos": [photo_b64(HU_SAME)],
                   "basis": "consent", "consentRef": "CF-2026-0004"}),
        ),
        // No legal basis, and a child's face without a guardian's consent.
        (
            "/admin/persons",
            json!({"name": UNKNOWN.name, "idCard": UNKNOWN.id(), "photos": [photo_b64(HU_SAME)]}),
        ),
        (
            "/admin/persons",
            json!({"name": CHILD.name, "idCard": CHILD.id(), "photos": [photo_b64(HU_SAME)],
                   "basis": "consent", "consentRef": "CF-2026-0005"}),
        ),
    ] {
        let response = app
            .admin(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(!response.status().is_success(), "{path}");
    }
    // A form body the check cannot read, and a JSON one that quotes the ID number back.
    let _ = app
        .request(Method::POST, "/faceidcard/check")
        .header("Authorization", format!("APPCODE {}", app.app_code))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("name={}&idCard={}&image=%%%", HU.name, HU.id()))
        .send()
        .await
        .unwrap();
    let _ = app
        .request(Method::POST, "/faceidcard/check")
        .header("Authorization", format!("APPCODE {}", app.app_code))
        .header("Content-Type", "application/json")
        .body(format!(
            r#"{{"name":"{}","idCard":["{}"]}}"#,
            HU.name,
            HU.id()
        ))
        .send()
        .await
        .unwrap();

    let logs = captured_logs();
    assert!(logs.contains("check completed"), "the logs were captured");
    for person in ALL_PEOPLE {
        let id = person.id();
        assert!(!logs.contains(&id), "ID number in clear in the logs");
        assert!(
            !logs.contains(&id.to_lowercase()),
            "ID number in clear in the logs"
        );
        assert!(
            !logs.contains(&id[..17]),
            "ID number prefix in clear in the logs"
        );
        assert!(!logs.contains(person.name), "name in clear in the logs");
    }
}
