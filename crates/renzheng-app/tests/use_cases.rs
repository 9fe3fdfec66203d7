//! The use cases through `App`, on a real SQLite database and the deterministic colour
//! engine (no model pack, no photos on disk but the ones written here).

use std::sync::Arc;

use renzheng_app::{
    Actor, App, AppError, AppName, CheckFields, Credential, Ending, EngineSource, EnrolFields,
    EnrolRequest, Origin, ResultCode, Settings,
};
use renzheng_domain::IdNumber;
use renzheng_vision::testing::{solid_png, TestEngine};
use renzheng_vision::FaceEngine;

const ALICE_ID: &str = "11010519491231002X";
const BOB_ID: &str = "330106199003070022";
const CAROL_ID: &str = "440106198503020014";
const RED: [u8; 3] = [200, 40, 40];

async fn open(dir: &tempfile::TempDir) -> App {
    let settings = Settings {
        data_dir: dir.path().join("data"),
        key_dir: Some(dir.path().join("keys")),
        ..Settings::default()
    };
    App::open(settings, EngineSource::Ready(Arc::new(TestEngine::new())))
        .await
        .expect("opening the app")
}

fn enrolment(name: &str, id: &str, photos: Vec<Vec<u8>>) -> EnrolRequest {
    EnrolRequest::parse(EnrolFields {
        name: Some(name.into()),
        id_card: Some(id.into()),
        photos,
        basis: renzheng_domain::BasisFields {
            basis: Some("consent".into()),
            consent_ref: Some("CF-2026-0500".into()),
            ..Default::default()
        },
        ..EnrolFields::default()
    })
    .expect("valid enrolment")
}

/// The basis an import gives its rows.
fn batch_basis() -> renzheng_app::BasisStatement {
    let fields = renzheng_domain::BasisFields {
        basis: Some("contract".into()),
        consent_ref: Some("batch 2026-12".into()),
        ..Default::default()
    };
    renzheng_app::BasisStatement::parse(&fields, None)
        .unwrap()
        .unwrap()
}

async fn check(app: &App, name: &str, id: &str, photo: &[u8]) -> Result<ResultCode, AppError> {
    use base64::Engine as _;
    let request = app.parse_check(CheckFields {
        name: Some(name.into()),
        id_card: Some(id.into()),
        image: Some(base64::engine::general_purpose::STANDARD.encode(photo)),
        img_url: None,
    })?;
    Ok(app.verify(&request).await?.result)
}

#[tokio::test]
async fn every_result_code_comes_from_its_step() {
    let dir = tempfile::tempdir().unwrap();
    let app = open(&dir).await;
    app.enrol(
        &Actor::Cli,
        enrolment("张三", ALICE_ID, vec![solid_png(RED, 64)]),
    )
    .await
    .unwrap();
    app.enrol(&Actor::Cli, enrolment("李四", BOB_ID, vec![]))
        .await
        .unwrap();

    let same = check(&app, "张三", ALICE_ID, &solid_png(RED, 32)).await;
    assert_eq!(same.unwrap(), ResultCode::Same);
    let unsure = check(&app, "张三", ALICE_ID, &solid_png([200, 180, 40], 32)).await;
    assert_eq!(unsure.unwrap(), ResultCode::Uncertain);
    let other = check(&app, "张三", ALICE_ID, &solid_png([20, 40, 240], 32)).await;
    assert_eq!(other.unwrap(), ResultCode::Different);
    let wrong_name = check(&app, "张四", ALICE_ID, &solid_png(RED, 32)).await;
    assert_eq!(wrong_name.unwrap(), ResultCode::NameMismatch);
    let no_portrait = check(&app, "李四", BOB_ID, &solid_png(RED, 32)).await;
    assert_eq!(no_portrait.unwrap(), ResultCode::NoPortrait);
    let no_face = check(&app, "张三", ALICE_ID, &solid_png([0, 0, 0], 32)).await;
    assert_eq!(no_face.unwrap(), ResultCode::NoFace);
    let unknown = check(&app, "王五", "440305198501010052", &solid_png(RED, 32)).await;
    assert_eq!(unknown.unwrap(), ResultCode::UnknownId);
    let poor = check(&app, "张三", ALICE_ID, &solid_png([255, 255, 255], 32)).await;
    assert_eq!(poor.unwrap(), ResultCode::PoorQuality);
    let garbage = check(&app, "张三", ALICE_ID, b"\x89PNG\r\n\x1a\n not really").await;
    assert!(
        matches!(garbage, Err(AppError::InvalidImage(_))),
        "{garbage:?}"
    );
    app.close().await;
}

