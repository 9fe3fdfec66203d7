//! The registry's guarded writes and the reads of its templates.
//!
//! Every write that adds or removes portraits goes through [`bump_version`] first, in its
//! own transaction: that takes the registry's one write lock (the `registry_state` row),
//! refuses a write checked against an older version ([`StoreError::Stale`]) and returns
//! the version the write's log entries carry. Readers of the log (every node's in-memory
//! index) apply each version's changes once.

use renzheng_domain::{IdNumber, PersonName};
use sqlx::{Row, Transaction};

use super::compliance::write_basis;
use super::dialect::{self, Backend, Db};
use super::{identity_from_row, locate, upsert_person_with, DbRow};
use crate::embedding::ViewIndex;
use crate::{
    decode_embedding, BasisRecord, DuplicateScan, NewPortrait, Person, PersonHandle, PersonSummary,
    StoreError, StoredTemplate, TemplateChanges, TemplateKey,
};

/// The columns [`template_from_row`] reads: the person's (key, sealed identity) and the
/// portrait's.
const TEMPLATE_COLUMNS: &str = "p.id_number, p.name, p.sealed, q.id AS portrait_id, q.model_id,
    q.embedding, q.sealed AS template_sealed";

/// Most ids bound in one `IN (…)` list (SQLite allows 32,766 parameters).
const IDS_PER_QUERY: usize = 500;

fn template_from_row(row: &DbRow, templates: &TemplateKey) -> Result<StoredTemplate, StoreError> {
    let (id_number, _) = identity_from_row(row, templates)?;
    let key: String = row.try_get("id_number")?;
    let model_id: String = row.try_get("model_id")?;
    let blob = row.try_get::<&[u8], _>("embedding")?;
    let embedding = if row.try_get::<bool, _>("template_sealed")? {
        templates.open(id_number.as_str(), &model_id, blob)?
    } else {
        decode_embedding(blob)?
    };
    Ok(StoredTemplate {
        portrait_id: row.try_get("portrait_id")?,
        owner: PersonHandle::from_key(&key)?,
        id_number,
        embedding,
    })
}

/// Takes the registry's write lock until `tx` ends and moves it to the next version,
/// which it returns; with `expected`, only from that version ([`StoreError::Stale`]
/// otherwise). The lock is the row's: PostgreSQL holds it until commit, and SQLite's
/// first write takes the database's one write lock.
pub(super) async fn bump_version(
    tx: &mut Transaction<'_, Db>,
    expected: Option<i64>,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "UPDATE registry_state SET version = version + 1
         WHERE id = 1 AND (CAST($1 AS BIGINT) IS NULL OR version = $1) RETURNING version",
    )
    .bind(expected)
    .fetch_optional(&mut **tx)
    .await?;
    match row {
        Some(row) => Ok(row.try_get("version")?),
        None => Err(StoreError::Stale),
    }
}

