//! What SQLite does its own way, for the shared SQL layer (`src/sql/`).

use sqlx::{Pool, Transaction};

use crate::StoreError;

/// The database the shared statements run on.
pub(super) type Db = sqlx::Sqlite;

/// The store the shared SQL layer implements [`Store`](crate::Store) for.
pub(super) type Backend = super::SqliteStore;

/// Orders text by its bytes: SQLite's default collation, named so that the shared
/// statements say what they mean on both databases.
pub(super) const BYTE_ORDER: &str = "COLLATE BINARY";

/// The larger of two values: SQLite's `MAX` with two arguments is a scalar function.
pub(super) const GREATEST: &str = "MAX";

/// Deletes every hold lapsed at `$1` and returns each one's grant. SQLite has one writer
/// at a time, so no check can be settling one of them meanwhile.
pub(super) const DELETE_LAPSED_HOLDS: &str =
    "DELETE FROM reservations WHERE expires_at <= $1 RETURNING grant_id";

/// Serialises the choice of a grant of `app_id` until `tx` ends: nothing to add on
/// SQLite, which has one writer at a time, and whose transactions that choose a grant
/// write first (the `UPDATE` that takes the unit), so they hold the write lock before
/// they read anything.
pub(super) async fn lock_app(
    _tx: &mut Transaction<'_, Db>,
    _app_id: &str,
) -> Result<(), StoreError> {
    Ok(())
}

/// A transaction whose reads see one snapshot: any SQLite transaction (it reads the
/// database as it was at its first read until it ends).
pub(super) async fn begin_snapshot(
    pool: &Pool<Db>,
) -> Result<Transaction<'static, Db>, StoreError> {
    Ok(pool.begin().await?)
}

/// After a person's removal, the write-ahead log is checkpointed, so that what the
/// deletion overwrote (`secure_delete`) does not linger in the log's older frames.
pub(super) async fn after_removal(store: &Backend) {
    store.checkpoint().await;
}