#[tokio::test]
async fn a_refused_portrait_writes_nothing_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let app = open(&dir).await;
    let photos = vec![solid_png(RED, 64), solid_png([0, 0, 0], 64)];
    let err = app
        .enrol(&Actor::Cli, enrolment("张三", ALICE_ID, photos))
        .await
        .unwrap_err();
    match err {
        AppError::PortraitRefused { index, reason } => {
            assert_eq!(index, 2);
            assert_eq!(reason, renzheng_app::rules::PortraitRefusal::NoFace);
            assert!(reason.to_string().contains("no face"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let id = IdNumber::parse(ALICE_ID).unwrap();
    assert_eq!(app.person(&id).await.unwrap(), None);
    // Only the refusal is on record.
    let events = app.recent_events(10).await.unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["person.portrait-refused"]);
    assert_eq!(events[0].target.as_deref(), Some(id.masked().as_str()));
}

#[tokio::test]
async fn operator_changes_are_events_and_removal_unlinks_them() {
    let dir = tempfile::tempdir().unwrap();
    let app = open(&dir).await;
    let created = app
        .create_app(&Actor::Cli, &AppName::parse("shop").unwrap())
        .await
        .unwrap();
    let code = Credential::AppCode(&created.app_code);
    assert!(app.identify(code).await.is_ok());
    let id = renzheng_store::AppId::from(created.app_id.clone());
    app.set_app_enabled(&Actor::Cli, &id, false).await.unwrap();
    assert!(matches!(
        app.identify(code).await,
        Err(AppError::Unauthorized)
    ));
    assert!(matches!(
        app.set_app_enabled(&Actor::Cli, &"app_nope".to_owned().into(), true)
            .await,
        Err(AppError::NotFound("app"))
    ));
    app.enrol(
        &Actor::Cli,
        enrolment("张三", ALICE_ID, vec![solid_png(RED, 64)]),
    )
    .await
    .unwrap();
    let alice = IdNumber::parse(ALICE_ID).unwrap();
    app.remove_person(&Actor::Cli, &alice).await.unwrap();
    assert!(matches!(
        app.remove_person(&Actor::Cli, &alice).await,
        Err(AppError::NotFound("person"))
    ));

    let events = app.recent_events(10).await.unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "person.removed",
            "person.enrolled",
            "app.disabled",
            "app.created"
        ]
    );
    assert!(events
        .iter()
        .all(|e| e.actor == "cli" && e.request_id.is_none()));
    assert_eq!(events[1].target, None, "unlinked from the removed person");
    assert_eq!(events[3].target.as_deref(), Some(created.app_id.as_str()));
}

#[tokio::test]
async fn a_folder_import_reports_every_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let folder = tempfile::tempdir().unwrap();
    let app = open(&dir).await;
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(folder.path().join(name), bytes);
    write(&format!("{ALICE_ID}.png"), solid_png(RED, 64)).unwrap();
    write(&format!("{BOB_ID}.png"), solid_png([0, 0, 0], 64)).unwrap();
    write("not-an-id.png", solid_png(RED, 64)).unwrap();
    std::fs::write(
        folder.path().join("people.csv"),
        format!("id,name\n{ALICE_ID},张三\n{BOB_ID},李四\n123,坏号码\n"),
    )
    .unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    let summary = app
        .import_folder(&Actor::Cli, folder.path(), None, Some(batch_basis()), |p| {
            seen.lock().unwrap().push((p.done, p.total))
        })
        .await
        .unwrap();
    assert_eq!(summary.persons, 1);
    assert_eq!(summary.portraits, 1);
    assert_eq!(summary.refused.len(), 4, "{:?}", summary.refused);
    assert_eq!(*seen.lock().unwrap(), [(1, 2), (2, 2)]);
    let text = format!("{summary:?}");
    assert!(!text.contains(BOB_ID) && !text.contains("李四"), "{text}");
}

