//! What the registry keeps for the rules on face information: each person's legal basis
//! (columns of `persons`, written in the transaction that stores their face), the counts
//! an operator reports, and the dates lines were reached (`compliance_marks`).

use renzheng_domain::{BasisKind, IdNumber, LegalBasis, Reference};
use sqlx::Row;

use super::dialect::{Backend, Db, BYTE_ORDER, GREATEST};
use super::{identity_from_row, locate, DbRow};
use crate::{
    BasisRecord, ComplianceCounts, DuePerson, PersonHandle, Processing, ProcessingAction,
    ProcessingRecord, RetentionCutoffs, RetentionDue, StoreError,
};

/// The persons the retention has come to: enrolled (or their basis last renewed) before
/// `$1`, or not checked since `$2` (counting from enrolment when never checked); a NULL
/// cut-off matches nobody.
fn due_condition() -> String {
    format!(
        "({GREATEST}(created_at, COALESCE(basis_at, created_at)) < $1
          OR COALESCE(last_checked_at, created_at) < $2)"
    )
}

/// Writes `processing` as a record made at `at` by `actor` (in the caller's transaction).
pub(super) async fn insert_processing<'c, E>(
    executor: E,
    processing: &Processing,
    at: i64,
    actor: &str,
    result: Option<i64>,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = Db>,
{
    sqlx::query(
        "INSERT INTO processing_records (at, action, person_masked, person_hash, actor, basis, result)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(at)
    .bind(processing.action.as_str())
    .bind(processing.person_masked())
    .bind(processing.person_hash())
    .bind(actor)
    .bind(processing.basis.map(BasisKind::as_str))
    .bind(result)
    .execute(executor)
    .await?;
    Ok(())
}

fn processing_from_row(row: &DbRow) -> Result<ProcessingRecord, StoreError> {
    let action: String = row.try_get("action")?;
    let basis: Option<String> = row.try_get("basis")?;
    Ok(ProcessingRecord {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        action: ProcessingAction::parse(&action).ok_or_else(|| {
            StoreError::Corrupt("a processing record has an unknown action".into())
        })?,
        person_masked: row.try_get("person_masked")?,
        person_hash: row.try_get("person_hash")?,
        actor: row.try_get("actor")?,
        basis: basis
            .map(|b| {
                BasisKind::parse(&b).map_err(|_| {
                    StoreError::Corrupt("a processing record has an unknown basis".into())
                })
            })
            .transpose()?,
        result: row.try_get("result")?,
    })
}

/// The basis columns of `persons`, in the order [`write_basis`] binds them.
pub(super) const BASIS_COLUMNS: &str =
    "basis, basis_ref, guardian_ref, purpose, basis_at, basis_actor";

/// The basis of a `persons` row selected with [`BASIS_COLUMNS`]; `None` when none was
/// recorded.
pub(super) fn basis_from_row(row: &DbRow) -> Result<Option<BasisRecord>, StoreError> {
    let Some(kind) = row.try_get::<Option<String>, _>("basis")? else {
        return Ok(None);
    };
    let corrupt = |what: &str| StoreError::Corrupt(format!("a person's basis has {what}"));
    let kind = BasisKind::parse(&kind).map_err(|_| corrupt("an unknown kind"))?;
    let text = |column: &'static str| -> Result<Option<Reference>, StoreError> {
        row.try_get::<Option<String>, _>(column)?
            .map(|t| Reference::parse(&t, column).map_err(|_| corrupt("an invalid text")))
            .transpose()
    };
    let reference = text("basis_ref")?.ok_or_else(|| corrupt("no reference"))?;
    let purpose = text("purpose")?.ok_or_else(|| corrupt("no purpose"))?;
    Ok(Some(BasisRecord {
        basis: LegalBasis::new(kind, reference, text("guardian_ref")?),
        purpose,
        recorded_at: row
            .try_get::<Option<i64>, _>("basis_at")?
            .ok_or_else(|| corrupt("no date"))?,
        actor: row
            .try_get::<Option<String>, _>("basis_actor")?
            .unwrap_or_default(),
    }))
}

/// Records `basis` on the person stored under `key` (replacing any).
pub(super) async fn write_basis<'c, E>(
    executor: E,
    key: &str,
    basis: &BasisRecord,
) -> Result<u64, StoreError>
where
    E: sqlx::Executor<'c, Database = Db>,
{
    let done = sqlx::query(
        "UPDATE persons SET basis = $2, basis_ref = $3, guardian_ref = $4, purpose = $5,
             basis_at = $6, basis_actor = $7
         WHERE id_number = $1",
    )
    .bind(key)
    .bind(basis.basis.kind().as_str())
    .bind(basis.basis.reference().as_str())
    .bind(basis.basis.guardian_consent().map(Reference::as_str))
    .bind(basis.purpose.as_str())
    .bind(basis.recorded_at)
    .bind(&basis.actor)
    .execute(executor)
    .await?;
    Ok(done.rows_affected())
}

