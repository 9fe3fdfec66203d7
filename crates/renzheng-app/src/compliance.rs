//! What the rules on face information ask of an operator, kept by the service itself
//! (`docs/compliance.md`): a legal basis recorded with every face stored (a child's only
//! with a guardian's consent), and the count of persons with face data against the
//! filing line.

use renzheng_domain::{Date, IdNumber, LegalBasis, Reference};
use renzheng_store::{BasisRecord, ProcessingAction, StoreError};
use serde::Serialize;

use crate::audit::Actor;
use crate::metering::format_day;
use crate::{App, AppError};

const DAY_MS: i64 = 86_400_000;

/// A legal basis as an operator gives it with an enrolment, a replacement or on its own:
/// the purpose falls back to `compliance.purpose`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasisStatement {
    /// The basis.
    pub basis: LegalBasis,
    /// The purpose, when the operator names one for this person.
    pub purpose: Option<Reference>,
}

impl BasisStatement {
    /// Parses the basis fields and the purpose: `None` when no basis field was sent (a
    /// purpose alone is refused: it belongs to a basis).
    pub fn parse(
        fields: &renzheng_domain::BasisFields,
        purpose: Option<&str>,
    ) -> Result<Option<Self>, AppError> {
        let purpose = purpose
            .filter(|p| !p.trim().is_empty())
            .map(|p| Reference::parse(p, "purpose"))
            .transpose()?;
        match LegalBasis::parse(fields)? {
            Some(basis) => Ok(Some(BasisStatement { basis, purpose })),
            None if purpose.is_some() => Err(renzheng_domain::BasisError::KindMissing.into()),
            None => Ok(None),
        }
    }
}

/// A person's recorded basis, for showing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BasisView {
    /// `consent`, `law` or `contract`.
    pub basis: String,
    /// Where the consent or contract is kept, or the statute.
    pub reference: String,
    /// Where a guardian's consent is kept (a child under 14).
    pub guardian_consent_ref: Option<String>,
    /// The purpose.
    pub purpose: String,
    /// When it was recorded (or last renewed), unix milliseconds.
    pub recorded_at: i64,
    /// Who recorded it (`cli`, `admin-api`, `console:<operator>`).
    pub recorded_by: String,
}

impl From<&BasisRecord> for BasisView {
    fn from(record: &BasisRecord) -> Self {
        BasisView {
            basis: record.basis.kind().as_str().to_owned(),
            reference: record.basis.reference().as_str().to_owned(),
            guardian_consent_ref: record
                .basis
                .guardian_consent()
                .map(|g| g.as_str().to_owned()),
            purpose: record.purpose.as_str().to_owned(),
            recorded_at: record.recorded_at,
            recorded_by: record.actor.clone(),
        }
    }
}

/// The registry against the rules an operator reports on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComplianceStatus {
    /// Persons with face information stored (at least one portrait).
    pub persons_with_face_data: u64,
    /// The filing line (`compliance.filing_threshold`; 100,000 by order No. 19).
    pub filing_threshold: u64,
    /// The day the registry, as it holds now, reached the line (`YYYY-MM-DD`), or null
    /// below it: the filing with the provincial CAC is due within 30 working days.
    pub reached_at: Option<String>,
    /// Persons with face data but no recorded legal basis (enrolled before bases were
    /// recorded): `renzheng registry basis` records one.
    pub persons_without_basis: u64,
    /// When the oldest face data still stored was enrolled (`YYYY-MM-DD`), or null.
    pub oldest_face_data_on: Option<String>,
    /// Whether a basis is required to store a face (`compliance.require_basis`).
    pub basis_required: bool,
    /// `registry.retention_days` (0: off).
    pub retention_days: u32,
    /// `registry.inactive_days` (0: off).
    pub inactive_days: u32,
    /// Persons the registry's retention has come to and not purged yet (the server purges
    /// hourly; `renzheng registry purge` at once).
    pub persons_past_retention: u64,
    /// The oldest enrolment among them (`YYYY-MM-DD`), or null.
    pub oldest_past_retention_on: Option<String>,
    /// `compliance.records_retention_days` (0: kept for ever).
    pub records_retention_days: u32,
}

/// What the operator's webhook is told when the registry crosses a mark of the filing line.
#[derive(Debug, Clone, Serialize)]
pub struct FilingAlert {
    /// `filing_line_near` (`compliance.warning_percent`, 90 % by default) or
    /// `filing_line_reached`.
    pub kind: &'static str,
    /// Persons with face data stored now.
    pub persons_with_face_data: u64,
    /// The filing line.
    pub filing_threshold: u64,
    /// The mark crossed, percent of the line (`compliance.warning_percent` or 100).
    pub percent: u64,
    /// When the line was reached (`YYYY-MM-DD`), for `filing_line_reached`.
    pub reached_at: Option<String>,
    /// When noticed, unix ms.
    pub at: i64,
}