#[tokio::test]
async fn audit_records_past_their_retention_are_purged() {
    let dir = tempfile::tempdir().unwrap();
    let day = 86_400_000_i64;
    let clock = Arc::new(ManualClock(std::sync::atomic::AtomicI64::new(
        1_796_097_600_000,
    )));
    let app = Arc::new(open(&dir).await.with_clock(clock.clone()));
    let now = app.now_ms();
    assert_eq!(app.settings().audit_retention_days, 180);
    for (request_id, arrived_ms) in [("old", now - 181 * day), ("recent", now - 179 * day)] {
        clock
            .0
            .store(arrived_ms, std::sync::atomic::Ordering::SeqCst);
        let ticket = app.begin_check(request_id.into(), Origin::Console);
        let ending = Ending::Refusal {
            status: 400,
            code: "InvalidIdCard",
        };
        assert!(!ticket.finish(ending).await.unwrap(), "never charged");
    }
    clock.0.store(now, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(app.purge_expired_audit().await.unwrap(), 1);
    let rows = app.recent_audit(10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].request_id, "recent");
}

/// A check's ticket keeps its rules: nothing runs for an unproven caller, a refusal is
/// never charged, an answer is, and a ticket dropped unfinished records itself and gives
/// its unit back.
#[tokio::test]
async fn a_check_ticket_charges_answers_only_and_settles_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(open(&dir).await);
    app.enrol(
        &Actor::Cli,
        enrolment("张三", ALICE_ID, vec![solid_png(RED, 64)]),
    )
    .await
    .unwrap();
    let created = app
        .create_app(&Actor::Cli, &AppName::parse("shop").unwrap())
        .await
        .unwrap();
    let id = renzheng_store::AppId::from(created.app_id.clone());
    let grant = renzheng_app::GrantRequest {
        calls: Some(3),
        ..Default::default()
    };
    app.grant(&Actor::Cli, &id, grant).await.unwrap();
    let remaining = || async { app.balance(&id).await.unwrap().remaining };
    let fields = || {
        use base64::Engine as _;
        CheckFields {
            name: Some("张三".into()),
            id_card: Some(ALICE_ID.into()),
            image: Some(base64::engine::general_purpose::STANDARD.encode(solid_png(RED, 64))),
            img_url: None,
        }
    };

    // Unproven: no admission, no run, and no record when it ends.
    let mut ticket = app.begin_check("stranger".into(), Origin::Api);
    assert!(matches!(
        ticket.authenticate(Credential::AppCode("wrong")).await,
        Err(AppError::Unauthorized)
    ));
    assert!(ticket.admit().await.is_err());
    assert!(ticket.run(fields()).await.is_err());
    drop(ticket);

    // Answered: charged once.
    let mut ticket = app.begin_check("answered".into(), Origin::Api);
    ticket
        .authenticate(Credential::AppCode(&created.app_code))
        .await
        .unwrap();
    ticket.admit().await.unwrap();
    assert_eq!(remaining().await, 2, "held");
    let checked = ticket.run(fields()).await.unwrap();
    assert_eq!(checked.verification.result, ResultCode::Same);
    let ending = Ending::Answer {
        verification: &checked.verification,
        status: 200,
    };
    assert!(ticket.finish(ending).await.unwrap());
    assert_eq!(remaining().await, 2, "charged");

    // Refused after admission: given back.
    let mut ticket = app.begin_check("refused".into(), Origin::Api);
    ticket
        .authenticate(Credential::AppCode(&created.app_code))
        .await
        .unwrap();
    ticket.admit().await.unwrap();
    let ending = Ending::Refusal {
        status: 415,
        code: "UnsupportedMediaType",
    };
    assert!(!ticket.finish(ending).await.unwrap());
    assert_eq!(remaining().await, 2, "given back");

    // Dropped unfinished (the client left): recorded as abandoned, the unit given back.
    let mut ticket = app.begin_check("abandoned".into(), Origin::Api);
    ticket
        .authenticate(Credential::AppCode(&created.app_code))
        .await
        .unwrap();
    ticket.admit().await.unwrap();
    assert_eq!(remaining().await, 1, "held");
    drop(ticket);
    app.settle_abandoned(std::time::Duration::from_secs(5))
        .await;
    assert_eq!(remaining().await, 2, "given back at once");

    let audit = app.recent_audit(10).await.unwrap();
    let statuses: Vec<(&str, u16)> = audit
        .iter()
        .map(|r| (r.request_id.as_str(), r.http_status))
        .collect();
    assert_eq!(
        statuses,
        [("abandoned", 499), ("refused", 415), ("answered", 200)],
        "one record per check of a proven caller, none for the stranger"
    );
}

