//! Backend-independent tests of the `Store` contract.
//!
//! Each check takes a fresh, empty store as `&dyn Store` (which also proves
//! the trait stays object-safe). A backend's test file runs them all with
//! `store_suite!(make())`, where `make()` is an async expression returning
//! `(store, guard)`; the guard keeps whatever backs the store (a temporary
//! directory, a scratch database) alive for the test. A backend that needs a
//! server the machine may not have uses `store_suite!(optional make())`, where
//! `make()` returns `Option<(store, guard)>`: `None` skips the test (`make()`
//! says why), so that `cargo test` passes without the server.

use renzheng_domain::{IdNumber, PersonName};
use renzheng_store::{
    generate_app_key, AdminEvent, AppCode, AppCodeHash, AppId, AuditEntry, NewApp, NewPortrait,
    Store, StoreError,
};

mod compliance;
mod keys;
mod metering;
pub use compliance::*;
pub use keys::*;
pub use metering::*;

macro_rules! store_suite {
    (optional $make:expr) => {
        $crate::suite::store_suite!(@list optional $make);
    };
    ($make:expr) => {
        $crate::suite::store_suite!(@list required $make);
    };
    (@list $mode:ident $make:expr) => {
        $crate::suite::store_suite!(@each $mode $make;
            ping_succeeds,
            app_round_trip,
            duplicate_app_code_conflicts,
            unknown_app_code_finds_nothing,
            apps_are_listed_oldest_first,
            app_can_be_disabled_and_enabled,
            enabling_unknown_app_is_not_found,
            upsert_creates_then_renames,
            portraits_round_trip_bit_exact,
            portrait_for_unknown_person_is_not_found,
            empty_embedding_is_rejected,
            photo_is_stored_but_not_loaded_with_the_person,
            unknown_person_is_none,
            remove_deletes_person_and_portraits,
            remove_unlinks_the_audit_trail,
            enrol_stores_person_and_portraits_together,
            failed_enrol_leaves_nothing,
            guarded_writes_need_the_version_they_were_checked_at,
            renames_only_on_purpose,
            replace_swaps_every_portrait_at_once,
            template_changes_follow_every_write,
            handles_name_persons,
            the_registry_is_listed_and_found_by_exact_name,
            a_duplicate_scan_resumes_where_it_stopped,
            remove_unknown_person_is_false,
            audit_round_trip_newest_first,
            audit_never_holds_clear_identity,
            audit_is_purged_by_age,
            events_round_trip_newest_first,
            remove_unlinks_person_events,
            persons_without_a_model_and_kept_photos,
            key_fingerprints_are_claimed_once,
            person_ids_are_listed_in_pages,
            packages_are_seeded_and_editable,
            grants_add_to_the_balance_and_the_ledger,
            grants_are_revoked_and_adjusted_in_the_ledger,
            an_operators_second_factor_is_kept_sealed_and_each_step_used_once,
            operator_events_are_filtered_and_paged_by_the_store,
            units_are_taken_oldest_expiry_first,
            reservations_are_refused_when_exhausted_or_expired,
            charges_and_releases_settle_holds_with_the_audit,
            concurrent_reservations_never_overdraw,
            lapsed_holds_are_given_back,
            rate_limits_allow_a_burst_then_the_rate,
            extreme_rates_never_overflow,
            attempts_per_id_are_limited_per_minute_and_day,
            nonces_are_single_use_within_their_window,
            console_sessions_slide_until_idle_or_ended,
            console_flashes_are_read_once_by_their_session,
            an_operator_lists_and_ends_their_own_sessions,
            operator_accounts_always_keep_an_owner,
            history_is_filtered_and_paged,
            alerts_are_recorded_once_per_period,
            app_codes_rotate_with_a_grace_period,
            a_template_key_rotation_moves_every_person,
            a_basis_is_stored_with_the_face_kept_and_renewed,
            compliance_counts_persons_with_face_data_and_marks_lines,
            a_persons_trail_is_found_by_their_keyed_hashes,
            retention_finds_persons_due_and_records_outlive_them,
            key_records_follow_rotations_and_retirements,
            sealed_secrets_and_photos_are_replaced_only_if_unchanged,
        );
    };
    (@each required $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let (store, _guard) = $make.await;
                $crate::suite::$check(&store).await;
            }
        )*
    };
    (@each optional $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let Some((store, _guard)) = $make.await else {
                    return;
                };
                $crate::suite::$check(&store).await;
            }
        )*
    };
}
pub(crate) use store_suite;

