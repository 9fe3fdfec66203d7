//! The ISO 7064 MOD 11-2 check of GB 11643 numbers, shared by the parser and by the
//! region table's synthetic look-ups (so neither module depends on the other).

/// Weights of the ISO 7064 MOD 11-2 check: digit `i` (0-based, from the
/// left) weighs `2^(17 - i) mod 11`.
const WEIGHTS: [u32; 17] = {
    let mut w = [0; 17];
    let mut i = 0;
    while i < 17 {
        w[i] = (1u32 << (17 - i)) % 11;
        i += 1;
    }
    w
};

/// The ISO 7064 MOD 11-2 check character of the first 17 digits.
pub(crate) fn check_char(first17: &[u8]) -> char {
    let sum: u32 = first17
        .iter()
        .take(17)
        .zip(WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    match (12 - sum % 11) % 11 {
        10 => 'X',
        value => char::from_digit(value, 10).expect("value is below 10"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_match_the_standard_table() {
        assert_eq!(
            WEIGHTS,
            [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
        );
    }

    #[test]
    fn known_check_characters() {
        assert_eq!(check_char(b"11010519491231002"), 'X');
        assert_eq!(check_char(b"33010619900307002"), '2');
    }
}