/// Switching packs: a registry enrolled with one engine answers 5 on another until it is
/// re-embedded; kept photos make that one command, and the old embeddings stay.
#[tokio::test]
async fn reembed_after_a_pack_switch_uses_kept_photos() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        data_dir: dir.path().join("data"),
        key_dir: Some(dir.path().join("keys")),
        keep_photos: true,
        ..Settings::default()
    };
    let old = App::open(
        settings.clone(),
        EngineSource::Ready(Arc::new(TestEngine::new())),
    )
    .await
    .unwrap();
    old.enrol(
        &Actor::Cli,
        enrolment("张三", ALICE_ID, vec![solid_png(RED, 64)]),
    )
    .await
    .unwrap();
    old.close().await;

    let new = App::open(
        settings,
        EngineSource::Ready(Arc::new(TestEngine::new().with_model_id("test-colour-v2"))),
    )
    .await
    .unwrap();
    let alice = IdNumber::parse(ALICE_ID).unwrap();
    let (model_id, missing) = new.persons_without_embeddings().await.unwrap();
    assert_eq!(model_id, "test-colour-v2");
    assert_eq!(missing, vec![alice.clone()]);
    let before = check(&new, "张三", ALICE_ID, &solid_png(RED, 32)).await;
    assert_eq!(before.unwrap(), ResultCode::NoPortrait);

    let summary = new.reembed(&Actor::Cli).await.unwrap();
    assert_eq!(
        (summary.missing, summary.reembedded, summary.portraits),
        (1, 1, 1)
    );
    assert!(summary.without_photo.is_empty() && summary.refused.is_empty());
    assert!(new.persons_without_embeddings().await.unwrap().1.is_empty());
    let after = check(&new, "张三", ALICE_ID, &solid_png(RED, 32)).await;
    assert_eq!(after.unwrap(), ResultCode::Same);
    let person = new.person(&alice).await.unwrap().unwrap();
    assert_eq!(person.portraits.len(), 2, "the old pack's portrait is kept");
    // Nothing left to do: a second run changes nothing.
    assert_eq!(new.reembed(&Actor::Cli).await.unwrap().missing, 0);
    new.close().await;
}

/// Without kept photos, the persons to re-import are listed (masked when shown).
#[tokio::test]
async fn reembed_without_kept_photos_lists_who_needs_a_reimport() {
    let dir = tempfile::tempdir().unwrap();
    let app = open(&dir).await;
    app.enrol(
        &Actor::Cli,
        enrolment("张三", ALICE_ID, vec![solid_png(RED, 64)]),
    )
    .await
    .unwrap();
    app.close().await;
    let settings = Settings {
        data_dir: dir.path().join("data"),
        key_dir: Some(dir.path().join("keys")),
        ..Settings::default()
    };
    let new = App::open(
        settings,
        EngineSource::Ready(Arc::new(TestEngine::new().with_model_id("test-colour-v2"))),
    )
    .await
    .unwrap();
    let summary = new.reembed(&Actor::Cli).await.unwrap();
    assert_eq!(summary.reembedded, 0);
    assert_eq!(
        summary.without_photo,
        vec![IdNumber::parse(ALICE_ID).unwrap()]
    );
    let shown = serde_json::to_string(&summary).unwrap();
    assert!(!shown.contains(ALICE_ID), "IDs are masked: {shown}");
    new.close().await;
}