const DIMS: usize = 128;
const AUDIT_KEY: &[u8] = b"suite audit key, 32 bytes long..";

/// "Now" for the operations that take the caller's clock (2026-12-01T00:00:00Z).
const NOW: i64 = 1_796_083_200_000;

fn new_app(name: &str, code_hash: &AppCodeHash) -> NewApp {
    NewApp {
        name: name.to_owned(),
        code_hash: code_hash.clone(),
        app_key: generate_app_key(),
        secret_sealed: vec![7; 40],
        code_sealed: Some(vec![9; 40]),
    }
}

fn id(s: &str) -> IdNumber {
    IdNumber::parse(s).unwrap()
}

fn name(s: &str) -> PersonName {
    PersonName::parse(s).unwrap()
}

fn alice() -> IdNumber {
    id("11010519491231002X")
}

fn bob() -> IdNumber {
    id("110105491231003")
}

/// A deterministic embedding whose values exercise awkward bit patterns.
fn embedding(seed: u32) -> Vec<f32> {
    (0..DIMS as u32)
        .map(|i| match i % 7 {
            0 => -0.0,
            1 => f32::MIN_POSITIVE / 2.0, // subnormal
            2 => f32::EPSILON,
            _ => f32::from_bits(seed.wrapping_mul(2_654_435_761).wrapping_add(i) & 0x3fff_ffff),
        })
        .collect()
}

fn portrait(seed: u32) -> NewPortrait {
    NewPortrait {
        model_id: "sface-2021dec".to_owned(),
        embedding: embedding(seed),
        quality: Some(serde_json::json!({ "blur": 0.12, "yaw": -3.5 })),
        photo: None,
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

pub async fn ping_succeeds(store: &dyn Store) {
    store.ping().await.unwrap();
}

pub async fn app_round_trip(store: &dyn Store) {
    let (code, hash) = AppCode::generate_with_hash();
    let app = store
        .create_app(&new_app("shop", &hash), NOW)
        .await
        .unwrap();
    assert!(app.id.as_str().starts_with("app_"));
    assert!(app.enabled);
    let found = store
        .find_app_by_code_hash(&AppCodeHash::of(code.expose()), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, app);
}

pub async fn duplicate_app_code_conflicts(store: &dyn Store) {
    let hash = AppCode::generate().hash();
    store
        .create_app(&new_app("first", &hash), NOW)
        .await
        .unwrap();
    let err = store
        .create_app(&new_app("second", &hash), NOW)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict("app")), "{err:?}");
    assert_eq!(store.list_apps().await.unwrap().len(), 1);
}

pub async fn unknown_app_code_finds_nothing(store: &dyn Store) {
    store
        .create_app(&new_app("shop", &AppCode::generate().hash()), NOW)
        .await
        .unwrap();
    let other = AppCode::generate().hash();
    assert_eq!(
        store.find_app_by_code_hash(&other, NOW).await.unwrap(),
        None
    );
}

pub async fn apps_are_listed_oldest_first(store: &dyn Store) {
    assert!(store.list_apps().await.unwrap().is_empty());
    let mut created = Vec::new();
    for n in 0..3 {
        let app = store
            // Distinct creation times, so the expected order is unambiguous.
            .create_app(
                &new_app(&format!("app {n}"), &AppCode::generate().hash()),
                NOW + n,
            )
            .await
            .unwrap();
        created.push(app);
    }
    assert_eq!(store.list_apps().await.unwrap(), created);
}

pub async fn app_can_be_disabled_and_enabled(store: &dyn Store) {
    let hash = AppCode::generate().hash();
    let app = store
        .create_app(&new_app("shop", &hash), NOW)
        .await
        .unwrap();
    store.set_app_enabled(&app.id, false).await.unwrap();
    let found = store
        .find_app_by_code_hash(&hash, NOW)
        .await
        .unwrap()
        .unwrap();
    assert!(!found.enabled);
    store.set_app_enabled(&app.id, true).await.unwrap();
    let found = store
        .find_app_by_code_hash(&hash, NOW)
        .await
        .unwrap()
        .unwrap();
    assert!(found.enabled);
}

