//! Health, readiness, metrics, OpenAPI, fallbacks and backpressure.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_test_app().await;
    let r = app.request(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-ca-request-id"));
    let r = app.request(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["model_id"], app.model_id());
}

#[tokio::test]
async fn metrics_count_requests_by_route_status_result_and_engine_stages() {
    let app = spawn_test_app().await;
    app.check_result(HU, HU_SAME).await;
    let text = app
        .request(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("renzheng_http_requests_total")
                && l.contains("route=\"/faceidcard/check\"")
                && l.contains("status=\"200\"")
                && l.contains("result=\"1\"")),
        "{text}"
    );
    for stage in ["decode", "detect", "landmarks", "align", "embed"] {
        assert!(
            text.lines().any(
                |l| l.starts_with("renzheng_engine_stage_duration_seconds_count")
                    && l.contains(&format!("stage=\"{stage}\""))
            ),
            "{stage}: {text}"
        );
    }
}

#[tokio::test]
async fn openapi_documents_exactly_what_is_routed() {
    let app = spawn_test_app().await;
    let doc: serde_json::Value = app
        .request(Method::GET, "/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    // Documented ⇒ routed: every documented operation reaches a handler, never the
    // router's fallbacks (whose answers are taken from an unrouted path and an unrouted
    // method). Routed ⇒ documented holds by construction: routes are only added with
    // `routes!` on documented handlers (`startup::routes`).
    let unrouted = error_of(
        app.admin(Method::GET, "/no/such/route")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let wrong_method = error_of(app.admin(Method::PATCH, "/healthz").send().await.unwrap()).await;
    assert_eq!((unrouted.0, wrong_method.0), (404, 405));
    let paths = doc["paths"].as_object().unwrap();
    for (path, item) in paths {
        let concrete = path.replace("{id}", "11010519491231002X");
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app.admin(method.clone(), &concrete).send().await.unwrap();
            if response.status().is_success() {
                continue;
            }
            let answer = error_of(response).await;
            assert!(
                answer != unrouted && answer != wrong_method,
                "{method} {path} is documented but not routed: {answer:?}"
            );
        }
    }
    // The endpoints a caller of the product expects, each with its methods.
    for (path, method) in [
        ("/faceidcard/check", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/admin/persons", "post"),
        ("/admin/persons/{id}", "get"),
        ("/admin/persons/{id}", "delete"),
        ("/admin/apps", "post"),
        ("/admin/apps", "get"),
        ("/admin/apps/{id}/disable", "post"),
        ("/admin/apps/{id}/enable", "post"),
        ("/admin/audit", "get"),
        ("/admin/events", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    let check = &doc["paths"]["/faceidcard/check"]["post"];
    assert!(check["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object());
    let data = doc["components"]["schemas"]["CheckData"]["properties"]
        .as_object()
        .unwrap();
    for field in [
        "result", "desc", "score", "sex", "birthday", "address", "quality",
    ] {
        assert!(data.contains_key(field), "CheckData.{field} missing");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_envelope() {
    let app = spawn_test_app().await;
    let (status, code, _) = error_of(app.request(Method::GET, "/nope").send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (404, "NotFound"));
    let (status, code, _) = error_of(
        app.request(Method::GET, "/faceidcard/check")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (405, "MethodNotAllowed"));
}

#[tokio::test]
async fn saturated_engine_answers_503_with_retry_after() {
    // One engine slot, no queue: holding the slot makes the next check deterministic.
    let app = spawn_test_app_with(|s| {
        s.engine.sessions = 1;
        s.limits.max_queued_jobs = 0;
        s.limits.retry_after_secs = 3;
    })
    .await;
    let held = app.state.app.gate().acquire().await.unwrap();
    let response = app
        .check_json(&json!({"name": HU.name, "idCard": HU.id(), "image": app.photo_b64(HU_SAME)}))
        .await;
    assert_eq!(response.headers()["retry-after"], "3");
    let (status, code, _) = error_of(response).await;
    assert_eq!((status, code.as_str()), (503, "ServiceBusy"));
    // Checks that never reach the engine are unaffected.
    assert_eq!(app.check_result(UNKNOWN, HU_SAME).await["result"], 7);
    drop(held);
    assert_eq!(app.check_result(HU, HU_SAME).await["result"], 1);
}

#[tokio::test]
async fn queued_checks_wait_for_a_slot() {
    let app = spawn_test_app_with(|s| {
        s.engine.sessions = 1;
        s.limits.max_queued_jobs = 4;
        s.limits.queue_timeout_ms = 10_000;
    })
    .await;
    let held = app.state.app.gate().acquire().await.unwrap();
    let body = json!({"name": HU.name, "idCard": HU.id(), "image": app.photo_b64(HU_SAME)});
    let pending = app.check_json(&body);
    let release = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        drop(held);
    };
    let (response, ()) = tokio::join!(pending, release);
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["result"], 1);
}
