//! The legal basis on which a person's face is processed.
//!
//! Face information is sensitive personal information under the PIPL, and the
//! 人脸识别技术应用安全管理办法 (CAC and MPS order No. 19, in force since 2025-06-01) asks
//! every processor to know, for each face it keeps, why it may: the person's separate
//! consent (单独同意), a contract the person is party to, or a statute. A child under 14
//! can consent only through a parent or guardian. These rules are pure: the enrolment
//! date is given, never read from a clock.

use std::fmt;

use time::Date;

use crate::IdNumber;

/// Age below which consent must come from a parent or guardian (PIPL art. 31).
pub const GUARDIAN_AGE: u8 = 14;

/// Why a face may be processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BasisKind {
    /// The person's separate consent; its reference says where it is kept.
    Consent,
    /// A statute or regulation that requires the processing.
    Law,
    /// A contract the person is party to; its reference says which.
    Contract,
}

impl BasisKind {
    /// Every kind, in the order they are documented.
    pub const ALL: [BasisKind; 3] = [BasisKind::Consent, BasisKind::Law, BasisKind::Contract];

    /// The kind's name as typed and stored (`consent`, `law`, `contract`).
    pub fn as_str(self) -> &'static str {
        match self {
            BasisKind::Consent => "consent",
            BasisKind::Law => "law",
            BasisKind::Contract => "contract",
        }
    }

    /// Parses a kind's name (case-insensitive, surrounding blanks ignored).
    pub fn parse(input: &str) -> Result<Self, BasisError> {
        let input = input.trim();
        BasisKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(input))
            .ok_or(BasisError::UnknownKind)
    }

    /// Whether a child under [`GUARDIAN_AGE`] needs a guardian's consent on this basis
    /// (a statute needs no one's consent; a consent or a contract is the child's only
    /// through a guardian).
    pub fn needs_guardian_for_children(self) -> bool {
        !matches!(self, BasisKind::Law)
    }
}

impl fmt::Display for BasisKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A short text an operator records with a basis: a consent's or contract's reference,
/// a statute's name, a guardian's consent reference, a purpose. One line, 1 to
/// [`Reference::MAX_CHARS`] characters, surrounding blanks removed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference(String);

