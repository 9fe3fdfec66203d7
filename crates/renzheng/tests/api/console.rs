//! The operator console over HTTP (the browser suite in `tests/browser` drives the same
//! pages in Chromium): sign-in and its refusals, sessions and their expiry, CSRF and
//! same-origin refusals, secrets shown once, security headers, and a try-it check on the
//! real engine that lands, masked, in the history.

use std::sync::OnceLock;

use renzheng_app::settings::Secret;
use renzheng_app::Settings;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};

use crate::helpers::*;

const PASSWORD: &str = "correct horse battery staple";

fn password_hash() -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| renzheng_app::console::hash_password(PASSWORD).unwrap())
        .clone()
}

pub(crate) fn with_console(settings: &mut Settings) {
    settings.console.password_hash = Some(Secret::new(password_hash()));
    settings.console.secure_cookie = false;
}

/// The value of a `csrf` field that the helpers replace by a new token of the session,
/// as a browser sends each form with the token its page gave it.
pub(crate) const FRESH: &str = "<fresh token>";

/// A browser-like client of one app: no redirects followed, cookies carried by hand.
pub(crate) struct Browser {
    address: String,
    client: reqwest::Client,
    cookie: Option<String>,
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Browser {
            address: app.address.clone(),
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let r = self
            .client
            .request(method, format!("{}{path}", self.address));
        match &self.cookie {
            Some(c) => r.header(COOKIE, c),
            None => r,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, String, reqwest::header::HeaderMap) {
        let r = self.request(Method::GET, path).send().await.unwrap();
        let (status, headers) = (r.status(), r.headers().clone());
        (status, r.text().await.unwrap(), headers)
    }

    /// `fields` with a [`FRESH`] token replaced by a new one, as a browser sends a form
    /// it was just given.
    async fn with_token<'a>(&self, fields: &[(&'a str, &'a str)]) -> Vec<(&'a str, String)> {
        let mut out = Vec::with_capacity(fields.len());
        for (name, value) in fields {
            let value = if *name == "csrf" && *value == FRESH {
                self.csrf().await
            } else {
                (*value).to_owned()
            };
            out.push((*name, value));
        }
        out
    }

    /// POSTs a URL-encoded form; the answer itself (a redirect is not followed).
    async fn post_form_raw(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let fields = self.with_token(fields).await;
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.request(Method::POST, path)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(url_encode(&fields))
            .send()
            .await
            .unwrap()
    }

    /// POSTs a URL-encoded form and, as a browser does, follows its `303` to the page
    /// (Post/Redirect/Get); the final status and page.
    pub(crate) async fn post_form(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, String) {
        let r = self.post_form_raw(path, fields).await;
        self.followed(r).await
    }

    /// The page a form's answer leads to: the answer itself, or the console page its
    /// `303` names, fetched.
    async fn followed(&self, r: reqwest::Response) -> (StatusCode, String) {
        if r.status() == StatusCode::SEE_OTHER {
            let to = r.headers()[LOCATION].to_str().unwrap().to_owned();
            assert!(to.starts_with("/console/"), "{to}");
            let (status, page, _) = self.get(&to).await;
            return (status, page);
        }
        (r.status(), r.text().await.unwrap())
    }

    /// POSTs a multipart form of text `fields` and `files` (a [`FRESH`] token replaced),
    /// following its `303`; the final status and page.
    async fn post_multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &[u8])],
    ) -> (StatusCode, String) {
        let fields = self.with_token(fields).await;
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (content_type, body) = multipart(&fields, files);
        let r = self
            .request(Method::POST, path)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        self.followed(r).await
    }

    async fn sign_in(&mut self, operator: &str, password: &str) -> reqwest::Response {
        self.sign_in_with_code(operator, password, "").await
    }

    /// Signs in with a two-step `code` too (blank: none).
    async fn sign_in_with_code(
        &mut self,
        operator: &str,
        password: &str,
        code: &str,
    ) -> reqwest::Response {
        let r = self
            .request(Method::POST, "/console/sign-in")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(url_encode(&[
                ("operator", operator),
                ("password", password),
                ("code", code),
            ]))
            .send()
            .await
            .unwrap();
        if let Some(set) = r.headers().get(SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            self.cookie = Some(pair);
        }
        r
    }

    /// A new form token, from a signed-in page (each form a page renders has its own,
    /// good for one POST).
    async fn csrf(&self) -> String {
        let (_, page, _) = self.get("/console/apps").await;
        let at = page
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF field")
            + 19;
        page[at..].split('"').next().unwrap().to_owned()
    }
}

pub(crate) async fn signed_in(app: &TestApp) -> Browser {
    let mut b = Browser::new(app);
    let r = b.sign_in("admin", PASSWORD).await;
    assert_eq!(r.status(), 303);
    b
}

#[tokio::test]
async fn the_console_is_off_until_a_password_hash_is_configured() {
    let app = spawn_test_app().await;
    let b = Browser::new(&app);
    assert_eq!(b.get("/console/sign-in").await.0, 404);
    assert_eq!(b.get("/console/overview").await.0, 404);
}

#[tokio::test]
async fn sign_in_refuses_wrong_credentials_and_sets_a_strict_session_cookie() {
    let app = spawn_test_app_with(|s| {
        with_console(s);
        s.console.secure_cookie = true;
    })
    .await;
    let mut b = Browser::new(&app);
    // Unauthenticated pages send to the sign-in page.
    let (status, _, headers) = b.get("/console/apps").await;
    assert_eq!(status, 303);
    assert_eq!(headers[LOCATION], "/console/sign-in?next=/console/apps");
    for (operator, password) in [("admin", "wrong password!!"), ("root", PASSWORD), ("", "")] {
        let r = b.sign_in(operator, password).await;
        assert_eq!(r.status(), 401, "{operator}");
        assert!(r.headers().get(SET_COOKIE).is_none());
        let page = r.text().await.unwrap();
        assert!(page.contains("data-reason=\"credentials\""), "{page}");
    }
    let r = b.sign_in("admin", PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/console/overview");
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attribute in [
        "__Host-renzheng_console=",
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Path=/;",
    ] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    let (status, page, headers) = b.get("/console/overview").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"chart-results\""));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-frame-options"], "DENY");
    // The database keeps only the token's hash.
    let token = b
        .cookie
        .as_ref()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let events = app.state.app.recent_events(10).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.action == "console.signed-in" && e.actor == "console:admin"));
    assert!(
        events
            .iter()
            .filter(|e| e.action == "console.sign-in-refused")
            .count()
            >= 3
    );
    assert!(!format!("{events:?}").contains(&token));
}

#[tokio::test]
async fn sign_in_attempts_are_throttled() {
    let app = spawn_test_app_with(with_console).await;
    let mut b = Browser::new(&app);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(
            b.sign_in("admin", "not the password")
                .await
                .status()
                .as_u16(),
        );
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(statuses[..5].iter().all(|s| *s == 401), "{statuses:?}");
}

