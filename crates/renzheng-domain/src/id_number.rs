//! Resident identity numbers (公民身份号码, GB 11643-1999).

use std::fmt;
use std::str::FromStr;

use time::{Date, Month, OffsetDateTime, UtcOffset};
use unicode_normalization::UnicodeNormalization;

use crate::checksum::check_char;
use crate::region::Region;

/// Birth dates before this are rejected: nobody born earlier is alive to be
/// verified, so such a number is a typo or a forgery.
const EARLIEST_BIRTH_YEAR: i32 = 1900;

/// Why a string is not a valid ID number.
///
/// Messages are plain English and never contain the number itself; the HTTP
/// layer maps variants to its own (localised) messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdNumberError {
    /// Neither 18 characters nor a 15-digit legacy number.
    #[error("an ID number has 18 characters (or 15 digits for a legacy number), got {0}")]
    Length(usize),
    /// A character other than a digit (or `X` in the last position).
    #[error("character {position} of the ID number is not allowed there")]
    Characters {
        /// 1-based position of the first offending character.
        position: usize,
    },
    /// The check character does not match the other 17.
    #[error("the ID number's check character is wrong (mistyped digit?)")]
    Checksum,
    /// The birth date is not a calendar date (e.g. 19900230).
    #[error("the birth date in the ID number is not a real date")]
    ImpossibleDate,
    /// The birth date is after today.
    #[error("the birth date in the ID number is in the future")]
    FutureDate,
    /// The birth date is before 1900.
    #[error("the birth date in the ID number is before 1900")]
    TooOld,
    /// The province in the region code does not exist.
    #[error("the region code of the ID number is unknown")]
    UnknownRegion,
}

/// Sex, as encoded by the parity of the sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    /// Odd sequence number.
    Male,
    /// Even sequence number.
    Female,
}

impl Sex {
    /// The Chinese label used on the card and in the API: "男" or "女".
    pub fn label(self) -> &'static str {
        match self {
            Sex::Male => "男",
            Sex::Female => "女",
        }
    }
}

impl fmt::Display for Sex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A valid resident identity number, always in canonical 18-character form
/// (upper-case `X`; legacy 15-digit numbers upgraded).
///
/// `Display` and `Debug` show it masked (`11**************2X`); use
/// [`as_str`](Self::as_str) where the clear number is genuinely needed.
#[derive(Clone)]
pub struct IdNumber {
    number: String,
    birth_date: Date,
    region: Region,
}

impl IdNumber {
    /// Characters of the canonical number (the longest form accepted; the console's
    /// field takes its limit from here).
    pub const CHARS: usize = 18;

    /// Parses `input` using today's date in China to reject future birth
    /// dates. See [`parse_on`](Self::parse_on).
    pub fn parse(input: &str) -> Result<Self, IdNumberError> {
        Self::parse_on(input, today_in_china())
    }

    /// Parses `input` as it would be parsed on `today`.
    ///
    /// Accepts the 18-character form (a lower-case `x` is taken as `X`) and
    /// the legacy 15-digit form (born 19xx, no check character), which is
    /// upgraded. Surrounding whitespace is ignored and full-width digits are
    /// folded to ASCII, since both come from copy-and-paste rather than from
    /// a wrong number.
    ///
    /// Checks are made in the order of the variants of [`IdNumberError`], so
    /// a mistyped digit reports `Checksum` rather than whatever the typo
    /// happened to break.
    pub fn parse_on(input: &str, today: Date) -> Result<Self, IdNumberError> {
        let folded: String = input.trim().nfkc().collect();
        let char_count = folded.chars().count();
        let mut bytes: Vec<u8> = folded.into_bytes();

        match char_count {
            Self::CHARS => {
                if let Some(position) = bytes.iter().position(|b| !b.is_ascii()) {
                    return Err(IdNumberError::Characters {
                        position: position + 1,
                    });
                }
                bytes[17] = bytes[17].to_ascii_uppercase();
                if let Some(position) = first_bad_char(&bytes[..17]) {
                    return Err(IdNumberError::Characters { position });
                }
                if !(bytes[17].is_ascii_digit() || bytes[17] == b'X') {
                    return Err(IdNumberError::Characters { position: 18 });
                }
                if check_char(&bytes[..17]) != char::from(bytes[17]) {
                    return Err(IdNumberError::Checksum);
                }
            }
            15 => {
                if let Some(position) = first_bad_char(&bytes) {
                    return Err(IdNumberError::Characters { position });
                }
                // Legacy numbers carry a two-digit year, always 19xx: they
                // were replaced before anyone born in 2000 got one.
                bytes.splice(6..6, *b"19");
                let check = check_char(&bytes);
                bytes.push(check as u8);
            }
            n => return Err(IdNumberError::Length(n)),
        }

        let number = String::from_utf8(bytes).expect("only ASCII digits and X remain");
        let birth_date = birth_date(&number[6..14]).ok_or(IdNumberError::ImpossibleDate)?;
        if birth_date > today {
            return Err(IdNumberError::FutureDate);
        }
        if birth_date.year() < EARLIEST_BIRTH_YEAR {
            return Err(IdNumberError::TooOld);
        }
        let birth_year = u16::try_from(birth_date.year()).expect("year checked to be 1900..");
        let region =
            Region::resolve(&number[..6], birth_year).ok_or(IdNumberError::UnknownRegion)?;

        Ok(IdNumber {
            number,
            birth_date,
            region,
        })
    }

