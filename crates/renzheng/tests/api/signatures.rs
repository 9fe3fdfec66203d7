//! The gateway's signature as Alibaba's own clients send it, and each way around it
//! that issue 20 found, refused: through the real server and database (the deterministic
//! colour engine: none of this is about faces). Requests are signed by the independent
//! implementation, `tools/ca_signature.py`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// A signed call to build: what is sent, and how it is signed.
#[derive(Clone)]
struct Call {
    path: &'static str,
    query: String,
    headers: Vec<(String, String)>,
    body: String,
    /// Send (and sign) `Content-MD5`.
    md5: bool,
    /// `HmacSHA256` or `HmacSHA1`.
    hmac: &'static str,
}

impl Call {
    /// A JSON check signed as Alibaba's Java demo signs: a timestamp and no nonce,
    /// `Content-MD5`, HmacSHA256.
    fn java_demo(app: &TestApp, body: &Value) -> Call {
        let now = app.state.app.now_ms();
        Call {
            path: "/faceidcard/check",
            query: String::new(),
            headers: vec![
                ("Accept".into(), "application/json".into()),
                (
                    "Content-Type".into(),
                    "application/json; charset=UTF-8".into(),
                ),
                ("X-Ca-Key".into(), app.app_key.clone()),
                ("X-Ca-Timestamp".into(), now.to_string()),
                ("X-Ca-Signature-Method".into(), "HmacSHA256".into()),
                (
                    "X-Ca-Signature-Headers".into(),
                    "X-Ca-Key,X-Ca-Signature-Method,X-Ca-Timestamp".into(),
                ),
            ],
            body: body.to_string(),
            md5: true,
            hmac: "HmacSHA256",
        }
    }