pub async fn enabling_unknown_app_is_not_found(store: &dyn Store) {
    let err = store
        .set_app_enabled(&AppId::from("app_missing".to_owned()), true)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound("app")), "{err:?}");
}

pub async fn upsert_creates_then_renames(store: &dyn Store) {
    let created = store
        .upsert_person(&alice(), &name("张三"), NOW)
        .await
        .unwrap();
    assert_eq!(created.created_at, created.updated_at);
    store
        .add_portrait(&alice(), portrait(1), NOW)
        .await
        .unwrap();

    let renamed = store
        .upsert_person(&alice(), &name("买买提・艾力"), NOW + 2)
        .await
        .unwrap();
    assert_eq!(renamed.created_at, created.created_at);
    assert!(renamed.updated_at > created.updated_at);

    let record = store.get_person(&alice()).await.unwrap().unwrap();
    assert_eq!(record.person.name.as_str(), "买买提·艾力");
    assert_eq!(record.person.id_number, alice());
    assert_eq!(record.portraits.len(), 1, "renaming keeps portraits");
}

pub async fn portraits_round_trip_bit_exact(store: &dyn Store) {
    store
        .upsert_person(&alice(), &name("张三"), NOW)
        .await
        .unwrap();
    let first = store
        .add_portrait(&alice(), portrait(1), NOW)
        .await
        .unwrap();
    let mut second_portrait = portrait(2);
    second_portrait.quality = None;
    second_portrait.model_id = "other-model".to_owned();
    let second = store
        .add_portrait(&alice(), second_portrait, NOW)
        .await
        .unwrap();
    assert!(second > first);

    let record = store.get_person(&alice()).await.unwrap().unwrap();
    let ids: Vec<i64> = record.portraits.iter().map(|p| p.id).collect();
    assert_eq!(ids, [first, second]);
    let p = &record.portraits[0];
    assert_eq!(p.model_id, "sface-2021dec");
    assert_eq!(p.embedding.len(), DIMS);
    assert_eq!(bits(&p.embedding), bits(&embedding(1)));
    assert_eq!(p.quality, portrait(1).quality);
    assert!(!p.has_photo);
    let p = &record.portraits[1];
    assert_eq!(p.model_id, "other-model");
    assert_eq!(bits(&p.embedding), bits(&embedding(2)));
    assert_eq!(p.quality, None);
}

pub async fn portrait_for_unknown_person_is_not_found(store: &dyn Store) {
    let err = store
        .add_portrait(&alice(), portrait(1), NOW)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound("person")), "{err:?}");
}