/// Takes the registry's write lock until `tx` ends without moving the version (a write
/// that changes no template, such as a rename, but must not run while a key rotation
/// moves the person).
pub(super) async fn lock_registry(tx: &mut Transaction<'_, Db>) -> Result<(), StoreError> {
    sqlx::query("UPDATE registry_state SET version = version WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Logs that the portraits of `person_key` are about to be removed (call before deleting).
pub(super) async fn log_person_removal(
    tx: &mut Transaction<'_, Db>,
    version: i64,
    person_key: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO registry_log (version, change, portrait_id)
         SELECT $1, 'removed', id FROM portraits WHERE id_number = $2",
    )
    .bind(version)
    .bind(person_key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts one portrait of the person stored under `key` (made by `view`, see
/// [`locate`]), sealed by the same key, and logs it; returns its id.
pub(super) async fn insert_portrait(
    tx: &mut Transaction<'_, Db>,
    templates: &TemplateKey,
    (key, view): (&str, ViewIndex),
    version: i64,
    id: &IdNumber,
    portrait: NewPortrait,
    now_ms: i64,
) -> Result<i64, StoreError> {
    if portrait.embedding.is_empty() {
        return Err(StoreError::Invalid("embedding is empty".to_owned()));
    }
    let quality = portrait.quality.as_ref().map(serde_json::Value::to_string);
    let row = sqlx::query(
        "INSERT INTO portraits (id_number, model_id, embedding, sealed, quality, photo, created_at)
         VALUES ($1, $2, $3, TRUE, $4, $5, $6) RETURNING id",
    )
    .bind(key)
    .bind(&portrait.model_id)
    .bind(templates.seal_in(view, id.as_str(), &portrait.model_id, &portrait.embedding))
    .bind(quality)
    .bind(portrait.photo)
    .bind(now_ms)
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| StoreError::from_write(e, "portrait", "person"))?;
    let portrait_id: i64 = row.try_get("id")?;
    sqlx::query("INSERT INTO registry_log (version, change, portrait_id) VALUES ($1, 'added', $2)")
        .bind(version)
        .bind(portrait_id)
        .execute(&mut **tx)
        .await?;
    Ok(portrait_id)
}

/// The person stored under `key`, read in `tx`.
async fn person_in(
    tx: &mut Transaction<'_, Db>,
    templates: &TemplateKey,
    key: &str,
) -> Result<Option<Person>, StoreError> {
    let Some(row) = sqlx::query(
        "SELECT id_number, name, sealed, created_at, updated_at FROM persons WHERE id_number = $1",
    )
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None);
    };
    let (id_number, name) = identity_from_row(&row, templates)?;
    Ok(Some(Person {
        handle: PersonHandle::from_key(key)?,
        id_number,
        name,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    }))
}

impl Backend {
    pub(super) async fn do_enrol(
        &self,
        id: &IdNumber,
        name: &PersonName,
        portraits: Vec<NewPortrait>,
        basis: Option<&BasisRecord>,
        expected_version: Option<i64>,
        now_ms: i64,
    ) -> Result<Person, StoreError> {
        if portraits.iter().any(|p| p.embedding.is_empty()) {
            return Err(StoreError::Invalid("embedding is empty".to_owned()));
        }
        let templates = self.templates();
        let mut tx = self.pool.begin().await?;
        let version = bump_version(&mut tx, expected_version).await?;
        let (key, view) = locate(&mut *tx, &templates, id).await?;
        let person = match person_in(&mut tx, &templates, &key).await? {
            Some(person) if person.name != *name => {
                return Err(StoreError::Conflict("person under another name"))
            }
            Some(person) => person,
            None => upsert_person_with(&mut *tx, &templates, &key, view, id, name, now_ms).await?,
        };
        for portrait in portraits {
            insert_portrait(
                &mut tx,
                &templates,
                (&key, view),
                version,
                id,
                portrait,
                now_ms,
            )
            .await?;
        }
        if let Some(basis) = basis {
            write_basis(&mut *tx, &key, basis).await?;
        }
        tx.commit().await?;
        Ok(person)
    }

    pub(super) async fn do_rename_person(
        &self,
        id: &IdNumber,
        name: &PersonName,
        now_ms: i64,
    ) -> Result<Person, StoreError> {
        let templates = self.templates();
        // Under the registry's lock, so that a key rotation does not move the person
        // between finding and writing them.
        let mut tx = self.pool.begin().await?;
        lock_registry(&mut tx).await?;
        let (key, view) = locate(&mut *tx, &templates, id).await?;
        let row = sqlx::query(
            "UPDATE persons SET sealed = $2, updated_at = $3, name_hash = $4 WHERE id_number = $1
             RETURNING created_at, updated_at",
        )
        .bind(&key)
        .bind(templates.seal_person_in(view, &key, id.as_str(), name.as_str()))
        .bind(now_ms)
        .bind(templates.name_key_in(view, name.as_str()))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound("person"))?;
        tx.commit().await?;
        Ok(Person {
            handle: PersonHandle::from_key(&key)?,
            id_number: id.clone(),
            name: name.clone(),
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    pub(super) async fn do_replace_portraits(
        &self,
        id: &IdNumber,
        portraits: Vec<NewPortrait>,
        basis: Option<&BasisRecord>,
        expected_version: Option<i64>,
        now_ms: i64,
    ) -> Result<Person, StoreError> {
        if portraits.iter().any(|p| p.embedding.is_empty()) {
            return Err(StoreError::Invalid("embedding is empty".to_owned()));
        }
        let templates = self.templates();
        let mut tx = self.pool.begin().await?;
        let version = bump_version(&mut tx, expected_version).await?;
        let (key, view) = locate(&mut *tx, &templates, id).await?;
        let person = person_in(&mut tx, &templates, &key)
            .await?
            .ok_or(StoreError::NotFound("person"))?;
        log_person_removal(&mut tx, version, &key).await?;
        sqlx::query("DELETE FROM portraits WHERE id_number = $1")
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        for portrait in portraits {
            insert_portrait(
                &mut tx,
                &templates,
                (&key, view),
                version,
                id,
                portrait,
                now_ms,
            )
            .await?;
        }
        if let Some(basis) = basis {
            write_basis(&mut *tx, &key, basis).await?;
        }
        tx.commit().await?;
        dialect::after_removal(self).await;
        Ok(person)
    }

    pub(super) async fn do_registry_version(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT version FROM registry_state WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("version")?)
    }

    pub(super) async fn do_templates_after(
        &self,
        model_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredTemplate>, StoreError> {
        let sql = format!(
            "SELECT {TEMPLATE_COLUMNS} FROM portraits q JOIN persons p ON p.id_number = q.id_number
             WHERE q.model_id = $1 AND q.id > $2 ORDER BY q.id LIMIT $3"
        );
        sqlx::query(&sql)
            .bind(model_id)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| template_from_row(row, &self.templates()))
            .collect()
    }

    pub(super) async fn do_templates_by_ids(
        &self,
        ids: &[i64],
    ) -> Result<Vec<StoredTemplate>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT {TEMPLATE_COLUMNS} FROM portraits q
                 JOIN persons p ON p.id_number = q.id_number
                 WHERE q.id IN ({}) ORDER BY q.id",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&self.pool).await? {
                found.push(template_from_row(&row, &self.templates())?);
            }
        }
        Ok(found)
    }

    pub(super) async fn do_template_changes(
        &self,
        model_id: &str,
        after: i64,
    ) -> Result<TemplateChanges, StoreError> {
        let mut tx = dialect::begin_snapshot(&self.pool).await?;
        let version: i64 = sqlx::query("SELECT version FROM registry_state WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?
            .try_get("version")?;
        if version == after {
            tx.commit().await?;
            return Ok(TemplateChanges {
                version,
                ..TemplateChanges::default()
            });
        }
        let removed = sqlx::query(
            "SELECT portrait_id FROM registry_log WHERE version > $1 AND change = 'removed'",
        )
        .bind(after)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get("portrait_id"))
        .collect::<Result<Vec<i64>, _>>()?;
        let sql = format!(
            "SELECT {TEMPLATE_COLUMNS} FROM registry_log l
             JOIN portraits q ON q.id = l.portrait_id
             JOIN persons p ON p.id_number = q.id_number
             WHERE l.version > $1 AND l.change = 'added' AND q.model_id = $2 ORDER BY q.id"
        );
        let added = sqlx::query(&sql)
            .bind(after)
            .bind(model_id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| template_from_row(row, &self.templates()))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit().await?;
        Ok(TemplateChanges {
            version,
            removed,
            added,
        })
    }

    pub(super) async fn do_person_by_handle(
        &self,
        handle: PersonHandle,
    ) -> Result<Option<IdNumber>, StoreError> {
        // The handle is the key's first 16 hex digits: a range over the primary key ('g'
        // sorts after every hex digit in any collation).
        let prefix = handle.key_prefix();
        let rows = sqlx::query(
            "SELECT id_number, name, sealed FROM persons WHERE id_number >= $1 AND id_number < $2",
        )
        .bind(&prefix)
        .bind(format!("{prefix}g"))
        .fetch_all(&self.pool)
        .await?;
        match rows.as_slice() {
            [] => Ok(None),
            [row] => Ok(Some(identity_from_row(row, &self.templates())?.0)),
            _ => Err(StoreError::Conflict("several persons under one handle")),
        }
    }
}

