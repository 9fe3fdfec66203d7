//! Key records and the re-sealing work of key rotations.

use sqlx::Row;

use super::compliance::BASIS_COLUMNS;
use super::dialect::{Backend, BYTE_ORDER};
use super::registry::{bump_version, log_person_removal};
use super::{identity_from_row, DbRow};
use crate::{AppId, KeyRecord, RekeyBatch, SealedData, SealedPhoto, StoreError, TemplateKey};

/// Re-seals the portraits of `rows` (`id`, `model_id`, `embedding`, `sealed`) of the
/// person `id_number` under the current key, moving them to the row `to`; returns their ids.
async fn reseal_portraits(
    tx: &mut sqlx::Transaction<'_, super::Db>,
    templates: &TemplateKey,
    id_number: &str,
    rows: &[DbRow],
    to: &str,
) -> Result<Vec<i64>, StoreError> {
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows {
        let portrait_id: i64 = row.try_get("id")?;
        let model_id: String = row.try_get("model_id")?;
        let blob: &[u8] = row.try_get("embedding")?;
        let values = if row.try_get::<bool, _>("sealed")? {
            templates.open(id_number, &model_id, blob)?
        } else {
            crate::decode_embedding(blob)?
        };
        sqlx::query(
            "UPDATE portraits SET id_number = $1, embedding = $2, sealed = TRUE WHERE id = $3",
        )
        .bind(to)
        .bind(templates.seal(id_number, &model_id, &values))
        .bind(portrait_id)
        .execute(&mut **tx)
        .await?;
        ids.push(portrait_id);
    }
    Ok(ids)
}

