//! The rules on face information through the admin API, on SQLite and PostgreSQL: no face
//! without a legal basis, a child's only with a guardian's consent, a basis recorded after
//! the fact, and the filing line crossed and left (a threshold of 3 here).

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::postgres::{node, scratch_database};

/// The filing line of these tests: the two persons every test app enrols with a portrait
/// (HU, JIANG), and one more.
const LINE: u64 = 3;

fn small_line(s: &mut renzheng_app::Settings) {
    s.compliance.filing_threshold = LINE;
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
);

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

async fn compliance(app: &TestApp) -> Value {
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
