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

/// What Prometheus 2 sends: OpenMetrics first, the classic format as a fallback.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// `GET /metrics` with `accept`: (status, Content-Type, Vary, body).
async fn scrape(app: &TestApp, accept: &str) -> (u16, String, String, String) {
    let r = app
        .request(Method::GET, "/metrics")
        .header("Accept", accept)
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (content_type, vary) = (header("content-type"), header("vary"));
    (
        r.status().as_u16(),
        content_type,
        vary,
        r.text().await.unwrap(),
    )
}

/// The value of the sample written exactly `series` (name and labels), if any.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.split(' ').next().unwrap().parse().unwrap())
}

fn legal_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Checks `text` the way a strict parser of the classic Prometheus text format 0.0.4
/// reads it: every family has one HELP and one TYPE line before its first sample, each
/// sample belongs to the family typed just before it (a counter's name is its samples'
/// `…_total`; a histogram's samples are its `_bucket`, `_sum` and `_count`), names and
/// labels are well formed, values are numbers, and nothing of OpenMetrics is left
/// (`# EOF`, `# UNIT`, `_created`, exemplars).
fn assert_classic_exposition(text: &str) {
    use std::collections::{HashMap, HashSet};
    let mut types: HashMap<&str, &str> = HashMap::new();
    let mut helped: HashSet<&str> = HashSet::new();
    let mut sampled: HashSet<&str> = HashSet::new();
    let mut current: Option<&str> = None;
    for line in text.lines() {
        assert!(!line.is_empty(), "blank line in:\n{text}");
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(legal_name(name), "{line}");
            assert!(helped.insert(name), "second HELP: {line}");
            assert!(!sampled.contains(name), "HELP after samples: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(legal_name(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{line}");
            }
            assert!(types.insert(name, kind).is_none(), "second TYPE: {line}");
            current = Some(name);
            continue;
        }
        assert!(!line.starts_with('#'), "not a 0.0.4 line: {line}");
        let name_end = line.find(['{', ' ']).unwrap();
        let name = &line[..name_end];
        assert!(legal_name(name), "{line}");
        assert!(!name.ends_with("_created"), "{line}");
        let mut rest = &line[name_end..];
        if let Some(labels) = rest.strip_prefix('{') {
            let end = labels.find('}').expect("label values here hold no brace");
            for pair in labels[..end].split(',').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap();
                assert!(legal_name(key) && !key.starts_with("__"), "{line}");
                assert!(value.starts_with('"') && value.ends_with('"'), "{line}");
            }
            rest = &labels[end + 1..];
        }
        let fields: Vec<&str> = rest.trim_start().split(' ').collect();
        assert_eq!(
            fields.len(),
            1,
            "a value and nothing else (no exemplar): {line}"
        );
        assert!(
            fields[0].parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&fields[0]),
            "{line}"
        );
        let family = current.unwrap_or_else(|| panic!("sample before any TYPE: {line}"));
        let belongs = match types[family] {
            "histogram" => ["_bucket", "_sum", "_count"]
                .iter()
                .any(|s| name.strip_suffix(s) == Some(family)),
            _ => name == family,
        };
        assert!(
            belongs,
            "{line} is not of the family {family} typed before it"
        );
        sampled.insert(family);
    }
    let typed: HashSet<&str> = types.keys().copied().collect();
    assert_eq!(typed, helped, "every family has both a HELP and a TYPE");
    assert!(!text.contains("# EOF"));
}

/// `text` read by the reference parser, Python's `prometheus_client`, when the
/// interpreter in `RENZHENG_COMPAT_PYTHON` (the compatibility suite's virtualenv, which
/// pins it; else `RENZHENG_PYTHON`, else `python3`) has it: every family with its type
/// (counters under their name without `_total`, as that parser names them). `None`
/// without it, unless `RENZHENG_COMPAT_REQUIRED=1` (as in `scripts/test.sh`): then the
/// parser must be there.
fn python_families(text: &str) -> Option<Vec<(String, String)>> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let python = std::env::var("RENZHENG_COMPAT_PYTHON")
        .or_else(|_| std::env::var("RENZHENG_PYTHON"))
        .unwrap_or_else(|_| "python3".into());
    let required = std::env::var("RENZHENG_COMPAT_REQUIRED").is_ok_and(|v| v == "1");
    let script = "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as parse\nfor f in parse(sys.stdin.read()):\n    print(f.name, f.type)\n";
    let has_it = Command::new(&python)
        .args(["-c", "import prometheus_client.parser"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_it || !required,
        "prometheus_client is not installed for {python}: run scripts/compat-setup.sh"
    );
    if !has_it {
        eprintln!("prometheus_client is not installed for {python}: the classic format is checked by its structure only");
        return None;
    }
    let mut child = Command::new(&python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused the text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let (name, kind) = l.split_once(' ').unwrap();
                (name.to_owned(), kind.to_owned())
            })
            .collect(),
    )
}

