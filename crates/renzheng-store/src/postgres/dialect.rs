//! What PostgreSQL does its own way, for the shared SQL layer (`src/sql/`): above all the
//! locking that lets several nodes share one database under READ COMMITTED, where each
//! statement sees what was committed when it started and a row another transaction is
//! updating is waited for and then re-checked (its own conditions only, not a
//! subquery's).

use sqlx::{Pool, Transaction};

use crate::StoreError;

/// The database the shared statements run on.
pub(super) type Db = sqlx::Postgres;

/// The store the shared SQL layer implements [`Store`](crate::Store) for.
pub(super) type Backend = super::PgStore;

/// Orders text by its bytes, whatever collation the database was created with (the
/// registry's pages and the listings must not depend on a locale).
pub(super) const BYTE_ORDER: &str = "COLLATE \"C\"";

/// The larger of two values.
pub(super) const GREATEST: &str = "GREATEST";

/// Deletes every hold lapsed at `$1` and returns each one's grant. `SKIP LOCKED`: a hold
/// being settled right now is the settling check's, and nodes reclaiming at once split
/// the lapsed holds instead of waiting on each other.
pub(super) const DELETE_LAPSED_HOLDS: &str = "DELETE FROM reservations WHERE id IN
       (SELECT id FROM reservations WHERE expires_at <= $1 FOR UPDATE SKIP LOCKED)
     RETURNING grant_id";

/// Serialises, until `tx` ends, everything that chooses a grant of `app_id` to take a unit
/// from: the next one to get the lock runs its statements on fresh snapshots, so it sees
/// the units taken before it and never finds a grant full that has room (or the reverse).
pub(super) async fn lock_app(tx: &mut Transaction<'_, Db>, app_id: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(app_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A transaction whose reads see one snapshot (READ COMMITTED would take one per
/// statement).
pub(super) async fn begin_snapshot(
    pool: &Pool<Db>,
) -> Result<Transaction<'static, Db>, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Nothing follows a person's removal on PostgreSQL: only SQLite's write-ahead log is
/// checkpointed by the store.
pub(super) async fn after_removal(_store: &Backend) {}
