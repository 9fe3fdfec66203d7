//! The admin API: enrolment (JSON and multipart), show, remove, apps.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn admin_api_requires_the_token_and_is_off_without_one() {
    let app = spawn_test_app().await;
    let response = app
        .request(Method::GET, "/admin/apps")
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(response).await;
    assert_eq!((status, code.as_str()), (401, "AdminUnauthorized"));
    let response = app
        .request(Method::GET, "/admin/apps")
        .bearer_auth("wrong-token-wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, 401);

    let off = spawn_test_app_with(|s| s.admin_token = None).await;
    let response = off.admin(Method::GET, "/admin/apps").send().await.unwrap();
    let (status, code, _) = error_of(response).await;
    assert_eq!((status, code.as_str()), (404, "AdminDisabled"));
}

#[tokio::test]
async fn enrol_show_check_remove_over_http() {
    let app = spawn_app().await;
    let person = DOT_NAME;
    // Enrol with a JSON body (one base64 photo, with a data URI prefix).
    let response = app
        .admin(Method::POST, "/admin/persons")
        .json(&json!({
            "name": person.name,
            "idCard": person.id(),
            "photos": [format!("data:image/jpeg;base64,{}", photo_b64(WEN_PORTRAIT))],
            "basis": "consent",
            "consentRef": "CF-2026-0001"
        }))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 201, "{body}");
    let text = body.to_string();
    assert!(
        !text.contains(&person.id()) && !text.contains("艾力"),
        "masked: {text}"
    );
    assert_eq!(body["data"]["portraits"].as_array().unwrap().len(), 1);

    // Show is masked.
    let response = app
        .admin(Method::POST, "/admin/persons/lookup")
        .json(&json!({"idCard": person.id()}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["id_number"],
        format!("{}**************{}", &person.id()[..2], &person.id()[16..])
    );

    // The enrolled portrait verifies (a differently typed middle dot is the same name).
    let typed = person.name.replace('·', "・");
    let response = app
        .check_json(&json!({"name": typed, "idCard": person.id(), "image": photo_b64(WEN_SAME)}))
        .await;
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"], 1, "{body}");

    // Remove, then the ID is unknown.
    let response = app
        .admin(Method::POST, "/admin/persons/remove")
        .json(&json!({"idCard": person.id()}))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_body(response).await.0, 200);
    let response = app
        .admin(Method::POST, "/admin/persons/remove")
        .json(&json!({"idCard": person.id()}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, 404);
    let data = app.check_result(person, WEN_SAME).await;
    assert_eq!(data["result"], 7);
}

