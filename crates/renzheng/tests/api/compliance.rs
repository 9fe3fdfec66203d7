//! The rules on face information through the admin API, on SQLite and PostgreSQL: no face
//! without a legal basis, a child's only with a guardian's consent, a basis recorded after
//! the fact, the filing line crossed and left (a threshold of 3 here) and the operator
//! alerted, the registry's retention, the processing records.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::postgres::{node, scratch_database};

/// The filing line of these tests: the two persons every test app enrols with a portrait
/// (HU, JIANG), and one more.
const LINE: u64 = 3;

pub(crate) fn small_line(s: &mut renzheng_app::Settings) {
    s.compliance.filing_threshold = LINE;
    // Persons enrolled just now are far from these; the retention case enrols some in the
    // past. (The server's own sweep waits a minute after start: the tests are done first.)
    s.registry.retention_days = 365;
    s.registry.inactive_days = 30;
}

/// Runs each case on a fresh app with [`LINE`], over SQLite, and over PostgreSQL when one
/// is configured.
macro_rules! on_both_databases {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&crate::helpers::spawn_app_with(super::small_line).await).await;
                }
            )*
        }
        mod postgresql {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(db) = super::scratch_database(stringify!($case)).await else {
                        return;
                    };
                    let app = crate::helpers::spawn_app_with(|s| {
                        super::node(&db)(s);
                        super::small_line(s);
                    })
                    .await;
                    super::$case(&app).await;
                }
            )*
        }
    };
}

on_both_databases!(
    no_face_is_stored_without_a_legal_basis,
    a_childs_face_needs_a_guardians_consent,
    a_basis_is_recorded_after_the_fact_and_the_filing_line_is_dated,
    a_persons_report_holds_their_checks_and_events_masked,
    the_registry_retention_purges_persons_past_it_and_records_remain,
);

/// The filing-line alerts, on each database: the operator's webhook is a local receiver.
mod filing_alerts {
    #[tokio::test]
    async fn sqlite() {
        super::the_operator_is_alerted_at_the_warning_and_at_the_line(None).await;
    }

    #[tokio::test]
    async fn postgresql() {
        let Some(db) = super::scratch_database("filing_alerts").await else {
            return;
        };
        super::the_operator_is_alerted_at_the_warning_and_at_the_line(Some(db)).await;
    }
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let response = app
        .admin(Method::POST, path)
        .json(&body)
        .send()
        .await
        .unwrap();
    status_and_body(response).await
}

/// A refused POST: its status, `X-Ca-Error-Code` and message.
async fn refused(app: &TestApp, path: &str, body: Value) -> (u16, String, String) {
    let response = app
        .admin(Method::POST, path)
        .json(&body)
        .send()
        .await
        .unwrap();
    error_of(response).await
}

async fn lookup(app: &TestApp, person: Person) -> (u16, Value) {
    post(app, "/admin/persons/lookup", json!({"idCard": person.id()})).await
}