/// A clock the test moves.
#[derive(Debug)]
struct ManualClock(std::sync::atomic::AtomicI64);

impl renzheng_app::Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Alerts: low at the threshold, exhausted, about to expire; once a day while the
/// condition lasts, and no more once topped up.
#[tokio::test]
async fn balance_alerts_repeat_daily_until_topped_up() {
    use renzheng_store::AlertKind::{Exhausted, Expiring, Low};
    const DAY: i64 = 86_400_000;
    let dir = tempfile::tempdir().unwrap();
    // 2026-12-01T12:00:00+08:00.
    let clock = Arc::new(ManualClock(std::sync::atomic::AtomicI64::new(
        1_796_097_600_000,
    )));
    let app = Arc::new(open(&dir).await.with_clock(clock.clone()));
    let advance = |ms: i64| clock.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    app.enrol(
        &Actor::Cli,
        enrolment("张三", ALICE_ID, vec![solid_png(RED, 64)]),
    )
    .await
    .unwrap();
    let created = app
        .create_app(&Actor::Cli, &AppName::parse("shop").unwrap())
        .await
        .unwrap();
    let id = renzheng_store::AppId::from(created.app_id.clone());
    let grant = |calls: i64, expires_at: Option<i64>| {
        app.grant(
            &Actor::Cli,
            &id,
            renzheng_app::GrantRequest {
                calls: Some(calls),
                package: None,
                expires_at,
            },
        )
    };
    // Nothing bought yet: nothing to say.
    assert!(app.evaluate_alerts(&id).await.is_empty());
    grant(10, None).await.unwrap();
    assert!(app.evaluate_alerts(&id).await.is_empty());

    let admit = || async {
        let mut ticket = app.begin_check("r".into(), Origin::Api);
        ticket
            .authenticate(Credential::AppCode(&created.app_code))
            .await?;
        ticket.admit().await.map(|()| ticket)
    };
    let charge = || async {
        use base64::Engine as _;
        let mut ticket = admit().await.unwrap();
        let checked = ticket
            .run(CheckFields {
                name: Some("张三".into()),
                id_card: Some(ALICE_ID.into()),
                image: Some(base64::engine::general_purpose::STANDARD.encode(solid_png(RED, 64))),
                img_url: None,
            })
            .await
            .unwrap();
        let ending = Ending::Answer {
            verification: &checked.verification,
            status: 200,
        };
        ticket.finish(ending).await.unwrap()
    };
    for _ in 0..8 {
        assert!(charge().await);
    }
    // 2 of 10 left: at the default 20 %.
    assert_eq!(app.evaluate_alerts(&id).await, [Low]);
    assert!(app.evaluate_alerts(&id).await.is_empty(), "once a day");
    advance(DAY);
    assert_eq!(app.evaluate_alerts(&id).await, [Low], "again the next day");
    for _ in 0..2 {
        assert!(charge().await);
    }
    assert_eq!(app.evaluate_alerts(&id).await, [Exhausted]);
    assert!(matches!(admit().await, Err(AppError::QuotaExhausted)));

    // Topped up with calls that expire in 3 days: no more "low", but "expiring".
    let now = app.now_ms();
    grant(100, Some(now + 3 * DAY)).await.unwrap();
    assert_eq!(app.evaluate_alerts(&id).await, [Expiring]);
    advance(DAY);
    assert_eq!(app.evaluate_alerts(&id).await, [Expiring]);
    advance(3 * DAY);
    // Expired: nothing left that can be used.
    assert!(matches!(admit().await, Err(AppError::QuotaExpired)));
    assert_eq!(app.evaluate_alerts(&id).await, [Exhausted]);
    // A fresh, lasting package ends the alerts.
    grant(1000, None).await.unwrap();
    assert!(app.evaluate_alerts(&id).await.is_empty());
    advance(DAY);
    assert!(app.evaluate_alerts(&id).await.is_empty());
}

