//! The SQLite backend.

mod console;
mod metering;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use renzheng_domain::{IdNumber, PersonName};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row;

use crate::{
    decode_embedding, now_ms, AdminEvent, AdminEventRecord, AlertRecord, App, AppCodeHash, AppId,
    AppPolicy, AttemptWindow, AuditEntry, AuditQuery, AuditRecord, Balance, ConsoleSession, Grant,
    NewAlert, NewApp, NewPortrait, Package, Person, PersonRecord, Portrait, Reconciliation,
    Reserved, Settle, Store, StoreError, TemplateKey, UsageRow,
};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a connection waits for another writer before failing with
/// "database is locked". SQLite has one writer at a time; requests are short,
/// so waiting is better than failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Pool size for file databases: WAL lets readers run beside the one writer.
const MAX_CONNECTIONS: u32 = 8;

/// A [`Store`] in one SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Seals face templates at rest.
    templates: TemplateKey,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, creating its
    /// parent directories, and applies pending migrations.
    ///
    /// Directories it creates are private (0700) and the database file is created 0600
    /// (SQLite gives its `-wal` and `-shm` files the database's mode); an existing database
    /// file is made 0600 too. Deleted rows are overwritten (`secure_delete`). Face
    /// templates are sealed with `templates`; clear ones left by an older release are
    /// sealed on opening.
    pub async fn open(path: impl AsRef<Path>, templates: TemplateKey) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        tokio::task::spawn_blocking({
            let path = path.clone();
            move || private_database_file(&path)
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("preparing the database file: {e}")))??;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            // Deleted rows (a removed person's name and ID number) are overwritten with
            // zeros instead of lingering in free pages.
            .pragma("secure_delete", "ON")
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable in WAL mode except for the last transactions
            // before a power cut, and avoids an fsync per commit.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        Self::migrated(pool, templates).await
    }

    /// Moves every committed page from the write-ahead log into the database and empties
    /// the log, so that what a deletion overwrote is not still in the log's older frames.
    /// Best effort: a long reader can keep frames alive until the next checkpoint.
    async fn checkpoint(&self) {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint after a deletion failed");
        }
    }

    /// A private in-memory database, for tests (its template key is random: the data dies
    /// with the process anyway).
    pub async fn in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // Every connection to ":memory:" is a separate, empty database, and
        // it vanishes when its connection closes. So: exactly one
        // connection, never retired.
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Self::migrated(pool, TemplateKey::random()).await
    }

    /// Waits for in-flight queries and closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn migrated(pool: SqlitePool, templates: TemplateKey) -> Result<Self, StoreError> {
        MIGRATOR.run(&pool).await?;
        let store = SqliteStore { pool, templates };
        store.seal_clear_templates().await?;
        store.seal_clear_persons().await?;
        Ok(store)
    }

    /// Converts the registry rows an older release wrote in clear: each is re-keyed by
    /// the ID number's keyed hash (its portraits with it) and its identity sealed, in one
    /// transaction; with `secure_delete`, the clear bytes are overwritten. Needs the
    /// templates sealed first (they stay bound to the clear ID number, which they are).
    async fn seal_clear_persons(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // The portraits move to the new key before their person does.
        sqlx::query("PRAGMA defer_foreign_keys = ON")
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query("SELECT id_number, name FROM persons WHERE sealed IS NULL")
            .fetch_all(&mut *tx)
            .await?;
        for row in &rows {
            let clear: String = row.try_get("id_number")?;
            let name: String = row.try_get("name")?;
            let key = self.templates.person_key(&clear);
            sqlx::query("UPDATE portraits SET id_number = ? WHERE id_number = ?")
                .bind(&key)
                .bind(&clear)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE persons SET id_number = ?, name = '', sealed = ? WHERE id_number = ?",
            )
            .bind(&key)
            .bind(self.templates.seal_person(&key, &clear, &name))
            .bind(&clear)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if !rows.is_empty() {
            tracing::info!(
                persons = rows.len(),
                "sealed registry identities stored in clear by an older release"
            );
            self.checkpoint().await;
        }
        Ok(())
    }

    /// Seals the templates an older release stored in clear, in one transaction (with
    /// `secure_delete`, the clear bytes are overwritten).
    async fn seal_clear_templates(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT id, id_number, model_id, embedding FROM portraits WHERE sealed = 0",
        )
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            let id_number: String = row.try_get("id_number")?;
            let model_id: String = row.try_get("model_id")?;
            let values = decode_embedding(row.try_get::<&[u8], _>("embedding")?)?;
            sqlx::query("UPDATE portraits SET embedding = ?, sealed = 1 WHERE id = ?")
                .bind(self.templates.seal(&id_number, &model_id, &values))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if !rows.is_empty() {
            tracing::info!(
                portraits = rows.len(),
                "sealed face templates stored in clear by an older release"
            );
            self.checkpoint().await;
        }
        Ok(())
    }
}

