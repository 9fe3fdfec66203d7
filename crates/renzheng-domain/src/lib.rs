//! Identity types for Renzheng.
//!
//! Everything that reaches the verification pipeline passes through one of
//! these types first, so the rest of the service never handles an unchecked
//! string:
//!
//! * [`IdNumber`] — a resident identity number (GB 11643-1999), checked and
//!   upgraded to its canonical 18-character form.
//! * [`PersonName`] — a person's name, normalised so that two spellings a
//!   human would call "the same name" compare equal.
//!
//! * [`LegalBasis`] — why a person's face may be processed (consent, contract or
//!   statute), with the rule for children under 14.
//!
//! Both identity types hold personal data. Their `Display` and `Debug` output is
//! masked, so logging one by accident does not leak it; the clear text is
//! only reachable through an explicitly named accessor (`as_str`), and
//! [`keyed_hash`](IdNumber::keyed_hash) gives a stable pseudonym for audit
//! logs.
//!
//! The crate is pure: no I/O, no clock reads except in the convenience
//! constructors that say so ([`IdNumber::parse`], [`today_in_china`]).

#![deny(missing_docs)]

mod basis;
mod checksum;
mod hash;
mod id_number;
mod person_name;
mod region;

pub use basis::{BasisError, BasisFields, BasisKind, LegalBasis, Reference, GUARDIAN_AGE};
pub use id_number::{today_in_china, IdNumber, IdNumberError, Sex};
pub use person_name::{PersonName, PersonNameError, MAX_NAME_CHARS};
pub use region::{preload_region_table, Region};

/// The calendar date type used by this crate's API (re-exported so that
/// callers need not depend on `time` themselves).
pub use time::Date;
