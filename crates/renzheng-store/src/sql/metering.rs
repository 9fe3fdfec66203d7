//! Metering, limits, history and alerts, for both databases.
//!
//! Every rule that must hold under concurrency (across nodes, on PostgreSQL) is one
//! statement or one transaction:
//!
//! * a reservation is a single `UPDATE … WHERE used + reserved < calls` on the grant
//!   chosen inside it, after `dialect::lock_app` (on SQLite the transaction's first
//!   statement writes, so it holds the one write lock before it reads anything; on
//!   PostgreSQL an advisory lock on the app makes the reservations of one app run one
//!   after the other, each seeing the units the previous one took);
//!   `used + reserved <= calls` stays the database's backstop;
//! * a charge is written with its audit row in one transaction;
//! * counters (rate, attempts, nonces, alerts) are single `INSERT … ON CONFLICT`
//!   upserts guarded by their limit, atomic on the row.

use std::collections::BTreeMap;

use sqlx::{Row, Transaction};

use super::dialect::{self, Backend, Db, DELETE_LAPSED_HOLDS, GREATEST};
use super::{audit_from_row, DbRow};
use crate::{
    AlertKind, AlertRecord, AppId, AttemptWindow, AuditEntry, AuditQuery, AuditRecord, Balance,
    Grant, GrantChange, GrantChanged, NewAlert, Package, QuotaRefusal, Reconciliation,
    ReservationId, Reserved, Settle, StoreError, UsageRow,
};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

pub(super) fn package_from_row(row: &DbRow) -> Result<Package, StoreError> {
    Ok(Package {
        name: row.try_get("name")?,
        title: row.try_get("title")?,
        calls: row.try_get("calls")?,
        price_fen: row.try_get("price_fen")?,
        valid_days: row.try_get("valid_days")?,
        active: row.try_get("active")?,
    })
}