#[tokio::test]
async fn forms_without_the_session_csrf_token_or_from_another_origin_are_refused() {
    let app = spawn_test_app_with(with_console).await;
    let b = signed_in(&app).await;
    let before = app.state.app.list_apps().await.unwrap().len();
    let csrf = b.csrf().await;
    assert_eq!(b.post_form("/console/apps", &[("name", "x")]).await.0, 403);
    assert_eq!(
        b.post_form("/console/apps", &[("name", "x"), ("csrf", "forged")])
            .await
            .0,
        403
    );
    let r = b
        .request(Method::POST, "/console/apps")
        .header("Origin", "http://evil.example")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(url_encode(&[("name", "x"), ("csrf", &csrf)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = b
        .request(Method::POST, "/console/apps")
        .header("Sec-Fetch-Site", "cross-site")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(url_encode(&[("name", "x"), ("csrf", &csrf)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Another session's token is not this one's.
    let other = signed_in(&app).await;
    assert_ne!(other.csrf().await, csrf);
    assert_eq!(
        other
            .post_form("/console/apps", &[("name", "x"), ("csrf", &csrf)])
            .await
            .0,
        403
    );
    assert_eq!(
        app.state.app.list_apps().await.unwrap().len(),
        before,
        "nothing was created"
    );
    // The right token from the right origin works, and the change is the operator's.
    let (status, page) = b
        .post_form("/console/apps", &[("name", "shop"), ("csrf", &csrf)])
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(app.state.app.list_apps().await.unwrap().len(), before + 1);
    let events = app.state.app.recent_events(5).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.actor == "console:admin" && e.action.starts_with("app.")),
        "{events:?}"
    );
}

#[tokio::test]
async fn every_console_post_but_sign_in_is_refused_without_the_sessions_token() {
    let app = spawn_test_app_with(with_console).await;
    let b = signed_in(&app).await;
    let before = (
        serde_json::to_value(app.state.app.list_apps().await.unwrap()).unwrap(),
        app.state.app.packages().await.unwrap(),
        app.state.app.recent_events(50).await.unwrap().len(),
    );
    let id = HU.id();
    let apps = format!("/console/apps/{}", app.app_id);
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/console/sign-out".into(), vec![]),
        ("/console/apps".into(), vec![("name", "x")]),
        (format!("{apps}/disable"), vec![]),
        (format!("{apps}/reset-code"), vec![]),
        (format!("{apps}/policy"), vec![("alert_percent", "50")]),
        (
            "/console/packages".into(),
            vec![("name", "p"), ("calls", "1"), ("price_yuan", "1")],
        ),
        (
            "/console/grants".into(),
            vec![("app_id", app.app_id.as_str()), ("package", "p")],
        ),
        (
            "/console/registry/lookup".into(),
            vec![("id_number", id.as_str())],
        ),
        (
            "/console/registry/remove".into(),
            vec![("id_number", id.as_str()), ("confirm", "yes")],
        ),
        ("/console/registry/reembed".into(), vec![]),
        ("/console/registry/import".into(), vec![("folder", "/tmp")]),
        (
            "/console/registry/search".into(),
            vec![("query", id.as_str())],
        ),
        (
            "/console/registry/rename".into(),
            vec![
                ("person", id.as_str()),
                ("name", JIANG.name),
                ("reason", "typo"),
            ],
        ),
        ("/console/registry/duplicates".into(), vec![]),
    ];
    for (path, fields) in &forms {
        assert_eq!(
            b.post_form(path, fields).await.0,
            403,
            "{path} without a token"
        );
        let mut forged = fields.clone();
        forged.push(("csrf", "forged"));
        assert_eq!(b.post_form(path, &forged).await.0, 403, "{path} forged");
    }
    // The uploads carry the token in a multipart field.
    for path in [
        "/console/registry/enrol",
        "/console/registry/replace",
        "/console/try",
        "/console/try/compare",
    ] {
        let fields = [("name", HU.name), ("id_number", id.as_str())];
        let photo: &[u8] = b"not a photo";
        let files = [("photo", photo), ("photo_a", photo), ("photo_b", photo)];
        let (status, _) = b.post_multipart(path, &fields, &files).await;
        assert_eq!(status, 403, "{path} without a token");
        let forged = [("csrf", "forged"), fields[0], fields[1]];
        let (status, _) = b.post_multipart(path, &forged, &files).await;
        assert_eq!(status, 403, "{path} forged");
    }
    let after = (
        serde_json::to_value(app.state.app.list_apps().await.unwrap()).unwrap(),
        app.state.app.packages().await.unwrap(),
        app.state.app.recent_events(50).await.unwrap().len(),
    );
    assert_eq!(after, before, "nothing changed");
    assert!(
        app.state.duplicates.latest().is_none(),
        "no duplicate scan started"
    );
    assert_eq!(b.get("/console/overview").await.0, 200, "still signed in");
}

#[tokio::test]
async fn console_form_limits_are_the_domain_rules() {
    let app = spawn_test_app_with(with_console).await;
    let b = signed_in(&app).await;
    let (_, apps, _) = b.get("/console/apps").await;
    let app_name = format!(
        "name=\"name\" required maxlength=\"{}\"",
        renzheng_app::AppName::MAX_CHARS
    );
    assert!(apps.contains(&app_name), "{apps}");
    let (_, registry, _) = b.get("/console/registry").await;
    for field in [
        format!(
            "name=\"id_number\" required maxlength=\"{}\"",
            renzheng_domain::IdNumber::CHARS
        ),
        format!(
            "name=\"name\" required maxlength=\"{}\"",
            renzheng_domain::MAX_NAME_CHARS
        ),
    ] {
        assert!(registry.contains(&field), "{field}: {registry}");
    }
    let (_, packages, _) = b.get("/console/packages").await;
    let package = format!(
        "name=\"name\" required maxlength=\"{}\"",
        renzheng_app::PackageView::MAX_NAME_LEN
    );
    assert!(packages.contains(&package), "{packages}");
    // The longest name the rule allows is accepted by the use case behind the form.
    let longest = "名".repeat(renzheng_app::AppName::MAX_CHARS);
    let (status, page) = b
        .post_form("/console/apps", &[("name", &longest), ("csrf", FRESH)])
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("class=\"flash ok\""), "{page}");
}

#[tokio::test]
async fn a_new_apps_secrets_are_shown_once_and_its_appcode_works() {
    let app = spawn_test_app_with(with_console).await;
    let b = signed_in(&app).await;
    let (_, page) = b
        .post_form("/console/apps", &[("name", "shop"), ("csrf", FRESH)])
        .await;
    let field = |name: &str| {
        let marker = format!("data-field=\"{name}\">");
        let at = page
            .find(&marker)
            .unwrap_or_else(|| panic!("{name} not shown: {page}"))
            + marker.len();
        page[at..].split('<').next().unwrap().to_owned()
    };
    let (code, key, secret) = (field("app_code"), field("app_key"), field("app_secret"));
    assert_eq!(code.len(), 32);
    let (_, again, _) = b.get("/console/apps").await;
    assert!(
        !again.contains(&code) && !again.contains(&secret),
        "a secret shown twice"
    );
    assert!(
        again.contains(&key),
        "the AppKey is not a secret and is listed"
    );
    // The code is a working credential (no calls yet: the quota answer, not Unauthorized).
    let r = app
        .request(Method::POST, "/faceidcard/check")
        .header("Authorization", format!("APPCODE {code}"))
        .json(&serde_json::json!({"name": HU.name, "idCard": HU.id(), "image": app.photo_b64(HU_SAME)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-ca-error-message"], "Quota Exhausted");
}

#[tokio::test]
async fn sessions_lapse_when_idle_and_end_at_sign_out() {
    let app = spawn_test_app_with(|s| {
        with_console(s);
        s.console.session_idle_secs = 1;
    })
    .await;
    let b = signed_in(&app).await;
    assert_eq!(b.get("/console/overview").await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1_300)).await;
    let (status, _, headers) = b.get("/console/overview").await;
    assert_eq!(status, 303);
    assert_eq!(headers[LOCATION], "/console/sign-in?expired=1");
    let (_, page, _) = Browser::new(&app).get("/console/sign-in?expired=1").await;
    assert!(page.contains("data-reason=\"expired\""));

    let app = spawn_test_app_with(with_console).await;
    let b = signed_in(&app).await;
    let r = b
        .post_form_raw("/console/sign-out", &[("csrf", FRESH)])
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        b.get("/console/overview").await.0,
        303,
        "the old cookie no longer works"
    );
}

#[tokio::test]
async fn every_page_renders_in_both_languages() {
    let app = spawn_test_app_with(with_console).await;
    let mut b = signed_in(&app).await;
    for lang in ["zh", "en"] {
        let r = b
            .request(Method::GET, &format!("/console/lang/{lang}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let set = r.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let session = b.cookie.clone().unwrap();
        b.cookie = Some(format!("{session}; {set}"));
        let html_lang = if lang == "zh" {
            "lang=\"zh-CN\""
        } else {
            "lang=\"en\""
        };
        for page in [
            "overview", "apps", "packages", "calls", "alerts", "events", "registry", "try", "about",
        ] {
            let (status, body, _) = b.get(&format!("/console/{page}")).await;
            assert_eq!(status, 200, "{page} ({lang}): {body}");
            assert!(body.contains(html_lang), "{page} ({lang})");
            assert!(
                body.contains(&format!("data-page=\"{page}\"")),
                "{page}: navigation"
            );
        }
        b.cookie = Some(session);
    }
    let (status, _, _) = b.get("/console/no-such-page").await;
    assert_eq!(status, 404);
}

/// One multipart body of text fields and files.
fn multipart(fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "renzheng-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    for (name, bytes) in files {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"photo.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn try_it_answers_as_a_caller_draws_the_face_and_lands_masked_in_the_history() {
    let app = spawn_app_with(with_console).await;
    let b = signed_in(&app).await;
    let (_, before, _) = b.get("/console/overview").await;
    let total = |page: &str| -> i64 {
        let at = page.find("id=\"chart-results\"").unwrap();
        let at = at + page[at..].find("data-total=\"").unwrap() + 12;
        page[at..].split('"').next().unwrap().parse().unwrap()
    };
    let id = HU.id();
    let photo = app.photo(HU_SAME);
    let fields = [("csrf", FRESH), ("name", HU.name), ("id_number", &id)];
    let (status, page) = b
        .post_multipart("/console/try", &fields, &[("photo", &photo)])
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("&quot;result&quot;: 1") || page.contains("\"result\": 1"),
        "{page}"
    );
    assert!(page.contains("id=\"face-box\""), "no face box drawn");
    assert_eq!(
        page.matches("class=\"landmark\"").count(),
        5,
        "five landmarks"
    );
    assert!(page.contains("id=\"try-score\""));
    // In the history, masked, and in the chart.
    let (_, calls, _) = b.get("/console/calls").await;
    assert!(calls.contains("class=\"badge r1\""), "{calls}");
    assert!(
        !calls.contains(&id) && !calls.contains(HU.name),
        "clear personal data in the history"
    );
    let (_, after, _) = b.get("/console/overview").await;
    assert_eq!(total(&after), total(&before) + 1);
    // Not charged: the console is not an app.
    let audit = app.state.app.recent_audit(1).await.unwrap();
    assert!(audit[0].app_id.is_none() && !audit[0].charged);

    // A photo without a face: the answer a caller would get (result 6), nothing drawn.
    let (_, page) = b
        .post_multipart("/console/try", &fields, &[("photo", &app.photo(NO_FACE))])
        .await;
    assert!(
        page.contains("&quot;result&quot;: 6") || page.contains("\"result\": 6"),
        "{page}"
    );
    assert!(!page.contains("id=\"face-box\""));

    // A face too dark to judge: result 8, the box drawn and the reason written on it.
    let (_, page) = b
        .post_multipart("/console/try", &fields, &[("photo", &app.photo(TOO_DARK))])
        .await;
    assert!(
        page.contains("&quot;result&quot;: 8") || page.contains("\"result\": 8"),
        "{page}"
    );
    assert!(page.contains("id=\"face-box\""), "{page}");
    let reasons = page
        .find("class=\"reasons\"")
        .expect("the reasons written on the photo");
    assert!(
        page[reasons..]
            .split("</text>")
            .next()
            .unwrap()
            .contains("光线过暗"),
        "{page}"
    );

    // A refused check (an ID number with a wrong check digit) keeps what was typed in the
    // form, to be mended (the photo is chosen again: a browser fills no file input).
    let typo = format!("{}X", &id[..17]);
    let typo = if typo == id {
        format!("{}0", &id[..17])
    } else {
        typo
    };
    let fields = [("csrf", FRESH), ("name", HU.name), ("id_number", &typo)];
    let (_, page) = b
        .post_multipart("/console/try", &fields, &[("photo", &photo)])
        .await;
    assert!(page.contains("HTTP 400"), "{page}");
    let form = page.split("id=\"try\"").nth(1).unwrap();
    assert!(
        form.contains(&format!("value=\"{typo}\""))
            && form.contains(&format!("value=\"{}\"", HU.name)),
        "{form}"
    );
}

#[tokio::test]
async fn registry_enrols_with_the_engines_refusals_looks_up_masked_and_removes_only_when_confirmed()
{
    let app = spawn_app_with(with_console).await;
    let b = signed_in(&app).await;
    let person = UNKNOWN;
    let id = person.id();
    // No legal basis: refused in the console's words, before any photo is analysed.
    let (_, page) = b
        .post_multipart(
            "/console/registry/enrol",
            &[
                ("csrf", FRESH),
                ("name", person.name),
                ("id_number", &id),
                ("basis", ""),
            ],
            &[("photo", &app.photo(WEN_PORTRAIT))],
        )
        .await;
    assert!(page.contains("data-reason=\"basis-required\""), "{page}");
    assert!(page.contains("未记录处理人脸信息的合法性基础"), "{page}");
    let fields = [
        ("csrf", FRESH),
        ("name", person.name),
        ("id_number", &id),
        ("basis", "consent"),
        ("consent_ref", "CF-2026-0400"),
    ];
    let enrol = |photo: Vec<u8>| {
        let b = &b;
        let fields = &fields;
        async move {
            b.post_multipart("/console/registry/enrol", fields, &[("photo", &photo)])
                .await
                .1
        }
    };
    // No face: refused with the engine's reason, nothing written.
    let page = enrol(app.photo(NO_FACE)).await;
    assert!(page.contains("class=\"flash error\""), "{page}");
    assert!(page.contains("照片 1 不能录入"), "{page}");
    let parsed = renzheng_domain::IdNumber::parse(&id).unwrap();
    assert!(app.state.app.person(&parsed).await.unwrap().is_none());
    // A face enrolled under another ID number: refused, in the console's words.
    let page = enrol(app.photo(HU_SAME)).await;
    assert!(page.contains("data-reason=\"duplicate-face\""), "{page}");
    assert!(
        !page.contains("--allow-duplicate-face"),
        "no CLI flags in the console: {page}"
    );
    assert!(app.state.app.person(&parsed).await.unwrap().is_none());
    // A portrait: enrolled; the page shows the person masked.
    let page = enrol(app.photo(WEN_PORTRAIT)).await;
    assert!(page.contains("class=\"flash ok\""), "{page}");
    assert!(page.contains("data-portraits=\"1\""), "{page}");
    assert!(
        !page.contains(&id) && !page.contains(person.name),
        "clear personal data shown"
    );
    let (_, page) = b
        .post_form(
            "/console/registry/lookup",
            &[("csrf", FRESH), ("id_number", &id)],
        )
        .await;
    assert!(page.contains("id=\"person\""), "{page}");
    // Removal needs the confirmation ticked.
    let (_, page) = b
        .post_form(
            "/console/registry/remove",
            &[("csrf", FRESH), ("id_number", &id)],
        )
        .await;
    assert!(page.contains("data-reason=\"confirm\""), "{page}");
    assert!(app.state.app.person(&parsed).await.unwrap().is_some());
    let (_, page) = b
        .post_form(
            "/console/registry/remove",
            &[
                ("csrf", FRESH),
                ("id_number", &id),
                ("request_ref", "DSR-2026-0011"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert!(page.contains("class=\"flash ok\""), "{page}");
    assert!(app.state.app.person(&parsed).await.unwrap().is_none());
    // Every mutation is the operator's, in the events; the removal names the request.
    let events = app.state.app.recent_events(10).await.unwrap();
    assert_eq!(
        events[0].detail.as_deref(),
        Some("at the data subject's request DSR-2026-0011"),
        "{events:?}"
    );
    for action in ["person.enrolled", "person.removed"] {
        assert!(
            events
                .iter()
                .any(|e| e.action == action && e.actor == "console:admin"),
            "{action}: {events:?}"
        );
    }
}

#[tokio::test]
async fn a_folder_import_runs_in_the_background_with_a_progress_page_and_its_refusals() {
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().to_owned();
    let app = spawn_app_with(|s| {
        with_console(s);
        s.console.import_root = Some(root_path);
    })
    .await;
    let b = signed_in(&app).await;
    let folder = tempfile::tempdir_in(root.path()).unwrap();
    // Outside the root: a photo a link in the folder leads to is not followed.
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.jpg");
    std::fs::write(&secret, app.photo(WEN_SAME)).unwrap();
    std::os::unix::fs::symlink(
        &secret,
        folder.path().join(format!("{}_2.jpg", UNKNOWN.id())),
    )
    .unwrap();
    let (good, faceless) = (UNKNOWN.id(), with_check_char("44030519850101013"));
    std::fs::write(
        folder.path().join(format!("{good}.jpg")),
        app.photo(WEN_PORTRAIT),
    )
    .unwrap();
    std::fs::write(
        folder.path().join(format!("{faceless}.png")),
        app.photo(NO_FACE),
    )
    .unwrap();
    std::fs::write(
        folder.path().join("people.csv"),
        format!("id,name\n{good},{}\n{faceless},赵六\n", UNKNOWN.name),
    )
    .unwrap();
    let r = b
        .request(Method::POST, "/console/registry/import")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(url_encode(&[
            ("csrf", &b.csrf().await),
            // Relative to the root, as an operator types it.
            (
                "folder",
                folder.path().file_name().unwrap().to_str().unwrap(),
            ),
            ("basis", "consent"),
            ("consent_ref", "batch consent 2026-12"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let progress = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(
        progress.starts_with("/console/registry/import/"),
        "{progress}"
    );
    let mut page = String::new();
    for _ in 0..100 {
        let (status, body, headers) = b.get(&progress).await;
        assert_eq!(status, 200);
        page = body;
        if page.contains("data-state=\"done\"") {
            assert!(
                headers.get("refresh").is_none(),
                "a finished import stops refreshing"
            );
            break;
        }
        assert!(page.contains("data-state=\"running\""), "{page}");
        assert_eq!(headers["refresh"], "1");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(page.contains("data-state=\"done\""), "{page}");
    assert!(page.contains("data-done=\"2\" data-total=\"2\""), "{page}");
    // The faceless photo is refused with its reason, its file name masked; the link is
    // refused, not followed.
    // Each refused item in the operator's language (Chinese by default), none in English.
    let refused = page
        .split("id=\"import-refused\"")
        .nth(1)
        .expect("the refused list");
    let refused = refused.split("</ul>").next().unwrap();
    assert!(refused.contains("未检测到人脸"), "{refused}");
    assert!(refused.contains("控制台导入不跟随符号链接"), "{refused}");
    assert!(
        !refused.contains("no face")
            && !refused.contains("symbolic link")
            && !refused.contains("CSV line"),
        "{refused}"
    );
    assert!(
        !page.contains(&faceless) && !page.contains(&good),
        "an ID number in clear: {page}"
    );
    let id = renzheng_domain::IdNumber::parse(&good).unwrap();
    assert!(app.state.app.person(&id).await.unwrap().is_some());
    // A folder that is not there, or not inside the root (absolute, by `..`, or by a
    // link), is refused at once.
    std::os::unix::fs::symlink(outside.path(), root.path().join("escape")).unwrap();
    let outside_abs = outside.path().to_str().unwrap().to_owned();
    for asked in ["/no/such/folder", "../", outside_abs.as_str(), "escape"] {
        let (_, page) = b
            .post_form(
                "/console/registry/import",
                &[("csrf", FRESH), ("folder", asked)],
            )
            .await;
        assert!(page.contains("data-reason=\"folder\""), "{asked}: {page}");
        assert!(page.contains("console.import_root"), "{asked}: {page}");
    }
}

#[tokio::test]
async fn without_an_import_root_the_console_imports_no_folder() {
    let app = spawn_test_app_with(with_console).await;
    let b = signed_in(&app).await;
    let (_, page) = b
        .post_form(
            "/console/registry/import",
            &[("csrf", FRESH), ("folder", "/tmp")],
        )
        .await;
    assert!(page.contains("data-reason=\"folder\""), "{page}");
    assert!(page.contains("set console.import_root"), "{page}");
}

#[tokio::test]
async fn app_policy_test_alert_and_appcode_rotation_from_the_console() {
    let app = spawn_test_app_with(with_console).await;
    let b = signed_in(&app).await;
    let (hook, received) = crate::metering::webhook_receiver().await;
    let base = format!("/console/apps/{}", app.app_id);
    // Rate limit, threshold and webhook, as typed in the form.
    let (status, page) = b
        .post_form(
            &format!("{base}/policy"),
            &[
                ("csrf", FRESH),
                ("rate_per_second", "5"),
                ("alert_percent", "30"),
                ("webhook_url", &hook),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("class=\"flash ok\""), "{page}");
    let view = app
        .state
        .app
        .app(&renzheng_store::AppId::from(app.app_id.clone()))
        .await
        .unwrap();
    assert_eq!(view.policy.rate_per_sec, Some(5.0));
    assert_eq!(view.policy.alert_percent, 30);
    assert_eq!(view.policy.webhook_url.as_deref(), Some(hook.as_str()));
    let (_, page) = b
        .post_form(
            &format!("{base}/policy"),
            &[("csrf", FRESH), ("alert_percent", "300")],
        )
        .await;
    assert!(page.contains("class=\"flash error\""), "{page}");
    // The test alert: posted once, signed with the app's secret, kind "test".
    let (_, page) = b
        .post_form(&format!("{base}/test-alert"), &[("csrf", FRESH)])
        .await;
    assert!(page.contains("class=\"flash ok\""), "{page}");
    let posts = received.lock().unwrap().clone();
    assert_eq!(posts.len(), 1);
    let (headers, body) = &posts[0];
    assert_eq!(headers["x-renzheng-alert"], "test");
    let signature = headers["x-renzheng-signature"].to_str().unwrap();
    let t: i64 = signature[2..].split(',').next().unwrap().parse().unwrap();
    assert_eq!(
        signature,
        renzheng_app::webhook_signature(&app.app_secret, t, body.as_bytes())
    );
    // Rotating the AppCode shows the new one once; the old one stops at once.
    let (_, page) = b
        .post_form(
            &format!("{base}/reset-code"),
            &[("grace_hours", "0"), ("csrf", FRESH)],
        )
        .await;
    let marker = "data-field=\"app_code\">";
    let at = page.find(marker).expect("the new code shown") + marker.len();
    let new_code = page[at..].split('<').next().unwrap().to_owned();
    assert_ne!(new_code, app.app_code);
    let status_with = |code: String| {
        let app = &app;
        async move {
            app.request(Method::GET, "/v1/app/balance")
                .header("Authorization", format!("APPCODE {code}"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status_with(app.app_code.clone()).await, 403);
    assert_eq!(status_with(new_code.clone()).await, 200);
    // Disabled: the new code stops too; enabled again, it works.
    b.post_form(&format!("{base}/disable"), &[("csrf", FRESH)])
        .await;
    assert_eq!(status_with(new_code.clone()).await, 403);
    b.post_form(&format!("{base}/enable"), &[("csrf", FRESH)])
        .await;
    assert_eq!(status_with(new_code).await, 200);
}

#[tokio::test]
async fn on_postgresql_a_session_signed_in_on_one_node_works_on_every_node() {
    let Some(db) = crate::postgres::scratch_database("console_sessions_span_nodes").await else {
        return;
    };
    let configure = |s: &mut Settings| {
        crate::postgres::node(&db)(s);
        with_console(s);
    };
    let (a, b) = (
        spawn_test_app_with(configure).await,
        spawn_test_app_with(configure).await,
    );
    let on_a = signed_in(&a).await;
    let mut on_b = Browser::new(&b);
    on_b.cookie = on_a.cookie.clone();
    assert_eq!(
        on_b.get("/console/overview").await.0,
        200,
        "node b knows the session"
    );
    // A form rendered by one node posts to the other (its token is the session's), and
    // the page it redirects to shows the one-time message on either node.
    let csrf = on_a.csrf().await;
    let r = on_b
        .post_form_raw("/console/apps", &[("name", "made-on-b"), ("csrf", &csrf)])
        .await;
    assert_eq!(r.status(), 303);
    let to = r.headers()[LOCATION].to_str().unwrap().to_owned();
    let (status, page, _) = on_a.get(&to).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-field=\"app_code\""), "{page}");
    // Spent on one node, spent on every node.
    let r = on_a
        .post_form_raw("/console/apps", &[("name", "again"), ("csrf", &csrf)])
        .await;
    assert_eq!(r.status(), 409);
    // Signed out on b: gone on a too.
    on_b.post_form("/console/sign-out", &[("csrf", &on_a.csrf().await)])
        .await;
    assert_eq!(on_a.get("/console/overview").await.0, 303);
}

#[tokio::test]
async fn bad_console_input_gets_a_clear_refusal_and_changes_nothing() {
    let app = spawn_test_app_with(with_console).await;
    let b = signed_in(&app).await;
    // A malformed ID number: the rule that failed, no lookup.
    let (status, page) = b
        .post_form(
            "/console/registry/lookup",
            &[("csrf", FRESH), ("id_number", "11010519491231002Y")],
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("class=\"flash error\"") && page.contains("身份证号无效"),
        "{page}"
    );
    // A price with three decimals, calls that are not a number: refused, catalogue unchanged.
    let before = app.state.app.packages().await.unwrap();
    for (calls, price) in [("10", "1.234"), ("ten", "1"), ("0", "1")] {
        let (_, page) = b
            .post_form(
                "/console/packages",
                &[
                    ("csrf", FRESH),
                    ("name", "bad"),
                    ("calls", calls),
                    ("price_yuan", price),
                ],
            )
            .await;
        assert!(
            page.contains("class=\"flash error\""),
            "{calls} {price}: {page}"
        );
    }
    assert_eq!(app.state.app.packages().await.unwrap(), before);
    // Granting an unknown package.
    let (_, page) = b
        .post_form(
            "/console/grants",
            &[
                ("csrf", FRESH),
                ("app_id", &app.app_id),
                ("package", "nope"),
            ],
        )
        .await;
    assert!(page.contains("class=\"flash error\""), "{page}");
    // History filters out of their rules: said on the page; the CSV answers 400.
    let (status, page, _) = b.get("/console/calls?result=9").await;
    assert_eq!(status, 200);
    assert!(page.contains("result must be 1 to 8"), "{page}");
    let (status, _, _) = b.get("/console/calls.csv?from=2026-13-01").await;
    assert_eq!(status, 400);
    // An upload naming a field twice, or a try-it without a photo.
    let (_, page) = b
        .post_multipart(
            "/console/try",
            &[
                ("csrf", FRESH),
                ("name", HU.name),
                ("name", JIANG.name),
                ("id_number", &HU.id()),
            ],
            &[],
        )
        .await;
    assert!(page.contains("提交了不止一次"), "{page}");
    let (_, page) = b
        .post_multipart(
            "/console/try",
            &[("csrf", FRESH), ("name", HU.name), ("id_number", &HU.id())],
            &[],
        )
        .await;
    assert!(
        page.contains("HTTP 400") && page.contains("image"),
        "{page}"
    );
    // An app name out of its rule.
    let apps = app.state.app.list_apps().await.unwrap().len();
    let (_, page) = b
        .post_form("/console/apps", &[("csrf", FRESH), ("name", "")])
        .await;
    assert!(page.contains("class=\"flash error\""), "{page}");
    assert_eq!(app.state.app.list_apps().await.unwrap().len(), apps);
}

/// The masked form of a test person's ID number, as pages show it.
fn masked_id(person: Person) -> String {
    renzheng_domain::IdNumber::parse(&person.id())
        .unwrap()
        .masked()
}

/// The rows of the table `id` on `page` (`<tr data-handle=…>` rows).
fn table_rows(page: &str, id: &str) -> usize {
    let Some(at) = page.find(&format!("<table id=\"{id}\"")) else {
        return 0;
    };
    let table = page[at..].split("</table>").next().unwrap();
    table.matches("<tr data-handle=").count()
}

/// The text of the flash with `data-reason="{reason}"`, if the page has one.
fn flash_text(page: &str, reason: &str) -> Option<String> {
    let at = page.find(&format!("data-reason=\"{reason}\""))?;
    let text = page[at..].split_once('>')?.1.split("</p>").next()?;
    Some(text.to_owned())
}

/// The registry's event row of `action` on `page`, if shown.
fn event_row(page: &str, action: &str) -> Option<String> {
    let at = page.find("id=\"registry-events\"")?;
    let table = page[at..].split("</table>").next()?;
    let row = table.find(&format!("<tr data-action=\"{action}\""))?;
    Some(table[row..].split("</tr>").next()?.to_owned())
}

#[tokio::test]
async fn the_registry_lists_persons_masked_in_pages_and_finds_them_by_id_number_handle_or_name() {
    let app = spawn_test_app_with(with_console).await;
    // Three persons at start (HU, JIANG, NO_PHOTO) and 22 more: two pages of 20.
    let mut clear = vec![
        (HU.id(), HU.name.to_owned()),
        (JIANG.id(), JIANG.name.to_owned()),
        (NO_PHOTO.id(), NO_PHOTO.name.to_owned()),
    ];
    for (i, c) in "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥"
        .chars()
        .enumerate()
    {
        let id = with_check_char(&format!("11010519800101{:03}", 100 + i));
        let name = format!("欧阳{c}");
        app.store
            .enrol(
                &renzheng_domain::IdNumber::parse(&id).unwrap(),
                &renzheng_domain::PersonName::parse(&name).unwrap(),
                Vec::new(),
                None,
                app.state.app.now_ms(),
            )
            .await
            .unwrap();
        clear.push((id, name));
    }
    let b = signed_in(&app).await;
    let nothing_clear = |page: &str| {
        for (id, name) in &clear {
            assert!(
                !page.contains(id.as_str()) && !page.contains(name.as_str()),
                "{id} or {name} in clear: {page}"
            );
        }
    };
    let (status, first, _) = b.get("/console/registry").await;
    assert_eq!(status, 200, "{first}");
    assert!(first.contains("id=\"person-count\">25<"), "{first}");
    assert_eq!(table_rows(&first, "persons"), 20);
    assert!(
        first.contains("href=\"/console/registry?page=2\""),
        "{first}"
    );
    assert!(!first.contains("id=\"prev-page\""));
    assert!(first.contains("<code>11**************"), "masked: {first}");
    nothing_clear(&first);
    let (status, second, _) = b.get("/console/registry?page=2").await;
    assert_eq!(status, 200);
    assert_eq!(table_rows(&second, "persons"), 5);
    assert!(
        second.contains("href=\"/console/registry?page=1\""),
        "{second}"
    );
    assert!(!second.contains("id=\"next-page\""));
    nothing_clear(&second);
    // The first enrolled (HU) is on the last page, masked, with its handle.
    assert!(second.contains(&masked_id(HU)), "{second}");
    let handle = app
        .state
        .app
        .find_persons(&HU.id(), 1)
        .await
        .unwrap()
        .remove(0)
        .handle;
    assert!(second.contains(&handle));
    // A page past the end: empty, with the way back; a bad page number: the first.
    let (status, past, _) = b.get("/console/registry?page=9").await;
    assert_eq!(status, 200);
    assert_eq!(table_rows(&past, "persons"), 0);
    assert!(past.contains("id=\"prev-page\""), "{past}");
    let (_, bad, _) = b.get("/console/registry?page=x").await;
    assert_eq!(table_rows(&bad, "persons"), 20);

    // Search: by full ID number, by handle, by exact name (posted, never shown back).
    let search = |query: String| {
        let b = &b;
        async move {
            let (status, page) = b
                .post_form(
                    "/console/registry/search",
                    &[("csrf", FRESH), ("query", &query)],
                )
                .await;
            assert_eq!(status, 200, "{page}");
            page
        }
    };
    for query in [HU.id(), handle.clone(), HU.name.to_owned()] {
        let page = search(query.clone()).await;
        assert!(page.contains("data-found=\"1\""), "{query}: {page}");
        assert_eq!(table_rows(&page, "found"), 1);
        let found = page.find("id=\"found\"").unwrap();
        assert!(page[found..].contains(&masked_id(HU)), "{page}");
        assert!(page[found..].contains(&handle), "{page}");
        nothing_clear(&page);
    }
    let page = search(UNKNOWN.id()).await;
    assert!(page.contains("data-found=\"0\""), "{page}");
    assert!(!page.contains(&UNKNOWN.id()));
    let page = search("欧阳甲".into()).await;
    assert!(page.contains("data-found=\"1\""), "{page}");
    nothing_clear(&page);
}

#[tokio::test]
async fn a_rename_needs_a_reason_and_the_events_show_who_renamed_and_why() {
    let app = spawn_test_app_with(with_console).await;
    let b = signed_in(&app).await;
    let new_name = "胡某某";
    let id = HU.id();
    // Without a reason: refused, nothing changed.
    for reason in ["", "   "] {
        let (status, page) = b
            .post_form(
                "/console/registry/rename",
                &[
                    ("csrf", FRESH),
                    ("person", &id),
                    ("name", new_name),
                    ("reason", reason),
                ],
            )
            .await;
        assert_eq!(status, 200);
        assert!(page.contains("data-reason=\"reason-required\""), "{page}");
    }
    let (_, page) = b
        .post_form(
            "/console/registry/rename",
            &[("csrf", FRESH), ("person", &id), ("name", new_name)],
        )
        .await;
    assert!(page.contains("data-reason=\"reason-required\""), "{page}");
    let still = app.state.app.find_persons(HU.name, 5).await.unwrap();
    assert_eq!(still.len(), 1, "the name is unchanged");
    assert!(app
        .state
        .app
        .find_persons(new_name, 5)
        .await
        .unwrap()
        .is_empty());
    // An unknown person.
    let (_, page) = b
        .post_form(
            "/console/registry/rename",
            &[
                ("csrf", FRESH),
                ("person", &UNKNOWN.id()),
                ("name", new_name),
                ("reason", "typo"),
            ],
        )
        .await;
    assert!(page.contains("data-reason=\"unknown\""), "{page}");
    // By handle, with a reason: renamed; the page shows the person masked and the event
    // with the operator and the reason.
    let reason = "证件信息更正 / ID card corrected";
    let (status, page) = b
        .post_form(
            "/console/registry/rename",
            &[
                ("csrf", FRESH),
                ("person", &still[0].handle),
                ("name", new_name),
                ("reason", reason),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("class=\"flash ok\""), "{page}");
    assert!(page.contains("id=\"person\""), "{page}");
    assert!(page.contains("胡*"), "the new name, masked: {page}");
    assert!(
        !page.contains(&id) && !page.contains(new_name) && !page.contains(HU.name),
        "clear personal data shown: {page}"
    );
    let row = event_row(&page, "person.renamed").expect("the rename in the events");
    assert!(
        row.contains(reason) && row.contains("console:admin"),
        "{row}"
    );
    assert!(row.contains(&masked_id(HU)), "{row}");
    assert_eq!(
        app.state.app.find_persons(new_name, 5).await.unwrap().len(),
        1
    );
    assert!(app
        .state
        .app
        .find_persons(HU.name, 5)
        .await
        .unwrap()
        .is_empty());
    // The registry page shows it too.
    let (_, page, _) = b.get("/console/registry").await;
    assert!(event_row(&page, "person.renamed").is_some(), "{page}");
}

#[tokio::test]
async fn replacing_portraits_needs_one_person_in_the_photos_and_a_reason() {
    let app = spawn_app_with(with_console).await;
    let b = signed_in(&app).await;
    let id = HU.id();
    let parsed = renzheng_domain::IdNumber::parse(&id).unwrap();
    let before = app.state.app.person(&parsed).await.unwrap().unwrap();
    let replace = |reason: &'static str, photos: Vec<Vec<u8>>| {
        let (b, id) = (&b, &id);
        async move {
            let files: Vec<(&str, &[u8])> = photos.iter().map(|p| ("photo", &p[..])).collect();
            let (status, page) = b
                .post_multipart(
                    "/console/registry/replace",
                    &[("csrf", FRESH), ("person", id), ("reason", reason)],
                    &files,
                )
                .await;
            assert_eq!(status, 200, "{page}");
            page
        }
    };
    // Two people's photos: refused, nothing changed.
    let page = replace(
        "new photos",
        vec![app.photo(HU_SAME), app.photo(WEN_PORTRAIT)],
    )
    .await;
    assert!(page.contains("data-reason=\"portrait-mismatch\""), "{page}");
    assert!(!page.contains("renzheng registry"), "no CLI in the console");
    assert_eq!(
        app.state.app.person(&parsed).await.unwrap().unwrap(),
        before
    );
    // Without a reason: refused.
    let page = replace("", vec![app.photo(WEN_PORTRAIT), app.photo(WEN_SAME)]).await;
    assert!(page.contains("data-reason=\"reason-required\""), "{page}");
    assert_eq!(
        app.state.app.person(&parsed).await.unwrap().unwrap(),
        before
    );
    // One person's two photos and a reason: replaced.
    let reason = "portraits were of the wrong person";
    let page = replace(reason, vec![app.photo(WEN_PORTRAIT), app.photo(WEN_SAME)]).await;
    assert!(page.contains("class=\"flash ok\""), "{page}");
    assert!(page.contains("data-portraits=\"2\""), "{page}");
    assert!(!page.contains(&id) && !page.contains(HU.name));
    let after = app.state.app.person(&parsed).await.unwrap().unwrap();
    assert_eq!(after.portraits.len(), 2);
    assert!(after
        .portraits
        .iter()
        .all(|p| before.portraits.iter().all(|old| old.id != p.id)));
    let row = event_row(&page, "person.portraits-replaced").expect("the replacement");
    assert!(row.contains(reason), "{row}");
}

/// Enrols UNKNOWN from the console with HU's other photo; the page.
async fn enrol_unknown_with_hus_face(app: &TestApp, b: &Browser, extra: &[(&str, &str)]) -> String {
    let id = UNKNOWN.id();
    let mut fields = vec![
        ("csrf", FRESH),
        ("name", UNKNOWN.name),
        ("id_number", id.as_str()),
        ("basis", "law"),
        ("law", "反恐怖主义法 第二十一条"),
    ];
    fields.extend_from_slice(extra);
    let (status, page) = b
        .post_multipart(
            "/console/registry/enrol",
            &fields,
            &[("photo", &app.photo(HU_SAME))],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page
}

#[tokio::test]
async fn a_face_under_another_id_number_is_enrolled_only_when_allowed_with_a_reason() {
    let app = spawn_app_with(with_console).await;
    let b = signed_in(&app).await;
    let parsed = renzheng_domain::IdNumber::parse(&UNKNOWN.id()).unwrap();
    // The form offers the box and the reason.
    let (_, form, _) = b.get("/console/registry").await;
    let enrol_form = form[form.find("id=\"enrol\"").unwrap()..]
        .split("</form>")
        .next()
        .unwrap();
    assert!(
        enrol_form.contains("name=\"allow_duplicate_face\" type=\"checkbox\" value=\"yes\""),
        "{enrol_form}"
    );
    assert!(enrol_form.contains("name=\"reason\""), "{enrol_form}");
    // Refused: the message names HU masked, with no CLI flag anywhere on the page.
    let page = enrol_unknown_with_hus_face(&app, &b, &[]).await;
    let message = flash_text(&page, "duplicate-face").expect("a duplicate-face refusal");
    assert!(message.contains(&masked_id(HU)), "{message}");
    assert!(
        !page.contains("--allow-duplicate-face") && !page.contains("--reason"),
        "no CLI flags in the console: {page}"
    );
    // Numbers in clear nowhere but in the refused form's own fields, as typed.
    let outside_form: String = {
        let at = page.find("<form id=\"enrol\"").expect("the enrol form");
        let end = at + page[at..].find("</form>").unwrap();
        format!("{}{}", &page[..at], &page[end..])
    };
    assert!(!outside_form.contains(&HU.id()) && !outside_form.contains(&UNKNOWN.id()));
    assert!(app.state.app.person(&parsed).await.unwrap().is_none());
    // Ticked without a reason: refused.
    let page = enrol_unknown_with_hus_face(&app, &b, &[("allow_duplicate_face", "yes")]).await;
    assert!(page.contains("data-reason=\"reason-required\""), "{page}");
    assert!(app.state.app.person(&parsed).await.unwrap().is_none());
    // Ticked with a reason: enrolled, and the override is in the events with its reason.
    let reason = "twins registered by the bureau";
    let page = enrol_unknown_with_hus_face(
        &app,
        &b,
        &[("allow_duplicate_face", "yes"), ("reason", reason)],
    )
    .await;
    assert!(page.contains("class=\"flash ok\""), "{page}");
    assert!(page.contains("data-portraits=\"1\""), "{page}");
    assert!(app.state.app.person(&parsed).await.unwrap().is_some());
    let row = event_row(&page, "person.duplicate-allowed").expect("the override");
    assert!(
        row.contains(reason) && row.contains("console:admin"),
        "{row}"
    );
    assert!(
        event_row(&page, "person.portrait-refused").is_some(),
        "the refusals are shown too"
    );
    // No CLI flag in the console's words (a form token may hold "--": base64url).
    assert!(
        !page.contains("--allow-duplicate-face") && !page.contains("--reason"),
        "{page}"
    );
}

#[tokio::test]
async fn the_duplicate_scan_runs_in_the_background_and_lists_the_pair_masked() {
    let app = spawn_app_with(with_console).await;
    let b = signed_in(&app).await;
    let page = enrol_unknown_with_hus_face(
        &app,
        &b,
        &[
            ("allow_duplicate_face", "yes"),
            ("reason", "one person, two IDs"),
        ],
    )
    .await;
    assert!(page.contains("class=\"flash ok\""), "{page}");
    let (status, start, _) = b.get("/console/registry/duplicates").await;
    assert_eq!(status, 200);
    assert!(!start.contains("id=\"latest-scan\""), "no scan yet");
    let csrf = b.csrf().await;
    let r = b
        .request(Method::POST, "/console/registry/duplicates")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(url_encode(&[("csrf", &csrf)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let progress = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(
        progress.starts_with("/console/registry/duplicates/"),
        "{progress}"
    );
    let mut page = String::new();
    for _ in 0..300 {
        let (status, body, headers) = b.get(&progress).await;
        assert_eq!(status, 200);
        page = body;
        if page.contains("data-state=\"done\"") {
            assert!(
                headers.get("refresh").is_none(),
                "a finished scan stops refreshing"
            );
            break;
        }
        assert!(page.contains("data-state=\"running\""), "{page}");
        assert_eq!(headers["refresh"], "1");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(page.contains("data-state=\"done\""), "{page}");
    // The pair, both masked with their handles; nothing in clear.
    let handle = |person: Person| {
        let app = &app;
        async move {
            app.state
                .app
                .find_persons(&person.id(), 1)
                .await
                .unwrap()
                .remove(0)
                .handle
        }
    };
    let (hu, unknown) = (handle(HU).await, handle(UNKNOWN).await);
    let at = page.find("id=\"duplicate-pairs\"").expect("a pairs table");
    let table = page[at..].split("</table>").next().unwrap();
    let row = table
        .split("<tr ")
        .find(|r| r.contains(&hu) && r.contains(&unknown))
        .unwrap_or_else(|| panic!("the pair is listed: {table}"));
    assert!(
        row.contains(&masked_id(HU)) && row.contains(&masked_id(UNKNOWN)),
        "{row}"
    );
    for person in [HU, JIANG, UNKNOWN] {
        assert!(
            !page.contains(&person.id()) && !page.contains(person.name),
            "clear personal data: {page}"
        );
    }
    // No reveal from the console.
    let events = app.state.app.recent_events(50).await.unwrap();
    assert!(!events
        .iter()
        .any(|e| e.action == "registry.duplicates-revealed"));
    // The scan page links the latest scan; an unknown job is a 404.
    let (_, start, _) = b.get("/console/registry/duplicates").await;
    assert!(start.contains(&format!("href=\"{progress}\"")), "{start}");
    let (status, _, _) = b.get("/console/registry/duplicates/nope").await;
    assert_eq!(status, 404);
}

// ---- Sign-in per client, its body limit, a cookie browsers accept (issue 21) ----------

/// A wrong-password sign-in from `client` (`X-Forwarded-For`, when given) through the
/// HTTP client `http`: its status and `Retry-After`.
async fn sign_in_as(
    app: &TestApp,
    http: &reqwest::Client,
    forwarded_for: Option<&str>,
    password: &str,
) -> (u16, Option<String>) {
    let mut r = http
        .post(format!("{}/console/sign-in", app.address))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(url_encode(&[("operator", "admin"), ("password", password)]));
    if let Some(xff) = forwarded_for {
        r = r.header("X-Forwarded-For", xff);
    }
    let r = r.send().await.unwrap();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), retry_after)
}

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn one_client_guessing_does_not_lock_out_another_behind_a_trusted_proxy() {
    let app = spawn_test_app_with(|s| {
        with_console(s);
        // The test client connects from 127.0.0.1: it plays the proxy.
        s.console.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let http = plain_client();
    let a = Some("203.0.113.1");
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(sign_in_as(&app, &http, a, "not the password").await);
    }
    assert!(
        statuses[..5].iter().all(|(s, _)| *s == 401)
            && statuses[5..].iter().all(|(s, _)| *s == 429),
        "{statuses:?}"
    );
    assert!(statuses[6]
        .1
        .as_deref()
        .is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    // Client A cannot escape by writing another address in front of the proxy's entry.
    let spoofed = sign_in_as(&app, &http, Some("198.51.100.9, 203.0.113.1"), PASSWORD).await;
    assert_eq!(spoofed.0, 429);
    // Client B, through the same proxy, is refused only for its password, and signs in.
    let b = Some("203.0.113.2");
    assert_eq!(sign_in_as(&app, &http, b, "not the password").await.0, 401);
    assert_eq!(sign_in_as(&app, &http, b, PASSWORD).await.0, 303);
    // An IPv6 client counts by its /64: another address of it is the same client.
    for _ in 0..5 {
        let (status, _) =
            sign_in_as(&app, &http, Some("2001:db8:1:2::10"), "not the password").await;
        assert_eq!(status, 401);
    }
    assert_eq!(
        sign_in_as(&app, &http, Some("2001:db8:1:2::99"), PASSWORD)
            .await
            .0,
        429
    );
    assert_eq!(
        sign_in_as(&app, &http, Some("2001:db8:1:3::10"), PASSWORD)
            .await
            .0,
        303
    );
    // The logs name no client address.
    let logs = captured_logs();
    assert!(
        !logs.contains("203.0.113.1"),
        "a client address in the logs"
    );
}

#[tokio::test]
async fn without_a_trusted_proxy_the_connection_address_is_the_client() {
    let app = spawn_test_app_with(with_console).await;
    let http = plain_client();
    // X-Forwarded-For is not believed: every attempt here is 127.0.0.1's.
    let mut statuses = Vec::new();
    for i in 0..6 {
        let xff = format!("203.0.113.{i}");
        statuses.push(
            sign_in_as(&app, &http, Some(&xff), "not the password")
                .await
                .0,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
    // Another source address is another client (Linux routes all of 127/8 to loopback).
    let other = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    assert_eq!(sign_in_as(&app, &other, None, PASSWORD).await.0, 303);
    assert_eq!(sign_in_as(&app, &http, None, PASSWORD).await.0, 429);
}

#[tokio::test]
async fn a_successful_sign_in_is_not_counted() {
    let app = spawn_test_app_with(with_console).await;
    let http = plain_client();
    let started = std::time::Instant::now();
    for _ in 0..4 {
        assert_eq!(
            sign_in_as(&app, &http, None, "not the password").await.0,
            401
        );
    }
    // Were successes counted, the second would be refused (the burst is 5).
    for _ in 0..8 {
        assert_eq!(sign_in_as(&app, &http, None, PASSWORD).await.0, 303);
    }
    assert_eq!(
        sign_in_as(&app, &http, None, "not the password").await.0,
        401
    );
    assert_eq!(
        sign_in_as(&app, &http, None, "not the password").await.0,
        429
    );
    // One attempt comes back every 3 s: the test means nothing if it took that long.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "too slow to tell"
    );
}

#[tokio::test]
async fn many_clients_together_meet_the_global_ceiling() {
    let app = spawn_test_app_with(|s| {
        with_console(s);
        s.console.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let http = plain_client();
    // 16 clients, 4 attempts each: none over its own budget (5), 64 in all, over the
    // ceiling's burst (50).
    let started = std::time::Instant::now();
    let attempts = (0..64).map(|i| {
        let (app, http) = (&app, &http);
        async move {
            let xff = format!("198.51.100.{}", i % 16);
            sign_in_as(app, http, Some(&xff), "not the password").await
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let elapsed = started.elapsed();
    let refused = statuses.iter().filter(|(s, _)| *s == 429).count();
    let answered = statuses.iter().filter(|(s, _)| *s == 401).count();
    assert_eq!(refused + answered, 64, "{statuses:?}");
    // The ceiling: 50 at once, then one every 0.3 s.
    let allowed = 50 + (elapsed.as_millis() / 300) as usize + 1;
    assert!(answered <= allowed, "{answered} > {allowed} in {elapsed:?}");
    assert!(refused > 0, "{statuses:?} in {elapsed:?}");
    assert!(statuses
        .iter()
        .filter(|(s, _)| *s == 429)
        .all(|(_, retry)| retry.is_some()));
}

/// Sends a request head (and `body`, if any) on a fresh connection and reads the answer's
/// status line within `within`; `None` if none came.
async fn raw_status(
    app: &TestApp,
    head: &str,
    body: &[u8],
    within: std::time::Duration,
) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer and close before taking it all: a failed write is fine.
    let _ = stream.write_all(body).await;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(within, async {
        while !got.windows(2).any(|w| w == b"\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()?;
    let text = String::from_utf8_lossy(&got);
    text.split("\r\n")
        .next()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
}

fn sign_in_head(app: &TestApp, length: &str) -> String {
    format!(
        "POST /console/sign-in HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n{length}\r\n",
        app.address.trim_start_matches("http://")
    )
}

#[tokio::test]
async fn a_large_sign_in_body_is_refused_without_being_read() {
    let app = spawn_test_app_with(with_console).await;
    let quick = std::time::Duration::from_secs(2);
    // 32 MB declared, one byte sent: answered from the head.
    let head = sign_in_head(&app, "Content-Length: 33554432\r\n");
    let status = raw_status(&app, &head, b"o", quick).await;
    assert_eq!(status.as_deref(), Some("HTTP/1.1 413 Payload Too Large"));
    // Undeclared (chunked): read only up to the limit, then refused.
    let head = sign_in_head(&app, "Transfer-Encoding: chunked\r\n");
    let chunk = format!("1000\r\n{}\r\n", "a".repeat(4096));
    let status = raw_status(&app, &head, chunk.repeat(3).as_bytes(), quick).await;
    assert_eq!(status.as_deref(), Some("HTTP/1.1 413 Payload Too Large"));
    // A form of ordinary size is read as before.
    let r = plain_client()
        .post(format!("{}/console/sign-in", app.address))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("operator=admin&password={}", "p".repeat(7000)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn with_the_console_off_sign_in_is_404_without_reading_the_body() {
    let app = spawn_test_app().await;
    let head = sign_in_head(&app, "Content-Length: 33554432\r\n");
    let status = raw_status(&app, &head, b"", std::time::Duration::from_secs(2)).await;
    assert_eq!(status.as_deref(), Some("HTTP/1.1 404 Not Found"));
}

#[tokio::test]
async fn the_secure_session_cookie_is_one_browsers_accept() {
    let app = spawn_test_app_with(|s| {
        with_console(s);
        s.console.secure_cookie = true;
    })
    .await;
    let mut b = Browser::new(&app);
    let r = b.sign_in("admin", PASSWORD).await;
    assert_eq!(r.status(), 303);
    let set: Vec<String> = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    // A `__Host-` cookie must be Secure, with Path=/ and no Domain, or browsers drop it.
    let session = &set[0];
    let attributes: Vec<&str> = session.split(';').map(str::trim).collect();
    assert!(
        attributes[0].starts_with("__Host-renzheng_console="),
        "{session}"
    );
    for wanted in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(attributes.contains(&wanted), "{wanted} missing: {session}");
    }
    assert!(
        !session.to_ascii_lowercase().contains("domain="),
        "{session}"
    );
    // The other cookie clears the plain cookie of the old path (earlier releases).
    assert!(
        set[1..]
            .iter()
            .any(|c| c.starts_with("renzheng_console=;") && c.contains("Path=/console;")),
        "{set:?}"
    );
    let (status, _, _) = b.get("/console/overview").await;
    assert_eq!(status, 200);
    // The plain name is not read when the cookie is Secure.
    let token = b.cookie.clone().unwrap();
    let plain = token.replace("__Host-renzheng_console=", "renzheng_console=");
    b.cookie = Some(plain);
    assert_eq!(b.get("/console/overview").await.0, 303);
}

#[tokio::test]
async fn a_stale_cookie_of_the_old_path_beside_the_new_one_does_not_sign_out() {
    let app = spawn_test_app_with(with_console).await;
    let mut b = signed_in(&app).await;
    // A browser sends the longer path's cookie first: the old /console one.
    let current = b.cookie.clone().unwrap();
    b.cookie = Some(format!("renzheng_console=stale-token; {current}"));
    let (status, page, _) = b.get("/console/overview").await;
    assert_eq!(status, 200, "{page}");
    // Only stale ones: signed out, both paths cleared.
    b.cookie = Some("renzheng_console=stale-token".into());
    let (status, _, headers) = b.get("/console/overview").await;
    assert_eq!(status, 303);
    assert_eq!(headers[LOCATION], "/console/sign-in?expired=1");
    let cleared: Vec<&str> = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(cleared.iter().any(|c| c.contains("Path=/;")), "{cleared:?}");
    assert!(
        cleared.iter().any(|c| c.contains("Path=/console;")),
        "{cleared:?}"
    );
}

#[tokio::test]
async fn the_about_page_lists_the_size_bands_in_force() {
    // The real engine: the default pack's bands for small faces, as scores.
    let app = spawn_app_with(with_console).await;
    let b = signed_in(&app).await;
    let (status, body, _) = b.get("/console/about").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("id=\"size-bands\""), "{body}");
    for below in ["15", "20", "30"] {
        assert!(
            body.contains(&format!("data-below-px=\"{below}\"")),
            "no band below {below} px: {body}"
        );
    }
}

#[tokio::test]
async fn a_form_acts_once_and_redirects_to_a_page_that_shows_its_message_once() {
    let app = spawn_test_app_with(with_console).await;
    let b = signed_in(&app).await;
    let remaining = || async {
        let quotas = app.state.app.quotas().await.unwrap();
        let mine = quotas.iter().find(|q| q.app.app_id == app.app_id).unwrap();
        (mine.remaining, mine.grants.len(), mine.app.name.clone())
    };
    let (before, grants, name) = remaining().await;
    let csrf = b.csrf().await;
    let grant = [
        ("app_id", app.app_id.as_str()),
        ("package", "trial"),
        ("csrf", csrf.as_str()),
    ];
    // Post/Redirect/Get: the answer is a 303 to the page, naming only a one-time message.
    let r = b.post_form_raw("/console/grants", &grant).await;
    assert_eq!(r.status(), 303);
    let to = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(to.starts_with("/console/packages?flash="), "{to}");
    assert!(!to.contains(&app.app_id), "{to}");
    assert_eq!(remaining().await.0, before + 20);
    // Another session cannot take the message (and does not spend it).
    let other = signed_in(&app).await;
    let (status, page, _) = other.get(&to).await;
    assert_eq!(status, 200);
    assert!(!page.contains("class=\"flash ok\""), "{page}");
    // The page shows it once, naming the app; a reload of that page shows it no more and
    // grants nothing.
    let (status, page, _) = b.get(&to).await;
    assert_eq!(status, 200);
    assert!(page.contains("class=\"flash ok\""), "{page}");
    assert!(page.contains(&name) && page.contains(&app.app_id), "{page}");
    let (_, again, _) = b.get(&to).await;
    assert!(!again.contains("class=\"flash ok\""), "{again}");
    // The same form sent again (a reload of the POST, a replay): 409, nothing done.
    let r = b.post_form_raw("/console/grants", &grant).await;
    assert_eq!(r.status(), 409);
    let page = r.text().await.unwrap();
    assert!(page.contains("data-reason=\"sent-again\""), "{page}");
    assert!(page.contains("href=\"/console/packages\""), "{page}");
    assert_eq!(remaining().await, (before + 20, grants + 1, name.clone()));
    // A double click: two posts of one token at once, one grant.
    let csrf = b.csrf().await;
    let grant = [
        ("app_id", app.app_id.as_str()),
        ("package", "trial"),
        ("csrf", csrf.as_str()),
    ];
    let (x, y) = tokio::join!(
        b.post_form_raw("/console/grants", &grant),
        b.post_form_raw("/console/grants", &grant)
    );
    let mut statuses = [x.status().as_u16(), y.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [303, 409]);
    assert_eq!(remaining().await.0, before + 40);
    // A refused form is shown again at once, as typed, and stores nothing.
    let (status, page) = b
        .post_form(
            "/console/grants",
            &[
                ("app_id", app.app_id.as_str()),
                ("package", "no-such-package"),
                ("csrf", FRESH),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("class=\"flash error\""), "{page}");
    let selected = format!("value=\"{}\" selected", app.app_id);
    assert!(page.contains(&selected), "{page}");
    assert_eq!(remaining().await.0, before + 40);
    let too_long = "x".repeat(renzheng_app::AppName::MAX_CHARS + 1);
    let apps = app.state.app.list_apps().await.unwrap().len();
    let (status, page) = b
        .post_form("/console/apps", &[("name", &too_long), ("csrf", FRESH)])
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("class=\"flash error\""), "{page}");
    assert!(page.contains(&format!("value=\"{too_long}\"")), "{page}");
    assert_eq!(app.state.app.list_apps().await.unwrap().len(), apps);
    let (status, page) = b
        .post_form(
            &format!("/console/apps/{}/policy", app.app_id),
            &[
                ("alert_percent", "300"),
                ("webhook_url", "https://hooks.example/x"),
                ("csrf", FRESH),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("class=\"flash error\""), "{page}");
    assert!(
        page.contains("value=\"300\"") && page.contains("value=\"https://hooks.example/x\""),
        "{page}"
    );
}

#[tokio::test]
async fn a_deep_link_survives_sign_in_and_only_to_a_console_page() {
    let app = spawn_test_app_with(with_console).await;
    let b = Browser::new(&app);
    let (status, _, headers) = b.get("/console/calls?result=1").await;
    assert_eq!(status, 303);
    let to = headers[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(to, "/console/sign-in?next=/console/calls%3Fresult%3D1");
    let (_, page, _) = b.get(&to).await;
    assert!(
        page.contains("name=\"next\" value=\"/console/calls?result=1\""),
        "{page}"
    );
    let sign_in = |next: &'static str| {
        let b = &b;
        async move {
            b.request(Method::POST, "/console/sign-in")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(url_encode(&[
                    ("operator", "admin"),
                    ("password", PASSWORD),
                    ("next", next),
                ]))
                .send()
                .await
                .unwrap()
        }
    };
    let r = sign_in("/console/calls?result=1").await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/console/calls?result=1");
    for elsewhere in [
        "https://evil.example/",
        "//evil.example/console/",
        "/healthz",
    ] {
        let r = sign_in(elsewhere).await;
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()[LOCATION], "/console/overview", "{elsewhere}");
    }
    // A posted form is not a page to come back to; nor is a one-time message's link.
    let r = b
        .request(Method::POST, "/console/apps")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[LOCATION], "/console/sign-in");
    let (_, _, headers) = b.get("/console/apps?flash=abc").await;
    assert_eq!(headers[LOCATION], "/console/sign-in?next=/console/apps");
    // The icon is there, for browsers that ask at the root.
    let (status, icon, headers) = b.get("/favicon.ico").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "image/svg+xml");
    assert!(icon.starts_with("<svg"), "{icon}");
}

/// The value a page shows in its `data-field="NAME"` cell (a secret box).
fn shown_field(page: &str, name: &str) -> String {
    let marker = format!("data-field=\"{name}\">");
    let at = page
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} not shown: {page}"))
        + marker.len();
    page[at..].split('<').next().unwrap().to_owned()
}

/// Whether `code` opens the API (no quota: the quota answer, not Unauthorized).
async fn code_works(app: &TestApp, code: &str) -> bool {
    let r = app
        .request(Method::POST, "/faceidcard/check")
        .header("Authorization", format!("APPCODE {code}"))
        .json(&serde_json::json!({"name": HU.name, "idCard": HU.id(), "image": app.photo_b64(HU_SAME)}))
        .send()
        .await
        .unwrap();
    r.headers()
        .get("x-ca-error-message")
        .is_some_and(|m| m == "Quota Exhausted")
}

#[tokio::test]
async fn an_appcode_is_shown_again_on_request_and_reset_with_a_grace_period() {
    let app = spawn_test_app_with(with_console).await;
    let b = signed_in(&app).await;
    let (_, page) = b
        .post_form("/console/apps", &[("name", "shop"), ("csrf", FRESH)])
        .await;
    let code = shown_field(&page, "app_code");
    let id = app
        .state
        .app
        .list_apps()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.name == "shop")
        .unwrap()
        .app_id;
    // Shown again when asked, and each view is an event of who saw it.
    let (status, page) = b
        .post_form(
            &format!("/console/apps/{id}/reveal-code"),
            &[("csrf", FRESH)],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(shown_field(&page, "app_code"), code);
    let events = app.state.app.recent_events(10).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.action == "app.code-revealed" && e.actor == "console:admin"),
        "{events:?}"
    );
    assert!(!format!("{events:?}").contains(&code));
    // The admin API shows it too.
    let r = app
        .admin(Method::POST, &format!("/admin/apps/{id}/reveal-code"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["data"]["app_code"], code.as_str());
    // A reset from the console keeps the old code working for the grace chosen, says
    // until when, and the new code is the one shown from then on.
    let (status, page) = b
        .post_form(
            &format!("/console/apps/{id}/reset-code"),
            &[("grace_hours", "24"), ("csrf", FRESH)],
        )
        .await;
    assert_eq!(status, 200);
    let new = shown_field(&page, "app_code");
    assert_ne!(new, code);
    assert!(page.contains("旧 AppCode 可用至"), "{page}");
    assert!(
        code_works(&app, &code).await,
        "the old code stopped at once"
    );
    assert!(code_works(&app, &new).await);
    let (_, page) = b
        .post_form(
            &format!("/console/apps/{id}/reveal-code"),
            &[("csrf", FRESH)],
        )
        .await;
    assert_eq!(shown_field(&page, "app_code"), new);
    // No grace: the old code stops now.
    let (_, page) = b
        .post_form(
            &format!("/console/apps/{id}/reset-code"),
            &[("grace_hours", "0"), ("csrf", FRESH)],
        )
        .await;
    let newest = shown_field(&page, "app_code");
    assert!(
        !code_works(&app, &new).await,
        "a reset without grace kept the old code"
    );
    assert!(code_works(&app, &newest).await);
    // A code of an earlier release, kept as a hash only: not viewable, and said so.
    let hash = renzheng_store::AppCode::generate().hash();
    app.store
        .rotate_app_code(&renzheng_store::AppId::from(id.clone()), &hash, None, None)
        .await
        .unwrap();
    let (status, page) = b
        .post_form(
            &format!("/console/apps/{id}/reveal-code"),
            &[("csrf", FRESH)],
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("class=\"flash error\"") && page.contains("重置后"),
        "{page}"
    );
    assert!(!page.contains("data-field=\"app_code\""), "{page}");
    let r = app
        .admin(Method::POST, &format!("/admin/apps/{id}/reveal-code"))
        .send()
        .await
        .unwrap();
    let (status, error, _) = error_of(r).await;
    assert_eq!((status, error.as_str()), (409, "CodeNotViewable"));
}

#[tokio::test]
async fn messages_and_quality_codes_are_words_in_the_operators_language() {
    let app = spawn_app_with(with_console).await;
    let b = signed_in(&app).await;
    // A malformed ID number, a photo without a face: Chinese words, no English.
    let (_, page) = b
        .post_form(
            "/console/registry/lookup",
            &[("csrf", FRESH), ("id_number", "11010519491231002Y")],
        )
        .await;
    assert!(page.contains("身份证号无效：第 18 位字符不合法"), "{page}");
    let id = UNKNOWN.id();
    let (_, page) = b
        .post_multipart(
            "/console/registry/enrol",
            &[
                ("csrf", FRESH),
                ("name", UNKNOWN.name),
                ("id_number", &id),
                ("basis", "consent"),
                ("consent_ref", "C-1"),
            ],
            &[("photo", &app.photo(NO_FACE))],
        )
        .await;
    let flash = page
        .split("class=\"flash error\"")
        .nth(1)
        .and_then(|f| f.split('<').next())
        .unwrap_or_default();
    assert!(flash.contains("照片 1 不能录入：未检测到人脸"), "{page}");
    assert!(!flash.contains("no face"), "{flash}");
    // Unknown app in a grant: the app, in Chinese.
    let (_, page) = b
        .post_form(
            "/console/grants",
            &[
                ("csrf", FRESH),
                ("app_id", "app_missing"),
                ("package", "trial"),
            ],
        )
        .await;
    assert!(page.contains("应用不存在"), "{page}");
    // Try it with a dark photo: the quality issue as words.
    let (_, page) = b
        .post_multipart(
            "/console/try",
            &[("csrf", FRESH), ("name", HU.name), ("id_number", &HU.id())],
            &[("photo", &app.photo(TOO_DARK))],
        )
        .await;
    assert!(page.contains("data-code=\"too_dark\">光线过暗<"), "{page}");
}

#[tokio::test]
async fn an_apps_own_page_grants_custom_calls_and_keeps_a_refused_form_as_typed() {
    let app = spawn_test_app_with(with_console).await;
    let b = signed_in(&app).await;
    let page_path = format!("/console/apps/{}", app.app_id);
    let (status, page, _) = b.get(&page_path).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"app-summary\""), "{page}");
    assert!(page.contains("id=\"grant-calls\""), "{page}");
    // The list links each app to its page.
    let (_, list, _) = b.get("/console/apps").await;
    assert!(list.contains(&format!("href=\"{page_path}\"")), "{list}");
    let remaining = || async {
        app.state
            .app
            .balance(&renzheng_store::AppId::from(app.app_id.clone()))
            .await
            .unwrap()
            .remaining
    };
    let before = remaining().await;
    // A custom grant: 50 calls until the last day of 2099, back to the app's page.
    let r = b
        .post_form_raw(
            &format!("{page_path}/grant"),
            &[
                ("calls", "50"),
                ("expires_on", "2099-12-31"),
                ("back", "app"),
                ("csrf", FRESH),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let to = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(to.starts_with(&format!("{page_path}?flash=")), "{to}");
    let (_, page, _) = b.get(&to).await;
    assert!(page.contains("class=\"flash ok\""), "{page}");
    assert!(page.contains("2099-12-31 23:59"), "{page}");
    assert_eq!(remaining().await, before + 50);
    // Refused (calls that are not a number): the app's page at once, as typed.
    let (status, page) = b
        .post_form(
            &format!("{page_path}/grant"),
            &[
                ("calls", "fifty"),
                ("expires_on", "2099-12-31"),
                ("back", "app"),
                ("csrf", FRESH),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("class=\"flash error\""), "{page}");
    assert!(
        page.contains("value=\"fifty\"") && page.contains("value=\"2099-12-31\""),
        "{page}"
    );
    assert_eq!(remaining().await, before + 50);
    // A day in the past is refused too; an unknown app's page is a 404.
    let (_, page) = b
        .post_form(
            &format!("{page_path}/grant"),
            &[
                ("calls", "5"),
                ("expires_on", "2001-01-01"),
                ("back", "app"),
                ("csrf", FRESH),
            ],
        )
        .await;
    assert!(page.contains("class=\"flash error\""), "{page}");
    assert_eq!(remaining().await, before + 50);
    assert_eq!(b.get("/console/apps/app_missing").await.0, 404);
}

#[tokio::test]
async fn a_grant_is_adjusted_and_revoked_on_the_apps_page_in_the_operators_language() {
    let app = spawn_test_app_with(with_console).await;
    let b = signed_in(&app).await;
    let app_id = renzheng_store::AppId::from(app.app_id.clone());
    let granted = app
        .state
        .app
        .grant(
            &renzheng_app::Actor::Cli,
            &app_id,
            renzheng_app::GrantRequest {
                package: None,
                calls: Some(40),
                expires_at: None,
            },
        )
        .await
        .unwrap();
    let grant = granted.grant_id.to_string();
    let page_path = format!("/console/apps/{}", app.app_id);
    let remaining = || async { app.state.app.balance(&app_id).await.unwrap().remaining };
    let before = remaining().await;
    let (_, page, _) = b.get(&page_path).await;
    assert!(
        page.contains(&format!("<tr data-grant=\"{grant}\"")),
        "{page}"
    );
    assert!(page.contains("class=\"row adjust-grant\""), "{page}");
    assert!(page.contains("class=\"inline revoke-grant\""), "{page}");

    // Down to 25 calls until the end of 2099 (the day typed differs from the blank shown).
    let (status, page) = b
        .post_form(
            &format!("{page_path}/adjust-grant"),
            &[
                ("grant_id", &grant),
                ("calls", "25"),
                ("expires_was", ""),
                ("expires_on", "2099-12-31"),
                ("back", "app"),
                ("csrf", FRESH),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("发放已调整"), "{page}");
    assert_eq!(remaining().await, before - 15);
    let shown = app.state.app.balance(&app_id).await.unwrap();
    let g = shown
        .grants
        .iter()
        .find(|g| g.grant_id == granted.grant_id)
        .unwrap();
    assert_eq!(g.calls, 25);
    assert!(g.expires_at.is_some());

    // Refused in Chinese, as typed, nothing changed: a grant of another app, a number
    // that is none.
    let (status, page) = b
        .post_form(
            &format!("{page_path}/adjust-grant"),
            &[
                ("grant_id", "999999"),
                ("calls", "5"),
                ("expires_was", ""),
                ("expires_on", ""),
                ("back", "app"),
                ("csrf", FRESH),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("发放记录不存在"), "{page}");
    let (_, page) = b
        .post_form(
            &format!("{page_path}/adjust-grant"),
            &[
                ("grant_id", &grant),
                ("calls", "viele"),
                ("expires_was", "2099-12-31"),
                ("expires_on", "2099-12-31"),
                ("back", "app"),
                ("csrf", FRESH),
            ],
        )
        .await;
    assert!(page.contains("class=\"flash error\""), "{page}");
    assert!(page.contains("value=\"viele\""), "{page}");
    // A number out of its range is refused in words, not in the API's English.
    let (_, page) = b
        .post_form(
            &format!("{page_path}/adjust-grant"),
            &[
                ("grant_id", &grant),
                ("calls", "0"),
                ("expires_was", "2099-12-31"),
                ("expires_on", "2099-12-31"),
                ("back", "app"),
                ("csrf", FRESH),
            ],
        )
        .await;
    assert!(page.contains("次数应为 1 到 100000000"), "{page}");
    assert!(!page.contains("calls must be"), "{page}");
    assert_eq!(remaining().await, before - 15);

    // Revoked: its 25 calls taken back, marked so, and no form offered for it any more.
    let (_, page) = b
        .post_form(
            &format!("{page_path}/revoke-grant"),
            &[("grant_id", &grant), ("back", "app"), ("csrf", FRESH)],
        )
        .await;
    assert!(page.contains("发放已撤销，收回次数 25"), "{page}");
    assert_eq!(remaining().await, before - 40);
    let row = page
        .split(&format!("<tr data-grant=\"{grant}\""))
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(
        row.contains("已撤销") && !row.contains("revoke-grant"),
        "{row}"
    );
    // A second revocation is refused in words.
    let (_, page) = b
        .post_form(
            &format!("{page_path}/revoke-grant"),
            &[("grant_id", &grant), ("back", "app"), ("csrf", FRESH)],
        )
        .await;
    assert!(page.contains("这笔发放已撤销"), "{page}");
    // The events page names both, in words.
    let (_, page, _) = b.get("/console/events").await;
    assert!(
        page.contains("调整发放") && page.contains("撤销发放"),
        "{page}"
    );
}

/// The key a two-step setup shows (`data-secret` of `#two-step-secret`).
fn shown_secret(page: &str) -> String {
    let at = page
        .find("data-secret=\"")
        .expect("a two-step key on the page")
        + 13;
    page[at..].split('"').next().unwrap().to_owned()
}

/// The authenticator's code of `secret` at `steps` steps after now's (the app's clock).
fn code_in(app: &TestApp, secret: &str, steps: i64) -> String {
    use renzheng_app::totp;
    totp::code_at(secret, totp::step_at(app.state.app.now_ms()) + steps).unwrap()
}

#[tokio::test]
async fn two_step_sign_in_is_set_up_with_a_code_then_asked_at_every_sign_in() {
    let app = spawn_test_app_with(with_console).await;
    let b = signed_in(&app).await;
    let elsewhere = signed_in(&app).await;
    let (_, page, _) = b.get("/console/account").await;
    assert!(page.contains("id=\"two-step-start\""), "{page}");

    // Set up: the QR code and the key, shown on the page the form leads to, once.
    let (status, page) = b
        .post_form("/console/account/two-step/start", &[("csrf", FRESH)])
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("id=\"two-step-setup\"") && page.contains("<svg"),
        "{page}"
    );
    let secret = shown_secret(&page);
    assert_eq!(secret.len(), 32, "{secret}");
    let (_, page, _) = b.get("/console/account").await;
    assert!(!page.contains(&secret), "the key was shown twice");
    // A wrong code is refused in words, the setup shown again beside it.
    let (_, page) = b
        .post_form(
            "/console/account/two-step/confirm",
            &[("code", &code_in(&app, &secret, 5)), ("csrf", FRESH)],
        )
        .await;
    assert!(page.contains("动态码不正确"), "{page}");
    assert_eq!(shown_secret(&page), secret);
    assert!(page.contains("data-on=\"false\""), "{page}");
    // The right one turns it on; the other session ends.
    let confirmed = code_in(&app, &secret, 0);
    let (_, page) = b
        .post_form(
            "/console/account/two-step/confirm",
            &[("code", &confirmed), ("csrf", FRESH)],
        )
        .await;
    assert!(page.contains("两步验证已开启"), "{page}");
    assert!(page.contains("id=\"two-step-off\""), "{page}");
    assert_eq!(elsewhere.get("/console/overview").await.0, 303);

    // Signing in now takes a current code, each code once; which part was wrong is not
    // said.
    let mut c = Browser::new(&app);
    assert_eq!(c.sign_in("admin", PASSWORD).await.status(), 401);
    let r = c.sign_in_with_code("admin", PASSWORD, &confirmed).await;
    assert_eq!(r.status(), 401, "a used code signed in again");
    let r = c
        .sign_in_with_code("admin", "not the password", &code_in(&app, &secret, 1))
        .await;
    assert_eq!(r.status(), 401);
    let r = c
        .sign_in_with_code("admin", PASSWORD, &code_in(&app, &secret, 1))
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(c.get("/console/overview").await.0, 200);

    // The owner sees it on the operators page; the events name it.
    let (_, page, _) = b.get("/console/operators").await;
    assert!(
        page.contains("class=\"two-step\" data-label=\"两步验证\" data-on=\"true\""),
        "{page}"
    );
    let (_, page, _) = b.get("/console/events").await;
    assert!(page.contains("开启两步验证"), "{page}");

    // Turned off by its operator: the password and a code not used before. (The last
    // step used is set back here, as if the last code were minutes old: the test cannot
    // wait for the next one.)
    let (_, page) = b
        .post_form(
            "/console/account/two-step/off",
            &[
                ("password", "wrong one"),
                ("code", &code_in(&app, &secret, 0)),
                ("csrf", FRESH),
            ],
        )
        .await;
    assert!(
        page.contains("当前密码不正确") && page.contains("id=\"two-step-off\""),
        "{page}"
    );
    let mut stored = app
        .store
        .console_operator("admin")
        .await
        .unwrap()
        .unwrap()
        .totp
        .unwrap();
    stored.last_step = stored.last_step.map(|s| s - 10);
    app.store
        .set_console_operator_totp("admin", Some(&stored), None)
        .await
        .unwrap();
    let (_, page) = b
        .post_form(
            "/console/account/two-step/off",
            &[
                ("password", PASSWORD),
                ("code", &code_in(&app, &secret, 0)),
                ("csrf", FRESH),
            ],
        )
        .await;
    assert!(
        page.contains("两步验证已关闭") && page.contains("id=\"two-step-start\""),
        "{page}"
    );
    let mut d = Browser::new(&app);
    assert_eq!(d.sign_in("admin", PASSWORD).await.status(), 303);

    // On again, then turned off by an owner for an operator who lost their phone.
    let (_, page) = b
        .post_form("/console/account/two-step/start", &[("csrf", FRESH)])
        .await;
    let secret = shown_secret(&page);
    let (_, page) = b
        .post_form(
            "/console/account/two-step/confirm",
            &[("code", &code_in(&app, &secret, 0)), ("csrf", FRESH)],
        )
        .await;
    assert!(page.contains("两步验证已开启"), "{page}");
    let (_, page) = b
        .post_form(
            "/console/operators/two-step-reset",
            &[("name", "admin"), ("csrf", FRESH)],
        )
        .await;
    assert!(page.contains("已关闭该操作员的两步验证"), "{page}");
    assert!(
        page.contains("class=\"two-step\" data-label=\"两步验证\" data-on=\"false\""),
        "{page}"
    );
    let mut e = Browser::new(&app);
    assert_eq!(e.sign_in("admin", PASSWORD).await.status(), 303);
}

#[tokio::test]
async fn the_events_page_reaches_every_event_by_day_kind_and_actor_a_page_at_a_time() {
    let app = spawn_test_app_with(with_console).await;
    let b = signed_in(&app).await;
    let now = app.state.app.now_ms();
    // Three events at noon on 1 March 2025 (the test offset's day), long before the
    // 205 that follow.
    let noon = app.state.app.start_of_day("2025-03-01").unwrap() + 12 * 3_600_000;
    for i in 0..3 {
        let event = renzheng_store::AdminEvent::new(noon + i, "console:li", "person.enrolled");
        app.store.record_event(&event).await.unwrap();
    }
    for i in (0..205).rev() {
        let event = renzheng_store::AdminEvent::new(now - i * 1000, "cli", "app.disabled");
        app.store.record_event(&event).await.unwrap();
    }
    let rows = |page: &str| page.matches("<tr data-action=").count();
    let (status, page, _) = b.get("/console/events").await;
    assert_eq!(status, 200);
    assert_eq!(rows(&page), 200, "a page");
    assert!(!page.contains("data-action=\"person.enrolled\""));
    let at = page.find("id=\"next-page\" href=\"").expect("a next page") + 21;
    let next = page[at..].split('"').next().unwrap().replace("&amp;", "&");
    let (_, page, _) = b.get(&next).await;
    assert!(
        page.contains("data-action=\"person.enrolled\""),
        "the oldest are reached"
    );
    // A day, a kind and an actor, from the URL.
    let (_, page, _) = b.get("/console/events?from=2025-03-01&to=2025-03-01").await;
    assert_eq!(rows(&page), 3, "{page}");
    let (_, page, _) = b
        .get("/console/events?kind=person&actor=console%3Ali")
        .await;
    assert_eq!(rows(&page), 3, "{page}");
    assert!(page.contains("value=\"console:li\" selected"), "{page}");
    // A date that is none is said, and the rest still shown.
    let (status, page, _) = b.get("/console/events?from=2025-02-30").await;
    assert_eq!(status, 200);
    assert!(page.contains("data-reason=\"date\""), "{page}");
    assert_eq!(rows(&page), 200);
}

#[tokio::test]
async fn the_alerts_and_events_pages_list_what_happened_and_the_overview_warns() {
    let app = spawn_test_app_with(with_console).await;
    let b = signed_in(&app).await;
    let app_id = renzheng_store::AppId::from(app.app_id.clone());
    // Nothing bought yet: no alert, no warning.
    let (status, page, _) = b.get("/console/alerts").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"no-alerts\""), "{page}");
    // One call that expires tomorrow (within `alerts.expiring_days`): the alert scan
    // records an `expiring` alert, and the overview warns.
    app.state
        .app
        .grant(
            &renzheng_app::Actor::Cli,
            &app_id,
            renzheng_app::GrantRequest {
                package: None,
                calls: Some(1),
                expires_at: Some(app.state.app.now_ms() + 86_400_000),
            },
        )
        .await
        .unwrap();
    let kinds = app.state.app.evaluate_alerts(&app_id).await;
    assert!(!kinds.is_empty(), "an expiring grant alerts");
    let (_, page, _) = b.get("/console/overview").await;
    assert!(page.contains("id=\"attention\""), "{page}");
    assert!(page.contains("即将过期"), "{page}");
    let (_, page, _) = b
        .get(&format!("/console/alerts?app_id={}", app.app_id))
        .await;
    assert!(page.contains("data-kind=\"expiring\""), "{page}");
    // Events: words for the action, filtered by kind.
    let (_, page, _) = b.get("/console/events?kind=app").await;
    assert!(page.contains("data-action=\"app.granted\""), "{page}");
    assert!(page.contains("发放套餐"), "{page}");
    assert!(
        !page.contains("data-action=\"console.signed-in\""),
        "{page}"
    );
    let (_, page, _) = b.get("/console/events?kind=console").await;
    assert!(page.contains("data-action=\"console.signed-in\""), "{page}");
    assert!(!page.contains("data-action=\"app.granted\""), "{page}");
}

#[tokio::test]
async fn a_refused_registry_form_is_shown_again_as_typed_and_only_that_form() {
    let app = spawn_test_app_with(with_console).await;
    let b = signed_in(&app).await;
    let id = UNKNOWN.id();
    // No legal basis: refused before any photo is looked at; what was typed comes back.
    let (status, page) = b
        .post_multipart(
            "/console/registry/enrol",
            &[
                ("csrf", FRESH),
                ("name", UNKNOWN.name),
                ("id_number", &id),
                ("allow_duplicate_face", "yes"),
                ("reason", "typed reason"),
            ],
            &[("photo", &app.photo(HU_SAME))],
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("data-reason=\"basis-required\""), "{page}");
    for value in [UNKNOWN.name, id.as_str(), "typed reason"] {
        assert!(
            page.contains(&format!("value=\"{value}\"")),
            "{value}: {page}"
        );
    }
    assert!(page.contains("value=\"yes\" checked"), "{page}");
    // Only the refused form is filled: the lookup and removal forms stay empty.
    assert_eq!(
        page.matches(&format!("value=\"{id}\"")).count(),
        1,
        "{page}"
    );
    let parsed = renzheng_domain::IdNumber::parse(&id).unwrap();
    assert!(app.state.app.person(&parsed).await.unwrap().is_none());
    // A rename without a reason keeps the person and the new name typed.
    let (_, page) = b
        .post_form(
            "/console/registry/rename",
            &[
                ("csrf", FRESH),
                ("person", &HU.id()),
                ("name", "胡新名"),
                ("reason", ""),
            ],
        )
        .await;
    assert!(page.contains("data-reason=\"reason-required\""), "{page}");
    assert!(page.contains("value=\"胡新名\""), "{page}");
    // A basis recorded without its reference keeps the kind chosen.
    let (_, page) = b
        .post_form(
            "/console/registry/basis",
            &[("csrf", FRESH), ("person", &HU.id()), ("basis", "law")],
        )
        .await;
    assert!(page.contains("class=\"flash error\""), "{page}");
    assert!(page.contains("value=\"law\" selected"), "{page}");
}

#[tokio::test]
async fn an_operator_sees_their_sessions_and_ends_another_one() {
    let app = spawn_test_app_with(with_console).await;
    let here = signed_in(&app).await;
    let elsewhere = signed_in(&app).await;
    let (status, page, _) = here.get("/console/account").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page.matches("<tr data-current=").count(), 2, "{page}");
    assert_eq!(page.matches("data-current=\"true\"").count(), 1, "{page}");
    let at = page
        .find("name=\"session\" value=\"")
        .expect("a revoke form")
        + 22;
    let other = page[at..].split('"').next().unwrap().to_owned();
    // Not a token: its hash.
    assert_eq!(other.len(), 64);
    assert!(!elsewhere.cookie.as_deref().unwrap().contains(&other));
    // Ending it signs the other browser out, not this one.
    let (status, page) = here
        .post_form(
            "/console/account/sessions/revoke",
            &[("session", &other), ("csrf", FRESH)],
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("class=\"flash ok\""), "{page}");
    assert_eq!(page.matches("<tr data-current=").count(), 1, "{page}");
    assert_eq!(elsewhere.get("/console/overview").await.0, 303);
    assert_eq!(here.get("/console/overview").await.0, 200);
    let events = app.state.app.recent_events(5).await.unwrap();
    assert!(events.iter().any(|e| e.action == "console.session-revoked"));
    // Anything else is refused, changing nothing.
    for bogus in [other.as_str(), "not-a-session", ""] {
        let (status, page) = here
            .post_form(
                "/console/account/sessions/revoke",
                &[("session", bogus), ("csrf", FRESH)],
            )
            .await;
        assert_eq!(status, 200);
        assert!(page.contains("会话不存在"), "{bogus}: {page}");
    }
    assert_eq!(here.get("/console/overview").await.0, 200);
}

/// Signs in `name` with `password` in a browser of its own.
async fn signed_in_as(app: &TestApp, name: &str, password: &str) -> Browser {
    let mut b = Browser::new(app);
    let r = b.sign_in(name, password).await;
    assert_eq!(r.status(), 303, "{name} signs in");
    b
}

/// The role matrix: every page and form of the console tried by an owner, an admin and
/// an auditor; each one beyond the role is refused server-side (403, the role named) and
/// does nothing, each one within it is served; the navigation shows only what opens.
#[tokio::test]
async fn each_role_is_refused_what_it_may_not_do() {
    use renzheng_store::OperatorRole::{self, Admin, Auditor, Owner};
    let app = spawn_test_app_with(with_console).await;
    // The configured operator is the first owner; they add the others from the console.
    let owner = signed_in(&app).await;
    for (name, role) in [("ada", "admin"), ("audrey", "auditor")] {
        let (status, page) = owner
            .post_form(
                "/console/operators/add",
                &[
                    ("name", name),
                    ("role", role),
                    ("password", "their own long password"),
                    ("csrf", FRESH),
                ],
            )
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains(&format!("data-operator=\"{name}\" data-role=\"{role}\"")),
            "{page}"
        );
    }
    let admin = signed_in_as(&app, "ada", "their own long password").await;
    let auditor = signed_in_as(&app, "audrey", "their own long password").await;
    let app_page = format!("/console/apps/{}", app.app_id);
    let remaining = || async {
        app.state
            .app
            .balance(&renzheng_store::AppId::from(app.app_id.clone()))
            .await
            .unwrap()
            .remaining
    };
    let pages: Vec<(&str, OperatorRole)> = vec![
        ("/console/overview", Auditor),
        ("/console/apps", Auditor),
        (&app_page, Auditor),
        ("/console/packages", Auditor),
        ("/console/calls", Auditor),
        ("/console/calls.csv", Auditor),
        ("/console/alerts", Auditor),
        ("/console/events", Auditor),
        ("/console/about", Auditor),
        ("/console/account", Auditor),
        ("/console/registry", Admin),
        ("/console/registry/duplicates", Admin),
        ("/console/try", Admin),
        ("/console/operators", Owner),
    ];
    let reveal = format!("{app_page}/reveal-code");
    let grant = format!("{app_page}/grant");
    /// A form: where it posts, its fields, the least role that may send it.
    type Probe<'a> = (&'a str, Vec<(&'a str, &'a str)>, OperatorRole);
    let forms: Vec<Probe> = vec![
        (
            "/console/calls/by-id-number",
            vec![("id_number", "11010519491231002X")],
            Auditor,
        ),
        (
            "/console/grants",
            vec![("app_id", &app.app_id), ("package", "trial")],
            Admin,
        ),
        (&grant, vec![("calls", "5"), ("back", "app")], Admin),
        (&reveal, vec![], Admin),
        ("/console/apps", vec![("name", "made by a role")], Admin),
        (
            "/console/registry/lookup",
            vec![("id_number", "11010519491231002X")],
            Admin,
        ),
        (
            "/console/operators/add",
            vec![("role", "auditor"), ("password", "a long enough password")],
            Owner,
        ),
    ];
    for (who, b, role) in [
        ("auditor", &auditor, Auditor),
        ("admin", &admin, Admin),
        ("owner", &owner, Owner),
    ] {
        for (path, needed) in &pages {
            let (status, page, _) = b.get(path).await;
            if role.includes(*needed) {
                assert_eq!(status, 200, "{who} GET {path}: {page}");
            } else {
                assert_eq!(status, 403, "{who} GET {path}");
                assert!(
                    page.contains("data-reason=\"role\""),
                    "{who} GET {path}: {page}"
                );
            }
        }
        for (path, fields, needed) in &forms {
            let before = remaining().await;
            let mut fields = fields.clone();
            // Each operator adds an operator of their own name (when they may).
            let name = format!("{who}-made");
            if path.ends_with("/operators/add") {
                fields.push(("name", &name));
            }
            fields.push(("csrf", FRESH));
            let r = b.post_form_raw(path, &fields).await;
            let status = r.status();
            let page = r.text().await.unwrap();
            if role.includes(*needed) {
                assert!(
                    status == 200 || status == 303,
                    "{who} POST {path}: {status} {page}"
                );
            } else {
                assert_eq!(status, 403, "{who} POST {path}: {page}");
                assert!(
                    page.contains("data-reason=\"role\""),
                    "{who} POST {path}: {page}"
                );
                assert_eq!(
                    remaining().await,
                    before,
                    "{who} POST {path} granted nothing"
                );
            }
        }
        // The navigation leads only where the role may go; an auditor sees no forms.
        let (_, overview, _) = b.get("/console/overview").await;
        assert_eq!(
            overview.contains("href=\"/console/registry\""),
            role.includes(Admin),
            "{who}"
        );
        assert_eq!(
            overview.contains("href=\"/console/operators\""),
            role.includes(Owner),
            "{who}"
        );
        let (_, apps, _) = b.get("/console/apps").await;
        assert_eq!(
            apps.contains("id=\"create-app\""),
            role.includes(Admin),
            "{who}"
        );
        let (_, account, _) = b.get("/console/account").await;
        assert!(
            account.contains(&format!("data-role=\"{}\"", role.as_str())),
            "{who}: {account}"
        );
    }
    // What the refused did not do: no app of theirs, no operator of theirs.
    let apps = app.state.app.list_apps().await.unwrap();
    assert_eq!(
        apps.iter().filter(|a| a.name == "made by a role").count(),
        2,
        "the admin's and the owner's"
    );
    let names: Vec<String> = app
        .state
        .app
        .operators()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["ada", "admin", "audrey", "owner-made"]);
    // Every change is attributed to its operator.
    let (_, events, _) = owner.get("/console/events").await;
    assert!(events.contains("console:admin"), "{events}");
    assert!(events.contains("console:ada"), "{events}");
    // A role changed by the owner applies to a session already open.
    let (status, _) = owner
        .post_form(
            "/console/operators/role",
            &[("name", "ada"), ("role", "auditor"), ("csrf", FRESH)],
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = admin.get("/console/registry").await;
    assert_eq!(status, 403);
}

/// Accounts from the owner's page: a name taken, the last owner kept, a password reset
/// that ends the operator's sessions, a removal that ends them too; and one's own password
/// changed with the current one (the other sessions end, this one stays).
#[tokio::test]
async fn operators_are_managed_and_change_their_own_password() {
    let app = spawn_test_app_with(with_console).await;
    let owner = signed_in(&app).await;
    let add = |name: &'static str, role: &'static str, password: &'static str| {
        let owner = &owner;
        async move {
            owner
                .post_form(
                    "/console/operators/add",
                    &[
                        ("name", name),
                        ("role", role),
                        ("password", password),
                        ("csrf", FRESH),
                    ],
                )
                .await
        }
    };
    let (status, _) = add("li", "admin", "li's long password").await;
    assert_eq!(status, 200);
    // Refused, in the operator's language, the form kept as typed (never the password).
    let (status, page) = add("li", "auditor", "another long password").await;
    assert_eq!(status, 200);
    assert!(page.contains("已有同名的操作员"), "{page}");
    assert!(page.contains("value=\"li\""), "{page}");
    assert!(!page.contains("another long password"), "{page}");
    let (_, page) = add("zhao", "admin", "short").await;
    assert!(page.contains("控制台密码至少 12 个字符"), "{page}");
    // The last owner stays one.
    for (path, fields) in [
        ("/console/operators/remove", vec![("name", "admin")]),
        (
            "/console/operators/role",
            vec![("name", "admin"), ("role", "admin")],
        ),
    ] {
        let mut fields = fields;
        fields.push(("csrf", FRESH));
        let (status, page) = owner.post_form(path, &fields).await;
        assert_eq!(status, 200);
        assert!(page.contains("最后一位所有者"), "{path}: {page}");
    }
    // An owner's own password is not reset here (a session left open is not enough to
    // take the account): the page sends them to My account.
    let (_, page) = owner
        .post_form(
            "/console/operators/password",
            &[
                ("name", "admin"),
                ("password", "a takeover password"),
                ("csrf", FRESH),
            ],
        )
        .await;
    assert!(page.contains("我的账户"), "{page}");
    assert!(page.contains("class=\"own-password\""), "{page}");
    assert_eq!(
        owner.get("/console/overview").await.0,
        200,
        "the owner stays signed in"
    );
    let mut check = Browser::new(&app);
    assert_eq!(check.sign_in("admin", PASSWORD).await.status(), 303);
    // A reset ends every session of theirs.
    let li = signed_in_as(&app, "li", "li's long password").await;
    let (status, _) = owner
        .post_form(
            "/console/operators/password",
            &[
                ("name", "li"),
                ("password", "li's new long password"),
                ("csrf", FRESH),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = li.get("/console/overview").await;
    assert_eq!(status, 303, "li's session ended");
    let mut again = Browser::new(&app);
    assert_eq!(
        again.sign_in("li", "li's long password").await.status(),
        401
    );
    let li = signed_in_as(&app, "li", "li's new long password").await;

    // Li changes their own password: wrong current, differing repeat, then right.
    let li_elsewhere = signed_in_as(&app, "li", "li's new long password").await;
    let change = |current: &'static str, new: &'static str, repeat: &'static str| {
        let li = &li;
        async move {
            li.post_form(
                "/console/account/password",
                &[
                    ("current", current),
                    ("new", new),
                    ("repeat", repeat),
                    ("csrf", FRESH),
                ],
            )
            .await
        }
    };
    let (_, page) = change(
        "not my password!",
        "a third long password",
        "a third long password",
    )
    .await;
    assert!(page.contains("当前密码不正确"), "{page}");
    let (_, page) = change(
        "li's new long password",
        "a third long password",
        "a 3rd long password",
    )
    .await;
    assert!(page.contains("两次输入的新密码不一致"), "{page}");
    let (status, page) = change(
        "li's new long password",
        "a third long password",
        "a third long password",
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("密码已修改"), "{page}");
    assert!(!page.contains("a third long password"), "{page}");
    let (status, _, _) = li.get("/console/account").await;
    assert_eq!(status, 200, "this session stays");
    let (status, _, _) = li_elsewhere.get("/console/account").await;
    assert_eq!(status, 303, "the other one ended");
    signed_in_as(&app, "li", "a third long password").await;

    // A removal ends their sessions; the name then signs nobody in.
    let (status, _) = owner
        .post_form(
            "/console/operators/remove",
            &[("name", "li"), ("csrf", FRESH)],
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = li.get("/console/account").await;
    assert_eq!(status, 303);
    let mut gone = Browser::new(&app);
    assert_eq!(
        gone.sign_in("li", "a third long password").await.status(),
        401
    );
    // The events name each change and who made it.
    let events = app.state.app.recent_events(50).await.unwrap();
    for action in [
        "console.operator-added",
        "console.password-set",
        "console.password-changed",
        "console.operator-removed",
    ] {
        assert!(
            events.iter().any(|e| e.action == action),
            "{action} recorded"
        );
    }
    assert!(events
        .iter()
        .any(|e| e.action == "console.password-changed" && e.actor == "console:li"));
}

/// Inputs a hand-made request can send that no form offers: each refused with its
/// reason, nothing changed.
#[tokio::test]
async fn hand_made_values_are_refused_and_change_nothing() {
    let app = spawn_test_app_with(with_console).await;
    let b = signed_in(&app).await;
    let id = app.app_id.clone();
    let page_path = format!("/console/apps/{id}");
    // A grace period that is not a number of hours: refused, the code unchanged.
    let (status, page) = b
        .post_form(
            &format!("{page_path}/reset-code"),
            &[("grace_hours", "a day"), ("csrf", FRESH)],
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("class=\"flash error\""), "{page}");
    assert!(!page.contains("data-field=\"app_code\""), "{page}");
    let r = app
        .request(Method::POST, "/faceidcard/check")
        .header("Authorization", format!("APPCODE {}", app.app_code))
        .json(&serde_json::json!({"name": HU.name, "idCard": HU.id(), "image": app.photo_b64(HU_SAME)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a refused reset changed the code");
    // A last day that is not a date: refused, nothing granted.
    let remaining = || async {
        app.state
            .app
            .balance(&renzheng_store::AppId::from(id.clone()))
            .await
            .unwrap()
            .remaining
    };
    let before = remaining().await;
    for day in ["2099-13-01", "31/12/2099", "tomorrow", "2099-02-30"] {
        let (_, page) = b
            .post_form(
                &format!("{page_path}/grant"),
                &[
                    ("calls", "5"),
                    ("expires_on", day),
                    ("back", "app"),
                    ("csrf", FRESH),
                ],
            )
            .await;
        assert!(page.contains("class=\"flash error\""), "{day}: {page}");
    }
    assert_eq!(remaining().await, before);
    // A taskNo over 128 characters: the calls page and the admin API refuse it.
    let long = "t".repeat(129);
    let (status, page, _) = b.get(&format!("/console/calls?task_no={long}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("class=\"flash error\""), "{page}");
    let r = app
        .admin(Method::GET, &format!("/admin/calls?task_no={long}"))
        .send()
        .await
        .unwrap();
    let (status, error, _) = error_of(r).await;
    assert_eq!((status, error.as_str()), (400, "InvalidParameter"));
    // An unknown app's code: 404 from the admin API.
    let r = app
        .admin(Method::POST, "/admin/apps/app_missing/reveal-code")
        .send()
        .await
        .unwrap();
    let (status, error, _) = error_of(r).await;
    assert_eq!((status, error.as_str()), (404, "NotFound"));
}

/// An app's alert recipients from the console: refused in the operator's language
/// without an SMTP relay or with a bad address, kept (commas, semicolons or spaces
/// between them) with one.
#[tokio::test]
async fn alert_recipients_are_set_from_the_policy_form() {
    let without = spawn_test_app_with(with_console).await;
    let b = signed_in(&without).await;
    let policy = format!("/console/apps/{}/policy", without.app_id);
    let (_, page) = b
        .post_form(
            &policy,
            &[
                ("alert_percent", "20"),
                ("alert_emails", "ops@example.cn"),
                ("csrf", FRESH),
            ],
        )
        .await;
    assert!(page.contains("未配置发信服务器"), "{page}");

    let with = spawn_test_app_with(|s| {
        with_console(s);
        // Never connected to here: setting recipients sends nothing.
        s.alerts.smtp_url = Some(Secret::new("smtp://127.0.0.1:9"));
        s.alerts.email_from = Some("alerts@example.cn".into());
    })
    .await;
    let b = signed_in(&with).await;
    let policy = format!("/console/apps/{}/policy", with.app_id);
    let (_, page) = b
        .post_form(
            &policy,
            &[
                ("alert_percent", "20"),
                ("alert_emails", "ops@example.cn, 不是地址"),
                ("csrf", FRESH),
            ],
        )
        .await;
    assert!(page.contains("不是有效的电子邮件地址"), "{page}");
    let (status, _) = b
        .post_form(
            &policy,
            &[
                ("alert_percent", "20"),
                (
                    "alert_emails",
                    "ops@example.cn；finance@example.cn ops@example.cn",
                ),
                ("csrf", FRESH),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let view = with
        .state
        .app
        .app(&renzheng_store::AppId::from(with.app_id.clone()))
        .await
        .unwrap();
    assert_eq!(
        view.policy.alert_emails,
        ["ops@example.cn", "finance@example.cn"],
        "trimmed, each once"
    );
    let (_, page, _) = b.get(&format!("/console/apps/{}", with.app_id)).await;
    assert!(
        page.contains("value=\"ops@example.cn, finance@example.cn\""),
        "{page}"
    );
}