impl Backend {
    pub(super) async fn do_key_record(&self, name: &str) -> Result<Option<KeyRecord>, StoreError> {
        let Some(row) =
            sqlx::query("SELECT fingerprint, previous FROM key_fingerprints WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
        else {
            return Ok(None);
        };
        let retired = sqlx::query_scalar(
            "SELECT fingerprint FROM retired_keys WHERE name = $1 ORDER BY retired_at",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(KeyRecord {
            current: row.try_get("fingerprint")?,
            previous: row.try_get("previous")?,
            retired,
        }))
    }

    pub(super) async fn do_begin_key_rotation(
        &self,
        name: &str,
        from: &str,
        to: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // A write first: it takes the row's lock on PostgreSQL and SQLite's write lock
        // before anything is read (a SQLite transaction that reads and then writes fails
        // at once when another wrote meanwhile, instead of waiting).
        sqlx::query("UPDATE key_fingerprints SET name = name WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query("SELECT fingerprint, previous FROM key_fingerprints WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("key record"))?;
        let current: String = row.try_get("fingerprint")?;
        let previous: Option<String> = row.try_get("previous")?;
        if current == to {
            return Ok(());
        }
        if current != from {
            return Err(StoreError::Conflict(
                "the database's current key is not the one rotated from",
            ));
        }
        if previous.is_some() {
            return Err(StoreError::Conflict(
                "the previous rotation's key is not retired yet",
            ));
        }
        let retired: Option<String> = sqlx::query_scalar(
            "SELECT fingerprint FROM retired_keys WHERE name = $1 AND fingerprint = $2",
        )
        .bind(name)
        .bind(to)
        .fetch_optional(&mut *tx)
        .await?;
        if retired.is_some() {
            return Err(StoreError::Conflict("that key was retired"));
        }
        sqlx::query(
            "UPDATE key_fingerprints SET fingerprint = $2, previous = $3, created_at = $4
             WHERE name = $1",
        )
        .bind(name)
        .bind(to)
        .bind(from)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if name == "template" {
            // Scans in progress name persons by handles, which a new key changes.
            sqlx::query("DELETE FROM duplicate_scans")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn do_retire_key(
        &self,
        name: &str,
        fingerprint: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE key_fingerprints SET previous = NULL WHERE name = $1 AND previous = $2",
        )
        .bind(name)
        .bind(fingerprint)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
            return Err(StoreError::NotFound("previous key"));
        }
        sqlx::query(
            "INSERT INTO retired_keys (name, fingerprint, retired_at) VALUES ($1, $2, $3)
             ON CONFLICT (name, fingerprint) DO NOTHING",
        )
        .bind(name)
        .bind(fingerprint)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn do_count_not_sealed_under(
        &self,
        data: SealedData,
        prefix: &[u8],
    ) -> Result<u64, StoreError> {
        let (table, column) = data.column();
        let sql = format!(
            "SELECT COUNT(*) FROM {table}
             WHERE {column} IS NOT NULL AND substr({column}, 1, {len}) <> $1",
            len = prefix.len()
        );
        let n: i64 = sqlx::query_scalar(&sql)
            .bind(prefix)
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub(super) async fn do_rekey_registry(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<RekeyBatch, StoreError> {
        let templates = self.templates();
        let prefix = templates.sealed_prefix();
        let mut tx = self.pool.begin().await?;
        // The registry's lock: no enrolment, replacement or removal runs between reading a
        // person and moving them, and the in-memory indexes learn the moves as a version.
        let version = bump_version(&mut tx, None).await?;
        // A plain range from the cursor ("" sorts first), not `$2 IS NULL OR …`: that
        // form keeps the planner off the key index, and every batch then reads the
        // table from its start (a rotation of 100,000 persons took 2.8 times as long per
        // person as one of 10,000).
        let sql = format!(
            "SELECT id_number, name, sealed, created_at, updated_at FROM persons
             WHERE id_number {BYTE_ORDER} > $2
               AND sealed IS NOT NULL AND substr(sealed, 1, {len}) <> $1
             ORDER BY id_number {BYTE_ORDER} LIMIT $3",
            len = prefix.len()
        );
        let persons = sqlx::query(&sql)
            .bind(&prefix)
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        let mut batch = RekeyBatch::default();
        for row in &persons {
            let old_key: String = row.try_get("id_number")?;
            let (id, name) = identity_from_row(row, &templates)?;
            let new_key = templates.person_key(id.as_str());
            let portraits = sqlx::query(
                "SELECT id, model_id, embedding, sealed FROM portraits WHERE id_number = $1",
            )
            .bind(&old_key)
            .fetch_all(&mut *tx)
            .await?;
            log_person_removal(&mut tx, version, &old_key).await?;
            let sealed = templates.seal_person(&new_key, id.as_str(), name.as_str());
            let name_hash = templates.name_key(name.as_str());
            if new_key == old_key {
                sqlx::query("UPDATE persons SET sealed = $2, name_hash = $3 WHERE id_number = $1")
                    .bind(&old_key)
                    .bind(&sealed)
                    .bind(&name_hash)
                    .execute(&mut *tx)
                    .await?;
            } else {
                // The new row first, then the portraits, then the old row: every statement
                // keeps the portraits' foreign key satisfied, on both databases.
                // Everything but the key and what it seals is copied as it is (dates,
                // the legal basis, the last check).
                sqlx::query(&format!(
                    "INSERT INTO persons (id_number, name, sealed, name_hash, created_at, updated_at,
                         last_checked_at, {BASIS_COLUMNS})
                     SELECT $1, '', $2, $3, created_at, updated_at, last_checked_at, {BASIS_COLUMNS}
                     FROM persons WHERE id_number = $4"
                ))
                .bind(&new_key)
                .bind(&sealed)
                .bind(&name_hash)
                .bind(&old_key)
                .execute(&mut *tx)
                .await?;
            }
            let moved =
                reseal_portraits(&mut tx, &templates, id.as_str(), &portraits, &new_key).await?;
            if new_key != old_key {
                sqlx::query("DELETE FROM persons WHERE id_number = $1")
                    .bind(&old_key)
                    .execute(&mut *tx)
                    .await?;
            }
            for portrait_id in &moved {
                sqlx::query(
                    "INSERT INTO registry_log (version, change, portrait_id) VALUES ($1, 'added', $2)",
                )
                .bind(version)
                .bind(portrait_id)
                .execute(&mut *tx)
                .await?;
            }
            batch.persons += 1;
            batch.templates += moved.len() as u64;
            batch.cursor = Some(old_key);
        }
        // Templates left under another key by a person already moved (none, unless a
        // node that did not yet know the new key added a portrait meanwhile). Swept once
        // the persons are done, not with every batch: the sweep reads every portrait
        // (no index finds the strays), and per batch it made a rotation quadratic.
        if !persons.is_empty() {
            tx.commit().await?;
            return Ok(batch);
        }
        let sql = format!(
            "SELECT q.id, q.model_id, q.embedding, q.sealed, p.id_number AS person_key,
                    p.name, p.sealed AS person_sealed
             FROM portraits q JOIN persons p ON p.id_number = q.id_number
             WHERE substr(q.embedding, 1, {len}) <> $1 AND substr(p.sealed, 1, {len}) = $1
             LIMIT $2",
            len = prefix.len()
        );
        let strays = sqlx::query(&sql)
            .bind(&prefix)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        for row in &strays {
            let key: String = row.try_get("person_key")?;
            let blob: Vec<u8> = row.try_get("person_sealed")?;
            let (id, _) = templates.open_person(&key, &blob)?;
            batch.templates +=
                reseal_portraits(&mut tx, &templates, &id, std::slice::from_ref(row), &key)
                    .await?
                    .len() as u64;
        }
        // A full sweep may have left more: the caller comes back with the same cursor.
        if strays.len() as u64 >= u64::from(limit) {
            batch.cursor = Some(after.unwrap_or_default().to_owned());
        }
        tx.commit().await?;
        Ok(batch)
    }

    pub(super) async fn do_photos_not_sealed_under(
        &self,
        prefix: &[u8],
        after: i64,
        limit: u32,
    ) -> Result<Vec<SealedPhoto>, StoreError> {
        let templates = self.templates();
        let sql = format!(
            "SELECT q.id AS portrait_id, q.photo, p.id_number, p.name, p.sealed
             FROM portraits q JOIN persons p ON p.id_number = q.id_number
             WHERE q.photo IS NOT NULL AND substr(q.photo, 1, {len}) <> $1 AND q.id > $2
             ORDER BY q.id LIMIT $3",
            len = prefix.len()
        );
        sqlx::query(&sql)
            .bind(prefix)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok(SealedPhoto {
                    portrait_id: row.try_get("portrait_id")?,
                    id_number: identity_from_row(row, &templates)?.0,
                    sealed: row.try_get("photo")?,
                })
            })
            .collect()
    }

    pub(super) async fn do_reseal_photo(
        &self,
        portrait_id: i64,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE portraits SET photo = $3 WHERE id = $1 AND photo = $2")
            .bind(portrait_id)
            .bind(old)
            .bind(new)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(done == 1)
    }

    pub(super) async fn do_reseal_app_code(
        &self,
        id: &AppId,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE apps SET code_sealed = $3 WHERE id = $1 AND code_sealed = $2")
                .bind(id.as_str())
                .bind(old)
                .bind(new)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(done == 1)
    }

    pub(super) async fn do_reseal_app_secret(
        &self,
        id: &AppId,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE apps SET secret_sealed = $3 WHERE id = $1 AND secret_sealed = $2")
                .bind(id.as_str())
                .bind(old)
                .bind(new)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(done == 1)
    }
}
