//! The store contract, run against SQLite in a real file.

mod suite;

use renzheng_store::SqliteStore;
use tempfile::TempDir;

/// A fresh database file in its own temporary directory (a nested path, so
/// that `open` has to create directories).
async fn temp_store() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(
        dir.path().join("data").join("renzheng.db"),
        renzheng_store::TemplateKey::random(),
    )
    .await
    .expect("open SQLite store");
    (store, dir)
}

suite::store_suite!(temp_store());

/// Every byte of the database's files (database, write-ahead log, shared memory).
fn database_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = dir.join(format!("renzheng.db{suffix}"));
        if let Ok(bytes) = std::fs::read(&path) {
            all.extend(bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_removed_person_is_gone_from_the_database_files() {
    use renzheng_domain::{IdNumber, PersonName};
    use renzheng_store::{NewPortrait, Store};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = renzheng_store::TemplateKey::from_bytes(&[3u8; 32]).unwrap();
    let store = SqliteStore::open(data.join("renzheng.db"), key.clone())
        .await
        .unwrap();
    let removed = IdNumber::parse("11010519491231002X").unwrap();
    let kept = IdNumber::parse("440524198001010013").unwrap();
    let portrait = || NewPortrait {
        model_id: "m".into(),
        embedding: vec![0.25; 128],
        quality: None,
        photo: None,
    };
    store
        .enrol(
            &removed,
            &PersonName::parse("欧阳娜娜").unwrap(),
            vec![portrait()],
            None,
            0,
        )
        .await
        .unwrap();
    store
        .enrol(
            &kept,
            &PersonName::parse("张三丰").unwrap(),
            vec![portrait()],
            None,
            0,
        )
        .await
        .unwrap();
    // At rest the registry holds identities only sealed, found by keyed hashes.
    let before = database_bytes(&data);
    for clear in [
        "11010519491231002X",
        "欧阳娜娜",
        "440524198001010013",
        "张三丰",
    ] {
        assert!(!contains(&before, clear), "{clear} stored in clear");
    }
    let (removed_key, kept_key) = (
        key.person_key(removed.as_str()),
        key.person_key(kept.as_str()),
    );
    assert!(contains(&before, &removed_key) && contains(&before, &kept_key));

    assert!(store.remove_person(&removed, &[b"key"]).await.unwrap());
    for (when, bytes) in [
        ("while open", database_bytes(&data)),
        ("after close", {
            store.close().await;
            database_bytes(&data)
        }),
    ] {
        assert!(!contains(&bytes, &removed_key), "registry key {when}");
        assert!(!contains(&bytes, "11010519491231002X"), "ID number {when}");
        assert!(!contains(&bytes, "欧阳娜娜"), "name {when}");
        assert!(contains(&bytes, &kept_key), "the others stay ({when})");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_is_private_to_its_user() {
    use renzheng_store::Store;
    use std::os::unix::fs::PermissionsExt;
    let (store, dir) = temp_store().await;
    store.ping().await.unwrap();
    let mode = |p: std::path::PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let data = dir.path().join("data");
    assert_eq!(mode(data.clone()), 0o700);
    for suffix in ["", "-wal", "-shm"] {
        let file = data.join(format!("renzheng.db{suffix}"));
        if file.exists() {
            assert_eq!(mode(file), 0o600, "renzheng.db{suffix}");
        }
    }
}