    /// Sets a header (replacing one of the same name).
    fn header(mut self, name: &str, value: &str) -> Call {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Leaves a header out.
    fn without(mut self, name: &str) -> Call {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// The headers to send, signed with `secret`.
    fn signed(&self, secret: &str) -> Vec<(String, String)> {
        let out = python_sign(&json!({
            "method": "POST", "path": self.path, "query": self.query,
            "headers": self.headers, "body": self.body, "secret": secret,
            "signature_method": self.hmac, "no_content_md5": !self.md5,
        }));
        let mut headers = self.headers.clone();
        if self.md5 && !self.body.is_empty() {
            headers.push((
                "Content-MD5".into(),
                out["content_md5"].as_str().unwrap().into(),
            ));
        }
        headers.push((
            "X-Ca-Signature".into(),
            out["signature"].as_str().unwrap().into(),
        ));
        headers
    }
}

async fn send(app: &TestApp, call: &Call, headers: &[(String, String)]) -> reqwest::Response {
    let path = if call.query.is_empty() {
        call.path.to_owned()
    } else {
        format!("{}?{}", call.path, call.query)
    };
    let mut request = app.request(Method::POST, &path);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.body(call.body.clone()).send().await.unwrap()
}

/// Signs `call` with the test app's secret and sends it.
async fn send_signed(app: &TestApp, call: &Call) -> reqwest::Response {
    send(app, call, &call.signed(&app.app_secret)).await
}

/// `X-Ca-Error-Message`, which must be ASCII.
fn message(response: &reqwest::Response) -> String {
    let value = response
        .headers()
        .get("x-ca-error-message")
        .expect("an error message");
    assert!(value.as_bytes().is_ascii(), "{value:?}");
    value.to_str().unwrap().to_owned()
}

/// Calls charged to the test app so far.
async fn charged(app: &TestApp) -> i64 {
    crate::metering::balance(app, &app.app_id).await["charged"]
        .as_i64()
        .unwrap()
}

/// A check of HU signed with the test app's AppSecret, as Alibaba's Java demo signs;
/// its status.
pub(crate) async fn signed_hu_check(app: &TestApp) -> u16 {
    send_signed(app, &Call::java_demo(app, &hu_check(app)))
        .await
        .status()
        .as_u16()
}

fn hu_check(app: &TestApp) -> Value {
    json!({"name": HU.name, "idCard": HU.id(), "image": app.photo_b64(HU_SAME)})
}

#[tokio::test]
async fn alibabas_java_demo_signature_is_accepted_and_answered_once() {
    let app = spawn_test_app().await;
    let call = Call::java_demo(&app, &hu_check(&app));
    let headers = call.signed(&app.app_secret);
    let (status, body) = status_and_body(send(&app, &call, &headers).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["charged"], 1);
    // Without a nonce, the signature itself is spent: the same request again is a replay.
    let again = send(&app, &call, &headers).await;
    assert_eq!(again.status(), 400);
    assert_eq!(message(&again), "Nonce Used");
    assert_eq!(charged(&app).await, 1);

    // HmacSHA1 as well.
    let mut sha1 =
        Call::java_demo(&app, &hu_check(&app)).header("X-Ca-Signature-Method", "HmacSHA1");
    sha1.hmac = "HmacSHA1";
    let (status, body) = status_and_body(send_signed(&app, &sha1).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(charged(&app).await, 2);
}

#[tokio::test]
async fn a_timestamp_or_nonce_left_out_of_the_signature_is_refused() {
    let app = spawn_test_app().await;
    // The bypass: signed without them, then sent (again and again) with fresh ones.
    let unsigned = Call::java_demo(&app, &hu_check(&app))
        .header("X-Ca-Signature-Headers", "X-Ca-Key")
        .header("X-Ca-Nonce", "fresh-1");
    let headers = unsigned.signed(&app.app_secret);
    let response = send(&app, &unsigned, &headers).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        message(&response),
        "Header `X-Ca-Timestamp` must be Signed (listed in X-Ca-Signature-Headers)"
    );
    let nonce_unsigned = unsigned
        .clone()
        .header("X-Ca-Signature-Headers", "X-Ca-Key,X-Ca-Timestamp");
    let response = send_signed(&app, &nonce_unsigned).await;
    assert_eq!(
        message(&response),
        "Header `X-Ca-Nonce` must be Signed (listed in X-Ca-Signature-Headers)"
    );
    // Both signed: answered, once.
    let signed = unsigned.header(
        "X-Ca-Signature-Headers",
        "X-Ca-Key,X-Ca-Nonce,X-Ca-Timestamp",
    );
    let headers = signed.signed(&app.app_secret);
    assert_eq!(send(&app, &signed, &headers).await.status(), 200);
    assert_eq!(message(&send(&app, &signed, &headers).await), "Nonce Used");
    assert_eq!(charged(&app).await, 1);
}

#[tokio::test]
async fn the_timestamp_is_required_by_default_and_the_operator_can_require_a_nonce() {
    let app = spawn_test_app().await;
    let no_timestamp = Call::java_demo(&app, &hu_check(&app))
        .without("X-Ca-Timestamp")
        .header("X-Ca-Signature-Headers", "X-Ca-Key");
    let response = send_signed(&app, &no_timestamp).await;
    assert_eq!(response.status(), 400);
    assert_eq!(message(&response), "Header `X-Ca-Timestamp` is Required");

    let strict = spawn_test_app_with(|s| {
        s.signature.require_nonce = true;
        s.signature.require_timestamp = false;
    })
    .await;
    let call = Call::java_demo(&strict, &hu_check(&strict));
    let response = send_signed(&strict, &call).await;
    assert_eq!(message(&response), "Header `X-Ca-Nonce` is Required");
    let call = call
        .without("X-Ca-Timestamp")
        .header("X-Ca-Nonce", "n-1")
        .header("X-Ca-Signature-Headers", "X-Ca-Key,X-Ca-Nonce");
    let (status, body) = status_and_body(send_signed(&strict, &call).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(charged(&strict).await, 1);
    assert_eq!(charged(&app).await, 0);
}

#[tokio::test]
async fn a_body_the_signature_does_not_cover_is_refused_and_not_answered() {
    let app = spawn_test_app().await;
    // Signed without Content-MD5, a JSON body could be swapped for another person's photo.
    let mut call = Call::java_demo(&app, &hu_check(&app));
    call.md5 = false;
    let headers = call.signed(&app.app_secret);
    let mut swapped = call.clone();
    swapped.body = json!({"name": HU.name, "idCard": HU.id(), "image": app.photo_b64(JIANG_OTHER)})
        .to_string();
    for sent in [&call, &swapped] {
        let response = send(&app, sent, &headers).await;
        assert_eq!(response.status(), 400);
        assert_eq!(message(&response), "Header `Content-MD5` is Required");
    }
    // A body must say what it is: the signature covers its Content-Type.
    let untyped = Call::java_demo(&app, &hu_check(&app)).without("Content-Type");
    let response = send_signed(&app, &untyped).await;
    assert_eq!(message(&response), "Header `Content-Type` is Required");
    assert_eq!(charged(&app).await, 0);
}

#[tokio::test]
async fn query_parameters_cannot_shadow_the_form() {
    let app = spawn_test_app().await;
    let form = |name: &str, id: &str| {
        url_encode(&[
            ("name", name),
            ("idCard", id),
            ("image", &app.photo_b64(HU_SAME)),
        ])
    };
    let mut call = Call::java_demo(&app, &json!({})).header(
        "Content-Type",
        "application/x-www-form-urlencoded; charset=UTF-8",
    );
    call.md5 = false;
    call.body = form(HU.name, &HU.id());
    let (status, body) = status_and_body(send_signed(&app, &call).await).await;
    assert_eq!(status, 200, "{body}");
    // The string-to-sign takes the query's value first; the handler reads the body.
    let mut shadowed = call.clone();
    shadowed.query = url_encode(&[("name", HU.name), ("idCard", &HU.id())]);
    shadowed.body = form(JIANG.name, &JIANG.id());
    let response = send_signed(&app, &shadowed).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        message(&response),
        "Invalid Parameter `name` sent more than once"
    );
    let (_, code, _) = error_of(send_signed(&app, &shadowed).await).await;
    assert_eq!(code, "RepeatedParameter");
    assert_eq!(charged(&app).await, 1);
}

#[tokio::test]
async fn the_string_to_sign_echo_hides_headers_a_proxy_adds() {
    let app = spawn_test_app().await;
    let call = Call::java_demo(&app, &hu_check(&app))
        .header("X-Forwarded-For", "10.9.8.7")
        .header(
            "X-Ca-Signature-Headers",
            "X-Ca-Key,X-Ca-Timestamp,X-Forwarded-For",
        );
    let response = send(&app, &call, &call.signed("not-the-secret")).await;
    assert_eq!(response.status(), 400);
    let msg = message(&response);
    assert!(
        msg.starts_with("Invalid Signature, Server StringToSign:`POST#"),
        "{msg}"
    );
    assert!(msg.contains("#X-Forwarded-For:<hidden>#"), "{msg}");
    assert!(!msg.contains("10.9.8.7"), "{msg}");
    assert!(msg.contains(&format!("X-Ca-Key:{}", app.app_key)), "{msg}");
}

#[tokio::test]
async fn an_app_that_may_not_call_is_403_unauthorized_by_either_credential() {
    let app = spawn_test_app().await;
    let apps = app.store.list_apps().await.unwrap();
    let id = apps
        .iter()
        .find(|a| a.id.as_str() == app.app_id)
        .unwrap()
        .id
        .clone();
    app.store.set_app_enabled(&id, false).await.unwrap();
    let by_code = app
        .request(Method::POST, "/faceidcard/check")
        .header("Authorization", format!("APPCODE {}", app.app_code))
        .json(&hu_check(&app))
        .send()
        .await
        .unwrap();
    let by_signature = send_signed(&app, &Call::java_demo(&app, &hu_check(&app))).await;
    for response in [by_code, by_signature] {
        assert_eq!(response.status(), 403);
        assert_eq!(message(&response), "Unauthorized");
        let (_, code, _) = error_of(response).await;
        assert_eq!(code, "Unauthorized");
    }
    // An AppKey nobody has keeps the gateway's answer.
    let stranger = Call::java_demo(&app, &hu_check(&app)).header("X-Ca-Key", "no-such-key");
    let response = send_signed(&app, &stranger).await;
    assert_eq!(response.status(), 400);
    assert_eq!(message(&response), "Invalid AppKey");
}

#[tokio::test]
async fn error_messages_are_ascii_and_the_body_keeps_the_text() {
    let app = spawn_test_app().await;
    let mut call = Call::java_demo(&app, &json!({}))
        .header("Content-Type", "application/x-www-form-urlencoded");
    call.md5 = false;
    call.body = url_encode(&[("name", "张三"), ("idCard", &HU.id())]);
    let response = send(&app, &call, &call.signed("not-the-secret")).await;
    let header = message(&response);
    assert!(header.contains("name=%E5%BC%A0%E4%B8%89"), "{header}");
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 400);
    assert!(
        body["msg"].as_str().unwrap().contains("name=张三"),
        "{body}"
    );
}

#[tokio::test]
async fn a_json_object_is_read_as_json_whatever_its_content_type() {
    let app = spawn_test_app().await;
    let json = hu_check(&app).to_string();
    for content_type in [Some("application/octet-stream"), Some("text/plain"), None] {
        let mut request = app
            .request(Method::POST, "/faceidcard/check")
            .header("Authorization", format!("APPCODE {}", app.app_code));
        if let Some(ct) = content_type {
            request = request.header("Content-Type", ct);
        }
        let (status, body) =
            status_and_body(request.body(json.clone()).send().await.unwrap()).await;
        assert_eq!(status, 200, "{content_type:?}: {body}");
        assert!(body["data"]["result"].is_u64(), "{body}");
    }
    // Signed as Alibaba's Python demo sends JSON: application/octet-stream, with MD5.
    let python = Call::java_demo(&app, &hu_check(&app))
        .header("Content-Type", "application/octet-stream; charset=utf-8");
    let (status, body) = status_and_body(send_signed(&app, &python).await).await;
    assert_eq!(status, 200, "{body}");
    // Not JSON, not a form: still unsupported.
    let response = app
        .request(Method::POST, "/faceidcard/check")
        .header("Authorization", format!("APPCODE {}", app.app_code))
        .header("Content-Type", "application/octet-stream")
        .body(vec![0xff_u8, 0xd8, 0xff, 0xe0])
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(response).await;
    assert_eq!((status, code.as_str()), (415, "UnsupportedMediaType"));
    assert_eq!(charged(&app).await, 4);
}