impl Backend {
    pub(super) async fn do_count_persons(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM persons")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub(super) async fn do_persons_page(
        &self,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<PersonSummary>, StoreError> {
        sqlx::query(
            "SELECT p.id_number, p.name, p.sealed, p.created_at,
                    (SELECT COUNT(*) FROM portraits q WHERE q.id_number = p.id_number) AS portraits
             FROM persons p ORDER BY p.created_at DESC, p.id_number DESC LIMIT $1 OFFSET $2",
        )
        .bind(i64::from(limit))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| self.summary_from_row(row))
        .collect()
    }

    pub(super) async fn do_persons_named(
        &self,
        name: &PersonName,
        limit: u32,
    ) -> Result<Vec<PersonSummary>, StoreError> {
        // One hash per key of the ring: while a rotation runs, a person may be under either.
        let mut found = Vec::new();
        for name_key in self.templates().name_keys(name.as_str()) {
            let rows = sqlx::query(
                "SELECT p.id_number, p.name, p.sealed, p.created_at,
                        (SELECT COUNT(*) FROM portraits q WHERE q.id_number = p.id_number) AS portraits
                 FROM persons p WHERE p.name_hash = $1
                 ORDER BY p.created_at DESC, p.id_number DESC LIMIT $2",
            )
            .bind(name_key)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            for row in &rows {
                let summary = self.summary_from_row(row)?;
                // The hash matched; the sealed name must too (a collision is not a match).
                if summary.name == *name {
                    found.push(summary);
                }
            }
        }
        found.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        found.truncate(limit as usize);
        Ok(found)
    }

