//! The registry's integrity rules end to end (issue 19): the real server, the real models
//! and photos, on SQLite and on PostgreSQL (each case runs on both through
//! `on_both_databases!`).
//!
//! The test app enrols HU with `Hu_Jintao_0004` and JIANG with `Jiang_Zemin_0001`.

use std::io::Cursor;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::postgres::{node, scratch_database};

/// Hu Jintao, another photo: "same" as HU's portrait on both packs.
const HU_OTHER: &str = "lfw_eastasian_dev/Hu_Jintao/Hu_Jintao_0001.jpg";
/// Li Peng: not "same" as Hu Jintao.
const LI_PENG: &str = "lfw_eastasian_dev/Li_Peng/Li_Peng_0001.jpg";
/// Wen Jiabao, two photos of him.
const WEN_1: &str = WEN_PORTRAIT;
const WEN_2: &str = WEN_SAME;

/// The same photo as `rel`, resized to `scale` and re-encoded as a JPEG of `quality`: a
/// copy of a photo as it travels between systems.
fn recompressed(rel: &str, scale: f32, quality: u8) -> Vec<u8> {
    let img = image::load_from_memory(&photo(rel)).expect("a shared photo decodes");
    let (w, h) = (img.width() as f32 * scale, img.height() as f32 * scale);
    let img = img.resize(
        w.round() as u32,
        h.round() as u32,
        image::imageops::FilterType::Triangle,
    );
    let mut out = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&img.to_rgb8())
        .expect("encoding a JPEG");
    out.into_inner()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The basis an import gives the rows without their own.
fn import_basis() -> renzheng_app::BasisStatement {
    let fields = renzheng_domain::BasisFields {
        basis: Some("consent".into()),
        consent_ref: Some("batch consent 2026-12".into()),
        ..Default::default()
    };
    renzheng_app::BasisStatement::parse(&fields, None)
        .unwrap()
        .unwrap()
}

/// POST /admin/persons with base64 photos; extra fields merged into the body.
async fn enrol(
    app: &TestApp,
    person: Person,
    photos: &[Vec<u8>],
    extra: Value,
) -> reqwest::Response {
    let mut body = json!({
        "name": person.name,
        "idCard": person.id(),
        "photos": photos.iter().map(|p| b64(p)).collect::<Vec<_>>(),
        "basis": "consent",
        "consentRef": "CF-2026-0006",
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    app.admin(Method::POST, "/admin/persons")
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn portraits_of(app: &TestApp, person: Person) -> usize {
    let response = app
        .admin(Method::POST, "/admin/persons/lookup")
        .json(&json!({"idCard": person.id()}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["portraits"].as_array().unwrap().len()
}

async fn events(app: &TestApp) -> Vec<Value> {
    let response = app
        .admin(Method::GET, "/admin/events?limit=50")
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

fn masked(person: Person) -> String {
    renzheng_domain::IdNumber::parse(&person.id())
        .unwrap()
        .masked()
}

/// Runs each case on a fresh app over SQLite, and over PostgreSQL when one is configured.
macro_rules! on_both_databases {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&crate::helpers::spawn_app().await).await;
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
                    super::$case(&crate::helpers::spawn_app_with(super::node(&db)).await).await;
                }
            )*
        }
    };
}

on_both_databases!(
    another_persons_face_is_never_added_under_an_enrolled_id,
    a_submission_of_two_people_is_refused_whole,
    more_photos_of_the_holder_are_added_and_copies_skipped,
    a_name_changes_only_by_a_rename_with_a_reason,
    one_face_under_two_id_numbers_is_refused_unless_allowed,
    a_reused_photo_is_always_caught,
    portraits_are_replaced_only_by_agreeing_photos_with_a_reason,
    a_folder_import_skips_what_is_on_record_and_lists_each_refusal,
);

async fn another_persons_face_is_never_added_under_an_enrolled_id(app: &TestApp) {
    let response = enrol(app, HU, &[photo(LI_PENG)], json!({})).await;
    let (status, code, message) = error_of(response).await;
    assert_eq!(
        (status, code.as_str()),
        (409, "PortraitMismatch"),
        "{message}"
    );
    assert!(
        message.contains("photo 1") && message.contains("on record"),
        "{message}"
    );
    assert!(message.contains("score"), "{message}");
    // Nothing stored: Li Peng still does not pass for Hu Jintao.
    assert_eq!(portraits_of(app, HU).await, 1);
    assert_ne!(app.check_result(HU, LI_PENG).await["result"], 1);
    let refused = events(app).await;
    assert_eq!(
        refused[0]["action"], "person.portrait-refused",
        "{refused:?}"
    );
    assert_eq!(refused[0]["target"], masked(HU));
}

async fn a_submission_of_two_people_is_refused_whole(app: &TestApp) {
    let response = enrol(app, UNKNOWN, &[photo(WEN_1), photo(LI_PENG)], json!({})).await;
    let (status, code, message) = error_of(response).await;
    assert_eq!(
        (status, code.as_str()),
        (409, "PortraitMismatch"),
        "{message}"
    );
    assert!(
        message.contains("photo 2") && message.contains("photo 1"),
        "{message}"
    );
    assert_eq!(
        app.check_result(UNKNOWN, WEN_2).await["result"],
        7,
        "not enrolled"
    );
}

async fn more_photos_of_the_holder_are_added_and_copies_skipped(app: &TestApp) {
    let copy = recompressed(HU.portrait.unwrap(), 0.8, 75);
    let response = enrol(app, HU, &[photo(HU_OTHER), copy.clone()], json!({})).await;
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["added"], 1, "{body}");
    assert_eq!(body["data"]["skipped"], json!([2]), "{body}");
    assert_eq!(portraits_of(app, HU).await, 2);
    // Again: everything is on record, nothing changes.
    let response = enrol(app, HU, &[photo(HU_OTHER), copy], json!({})).await;
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (body["data"]["added"].clone(), portraits_of(app, HU).await),
        (json!(0), 2)
    );
}