fn grant_from_row(row: &DbRow) -> Result<Grant, StoreError> {
    Ok(Grant {
        id: row.try_get("id")?,
        app_id: AppId::from(row.try_get::<String, _>("app_id")?),
        package: row.try_get("package")?,
        calls: row.try_get("calls")?,
        used: row.try_get("used")?,
        reserved: row.try_get("reserved")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn alert_from_row(row: &DbRow) -> Result<AlertRecord, StoreError> {
    let kind: String = row.try_get("kind")?;
    Ok(AlertRecord {
        id: row.try_get("id")?,
        alert: NewAlert {
            at: row.try_get("at")?,
            app_id: AppId::from(row.try_get::<String, _>("app_id")?),
            kind: AlertKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("alert kind {kind:?}")))?,
            period: row.try_get("period")?,
            remaining: row.try_get("remaining")?,
            purchased: row.try_get("purchased")?,
        },
        delivered_at: row.try_get("delivered_at")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
    })
}

fn usage_from_row(row: &DbRow) -> Result<UsageRow, StoreError> {
    Ok(UsageRow {
        day: row.try_get("day")?,
        result: row.try_get("result")?,
        calls: row.try_get("calls")?,
        succeeded: row.try_get("succeeded")?,
        charged: row.try_get("charged")?,
    })
}

/// The grant units are taken from: unexpired, with room, the one expiring first
/// (never-expiring grants last).
const NEXT_GRANT: &str = "SELECT id FROM grants
     WHERE app_id = $1 AND (expires_at IS NULL OR expires_at > $2) AND revoked_at IS NULL
       AND used + reserved < calls
     ORDER BY expires_at IS NULL, expires_at, id LIMIT 1";

async fn insert_audit(
    tx: &mut Transaction<'_, Db>,
    entry: &AuditEntry,
    charged: bool,
) -> Result<(), StoreError> {
    let latency_ms = i64::try_from(entry.latency_ms).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO audit (at, request_id, app_id, name_masked, id_masked, id_hash,
                            result, score, http_status, latency_ms, error_code, charged)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(entry.at)
    .bind(&entry.request_id)
    .bind(entry.app_id.as_ref().map(AppId::as_str))
    .bind(entry.name_masked.as_deref())
    .bind(entry.id_masked.as_deref())
    .bind(entry.id_hash.as_deref())
    .bind(entry.result)
    .bind(entry.score)
    .bind(i64::from(entry.http_status))
    .bind(latency_ms)
    .bind(entry.error_code.as_deref())
    .bind(charged)
    .execute(&mut **tx)
    .await?;
    if let Some(processing) = &entry.processing {
        // A check's actor is its app (or the console, which checks as no app).
        let actor = entry
            .app_id
            .as_ref()
            .map_or_else(|| "console".to_owned(), |a| format!("app:{a}"));
        super::compliance::insert_processing(&mut **tx, processing, entry.at, &actor, entry.result)
            .await?;
    }
    Ok(())
}

/// Gives a held unit back to its grant; whether the hold still existed.
async fn drop_hold(
    tx: &mut Transaction<'_, Db>,
    id: ReservationId,
    charge: bool,
) -> Result<Option<i64>, StoreError> {
    let grant: Option<i64> =
        sqlx::query_scalar("DELETE FROM reservations WHERE id = $1 RETURNING grant_id")
            .bind(id.0)
            .fetch_optional(&mut **tx)
            .await?;
    if let Some(grant) = grant {
        let sql = if charge {
            "UPDATE grants SET reserved = reserved - 1, used = used + 1 WHERE id = $1"
        } else {
            "UPDATE grants SET reserved = reserved - 1 WHERE id = $1"
        };
        sqlx::query(sql).bind(grant).execute(&mut **tx).await?;
    }
    Ok(grant)
}

/// The longest interval between two requests a rate limit may have, in µs (a year), and
/// the widest burst window (2^50 µs, ~36 years). Times are µs since 1970 (~2^51 today), so
/// every sum the limiter computes stays far inside i64: SQLite turns an overflowing integer
/// sum into a REAL, which then fails to read back, and every check of the app failed.
const MAX_INTERVAL_US: i64 = 365 * 24 * 3600 * 1_000_000;
const MAX_WINDOW_US: i64 = 1 << 50;

impl Backend {
    pub(super) async fn do_grant(
        &self,
        app_id: &AppId,
        package: Option<&str>,
        calls: i64,
        expires_at: Option<i64>,
        now_ms: i64,
    ) -> Result<Grant, StoreError> {
        if calls <= 0 {
            return Err(StoreError::Invalid("a grant adds at least one call".into()));
        }
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO grants (app_id, package, calls, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING *",
        )
        .bind(app_id.as_str())
        .bind(package)
        .bind(calls)
        .bind(expires_at)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::from_write(e, "grant", "app"))?;
        let grant = grant_from_row(&row)?;
        sqlx::query(
            "INSERT INTO ledger (at, app_id, grant_id, kind, calls) VALUES ($1, $2, $3, 'grant', $4)",
        )
        .bind(now_ms)
        .bind(app_id.as_str())
        .bind(grant.id)
        .bind(calls)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(grant)
    }

    pub(super) async fn do_change_grant(
        &self,
        app_id: &AppId,
        grant_id: i64,
        change: GrantChange,
        now_ms: i64,
    ) -> Result<GrantChanged, StoreError> {
        let mut tx = self.pool.begin().await?;
        dialect::lock_app(&mut tx, app_id.as_str()).await?;
        // A write that changes nothing, to read the grant: on SQLite it takes the write
        // lock before anything is read, on PostgreSQL it locks the row.
        let row = sqlx::query(
            "UPDATE grants SET calls = calls WHERE id = $1 AND app_id = $2 RETURNING *",
        )
        .bind(grant_id)
        .bind(app_id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(GrantChanged::NotFound);
        };
        let before = grant_from_row(&row)?;
        if before.revoked_at.is_some() {
            return Ok(GrantChanged::Revoked);
        }
        let committed = before.used + before.reserved;
        let (calls, expires_at, revoked_at, kind) = match change {
            GrantChange::Revoke => (before.calls, before.expires_at, Some(now_ms), "revoke"),
            GrantChange::Adjust { calls, expires_at } => {
                let calls = calls.unwrap_or(before.calls);
                if calls < committed.max(1) {
                    return Ok(GrantChanged::BelowCommitted {
                        floor: committed.max(1),
                    });
                }
                (
                    calls,
                    expires_at.unwrap_or(before.expires_at),
                    None,
                    "adjust",
                )
            }
        };
        let row = sqlx::query(
            "UPDATE grants SET calls = $1, expires_at = $2, revoked_at = $3 WHERE id = $4
             RETURNING *",
        )
        .bind(calls)
        .bind(expires_at)
        .bind(revoked_at)
        .bind(grant_id)
        .fetch_one(&mut *tx)
        .await?;
        let after = grant_from_row(&row)?;
        // What the balance gained or lost: a revocation takes back what was neither
        // charged nor held.
        let delta = match change {
            GrantChange::Revoke => committed - before.calls,
            GrantChange::Adjust { .. } => after.calls - before.calls,
        };
        if delta != 0 {
            sqlx::query(
                "INSERT INTO ledger (at, app_id, grant_id, kind, calls) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(now_ms)
            .bind(app_id.as_str())
            .bind(grant_id)
            .bind(kind)
            .bind(delta)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(GrantChanged::Done {
            before: Box::new(before),
            after: Box::new(after),
        })
    }

    pub(super) async fn do_balance(
        &self,
        app_id: &AppId,
        now_ms: i64,
    ) -> Result<Balance, StoreError> {
        let grants = sqlx::query(
            "SELECT * FROM grants WHERE app_id = $1 ORDER BY expires_at IS NULL, expires_at, id",
        )
        .bind(app_id.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(grant_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        let live = grants.iter().filter(|g| g.live_at(now_ms));
        Ok(Balance {
            remaining: live.clone().map(Grant::available).sum(),
            purchased: live.map(|g| g.calls).sum(),
            charged: grants.iter().map(|g| g.used).sum(),
            reserved: grants.iter().map(|g| g.reserved).sum(),
            grants,
        })
    }

    pub(super) async fn do_reserve_unit(
        &self,
        app_id: &AppId,
        now_ms: i64,
        hold_ms: i64,
    ) -> Result<Reserved, StoreError> {
        let mut tx = self.pool.begin().await?;
        dialect::lock_app(&mut tx, app_id.as_str()).await?;
        let sql = format!(
            "UPDATE grants SET reserved = reserved + 1 WHERE id = ({NEXT_GRANT}) RETURNING id"
        );
        let grant: Option<i64> = sqlx::query_scalar(&sql)
            .bind(app_id.as_str())
            .bind(now_ms)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(grant) = grant else {
            let expired_left: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM grants WHERE app_id = $1 AND expires_at <= $2
                                AND revoked_at IS NULL AND used + reserved < calls)",
            )
            .bind(app_id.as_str())
            .bind(now_ms)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Reserved::Refused(if expired_left {
                QuotaRefusal::Expired
            } else {
                QuotaRefusal::Exhausted
            }));
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO reservations (grant_id, app_id, expires_at, created_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(grant)
        .bind(app_id.as_str())
        .bind(now_ms.saturating_add(hold_ms))
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Reserved::Held(ReservationId(id)))
    }

    pub(super) async fn do_finish_check(
        &self,
        entry: &AuditEntry,
        settle: Settle,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let charged_grant = match settle {
            Settle::Nothing => None,
            Settle::Release(id) => {
                drop_hold(&mut tx, id, false).await?;
                None
            }
            Settle::Charge(id) => match drop_hold(&mut tx, id, true).await? {
                Some(grant) => Some(grant),
                None => {
                    // The hold lapsed and was reclaimed (the check outlived it): take the
                    // unit afresh if one is left.
                    let app_id = entry.app_id.as_ref().map(AppId::as_str).unwrap_or("");
                    dialect::lock_app(&mut tx, app_id).await?;
                    let sql = format!(
                        "UPDATE grants SET used = used + 1 WHERE id = ({NEXT_GRANT}) RETURNING id"
                    );
                    let grant: Option<i64> = sqlx::query_scalar(&sql)
                        .bind(app_id)
                        .bind(entry.at)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if grant.is_none() {
                        tracing::warn!(
                            request_id = %entry.request_id,
                            "a check outlived its reservation and no unit was left: not charged"
                        );
                    }
                    grant
                }
            },
        };
        if let Some(grant) = charged_grant {
            sqlx::query(
                "INSERT INTO ledger (at, app_id, grant_id, kind, calls, request_id)
                 VALUES ($1, $2, $3, 'charge', 1, $4)",
            )
            .bind(entry.at)
            .bind(entry.app_id.as_ref().map(AppId::as_str))
            .bind(grant)
            .bind(&entry.request_id)
            .execute(&mut *tx)
            .await?;
        }
        insert_audit(&mut tx, entry, charged_grant.is_some()).await?;
        tx.commit().await?;
        Ok(charged_grant.is_some())
    }

    pub(super) async fn do_record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_audit(&mut tx, entry, false).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn do_reclaim(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let grants: Vec<i64> = sqlx::query_scalar(DELETE_LAPSED_HOLDS)
            .bind(now_ms)
            .fetch_all(&mut *tx)
            .await?;
        let mut per_grant = BTreeMap::<i64, i64>::new();
        for grant in &grants {
            *per_grant.entry(*grant).or_default() += 1;
        }
        // In grant order, so that two reclaiming nodes lock grants in the same order.
        for (grant, units) in &per_grant {
            sqlx::query("UPDATE grants SET reserved = reserved - $1 WHERE id = $2")
                .bind(units)
                .bind(grant)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if !grants.is_empty() {
            tracing::warn!(count = grants.len(), "lapsed reservations given back");
        }
        Ok(grants.len() as u64)
    }

    pub(super) async fn do_reconcile(
        &self,
        app_id: &AppId,
        since_ms: i64,
    ) -> Result<Reconciliation, StoreError> {
        let row = sqlx::query(
            "SELECT
               (SELECT COUNT(*) FROM ledger WHERE app_id = $1 AND kind = 'charge' AND at >= $2)
                 AS ledger_charges,
               (SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT) FROM ledger
                 WHERE app_id = $1 AND kind IN ('grant', 'adjust', 'revoke') AND at >= $2)
                 AS ledger_granted,
               (SELECT COUNT(*) FROM audit WHERE app_id = $1 AND charged AND at >= $2)
                 AS audit_charged,
               (SELECT COUNT(*) FROM audit
                 WHERE app_id = $1 AND http_status BETWEEN 200 AND 299 AND at >= $2)
                 AS audit_succeeded",
        )
        .bind(app_id.as_str())
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(Reconciliation {
            ledger_charges: row.try_get("ledger_charges")?,
            ledger_granted: row.try_get("ledger_granted")?,
            audit_charged: row.try_get("audit_charged")?,
            audit_succeeded: row.try_get("audit_succeeded")?,
        })
    }

    pub(super) async fn do_take_rate(
        &self,
        app_id: &AppId,
        now_ms: i64,
        interval_us: i64,
        burst: u32,
    ) -> Result<Option<i64>, StoreError> {
        let now_us = now_ms.clamp(0, i64::MAX / 4_000).saturating_mul(1000);
        let interval_us = interval_us.clamp(1, MAX_INTERVAL_US);
        let window_us = interval_us
            .saturating_mul(i64::from(burst.max(1)))
            .min(MAX_WINDOW_US);
        // GCRA: allowed when the next theoretical arrival time stays within the burst
        // window; the guarded upsert makes check-and-take one atomic statement.
        let sql = format!(
            "INSERT INTO rate_limits (app_id, tat) VALUES ($1, $2 + $3)
             ON CONFLICT (app_id) DO UPDATE SET tat = {GREATEST}(rate_limits.tat, $2) + $3
               WHERE {GREATEST}(rate_limits.tat, $2) + $3 - $2 <= $4
             RETURNING tat"
        );
        let taken: Option<i64> = sqlx::query_scalar(&sql)
            .bind(app_id.as_str())
            .bind(now_us)
            .bind(interval_us)
            .bind(window_us)
            .fetch_optional(&self.pool)
            .await?;
        if taken.is_some() {
            return Ok(None);
        }
        let tat: i64 = sqlx::query_scalar("SELECT tat FROM rate_limits WHERE app_id = $1")
            .bind(app_id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .unwrap_or(now_us);
        let wait_us = tat
            .max(now_us)
            .saturating_add(interval_us)
            .saturating_sub(window_us)
            .saturating_sub(now_us);
        Ok(Some(wait_us.max(0).saturating_add(999) / 1000))
    }

    pub(super) async fn do_give_back_rate(
        &self,
        key: &AppId,
        interval_us: i64,
    ) -> Result<(), StoreError> {
        // One interval earlier is the arrival time as if the request had not been taken; a
        // time already in the past means a full bucket, as GREATEST(tat, now) reads it.
        sqlx::query("UPDATE rate_limits SET tat = tat - $2 WHERE app_id = $1")
            .bind(key.as_str())
            .bind(interval_us.clamp(1, MAX_INTERVAL_US))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn do_count_attempt(
        &self,
        app_id: &AppId,
        id_hash: &str,
        now_ms: i64,
        per_minute: u32,
        per_day: u32,
    ) -> Result<Option<AttemptWindow>, StoreError> {
        let mut tx = self.pool.begin().await?;
        for (kind, window, limit, which) in [
            ("m", MINUTE_MS, per_minute, AttemptWindow::Minute),
            ("d", DAY_MS, per_day, AttemptWindow::Day),
        ] {
            if limit == 0 {
                continue;
            }
            let counted: Option<i64> = sqlx::query_scalar(
                "INSERT INTO id_attempts (app_id, id_hash, window_kind, window_start, count)
                 VALUES ($1, $2, $3, $4, 1)
                 ON CONFLICT (app_id, id_hash, window_kind, window_start)
                 DO UPDATE SET count = id_attempts.count + 1 WHERE id_attempts.count < $5
                 RETURNING count",
            )
            .bind(app_id.as_str())
            .bind(id_hash)
            .bind(kind)
            .bind(now_ms - now_ms.rem_euclid(window))
            .bind(i64::from(limit))
            .fetch_optional(&mut *tx)
            .await?;
            if counted.is_none() {
                // Nothing of this attempt is counted in any window.
                tx.rollback().await?;
                return Ok(Some(which));
            }
        }
        tx.commit().await?;
        Ok(None)
    }

    pub(super) async fn do_use_nonce(
        &self,
        app_id: &AppId,
        nonce: &str,
        now_ms: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO nonces (app_id, nonce, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (app_id, nonce) DO UPDATE SET expires_at = $3 WHERE nonces.expires_at <= $4",
        )
        .bind(app_id.as_str())
        .bind(nonce)
        .bind(expires_at)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn do_purge_expired(&self, now_ms: i64) -> Result<u64, StoreError> {
        let nonces = sqlx::query("DELETE FROM nonces WHERE expires_at <= $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        // A day window is over one day after it started.
        let attempts = sqlx::query("DELETE FROM id_attempts WHERE window_start <= $1")
            .bind(now_ms - DAY_MS)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let holds = self.do_reclaim(now_ms).await?;
        let sessions =
            self.purge_console_sessions(now_ms).await? + self.purge_console_flashes(now_ms).await?;
        // The console's sign-in keeps one rate row per client address (hash): a row whose
        // arrival time has passed is a full bucket, the same as no row, so it goes.
        let sign_in_rates = sqlx::query(
            "DELETE FROM rate_limits WHERE app_id LIKE 'console:sign-in:%' AND tat <= $1",
        )
        .bind(now_ms.saturating_mul(1000))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(nonces + attempts + holds + sessions + sign_in_rates)
    }

    pub(super) async fn do_audit_page(
        &self,
        q: &AuditQuery,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        sqlx::query(
            "SELECT id, at, request_id, app_id, name_masked, id_masked, id_hash, result, score,
                    http_status, latency_ms, error_code, charged
             FROM audit
             WHERE ($1 IS NULL OR app_id = $1) AND ($2 IS NULL OR at >= $2)
               AND ($3 IS NULL OR at < $3) AND ($4 IS NULL OR result = $4)
               AND ($5 IS NULL OR http_status = $5) AND ($6 IS NULL OR id < $6)
               AND ($8 IS NULL OR request_id = $8)
               AND ($9 IS NULL OR id_hash = $9 OR id_hash = $10)
             ORDER BY id DESC LIMIT $7",
        )
        .bind(q.app_id.as_ref().map(AppId::as_str))
        .bind(q.from_ms)
        .bind(q.to_ms)
        .bind(q.result)
        .bind(q.http_status.map(i64::from))
        .bind(q.before_id)
        .bind(i64::from(q.limit))
        .bind(q.task_no.as_deref())
        .bind(q.id_hashes.first().map(String::as_str))
        .bind(
            q.id_hashes
                .get(1)
                .or(q.id_hashes.first())
                .map(String::as_str),
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(audit_from_row)
        .collect()
    }

    pub(super) async fn do_usage(
        &self,
        app_id: Option<&AppId>,
        from_ms: i64,
        to_ms: i64,
        offset_ms: i64,
    ) -> Result<Vec<UsageRow>, StoreError> {
        sqlx::query(
            "SELECT (at + $4) / 86400000 AS day,
                    result, COUNT(*) AS calls,
                    COUNT(*) FILTER (WHERE http_status BETWEEN 200 AND 299) AS succeeded,
                    COUNT(*) FILTER (WHERE charged) AS charged
             FROM audit
             WHERE ($1 IS NULL OR app_id = $1) AND at >= $2 AND at < $3
             GROUP BY day, result ORDER BY day, result NULLS FIRST",
        )
        .bind(app_id.map(AppId::as_str))
        .bind(from_ms)
        .bind(to_ms)
        .bind(offset_ms)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(usage_from_row)
        .collect()
    }

    pub(super) async fn do_record_alert(&self, a: &NewAlert) -> Result<Option<i64>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO alerts (at, app_id, kind, period, remaining, purchased)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (app_id, kind, period) DO NOTHING RETURNING id",
        )
        .bind(a.at)
        .bind(a.app_id.as_str())
        .bind(a.kind.as_str())
        .bind(a.period)
        .bind(a.remaining)
        .bind(a.purchased)
        .fetch_optional(&self.pool)
        .await?;
        Ok(id)
    }

    pub(super) async fn do_alert_attempted(
        &self,
        id: i64,
        delivered_at: Option<i64>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alerts SET attempts = attempts + 1, delivered_at = $1, last_error = $2
             WHERE id = $3",
        )
        .bind(delivered_at)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn do_recent_alerts(
        &self,
        app_id: Option<&AppId>,
        limit: u32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        sqlx::query(
            "SELECT * FROM alerts WHERE ($1 IS NULL OR app_id = $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(app_id.map(AppId::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(alert_from_row)
        .collect()
    }
}