pub async fn empty_embedding_is_rejected(store: &dyn Store) {
    store
        .upsert_person(&alice(), &name("张三"), NOW)
        .await
        .unwrap();
    let mut empty = portrait(1);
    empty.embedding.clear();
    let err = store.add_portrait(&alice(), empty, NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}

pub async fn photo_is_stored_but_not_loaded_with_the_person(store: &dyn Store) {
    store
        .upsert_person(&alice(), &name("张三"), NOW)
        .await
        .unwrap();
    let sealed = vec![0u8, 1, 2, 255, 0, 7];
    let mut with_photo = portrait(1);
    with_photo.photo = Some(sealed.clone());
    let with = store.add_portrait(&alice(), with_photo, NOW).await.unwrap();
    let without = store
        .add_portrait(&alice(), portrait(2), NOW)
        .await
        .unwrap();

    let record = store.get_person(&alice()).await.unwrap().unwrap();
    assert_eq!(record.portraits[0].id, with);
    assert!(record.portraits[0].has_photo);
    assert_eq!(record.portraits[1].id, without);
    assert!(!record.portraits[1].has_photo);
}

pub async fn unknown_person_is_none(store: &dyn Store) {
    store
        .upsert_person(&alice(), &name("张三"), NOW)
        .await
        .unwrap();
    assert_eq!(store.get_person(&bob()).await.unwrap(), None);
}

pub async fn remove_deletes_person_and_portraits(store: &dyn Store) {
    store
        .upsert_person(&alice(), &name("张三"), NOW)
        .await
        .unwrap();
    store
        .upsert_person(&bob(), &name("李四"), NOW)
        .await
        .unwrap();
    let mut with_photo = portrait(1);
    with_photo.photo = Some(vec![9; 32]);
    store.add_portrait(&alice(), with_photo, NOW).await.unwrap();
    store
        .add_portrait(&alice(), portrait(2), NOW)
        .await
        .unwrap();
    let bob_portrait = store.add_portrait(&bob(), portrait(3), NOW).await.unwrap();

    assert!(store.remove_person(&alice(), &[AUDIT_KEY]).await.unwrap());

    assert_eq!(store.get_person(&alice()).await.unwrap(), None);
    // Others are untouched.
    let bob_record = store.get_person(&bob()).await.unwrap().unwrap();
    assert_eq!(bob_record.portraits.len(), 1);
    assert_eq!(bob_record.portraits[0].id, bob_portrait);

    // Re-registering starts from nothing.
    store
        .upsert_person(&alice(), &name("张三"), NOW)
        .await
        .unwrap();
    let record = store.get_person(&alice()).await.unwrap().unwrap();
    assert!(record.portraits.is_empty());
}

pub async fn remove_unknown_person_is_false(store: &dyn Store) {
    assert!(!store.remove_person(&alice(), &[AUDIT_KEY]).await.unwrap());
}

pub async fn audit_round_trip_newest_first(store: &dyn Store) {
    assert!(store.recent_audit(10).await.unwrap().is_empty());
    let key = b"audit key";

    let mut ok = AuditEntry::new(NOW, "req-1", 200, 42)
        .with_name(&name("张三"))
        .with_id_number(&alice(), key);
    ok.app_id = Some(AppId::from("app_0123456789abcdef".to_owned()));
    ok.result = Some(1);
    ok.score = Some(0.8125);
    store.record_audit(&ok).await.unwrap();

    let mut failed = AuditEntry::new(NOW, "req-2", 400, 3);
    failed.error_code = Some("InvalidIdNumber".to_owned());
    store.record_audit(&failed).await.unwrap();

    let records = store.recent_audit(10).await.unwrap();
    assert_eq!(records.len(), 2);
    let (newest, oldest) = (&records[0], &records[1]);
    assert!(newest.id > oldest.id);

    assert_eq!(newest.request_id, "req-2");
    assert_eq!(newest.http_status, 400);
    assert_eq!(newest.latency_ms, 3);
    assert_eq!(newest.error_code.as_deref(), Some("InvalidIdNumber"));
    assert_eq!(newest.app_id, None);
    assert_eq!(newest.name_masked, None);
    assert_eq!(newest.result, None);
    assert_eq!(newest.score, None);

    assert_eq!(oldest.at, ok.at);
    assert_eq!(oldest.request_id, "req-1");
    assert_eq!(oldest.app_id, ok.app_id);
    assert_eq!(oldest.name_masked.as_deref(), Some("张*"));
    assert_eq!(oldest.id_masked.as_deref(), Some("11**************2X"));
    assert_eq!(
        oldest.id_hash.as_deref(),
        Some(alice().keyed_hash(key).as_str())
    );
    assert_eq!(oldest.result, Some(1));
    assert_eq!(oldest.score, Some(0.8125));
    assert_eq!(oldest.http_status, 200);
    assert_eq!(oldest.latency_ms, 42);

    assert_eq!(store.recent_audit(1).await.unwrap()[0].request_id, "req-2");
}

pub async fn audit_is_purged_by_age(store: &dyn Store) {
    let old = AuditEntry::new(1_000, "old", 200, 1);
    let new = AuditEntry::new(5_000, "new", 200, 1);
    store.record_audit(&old).await.unwrap();
    store.record_audit(&new).await.unwrap();
    assert_eq!(store.purge_audit_before(5_000).await.unwrap(), 1);
    let rows = store.recent_audit(10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].request_id, "new");
    assert_eq!(store.purge_audit_before(5_000).await.unwrap(), 0);
}