async fn a_name_changes_only_by_a_rename_with_a_reason(app: &TestApp) {
    let renamed = Person {
        name: "胡锦滔",
        ..HU
    };
    let response = enrol(app, renamed, &[], json!({})).await;
    let (status, code, message) = error_of(response).await;
    assert_eq!((status, code.as_str()), (409, "NameMismatch"), "{message}");
    assert!(message.contains("rename"), "{message}");
    assert_eq!(
        app.check_result(HU, HU_OTHER).await["result"],
        1,
        "name kept"
    );

    let rename = |reason: Value| {
        app.admin(Method::POST, "/admin/persons/rename")
            .json(&json!({"idCard": HU.id(), "name": renamed.name, "reason": reason}))
            .send()
    };
    let (status, code, _) = error_of(rename(json!("  ")).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (400, "ReasonRequired"));
    let (status, body) = status_and_body(rename(json!("户籍更名")).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        app.check_result(HU, HU_OTHER).await["result"],
        4,
        "the old name no longer matches"
    );
    assert_eq!(app.check_result(renamed, HU_OTHER).await["result"], 1);
    let event = events(app)
        .await
        .into_iter()
        .find(|e| e["action"] == "person.renamed");
    let event = event.expect("a person.renamed event");
    assert_eq!(event["reason"], "户籍更名");
    assert_eq!(event["target"], masked(HU));
    assert!(!event.to_string().contains(renamed.name), "{event}");
}