#[tokio::test]
async fn a_duplicate_scan_saves_its_progress_and_resumes_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let app = open(&dir).await;
    app.enrol(
        &Actor::Cli,
        enrolment("张三", ALICE_ID, vec![solid_png(RED, 64)]),
    )
    .await
    .unwrap();
    // The same face under Bob's number, allowed with a reason.
    let mut request = enrolment("李四", BOB_ID, vec![solid_png(RED, 48)]);
    assert!(matches!(
        app.enrol(
            &Actor::Cli,
            enrolment("李四", BOB_ID, vec![solid_png(RED, 48)])
        )
        .await,
        Err(AppError::DuplicateFace { index: 1, .. })
    ));
    request.allow_duplicate_face = Some(renzheng_app::Reason::parse("一人两证").unwrap());
    app.enrol(&Actor::Cli, request).await.unwrap();

    // A scan interrupted after both portraits (its state as a scan saves it): resuming
    // searches nothing more, so it reports what it had found, here nothing.
    let model = TestEngine::new().model_id().to_owned();
    let last = app
        .store()
        .templates_after(&model, 0, 10)
        .await
        .unwrap()
        .last()
        .unwrap()
        .portrait_id;
    app.store()
        .save_duplicate_scan(&renzheng_store::DuplicateScan {
            model_id: model.clone(),
            started_at: 0,
            line_distance: 0.3,
            cursor: last,
            findings: r#"{"done":2,"pairs":[]}"#.into(),
            updated_at: 0,
        })
        .await
        .unwrap();
    let resumed = app
        .duplicate_report(&Actor::Cli, None, |_| {})
        .await
        .unwrap();
    assert_eq!((resumed.templates, resumed.pairs.len()), (2, 0));
    assert_eq!(resumed.line_distance, 0.3, "a resumed scan keeps its line");
    // Finished, the state is gone: the next scan starts over and finds the pair.
    assert_eq!(app.store().duplicate_scan(&model).await.unwrap(), None);
    let fresh = app
        .duplicate_report(&Actor::Cli, None, |_| {})
        .await
        .unwrap();
    assert_eq!(fresh.pairs.len(), 1);
    let ids = [
        fresh.pairs[0].a.id_number.clone(),
        fresh.pairs[0].b.id_number.clone(),
    ];
    assert!(ids.contains(&IdNumber::parse(ALICE_ID).unwrap().masked()));
    assert!(ids.contains(&IdNumber::parse(BOB_ID).unwrap().masked()));
    app.close().await;
}