pub async fn audit_never_holds_clear_identity(store: &dyn Store) {
    let entry = AuditEntry::new(NOW, "req", 200, 1)
        .with_name(&name("欧阳娜娜"))
        .with_id_number(&alice(), b"k");
    store.record_audit(&entry).await.unwrap();
    let record = &store.recent_audit(1).await.unwrap()[0];
    let everything = format!("{record:?}");
    assert!(!everything.contains("欧阳娜娜"));
    assert!(!everything.contains("阳娜"));
    assert!(!everything.contains(alice().as_str()));
    assert!(!everything.contains("19491231"));
}

pub async fn enrol_stores_person_and_portraits_together(store: &dyn Store) {
    store
        .enrol(
            &alice(),
            &name("张三"),
            vec![portrait(1), portrait(2)],
            None,
            NOW,
        )
        .await
        .unwrap();
    let rec = store.get_person(&alice()).await.unwrap().unwrap();
    assert_eq!(rec.person.name.as_str(), "张三");
    assert_eq!(rec.portraits.len(), 2);
    // Enrolling again adds, and never renames.
    store
        .enrol(&alice(), &name("张三"), vec![portrait(3)], None, NOW)
        .await
        .unwrap();
    let rec = store.get_person(&alice()).await.unwrap().unwrap();
    assert_eq!((rec.person.name.as_str(), rec.portraits.len()), ("张三", 3));
    let err = store
        .enrol(&alice(), &name("张四"), vec![portrait(4)], None, NOW)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let rec = store.get_person(&alice()).await.unwrap().unwrap();
    assert_eq!((rec.person.name.as_str(), rec.portraits.len()), ("张三", 3));
}

pub async fn guarded_writes_need_the_version_they_were_checked_at(store: &dyn Store) {
    let seen = store.registry_version().await.unwrap();
    store
        .enrol(&alice(), &name("张三"), vec![portrait(1)], Some(seen), NOW)
        .await
        .unwrap();
    let now = store.registry_version().await.unwrap();
    assert!(now > seen);
    // A write checked against the older registry is refused, and leaves nothing.
    let err = store
        .enrol(&bob(), &name("李四"), vec![portrait(2)], Some(seen), NOW)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Stale), "{err:?}");
    assert!(store.get_person(&bob()).await.unwrap().is_none());
    let err = store
        .replace_portraits(&alice(), vec![portrait(3)], Some(seen), NOW)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Stale), "{err:?}");
    assert_eq!(
        store
            .get_person(&alice())
            .await
            .unwrap()
            .unwrap()
            .portraits
            .len(),
        1
    );
    assert_eq!(store.registry_version().await.unwrap(), now);
}

pub async fn renames_only_on_purpose(store: &dyn Store) {
    let err = store
        .rename_person(&alice(), &name("张四"), NOW)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    store
        .enrol(&alice(), &name("张三"), vec![portrait(1)], None, NOW)
        .await
        .unwrap();
    let version = store.registry_version().await.unwrap();
    let renamed = store
        .rename_person(&alice(), &name("张四"), NOW + 5)
        .await
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.updated_at),
        ("张四", NOW + 5)
    );
    let rec = store.get_person(&alice()).await.unwrap().unwrap();
    assert_eq!((rec.person.name.as_str(), rec.portraits.len()), ("张四", 1));
    // A rename changes no template.
    assert_eq!(store.registry_version().await.unwrap(), version);
}

pub async fn replace_swaps_every_portrait_at_once(store: &dyn Store) {
    let err = store
        .replace_portraits(&alice(), vec![portrait(1)], None, NOW)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let mut kept = portrait(1);
    kept.photo = Some(vec![1, 2, 3]);
    store
        .enrol(&alice(), &name("张三"), vec![kept, portrait(2)], None, NOW)
        .await
        .unwrap();
    // A failing replacement (an empty embedding) changes nothing.
    let mut bad = portrait(4);
    bad.embedding.clear();
    assert!(store
        .replace_portraits(&alice(), vec![portrait(3), bad], None, NOW)
        .await
        .is_err());
    assert_eq!(
        store
            .get_person(&alice())
            .await
            .unwrap()
            .unwrap()
            .portraits
            .len(),
        2
    );
    store
        .replace_portraits(&alice(), vec![portrait(3)], None, NOW + 1)
        .await
        .unwrap();
    let rec = store.get_person(&alice()).await.unwrap().unwrap();
    assert_eq!(rec.portraits.len(), 1);
    assert_eq!(bits(&rec.portraits[0].embedding), bits(&embedding(3)));
    // The old kept photo went with its portrait.
    assert!(store.kept_photos(&alice()).await.unwrap().is_empty());
}

