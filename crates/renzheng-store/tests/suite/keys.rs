//! Key records and the re-sealing of key rotations.

use renzheng_domain::IdNumber;
use renzheng_store::{AppCode, SealedData, Store, StoreError, TemplateKey};

use super::{alice, bits, bob, id, name, new_app, portrait, NOW};

const OLD: [u8; 32] = [1; 32];
const NEW: [u8; 32] = [2; 32];

/// A valid ID number from 17 digits (the check character computed).
fn with_check(id17: &str) -> IdNumber {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = id17
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    id(&format!("{id17}{check}"))
}

fn people() -> Vec<IdNumber> {
    let mut ids = vec![alice(), bob()];
    ids.extend((1..5).map(|i| with_check(&format!("4405241980010{i}001"))));
    ids
}

async fn count(store: &dyn Store, data: SealedData, key: &[u8]) -> u64 {
    let prefix = TemplateKey::from_bytes(key).unwrap().sealed_prefix();
    store.count_not_sealed_under(data, &prefix).await.unwrap()
}

pub async fn a_template_key_rotation_moves_every_person(store: &dyn Store) {
    store.set_template_key(TemplateKey::from_bytes(&OLD).unwrap());
    let people = people();
    // The first person's legal basis moves with them.
    let recorded = super::compliance::basis(renzheng_domain::BasisKind::Consent, "CF-1", NOW);
    for (i, person) in people.iter().enumerate() {
        let seed = i as u32 * 10;
        store
            .enrol_with_basis(
                person,
                &name("张三"),
                vec![portrait(seed), portrait(seed + 1)],
                (i == 0).then_some(&recorded),
                None,
                NOW,
            )
            .await
            .unwrap();
    }
    let version = store.registry_version().await.unwrap();
    let old_handle = store.person_handle(&alice());

    store.set_template_key(TemplateKey::ring(&NEW, &[&OLD]).unwrap());
    assert_eq!(count(store, SealedData::Identities, &NEW).await, 6);
    assert_eq!(count(store, SealedData::Templates, &NEW).await, 12);
    assert_eq!(count(store, SealedData::Identities, &OLD).await, 0);

    // A first batch moves two persons; everyone is found in the mixed state.
    let first = store.rekey_registry(None, 2).await.unwrap();
    assert_eq!((first.persons, first.templates), (2, 4));
    assert!(first.cursor.is_some());
    for (i, person) in people.iter().enumerate() {
        let record = store.get_person(person).await.unwrap().expect("found");
        assert_eq!(
            bits(&record.portraits[0].embedding),
            bits(&portrait(i as u32 * 10).embedding)
        );
    }
    // Writes meanwhile: a new person goes under the new key; a portrait added to a
    // person not moved yet stays with them under the old key, for the rotation to move.
    let late = with_check("33010619900307002");
    store
        .enrol(&late, &name("李四"), vec![portrait(99)], None, NOW)
        .await
        .unwrap();
    for person in &people {
        store.add_portrait(person, portrait(77), NOW).await.unwrap();
    }
    assert_eq!(
        store.persons_named(&name("张三"), 10).await.unwrap().len(),
        6,
        "found by name under either key"
    );

    let mut cursor = first.cursor;
    while let Some(after) = cursor {
        cursor = store.rekey_registry(Some(&after), 2).await.unwrap().cursor;
    }
    // A last pass from the start finds nothing left.
    let last = store.rekey_registry(None, 100).await.unwrap();
    assert_eq!((last.persons, last.templates), (0, 0));
    assert_eq!(last.cursor, None);
    assert_eq!(count(store, SealedData::Identities, &NEW).await, 0);
    assert_eq!(count(store, SealedData::Templates, &NEW).await, 0);

    // The in-memory indexes learn the moves: every moved portrait removed and added
    // again under its person's new handle.
    let changes = store
        .template_changes("sface-2021dec", version)
        .await
        .unwrap();
    let new_handle = store.person_handle(&alice());
    assert_ne!(new_handle, old_handle);
    assert!(changes
        .added
        .iter()
        .any(|t| t.id_number == alice() && t.owner == new_handle));
    assert!(changes.removed.len() >= 12);
    assert_eq!(
        store.person_by_handle(new_handle).await.unwrap(),
        Some(alice())
    );

    // The new key alone opens everything; the old key alone finds no one.
    store.set_template_key(TemplateKey::from_bytes(&NEW).unwrap());
    for (i, person) in people.iter().enumerate() {
        let record = store.get_person(person).await.unwrap().expect("found");
        assert_eq!(record.portraits.len(), 3);
        assert_eq!(
            bits(&record.portraits[1].embedding),
            bits(&portrait(i as u32 * 10 + 1).embedding)
        );
    }
    assert!(store.get_person(&late).await.unwrap().is_some());
    assert_eq!(
        store.get_person(&people[0]).await.unwrap().unwrap().basis,
        Some(recorded)
    );
    assert_eq!(store.count_persons().await.unwrap(), 7);
    store.set_template_key(TemplateKey::from_bytes(&OLD).unwrap());
    assert!(store.get_person(&alice()).await.unwrap().is_none());
}

