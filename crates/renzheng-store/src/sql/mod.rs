//! The SQL layer both backends share: every statement the two databases write alike, and
//! the mapping of their rows to the store's types, written once.
//!
//! This module is compiled twice, as `sqlite::sql` and `postgres::sql` (a `#[path]`
//! module in each backend's `mod.rs`), each time against its parent's `dialect` module.
//! That module names the database (`Db`) and the store type (`Backend`, with its `pool`
//! and `templates`), and holds the little that differs between the databases:
//!
//! * `BYTE_ORDER` — the collation that orders text by its bytes;
//! * `GREATEST` — the two-argument maximum;
//! * `DELETE_LAPSED_HOLDS` — how lapsed holds are taken for reclaiming;
//! * `lock_app` — how the choice of an app's grant is serialised;
//! * `begin_snapshot` — a transaction whose reads see one snapshot;
//! * `after_removal` — what follows the removal of a person.
//!
//! Compiling the code once per database keeps every row typed (`SqliteRow`, `PgRow`:
//! no `sqlx::Any`) and needs no generic bounds over `sqlx::Database`.
//!
//! The statements keep to what both databases accept: `$N` placeholders (sqlx binds
//! SQLite's `$N` by number, as PostgreSQL does), `TRUE`, `INSERT … ON CONFLICT … DO
//! UPDATE` with the table's own columns qualified (PostgreSQL needs it, SQLite accepts
//! it), `RETURNING`, aggregates with `FILTER (WHERE …)`, and `CAST` rather than `::`.
//! Timestamps are unix milliseconds (`INTEGER` in SQLite, `BIGINT` in PostgreSQL), read
//! as `i64` from both; what opens, migrates and converts each database stays in its
//! backend's `mod.rs`.

mod compliance;
mod console;
mod keys;
mod metering;
mod registry;

use async_trait::async_trait;
use renzheng_domain::{IdNumber, PersonName};
use sqlx::Row;

use super::dialect::{self, Backend, Db, BYTE_ORDER};
use crate::embedding::ViewIndex;
use crate::{
    decode_embedding, AdminEvent, AdminEventRecord, AlertRecord, App, AppCodeHash, AppId,
    AppPolicy, AttemptWindow, AuditEntry, AuditQuery, AuditRecord, Balance, BasisRecord,
    ComplianceCounts, ConsoleOperator, ConsoleSession, DuePerson, DuplicateScan, EventQuery, Grant,
    GrantChange, GrantChanged, NewAlert, NewApp, NewPortrait, OperatorChange, OperatorRole,
    OperatorTotp, Package, Person, PersonHandle, PersonRecord, PersonSummary, Portrait,
    ProcessingRecord, Reconciliation, Reserved, RetentionCutoffs, RetentionDue, Settle, Store,
    StoreError, StoredTemplate, TemplateChanges, TemplateKey, UsageRow,
};

/// A row of this database.
type DbRow = <Db as sqlx::Database>::Row;

const APP_COLUMNS: &str = "id, name, code_hash, enabled, created_at, app_key, secret_sealed,
    code_sealed, previous_code_until, rate_per_sec, rate_burst, alert_percent, webhook_url,
    alert_emails";

/// The ID number and name of a `persons` row (`id_number`, `name`, `sealed`): opened
/// from its sealed identity, or read in clear from a row an older release wrote.
fn identity_from_row(
    row: &DbRow,
    templates: &TemplateKey,
) -> Result<(IdNumber, PersonName), StoreError> {
    let key: String = row.try_get("id_number")?;
    let sealed: Option<Vec<u8>> = row.try_get("sealed")?;
    match sealed {
        Some(blob) => {
            let (id, name) = templates.open_person(&key, &blob)?;
            crate::parse_identity(&id, &name)
        }
        // A row of an older release, converted when the store opens.
        None => crate::parse_identity(&key, &row.try_get::<String, _>("name")?),
    }
}

fn app_from_row(row: &DbRow) -> Result<App, StoreError> {
    let alert_percent: i64 = row.try_get("alert_percent")?;
    let rate_burst: Option<i64> = row.try_get("rate_burst")?;
    Ok(App {
        id: AppId::from(row.try_get::<String, _>("id")?),
        name: row.try_get("name")?,
        code_hash: AppCodeHash::from_stored(row.try_get("code_hash")?),
        enabled: row.try_get("enabled")?,
        created_at: row.try_get("created_at")?,
        app_key: row.try_get("app_key")?,
        secret_sealed: row.try_get("secret_sealed")?,
        code_sealed: row.try_get("code_sealed")?,
        previous_code_until: row.try_get("previous_code_until")?,
        policy: AppPolicy {
            rate_per_sec: row.try_get("rate_per_sec")?,
            rate_burst: rate_burst.and_then(|b| u32::try_from(b).ok()),
            alert_percent: u8::try_from(alert_percent)
                .map_err(|_| StoreError::Corrupt(format!("alert percent {alert_percent}")))?,
            webhook_url: row.try_get("webhook_url")?,
            alert_emails: row
                .try_get::<Option<String>, _>("alert_emails")?
                .map(|lines| lines.lines().map(str::to_owned).collect())
                .unwrap_or_default(),
        },
    })
}