#[tokio::test]
async fn metrics_answer_openmetrics_to_prometheus_and_the_classic_format_to_the_rest() {
    let app = spawn_test_app().await;
    app.check_result(HU, HU_SAME).await;
    let refused = app
        .request(Method::POST, "/faceidcard/check")
        .header("Authorization", "APPCODE not-a-code")
        .json(&json!({"name": HU.name, "idCard": HU.id(), "image": app.photo_b64(HU_SAME)}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);

    let (status, content_type, vary, text) = scrape(&app, PROMETHEUS_ACCEPT).await;
    assert_eq!(status, 200);
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert_eq!(vary.to_ascii_lowercase(), "accept");
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("\n# TYPE renzheng_http_requests counter\n"),
        "{text}"
    );
    assert_eq!(sample(&text, "renzheng_auth_failures_total"), Some(1.0));

    for accept in [
        "text/plain; version=0.0.4",
        "*/*",
        "text/plain;version=0.0.4;q=0.9, application/openmetrics-text;q=0.1",
    ] {
        let (status, content_type, vary, text) = scrape(&app, accept).await;
        assert_eq!(status, 200);
        assert_eq!(
            content_type, "text/plain; version=0.0.4; charset=utf-8",
            "{accept}"
        );
        assert_eq!(vary.to_ascii_lowercase(), "accept");
        assert_classic_exposition(&text);
        for family in [
            "renzheng_http_requests_total counter",
            "renzheng_http_request_duration_seconds histogram",
            "renzheng_engine_stage_duration_seconds histogram",
            "renzheng_engine_saturated_total counter",
            "renzheng_auth_failures_total counter",
            "renzheng_http_requests_in_flight gauge",
            "renzheng_build_info gauge",
            "renzheng_app_quota_remaining gauge",
        ] {
            assert!(
                text.contains(&format!("\n# TYPE {family}\n")),
                "{family}: {text}"
            );
        }
        assert_eq!(sample(&text, "renzheng_auth_failures_total"), Some(1.0));
        assert!(
            text.lines().any(|l| l.starts_with(
                "renzheng_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/faceidcard/check\"} "
            )),
            "{text}"
        );
        if let Some(families) = python_families(&text) {
            assert!(
                families.iter().all(|(_, kind)| kind != "unknown"),
                "{families:?}"
            );
            for (name, kind) in [
                ("renzheng_http_requests", "counter"),
                ("renzheng_auth_failures", "counter"),
                ("renzheng_http_request_duration_seconds", "histogram"),
                ("renzheng_build_info", "gauge"),
            ] {
                assert!(
                    families.contains(&(name.to_owned(), kind.to_owned())),
                    "{name} {kind}: {families:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn metrics_report_the_process_and_the_build() {
    let app = spawn_test_app().await;
    let (_, _, _, classic) = scrape(&app, "text/plain; version=0.0.4").await;
    let (_, _, _, open) = scrape(&app, PROMETHEUS_ACCEPT).await;
    let build = format!(
        "renzheng_build_info{{version=\"{}\",pack=\"{}\"}}",
        env!("CARGO_PKG_VERSION"),
        app.model_id()
    );
    for text in [&classic, &open] {
        assert_eq!(sample(text, &build), Some(1.0), "{text}");
    }
    if cfg!(target_os = "linux") {
        for text in [&classic, &open] {
            for name in [
                "process_resident_memory_bytes",
                "process_virtual_memory_bytes",
                "process_cpu_seconds_total",
                "process_open_fds",
                "process_max_fds",
            ] {
                assert!(
                    sample(text, name).is_some_and(|v| v > 0.0),
                    "{name}: {text}"
                );
            }
            let started = sample(text, "process_start_time_seconds").unwrap();
            // The app runs on the system clock here.
            let now = app.state.app.now_ms() as f64 / 1000.0;
            assert!(
                started > now - 86_400.0 && started <= now + 1.0,
                "{started} {now}"
            );
        }
        assert!(classic.contains("\n# TYPE process_cpu_seconds_total counter\n"));
        assert!(open.contains("\n# TYPE process_cpu_seconds counter\n"));
    }
}

#[tokio::test]
async fn metrics_report_each_enabled_apps_remaining_calls() {
    let app = spawn_test_app().await;
    let quota = |id: &str| format!("renzheng_app_quota_remaining{{app_id=\"{id}\"}}");
    let remaining = |text: &str, id: &str| sample(text, &quota(id));
    let (_, _, _, text) = scrape(&app, "*/*").await;
    assert_eq!(remaining(&text, &app.app_id), Some(1_000_000.0), "{text}");
    app.check_result(HU, HU_SAME).await;
    let (_, _, _, text) = scrape(&app, PROMETHEUS_ACCEPT).await;
    assert_eq!(remaining(&text, &app.app_id), Some(999_999.0), "{text}");

    // A new app has nothing until granted; a disabled one is no longer reported.
    let response = app
        .admin(Method::POST, "/admin/apps")
        .json(&json!({"name": "Acme Verified Customer"}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 201, "{body}");
    let other = body["data"]["app_id"].as_str().unwrap().to_owned();
    let (_, _, _, text) = scrape(&app, "*/*").await;
    assert_eq!(remaining(&text, &other), Some(0.0), "{text}");
    // Labelled by id only: an app's name may say who the customer is.
    assert!(!text.contains("Acme"), "{text}");
    let response = app
        .admin(Method::POST, &format!("/admin/apps/{other}/grants"))
        .json(&json!({"calls": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let (_, _, _, text) = scrape(&app, "*/*").await;
    assert_eq!(remaining(&text, &other), Some(5.0), "{text}");
    let response = app
        .admin(Method::POST, &format!("/admin/apps/{other}/disable"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, _, _, text) = scrape(&app, "*/*").await;
    assert_eq!(remaining(&text, &other), None, "{text}");
    assert_eq!(remaining(&text, &app.app_id), Some(999_999.0), "{text}");

    // Without metering no app needs quota: no such gauge at all.
    let unmetered = spawn_test_app_with(|s| s.metering.enabled = false).await;
    let (_, _, _, text) = scrape(&unmetered, "*/*").await;
    assert!(!text.contains("renzheng_app_quota_remaining"), "{text}");
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
        let concrete = path
            .replace("{id}", "11010519491231002X")
            .replace("{handle}", "p-0123456789abcdef");
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
        ("/admin/persons/{handle}", "get"),
        ("/admin/persons/{handle}", "delete"),
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