pub async fn key_records_follow_rotations_and_retirements(store: &dyn Store) {
    store
        .claim_key_fingerprint("template", "aa", NOW)
        .await
        .unwrap();
    let record = store.key_record("template").await.unwrap().unwrap();
    assert_eq!((record.current.as_str(), record.previous), ("aa", None));
    assert_eq!(store.key_record("photo").await.unwrap(), None);

    store
        .begin_key_rotation("template", "aa", "bb", NOW)
        .await
        .unwrap();
    // Begun again (a resumed rotation): nothing changes.
    store
        .begin_key_rotation("template", "aa", "bb", NOW)
        .await
        .unwrap();
    let record = store.key_record("template").await.unwrap().unwrap();
    assert_eq!(record.current, "bb");
    assert_eq!(record.previous.as_deref(), Some("aa"));
    // The next rotation waits for the previous key's retirement.
    assert!(matches!(
        store.begin_key_rotation("template", "bb", "cc", NOW).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.retire_key("template", "zz", NOW).await,
        Err(StoreError::NotFound(_))
    ));
    store.retire_key("template", "aa", NOW).await.unwrap();
    let record = store.key_record("template").await.unwrap().unwrap();
    assert_eq!(record.previous, None);
    assert_eq!(record.retired, vec!["aa".to_owned()]);
    // A retired key never comes back.
    assert!(matches!(
        store.begin_key_rotation("template", "bb", "aa", NOW).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.begin_key_rotation("template", "xx", "yy", NOW).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .begin_key_rotation("template", "bb", "cc", NOW)
        .await
        .unwrap();
}

pub async fn sealed_secrets_and_photos_are_replaced_only_if_unchanged(store: &dyn Store) {
    let code = AppCode::generate();
    let app = store
        .create_app(&new_app("a", &code.hash()), NOW)
        .await
        .unwrap();
    let sealed = app.secret_sealed.clone().unwrap();
    let prefix = TemplateKey::from_bytes(&NEW).unwrap().sealed_prefix();
    assert_eq!(
        store
            .count_not_sealed_under(SealedData::AppSecrets, &prefix)
            .await
            .unwrap(),
        1
    );
    let mut resealed = prefix.clone();
    resealed.extend_from_slice(&[9; 40]);
    assert!(!store
        .reseal_app_secret(&app.id, b"not what is stored", &resealed)
        .await
        .unwrap());
    assert!(store
        .reseal_app_secret(&app.id, &sealed, &resealed)
        .await
        .unwrap());
    assert_eq!(
        store
            .count_not_sealed_under(SealedData::AppSecrets, &prefix)
            .await
            .unwrap(),
        0
    );

    store.set_template_key(TemplateKey::from_bytes(&OLD).unwrap());
    let mut with_photo = portrait(1);
    with_photo.photo = Some(vec![5; 30]);
    store
        .enrol(
            &alice(),
            &name("张三"),
            vec![with_photo, portrait(2)],
            None,
            NOW,
        )
        .await
        .unwrap();
    let photos = store.photos_not_sealed_under(&prefix, 0, 10).await.unwrap();
    assert_eq!(photos.len(), 1);
    assert_eq!(photos[0].id_number, alice());
    assert_eq!(photos[0].sealed, vec![5; 30]);
    let mut new_photo = prefix.clone();
    new_photo.extend_from_slice(&[6; 30]);
    assert!(store
        .reseal_photo(photos[0].portrait_id, &photos[0].sealed, &new_photo)
        .await
        .unwrap());
    assert!(!store
        .reseal_photo(photos[0].portrait_id, &photos[0].sealed, &new_photo)
        .await
        .unwrap());
    assert!(store
        .photos_not_sealed_under(&prefix, 0, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.kept_photos(&alice()).await.unwrap(), vec![new_photo]);
}