    /// The clear, canonical 18-character number.
    ///
    /// This is the one way to read the number in clear: use it for storage
    /// and for the upstream comparison, never for logs.
    pub fn as_str(&self) -> &str {
        &self.number
    }

    /// The masked form shown by `Display`: the province (first 2 characters) and the last
    /// 2 kept, e.g. `11**************2X`.
    ///
    /// Little is kept on purpose: with the region, the sequence and the check digit in
    /// clear, only the birth date is unknown (about 36,500 candidates), and a masked
    /// number beside its keyed hash is recovered in a second by anyone holding the key.
    pub fn masked(&self) -> String {
        format!("{}**************{}", &self.number[..2], &self.number[16..])
    }

    /// HMAC-SHA256 of the canonical number under `key`, as lowercase hex.
    ///
    /// Stable across requests for the same key, so audit entries of one
    /// person can be correlated without storing the number.
    pub fn keyed_hash(&self, key: &[u8]) -> String {
        crate::hash::hmac_sha256_hex(key, self.number.as_bytes())
    }

    /// The holder's sex.
    pub fn sex(&self) -> Sex {
        if (self.number.as_bytes()[16] - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// The birth date.
    pub fn birth_date(&self) -> Date {
        self.birth_date
    }

    /// The holder's age in whole years on `on` (0 before the first birthday; a 29
    /// February birthday is reached on 1 March in other years).
    pub fn age_on(&self, on: Date) -> u8 {
        let born = self.birth_date;
        let mut years = on.year() - born.year();
        if (u8::from(on.month()), on.day()) < (u8::from(born.month()), born.day()) {
            years -= 1;
        }
        u8::try_from(years.max(0)).unwrap_or(u8::MAX)
    }

    /// The birth date as `YYYYMMDD`, as written in the number.
    pub fn birthday(&self) -> &str {
        &self.number[6..14]
    }

    /// The six-digit GB/T 2260 region code where the number was issued.
    pub fn region_code(&self) -> &str {
        &self.number[..6]
    }

    /// The resolved region.
    pub fn region(&self) -> Region {
        self.region
    }

    /// The full name of the issuing region, e.g. "浙江省杭州市西湖区"; only
    /// as deep as the table knows (see [`Region::is_exact`]).
    pub fn address(&self) -> String {
        self.region.full_name()
    }
}

impl PartialEq for IdNumber {
    fn eq(&self, other: &Self) -> bool {
        self.number == other.number
    }
}

impl Eq for IdNumber {}

impl std::hash::Hash for IdNumber {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.number.hash(state);
    }
}

impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

impl FromStr for IdNumber {
    type Err = IdNumberError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for IdNumber {
    type Error = IdNumberError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

/// Today's date in China (UTC+8).
///
/// China's date rather than UTC's: a baby registered just after midnight
/// Beijing time would otherwise be "born tomorrow" for eight hours.
// Parsing a birth date needs "today" to refuse one in the future; the domain has no
// clock of its own to be handed, and a day's resolution makes a test clock unnecessary.
#[allow(clippy::disallowed_methods)]
pub fn today_in_china() -> Date {
    let china = UtcOffset::from_hms(8, 0, 0).expect("+08:00 is a valid offset");
    OffsetDateTime::now_utc().to_offset(china).date()
}

/// 1-based position of the first non-digit, if any.
fn first_bad_char(bytes: &[u8]) -> Option<usize> {
    bytes
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map(|i| i + 1)
}

fn birth_date(yyyymmdd: &str) -> Option<Date> {
    let year: i32 = yyyymmdd[..4].parse().ok()?;
    let month: u8 = yyyymmdd[4..6].parse().ok()?;
    let day: u8 = yyyymmdd[6..8].parse().ok()?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 06 - 01);

    /// Builds a number with a correct check character from its first 17.
    fn with_check(first17: &str) -> String {
        assert_eq!(first17.len(), 17);
        format!("{first17}{}", check_char(first17.as_bytes()))
    }

    fn parse(s: &str) -> Result<IdNumber, IdNumberError> {
        IdNumber::parse_on(s, TODAY)
    }

    #[test]
    fn well_known_example_parses() {
        let id = parse("11010519491231002X").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id.sex(), Sex::Female);
        assert_eq!(id.sex().label(), "女");
        assert_eq!(id.birthday(), "19491231");
        assert_eq!(id.birth_date(), date!(1949 - 12 - 31));
        assert_eq!(id.region_code(), "110105");
        assert_eq!(id.address(), "北京市朝阳区");
    }

