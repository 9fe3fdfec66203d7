//! The legal basis recorded with a person's face, and the counts and marks of the
//! compliance status.

use renzheng_domain::{BasisKind, LegalBasis, Reference};
use renzheng_store::{
    AdminEvent, AuditEntry, BasisRecord, Processing, ProcessingAction, RetentionCutoffs, Store,
    StoreError,
};

use super::{alice, bob, name, portrait, AUDIT_KEY, NOW};

/// A basis of `kind` with `reference`, recorded at `at`.
pub(super) fn basis(kind: BasisKind, reference: &str, at: i64) -> BasisRecord {
    BasisRecord {
        basis: LegalBasis::new(
            kind,
            Reference::parse(reference, "consentRef").unwrap(),
            None,
        ),
        purpose: Reference::parse("identity verification", "purpose").unwrap(),
        recorded_at: at,
        actor: "cli".into(),
    }
}

pub async fn a_basis_is_stored_with_the_face_kept_and_renewed(store: &dyn Store) {
    let first = basis(BasisKind::Consent, "CF-1", NOW);
    store
        .enrol_with_basis(
            &alice(),
            &name("张三"),
            vec![portrait(1)],
            Some(&first),
            None,
            NOW,
        )
        .await
        .unwrap();
    let basis_of = |r: Option<renzheng_store::PersonRecord>| r.expect("enrolled").basis;
    assert_eq!(
        basis_of(store.get_person(&alice()).await.unwrap()),
        Some(first.clone())
    );
    // Adding a portrait without a basis keeps it.
    store
        .enrol(&alice(), &name("张三"), vec![portrait(2)], None, NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        basis_of(store.get_person(&alice()).await.unwrap()),
        Some(first.clone())
    );
    // A write refused (stale) writes no basis either.
    let stale = basis(BasisKind::Law, "a statute", NOW + 2);
    let version = store.registry_version().await.unwrap();
    assert!(matches!(
        store
            .enrol_with_basis(
                &alice(),
                &name("张三"),
                vec![portrait(3)],
                Some(&stale),
                Some(version - 1),
                NOW + 2,
            )
            .await,
        Err(StoreError::Stale)
    ));
    assert_eq!(
        basis_of(store.get_person(&alice()).await.unwrap()),
        Some(first.clone())
    );
    // A replacement keeps it, or renews it, in its transaction.
    store
        .replace_portraits(&alice(), vec![portrait(4)], None, NOW + 3)
        .await
        .unwrap();
    assert_eq!(
        basis_of(store.get_person(&alice()).await.unwrap()),
        Some(first)
    );
    let mut renewed = basis(BasisKind::Contract, "CT-9", NOW + 4);
    renewed.basis = LegalBasis::new(
        BasisKind::Contract,
        Reference::parse("CT-9", "consentRef").unwrap(),
        Some(Reference::parse("GC-9", "guardianConsentRef").unwrap()),
    );
    store
        .replace_portraits_with_basis(&alice(), vec![portrait(5)], Some(&renewed), None, NOW + 4)
        .await
        .unwrap();
    assert_eq!(
        basis_of(store.get_person(&alice()).await.unwrap()),
        Some(renewed)
    );
    // Recorded on its own, after the fact.
    let law = basis(BasisKind::Law, "反恐怖主义法 第二十一条", NOW + 5);
    store.record_basis(&alice(), &law).await.unwrap();
    assert_eq!(
        basis_of(store.get_person(&alice()).await.unwrap()),
        Some(law.clone())
    );
    assert!(matches!(
        store.record_basis(&bob(), &law).await,
        Err(StoreError::NotFound(_))
    ));
    // Removing the person removes it.
    assert!(store.remove_person(&alice(), &[]).await.unwrap());
    store
        .enrol(&alice(), &name("张三"), vec![], None, NOW + 6)
        .await
        .unwrap();
    assert_eq!(basis_of(store.get_person(&alice()).await.unwrap()), None);
}

