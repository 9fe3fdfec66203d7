//! Person names, normalised for comparison.

use std::fmt;
use std::str::FromStr;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Longest accepted name, in characters after normalisation. Transliterated
/// minority names are the longest in practice and stay well under this.
pub const MAX_NAME_CHARS: usize = 64;

/// The separator used in transliterated minority names ("买买提·艾力").
const MIDDLE_DOT: char = '\u{00B7}';

/// Why a string is not an acceptable name.
///
/// Messages never contain the name itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PersonNameError {
    /// Nothing left after trimming whitespace and separators.
    #[error("the name is empty")]
    Empty,
    /// Longer than [`MAX_NAME_CHARS`] after normalisation.
    #[error("the name has {0} characters, more than the {MAX_NAME_CHARS} allowed")]
    TooLong(usize),
    /// Contains a digit (in any script).
    #[error("the name contains a digit")]
    Digits,
    /// Contains a control or invisible formatting character.
    #[error("the name contains a control or invisible character")]
    ControlCharacter,
    /// Contains punctuation or a symbol that does not occur in names.
    #[error("the name contains a character that is not a letter")]
    InvalidCharacter,
}

/// A person's name in normalised form.
///
/// Normalisation, in order:
///
/// 1. Unicode NFKC, which folds full-width Latin letters and the ideographic
///    space to their plain forms.
/// 2. Every look-alike of the middle dot (`・` U+30FB, `･` U+FF65, `•` U+2022,
///    `‧` U+2027, `∙` U+2219, `⋅` U+22C5, `⸱` U+2E31) becomes `·` U+00B7, the
///    separator printed on ID cards; repeated dots become one, and
///    whitespace around a dot is dropped.
/// 3. Whitespace runs: removed when next to a CJK character or a dot
///    ("张 三" → "张三"; Chinese names have no spaces, so any space there is a
///    typing artefact), otherwise collapsed to one space ("John  Smith" →
///    "John Smith").
/// 4. Leading and trailing whitespace and dots are trimmed.
///
/// Then the name is rejected if it is empty, longer than
/// [`MAX_NAME_CHARS`], or contains a digit, a control or invisible
/// character, or anything other than letters, combining marks, `·`, space,
/// `-` and `'`.
///
/// Equality compares normalised forms, so it is the comparison the name
/// check needs. It is case-sensitive: ID-card names are Chinese, and a
/// registry entry is compared with what its own client sends.
///
/// `Display` and `Debug` show it masked (`张**`); use
/// [`as_str`](Self::as_str) where the clear name is genuinely needed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PersonName(String);

impl PersonName {
    /// Normalises and checks `input`; see the type's documentation.
    pub fn parse(input: &str) -> Result<Self, PersonNameError> {
        let mut out = String::with_capacity(input.len());
        // Whitespace seen since the last kept character, not yet written:
        // whether it becomes a space depends on the next character.
        let mut pending_space = false;
        let mut pending_dot = false;

        for c in input.nfkc() {
            let c = if is_dot_variant(c) { MIDDLE_DOT } else { c };
            if c.is_whitespace() {
                pending_space = true;
                continue;
            }
            if c == MIDDLE_DOT {
                pending_dot = true;
                pending_space = false;
                continue;
            }
            check_char(c)?;
            let prev = out.chars().next_back();
            if let Some(prev) = prev {
                if pending_dot {
                    out.push(MIDDLE_DOT);
                } else if pending_space && !is_cjk(prev) && !is_cjk(c) {
                    out.push(' ');
                }
            }
            pending_space = false;
            pending_dot = false;
            out.push(c);
        }

        let chars = out.chars().count();
        if chars == 0 {
            return Err(PersonNameError::Empty);
        }
        if chars > MAX_NAME_CHARS {
            return Err(PersonNameError::TooLong(chars));
        }
        Ok(PersonName(out))
    }