impl Reference {
    /// Longest reference, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Parses a reference: `field` names it in the error.
    pub fn parse(input: &str, field: &'static str) -> Result<Self, BasisError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(BasisError::Blank(field));
        }
        if text.chars().count() > Self::MAX_CHARS {
            return Err(BasisError::TooLong(field));
        }
        if text.chars().any(char::is_control) {
            return Err(BasisError::ControlCharacter(field));
        }
        Ok(Reference(text.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A legal basis as an operator states it: the kind, its reference (the consent or
/// contract reference, or the statute), and for a child the guardian's consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalBasis {
    kind: BasisKind,
    reference: Reference,
    guardian_consent: Option<Reference>,
}

/// The basis fields as sent, each optional until parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BasisFields {
    /// `consent`, `law` or `contract`.
    pub basis: Option<String>,
    /// Where the separate consent (or the contract) is kept.
    pub consent_ref: Option<String>,
    /// The statute or regulation (with `law`).
    pub law: Option<String>,
    /// Where a parent's or guardian's consent is kept (a child under 14).
    pub guardian_consent_ref: Option<String>,
}

impl BasisFields {
    /// Whether no basis field was sent at all.
    pub fn is_empty(&self) -> bool {
        [
            &self.basis,
            &self.consent_ref,
            &self.law,
            &self.guardian_consent_ref,
        ]
        .iter()
        .all(|f| present(f).is_none())
    }
}

/// A field's text, unless it is missing or blank.
fn present(field: &Option<String>) -> Option<&str> {
    field.as_deref().filter(|s| !s.trim().is_empty())
}

impl LegalBasis {
    /// Parses the fields of a basis: `None` when none was sent, an error when they are
    /// incomplete or contradict each other (a statute with a consent reference, a
    /// reference without its kind).
    pub fn parse(fields: &BasisFields) -> Result<Option<Self>, BasisError> {
        if fields.is_empty() {
            return Ok(None);
        }
        let kind = match present(&fields.basis) {
            Some(kind) => BasisKind::parse(kind)?,
            None => return Err(BasisError::KindMissing),
        };
        let reference = match kind {
            BasisKind::Law => {
                if present(&fields.consent_ref).is_some() {
                    return Err(BasisError::Contradiction(
                        "a statute takes --law / law, not a consent reference",
                    ));
                }
                Reference::parse(present(&fields.law).ok_or(BasisError::LawMissing)?, "law")?
            }
            BasisKind::Consent | BasisKind::Contract => {
                if present(&fields.law).is_some() {
                    return Err(BasisError::Contradiction(
                        "--law / law goes with basis law, not with consent or contract",
                    ));
                }
                Reference::parse(
                    present(&fields.consent_ref).ok_or(BasisError::ReferenceMissing(kind))?,
                    "consentRef",
                )?
            }
        };
        let guardian_consent = present(&fields.guardian_consent_ref)
            .map(|g| Reference::parse(g, "guardianConsentRef"))
            .transpose()?;
        Ok(Some(LegalBasis {
            kind,
            reference,
            guardian_consent,
        }))
    }

    /// A basis from parts already checked (as stored).
    pub fn new(kind: BasisKind, reference: Reference, guardian_consent: Option<Reference>) -> Self {
        LegalBasis {
            kind,
            reference,
            guardian_consent,
        }
    }

    /// The kind.
    pub fn kind(&self) -> BasisKind {
        self.kind
    }

    /// The consent or contract reference, or the statute.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The guardian's consent reference, when one was given.
    pub fn guardian_consent(&self) -> Option<&Reference> {
        self.guardian_consent.as_ref()
    }

    /// Whether this basis covers the face of the holder of `id` enrolled on `on`: a child
    /// under [`GUARDIAN_AGE`] on consent or contract needs a guardian's consent.
    pub fn admits(&self, id: &IdNumber, on: Date) -> Result<(), BasisError> {
        if self.kind.needs_guardian_for_children()
            && id.age_on(on) < GUARDIAN_AGE
            && self.guardian_consent.is_none()
        {
            return Err(BasisError::GuardianConsentRequired);
        }
        Ok(())
    }
}

/// Why basis fields were refused. Messages name both the CLI's flag and the API's field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BasisError {
    /// The kind is not one of the three.
    #[error("basis must be consent, law or contract")]
    UnknownKind,
    /// A reference or statute was sent without the kind.
    #[error("the basis is missing (--basis / basis): consent, law or contract")]
    KindMissing,
    /// `law` without the statute.
    #[error(
        "basis law needs the statute or regulation that requires the processing (--law / law)"
    )]
    LawMissing,
    /// Consent or contract without its reference.
    #[error("basis {0} needs a reference to where the {0} is kept (--consent-ref / consentRef)")]
    ReferenceMissing(BasisKind),
    /// Fields that belong to different kinds.
    #[error("{0}")]
    Contradiction(&'static str),
    /// A field present but blank.
    #[error("{0} is blank")]
    Blank(&'static str),
    /// A field over [`Reference::MAX_CHARS`].
    #[error("{0} is longer than 200 characters")]
    TooLong(&'static str),
    /// A field with a line break or another control character.
    #[error("{0} must be one line without control characters")]
    ControlCharacter(&'static str),
    /// A child's face on consent or contract without a guardian's consent.
    #[error("the holder is under 14: a parent's or guardian's consent is required (--guardian-consent-ref / guardianConsentRef)")]
    GuardianConsentRequired,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn fields(basis: &str, consent: Option<&str>, law: Option<&str>) -> BasisFields {
        BasisFields {
            basis: Some(basis.into()),
            consent_ref: consent.map(Into::into),
            law: law.map(Into::into),
            guardian_consent_ref: None,
        }
    }

    /// An ID number of someone born on 2015-03-10 (region 110105).
    fn child() -> IdNumber {
        IdNumber::parse_on(&with_check("11010520150310001"), date!(2026 - 12 - 01)).unwrap()
    }

    fn with_check(body: &str) -> String {
        const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = body
            .bytes()
            .zip(WEIGHTS)
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
    }

    #[test]
    fn no_field_is_no_basis() {
        assert_eq!(LegalBasis::parse(&BasisFields::default()), Ok(None));
        let blank = BasisFields {
            basis: Some("  ".into()),
            ..BasisFields::default()
        };
        assert_eq!(LegalBasis::parse(&blank), Ok(None));
    }

    #[test]
    fn each_kind_needs_its_own_reference() {
        let consent = LegalBasis::parse(&fields("Consent", Some(" form 12 "), None))
            .unwrap()
            .unwrap();
        assert_eq!(consent.kind(), BasisKind::Consent);
        assert_eq!(consent.reference().as_str(), "form 12");
        let law = LegalBasis::parse(&fields("law", None, Some("反洗钱法 第二十九条")))
            .unwrap()
            .unwrap();
        assert_eq!(law.kind(), BasisKind::Law);
        assert_eq!(
            LegalBasis::parse(&fields("consent", None, None)),
            Err(BasisError::ReferenceMissing(BasisKind::Consent))
        );
        assert_eq!(
            LegalBasis::parse(&fields("contract", None, None)),
            Err(BasisError::ReferenceMissing(BasisKind::Contract))
        );
        assert_eq!(
            LegalBasis::parse(&fields("law", None, None)),
            Err(BasisError::LawMissing)
        );
        assert!(matches!(
            LegalBasis::parse(&fields("law", Some("x"), Some("y"))),
            Err(BasisError::Contradiction(_))
        ));
        assert!(matches!(
            LegalBasis::parse(&fields("consent", Some("x"), Some("y"))),
            Err(BasisError::Contradiction(_))
        ));
        assert_eq!(
            LegalBasis::parse(&fields("gdpr", Some("x"), None)),
            Err(BasisError::UnknownKind)
        );
        let no_kind = BasisFields {
            consent_ref: Some("x".into()),
            ..BasisFields::default()
        };
        assert_eq!(LegalBasis::parse(&no_kind), Err(BasisError::KindMissing));
    }

    #[test]
    fn references_are_one_short_line() {
        assert_eq!(
            Reference::parse(&"字".repeat(201), "law"),
            Err(BasisError::TooLong("law"))
        );
        assert!(Reference::parse(&"字".repeat(200), "law").is_ok());
        assert_eq!(
            Reference::parse("a\nb", "consentRef"),
            Err(BasisError::ControlCharacter("consentRef"))
        );
    }

    #[test]
    fn a_child_on_consent_or_contract_needs_a_guardian() {
        let id = child();
        let before_14 = date!(2029 - 03 - 09);
        let on_14th_birthday = date!(2029 - 03 - 10);
        for kind in ["consent", "contract"] {
            let basis = LegalBasis::parse(&fields(kind, Some("ref"), None))
                .unwrap()
                .unwrap();
            assert_eq!(
                basis.admits(&id, before_14),
                Err(BasisError::GuardianConsentRequired)
            );
            assert_eq!(basis.admits(&id, on_14th_birthday), Ok(()));
            let mut with_guardian = fields(kind, Some("ref"), None);
            with_guardian.guardian_consent_ref = Some("guardian form 7".into());
            let basis = LegalBasis::parse(&with_guardian).unwrap().unwrap();
            assert_eq!(basis.admits(&id, before_14), Ok(()));
            assert_eq!(
                basis.guardian_consent().map(Reference::as_str),
                Some("guardian form 7")
            );
        }
        let law = LegalBasis::parse(&fields("law", None, Some("statute")))
            .unwrap()
            .unwrap();
        assert_eq!(law.admits(&id, before_14), Ok(()));
    }
}
