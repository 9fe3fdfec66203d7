//! Time-based one-time passwords (RFC 6238 over RFC 4226): the console's optional second
//! factor, as every authenticator app computes it — HMAC-SHA1, 30-second steps, 6 digits.
//!
//! A code is accepted for its own step and the one before and after (a phone's clock a
//! little off, a code typed as it changes), and only for a step later than the last one
//! the operator used ([`App::take_totp_step`](crate::App) keeps that in the store, so a
//! code seen over a shoulder cannot be replayed on another node either).

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use zeroize::Zeroizing;

/// Seconds per step.
pub const STEP_SECS: i64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Bytes of a secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A new random secret, base32 (what an authenticator app is given).
pub fn new_secret() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    Zeroizing::new(base32(bytes.as_ref()))
}

/// RFC 4648 base32 without padding.
fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buffer >> bits) & 31) as usize] as char);
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The bytes of a base32 secret (case, spaces and padding ignored); `None` when it is
/// not base32.
fn unbase32(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() * 5 / 8));
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let value = BASE32
            .iter()
            .position(|&b| b as char == c.to_ascii_uppercase())?;
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    Some(out)
}

/// The step of unix time `now_ms`.
pub fn step_at(now_ms: i64) -> i64 {
    now_ms.div_euclid(1000 * STEP_SECS)
}

/// The code of `secret` (base32) at `step`, as the authenticator shows it.
pub fn code_at(secret: &str, step: i64) -> Option<String> {
    let key = unbase32(secret)?;
    let mut mac = Hmac::<Sha1>::new_from_slice(&key).ok()?;
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    // RFC 4226 §5.3: dynamic truncation.
    let offset = usize::from(digest[19] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    Some(format!("{:0width$}", binary % 1_000_000, width = DIGITS))
}

/// The step whose code `code` is, among the step of `now_ms` and its two neighbours, and
/// later than `after` (the last step used); `None` when none is.
pub fn matching_step(secret: &str, code: &str, now_ms: i64, after: Option<i64>) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(now_ms);
    [now - 1, now, now + 1]
        .into_iter()
        .filter(|step| after.is_none_or(|last| *step > last))
        .find(|step| {
            code_at(secret, *step).is_some_and(|expected| {
                // Constant time: a code is compared whole.
                expected
                    .bytes()
                    .zip(code.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
            })
        })
}

/// The `otpauth://` address an authenticator app reads (from its QR code, or typed):
/// `issuer` and `account` are percent-encoded.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &str) -> String {
    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        encode(issuer),
        encode(account),
        encode(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 secret, "12345678901234567890", in base32.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn codes_are_rfc_6238s_test_vectors() {
        assert_eq!(base32(b"12345678901234567890"), RFC_SECRET);
        // The RFC's 8-digit codes, of which an authenticator shows the last 6.
        for (unix_secs, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let step = step_at(unix_secs * 1000);
            assert_eq!(
                code_at(RFC_SECRET, step).unwrap(),
                eight[2..],
                "{unix_secs}"
            );
        }
    }

    #[test]
    fn a_code_is_accepted_once_within_a_step_either_side() {
        let secret = new_secret();
        assert_eq!(secret.len(), 32);
        assert_eq!(unbase32(&secret).unwrap().len(), SECRET_BYTES);
        let now = 1_700_000_000_000;
        let step = step_at(now);
        let code = code_at(&secret, step).unwrap();
        assert_eq!(matching_step(&secret, &code, now, None), Some(step));
        // Spaced as some apps show it, and from a clock 30 s off either way.
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(matching_step(&secret, &spaced, now, None), Some(step));
        assert_eq!(
            matching_step(&secret, &code, now + 30_000, None),
            Some(step)
        );
        assert_eq!(
            matching_step(&secret, &code, now - 30_000, None),
            Some(step)
        );
        // Not twice, not two steps away, not anything else.
        assert_eq!(matching_step(&secret, &code, now, Some(step)), None);
        assert_eq!(matching_step(&secret, &code, now + 61_000, None), None);
        for bad in ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦"] {
            assert_eq!(matching_step(&secret, bad, now, None), None, "{bad}");
        }
        assert!(unbase32("not base32!").is_none());
    }

    #[test]
    fn the_otpauth_address_names_the_issuer_and_account() {
        let uri = otpauth_uri("人证 console", "ops lead", RFC_SECRET);
        assert!(
            uri.starts_with("otpauth://totp/%E4%BA%BA%E8%AF%81%20console:ops%20lead?secret=GEZD")
        );
        assert!(uri.ends_with("&digits=6&period=30"));
    }
}