    /// The clear, normalised name.
    ///
    /// This is the one way to read the name in clear: use it for storage
    /// and comparison, never for logs.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The masked form shown by `Display`: the first character kept and
    /// each other one replaced by `*` ("张三" → "张*"). A one-character name
    /// is fully masked, since keeping its first character would keep all of
    /// it.
    pub fn masked(&self) -> String {
        let mut chars = self.0.chars();
        let first = chars.next().expect("names are never empty");
        let rest = chars.count();
        if rest == 0 {
            return "*".to_owned();
        }
        let mut masked = String::with_capacity(first.len_utf8() + rest);
        masked.push(first);
        masked.extend(std::iter::repeat_n('*', rest));
        masked
    }

    /// HMAC-SHA256 of the normalised name under `key`, as lowercase hex.
    pub fn keyed_hash(&self, key: &[u8]) -> String {
        crate::hash::hmac_sha256_hex(key, self.0.as_bytes())
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonName({})", self.masked())
    }
}

impl FromStr for PersonName {
    type Err = PersonNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for PersonName {
    type Error = PersonNameError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

fn is_dot_variant(c: char) -> bool {
    matches!(
        c,
        '\u{00B7}'
            | '\u{30FB}'
            | '\u{FF65}'
            | '\u{2022}'
            | '\u{2027}'
            | '\u{2219}'
            | '\u{22C5}'
            | '\u{2E31}'
    )
}

fn check_char(c: char) -> Result<(), PersonNameError> {
    if c.is_control() || is_invisible_format(c) {
        return Err(PersonNameError::ControlCharacter);
    }
    // 〇 (U+3007) is numeric but also an ideograph that occurs in names;
    // counting alphabetic characters as letters keeps it.
    if c.is_numeric() && !c.is_alphabetic() {
        return Err(PersonNameError::Digits);
    }
    if c.is_alphabetic() || is_combining_mark(c) || c == '-' || c == '\'' {
        Ok(())
    } else {
        Err(PersonNameError::InvalidCharacter)
    }
}

/// Format characters that render as nothing; two names differing only by
/// one of them would look identical yet compare different.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// Han ideographs (all extension blocks) plus kana: scripts written without
/// spaces between the parts of a name.
fn is_cjk(c: char) -> bool {
    matches!(
        c,
        '\u{2E80}'..='\u{2FDF}'
            | '\u{3005}'..='\u{3007}'
            | '\u{3021}'..='\u{3029}'
            | '\u{3040}'..='\u{30FF}'
            | '\u{3400}'..='\u{4DBF}'
            | '\u{4E00}'..='\u{9FFF}'
            | '\u{F900}'..='\u{FAFF}'
            | '\u{20000}'..='\u{3FFFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        PersonName::parse(s).unwrap().as_str().to_owned()
    }

    #[test]
    fn plain_chinese_name_is_unchanged() {
        assert_eq!(norm("张三"), "张三");
        assert_eq!(norm("欧阳娜娜"), "欧阳娜娜");
    }

    #[test]
    fn every_dot_variant_becomes_u00b7() {
        for dot in [
            '\u{00B7}', '\u{30FB}', '\u{FF65}', '\u{2022}', '\u{2027}', '\u{2219}', '\u{22C5}',
            '\u{2E31}', '\u{0387}',
        ] {
            assert_eq!(
                norm(&format!("买买提{dot}艾力")),
                "买买提\u{00B7}艾力",
                "U+{:04X}",
                u32::from(dot)
            );
        }
    }

    #[test]
    fn spaces_and_repeats_around_dots_are_dropped() {
        assert_eq!(norm("买买提 · 艾力"), "买买提·艾力");
        assert_eq!(norm("买买提··艾力"), "买买提·艾力");
        assert_eq!(norm("买买提・ •艾力"), "买买提·艾力");
        assert_eq!(norm("·买买提·艾力·"), "买买提·艾力");
    }

    #[test]
    fn spaces_between_cjk_are_removed() {
        assert_eq!(norm("张 三"), "张三");
        assert_eq!(norm("  张\u{3000}\t三  "), "张三");
        assert_eq!(norm("欧阳 娜 娜"), "欧阳娜娜");
    }

    #[test]
    fn latin_whitespace_collapses_to_one_space() {
        assert_eq!(norm("  John \t  Smith "), "John Smith");
        assert_eq!(norm("Jean-Luc O'Neil"), "Jean-Luc O'Neil");
    }

    #[test]
    fn nfkc_folds_full_width_letters() {
        assert_eq!(norm("ＪＯＨＮ"), "JOHN");
    }

    #[test]
    fn rare_characters_are_kept() {
        assert_eq!(norm("李〇"), "李〇");
        // An ideograph outside the BMP (CJK Extension B).
        assert_eq!(norm("王\u{20BB7}"), "王\u{20BB7}");
    }

    #[test]
    fn equality_compares_normalised_forms() {
        assert_eq!(
            PersonName::parse("买买提・艾力").unwrap(),
            PersonName::parse(" 买买提 · 艾力 ").unwrap()
        );
        assert_ne!(
            PersonName::parse("张三").unwrap(),
            PersonName::parse("张叁").unwrap()
        );
    }

    #[test]
    fn rejections() {
        use PersonNameError::*;
        let cases: &[(&str, PersonNameError)] = &[
            ("", Empty),
            ("   ", Empty),
            ("·・", Empty),
            ("张3", Digits),
            ("张３", Digits),
            ("张①", Digits),
            ("张\u{0}三", ControlCharacter),
            ("张\u{7}三", ControlCharacter),
            ("张\u{200B}三", ControlCharacter),
            ("张\u{FEFF}三", ControlCharacter),
            ("张<三>", InvalidCharacter),
            ("张三!", InvalidCharacter),
            ("张_三", InvalidCharacter),
        ];
        for (input, expected) in cases {
            assert_eq!(
                &PersonName::parse(input).unwrap_err(),
                expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn length_limit_counts_characters() {
        let max = "张".repeat(MAX_NAME_CHARS);
        assert!(PersonName::parse(&max).is_ok());
        let over = "张".repeat(MAX_NAME_CHARS + 1);
        assert_eq!(
            PersonName::parse(&over),
            Err(PersonNameError::TooLong(MAX_NAME_CHARS + 1))
        );
    }

    #[test]
    fn masking() {
        let cases = [
            ("张", "*"),
            ("张三", "张*"),
            ("欧阳娜娜", "欧***"),
            ("买买提·艾力", "买*****"),
            ("John Smith", "J*********"),
        ];
        for (name, masked) in cases {
            let name = PersonName::parse(name).unwrap();
            assert_eq!(name.to_string(), masked);
            assert_eq!(format!("{name:?}"), format!("PersonName({masked})"));
            assert_eq!(format!("{name:#?}"), format!("PersonName({masked})"));
        }
    }

    #[test]
    fn keyed_hash_is_of_the_normalised_form() {
        let a = PersonName::parse("买买提・艾力").unwrap();
        let b = PersonName::parse("买买提·艾力").unwrap();
        assert_eq!(a.keyed_hash(b"k"), b.keyed_hash(b"k"));
        assert_ne!(a.keyed_hash(b"k"), a.keyed_hash(b"other"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn normalisation_is_idempotent(s in "[张三李四·・ a-zA-Z\u{3000}•\t-]{0,20}") {
                if let Ok(name) = PersonName::parse(&s) {
                    let again = PersonName::parse(name.as_str()).unwrap();
                    prop_assert_eq!(again, name);
                }
            }

            #[test]
            fn masking_never_shows_more_than_the_first_char(
                s in "[\u{4E00}-\u{9FA5}]{2,10}",
            ) {
                let name = PersonName::parse(&s).unwrap();
                let shown = format!("{name} {name:?}");
                for c in s.chars().skip(1) {
                    if c != s.chars().next().unwrap() {
                        prop_assert!(!shown.contains(c));
                    }
                }
            }

            #[test]
            fn arbitrary_input_never_panics(s in "\\PC{0,30}") {
                let _ = PersonName::parse(&s);
            }
        }
    }
}