/// A portrait row of the person `id_number`, its template opened with `templates`.
fn portrait_from_row(
    row: &DbRow,
    id_number: &IdNumber,
    templates: &TemplateKey,
) -> Result<Portrait, StoreError> {
    let model_id: String = row.try_get("model_id")?;
    let blob = row.try_get::<&[u8], _>("embedding")?;
    let embedding = if row.try_get::<bool, _>("sealed")? {
        templates.open(id_number.as_str(), &model_id, blob)?
    } else {
        decode_embedding(blob)?
    };
    let quality = row
        .try_get::<Option<String>, _>("quality")?
        .map(|text| {
            serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("portrait quality is not JSON: {e}")))
        })
        .transpose()?;
    Ok(Portrait {
        id: row.try_get("id")?,
        model_id,
        embedding,
        quality,
        has_photo: row.try_get("has_photo")?,
        created_at: row.try_get("created_at")?,
    })
}

fn audit_from_row(row: &DbRow) -> Result<AuditRecord, StoreError> {
    let http_status: i64 = row.try_get("http_status")?;
    let latency_ms: i64 = row.try_get("latency_ms")?;
    Ok(AuditRecord {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        request_id: row.try_get("request_id")?,
        app_id: row.try_get::<Option<String>, _>("app_id")?.map(AppId::from),
        name_masked: row.try_get("name_masked")?,
        id_masked: row.try_get("id_masked")?,
        id_hash: row.try_get("id_hash")?,
        result: row.try_get("result")?,
        score: row.try_get("score")?,
        http_status: u16::try_from(http_status)
            .map_err(|_| StoreError::Corrupt(format!("http status {http_status}")))?,
        latency_ms: u64::try_from(latency_ms)
            .map_err(|_| StoreError::Corrupt(format!("latency {latency_ms}")))?,
        error_code: row.try_get("error_code")?,
        charged: row.try_get("charged")?,
    })
}

fn event_from_row(row: &DbRow) -> Result<AdminEventRecord, StoreError> {
    Ok(AdminEventRecord {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        request_id: row.try_get("request_id")?,
        detail: row.try_get("detail")?,
        reason: row.try_get("reason")?,
    })
}