pub async fn template_changes_follow_every_write(store: &dyn Store) {
    let model = "sface-2021dec";
    let start = store.registry_version().await.unwrap();
    store
        .enrol(
            &alice(),
            &name("张三"),
            vec![portrait(1), portrait(2)],
            None,
            NOW,
        )
        .await
        .unwrap();
    let mut other = portrait(9);
    other.model_id = "dlib-v1".into();
    store
        .enrol(&bob(), &name("李四"), vec![portrait(3), other], None, NOW)
        .await
        .unwrap();
    let all = store.templates_after(model, 0, 100).await.unwrap();
    assert_eq!(all.len(), 3, "only the model asked for");
    assert_eq!(bits(&all[0].embedding), bits(&embedding(1)));
    assert_eq!(all[0].id_number, alice());
    assert_eq!(all[2].id_number, bob());
    assert_eq!(all[0].owner, store.person_handle(&alice()));
    let page = store
        .templates_after(model, all[0].portrait_id, 1)
        .await
        .unwrap();
    assert_eq!(page[0].portrait_id, all[1].portrait_id);

    let changes = store.template_changes(model, start).await.unwrap();
    assert_eq!(changes.added.len(), 3);
    assert!(changes.removed.is_empty());
    let after_enrol = changes.version;
    assert!(store
        .template_changes(model, after_enrol)
        .await
        .unwrap()
        .added
        .is_empty());

    store
        .replace_portraits(&alice(), vec![portrait(5)], None, NOW)
        .await
        .unwrap();
    store.remove_person(&bob(), &[AUDIT_KEY]).await.unwrap();
    let changes = store.template_changes(model, after_enrol).await.unwrap();
    let mut removed = changes.removed.clone();
    removed.sort_unstable();
    let mut expected: Vec<i64> = all.iter().map(|t| t.portrait_id).collect();
    // Bob's dlib portrait is logged too (readers ignore ids they never held).
    expected.push(all[2].portrait_id + 1);
    expected.sort_unstable();
    assert_eq!(removed, expected);
    assert_eq!(changes.added.len(), 1);
    assert_eq!(bits(&changes.added[0].embedding), bits(&embedding(5)));

    let ids: Vec<i64> = vec![changes.added[0].portrait_id, all[0].portrait_id];
    let found = store.templates_by_ids(&ids).await.unwrap();
    assert_eq!(found.len(), 1, "removed portraits are gone");
}

pub async fn handles_name_persons(store: &dyn Store) {
    store
        .enrol(&alice(), &name("张三"), vec![], None, NOW)
        .await
        .unwrap();
    let handle = store.person_handle(&alice());
    assert_ne!(handle, store.person_handle(&bob()));
    let text = handle.to_string();
    assert!(text.starts_with("p-") && text.len() == 18, "{text}");
    let parsed: renzheng_store::PersonHandle = text.parse().unwrap();
    assert_eq!(store.person_by_handle(parsed).await.unwrap(), Some(alice()));
    assert_eq!(
        store
            .person_by_handle(store.person_handle(&bob()))
            .await
            .unwrap(),
        None
    );
    let rec = store.get_person(&alice()).await.unwrap().unwrap();
    assert_eq!(rec.person.handle, handle);
    assert!("p-xyz".parse::<renzheng_store::PersonHandle>().is_err());
}

pub async fn failed_enrol_leaves_nothing(store: &dyn Store) {
    let mut bad = portrait(2);
    bad.embedding.clear();
    assert!(store
        .enrol(&bob(), &name("李四"), vec![portrait(1), bad], None, NOW)
        .await
        .is_err());
    assert!(store.get_person(&bob()).await.unwrap().is_none());
}

