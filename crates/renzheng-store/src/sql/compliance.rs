//! What the registry keeps for the rules on face information: each person's legal basis
//! (columns of `persons`, written in the transaction that stores their face), the counts
//! an operator reports, and the dates lines were reached (`compliance_marks`).

use renzheng_domain::{BasisKind, IdNumber, LegalBasis, Reference};
use sqlx::Row;

use super::dialect::{Backend, Db};
use super::{locate, DbRow};
use crate::{BasisRecord, ComplianceCounts, StoreError};

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
    ) -> Result<(), StoreError> {
        match at {
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
        Ok(())
    }
}
