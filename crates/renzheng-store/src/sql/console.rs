//! Console sessions (idle and absolute expiry are applied in SQL, on every read), the
//! one-time messages a session's redirected forms leave it, and the operator accounts
//! (the last owner is never removed nor demoted, decided under one lock across nodes).

use sqlx::Row;

use super::dialect::{self, Backend, Db};
use super::DbRow;
use crate::{
    ConsoleOperator, ConsoleSession, OperatorChange, OperatorRole, OperatorTotp, StoreError,
};

/// The lock key that serialises changes to the operator accounts (not an app: no app id
/// has a colon).
const OPERATORS_LOCK: &str = "console:operators";

/// The condition under which a change may take `$1`'s owner role away: it is not an
/// owner, or another owner remains.
const LEAVES_AN_OWNER: &str = "(role <> 'owner'
      OR (SELECT COUNT(*) FROM console_operators o WHERE o.role = 'owner' AND o.name <> $1) > 0)";

fn operator_from_row(row: &DbRow) -> Result<ConsoleOperator, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(ConsoleOperator {
        name: row.try_get("name")?,
        role: OperatorRole::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown operator role {role:?}")))?,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        totp: row
            .try_get::<Option<Vec<u8>>, _>("totp_sealed")?
            .map(|sealed| -> Result<OperatorTotp, StoreError> {
                Ok(OperatorTotp {
                    sealed,
                    enabled_at: row.try_get("totp_enabled_at")?,
                    last_step: row.try_get("totp_last_step")?,
                })
            })
            .transpose()?,
    })
}

/// Ends operator `name`'s sessions but the one of hash `keep` (`""`: all), in `tx`.
async fn end_sessions_but(
    tx: &mut sqlx::Transaction<'_, Db>,
    name: &str,
    keep: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM console_sessions WHERE operator = $1 AND token_hash <> $2")
        .bind(name)
        .bind(keep)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

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

    pub(super) async fn do_console_operators(&self) -> Result<Vec<ConsoleOperator>, StoreError> {
        sqlx::query(
            "SELECT name, role, password_hash, created_at, updated_at, totp_sealed,
                    totp_enabled_at, totp_last_step
             FROM console_operators ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(operator_from_row)
        .collect()
    }

    pub(super) async fn do_console_operator(
        &self,
        name: &str,
    ) -> Result<Option<ConsoleOperator>, StoreError> {
        sqlx::query(
            "SELECT name, role, password_hash, created_at, updated_at, totp_sealed,
                    totp_enabled_at, totp_last_step
             FROM console_operators WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(operator_from_row)
        .transpose()
    }

    pub(super) async fn do_add_console_operator(
        &self,
        o: &ConsoleOperator,
        only_if_none: bool,
    ) -> Result<bool, StoreError> {
        // One statement: two nodes seeding the first owner at once insert it once.
        let sql = if only_if_none {
            "INSERT INTO console_operators (name, role, password_hash, created_at, updated_at)
             SELECT $1, $2, $3, $4, $5
             WHERE NOT EXISTS (SELECT 1 FROM console_operators)
             ON CONFLICT (name) DO NOTHING"
        } else {
            "INSERT INTO console_operators (name, role, password_hash, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO NOTHING"
        };
        let done = sqlx::query(sql)
            .bind(&o.name)
            .bind(o.role.as_str())
            .bind(&o.password_hash)
            .bind(o.created_at)
            .bind(o.updated_at)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Runs `sql` (which takes the operator's name as `$1`, then `binds`) under the
    /// operators' lock: `Done` when it changed a row, else `NotFound` or `LastOwner`,
    /// whichever explains it. With `end_sessions`, the operator's sessions but the one of
    /// that hash (`""`: all of them) end in the same transaction.
    async fn change_operator(
        &self,
        name: &str,
        sql: &str,
        binds: (Option<&str>, Option<i64>),
        end_sessions: Option<&str>,
    ) -> Result<OperatorChange, StoreError> {
        let mut tx = self.pool.begin().await?;
        dialect::lock_app(&mut tx, OPERATORS_LOCK).await?;
        let mut query = sqlx::query(sql).bind(name);
        if let Some(text) = binds.0 {
            query = query.bind(text);
        }
        if let Some(at) = binds.1 {
            query = query.bind(at);
        }
        if query.execute(&mut *tx).await?.rows_affected() == 0 {
            let exists = sqlx::query("SELECT 1 AS one FROM console_operators WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            tx.rollback().await?;
            return Ok(if exists {
                OperatorChange::LastOwner
            } else {
                OperatorChange::NotFound
            });
        }
        if let Some(keep) = end_sessions {
            end_sessions_but(&mut tx, name, keep).await?;
        }
        tx.commit().await?;
        Ok(OperatorChange::Done)
    }

    pub(super) async fn do_set_console_operator_role(
        &self,
        name: &str,
        role: OperatorRole,
        now_ms: i64,
    ) -> Result<OperatorChange, StoreError> {
        let sql = format!(
            "UPDATE console_operators SET role = $2, updated_at = $3
             WHERE name = $1 AND ($2 = 'owner' OR {LEAVES_AN_OWNER})"
        );
        self.change_operator(name, &sql, (Some(role.as_str()), Some(now_ms)), None)
            .await
    }

    pub(super) async fn do_set_console_operator_password(
        &self,
        name: &str,
        password_hash: &str,
        now_ms: i64,
        keep_session: Option<&str>,
    ) -> Result<OperatorChange, StoreError> {
        self.change_operator(
            name,
            "UPDATE console_operators SET password_hash = $2, updated_at = $3 WHERE name = $1",
            (Some(password_hash), Some(now_ms)),
            Some(keep_session.unwrap_or("")),
        )
        .await
    }

    pub(super) async fn do_set_console_operator_totp(
        &self,
        name: &str,
        totp: Option<&OperatorTotp>,
        keep_session: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE console_operators
             SET totp_sealed = $2, totp_enabled_at = $3, totp_last_step = $4 WHERE name = $1",
        )
        .bind(name)
        .bind(totp.map(|t| t.sealed.as_slice()))
        .bind(totp.and_then(|t| t.enabled_at))
        .bind(totp.and_then(|t| t.last_step))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(keep) = keep_session {
            end_sessions_but(&mut tx, name, keep).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn do_take_totp_step(
        &self,
        name: &str,
        step: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE console_operators SET totp_last_step = $2
             WHERE name = $1 AND totp_enabled_at IS NOT NULL
               AND (totp_last_step IS NULL OR totp_last_step < $2)",
        )
        .bind(name)
        .bind(step)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn do_reseal_console_totp(
        &self,
        name: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE console_operators SET totp_sealed = $3 WHERE name = $1 AND totp_sealed = $2",
        )
        .bind(name)
        .bind(old)
        .bind(new)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn do_remove_console_operator(
        &self,
        name: &str,
    ) -> Result<OperatorChange, StoreError> {
        let sql = format!("DELETE FROM console_operators WHERE name = $1 AND {LEAVES_AN_OWNER}");
        self.change_operator(name, &sql, (None, None), Some(""))
            .await
    }
}