#[async_trait]
impl Store for Backend {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn claim_key_fingerprint(
        &self,
        name: &str,
        fingerprint: &str,
        now_ms: i64,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO key_fingerprints (name, fingerprint, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fingerprint)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT fingerprint FROM key_fingerprints WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn key_record(&self, name: &str) -> Result<Option<crate::KeyRecord>, StoreError> {
        self.do_key_record(name).await
    }

    async fn begin_key_rotation(
        &self,
        name: &str,
        from: &str,
        to: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.do_begin_key_rotation(name, from, to, now_ms).await
    }

    async fn retire_key(
        &self,
        name: &str,
        fingerprint: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.do_retire_key(name, fingerprint, now_ms).await
    }

    async fn count_not_sealed_under(
        &self,
        data: crate::SealedData,
        prefix: &[u8],
    ) -> Result<u64, StoreError> {
        self.do_count_not_sealed_under(data, prefix).await
    }

    fn set_template_key(&self, templates: TemplateKey) {
        self.replace_templates(templates);
    }

    async fn rekey_registry(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<crate::RekeyBatch, StoreError> {
        self.do_rekey_registry(after, limit).await
    }

    async fn photos_not_sealed_under(
        &self,
        prefix: &[u8],
        after: i64,
        limit: u32,
    ) -> Result<Vec<crate::SealedPhoto>, StoreError> {
        self.do_photos_not_sealed_under(prefix, after, limit).await
    }

    async fn reseal_photo(
        &self,
        portrait_id: i64,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError> {
        self.do_reseal_photo(portrait_id, old, new).await
    }

    async fn reseal_app_secret(
        &self,
        id: &AppId,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError> {
        self.do_reseal_app_secret(id, old, new).await
    }

    async fn reseal_app_code(
        &self,
        id: &AppId,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError> {
        self.do_reseal_app_code(id, old, new).await
    }

    async fn close(&self) {
        Backend::close(self).await;
    }

    async fn create_app(&self, new: &NewApp, now_ms: i64) -> Result<App, StoreError> {
        let id = AppId::generate();
        sqlx::query(
            "INSERT INTO apps (id, name, code_hash, enabled, created_at, app_key, secret_sealed,
                               code_sealed)
             VALUES ($1, $2, $3, TRUE, $4, $5, $6, $7)",
        )
        .bind(id.as_str())
        .bind(&new.name)
        .bind(new.code_hash.as_str())
        .bind(now_ms)
        .bind(&new.app_key)
        .bind(&new.secret_sealed)
        .bind(new.code_sealed.as_deref())
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from_write(e, "app", "app"))?;
        self.get_app(&id).await?.ok_or(StoreError::NotFound("app"))
    }

    async fn find_app_by_code_hash(
        &self,
        code_hash: &AppCodeHash,
        now_ms: i64,
    ) -> Result<Option<App>, StoreError> {
        let sql = format!(
            "SELECT {APP_COLUMNS} FROM apps WHERE code_hash = $1
             UNION ALL
             SELECT {APP_COLUMNS} FROM apps
             WHERE previous_code_hash = $1 AND previous_code_until > $2
             LIMIT 1"
        );
        sqlx::query(&sql)
            .bind(code_hash.as_str())
            .bind(now_ms)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(app_from_row)
            .transpose()
    }

    async fn find_app_by_key(&self, app_key: &str) -> Result<Option<App>, StoreError> {
        let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE app_key = $1");
        sqlx::query(&sql)
            .bind(app_key)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(app_from_row)
            .transpose()
    }

    async fn get_app(&self, id: &AppId) -> Result<Option<App>, StoreError> {
        let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE id = $1");
        sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(app_from_row)
            .transpose()
    }

    async fn rotate_app_code(
        &self,
        id: &AppId,
        code_hash: &AppCodeHash,
        code_sealed: Option<&[u8]>,
        previous_until: Option<i64>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE apps SET previous_code_hash = CASE WHEN $2 IS NULL THEN NULL ELSE code_hash END,
                             previous_code_until = $2, code_hash = $3, code_sealed = $4
             WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(previous_until)
        .bind(code_hash.as_str())
        .bind(code_sealed)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from_write(e, "app code", "app"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("app"));
        }
        Ok(())
    }

    async fn set_app_secret(
        &self,
        id: &AppId,
        app_key: &str,
        secret_sealed: &[u8],
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE apps SET app_key = $1, secret_sealed = $2 WHERE id = $3")
            .bind(app_key)
            .bind(secret_sealed)
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::from_write(e, "app key", "app"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("app"));
        }
        Ok(())
    }

    async fn set_app_policy(&self, id: &AppId, policy: &AppPolicy) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE apps SET rate_per_sec = $1, rate_burst = $2, alert_percent = $3, webhook_url = $4,
             alert_emails = $6
             WHERE id = $5",
        )
        .bind(policy.rate_per_sec)
        .bind(policy.rate_burst.map(i64::from))
        .bind(i64::from(policy.alert_percent))
        .bind(policy.webhook_url.as_deref())
        .bind(id.as_str())
        .bind((!policy.alert_emails.is_empty()).then(|| policy.alert_emails.join("\n")))
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from_write(e, "app", "app"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("app"));
        }
        Ok(())
    }

    async fn list_packages(&self) -> Result<Vec<Package>, StoreError> {
        let sql = format!("SELECT * FROM packages ORDER BY price_fen, calls, name {BYTE_ORDER}");
        sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(metering::package_from_row)
            .collect()
    }

    async fn get_package(&self, name: &str) -> Result<Option<Package>, StoreError> {
        sqlx::query("SELECT * FROM packages WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(metering::package_from_row)
            .transpose()
    }

    async fn put_package(&self, p: &Package) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO packages (name, title, calls, price_fen, valid_days, active)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (name) DO UPDATE SET title = excluded.title, calls = excluded.calls,
               price_fen = excluded.price_fen, valid_days = excluded.valid_days,
               active = excluded.active",
        )
        .bind(&p.name)
        .bind(&p.title)
        .bind(p.calls)
        .bind(p.price_fen)
        .bind(p.valid_days)
        .bind(p.active)
        .execute(&self.pool)
        .await
        .map_err(|e| match e.as_database_error() {
            Some(db) if db.is_check_violation() => StoreError::Invalid(
                "a package has at least one call and a price of 0 or more".into(),
            ),
            _ => StoreError::Database(e),
        })?;
        Ok(())
    }

    async fn grant(
        &self,
        app_id: &AppId,
        package: Option<&str>,
        calls: i64,
        expires_at: Option<i64>,
        now_ms: i64,
    ) -> Result<Grant, StoreError> {
        self.do_grant(app_id, package, calls, expires_at, now_ms)
            .await
    }

    async fn change_grant(
        &self,
        app_id: &AppId,
        grant_id: i64,
        change: GrantChange,
        now_ms: i64,
    ) -> Result<GrantChanged, StoreError> {
        self.do_change_grant(app_id, grant_id, change, now_ms).await
    }

    async fn balance(&self, app_id: &AppId, now_ms: i64) -> Result<Balance, StoreError> {
        self.do_balance(app_id, now_ms).await
    }

    async fn reserve_unit(
        &self,
        app_id: &AppId,
        now_ms: i64,
        hold_ms: i64,
    ) -> Result<Reserved, StoreError> {
        self.do_reserve_unit(app_id, now_ms, hold_ms).await
    }

    async fn finish_check(&self, entry: &AuditEntry, settle: Settle) -> Result<bool, StoreError> {
        self.do_finish_check(entry, settle).await
    }

    async fn reclaim_reservations(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.do_reclaim(now_ms).await
    }

    async fn reconcile(&self, app_id: &AppId, since_ms: i64) -> Result<Reconciliation, StoreError> {
        self.do_reconcile(app_id, since_ms).await
    }

    async fn take_rate(
        &self,
        app_id: &AppId,
        now_ms: i64,
        interval_us: i64,
        burst: u32,
    ) -> Result<Option<i64>, StoreError> {
        self.do_take_rate(app_id, now_ms, interval_us, burst).await
    }

    async fn give_back_rate(&self, key: &AppId, interval_us: i64) -> Result<(), StoreError> {
        self.do_give_back_rate(key, interval_us).await
    }

    async fn count_attempt(
        &self,
        app_id: &AppId,
        id_hash: &str,
        now_ms: i64,
        per_minute: u32,
        per_day: u32,
    ) -> Result<Option<AttemptWindow>, StoreError> {
        self.do_count_attempt(app_id, id_hash, now_ms, per_minute, per_day)
            .await
    }

    async fn use_nonce(
        &self,
        app_id: &AppId,
        nonce: &str,
        now_ms: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        self.do_use_nonce(app_id, nonce, now_ms, expires_at).await
    }

    async fn purge_expired(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.do_purge_expired(now_ms).await
    }

    async fn audit_page(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        self.do_audit_page(query).await
    }

    async fn usage(
        &self,
        app_id: Option<&AppId>,
        from_ms: i64,
        to_ms: i64,
        offset_ms: i64,
    ) -> Result<Vec<UsageRow>, StoreError> {
        self.do_usage(app_id, from_ms, to_ms, offset_ms).await
    }

    async fn record_alert(&self, alert: &NewAlert) -> Result<Option<i64>, StoreError> {
        self.do_record_alert(alert).await
    }

    async fn alert_attempted(
        &self,
        id: i64,
        delivered_at: Option<i64>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.do_alert_attempted(id, delivered_at, error).await
    }

    async fn recent_alerts(
        &self,
        app_id: Option<&AppId>,
        limit: u32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        self.do_recent_alerts(app_id, limit).await
    }

    async fn list_apps(&self) -> Result<Vec<App>, StoreError> {
        let sql = format!("SELECT {APP_COLUMNS} FROM apps ORDER BY created_at, id {BYTE_ORDER}");
        sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(app_from_row)
            .collect()
    }

    async fn set_app_enabled(&self, id: &AppId, enabled: bool) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE apps SET enabled = $1 WHERE id = $2")
            .bind(enabled)
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("app"));
        }
        Ok(())
    }

    async fn upsert_person(
        &self,
        id: &IdNumber,
        name: &PersonName,
        now_ms: i64,
    ) -> Result<Person, StoreError> {
        let templates = self.templates();
        let (key, view) = locate(&self.pool, &templates, id).await?;
        upsert_person_with(&self.pool, &templates, &key, view, id, name, now_ms).await
    }

    async fn enrol_with_basis(
        &self,
        id: &IdNumber,
        name: &PersonName,
        portraits: Vec<NewPortrait>,
        basis: Option<&BasisRecord>,
        expected_version: Option<i64>,
        now_ms: i64,
    ) -> Result<Person, StoreError> {
        self.do_enrol(id, name, portraits, basis, expected_version, now_ms)
            .await
    }

    async fn record_basis(&self, id: &IdNumber, basis: &BasisRecord) -> Result<(), StoreError> {
        self.do_record_basis(id, basis).await
    }

    async fn compliance_counts(&self) -> Result<ComplianceCounts, StoreError> {
        self.do_compliance_counts().await
    }

    async fn face_data_reached(&self, n: u64) -> Result<Option<i64>, StoreError> {
        self.do_face_data_reached(n).await
    }

    async fn compliance_mark(&self, name: &str) -> Result<Option<i64>, StoreError> {
        self.do_compliance_mark(name).await
    }

    async fn set_compliance_mark(&self, name: &str, at: Option<i64>) -> Result<bool, StoreError> {
        self.do_set_compliance_mark(name, at).await
    }

    async fn note_person_checked(&self, id: &IdNumber, at_ms: i64) -> Result<(), StoreError> {
        self.do_note_person_checked(id, at_ms).await
    }

    async fn persons_due(
        &self,
        cutoffs: RetentionCutoffs,
        after: Option<&IdNumber>,
        limit: u32,
    ) -> Result<Vec<DuePerson>, StoreError> {
        self.do_persons_due(cutoffs, after, limit).await
    }

    async fn count_persons_due(
        &self,
        cutoffs: RetentionCutoffs,
    ) -> Result<RetentionDue, StoreError> {
        self.do_count_persons_due(cutoffs).await
    }

    async fn processing_records(
        &self,
        from_ms: i64,
        to_ms: i64,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ProcessingRecord>, StoreError> {
        self.do_processing_records(from_ms, to_ms, after, limit)
            .await
    }

    async fn person_processing(
        &self,
        hashes: &[String],
        limit: u32,
    ) -> Result<Vec<ProcessingRecord>, StoreError> {
        self.do_person_processing(hashes, limit).await
    }

    async fn purge_processing_before(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.do_purge_processing_before(before_ms).await
    }

    async fn rename_person(
        &self,
        id: &IdNumber,
        name: &PersonName,
        now_ms: i64,
    ) -> Result<Person, StoreError> {
        self.do_rename_person(id, name, now_ms).await
    }

    async fn replace_portraits_with_basis(
        &self,
        id: &IdNumber,
        portraits: Vec<NewPortrait>,
        basis: Option<&BasisRecord>,
        expected_version: Option<i64>,
        now_ms: i64,
    ) -> Result<Person, StoreError> {
        self.do_replace_portraits(id, portraits, basis, expected_version, now_ms)
            .await
    }

    async fn registry_version(&self) -> Result<i64, StoreError> {
        self.do_registry_version().await
    }

    async fn templates_after(
        &self,
        model_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredTemplate>, StoreError> {
        self.do_templates_after(model_id, after, limit).await
    }

    async fn templates_by_ids(&self, ids: &[i64]) -> Result<Vec<StoredTemplate>, StoreError> {
        self.do_templates_by_ids(ids).await
    }

    async fn template_changes(
        &self,
        model_id: &str,
        after: i64,
    ) -> Result<TemplateChanges, StoreError> {
        self.do_template_changes(model_id, after).await
    }

    async fn count_persons(&self) -> Result<u64, StoreError> {
        self.do_count_persons().await
    }

    async fn persons_page(
        &self,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<PersonSummary>, StoreError> {
        self.do_persons_page(offset, limit).await
    }

    async fn persons_named(
        &self,
        name: &PersonName,
        limit: u32,
    ) -> Result<Vec<PersonSummary>, StoreError> {
        self.do_persons_named(name, limit).await
    }

    async fn duplicate_scan(&self, model_id: &str) -> Result<Option<DuplicateScan>, StoreError> {
        self.do_duplicate_scan(model_id).await
    }

    async fn save_duplicate_scan(&self, scan: &DuplicateScan) -> Result<(), StoreError> {
        self.do_save_duplicate_scan(scan).await
    }

    async fn end_duplicate_scan(&self, model_id: &str) -> Result<(), StoreError> {
        self.do_end_duplicate_scan(model_id).await
    }

    fn person_handle(&self, id: &IdNumber) -> PersonHandle {
        PersonHandle::from_key(&self.templates().person_key(id.as_str()))
            .expect("a person key is hex")
    }

    async fn person_by_handle(&self, handle: PersonHandle) -> Result<Option<IdNumber>, StoreError> {
        self.do_person_by_handle(handle).await
    }

    async fn add_portrait(
        &self,
        id: &IdNumber,
        portrait: NewPortrait,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let templates = self.templates();
        let mut tx = self.pool.begin().await?;
        let version = registry::bump_version(&mut tx, None).await?;
        let (key, view) = locate(&mut *tx, &templates, id).await?;
        let portrait_id = registry::insert_portrait(
            &mut tx,
            &templates,
            (&key, view),
            version,
            id,
            portrait,
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(portrait_id)
    }

    async fn get_person(&self, id: &IdNumber) -> Result<Option<PersonRecord>, StoreError> {
        // Both reads on one snapshot, so that a concurrent removal or enrolment cannot
        // leave us with half of either.
        let templates = self.templates();
        let mut tx = dialect::begin_snapshot(&self.pool).await?;
        // Looked up under every key of the ring, on the same snapshot: a key rotation
        // moves persons between keys.
        let Some((key, _, row)) = person_row(&mut *tx, &templates, id).await? else {
            return Ok(None);
        };
        let (stored_id, name) = identity_from_row(&row, &templates)?;
        if stored_id != *id {
            return Err(StoreError::Corrupt(
                "a registry row holds another identity".into(),
            ));
        }
        let person = Person {
            handle: PersonHandle::from_key(&key)?,
            id_number: id.clone(),
            name,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        };
        let portraits = sqlx::query(
            "SELECT id, model_id, embedding, sealed, quality, photo IS NOT NULL AS has_photo, created_at
             FROM portraits WHERE id_number = $1 ORDER BY id",
        )
        .bind(&key)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| portrait_from_row(row, id, &templates))
        .collect::<Result<_, _>>()?;
        tx.commit().await?;
        let basis = compliance::basis_from_row(&row)?;
        Ok(Some(PersonRecord {
            person,
            portraits,
            basis,
            last_checked_at: row.try_get("last_checked_at")?,
        }))
    }

    async fn persons_without_model(&self, model_id: &str) -> Result<Vec<IdNumber>, StoreError> {
        let mut ids = sqlx::query(
            "SELECT id_number, name, sealed FROM persons p
             WHERE EXISTS (SELECT 1 FROM portraits q WHERE q.id_number = p.id_number)
               AND NOT EXISTS (SELECT 1 FROM portraits q
                               WHERE q.id_number = p.id_number AND q.model_id = $1)",
        )
        .bind(model_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| identity_from_row(row, &self.templates()).map(|(id, _)| id))
        .collect::<Result<Vec<_>, _>>()?;
        ids.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(ids)
    }

    async fn list_person_ids(
        &self,
        after: Option<&IdNumber>,
        limit: u32,
    ) -> Result<Vec<IdNumber>, StoreError> {
        let sql = format!(
            "SELECT id_number, name, sealed FROM persons
             WHERE id_number {BYTE_ORDER} > $1
             ORDER BY id_number {BYTE_ORDER} LIMIT $2"
        );
        // A range from the cursor ("" sorts first), so that each page reads the key
        // index from where the last one stopped (see `do_rekey_registry`).
        sqlx::query(&sql)
            .bind(after.map_or_else(String::new, |id| self.templates().person_key(id.as_str())))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| identity_from_row(row, &self.templates()).map(|(id, _)| id))
            .collect()
    }

    async fn kept_photos(&self, id: &IdNumber) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut tx = dialect::begin_snapshot(&self.pool).await?;
        let (key, _) = locate(&mut *tx, &self.templates(), id).await?;
        let rows = sqlx::query(
            "SELECT photo FROM portraits WHERE id_number = $1 AND photo IS NOT NULL ORDER BY id",
        )
        .bind(key)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<Vec<u8>, _>("photo")?))
            .collect()
    }

    async fn remove_person(&self, id: &IdNumber, audit_keys: &[&[u8]]) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let version = registry::bump_version(&mut tx, None).await?;
        let (key, _) = locate(&mut *tx, &self.templates(), id).await?;
        registry::log_person_removal(&mut tx, version, &key).await?;
        // Portraits explicitly rather than by cascade alone: the cascade silently does
        // nothing on a SQLite connection with foreign keys off, and biometric data must
        // not outlive its person.
        sqlx::query("DELETE FROM portraits WHERE id_number = $1")
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM persons WHERE id_number = $1")
            .bind(&key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for audit_key in audit_keys {
            let hash = id.keyed_hash(audit_key);
            sqlx::query(
                "UPDATE audit SET name_masked = NULL, id_masked = NULL, id_hash = NULL WHERE id_hash = $1",
            )
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE admin_events SET target = NULL, target_hash = NULL WHERE target_hash = $1",
            )
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM id_attempts WHERE id_hash = $1")
                .bind(&hash)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        dialect::after_removal(self).await;
        Ok(deleted > 0)
    }

    async fn purge_audit_before(&self, before_ms: i64) -> Result<u64, StoreError> {
        let purged = sqlx::query("DELETE FROM audit WHERE at < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(purged)
    }

    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.do_record_audit(entry).await
    }

    async fn recent_audit(&self, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        sqlx::query(
            "SELECT id, at, request_id, app_id, name_masked, id_masked, id_hash, result, score,
                    http_status, latency_ms, error_code, charged
             FROM audit ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(audit_from_row)
        .collect()
    }

    async fn person_trail(
        &self,
        hashes: &[String],
        limit: u32,
    ) -> Result<(Vec<AuditRecord>, Vec<AdminEventRecord>), StoreError> {
        let checks = self
            .newest_by_hash(
                "SELECT id, at, request_id, app_id, name_masked, id_masked, id_hash, result, score,
                        http_status, latency_ms, error_code, charged
                 FROM audit WHERE id_hash = $1 ORDER BY id DESC LIMIT $2",
                hashes,
                limit,
                audit_from_row,
                |c| c.id,
            )
            .await?;
        let events = self
            .newest_by_hash(
                "SELECT id, at, actor, action, target, request_id, detail, reason
                 FROM admin_events WHERE target_hash = $1 ORDER BY id DESC LIMIT $2",
                hashes,
                limit,
                event_from_row,
                |e| e.id,
            )
            .await?;
        Ok((checks, events))
    }

    async fn record_event(&self, event: &AdminEvent) -> Result<(), StoreError> {
        let target = event
            .person_masked
            .clone()
            .or_else(|| event.app_id.as_ref().map(|a| a.as_str().to_owned()));
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO admin_events (at, actor, action, target, target_hash, request_id, detail, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(event.at)
        .bind(&event.actor)
        .bind(&event.action)
        .bind(target)
        .bind(event.person_hash.as_deref())
        .bind(event.request_id.as_deref())
        .bind(event.detail.as_deref())
        .bind(event.reason.as_deref())
        .execute(&mut *tx)
        .await?;
        if let Some(processing) = &event.processing {
            compliance::insert_processing(&mut *tx, processing, event.at, &event.actor, None)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn recent_events(&self, limit: u32) -> Result<Vec<AdminEventRecord>, StoreError> {
        sqlx::query(
            "SELECT id, at, actor, action, target, request_id, detail, reason
             FROM admin_events ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(event_from_row)
        .collect()
    }

    async fn events_page(&self, q: &EventQuery) -> Result<Vec<AdminEventRecord>, StoreError> {
        sqlx::query(
            "SELECT id, at, actor, action, target, request_id, detail, reason
             FROM admin_events
             WHERE ($1 IS NULL OR at >= $1) AND ($2 IS NULL OR at < $2)
               AND ($3 IS NULL OR substr(action, 1, length($3)) = $3)
               AND ($4 IS NULL OR actor = $4) AND ($5 IS NULL OR id < $5)
             ORDER BY id DESC LIMIT $6",
        )
        .bind(q.from_ms)
        .bind(q.to_ms)
        .bind(q.kind.as_ref().map(|k| format!("{k}.")))
        .bind(q.actor.as_deref())
        .bind(q.before_id)
        .bind(i64::from(q.limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(event_from_row)
        .collect()
    }

    async fn create_console_session(&self, session: &ConsoleSession) -> Result<(), StoreError> {
        self.do_create_console_session(session).await
    }

    async fn touch_console_session(
        &self,
        token_hash: &str,
        now_ms: i64,
        idle_ms: i64,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        self.do_touch_console_session(token_hash, now_ms, idle_ms)
            .await
    }

    async fn end_console_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        self.do_end_console_session(token_hash).await
    }

    async fn console_sessions_of(
        &self,
        operator: &str,
        now_ms: i64,
    ) -> Result<Vec<ConsoleSession>, StoreError> {
        self.do_console_sessions_of(operator, now_ms).await
    }

    async fn end_operator_session(
        &self,
        operator: &str,
        token_hash: &str,
    ) -> Result<bool, StoreError> {
        self.do_end_operator_session(operator, token_hash).await
    }

    async fn put_console_flash(
        &self,
        id_hash: &str,
        session_hash: &str,
        sealed: &[u8],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.do_put_console_flash(id_hash, session_hash, sealed, expires_at)
            .await
    }

    async fn take_console_flash(
        &self,
        id_hash: &str,
        session_hash: &str,
        now_ms: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.do_take_console_flash(id_hash, session_hash, now_ms)
            .await
    }

    async fn console_operators(&self) -> Result<Vec<ConsoleOperator>, StoreError> {
        self.do_console_operators().await
    }

    async fn console_operator(&self, name: &str) -> Result<Option<ConsoleOperator>, StoreError> {
        self.do_console_operator(name).await
    }

    async fn add_console_operator(
        &self,
        operator: &ConsoleOperator,
        only_if_none: bool,
    ) -> Result<bool, StoreError> {
        self.do_add_console_operator(operator, only_if_none).await
    }

    async fn set_console_operator_role(
        &self,
        name: &str,
        role: OperatorRole,
        now_ms: i64,
    ) -> Result<OperatorChange, StoreError> {
        self.do_set_console_operator_role(name, role, now_ms).await
    }

    async fn set_console_operator_password(
        &self,
        name: &str,
        password_hash: &str,
        now_ms: i64,
        keep_session: Option<&str>,
    ) -> Result<OperatorChange, StoreError> {
        self.do_set_console_operator_password(name, password_hash, now_ms, keep_session)
            .await
    }

    async fn set_console_operator_totp(
        &self,
        name: &str,
        totp: Option<&OperatorTotp>,
        keep_session: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.do_set_console_operator_totp(name, totp, keep_session)
            .await
    }

    async fn take_totp_step(&self, name: &str, step: i64) -> Result<bool, StoreError> {
        self.do_take_totp_step(name, step).await
    }

    async fn reseal_console_totp(
        &self,
        name: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError> {
        self.do_reseal_console_totp(name, old, new).await
    }

    async fn remove_console_operator(&self, name: &str) -> Result<OperatorChange, StoreError> {
        self.do_remove_console_operator(name).await
    }
}

impl Backend {
    /// The newest `limit` rows of `sql` (which takes a person's keyed hash as `$1` and the
    /// limit as `$2`, newest first) for any of `hashes` (one per audit key in force), as
    /// one list newest first: a person's trail under every key, one page.
    pub(super) async fn newest_by_hash<T>(
        &self,
        sql: &str,
        hashes: &[String],
        limit: u32,
        parse: fn(&DbRow) -> Result<T, StoreError>,
        id: fn(&T) -> i64,
    ) -> Result<Vec<T>, StoreError> {
        let mut found = Vec::new();
        for hash in hashes {
            let rows = sqlx::query(sql)
                .bind(hash)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
            for row in &rows {
                found.push(parse(row)?);
            }
        }
        found.sort_by_key(|r| std::cmp::Reverse(id(r)));
        found.dedup_by_key(|r| id(r));
        found.truncate(limit as usize);
        Ok(found)
    }

    /// The template key ring in force (a cheap clone).
    pub(crate) fn templates(&self) -> TemplateKey {
        self.templates
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the template key ring.
    pub(crate) fn replace_templates(&self, templates: TemplateKey) {
        *self
            .templates
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = templates;
    }
}

/// The `persons` row of `id` under whichever key of the ring made it (all looked up in
/// one query), with that row key and view; `None` when not enrolled.
async fn person_row<'c, E>(
    executor: E,
    templates: &TemplateKey,
    id: &IdNumber,
) -> Result<Option<(String, ViewIndex, DbRow)>, StoreError>
where
    E: sqlx::Executor<'c, Database = Db>,
{
    let candidates = templates.person_keys(id.as_str());
    let placeholders: Vec<String> = (1..=candidates.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT id_number, name, sealed, created_at, updated_at, last_checked_at, {} FROM persons
         WHERE id_number IN ({})",
        compliance::BASIS_COLUMNS,
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for (key, _) in &candidates {
        query = query.bind(key);
    }
    let mut rows = query.fetch_all(executor).await?;
    // The first view that holds the person: the current key's when both do (never, once
    // a rotation has moved the row, which it does whole).
    for (key, view) in candidates {
        if let Some(i) = rows
            .iter()
            .position(|row| row.try_get::<&str, _>("id_number").ok() == Some(key.as_str()))
        {
            return Ok(Some((key, view, rows.swap_remove(i))));
        }
    }
    Ok(None)
}

/// The row key the person `id` is stored under and the view of the key ring that made
/// it; where they are not enrolled, the current key's (where a write puts them). While a
/// key rotation runs a person may be under either key, so every lookup by ID number goes
/// through here.
pub(super) async fn locate<'c, E>(
    executor: E,
    templates: &TemplateKey,
    id: &IdNumber,
) -> Result<(String, ViewIndex), StoreError>
where
    E: sqlx::Executor<'c, Database = Db>,
{
    Ok(match person_row(executor, templates, id).await? {
        Some((key, view, _)) => (key, view),
        None => (templates.person_key(id.as_str()), ViewIndex::CURRENT),
    })
}

/// Creates or renames a person on any connection (the pool, or a transaction): the row
/// `key` (made by `view`, see [`locate`]) holds the identity sealed.
async fn upsert_person_with<'c, E>(
    executor: E,
    templates: &TemplateKey,
    key: &str,
    view: ViewIndex,
    id: &IdNumber,
    name: &PersonName,
    now_ms: i64,
) -> Result<Person, StoreError>
where
    E: sqlx::Executor<'c, Database = Db>,
{
    let row = sqlx::query(
        "INSERT INTO persons (id_number, name, sealed, name_hash, created_at, updated_at)
         VALUES ($1, '', $2, $4, $3, $3)
         ON CONFLICT (id_number) DO UPDATE SET sealed = excluded.sealed,
             name_hash = excluded.name_hash, updated_at = excluded.updated_at
         RETURNING created_at, updated_at",
    )
    .bind(key)
    .bind(templates.seal_person_in(view, key, id.as_str(), name.as_str()))
    .bind(now_ms)
    .bind(templates.name_key_in(view, name.as_str()))
    .fetch_one(executor)
    .await?;
    Ok(Person {
        handle: PersonHandle::from_key(key)?,
        id_number: id.clone(),
        name: name.clone(),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