pub async fn remove_unlinks_the_audit_trail(store: &dyn Store) {
    store
        .upsert_person(&alice(), &name("张三"), NOW)
        .await
        .unwrap();
    let mine = AuditEntry::new(NOW, "req-a", 200, 5)
        .with_name(&name("张三"))
        .with_id_number(&alice(), AUDIT_KEY);
    let other = AuditEntry::new(NOW, "req-b", 200, 5)
        .with_name(&name("李四"))
        .with_id_number(&bob(), AUDIT_KEY);
    store.record_audit(&mine).await.unwrap();
    store.record_audit(&other).await.unwrap();
    assert!(store.remove_person(&alice(), &[AUDIT_KEY]).await.unwrap());
    let rows = store.recent_audit(10).await.unwrap();
    let a = rows.iter().find(|r| r.request_id == "req-a").unwrap();
    assert_eq!(
        (&a.name_masked, &a.id_masked, &a.id_hash),
        (&None, &None, &None)
    );
    assert_eq!(
        a.http_status, 200,
        "the anonymous record of the check stays"
    );
    let b = rows.iter().find(|r| r.request_id == "req-b").unwrap();
    assert!(b.id_hash.is_some(), "other people's rows are untouched");
}

pub async fn events_round_trip_newest_first(store: &dyn Store) {
    assert!(store.recent_events(10).await.unwrap().is_empty());
    let mut created = AdminEvent::new(1_000, "cli", "app.created");
    created.app_id = Some(AppId::from("app_0123456789abcdef".to_owned()));
    store.record_event(&created).await.unwrap();
    let mut enrolled =
        AdminEvent::new(2_000, "admin-api", "person.enrolled").about_person(&alice(), AUDIT_KEY);
    enrolled.request_id = Some("req-9".into());
    enrolled.detail = Some("2 portraits".into());
    store.record_event(&enrolled).await.unwrap();

    let events = store.recent_events(10).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].action, "person.enrolled");
    assert_eq!(events[0].actor, "admin-api");
    assert_eq!(events[0].at, 2_000);
    assert_eq!(events[0].target.as_deref(), Some(alice().masked().as_str()));
    assert_eq!(events[0].request_id.as_deref(), Some("req-9"));
    assert_eq!(events[0].detail.as_deref(), Some("2 portraits"));
    assert_eq!(events[1].action, "app.created");
    assert_eq!(events[1].target.as_deref(), Some("app_0123456789abcdef"));
    assert!(events[0].id > events[1].id);
    assert_eq!(store.recent_events(1).await.unwrap().len(), 1);
    // Never the clear number.
    for e in &events {
        assert_ne!(e.target.as_deref(), Some(alice().as_str()));
    }
}

pub async fn remove_unlinks_person_events(store: &dyn Store) {
    store
        .upsert_person(&alice(), &name("张三"), NOW)
        .await
        .unwrap();
    let about_alice =
        AdminEvent::new(1_000, "cli", "person.enrolled").about_person(&alice(), AUDIT_KEY);
    let about_bob =
        AdminEvent::new(1_001, "cli", "person.enrolled").about_person(&bob(), AUDIT_KEY);
    store.record_event(&about_alice).await.unwrap();
    store.record_event(&about_bob).await.unwrap();
    assert!(store.remove_person(&alice(), &[AUDIT_KEY]).await.unwrap());
    let events = store.recent_events(10).await.unwrap();
    assert_eq!(events.len(), 2, "events stay, unlinked");
    assert_eq!(events[1].target, None);
    assert_eq!(events[0].target.as_deref(), Some(bob().masked().as_str()));
}

pub async fn persons_without_a_model_and_kept_photos(store: &dyn Store) {
    store
        .upsert_person(&alice(), &name("张三"), NOW)
        .await
        .unwrap();
    store
        .upsert_person(&bob(), &name("李四"), NOW)
        .await
        .unwrap();
    let mut old = portrait(1);
    old.model_id = "dlib-face-recognition-resnet-v1".to_owned();
    old.photo = Some(b"sealed photo".to_vec());
    store
        .add_portrait(&alice(), old.clone(), NOW)
        .await
        .unwrap();
    store.add_portrait(&bob(), old, NOW).await.unwrap();
    store.add_portrait(&bob(), portrait(2), NOW).await.unwrap();
    // Bob has a portrait of the new model, Alice only of the old one.
    let missing = store.persons_without_model("sface-2021dec").await.unwrap();
    assert_eq!(missing, vec![alice()]);
    assert!(store
        .persons_without_model("dlib-face-recognition-resnet-v1")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.kept_photos(&alice()).await.unwrap(),
        vec![b"sealed photo".to_vec()]
    );
    assert_eq!(store.kept_photos(&bob()).await.unwrap().len(), 1);
}