#[tokio::test]
async fn enrolment_refuses_unusable_portraits_with_the_reason() {
    let app = spawn_app().await;
    let person = DOT_NAME;
    for (rel, reason) in [
        (NO_FACE, "no face"),
        (TOO_DARK, "too_dark"),
        (TEXT_AS_JPG, "not an image"),
    ] {
        let form = reqwest::multipart::Form::new()
            .text("name", person.name)
            .text("idCard", person.id())
            .text("basis", "consent")
            .text("consentRef", "CF-2026-0001")
            .part(
                "photo",
                reqwest::multipart::Part::bytes(photo(rel)).file_name("p.jpg"),
            );
        let response = app
            .admin(Method::POST, "/admin/persons")
            .multipart(form)
            .send()
            .await
            .unwrap();
        let (status, code, msg) = error_of(response).await;
        assert_eq!(status, 400, "{rel}: {msg}");
        assert!(
            code == "PortraitRefused" || code == "InvalidImage",
            "{rel}: {code}"
        );
        assert!(msg.contains(reason), "{rel}: {msg}");
    }
    // Nothing was written.
    let response = app
        .admin(Method::POST, "/admin/persons/lookup")
        .json(&json!({"idCard": person.id()}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, 404);

    // Multipart with a good photo works.
    let form = reqwest::multipart::Form::new()
        .text("name", person.name)
        .text("idCard", person.id())
        .text("basis", "consent")
        .text("consentRef", "CF-2026-0001")
        .part(
            "photo",
            reqwest::multipart::Part::bytes(photo(WEN_SAME)).file_name("p.jpg"),
        );
    let response = app
        .admin(Method::POST, "/admin/persons")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn apps_over_http() {
    let app = spawn_test_app().await;
    let response = app
        .admin(Method::POST, "/admin/apps")
        .json(&json!({"name": "partner"}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 201);
    let app_id = body["data"]["app_id"].as_str().unwrap().to_owned();
    let code = body["data"]["app_code"].as_str().unwrap().to_owned();
    let response = app
        .admin(Method::POST, &format!("/admin/apps/{app_id}/grants"))
        .json(&json!({"package": "c100"}))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_body(response).await.0, 201);

    let check = |code: String| {
        app.request(Method::POST, "/faceidcard/check")
            .header("Authorization", format!("APPCODE {code}"))
            .json(
                &json!({"name": UNKNOWN.name, "idCard": UNKNOWN.id(), "image": app.photo_b64(HU_SAME)}),
            )
            .send()
    };
    assert_eq!(
        status_and_body(check(code.clone()).await.unwrap()).await.0,
        200
    );

    let response = app.admin(Method::GET, "/admin/apps").send().await.unwrap();
    let (_, body) = status_and_body(response).await;
    assert!(body["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["app_id"] == app_id.as_str()));
    assert!(!body.to_string().contains(&code), "codes are never listed");

    let response = app
        .admin(Method::POST, &format!("/admin/apps/{app_id}/disable"))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_body(response).await.0, 200);
    assert_eq!(error_of(check(code.clone()).await.unwrap()).await.0, 403);
    let response = app
        .admin(Method::POST, &format!("/admin/apps/{app_id}/enable"))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_body(response).await.0, 200);
    assert_eq!(status_and_body(check(code).await.unwrap()).await.0, 200);
    let response = app
        .admin(Method::POST, "/admin/apps/app_nope/disable")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, 404);

    let response = app
        .admin(Method::GET, "/admin/audit?limit=5")
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200);
    assert!(!body["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn every_admin_mutation_leaves_an_event() {
    let app = spawn_test_app().await;
    let person = DOT_NAME;
    let response = app
        .admin(Method::POST, "/admin/persons")
        .json(&json!({"name": person.name, "idCard": person.id(), "photos": [app.photo_b64(WEN_PORTRAIT)], "basis": "law", "law": "反恐怖主义法 第二十一条"}))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_body(response).await.0, 201);
    let response = app
        .admin(Method::POST, "/admin/apps")
        .json(&json!({"name": "partner"}))
        .send()
        .await
        .unwrap();
    let (_, body) = status_and_body(response).await;
    let app_id = body["data"]["app_id"].as_str().unwrap().to_owned();
    let response = app
        .admin(Method::POST, &format!("/admin/apps/{app_id}/disable"))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_body(response).await.0, 200);

    let events = |limit: u32| {
        app.admin(Method::GET, &format!("/admin/events?limit={limit}"))
            .send()
    };
    let (_, body) = status_and_body(events(4).await.unwrap()).await;
    let enrolled = &body["data"][2];
    assert_eq!(enrolled["action"], "person.enrolled");
    assert_eq!(enrolled["target"], person_masked(person));

    let response = app
        .admin(Method::POST, "/admin/persons/remove")
        .json(&json!({"idCard": person.id()}))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_body(response).await.0, 200);

    // The newest four: the test app's own set-up (created and granted from the CLI side)
    // comes before them.
    let (status, body) = status_and_body(events(4).await.unwrap()).await;
    assert_eq!(status, 200);
    let rows = body["data"].as_array().unwrap();
    let actions: Vec<&str> = rows.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "person.removed",
            "app.disabled",
            "app.created",
            "person.enrolled"
        ]
    );
    for e in rows {
        assert_eq!(e["actor"], "admin-api");
        assert!(
            e["request_id"].as_str().is_some_and(|r| r.len() == 36),
            "{e}"
        );
    }
    assert_eq!(rows[1]["target"], app_id.as_str());
    assert_eq!(rows[2]["target"], app_id.as_str());
    // The removed person is unlinked from the trail, and was never in it in clear.
    assert!(rows[3]["target"].is_null(), "{}", rows[3]);
    assert!(rows[0]["target"].is_null(), "{}", rows[0]);
    let text = body.to_string();
    assert!(!text.contains(&person.id()) && !text.contains(person.name));
    let (_, body) = status_and_body(events(1).await.unwrap()).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
}

/// The masked form of a test person's ID number, as the service prints it.
fn person_masked(person: Person) -> String {
    renzheng_domain::IdNumber::parse(&person.id())
        .unwrap()
        .masked()
}

#[tokio::test]
async fn reembed_over_http_lists_who_lacks_the_active_packs_embeddings() {
    let app = spawn_test_app().await;
    // A person enrolled under another pack, no kept photo: still answers 5 after the
    // re-embedding, and is listed (masked) for a re-import.
    let id = renzheng_domain::IdNumber::parse(&UNKNOWN.id()).unwrap();
    let name = renzheng_domain::PersonName::parse(UNKNOWN.name).unwrap();
    app.store
        .enrol(
            &id,
            &name,
            vec![renzheng_store::NewPortrait {
                model_id: "another-pack".into(),
                embedding: vec![0.5; 128],
                quality: None,
                photo: None,
            }],
            None,
            app.state.app.now_ms(),
        )
        .await
        .unwrap();
    let response = app
        .request(Method::POST, "/admin/registry/reembed")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = app
        .admin(Method::POST, "/admin/registry/reembed")
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["model_id"], app.model_id());
    assert_eq!(data["missing"], 1, "{body}");
    assert_eq!(data["reembedded"], 0);
    assert_eq!(data["without_photo"], json!([id.masked()]));
    assert!(
        !body.to_string().contains(&UNKNOWN.id()),
        "clear ID number: {body}"
    );
}