/// Creates the database's missing parent directories 0700 and the file itself 0600 (or
/// tightens an existing file to 0600), before SQLite opens it.
fn private_database_file(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let mut dirs = std::fs::DirBuilder::new();
        dirs.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
        dirs.create(parent)?;
    }
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    file.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

const APP_COLUMNS: &str = "id, name, code_hash, enabled, created_at, app_key, secret_sealed,
    previous_code_until, rate_per_sec, rate_burst, alert_percent, webhook_url";

/// The ID number and name of a `persons` row (`id_number`, `name`, `sealed`): opened
/// from its sealed identity, or read in clear from a row an older release wrote.
fn identity_from_row(
    row: &SqliteRow,
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

fn app_from_row(row: &SqliteRow) -> Result<App, StoreError> {
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
        previous_code_until: row.try_get("previous_code_until")?,
        policy: AppPolicy {
            rate_per_sec: row.try_get("rate_per_sec")?,
            rate_burst: rate_burst.and_then(|b| u32::try_from(b).ok()),
            alert_percent: u8::try_from(alert_percent)
                .map_err(|_| StoreError::Corrupt(format!("alert percent {alert_percent}")))?,
            webhook_url: row.try_get("webhook_url")?,
        },
    })
}

/// A portrait row of the person `id_number`, its template opened with `templates`.
fn portrait_from_row(
    row: &SqliteRow,
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

fn audit_from_row(row: &SqliteRow) -> Result<AuditRecord, StoreError> {
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

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn claim_key_fingerprint(
        &self,
        name: &str,
        fingerprint: &str,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO key_fingerprints (name, fingerprint, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fingerprint)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT fingerprint FROM key_fingerprints WHERE name = ?")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn close(&self) {
        SqliteStore::close(self).await;
    }

    async fn create_app(&self, new: &NewApp) -> Result<App, StoreError> {
        let id = AppId::generate();
        sqlx::query(
            "INSERT INTO apps (id, name, code_hash, enabled, created_at, app_key, secret_sealed)
             VALUES (?, ?, ?, 1, ?, ?, ?)",
        )
        .bind(id.as_str())
        .bind(&new.name)
        .bind(new.code_hash.as_str())
        .bind(now_ms())
        .bind(&new.app_key)
        .bind(&new.secret_sealed)
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
            "SELECT {APP_COLUMNS} FROM apps WHERE code_hash = ?1
             UNION ALL
             SELECT {APP_COLUMNS} FROM apps
             WHERE previous_code_hash = ?1 AND previous_code_until > ?2
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
        let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE app_key = ?");
        sqlx::query(&sql)
            .bind(app_key)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(app_from_row)
            .transpose()
    }

    async fn get_app(&self, id: &AppId) -> Result<Option<App>, StoreError> {
        let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE id = ?");
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
        previous_until: Option<i64>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE apps SET previous_code_hash = CASE WHEN ?2 IS NULL THEN NULL ELSE code_hash END,
                             previous_code_until = ?2, code_hash = ?3
             WHERE id = ?1",
        )
        .bind(id.as_str())
        .bind(previous_until)
        .bind(code_hash.as_str())
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
        let done = sqlx::query("UPDATE apps SET app_key = ?, secret_sealed = ? WHERE id = ?")
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
            "UPDATE apps SET rate_per_sec = ?, rate_burst = ?, alert_percent = ?, webhook_url = ?
             WHERE id = ?",
        )
        .bind(policy.rate_per_sec)
        .bind(policy.rate_burst.map(i64::from))
        .bind(i64::from(policy.alert_percent))
        .bind(policy.webhook_url.as_deref())
        .bind(id.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from_write(e, "app", "app"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("app"));
        }
        Ok(())
    }

    async fn list_packages(&self) -> Result<Vec<Package>, StoreError> {
        sqlx::query("SELECT * FROM packages ORDER BY price_fen, calls, name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(metering::package_from_row)
            .collect()
    }

    async fn get_package(&self, name: &str) -> Result<Option<Package>, StoreError> {
        sqlx::query("SELECT * FROM packages WHERE name = ?")
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
             VALUES (?, ?, ?, ?, ?, ?)
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
        let sql = format!("SELECT {APP_COLUMNS} FROM apps ORDER BY created_at, id");
        sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(app_from_row)
            .collect()
    }

    async fn set_app_enabled(&self, id: &AppId, enabled: bool) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE apps SET enabled = ? WHERE id = ?")
            .bind(enabled)
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("app"));
        }
        Ok(())
    }

    async fn upsert_person(&self, id: &IdNumber, name: &PersonName) -> Result<Person, StoreError> {
        upsert_person_with(&self.pool, &self.templates, id, name, now_ms()).await
    }

    async fn enrol(
        &self,
        id: &IdNumber,
        name: &PersonName,
        portraits: Vec<NewPortrait>,
    ) -> Result<Person, StoreError> {
        if portraits.iter().any(|p| p.embedding.is_empty()) {
            return Err(StoreError::Invalid("embedding is empty".to_owned()));
        }
        let now = now_ms();
        let key = self.templates.person_key(id.as_str());
        let mut tx = self.pool.begin().await?;
        let person = upsert_person_with(&mut *tx, &self.templates, id, name, now).await?;
        for portrait in portraits {
            let quality = portrait.quality.as_ref().map(serde_json::Value::to_string);
            sqlx::query(
                "INSERT INTO portraits (id_number, model_id, embedding, sealed, quality, photo, created_at)
                 VALUES (?, ?, ?, 1, ?, ?, ?)",
            )
            .bind(&key)
            .bind(&portrait.model_id)
            .bind(
                self.templates
                    .seal(id.as_str(), &portrait.model_id, &portrait.embedding),
            )
            .bind(quality)
            .bind(portrait.photo)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from_write(e, "portrait", "person"))?;
        }
        tx.commit().await?;
        Ok(person)
    }

    async fn add_portrait(&self, id: &IdNumber, portrait: NewPortrait) -> Result<i64, StoreError> {
        if portrait.embedding.is_empty() {
            return Err(StoreError::Invalid("embedding is empty".to_owned()));
        }
        let quality = portrait.quality.as_ref().map(serde_json::Value::to_string);
        let row = sqlx::query(
            "INSERT INTO portraits (id_number, model_id, embedding, sealed, quality, photo, created_at)
             VALUES (?, ?, ?, 1, ?, ?, ?) RETURNING id",
        )
        .bind(self.templates.person_key(id.as_str()))
        .bind(&portrait.model_id)
        .bind(
            self.templates
                .seal(id.as_str(), &portrait.model_id, &portrait.embedding),
        )
        .bind(quality)
        .bind(portrait.photo)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from_write(e, "portrait", "person"))?;
        Ok(row.try_get("id")?)
    }

    async fn get_person(&self, id: &IdNumber) -> Result<Option<PersonRecord>, StoreError> {
        // One transaction, so a concurrent removal cannot leave us with a
        // person and someone else's half-deleted portrait list.
        let key = self.templates.person_key(id.as_str());
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query(
            "SELECT id_number, name, sealed, created_at, updated_at FROM persons WHERE id_number = ?",
        )
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let (stored_id, name) = identity_from_row(&row, &self.templates)?;
        if stored_id != *id {
            return Err(StoreError::Corrupt(
                "a registry row holds another identity".into(),
            ));
        }
        let person = Person {
            id_number: id.clone(),
            name,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        };
        let portraits = sqlx::query(
            "SELECT id, model_id, embedding, sealed, quality, photo IS NOT NULL AS has_photo, created_at
             FROM portraits WHERE id_number = ? ORDER BY id",
        )
        .bind(&key)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| portrait_from_row(row, id, &self.templates))
        .collect::<Result<_, _>>()?;
        tx.commit().await?;
        Ok(Some(PersonRecord { person, portraits }))
    }

    async fn persons_without_model(&self, model_id: &str) -> Result<Vec<IdNumber>, StoreError> {
        let mut ids = sqlx::query(
            "SELECT id_number, name, sealed FROM persons p
             WHERE EXISTS (SELECT 1 FROM portraits q WHERE q.id_number = p.id_number)
               AND NOT EXISTS (SELECT 1 FROM portraits q
                               WHERE q.id_number = p.id_number AND q.model_id = ?)",
        )
        .bind(model_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| identity_from_row(row, &self.templates).map(|(id, _)| id))
        .collect::<Result<Vec<_>, _>>()?;
        ids.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(ids)
    }

    async fn list_person_ids(
        &self,
        after: Option<&IdNumber>,
        limit: u32,
    ) -> Result<Vec<IdNumber>, StoreError> {
        sqlx::query(
            "SELECT id_number, name, sealed FROM persons WHERE ?1 IS NULL OR id_number > ?1
             ORDER BY id_number LIMIT ?2",
        )
        .bind(after.map(|id| self.templates.person_key(id.as_str())))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| identity_from_row(row, &self.templates).map(|(id, _)| id))
        .collect()
    }

    async fn kept_photos(&self, id: &IdNumber) -> Result<Vec<Vec<u8>>, StoreError> {
        let rows = sqlx::query(
            "SELECT photo FROM portraits WHERE id_number = ? AND photo IS NOT NULL ORDER BY id",
        )
        .bind(self.templates.person_key(id.as_str()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<Vec<u8>, _>("photo")?))
            .collect()
    }

    async fn remove_person(&self, id: &IdNumber, audit_key: &[u8]) -> Result<bool, StoreError> {
        let key = self.templates.person_key(id.as_str());
        let mut tx = self.pool.begin().await?;
        // Portraits explicitly rather than by cascade alone: the cascade
        // silently does nothing on a connection with foreign keys off, and
        // biometric data must not outlive its person.
        sqlx::query("DELETE FROM portraits WHERE id_number = ?")
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM persons WHERE id_number = ?")
            .bind(&key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "UPDATE audit SET name_masked = NULL, id_masked = NULL, id_hash = NULL WHERE id_hash = ?",
        )
        .bind(id.keyed_hash(audit_key))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE admin_events SET target = NULL, target_hash = NULL WHERE target_hash = ?",
        )
        .bind(id.keyed_hash(audit_key))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM id_attempts WHERE id_hash = ?")
            .bind(id.keyed_hash(audit_key))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.checkpoint().await;
        Ok(deleted > 0)
    }

    async fn purge_audit_before(&self, before_ms: i64) -> Result<u64, StoreError> {
        let purged = sqlx::query("DELETE FROM audit WHERE at < ?")
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
             FROM audit ORDER BY id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(audit_from_row)
        .collect()
    }

    async fn record_event(&self, event: &AdminEvent) -> Result<(), StoreError> {
        let target = event
            .person_masked
            .clone()
            .or_else(|| event.app_id.as_ref().map(|a| a.as_str().to_owned()));
        sqlx::query(
            "INSERT INTO admin_events (at, actor, action, target, target_hash, request_id, detail)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(event.at)
        .bind(&event.actor)
        .bind(&event.action)
        .bind(target)
        .bind(event.person_hash.as_deref())
        .bind(event.request_id.as_deref())
        .bind(event.detail.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn recent_events(&self, limit: u32) -> Result<Vec<AdminEventRecord>, StoreError> {
        sqlx::query(
            "SELECT id, at, actor, action, target, request_id, detail
             FROM admin_events ORDER BY id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(AdminEventRecord {
                id: row.try_get("id")?,
                at: row.try_get("at")?,
                actor: row.try_get("actor")?,
                action: row.try_get("action")?,
                target: row.try_get("target")?,
                request_id: row.try_get("request_id")?,
                detail: row.try_get("detail")?,
            })
        })
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
}

/// Creates or renames a person on any connection (the pool, or a transaction): the row
/// is keyed by the ID number's keyed hash and holds the identity sealed.
async fn upsert_person_with<'c, E>(
    executor: E,
    templates: &TemplateKey,
    id: &IdNumber,
    name: &PersonName,
    now: i64,
) -> Result<Person, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    let key = templates.person_key(id.as_str());
    let row = sqlx::query(
        "INSERT INTO persons (id_number, name, sealed, created_at, updated_at) VALUES (?, '', ?, ?, ?)
         ON CONFLICT (id_number) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at
         RETURNING created_at, updated_at",
    )
    .bind(&key)
    .bind(templates.seal_person(&key, id.as_str(), name.as_str()))
    .bind(now)
    .bind(now)
    .fetch_one(executor)
    .await?;
    Ok(Person {
        id_number: id.clone(),
        name: name.clone(),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode_embedding;

    #[tokio::test]
    async fn in_memory_state_survives_across_calls() {
        let store = SqliteStore::in_memory().await.unwrap();
        let hash = AppCodeHash::of("code");
        let new = NewApp {
            name: "a".into(),
            code_hash: hash.clone(),
            app_key: crate::generate_app_key(),
            secret_sealed: vec![1; 40],
        };
        store.create_app(&new).await.unwrap();
        // A second pool connection would see an empty database.
        for _ in 0..3 {
            assert!(store
                .find_app_by_code_hash(&hash, 0)
                .await
                .unwrap()
                .is_some());
        }
    }

    #[tokio::test]
    async fn open_uses_wal_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(
            dir.path().join("nested/dir/db.sqlite"),
            TemplateKey::random(),
        )
        .await
        .unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        store.close().await;
        // Reopening applies no migration twice.
        SqliteStore::open(
            dir.path().join("nested/dir/db.sqlite"),
            TemplateKey::random(),
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn templates_are_sealed_at_rest_and_clear_ones_are_sealed_on_opening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let key = TemplateKey::from_bytes(&[7u8; 32]).unwrap();
        let store = SqliteStore::open(&path, key.clone()).await.unwrap();
        let id = IdNumber::parse("11010519491231002X").unwrap();
        let name = PersonName::parse("张三").unwrap();
        let values = vec![0.125f32; 8];
        let portrait = |values: &[f32]| NewPortrait {
            model_id: "m".into(),
            embedding: values.to_vec(),
            quality: None,
            photo: None,
        };
        store
            .enrol(&id, &name, vec![portrait(&values)])
            .await
            .unwrap();
        let blob: Vec<u8> = sqlx::query_scalar("SELECT embedding FROM portraits")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_ne!(blob, encode_embedding(&values));
        assert!(!blob.windows(4).any(|w| w == 0.125f32.to_le_bytes()));
        // The person's row holds neither the ID number nor the name in clear.
        let (key_col, name_col, sealed): (String, String, Vec<u8>) =
            sqlx::query_as("SELECT id_number, name, sealed FROM persons")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(key_col, key.person_key(id.as_str()));
        assert_eq!(name_col, "");
        assert!(!sealed.windows(6).any(|w| w == "张三".as_bytes()));
        assert!(!sealed.windows(18).any(|w| w == id.as_str().as_bytes()));
        // A person and a portrait as an older release wrote them: clear.
        let old = IdNumber::parse("330106199003070022").unwrap();
        sqlx::query(
            "INSERT INTO persons (id_number, name, created_at, updated_at) VALUES (?, '李四', 0, 0)",
        )
        .bind(old.as_str())
        .execute(&store.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO portraits (id_number, model_id, embedding, created_at) VALUES (?, 'm', ?, 0)",
        )
        .bind(old.as_str())
        .bind(encode_embedding(&[0.5f32; 8]))
        .execute(&store.pool)
        .await
        .unwrap();
        store.close().await;

        let store = SqliteStore::open(&path, key.clone()).await.unwrap();
        let clear: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM portraits WHERE sealed = 0 OR length(id_number) <> 64)
                  + (SELECT COUNT(*) FROM persons WHERE sealed IS NULL OR name <> '')",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap();
        assert_eq!(clear, 0, "rows left in clear");
        let record = store.get_person(&id).await.unwrap().unwrap();
        let got: Vec<Vec<f32>> = record.portraits.into_iter().map(|p| p.embedding).collect();
        assert_eq!(got, vec![values]);
        let record = store.get_person(&old).await.unwrap().unwrap();
        assert_eq!(record.person.name.as_str(), "李四");
        let got: Vec<Vec<f32>> = record.portraits.into_iter().map(|p| p.embedding).collect();
        assert_eq!(got, vec![vec![0.5f32; 8]]);
        store.close().await;

        // Another key opens the database, but finds nobody and opens no identity.
        let store = SqliteStore::open(&path, TemplateKey::random())
            .await
            .unwrap();
        assert!(store.get_person(&id).await.unwrap().is_none());
        assert!(matches!(
            store.list_person_ids(None, 10).await,
            Err(StoreError::Corrupt(_))
        ));
    }

    #[tokio::test]
    async fn deleting_a_person_row_cascades_to_portraits() {
        // remove_person deletes portraits explicitly; this checks the schema's
        // own guarantee for anything that deletes persons by other means.
        let store = SqliteStore::in_memory().await.unwrap();
        let id = IdNumber::parse("11010519491231002X").unwrap();
        store
            .upsert_person(&id, &PersonName::parse("张三").unwrap())
            .await
            .unwrap();
        let portrait = NewPortrait {
            model_id: "m".to_owned(),
            embedding: vec![1.0; 128],
            quality: None,
            photo: None,
        };
        store.add_portrait(&id, portrait).await.unwrap();
        sqlx::query("DELETE FROM persons WHERE id_number = ?")
            .bind(store.templates.person_key(id.as_str()))
            .execute(&store.pool)
            .await
            .unwrap();
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM portraits")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn bad_embedding_blob_reads_as_corrupt() {
        let store = SqliteStore::in_memory().await.unwrap();
        let id = IdNumber::parse("11010519491231002X").unwrap();
        let name = PersonName::parse("张三").unwrap();
        store.upsert_person(&id, &name).await.unwrap();
        sqlx::query(
            "INSERT INTO portraits (id_number, model_id, embedding, created_at)
             VALUES (?, 'm', x'010203', 0)",
        )
        .bind(store.templates.person_key(id.as_str()))
        .execute(&store.pool)
        .await
        .unwrap();
        assert!(matches!(
            store.get_person(&id).await,
            Err(StoreError::Corrupt(_))
        ));
    }

    #[tokio::test]
    async fn kept_photos_are_stored_byte_for_byte() {
        let store = SqliteStore::in_memory().await.unwrap();
        let id = IdNumber::parse("11010519491231002X").unwrap();
        let name = PersonName::parse("张三").unwrap();
        let sealed = vec![0u8, 1, 2, 255, 0, 7];
        let portrait = NewPortrait {
            model_id: "m".into(),
            embedding: vec![0.5; 4],
            quality: None,
            photo: Some(sealed.clone()),
        };
        store.enrol(&id, &name, vec![portrait]).await.unwrap();
        let stored: Vec<u8> = sqlx::query_scalar("SELECT photo FROM portraits")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(stored, sealed);
    }
}
