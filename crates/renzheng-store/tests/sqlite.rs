//! The store contract, run against SQLite in a real file.

mod suite;

use renzheng_store::SqliteStore;
use tempfile::TempDir;

/// A fresh database file in its own temporary directory (a nested path, so
/// that `open` has to create directories).
async fn temp_store() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(dir.path().join("data").join("renzheng.db"))
        .await
        .expect("open SQLite store");
    (store, dir)
}

suite::store_suite!(temp_store());