#[tokio::test]
async fn the_registry_endpoints_refuse_bad_input_with_a_clear_error() {
    let app = spawn_test_app().await;
    let post = |path: &'static str, body: serde_json::Value| {
        app.admin(Method::POST, path).json(&body).send()
    };
    // Not JSON at all.
    for path in [
        "/admin/persons/lookup",
        "/admin/persons/rename",
        "/admin/persons/replace",
        "/admin/persons/remove",
        "/admin/registry/duplicates",
    ] {
        let response = app
            .admin(Method::POST, path)
            .header("Content-Type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_of(response).await;
        assert_eq!((status, code.as_str()), (400, "MalformedBody"), "{path}");
    }
    let hu = HU.id();
    let cases = [
        (
            "/admin/persons/lookup",
            json!({"idCard": "p-xyz"}),
            400,
            "InvalidParameter",
        ),
        (
            "/admin/persons/lookup",
            json!({"idCard": "12345"}),
            400,
            "InvalidIdCard",
        ),
        (
            "/admin/persons/lookup",
            json!({"idCard": UNKNOWN.id()}),
            404,
            "NotFound",
        ),
        (
            "/admin/persons/lookup",
            json!({"idCard": "p-0000000000000000"}),
            404,
            "NotFound",
        ),
        (
            "/admin/persons/remove",
            json!({"idCard": UNKNOWN.id()}),
            404,
            "NotFound",
        ),
        (
            "/admin/persons/rename",
            json!({"idCard": hu, "name": "A1", "reason": "更正"}),
            400,
            "InvalidName",
        ),
        (
            "/admin/persons/rename",
            json!({"idCard": UNKNOWN.id(), "name": "李五", "reason": "更正"}),
            404,
            "NotFound",
        ),
        (
            "/admin/persons/rename",
            json!({"idCard": hu, "name": "胡锦滔", "reason": "x".repeat(501)}),
            400,
            "InvalidParameter",
        ),
        (
            "/admin/persons/rename",
            json!({"idCard": hu, "name": "胡锦滔", "reason": "line\nbreak"}),
            400,
            "InvalidParameter",
        ),
        (
            "/admin/persons/replace",
            json!({"idCard": hu, "photos": [], "reason": "重新办证"}),
            400,
            "MissingParameter",
        ),
        (
            "/admin/persons/replace",
            json!({"idCard": hu, "photos": ["%%% not base64"], "reason": "重新办证"}),
            400,
            "InvalidImage",
        ),
        (
            "/admin/registry/duplicates",
            json!({"reveal": true, "reason": " "}),
            400,
            "ReasonRequired",
        ),
    ];
    for (path, body, status, code) in cases {
        let (got, got_code, message) = error_of(post(path, body.clone()).await.unwrap()).await;
        assert_eq!(
            (got, got_code.as_str()),
            (status, code),
            "{path} {body}: {message}"
        );
        assert!(!message.contains(&hu), "{message}");
    }
    // Nothing changed.
    assert_eq!(app.check_result(HU, HU_SAME).await["result"], 1);
}

#[tokio::test]
async fn a_person_is_named_in_a_url_by_handle_never_by_id_number() {
    let app = spawn_test_app().await;
    let lookup = app
        .admin(Method::POST, "/admin/persons/lookup")
        .json(&json!({"idCard": HU.id()}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(lookup).await;
    assert_eq!(status, 200, "{body}");
    let handle = body["data"]["handle"].as_str().unwrap().to_owned();
    // The ID number in a path would reach every access log on the way: refused, unread.
    for method in [Method::GET, Method::DELETE] {
        let response = app
            .admin(method.clone(), &format!("/admin/persons/{}", HU.id()))
            .send()
            .await
            .unwrap();
        let (status, code, msg) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "InvalidParameter"),
            "{method}"
        );
        assert!(msg.contains("/admin/persons/lookup"), "{msg}");
    }
    let (status, body) = status_and_body(
        app.admin(Method::GET, &format!("/admin/persons/{handle}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["handle"], handle.as_str());
    let response = app
        .admin(Method::DELETE, &format!("/admin/persons/{handle}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.check_result(HU, HU_SAME).await["result"], 7);
    let gone = app
        .admin(Method::GET, &format!("/admin/persons/{handle}"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(gone).await.0, 404);
}
