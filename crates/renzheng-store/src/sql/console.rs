//! Console sessions (idle and absolute expiry are applied in SQL, on every read) and the
//! one-time messages a session's redirected forms leave it.

use sqlx::Row;

use super::dialect::Backend;
use super::DbRow;
use crate::{ConsoleSession, StoreError};

fn session_from_row(row: &DbRow) -> Result<ConsoleSession, StoreError> {
    Ok(ConsoleSession {
        token_hash: row.try_get("token_hash")?,
        operator: row.try_get("operator")?,
        csrf: row.try_get("csrf")?,
        created_at: row.try_get("created_at")?,
        idle_until: row.try_get("idle_until")?,
        ends_at: row.try_get("ends_at")?,
    })
}

impl Backend {
    pub(super) async fn do_create_console_session(
        &self,
        s: &ConsoleSession,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, operator, csrf, created_at, idle_until, ends_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.token_hash)
        .bind(&s.operator)
        .bind(&s.csrf)
        .bind(s.created_at)
        .bind(s.idle_until)
        .bind(s.ends_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn do_touch_console_session(
        &self,
        token_hash: &str,
        now_ms: i64,
        idle_ms: i64,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        // One statement: a lapsed session can never be renewed by a racing request.
        sqlx::query(
            "UPDATE console_sessions
             SET idle_until = CASE WHEN $2 + $3 < ends_at THEN $2 + $3 ELSE ends_at END
             WHERE token_hash = $1 AND idle_until > $2 AND ends_at > $2
             RETURNING token_hash, operator, csrf, created_at, idle_until, ends_at",
        )
        .bind(token_hash)
        .bind(now_ms)
        .bind(idle_ms)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(session_from_row)
        .transpose()
    }

    pub(super) async fn do_end_console_session(
        &self,
        token_hash: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn do_console_sessions_of(
        &self,
        operator: &str,
        now_ms: i64,
    ) -> Result<Vec<ConsoleSession>, StoreError> {
        sqlx::query(
            "SELECT token_hash, operator, csrf, created_at, idle_until, ends_at
             FROM console_sessions
             WHERE operator = $1 AND idle_until > $2 AND ends_at > $2
             ORDER BY created_at DESC, token_hash",
        )
        .bind(operator)
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(session_from_row)
        .collect()
    }

    pub(super) async fn do_end_operator_session(
        &self,
        operator: &str,
        token_hash: &str,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM console_sessions WHERE operator = $1 AND token_hash = $2")
                .bind(operator)
                .bind(token_hash)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn purge_console_sessions(&self, now_ms: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM console_sessions WHERE idle_until <= $1 OR ends_at <= $1")
                .bind(now_ms)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    pub(super) async fn purge_console_flashes(&self, now_ms: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM console_flashes WHERE expires_at <= $1")
                .bind(now_ms)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    pub(super) async fn do_put_console_flash(
        &self,
        id_hash: &str,
        session_hash: &str,
        sealed: &[u8],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_flashes (id_hash, session_hash, sealed, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(id_hash)
        .bind(session_hash)
        .bind(sealed)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn do_take_console_flash(
        &self,
        id_hash: &str,
        session_hash: &str,
        now_ms: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        // One statement: two tabs racing for the same message cannot both get it. An
        // expired one is deleted too (it is of no use) but not returned.
        let row = sqlx::query(
            "DELETE FROM console_flashes WHERE id_hash = $1 AND session_hash = $2
             RETURNING sealed, expires_at",
        )
        .bind(id_hash)
        .bind(session_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_at: i64 = row.try_get("expires_at")?;
        if expires_at <= now_ms {
            return Ok(None);
        }
        Ok(Some(row.try_get("sealed")?))
    }
}