pub async fn compliance_counts_persons_with_face_data_and_marks_lines(store: &dyn Store) {
    let empty = store.compliance_counts().await.unwrap();
    assert_eq!(
        (
            empty.persons_with_face_data,
            empty.persons_without_basis,
            empty.oldest_face_data_at
        ),
        (0, 0, None)
    );
    assert_eq!(store.face_data_reached(1).await.unwrap(), None);
    // Alice: a face and a basis, first portrait at NOW; Bob: a face, no basis, at NOW + 10;
    // Carol: no face.
    store
        .enrol_with_basis(
            &alice(),
            &name("张三"),
            vec![portrait(1)],
            Some(&basis(BasisKind::Consent, "CF-1", NOW)),
            None,
            NOW,
        )
        .await
        .unwrap();
    store
        .enrol(&alice(), &name("张三"), vec![portrait(2)], None, NOW + 20)
        .await
        .unwrap();
    store
        .enrol(&bob(), &name("李四"), vec![portrait(3)], None, NOW + 10)
        .await
        .unwrap();
    let carol = super::id("440106198503020014");
    store
        .enrol(&carol, &name("王五"), vec![], None, NOW + 30)
        .await
        .unwrap();
    let counts = store.compliance_counts().await.unwrap();
    assert_eq!(
        (
            counts.persons_with_face_data,
            counts.persons_without_basis,
            counts.oldest_face_data_at
        ),
        (2, 1, Some(NOW))
    );
    // The n-th earliest first portrait among the persons held now.
    assert_eq!(store.face_data_reached(1).await.unwrap(), Some(NOW));
    assert_eq!(store.face_data_reached(2).await.unwrap(), Some(NOW + 10));
    assert_eq!(store.face_data_reached(3).await.unwrap(), None);
    assert_eq!(store.face_data_reached(0).await.unwrap(), None);

    // A mark is set once (the first date stands), and cleared.
    assert_eq!(store.compliance_mark("filing:2").await.unwrap(), None);
    store
        .set_compliance_mark("filing:2", Some(NOW + 10))
        .await
        .unwrap();
    store
        .set_compliance_mark("filing:2", Some(NOW + 99))
        .await
        .unwrap();
    assert_eq!(
        store.compliance_mark("filing:2").await.unwrap(),
        Some(NOW + 10)
    );
    assert_eq!(store.compliance_mark("filing:3").await.unwrap(), None);
    store.set_compliance_mark("filing:2", None).await.unwrap();
    assert_eq!(store.compliance_mark("filing:2").await.unwrap(), None);
}

/// A person's trail for an access request: their checks and the events about them, under
/// every audit key in force, newest first, nobody else's.
pub async fn a_persons_trail_is_found_by_their_keyed_hashes(store: &dyn Store) {
    const OLD_KEY: &[u8] = b"an older audit key";
    let hashes = [alice().keyed_hash(AUDIT_KEY), alice().keyed_hash(OLD_KEY)];
    for (at, request, key) in [
        (1, "a-old", OLD_KEY),
        (2, "a-1", AUDIT_KEY),
        (3, "a-2", AUDIT_KEY),
    ] {
        let entry = AuditEntry::new(at, request, 200, 1).with_id_number(&alice(), key);
        store.record_audit(&entry).await.unwrap();
    }
    let bobs = AuditEntry::new(4, "b-1", 200, 1).with_id_number(&bob(), AUDIT_KEY);
    store.record_audit(&bobs).await.unwrap();
    store
        .record_event(
            &AdminEvent::new(5, "cli", "person.enrolled").about_person(&alice(), AUDIT_KEY),
        )
        .await
        .unwrap();
    store
        .record_event(&AdminEvent::new(6, "cli", "person.enrolled").about_person(&bob(), AUDIT_KEY))
        .await
        .unwrap();
    store
        .record_event(&AdminEvent::new(7, "cli", "app.created"))
        .await
        .unwrap();

    let (checks, events) = store.person_trail(&hashes, 10).await.unwrap();
    let requests: Vec<&str> = checks.iter().map(|c| c.request_id.as_str()).collect();
    assert_eq!(requests, ["a-2", "a-1", "a-old"]);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].at, events[0].action.as_str()),
        (5, "person.enrolled")
    );
    // The limit holds across keys.
    let (checks, _) = store.person_trail(&hashes, 2).await.unwrap();
    assert_eq!(checks.len(), 2);
    assert_eq!(checks[0].request_id, "a-2");
    // After a removal, nothing leads back to the person.
    assert!(store.person_trail(&hashes[..1], 10).await.unwrap().0.len() == 2);
    store
        .remove_person(&alice(), &[AUDIT_KEY, OLD_KEY])
        .await
        .unwrap();
    let (checks, events) = store.person_trail(&hashes, 10).await.unwrap();
    assert!(checks.is_empty() && events.is_empty());
}