impl App {
    /// Today, in `metering.utc_offset_minutes` (the operator's calendar).
    pub(crate) fn today(&self) -> Date {
        let days = self.local_days(self.now_ms());
        // 1970-01-01 is Julian day 2,440,588.
        Date::from_julian_day(i32::try_from(days + 2_440_588).unwrap_or(i32::MAX))
            .unwrap_or(Date::MAX)
    }

    /// Whole days since 1970-01-01 of the instant `ms`, in the operator's calendar.
    fn local_days(&self, ms: i64) -> i64 {
        (ms + i64::from(self.settings.metering.utc_offset_minutes) * 60_000).div_euclid(DAY_MS)
    }

    /// `YYYY-MM-DD` of the instant `ms` in the operator's calendar.
    pub(crate) fn local_day(&self, ms: i64) -> String {
        format_day(self.local_days(ms))
    }

    /// What a write storing faces of `id` records as their basis: the stated one, checked
    /// (a child under 14 on consent or contract needs a guardian's consent), or `None` to
    /// keep the person's. Refuses, recording the refusal, when no basis is stated, faces
    /// are to be stored, the person has none on record and `compliance.require_basis` is on.
    pub(crate) async fn basis_to_record(
        &self,
        actor: &Actor,
        id: &IdNumber,
        stated: Option<BasisStatement>,
        stores_faces: bool,
    ) -> Result<Option<BasisRecord>, AppError> {
        match stated {
            Some(statement) => {
                if let Err(e) = statement.basis.admits(id, self.today()) {
                    return Err(self.refused(actor, id, e.into()).await);
                }
                Ok(Some(self.basis_record(actor, statement)))
            }
            None if !stores_faces || !self.settings.compliance.require_basis => Ok(None),
            None => {
                let on_record = self
                    .store
                    .get_person(id)
                    .await?
                    .is_some_and(|r| r.basis.is_some());
                if on_record {
                    Ok(None)
                } else {
                    Err(self.refused(actor, id, AppError::BasisRequired).await)
                }
            }
        }
    }

    fn basis_record(&self, actor: &Actor, statement: BasisStatement) -> BasisRecord {
        let purpose = statement.purpose.unwrap_or_else(|| {
            Reference::parse(&self.settings.compliance.purpose, "purpose")
                .expect("compliance.purpose is checked when the settings load")
        });
        BasisRecord {
            basis: statement.basis,
            purpose,
            recorded_at: self.now_ms(),
            actor: actor.name(),
        }
    }

    /// A basis for an event's detail: its kind, and a child's guardian consent (the
    /// references are the operator's, kept with the person).
    pub(crate) fn basis_detail(basis: &BasisRecord) -> String {
        match basis.basis.guardian_consent() {
            Some(_) => format!("basis {}, with a guardian's consent", basis.basis.kind()),
            None => format!("basis {}", basis.basis.kind()),
        }
    }

    /// Records (renews) the legal basis of an enrolled person after the fact
    /// (`person.basis-recorded`), for persons enrolled before bases were recorded.
    pub async fn record_basis(
        &self,
        actor: &Actor,
        id: &IdNumber,
        statement: BasisStatement,
    ) -> Result<BasisView, AppError> {
        // A stranger is "not found", whatever basis is stated for them.
        if self.store.get_person(id).await?.is_none() {
            return Err(AppError::NotFound("person"));
        }
        if let Err(e) = statement.basis.admits(id, self.today()) {
            return Err(self.refused(actor, id, e.into()).await);
        }
        let record = self.basis_record(actor, statement);
        match self.store.record_basis(id, &record).await {
            Err(StoreError::NotFound(_)) => return Err(AppError::NotFound("person")),
            Err(e) => return Err(e.into()),
            Ok(()) => {}
        }
        tracing::info!(basis = %record.basis.kind(), "legal basis recorded");
        let mut event = self
            .event(actor, "person.basis-recorded")
            .about_person(id, &self.audit_key);
        event.detail = Some(Self::basis_detail(&record));
        event.processing =
            Some(self.processing(ProcessingAction::BasisRecorded, id, Some(&record)));
        self.record_event(event).await;
        Ok(BasisView::from(&record))
    }

