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

    let (store, dir) = temp_store().await;
    let data = dir.path().join("data");
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
        )
        .await
        .unwrap();
    store
        .enrol(
            &kept,
            &PersonName::parse("张三丰").unwrap(),
            vec![portrait()],
        )
        .await
        .unwrap();
    let before = database_bytes(&data);
    assert!(contains(&before, "11010519491231002X") && contains(&before, "欧阳娜娜"));

    assert!(store.remove_person(&removed, b"key").await.unwrap());
    for (when, bytes) in [
        ("while open", database_bytes(&data)),
        ("after close", {
            store.close().await;
            database_bytes(&data)
        }),
    ] {
        assert!(!contains(&bytes, "11010519491231002X"), "ID number {when}");
        assert!(!contains(&bytes, "欧阳娜娜"), "name {when}");
        assert!(
            contains(&bytes, "440524198001010013"),
            "the others stay ({when})"
        );
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