pub async fn retention_finds_persons_due_and_records_outlive_them(store: &dyn Store) {
    const DAY: i64 = 86_400_000;
    // Alice enrolled 400 days ago, her basis renewed 10 days ago; Bob enrolled 40 days ago
    // and never checked.
    store
        .enrol_with_basis(
            &alice(),
            &name("张三"),
            vec![portrait(1)],
            Some(&basis(BasisKind::Consent, "CF-1", NOW - 400 * DAY)),
            None,
            NOW - 400 * DAY,
        )
        .await
        .unwrap();
    store
        .record_basis(&alice(), &basis(BasisKind::Consent, "CF-2", NOW - 10 * DAY))
        .await
        .unwrap();
    store
        .enrol(
            &bob(),
            &name("李四"),
            vec![portrait(2)],
            None,
            NOW - 40 * DAY,
        )
        .await
        .unwrap();
    let due = |enrolled_days: Option<i64>, inactive_days: Option<i64>| RetentionCutoffs {
        enrolled_before: enrolled_days.map(|d| NOW - d * DAY),
        inactive_before: inactive_days.map(|d| NOW - d * DAY),
    };
    let ids = |persons: Vec<renzheng_store::DuePerson>| {
        let mut ids: Vec<String> = persons
            .into_iter()
            .map(|p| p.id_number.as_str().to_owned())
            .collect();
        ids.sort();
        ids
    };
    // Off: nobody. A renewed basis restarts the retention: only Bob is past 30 days.
    assert!(store
        .persons_due(RetentionCutoffs::default(), None, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .count_persons_due(RetentionCutoffs::default())
            .await
            .unwrap()
            .persons,
        0
    );
    assert_eq!(
        ids(store
            .persons_due(due(Some(30), None), None, 10)
            .await
            .unwrap()),
        [bob().as_str()]
    );
    // Inactivity counts from the enrolment when never checked; a check restarts it.
    assert_eq!(
        ids(store
            .persons_due(due(None, Some(30)), None, 10)
            .await
            .unwrap())
        .len(),
        2
    );
    store
        .note_person_checked(&alice(), NOW - DAY)
        .await
        .unwrap();
    // Never backwards.
    store
        .note_person_checked(&alice(), NOW - 5 * DAY)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_person(&alice())
            .await
            .unwrap()
            .unwrap()
            .last_checked_at,
        Some(NOW - DAY)
    );
    assert_eq!(
        ids(store
            .persons_due(due(None, Some(30)), None, 10)
            .await
            .unwrap()),
        [bob().as_str()]
    );
    let counted = store
        .count_persons_due(due(Some(500), Some(30)))
        .await
        .unwrap();
    assert_eq!(
        (counted.persons, counted.oldest_enrolled_at),
        (1, Some(NOW - 40 * DAY))
    );
    // Paging by the cursor reaches everyone once.
    let all = due(None, Some(0));
    let first = store.persons_due(all, None, 1).await.unwrap();
    let second = store
        .persons_due(all, Some(&first[0].id_number), 1)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_ne!(first[0].id_number, second[0].id_number);
    assert!(store
        .persons_due(all, Some(&second[0].id_number), 1)
        .await
        .unwrap()
        .is_empty());
    // A check of someone removed is no error.
    store
        .note_person_checked(&id_of_nobody(), NOW)
        .await
        .unwrap();

    // The processing records: written with the check and the event, kept after removal,
    // masked and keyed; purged by their own retention.
    let mut check = AuditEntry::new(NOW - 2 * DAY, "r-1", 200, 1).with_id_number(&bob(), AUDIT_KEY);
    check.result = Some(1);
    check.processing = Some(Processing::about(
        ProcessingAction::Checked,
        &bob(),
        AUDIT_KEY,
        None,
    ));
    store.record_audit(&check).await.unwrap();
    let mut removed = AdminEvent::new(NOW, "cli", "person.removed");
    removed.processing = Some(Processing::about(
        ProcessingAction::Removed,
        &bob(),
        AUDIT_KEY,
        Some(BasisKind::Law),
    ));
    store.remove_person(&bob(), &[AUDIT_KEY]).await.unwrap();
    store.record_event(&removed).await.unwrap();
    let records = store
        .processing_records(NOW - 3 * DAY, NOW + 1, 0, 10)
        .await
        .unwrap();
    let seen: Vec<_> = records
        .iter()
        .map(|r| (r.action, r.actor.as_str(), r.basis, r.result))
        .collect();
    assert_eq!(
        seen,
        [
            (ProcessingAction::Checked, "console", None, Some(1)),
            (ProcessingAction::Removed, "cli", Some(BasisKind::Law), None),
        ]
    );
    for record in &records {
        assert_eq!(record.person_masked, bob().masked());
        assert_eq!(record.person_hash, bob().keyed_hash(AUDIT_KEY));
    }
    // The person's own, newest first, by their keyed hash.
    let theirs = store
        .person_processing(
            &[bob().keyed_hash(AUDIT_KEY), alice().keyed_hash(AUDIT_KEY)],
            10,
        )
        .await
        .unwrap();
    let actions: Vec<_> = theirs.iter().map(|r| r.action).collect();
    assert_eq!(
        actions,
        [ProcessingAction::Removed, ProcessingAction::Checked]
    );
    // Ranges are half-open; pages follow the cursor.
    assert_eq!(
        store
            .processing_records(NOW - 3 * DAY, NOW, 0, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .processing_records(NOW - 3 * DAY, NOW + 1, records[0].id, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.purge_processing_before(NOW - DAY).await.unwrap(), 1);
    assert_eq!(
        store
            .processing_records(0, NOW + 1, 0, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

fn id_of_nobody() -> renzheng_domain::IdNumber {
    renzheng_domain::IdNumber::parse("440308199001011239").unwrap()
}