pub async fn key_fingerprints_are_claimed_once(store: &dyn Store) {
    assert_eq!(
        store
            .claim_key_fingerprint("audit", "aa", NOW)
            .await
            .unwrap(),
        "aa"
    );
    // A second node with another key learns the first one's fingerprint.
    assert_eq!(
        store
            .claim_key_fingerprint("audit", "bb", NOW)
            .await
            .unwrap(),
        "aa"
    );
    assert_eq!(
        store
            .claim_key_fingerprint("template", "cc", NOW)
            .await
            .unwrap(),
        "cc"
    );
}

pub async fn person_ids_are_listed_in_pages(store: &dyn Store) {
    assert!(store.list_person_ids(None, 10).await.unwrap().is_empty());
    for (id, n) in [(bob(), "李四"), (alice(), "张三")] {
        store.upsert_person(&id, &name(n), NOW).await.unwrap();
    }
    let all = store.list_person_ids(None, 10).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.contains(&alice()) && all.contains(&bob()));
    let first = store.list_person_ids(None, 1).await.unwrap();
    assert_eq!(first, all[..1]);
    let rest = store.list_person_ids(Some(&first[0]), 10).await.unwrap();
    assert_eq!(rest, all[1..]);
}

pub async fn the_registry_is_listed_and_found_by_exact_name(store: &dyn Store) {
    assert_eq!(store.count_persons().await.unwrap(), 0);
    store
        .enrol(
            &alice(),
            &name("张三"),
            vec![portrait(1), portrait(2)],
            None,
            NOW,
        )
        .await
        .unwrap();
    store
        .enrol(&bob(), &name("李四"), vec![], None, NOW + 1)
        .await
        .unwrap();
    assert_eq!(store.count_persons().await.unwrap(), 2);
    let page = store.persons_page(0, 10).await.unwrap();
    let listed: Vec<(IdNumber, u32)> = page
        .iter()
        .map(|p| (p.id_number.clone(), p.portraits))
        .collect();
    assert_eq!(listed, vec![(bob(), 0), (alice(), 2)], "newest first");
    assert_eq!(store.persons_page(1, 10).await.unwrap().len(), 1);
    assert!(store.persons_page(2, 10).await.unwrap().is_empty());

    let found = store.persons_named(&name("张三"), 10).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id_number, alice());
    assert!(
        store
            .persons_named(&name("张"), 10)
            .await
            .unwrap()
            .is_empty(),
        "exact only"
    );
    // A rename moves the lookup with it.
    store
        .rename_person(&alice(), &name("张四"), NOW + 2)
        .await
        .unwrap();
    assert!(store
        .persons_named(&name("张三"), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.persons_named(&name("张四"), 10).await.unwrap().len(),
        1
    );
}

pub async fn a_duplicate_scan_resumes_where_it_stopped(store: &dyn Store) {
    assert_eq!(store.duplicate_scan("sface-2021dec").await.unwrap(), None);
    let mut scan = renzheng_store::DuplicateScan {
        model_id: "sface-2021dec".into(),
        started_at: NOW,
        line_distance: 0.15,
        cursor: 500,
        findings: "[]".into(),
        updated_at: NOW,
    };
    store.save_duplicate_scan(&scan).await.unwrap();
    scan.cursor = 1000;
    scan.findings = "[[1,2,0.9,0.1]]".into();
    store.save_duplicate_scan(&scan).await.unwrap();
    assert_eq!(
        store.duplicate_scan("sface-2021dec").await.unwrap(),
        Some(scan)
    );
    assert_eq!(store.duplicate_scan("dlib-v1").await.unwrap(), None);
    store.end_duplicate_scan("sface-2021dec").await.unwrap();
    assert_eq!(store.duplicate_scan("sface-2021dec").await.unwrap(), None);
}