pub(crate) async fn compliance(app: &TestApp) -> Value {
    let response = app
        .admin(Method::GET, "/admin/compliance")
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

/// The latest operator events' actions.
async fn actions(app: &TestApp) -> Vec<String> {
    let response = app
        .admin(Method::GET, "/admin/events?limit=20")
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn enrolment(person: Person, photo: &str, basis: Value) -> Value {
    let mut body = json!({
        "name": person.name,
        "idCard": person.id(),
        "photos": [photo_b64(photo)],
    });
    if let (Some(body), Some(basis)) = (body.as_object_mut(), basis.as_object()) {
        body.extend(basis.clone());
    }
    body
}

async fn no_face_is_stored_without_a_legal_basis(app: &TestApp) {
    // None: refused, saying what to send; nothing stored; the refusal is an event.
    let (status, code, msg) = refused(
        app,
        "/admin/persons",
        enrolment(UNKNOWN, WEN_PORTRAIT, json!({})),
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "BasisRequired"), "{msg}");
    assert!(
        msg.contains("consentRef") && msg.contains("nothing was stored"),
        "{msg}"
    );
    assert_eq!(lookup(app, UNKNOWN).await.0, 404);
    assert!(actions(app).await.contains(&"person.basis-refused".into()));
    // Incomplete or contradictory: refused as invalid.
    for (basis, needle) in [
        (json!({"basis": "consent"}), "consentRef"),
        (json!({"basis": "law"}), "law"),
        (
            json!({"basis": "gdpr", "consentRef": "x"}),
            "consent, law or contract",
        ),
        (
            json!({"basis": "law", "law": "a statute", "consentRef": "x"}),
            "not a consent reference",
        ),
        (json!({"consentRef": "x"}), "basis is missing"),
        (
            json!({"basis": "consent", "consentRef": "a\nb"}),
            "one line",
        ),
    ] {
        let (status, code, msg) = refused(
            app,
            "/admin/persons",
            enrolment(UNKNOWN, WEN_PORTRAIT, basis.clone()),
        )
        .await;
        assert_eq!(
            (status, code.as_str()),
            (400, "InvalidBasis"),
            "{basis}: {msg}"
        );
        assert!(msg.contains(needle), "{basis}: {msg}");
    }
    assert_eq!(lookup(app, UNKNOWN).await.0, 404);
    // Multipart takes the same fields.
    let form = reqwest::multipart::Form::new()
        .text("name", UNKNOWN.name)
        .text("idCard", UNKNOWN.id())
        .text("basis", "contract")
        .text("consentRef", "account agreement 88")
        .text("purpose", "account opening")
        .part(
            "photo",
            reqwest::multipart::Part::bytes(photo(WEN_PORTRAIT)).file_name("p.jpg"),
        );
    let response = app
        .admin(Method::POST, "/admin/persons")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 201, "{body}");
    let basis = &body["data"]["basis"];
    assert_eq!(
        (
            basis["basis"].as_str(),
            basis["reference"].as_str(),
            basis["purpose"].as_str(),
            basis["recorded_by"].as_str()
        ),
        (
            Some("contract"),
            Some("account agreement 88"),
            Some("account opening"),
            Some("admin-api")
        ),
        "{body}"
    );
    // More portraits of a person with a basis on record need none; the basis is kept.
    let (status, body) = post(
        app,
        "/admin/persons",
        enrolment(UNKNOWN, WEN_SAME, json!({})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["basis"]["basis"], "contract", "{body}");
}

async fn a_childs_face_needs_a_guardians_consent(app: &TestApp) {
    for basis in [
        json!({"basis": "consent", "consentRef": "CF-2026-0700"}),
        json!({"basis": "contract", "consentRef": "CT-2026-0700"}),
    ] {
        let (status, code, msg) =
            refused(app, "/admin/persons", enrolment(CHILD, WEN_PORTRAIT, basis)).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "GuardianConsentRequired"),
            "{msg}"
        );
        assert!(msg.contains("under 14"), "{msg}");
    }
    assert_eq!(lookup(app, CHILD).await.0, 404);
    assert!(actions(app).await.contains(&"person.basis-refused".into()));
    // With a guardian's consent: enrolled, and the enrolment event says so.
    let (status, body) = post(
        app,
        "/admin/persons",
        enrolment(
            CHILD,
            WEN_PORTRAIT,
            json!({"basis": "consent", "consentRef": "CF-2026-0701", "guardianConsentRef": "GC-2026-0701"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["data"]["basis"]["guardian_consent_ref"], "GC-2026-0701",
        "{body}"
    );
    let response = app
        .admin(Method::GET, "/admin/events?limit=5")
        .send()
        .await
        .unwrap();
    let (_, events) = status_and_body(response).await;
    let enrolled = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "person.enrolled")
        .expect("the enrolment event")
        .clone();
    assert!(
        enrolled["detail"]
            .as_str()
            .unwrap()
            .contains("with a guardian's consent"),
        "{enrolled}"
    );
    // A statute needs no one's consent.
    let (status, body) = post(
        app,
        "/admin/persons/basis",
        json!({"idCard": CHILD.id(), "basis": "law", "law": "反恐怖主义法 第二十一条"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["guardian_consent_ref"], Value::Null, "{body}");
}

async fn a_basis_is_recorded_after_the_fact_and_the_filing_line_is_dated(app: &TestApp) {
    // The test app's persons were enrolled with a basis; two of them have a face.
    let first = compliance(app).await;
    assert_eq!(
        (
            first["persons_with_face_data"].as_u64(),
            first["filing_threshold"].as_u64(),
            first["persons_without_basis"].as_u64()
        ),
        (Some(2), Some(LINE), Some(0)),
        "{first}"
    );
    assert!(first["reached_at"].is_null(), "{first}");

    // The third face reaches the line: dated today (in the operator's calendar).
    let (status, body) = post(
        app,
        "/admin/persons",
        enrolment(
            UNKNOWN,
            WEN_PORTRAIT,
            json!({"basis": "consent", "consentRef": "CF-2026-0800"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let reached = compliance(app).await;
    assert_eq!(reached["persons_with_face_data"], LINE, "{reached}");
    let day = reached["reached_at"].as_str().expect("dated").to_owned();
    let offset = app.state.app.settings().metering.utc_offset_minutes;
    let today = renzheng_app::metering::format_day(
        (app.state.app.now_ms() + i64::from(offset) * 60_000).div_euclid(86_400_000),
    );
    assert_eq!(day, today, "{reached}");
    // The metric says the same.
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        format!("renzheng_compliance_persons_with_face_data {LINE}"),
        "renzheng_compliance_filing_line_reached 1".into(),
        "renzheng_compliance_persons_without_basis 0".into(),
    ] {
        assert!(metrics.contains(&line), "{line}: {metrics}");
    }

    // A basis recorded after the fact: renewed for a person, refused for a stranger.
    let (status, body) = post(
        app,
        "/admin/persons/basis",
        json!({"idCard": HU.id(), "basis": "contract", "consentRef": "CT-2026-0801", "purpose": "hotel check-in"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["data"]["basis"].as_str(),
            body["data"]["purpose"].as_str()
        ),
        (Some("contract"), Some("hotel check-in")),
        "{body}"
    );
    let (_, shown) = lookup(app, HU).await;
    assert_eq!(
        shown["data"]["basis"]["reference"], "CT-2026-0801",
        "{shown}"
    );
    assert!(actions(app).await.contains(&"person.basis-recorded".into()));
    let (status, code, msg) = refused(
        app,
        "/admin/persons/basis",
        json!({"idCard": CHILD.id(), "basis": "consent", "consentRef": "x"}),
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "NotFound"), "{msg}");
    let (status, code, msg) =
        refused(app, "/admin/persons/basis", json!({"idCard": HU.id()})).await;
    assert_eq!(status, 400, "{code}: {msg}");
    assert!(msg.contains("basis"), "{code}: {msg}");

    // Removing a person brings the registry under the line: the date is forgotten. The
    // data subject's request it answers is kept in the event, nothing of the person; a
    // malformed reference removes nothing.
    let (status, code, msg) = refused(
        app,
        "/admin/persons/remove",
        json!({"idCard": UNKNOWN.id(), "requestRef": "DSR\n7"}),
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "InvalidParameter"), "{msg}");
    assert_eq!(lookup(app, UNKNOWN).await.0, 200);
    let (status, body) = post(
        app,
        "/admin/persons/remove",
        json!({"idCard": UNKNOWN.id(), "requestRef": "DSR-2026-0007"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let response = app
        .admin(Method::GET, "/admin/events?limit=1")
        .send()
        .await
        .unwrap();
    let (_, events) = status_and_body(response).await;
    let removed = &events["data"][0];
    assert_eq!(
        (removed["action"].as_str(), removed["detail"].as_str()),
        (
            Some("person.removed"),
            Some("at the data subject's request DSR-2026-0007")
        ),
        "{events}"
    );
    assert!(removed["target"].is_null(), "{events}");
    let under = compliance(app).await;
    assert_eq!(under["persons_with_face_data"], LINE - 1, "{under}");
    assert!(under["reached_at"].is_null(), "{under}");
}

async fn a_persons_report_holds_their_checks_and_events_masked(app: &TestApp) {
    // A check of the holder's number, and an event about them.
    assert_eq!(app.check_result(HU, HU_SAME).await["result"], 1);
    let (status, body) = post(
        app,
        "/admin/persons/basis",
        json!({"idCard": HU.id(), "basis": "consent", "consentRef": "CF-2026-0900"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Someone else's check is not theirs.
    assert_eq!(app.check_result(JIANG, HU_SAME).await["result"], 3);

    let id = renzheng_domain::IdNumber::parse(&HU.id()).unwrap();
    let report = app
        .state
        .app
        .person_report(&id)
        .await
        .unwrap()
        .expect("enrolled");
    assert_eq!(report.checks.len(), 1, "{report:?}");
    assert_eq!(
        (report.checks[0].result, report.checks[0].http_status),
        (Some(1), 200)
    );
    assert_eq!(report.events[0].action, "person.basis-recorded");
    // The processing records: the basis recorded, then the check (newest first).
    let records: Vec<(&str, Option<i64>)> = report
        .records
        .iter()
        .map(|r| (r.action.as_str(), r.result))
        .collect();
    assert_eq!(
        records,
        [("basis-recorded", None), ("checked", Some(1))],
        "{report:?}"
    );
    assert_eq!(
        report.person.basis.as_ref().map(|b| b.reference.as_str()),
        Some("CF-2026-0900")
    );
    let text = serde_json::to_string(&report).unwrap();
    assert!(
        !text.contains(&HU.id()) && !text.contains(HU.name),
        "masked only: {text}"
    );
    // A stranger has no report.
    let stranger = renzheng_domain::IdNumber::parse(&UNKNOWN.id()).unwrap();
    assert!(app
        .state
        .app
        .person_report(&stranger)
        .await
        .unwrap()
        .is_none());
}

const DAY_MS: i64 = 86_400_000;

/// `YYYY-MM-DD` of `ms` in the app's calendar.
fn day_of(app: &TestApp, ms: i64) -> String {
    let offset = app.state.app.settings().metering.utc_offset_minutes;
    renzheng_app::metering::format_day((ms + i64::from(offset) * 60_000).div_euclid(DAY_MS))
}

/// Enrols `person` straight into the store as of `days` ago (what an older release, or
/// the passing of time, left there), with a consent on record.
async fn enrolled_days_ago(
    app: &TestApp,
    person: Person,
    portrait: Option<&'static str>,
    days: i64,
) {
    let at = app.state.app.now_ms() - days * DAY_MS;
    let basis = renzheng_store::BasisRecord {
        basis: renzheng_domain::LegalBasis::new(
            renzheng_domain::BasisKind::Consent,
            renzheng_domain::Reference::parse("CF-2025-0001", "consentRef").unwrap(),
            None,
        ),
        purpose: renzheng_domain::Reference::parse("identity verification", "purpose").unwrap(),
        recorded_at: at,
        actor: "cli".into(),
    };
    app.store
        .enrol_with_basis(
            &renzheng_domain::IdNumber::parse(&person.id()).unwrap(),
            &renzheng_domain::PersonName::parse(person.name).unwrap(),
            portrait.into_iter().map(portrait_of).collect(),
            Some(&basis),
            None,
            at,
        )
        .await
        .unwrap();
}

async fn records(app: &TestApp, from: &str, to: &str) -> Value {
    let response = app
        .admin(
            Method::GET,
            &format!("/admin/compliance/records?from={from}&to={to}"),
        )
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

async fn the_registry_retention_purges_persons_past_it_and_records_remain(app: &TestApp) {
    // Settings: kept 365 days after enrolment, 30 without a check. The test app's persons
    // were enrolled just now; these two long ago.
    enrolled_days_ago(app, UNKNOWN, Some(WEN_PORTRAIT), 40).await;
    enrolled_days_ago(app, DOT_NAME, None, 400).await;
    let now = app.state.app.now_ms();
    let status = compliance(app).await;
    assert_eq!(
        (
            status["retention_days"].as_u64(),
            status["inactive_days"].as_u64(),
            status["persons_past_retention"].as_u64(),
            status["oldest_past_retention_on"].as_str(),
            status["records_retention_days"].as_u64(),
        ),
        (
            Some(365),
            Some(30),
            Some(2),
            Some(day_of(app, now - 400 * DAY_MS).as_str()),
            Some(1095)
        ),
        "{status}"
    );

    // A check compares a photo with the portraits: the person is active again.
    assert_eq!(app.check_result(UNKNOWN, WEN_SAME).await["result"], 1);
    assert_eq!(compliance(app).await["persons_past_retention"], 1);

    // A dry run lists, masked, and removes nothing.
    let (status, body) = post(app, "/admin/registry/purge", json!({"dryRun": true})).await;
    assert_eq!(status, 200, "{body}");
    let listed = body["data"]["persons"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(
        (
            listed[0]["id_number"].as_str(),
            listed[0]["reason"].as_str(),
            listed[0]["last_checked_on"].as_str()
        ),
        (
            Some(
                renzheng_domain::IdNumber::parse(&DOT_NAME.id())
                    .unwrap()
                    .masked()
                    .as_str()
            ),
            Some("retention"),
            None
        ),
        "{body}"
    );
    assert_eq!(lookup(app, DOT_NAME).await.0, 200);

    // The purge removes them, with everything about them; the event names nobody.
    let (status, body) = post(app, "/admin/registry/purge", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["persons"].as_array().unwrap().len(),
        1,
        "{body}"
    );
    assert_eq!(lookup(app, DOT_NAME).await.0, 404);
    assert_eq!(lookup(app, UNKNOWN).await.0, 200);
    let response = app
        .admin(Method::GET, "/admin/events?limit=1")
        .send()
        .await
        .unwrap();
    let (_, events) = status_and_body(response).await;
    let purged = &events["data"][0];
    assert_eq!(purged["action"], "person.purged", "{events}");
    assert!(purged["target"].is_null(), "{events}");
    assert!(
        purged["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("registry.retention_days = 365"),
        "{events}"
    );
    assert_eq!(compliance(app).await["persons_past_retention"], 0);

    // The processing records keep who checked and who was purged, masked and keyed,
    // after the person is gone.
    let today = day_of(app, now);
    let page = records(app, &day_of(app, now - 2 * DAY_MS), &today).await;
    let lines = page["records"].as_array().unwrap();
    let find = |action: &str| {
        lines
            .iter()
            .find(|r| r["action"] == action)
            .unwrap_or_else(|| panic!("no {action} record: {page}"))
            .clone()
    };
    let checked = find("checked");
    assert_eq!(
        (
            checked["person"].as_str(),
            checked["actor"].as_str(),
            checked["basis"].as_str(),
            checked["result"].as_i64()
        ),
        (
            Some(
                renzheng_domain::IdNumber::parse(&UNKNOWN.id())
                    .unwrap()
                    .masked()
                    .as_str()
            ),
            Some(format!("app:{}", app.app_id).as_str()),
            Some("consent"),
            Some(1)
        ),
        "{page}"
    );
    let purged = find("purged");
    assert_eq!(purged["actor"], "admin-api", "{page}");
    assert_eq!(
        purged["person_key"].as_str().map(str::len),
        Some(64),
        "{page}"
    );
    assert!(purged["at"].as_str().unwrap().starts_with(&today), "{page}");
    let text = page.to_string();
    for person in [UNKNOWN, DOT_NAME] {
        assert!(
            !text.contains(&person.id()) && !text.contains(person.name),
            "{text}"
        );
    }
    // Days outside the range hold none of them; a bad range is refused.
    let before = records(
        app,
        &day_of(app, now - 3 * DAY_MS),
        &day_of(app, now - 2 * DAY_MS),
    )
    .await;
    assert_eq!(before["records"].as_array().unwrap().len(), 0, "{before}");
    let response = app
        .admin(
            Method::GET,
            &format!("/admin/compliance/records?from={today}&to=2020-01-01"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, 400);
}

async fn the_operator_is_alerted_at_the_warning_and_at_the_line(
    db: Option<crate::postgres::TestDb>,
) {
    let (hook, received) = crate::metering::webhook_receiver().await;
    let app = spawn_app_with(|s| {
        if let Some(db) = &db {
            node(db)(s);
        }
        small_line(s);
        // Warned at 50 % of 3: the two faces every test app holds.
        s.compliance.warning_percent = 50;
        s.compliance.alert_webhook = Some(renzheng_app::settings::Secret::new(hook.clone()));
        s.compliance.alert_webhook_secret =
            Some(renzheng_app::settings::Secret::new("operator secret"));
    })
    .await;
    let posts = |n: usize| {
        let received = received.clone();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while received.lock().unwrap().len() < n && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            received.lock().unwrap().clone()
        }
    };
    // The first look at the line: the warning, signed.
    let _ = compliance(&app).await;
    let seen = posts(1).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (headers, body) = &seen[0];
    let alert: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        (
            alert["kind"].as_str(),
            alert["persons_with_face_data"].as_u64(),
            alert["filing_threshold"].as_u64(),
            alert["percent"].as_u64()
        ),
        (Some("filing_line_near"), Some(2), Some(LINE), Some(50)),
        "{alert}"
    );
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
        renzheng_app::webhook_signature("operator secret", t, body.as_bytes())
    );

    // The line: alerted once, however often it is looked at.
    let (status, body) = post(
        &app,
        "/admin/persons",
        enrolment(
            UNKNOWN,
            WEN_PORTRAIT,
            json!({"basis": "consent", "consentRef": "CF-1"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let reached = compliance(&app).await;
    let _ = compliance(&app).await;
    let seen = posts(2).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(received.lock().unwrap().len(), 2, "{seen:?}");
    let alert: Value = serde_json::from_str(&seen[1].1).unwrap();
    assert_eq!(
        (alert["kind"].as_str(), alert["reached_at"].as_str()),
        (Some("filing_line_reached"), reached["reached_at"].as_str()),
        "{alert}"
    );
    let events = actions(&app).await;
    for action in [
        "compliance.filing-line-near",
        "compliance.filing-line-reached",
    ] {
        assert_eq!(
            events.iter().filter(|a| *a == action).count(),
            1,
            "{action}: {events:?}"
        );
    }

    // Under the line again, then back: alerted again (the line counts what is stored).
    let (status, _) = post(
        &app,
        "/admin/persons/remove",
        json!({"idCard": UNKNOWN.id()}),
    )
    .await;
    assert_eq!(status, 200);
    let _ = compliance(&app).await;
    let (status, _) = post(
        &app,
        "/admin/persons",
        enrolment(
            UNKNOWN,
            WEN_PORTRAIT,
            json!({"basis": "consent", "consentRef": "CF-2"}),
        ),
    )
    .await;
    assert_eq!(status, 201);
    let _ = compliance(&app).await;
    let seen = posts(3).await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen[2].1.contains("filing_line_reached"), "{seen:?}");
}