impl Backend {
    pub(super) async fn do_record_basis(
        &self,
        id: &IdNumber,
        basis: &BasisRecord,
    ) -> Result<(), StoreError> {
        let templates = self.templates();
        let mut tx = self.pool.begin().await?;
        let (key, _) = locate(&mut *tx, &templates, id).await?;
        if write_basis(&mut *tx, &key, basis).await? == 0 {
            return Err(StoreError::NotFound("person"));
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn do_compliance_counts(&self) -> Result<ComplianceCounts, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS with_face,
                    COUNT(*) FILTER (WHERE p.basis IS NULL) AS without_basis,
                    (SELECT MIN(created_at) FROM portraits) AS oldest
             FROM persons p
             WHERE EXISTS (SELECT 1 FROM portraits q WHERE q.id_number = p.id_number)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(ComplianceCounts {
            persons_with_face_data: row.try_get::<i64, _>("with_face")?.max(0) as u64,
            persons_without_basis: row.try_get::<i64, _>("without_basis")?.max(0) as u64,
            oldest_face_data_at: row.try_get("oldest")?,
        })
    }

    pub(super) async fn do_face_data_reached(&self, n: u64) -> Result<Option<i64>, StoreError> {
        let Some(offset) = n.checked_sub(1) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT first FROM (SELECT MIN(created_at) AS first FROM portraits GROUP BY id_number) f
             ORDER BY first LIMIT 1 OFFSET $1",
        )
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("first")?),
            None => None,
        })
    }

    pub(super) async fn do_compliance_mark(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT at FROM compliance_marks WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("at")?),
            None => None,
        })
    }

    pub(super) async fn do_set_compliance_mark(
        &self,
        name: &str,
        at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let done = match at {
            // The first node to see a line reached dates it; later ones keep that date.
            Some(at) => {
                sqlx::query(
                    "INSERT INTO compliance_marks (name, at) VALUES ($1, $2)
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(at)
                .execute(&self.pool)
                .await?
            }
            None => {
                sqlx::query("DELETE FROM compliance_marks WHERE name = $1")
                    .bind(name)
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn do_note_person_checked(
        &self,
        id: &IdNumber,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let templates = self.templates();
        let mut tx = self.pool.begin().await?;
        let key = match locate(&mut *tx, &templates, id).await {
            Ok((key, _)) => key,
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        // Never backwards: two nodes noting the same day race harmlessly.
        sqlx::query(
            "UPDATE persons SET last_checked_at = $2
             WHERE id_number = $1 AND (last_checked_at IS NULL OR last_checked_at < $2)",
        )
        .bind(&key)
        .bind(at_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn do_persons_due(
        &self,
        cutoffs: RetentionCutoffs,
        after: Option<&IdNumber>,
        limit: u32,
    ) -> Result<Vec<DuePerson>, StoreError> {
        let templates = self.templates();
        let sql = format!(
            "SELECT id_number, name, sealed, created_at, basis_at, last_checked_at FROM persons
             WHERE {} AND id_number {BYTE_ORDER} > $3
             ORDER BY id_number {BYTE_ORDER} LIMIT $4",
            due_condition()
        );
        sqlx::query(&sql)
            .bind(cutoffs.enrolled_before)
            .bind(cutoffs.inactive_before)
            .bind(after.map_or_else(String::new, |id| templates.person_key(id.as_str())))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                let (id_number, _) = identity_from_row(row, &templates)?;
                Ok(DuePerson {
                    id_number,
                    handle: PersonHandle::from_key(row.try_get("id_number")?)?,
                    enrolled_at: row.try_get("created_at")?,
                    basis_at: row.try_get("basis_at")?,
                    last_checked_at: row.try_get("last_checked_at")?,
                })
            })
            .collect()
    }

    pub(super) async fn do_count_persons_due(
        &self,
        cutoffs: RetentionCutoffs,
    ) -> Result<RetentionDue, StoreError> {
        if cutoffs == RetentionCutoffs::default() {
            return Ok(RetentionDue::default());
        }
        let sql = format!(
            "SELECT COUNT(*) AS due, MIN(created_at) AS oldest FROM persons WHERE {}",
            due_condition()
        );
        let row = sqlx::query(&sql)
            .bind(cutoffs.enrolled_before)
            .bind(cutoffs.inactive_before)
            .fetch_one(&self.pool)
            .await?;
        Ok(RetentionDue {
            persons: row.try_get::<i64, _>("due")?.max(0) as u64,
            oldest_enrolled_at: row.try_get("oldest")?,
        })
    }

    pub(super) async fn do_processing_records(
        &self,
        from_ms: i64,
        to_ms: i64,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ProcessingRecord>, StoreError> {
        sqlx::query(
            "SELECT id, at, action, person_masked, person_hash, actor, basis, result
             FROM processing_records WHERE at >= $1 AND at < $2 AND id > $3
             ORDER BY id LIMIT $4",
        )
        .bind(from_ms)
        .bind(to_ms)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(processing_from_row)
        .collect()
    }

    pub(super) async fn do_person_processing(
        &self,
        hashes: &[String],
        limit: u32,
    ) -> Result<Vec<ProcessingRecord>, StoreError> {
        self.newest_by_hash(
            "SELECT id, at, action, person_masked, person_hash, actor, basis, result
             FROM processing_records WHERE person_hash = $1 ORDER BY id DESC LIMIT $2",
            hashes,
            limit,
            processing_from_row,
            |r| r.id,
        )
        .await
    }

    pub(super) async fn do_purge_processing_before(
        &self,
        before_ms: i64,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM processing_records WHERE at < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