    fn summary_from_row(&self, row: &DbRow) -> Result<PersonSummary, StoreError> {
        let (id_number, name) = identity_from_row(row, &self.templates())?;
        let key: String = row.try_get("id_number")?;
        Ok(PersonSummary {
            handle: PersonHandle::from_key(&key)?,
            id_number,
            name,
            portraits: u32::try_from(row.try_get::<i64, _>("portraits")?).unwrap_or(u32::MAX),
            created_at: row.try_get("created_at")?,
        })
    }

    /// Fills the name hash of the rows written before it existed (opening each sealed
    /// identity); returns how many. Idempotent, so nodes opening at once do no harm.
    pub(crate) async fn fill_name_hashes(&self) -> Result<u64, StoreError> {
        let rows = sqlx::query(
            "SELECT id_number, name, sealed FROM persons WHERE name_hash IS NULL AND sealed IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            let key: String = row.try_get("id_number")?;
            let templates = self.templates();
            let (id, name) = identity_from_row(row, &templates)?;
            // Under the key that made the row's own key (a row of an older release).
            let view = templates
                .view_of(id.as_str(), &key)
                .unwrap_or(ViewIndex::CURRENT);
            sqlx::query("UPDATE persons SET name_hash = $1 WHERE id_number = $2")
                .bind(templates.name_key_in(view, name.as_str()))
                .bind(&key)
                .execute(&self.pool)
                .await?;
        }
        Ok(rows.len() as u64)
    }
}

impl Backend {
    pub(super) async fn do_duplicate_scan(
        &self,
        model_id: &str,
    ) -> Result<Option<DuplicateScan>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT model_id, started_at, line_distance, cursor, findings, updated_at
             FROM duplicate_scans WHERE model_id = $1",
        )
        .bind(model_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        Ok(Some(DuplicateScan {
            model_id: row.try_get("model_id")?,
            started_at: row.try_get("started_at")?,
            line_distance: row.try_get("line_distance")?,
            cursor: row.try_get("cursor")?,
            findings: row.try_get("findings")?,
            updated_at: row.try_get("updated_at")?,
        }))
    }

    pub(super) async fn do_save_duplicate_scan(
        &self,
        scan: &DuplicateScan,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO duplicate_scans (model_id, started_at, line_distance, cursor, findings, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (model_id) DO UPDATE SET started_at = excluded.started_at,
                 line_distance = excluded.line_distance, cursor = excluded.cursor,
                 findings = excluded.findings, updated_at = excluded.updated_at",
        )
        .bind(&scan.model_id)
        .bind(scan.started_at)
        .bind(scan.line_distance)
        .bind(scan.cursor)
        .bind(&scan.findings)
        .bind(scan.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn do_end_duplicate_scan(&self, model_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM duplicate_scans WHERE model_id = $1")
            .bind(model_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