    #[test]
    fn age_counts_whole_years_from_the_birth_date() {
        let id = parse(&with_check("11010520120229001")).unwrap();
        assert_eq!(id.age_on(date!(2012 - 02 - 29)), 0);
        assert_eq!(id.age_on(date!(2026 - 02 - 28)), 13);
        assert_eq!(id.age_on(date!(2026 - 03 - 01)), 14);
        assert_eq!(id.age_on(date!(2028 - 02 - 29)), 16);
        // A date before birth (never given by the service) is age 0, not a wrap.
        assert_eq!(id.age_on(date!(2000 - 01 - 01)), 0);
    }

    #[test]
    fn computed_numbers_parse() {
        let id = parse(&with_check("33010619900307001")).unwrap();
        assert_eq!(id.sex(), Sex::Male);
        assert_eq!(id.sex().to_string(), "男");
        assert_eq!(id.address(), "浙江省杭州市西湖区");
        assert!(id.region().is_exact());
    }

    #[test]
    fn lower_case_x_is_canonicalised() {
        let id = parse("11010519491231002x").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id, parse("11010519491231002X").unwrap());
    }

    #[test]
    fn whitespace_and_full_width_digits_are_tolerated() {
        let id = parse(" １１０１０５１９４９１２３１００２Ｘ\n").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
    }