/// The filing line is dated the day the registry, as it holds now, reached it (the first
/// portrait of the line's last person), kept while it holds, and forgotten below it.
#[tokio::test]
async fn the_filing_line_is_dated_when_reached_and_forgotten_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let day = 86_400_000_i64;
    let mut settings = Settings {
        data_dir: dir.path().join("data"),
        key_dir: Some(dir.path().join("keys")),
        ..Settings::default()
    };
    settings.compliance.filing_threshold = 2;
    // 2026-12-01 12:00 in Beijing.
    let clock = Arc::new(ManualClock(std::sync::atomic::AtomicI64::new(
        1_796_097_600_000,
    )));
    let app = App::open(settings, EngineSource::Ready(Arc::new(TestEngine::new())))
        .await
        .unwrap()
        .with_clock(clock.clone());
    let advance = |ms: i64| clock.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    let status = app.compliance_status().await.unwrap();
    assert_eq!(
        (status.persons_with_face_data, status.reached_at),
        (0, None)
    );

    app.enrol(
        &Actor::Cli,
        enrolment("张三", ALICE_ID, vec![solid_png(RED, 64)]),
    )
    .await
    .unwrap();
    advance(day);
    // A person without a photo has no face data.
    app.enrol(&Actor::Cli, enrolment("王五", CAROL_ID, vec![]))
        .await
        .unwrap();
    assert_eq!(app.compliance_status().await.unwrap().reached_at, None);
    app.enrol(
        &Actor::Cli,
        enrolment("李四", BOB_ID, vec![solid_png([40, 40, 200], 64)]),
    )
    .await
    .unwrap();
    advance(3 * day);
    let status = app.compliance_status().await.unwrap();
    assert_eq!(status.persons_with_face_data, 2);
    assert_eq!(status.reached_at.as_deref(), Some("2026-12-02"));
    assert_eq!(status.oldest_face_data_on.as_deref(), Some("2026-12-01"));
    advance(day);
    assert_eq!(
        app.compliance_status().await.unwrap().reached_at.as_deref(),
        Some("2026-12-02"),
        "the date stays while the registry holds the line"
    );

    // Below the line: forgotten; reached again: the new day.
    let bob = renzheng_domain::IdNumber::parse(BOB_ID).unwrap();
    app.remove_person(&Actor::Cli, &bob).await.unwrap();
    assert_eq!(app.compliance_status().await.unwrap().reached_at, None);
    advance(day);
    app.enrol(
        &Actor::Cli,
        enrolment("李四", BOB_ID, vec![solid_png([40, 40, 200], 64)]),
    )
    .await
    .unwrap();
    assert_eq!(
        app.compliance_status().await.unwrap().reached_at.as_deref(),
        Some("2026-12-07")
    );

    // What scrapes read is at most a minute old.
    let scraped = app.recent_compliance_status().await.unwrap();
    assert_eq!(scraped.persons_with_face_data, 2);
    app.remove_person(&Actor::Cli, &bob).await.unwrap();
    advance(59_000);
    assert_eq!(app.recent_compliance_status().await.unwrap(), scraped);
    advance(1_000);
    assert_eq!(
        app.recent_compliance_status()
            .await
            .unwrap()
            .persons_with_face_data,
        1
    );
}

/// A child's face on consent needs a guardian's consent, judged on the enrolment date by
/// the application's clock: the same child is an adult for the rule from their 14th
/// birthday. A statute needs no one's consent.
#[tokio::test]
async fn a_child_is_judged_on_the_enrolment_date() {
    // Born 2016-05-01.
    const CHILD_ID: &str = "11010520160501002X";
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(std::sync::atomic::AtomicI64::new(
        1_796_097_600_000,
    )));
    let app = open(&dir).await.with_clock(clock.clone());
    let refused = app
        .enrol(
            &Actor::Cli,
            enrolment("张小雨", CHILD_ID, vec![solid_png(RED, 64)]),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(AppError::Basis(
                renzheng_domain::BasisError::GuardianConsentRequired
            ))
        ),
        "{:?}",
        refused.err()
    );
    let events = app.recent_events(5).await.unwrap();
    assert_eq!(events[0].action, "person.basis-refused");
    assert!(
        events[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("under 14")),
        "{events:?}"
    );
    let child = renzheng_domain::IdNumber::parse(CHILD_ID).unwrap();
    assert!(app.person(&child).await.unwrap().is_none());
    // 2030-05-01 12:00 in Beijing: 14 today.
    clock
        .0
        .store(1_903_838_400_000, std::sync::atomic::Ordering::SeqCst);
    app.enrol(
        &Actor::Cli,
        enrolment("张小雨", CHILD_ID, vec![solid_png(RED, 64)]),
    )
    .await
    .unwrap();
    let view = app.person(&child).await.unwrap().unwrap();
    let basis = view.basis.expect("recorded");
    assert_eq!(
        (basis.basis.as_str(), basis.guardian_consent_ref),
        ("consent", None)
    );
}