async fn one_face_under_two_id_numbers_is_refused_unless_allowed(app: &TestApp) {
    let response = enrol(app, UNKNOWN, &[photo(HU_OTHER)], json!({})).await;
    let (status, code, message) = error_of(response).await;
    assert_eq!((status, code.as_str()), (409, "DuplicateFace"), "{message}");
    assert!(
        message.contains(&masked(HU)),
        "names the other ID, masked: {message}"
    );
    assert!(!message.contains(&HU.id()), "{message}");
    assert!(message.contains("allowDuplicateFace"), "{message}");
    assert_eq!(app.check_result(UNKNOWN, HU_OTHER).await["result"], 7);

    // Allowing needs a reason.
    let response = enrol(
        app,
        UNKNOWN,
        &[photo(HU_OTHER)],
        json!({"allowDuplicateFace": true}),
    )
    .await;
    let (status, code, _) = error_of(response).await;
    assert_eq!((status, code.as_str()), (400, "ReasonRequired"));
    let response = enrol(
        app,
        UNKNOWN,
        &[photo(HU_OTHER)],
        json!({"allowDuplicateFace": true, "reason": "同一人持两个证号，公安核实"}),
    )
    .await;
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 201, "{body}");
    let allowed = events(app)
        .await
        .into_iter()
        .find(|e| e["action"] == "person.duplicate-allowed");
    let allowed = allowed.expect("a person.duplicate-allowed event");
    assert_eq!(allowed["reason"], "同一人持两个证号，公安核实");
    assert!(
        allowed["detail"].as_str().unwrap().contains(&masked(HU)),
        "{allowed}"
    );

    // The report lists the pair by masked ID and handle; revealing needs a reason.
    let response = app
        .admin(Method::POST, "/admin/registry/duplicates")
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    let pairs = body["data"]["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 1, "{body}");
    let both = [
        pairs[0]["a"]["id_number"].clone(),
        pairs[0]["b"]["id_number"].clone(),
    ];
    assert!(
        both.contains(&json!(masked(HU))) && both.contains(&json!(masked(UNKNOWN))),
        "{body}"
    );
    assert!(!body.to_string().contains(&HU.id()), "{body}");
    let handle = pairs[0]["a"]["handle"].as_str().unwrap().to_owned();
    let response = app
        .admin(Method::POST, "/admin/persons/lookup")
        .json(&json!({"idCard": handle}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(
        (status, body["data"]["handle"].as_str()),
        (200, Some(handle.as_str()))
    );

    let response = app
        .admin(Method::POST, "/admin/registry/duplicates")
        .json(&json!({"reveal": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.1, "ReasonRequired");
    let response = app
        .admin(Method::POST, "/admin/registry/duplicates")
        .json(&json!({"reveal": true, "reason": "核查一人多证"}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains(&HU.id()), "revealed: {body}");
    let revealed = events(app).await;
    assert_eq!(revealed[0]["action"], "registry.duplicates-revealed");
    assert_eq!(revealed[0]["reason"], "核查一人多证");
}

async fn a_reused_photo_is_always_caught(app: &TestApp) {
    // JIANG's own portrait, shrunk and re-encoded, under another ID number.
    for (scale, quality) in [(1.0, 90), (0.6, 60), (1.5, 40)] {
        let copy = recompressed(JIANG.portrait.unwrap(), scale, quality);
        let response = enrol(app, UNKNOWN, &[copy], json!({})).await;
        let (status, code, message) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (409, "DuplicateFace"),
            "{scale} {quality}: {message}"
        );
        assert!(message.contains(&masked(JIANG)), "{message}");
    }
}

async fn portraits_are_replaced_only_by_agreeing_photos_with_a_reason(app: &TestApp) {
    let replace = |photos: Vec<Vec<u8>>, reason: Option<&str>| {
        app.admin(Method::POST, "/admin/persons/replace")
            .json(&json!({
                "idCard": HU.id(),
                "photos": photos.iter().map(|p| b64(p)).collect::<Vec<_>>(),
                "reason": reason,
            }))
            .send()
    };
    let (status, code, _) = error_of(replace(vec![photo(HU_OTHER)], None).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (400, "ReasonRequired"));
    // Two people in one replacement: refused, nothing changed.
    let response = replace(vec![photo(HU_OTHER), photo(LI_PENG)], Some("换证"))
        .await
        .unwrap();
    let (status, code, message) = error_of(response).await;
    assert_eq!(
        (status, code.as_str()),
        (409, "PortraitMismatch"),
        "{message}"
    );
    // Another enrolled person's face: refused.
    let response = replace(vec![photo(JIANG.portrait.unwrap())], Some("换证"))
        .await
        .unwrap();
    let (status, code, message) = error_of(response).await;
    assert_eq!((status, code.as_str()), (409, "DuplicateFace"), "{message}");
    assert_eq!(
        app.check_result(HU, HU_SAME).await["result"],
        1,
        "unchanged"
    );

    // A new face for the holder (a re-issued card: here, Wen Jiabao's photos stand in).
    let response = replace(
        vec![photo(WEN_1), photo(WEN_2)],
        Some("重新办证，旧照片有误"),
    )
    .await
    .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(portraits_of(app, HU).await, 2);
    assert_eq!(app.check_result(HU, WEN_2).await["result"], 1);
    assert_ne!(
        app.check_result(HU, HU_SAME).await["result"],
        1,
        "the old portrait is gone"
    );
    let event = events(app)
        .await
        .into_iter()
        .find(|e| e["action"] == "person.portraits-replaced");
    let event = event.expect("a person.portraits-replaced event");
    assert_eq!(event["reason"], "重新办证，旧照片有误");
    // The old face is free again: another ID number may be enrolled with it.
    let response = enrol(app, UNKNOWN, &[photo(HU_SAME)], json!({})).await;
    assert_eq!(response.status(), 201);
}

async fn a_folder_import_skips_what_is_on_record_and_lists_each_refusal(app: &TestApp) {
    let folder = tempfile::tempdir().unwrap();
    let put =
        |bytes: Vec<u8>, name: String| std::fs::write(folder.path().join(name), bytes).unwrap();
    // HU's own portrait, re-encoded: already on record. Wen for UNKNOWN: new. Jiang's face
    // under NO_PHOTO's number: refused, the file named masked.
    put(
        recompressed(HU.portrait.unwrap(), 0.9, 85),
        format!("{}.jpg", HU.id()),
    );
    put(photo(WEN_1), format!("{}.jpg", UNKNOWN.id()));
    put(
        photo(JIANG.portrait.unwrap()),
        format!("{}.jpg", NO_PHOTO.id()),
    );
    let csv = format!(
        "id,name\n{},{}\n{},{}\n{},{}\n",
        HU.id(),
        HU.name,
        UNKNOWN.id(),
        UNKNOWN.name,
        NO_PHOTO.id(),
        NO_PHOTO.name
    );
    std::fs::write(folder.path().join("people.csv"), csv).unwrap();
    let actor = renzheng_app::Actor::Cli;
    let summary = app
        .state
        .app
        .import_folder(&actor, folder.path(), None, Some(import_basis()), |_| {})
        .await
        .unwrap();
    assert_eq!(
        (
            summary.persons,
            summary.portraits,
            summary.already_on_record
        ),
        (2, 1, 1),
        "{summary:?}"
    );
    assert_eq!(summary.refused.len(), 1, "{summary:?}");
    let refusal = &summary.refused[0];
    assert_eq!(refusal.item, format!("{}.jpg", masked(NO_PHOTO)));
    assert!(refusal.reason.contains(&masked(JIANG)), "{refusal:?}");
    assert!(
        refusal.reason.contains("already enrolled under"),
        "{refusal:?}"
    );
    assert_eq!(
        app.check_result(NO_PHOTO, JIANG.portrait.unwrap()).await["result"],
        5
    );
    assert_eq!(app.check_result(UNKNOWN, WEN_2).await["result"], 1);

    // Again: nothing changes.
    let again = app
        .state
        .app
        .import_folder(&actor, folder.path(), None, Some(import_basis()), |_| {})
        .await
        .unwrap();
    assert_eq!(
        (again.portraits, again.already_on_record),
        (0, 2),
        "{again:?}"
    );
    assert_eq!(portraits_of(app, HU).await, 1);
    assert_eq!(portraits_of(app, UNKNOWN).await, 1);
}

/// Two nodes sharing PostgreSQL: what one enrols, the other's index knows before its next
/// enrolment, and two nodes racing one face under two ID numbers cannot both win.
#[tokio::test]
async fn nodes_sharing_postgresql_keep_one_face_under_one_id() {
    let Some(db) = scratch_database("nodes_sharing_postgresql_keep_one_face_under_one_id").await
    else {
        return;
    };
    let a = spawn_app_with(node(&db)).await;
    let b = spawn_app_with(node(&db)).await;
    // b's index is built; a then enrols Wen Jiabao.
    assert_eq!(
        enrol(&b, NO_PHOTO, &[photo(WEN_1)], json!({}))
            .await
            .status(),
        201
    );
    let response = enrol(&a, UNKNOWN, &[photo(WEN_2)], json!({})).await;
    let (status, code, message) = error_of(response).await;
    assert_eq!((status, code.as_str()), (409, "DuplicateFace"), "{message}");
    assert!(message.contains(&masked(NO_PHOTO)), "{message}");

    // A race: the same new face under two ID numbers, one on each node.
    let first = Person {
        name: "赵一",
        id17: "11010519800101001",
        portrait: None,
    };
    let second = Person {
        name: "钱二",
        id17: "11010519800101002",
        portrait: None,
    };
    let li = [photo(LI_PENG)];
    let (x, y) = tokio::join!(
        enrol(&a, first, &li, json!({})),
        enrol(&b, second, &li, json!({})),
    );
    let mut statuses = [x.status().as_u16(), y.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "exactly one enrolment wins");
}