    #[test]
    fn legacy_15_digit_number_is_upgraded() {
        // The 18-digit form of a legacy number is its 15 digits with "19"
        // inserted before the year, plus the check character.
        let id = parse("110105491231002").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id.birth_date(), date!(1949 - 12 - 31));
        assert_eq!(id.sex(), Sex::Female);
    }

    #[test]
    fn length_errors() {
        assert_eq!(parse(""), Err(IdNumberError::Length(0)));
        assert_eq!(parse("1101051949123100"), Err(IdNumberError::Length(16)));
        assert_eq!(parse("11010519491231002X1"), Err(IdNumberError::Length(19)));
    }

    #[test]
    fn character_errors_name_the_position() {
        assert_eq!(
            parse("1101051949123100AX"),
            Err(IdNumberError::Characters { position: 17 })
        );
        assert_eq!(
            parse("11010519491231002Y"),
            Err(IdNumberError::Characters { position: 18 })
        );
        assert_eq!(
            parse("11010519491231002中"),
            Err(IdNumberError::Characters { position: 18 })
        );
        assert_eq!(
            parse("11010549123100X"),
            Err(IdNumberError::Characters { position: 15 })
        );
        assert_eq!(
            parse("X10105491231002"),
            Err(IdNumberError::Characters { position: 1 })
        );
    }

    #[test]
    fn checksum_error() {
        assert_eq!(parse("110105194912310021"), Err(IdNumberError::Checksum));
        // A single mistyped digit always breaks MOD 11-2.
        assert_eq!(parse("110105194912310120"), Err(IdNumberError::Checksum));
    }

    #[test]
    fn impossible_dates() {
        for date in ["19900230", "19901301", "19900000", "19000229", "20230229"] {
            let id = with_check(&format!("330106{date}001"));
            assert_eq!(parse(&id), Err(IdNumberError::ImpossibleDate), "{date}");
        }
        // 2000 and 2024 were leap years.
        for date in ["20000229", "20240229"] {
            assert!(parse(&with_check(&format!("330106{date}001"))).is_ok());
        }
        // Legacy numbers: 19 + 900230.
        assert_eq!(parse("330106900230001"), Err(IdNumberError::ImpossibleDate));
    }

    #[test]
    fn future_and_too_old_dates() {
        let tomorrow = with_check("33010620260602001");
        assert_eq!(parse(&tomorrow), Err(IdNumberError::FutureDate));
        assert!(IdNumber::parse_on(&tomorrow, date!(2026 - 06 - 02)).is_ok());
        assert!(parse(&with_check("33010620260601001")).is_ok());
        assert_eq!(
            parse(&with_check("33010618991231001")),
            Err(IdNumberError::TooOld)
        );
        assert!(parse(&with_check("11010519000101001")).is_ok());
    }

    #[test]
    fn unknown_region() {
        assert_eq!(
            parse(&with_check("99010519900101001")),
            Err(IdNumberError::UnknownRegion)
        );
        // An unknown county in a known province is accepted, inexactly.
        let id = parse(&with_check("33019919900101001")).unwrap();
        assert_eq!(id.address(), "浙江省杭州市");
        assert!(!id.region().is_exact());
    }

    #[test]
    fn historical_region_code() {
        let id = parse(&with_check("11010319800101001")).unwrap();
        assert_eq!(id.address(), "北京市崇文区");
    }

    #[test]
    fn display_and_debug_are_masked() {
        let id = parse("11010519491231002X").unwrap();
        assert_eq!(id.to_string(), "11**************2X");
        assert_eq!(format!("{id:?}"), "IdNumber(11**************2X)");
        assert_eq!(format!("{id:#?}"), "IdNumber(11**************2X)");
        assert!(!format!("{id} {id:?}").contains("19491231"));
    }

    #[test]
    fn error_messages_do_not_contain_the_number() {
        for input in [
            "110105194912310021",
            "1101051949123100",
            "1101051949123100AX",
        ] {
            let message = parse(input).unwrap_err().to_string();
            assert!(!message.contains("1949"), "{message}");
        }
    }

    #[test]
    fn keyed_hash_depends_on_key_and_number_only() {
        let a = parse("11010519491231002x").unwrap();
        let b = parse("110105491231002").unwrap();
        assert_eq!(a.keyed_hash(b"k1"), b.keyed_hash(b"k1"));
        assert_ne!(a.keyed_hash(b"k1"), a.keyed_hash(b"k2"));
        assert_eq!(a.keyed_hash(b"k1").len(), 64);
        assert!(!a.keyed_hash(b"k1").contains("1949"));
    }

    #[test]
    fn from_str_uses_the_clock() {
        let id: IdNumber = "11010519491231002X".parse().unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert!(IdNumber::try_from("bad").is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn any_valid_first17() -> impl Strategy<Value = String> {
            (
                prop::sample::select(vec!["110105", "330106", "429004", "110103"]),
                1900i32..=2025,
                1u8..=12,
                1u8..=28,
                0u16..1000,
            )
                .prop_map(|(region, y, m, d, seq)| format!("{region}{y:04}{m:02}{d:02}{seq:03}"))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn valid_numbers_round_trip(first17 in any_valid_first17()) {
                let number = with_check(&first17);
                let id = parse(&number).unwrap();
                prop_assert_eq!(id.as_str(), number.as_str());
                prop_assert_eq!(parse(id.as_str()).unwrap(), id.clone());
                let masked = id.to_string();
                prop_assert_eq!(&masked[..2], &number[..2]);
                prop_assert_eq!(&masked[16..], &number[16..]);
                prop_assert_eq!(&masked[2..16], "**************");
            }

            #[test]
            fn any_single_digit_change_is_caught(
                first17 in any_valid_first17(),
                position in 0usize..17,
                delta in 1u8..10,
            ) {
                let mut bytes = with_check(&first17).into_bytes();
                bytes[position] = b'0' + (bytes[position] - b'0' + delta) % 10;
                let typo = String::from_utf8(bytes).unwrap();
                prop_assert_eq!(parse(&typo).unwrap_err(), IdNumberError::Checksum);
            }

            #[test]
            fn arbitrary_input_never_panics(s in "\\PC{0,20}") {
                let _ = parse(&s);
            }
        }
    }
}