    /// [`App::compliance_status`], read at most once a minute: for scrapes, which come
    /// every few seconds while the count reads every person (about 0.2 s at 100,000
    /// persons on SQLite, `benches/registry_scale.rs`) and the line moves over days.
    pub async fn recent_compliance_status(&self) -> Result<ComplianceStatus, AppError> {
        const FRESH_MS: i64 = 60_000;
        let now = self.now_ms();
        if let Some((at, status)) = &*self
            .compliance_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            if (0..FRESH_MS).contains(&(now - at)) {
                return Ok(status.clone());
            }
        }
        let status = self.compliance_status().await?;
        *self
            .compliance_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((now, status.clone()));
        Ok(status)
    }

    /// The registry against the filing line. Dates the line when first seen reached (the
    /// day the registry as it holds now reached it) and forgets the date when the registry
    /// falls back under it: the line counts what is stored, not what ever was.
    pub async fn compliance_status(&self) -> Result<ComplianceStatus, AppError> {
        let counts = self.store.compliance_counts().await?;
        let line = self.settings.compliance.filing_threshold;
        let mark = format!("filing:{line}");
        let reached = if counts.persons_with_face_data >= line {
            match self.store.compliance_mark(&mark).await? {
                Some(at) => Some(at),
                None => {
                    let at = self
                        .store
                        .face_data_reached(line)
                        .await?
                        .unwrap_or_else(|| self.now_ms());
                    self.store.set_compliance_mark(&mark, Some(at)).await?;
                    tracing::warn!(
                        persons = counts.persons_with_face_data,
                        line,
                        "the registry holds face data of as many persons as the filing line: a filing with the provincial CAC is due within 30 working days"
                    );
                    // Another node may have dated it first: its date stands.
                    self.store.compliance_mark(&mark).await?.or(Some(at))
                }
            }
        } else {
            if self.store.compliance_mark(&mark).await?.is_some() {
                self.store.set_compliance_mark(&mark, None).await?;
            }
            None
        };
        let reached_at = reached.map(|at| self.local_day(at));
        self.filing_alerts(counts.persons_with_face_data, line, reached_at.as_deref())
            .await?;
        let due = self
            .store
            .count_persons_due(self.retention_cutoffs())
            .await?;
        Ok(ComplianceStatus {
            persons_with_face_data: counts.persons_with_face_data,
            filing_threshold: line,
            reached_at,
            persons_without_basis: counts.persons_without_basis,
            oldest_face_data_on: counts.oldest_face_data_at.map(|at| self.local_day(at)),
            basis_required: self.settings.compliance.require_basis,
            retention_days: self.settings.registry.retention_days,
            inactive_days: self.settings.registry.inactive_days,
            persons_past_retention: due.persons,
            oldest_past_retention_on: due.oldest_enrolled_at.map(|at| self.local_day(at)),
            records_retention_days: self.settings.compliance.records_retention_days,
        })
    }

    /// Tells the operator once when the registry reaches `compliance.warning_percent` (90)
    /// of the filing line and once when it reaches the line: an event
    /// (`compliance.filing-line-near`, `compliance.filing-line-reached`) and a post to
    /// `compliance.alert_webhook`. Each mark is set by the one node that first sees it
    /// crossed (that node alerts) and cleared when the registry falls back under it, so
    /// that crossing it again alerts again. A mark already set is only read: a status
    /// looked at every minute writes nothing.
    async fn filing_alerts(
        &self,
        persons: u64,
        line: u64,
        reached_at: Option<&str>,
    ) -> Result<(), AppError> {
        let warning = u64::from(self.settings.compliance.warning_percent);
        let near = line.saturating_mul(warning).div_ceil(100).max(1);
        for (percent, mark_at, kind, action) in [
            (
                warning,
                near,
                "filing_line_near",
                "compliance.filing-line-near",
            ),
            (
                100,
                line,
                "filing_line_reached",
                "compliance.filing-line-reached",
            ),
        ] {
            let mark = format!("alert:{percent}:{line}");
            let set = self.store.compliance_mark(&mark).await?.is_some();
            if persons < mark_at {
                if set {
                    self.store.set_compliance_mark(&mark, None).await?;
                }
                continue;
            }
            if set
                || !self
                    .store
                    .set_compliance_mark(&mark, Some(self.now_ms()))
                    .await?
            {
                continue;
            }
            tracing::warn!(
                persons,
                line,
                percent,
                "the registry holds face data of {percent} % of the filing line"
            );
            let alert = FilingAlert {
                kind,
                persons_with_face_data: persons,
                filing_threshold: line,
                percent,
                reached_at: (percent == 100)
                    .then(|| reached_at.map(str::to_owned))
                    .flatten(),
                at: self.now_ms(),
            };
            let mut event = self.event(&Actor::Service, action);
            event.detail = Some(format!(
                "{persons} persons with face data, filing line {line}{}",
                if self.settings.compliance.alert_webhook.is_some() {
                    "; the operator's webhook is told"
                } else {
                    ""
                }
            ));
            self.record_event(event).await;
            self.send_operator_alert(&alert).await;
        }
        Ok(())
    }
}
