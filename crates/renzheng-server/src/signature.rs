//! The Alibaba Cloud API-gateway request signature ("digest authentication" with an
//! AppKey and AppSecret), so that clients written for the gateway can call Renzheng
//! unchanged.
//!
//! Pure: no database, no clock, no app state. The caller looks the AppSecret up by
//! [`SignedHeaders::app_key`], checks the nonce against what it has seen, passes the
//! current time in, and turns a [`SignatureError`] into the response
//! ([`SignatureError::status`], [`SignatureError::header_value`] for `X-Ca-Error-Message`).
//!
//! ```text
//! parse(headers) ─▶ None: not a signed request
//!                └▶ Some(signed) ─▶ require ─▶ check_freshness ─▶ [caller: secret]
//!                     ─▶ check_body_is_signed ─▶ verify ─▶ [caller: spend replay_token]
//! ```
//!
//! Where the gateway's scheme leaves a hole, this module closes it (SECURITY.md, "Signed
//! requests"): a timestamp or nonce that is sent must be signed ([`SignedHeaders::require`]);
//! a body must be covered, by `Content-MD5` unless it is a form, and no parameter may be
//! sent twice ([`check_body_is_signed`]); without a nonce the signature itself is spent
//! ([`SignedHeaders::replay_token`]); the echo of the string-to-sign hides the values of
//! headers other than `X-Ca-*`.
//!
//! The scheme, from the gateway's documentation ("Use digest authentication to call an
//! API", <https://www.alibabacloud.com/help/en/api-gateway/traditional-api-gateway/user-guide/use-digest-authentication-to-call-an-api>,
//! <https://help.aliyun.com/document_detail/29475.html>; "Signature mechanism",
//! <https://help.aliyun.com/document_detail/143207.html>):
//!
//! ```text
//! HTTPMethod \n Accept \n Content-MD5 \n Content-Type \n Date \n Headers PathAndParameters
//! ```
//!
//! * an absent Accept, Content-MD5, Content-Type or Date still gets its `\n`;
//! * Headers: each name listed in `X-Ca-Signature-Headers` (comma-separated) except
//!   X-Ca-Signature, X-Ca-Signature-Headers, Accept, Content-MD5, Content-Type and Date,
//!   sorted, as `name:value\n` (`name:\n` when the value is empty or the header absent);
//! * PathAndParameters: the path, then `?` and the query parameters together with the
//!   form parameters of an `application/x-www-form-urlencoded` body, decoded, sorted by
//!   key, joined by `&`, each `key=value` or only `key` when the value is empty; a key
//!   that repeats counts with its first value (query before form); no `?` without
//!   parameters;
//! * signature: base64 of HMAC-SHA256 (`HmacSHA256`, the default) or HMAC-SHA1
//!   (`HmacSHA1`) of the UTF-8 string-to-sign, keyed by the AppSecret.
//!
//! Header names are written as the client listed them in `X-Ca-Signature-Headers`, not
//! lower-cased: the gateway's own error example echoes `X-Ca-Key:200000`, the newer doc
//! example `x-ca-key:203753385`, and the official SDKs sign with their own spelling and
//! list that same spelling. Sorting (of header names and of parameter keys) is Java's
//! `String` order, UTF-16 code units, because the gateway and its SDKs are Java.
//!
//! `tools/ca_signature.py` is an independent implementation written from the same
//! documents; its output, `tests/ca_signature_vectors.json`, is checked here.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use axum::http::header::{ACCEPT, CONTENT_TYPE, DATE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use md5::{Digest as _, Md5};
use sha1::Sha1;
use sha2::Sha256;

/// How far `X-Ca-Timestamp` may be from the server's clock, either way: the gateway's
/// 15 minutes. The caller keeps used nonces at least this long.
pub const TIMESTAMP_WINDOW_MS: i64 = 15 * 60 * 1000;

/// The most names `X-Ca-Signature-Headers` may list; more is refused rather than cut, so
/// that a request never verifies against a different set of headers than it named.
pub const MAX_SIGNED_HEADERS: usize = 64;

/// The longest `X-Ca-Nonce` and `X-Ca-Key` accepted: the caller stores the nonce, and a
/// UUID (what the SDKs send) is 36 characters.
pub const MAX_NONCE_LEN: usize = 128;

/// How much of the server's string-to-sign an `Invalid Signature` message carries. A
/// form body of images can make it megabytes, which no client accepts as a response
/// header; the gateway documents no cap, this is ours.
pub const MAX_MESSAGE_STRING_TO_SIGN: usize = 4096;

const X_CA_KEY: &str = "x-ca-key";
const X_CA_SIGNATURE: &str = "x-ca-signature";
const X_CA_SIGNATURE_METHOD: &str = "x-ca-signature-method";
const X_CA_SIGNATURE_HEADERS: &str = "x-ca-signature-headers";
const X_CA_TIMESTAMP: &str = "x-ca-timestamp";
const X_CA_NONCE: &str = "x-ca-nonce";
const CONTENT_MD5: &str = "content-md5";

/// Headers that have their own line in the string-to-sign or are the signature itself;
/// the gateway leaves them out of Headers even when listed.
const NOT_IN_HEADERS: [&str; 6] = [
    X_CA_SIGNATURE,
    X_CA_SIGNATURE_HEADERS,
    "accept",
    CONTENT_MD5,
    "content-type",
    "date",
];

/// The HMAC of `X-Ca-Signature-Method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureMethod {
    /// `HmacSHA256`, the gateway's default when the header is absent.
    HmacSha256,
    /// `HmacSHA1`.
    HmacSha1,
}

impl SignatureMethod {
    /// The header spelling, `HmacSHA256` or `HmacSHA1`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureMethod::HmacSha256 => "HmacSHA256",
            SignatureMethod::HmacSha1 => "HmacSHA1",
        }
    }

    fn from_header(value: &str) -> Option<Self> {
        // Case-insensitive: accepting `hmacsha256` admits no weaker algorithm.
        [SignatureMethod::HmacSha256, SignatureMethod::HmacSha1]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(value))
    }
}

/// The signature headers of a request, parsed. [`parse`] gives `None` instead when the
/// request carries neither `X-Ca-Key` nor `X-Ca-Signature`, i.e. it is not signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `X-Ca-Key`, the AppKey the caller looks the AppSecret up by.
    pub app_key: String,
    /// `X-Ca-Signature`, as sent (base64).
    pub signature: String,
    /// `X-Ca-Signature-Method`, `HmacSHA256` when absent.
    pub method: SignatureMethod,
    /// `X-Ca-Timestamp`, epoch milliseconds; `None` when absent, which the gateway
    /// allows (the header is optional in its docs), see
    /// [`SignedHeaders::require_replay_protection`].
    pub timestamp_ms: Option<i64>,
    /// `X-Ca-Nonce`; `None` when absent or empty. The caller refuses one it has seen
    /// within [`TIMESTAMP_WINDOW_MS`] with [`SignatureError::NonceUsed`].
    pub nonce: Option<String>,
    /// The names of `X-Ca-Signature-Headers` that enter the string-to-sign: spelled as
    /// listed, the excluded ones and case-insensitive repeats dropped, in signing order.
    pub signed_header_names: Vec<String>,
}

impl SignedHeaders {
    /// Refuses a request without the headers the operator requires (`X-Ca-Nonce` when
    /// `nonce`, `X-Ca-Timestamp` when `timestamp`), and one that carries either without
    /// signing it. The gateway documents both as optional, and so do [`parse`] and
    /// [`check_freshness`]; but a timestamp or nonce left out of
    /// `X-Ca-Signature-Headers` can be replaced by anyone who captured the request, and
    /// then protects nothing.
    pub fn require(&self, nonce: bool, timestamp: bool) -> Result<(), SignatureError> {
        if timestamp && self.timestamp_ms.is_none() {
            return Err(SignatureError::MissingHeader {
                name: "X-Ca-Timestamp",
            });
        }
        if nonce && self.nonce.is_none() {
            return Err(SignatureError::MissingHeader { name: "X-Ca-Nonce" });
        }
        let signs = |name: &str| {
            self.signed_header_names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name))
        };
        if self.timestamp_ms.is_some() && !signs(X_CA_TIMESTAMP) {
            return Err(SignatureError::UnsignedHeader {
                name: "X-Ca-Timestamp",
            });
        }
        if self.nonce.is_some() && !signs(X_CA_NONCE) {
            return Err(SignatureError::UnsignedHeader { name: "X-Ca-Nonce" });
        }
        Ok(())
    }

    /// What a verified request spends so that it is answered once within the window: its
    /// nonce, or without one the signature itself (canonical base64 of the tag, so that no
    /// other spelling of the same tag passes as new). A newline starts the latter, which
    /// no header value (so no nonce) can hold: the two never collide.
    pub fn replay_token(&self) -> String {
        match &self.nonce {
            Some(nonce) => nonce.clone(),
            None => {
                let canonical = STANDARD
                    .decode(self.signature.as_bytes())
                    .map(|tag| STANDARD.encode(tag))
                    .unwrap_or_else(|_| self.signature.clone());
                format!("\nsig:{canonical}")
            }
        }
    }
}

/// The server's string-to-sign carried by [`SignatureError::InvalidSignature`]. It holds
/// the request's parameters (names, ID numbers), so `Debug` and `Display` leave it out
/// and logs of the error stay free of them; only the client gets it, in
/// [`SignatureError::gateway_message`], as the gateway does.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerStringToSign(pub String);

impl fmt::Debug for ServerStringToSign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerStringToSign(<{} bytes>)", self.0.len())
    }
}

/// Why a signed request is refused. [`SignatureError::gateway_message`] is the
/// gateway's `X-Ca-Error-Message` text and [`SignatureError::status`] its HTTP status,
/// from the gateway's error-code tables
/// (<https://www.alibabacloud.com/help/en/api-gateway/traditional-api-gateway/support/api-gateway-error-code-table>,
/// <https://www.alibabacloud.com/help/doc-detail/43906.htm>): 400 for every signature
/// error, 403 only for `Unauthorized`.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// A header the request needs is absent: `X-Ca-Key` beside an `X-Ca-Signature`, or
    /// the timestamp/nonce of [`SignedHeaders::require_replay_protection`]. Gateway:
    /// ``Header `${HeaderName}` is Required``, 400.
    #[error("header {name} is required")]
    MissingHeader {
        /// The header, as the gateway spells it.
        name: &'static str,
    },
    /// `X-Ca-Timestamp` or `X-Ca-Nonce` is sent but not listed in
    /// `X-Ca-Signature-Headers`, so anyone could change it. Ours, worded as the gateway's
    /// header errors: ``Header `${HeaderName}` must be Signed``, 400.
    #[error("header {name} is not signed")]
    UnsignedHeader {
        /// The header, as the gateway spells it.
        name: &'static str,
    },
    /// A parameter is sent twice (twice in the query, twice in a form body, or in both):
    /// the string-to-sign takes the first value and a handler might read another, so a
    /// signature could vouch for parameters the server does not use. Ours:
    /// ``Invalid Parameter `${Name}` sent more than once``, 400.
    #[error("parameter sent more than once")]
    RepeatedParameter {
        /// The parameter's key, as sent (a key, never a value).
        key: String,
    },
    /// A header is unusable: not UTF-8, too long, too many names listed, an unknown
    /// `X-Ca-Signature-Method`. Gateway: ``Invalid Header `${HeaderName}` ${Reason}``, 400.
    #[error("invalid header {name}: {reason}")]
    InvalidHeader {
        /// The header.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `X-Ca-Key` without (or with an empty) `X-Ca-Signature`. Gateway: `Empty
    /// Signature`; its table gives 404, we answer 400, since a 404 reads as "no such
    /// route" to clients and monitoring.
    #[error("empty signature")]
    EmptySignature,
    /// No app has this AppKey, or it is disabled (the caller decides). Gateway:
    /// `Invalid AppKey`, 400.
    #[error("invalid AppKey")]
    InvalidAppKey,
    /// The app exists but may not call this API (the caller decides). Gateway:
    /// `Unauthorized`, 403.
    #[error("app not authorized")]
    Unauthorized,
    /// `X-Ca-Timestamp` is not a number of milliseconds. Gateway: `Invalid Timestamp`, 400.
    #[error("invalid timestamp")]
    InvalidTimestamp,
    /// `X-Ca-Timestamp` is more than [`TIMESTAMP_WINDOW_MS`] from the server's clock.
    /// Gateway: `Timestamp Expired`, 400.
    #[error("timestamp outside the 15-minute window")]
    TimestampExpired,
    /// The nonce was used within the window (the caller decides). Gateway: `Nonce
    /// Used`, 400.
    #[error("nonce used")]
    NonceUsed,
    /// `Content-MD5` does not match the body, is not base64 of 16 bytes, or comes with
    /// an empty body. Gateway: `Invalid Content-MD5`, 400.
    #[error("invalid Content-MD5")]
    InvalidContentMd5,
    /// The signature does not match. Gateway: ``Invalid Signature, Server
    /// StringToSign:`...` `` with the string-to-sign's newlines as `#`, 400.
    #[error("invalid signature")]
    InvalidSignature {
        /// What the server signed, for the client to compare with its own.
        server_string_to_sign: ServerStringToSign,
    },
}

impl SignatureError {
    /// The `X-Ca-Error-Message` text, worded as the gateway words it (see each variant).
    pub fn gateway_message(&self) -> String {
        match self {
            SignatureError::MissingHeader { name } => format!("Header `{name}` is Required"),
            SignatureError::UnsignedHeader { name } => {
                format!("Header `{name}` must be Signed (listed in X-Ca-Signature-Headers)")
            }
            SignatureError::RepeatedParameter { key } => {
                format!("Invalid Parameter `{key}` sent more than once")
            }
            SignatureError::InvalidHeader { name, reason } => {
                format!("Invalid Header `{name}` {reason}")
            }
            SignatureError::EmptySignature => "Empty Signature".to_owned(),
            SignatureError::InvalidAppKey => "Invalid AppKey".to_owned(),
            SignatureError::Unauthorized => "Unauthorized".to_owned(),
            SignatureError::InvalidTimestamp => "Invalid Timestamp".to_owned(),
            SignatureError::TimestampExpired => "Timestamp Expired".to_owned(),
            SignatureError::NonceUsed => "Nonce Used".to_owned(),
            SignatureError::InvalidContentMd5 => "Invalid Content-MD5".to_owned(),
            SignatureError::InvalidSignature {
                server_string_to_sign,
            } => {
                let sts = &server_string_to_sign.0;
                let (shown, cut) = if sts.len() > MAX_MESSAGE_STRING_TO_SIGN {
                    let mut end = MAX_MESSAGE_STRING_TO_SIGN;
                    while !sts.is_char_boundary(end) {
                        end -= 1;
                    }
                    (&sts[..end], "...")
                } else {
                    (sts.as_str(), "")
                };
                // A header value cannot hold a newline: the gateway shows them as '#'.
                format!(
                    "Invalid Signature, Server StringToSign:`{}{cut}`",
                    shown.replace('\n', "#")
                )
            }
        }
    }

    /// [`SignatureError::gateway_message`] as a header value, by [`header_text`]: the
    /// client's own Chinese parameters in an echoed string-to-sign arrive percent-encoded.
    pub fn header_value(&self) -> HeaderValue {
        header_text(&self.gateway_message())
    }

    /// The HTTP status the gateway answers with: 403 for `Unauthorized`, 400 otherwise.
    pub fn status(&self) -> StatusCode {
        match self {
            SignatureError::Unauthorized => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A message as an `X-Ca-Error-Message` value: printable ASCII as it is, every other
/// byte of its UTF-8 (non-ASCII text, control characters) and `%` itself
/// percent-encoded (RFC 3986 `%XX`), so that a client decodes it back to the exact text
/// and no client sees `?` or mojibake. Header values are bytes; the HTTP spec leaves
/// non-ASCII bytes undefined and clients differ (Java reads them as Latin-1).
pub fn header_text(message: &str) -> HeaderValue {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&out).unwrap_or(HeaderValue::from_static("Invalid Header"))
}

/// The first value of a header as text; `Err` when it is not UTF-8, since the signature
/// is over UTF-8 and a lossy guess would only fail later with a confusing message.
fn text<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, SignatureError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => {
            std::str::from_utf8(v.as_bytes())
                .map(Some)
                .map_err(|_| SignatureError::InvalidHeader {
                    name: name.to_owned(),
                    reason: "is not UTF-8",
                })
        }
    }
}

/// A header named by the client, which may not even be a valid header name: then it
/// cannot be present, and counts as absent.
fn client_named<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h HeaderValue> {
    HeaderName::from_bytes(name.as_bytes())
        .ok()
        .and_then(|n| headers.get(n))
}

fn java_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Reads the signature headers. `Ok(None)`: the request is not signed (neither
/// `X-Ca-Key` nor `X-Ca-Signature`). Every header that enters the string-to-sign is
/// checked to be UTF-8 here, so that [`string_to_sign`] has nothing left to refuse.
pub fn parse(headers: &HeaderMap) -> Result<Option<SignedHeaders>, SignatureError> {
    let key = text(headers, X_CA_KEY)?;
    let signature = text(headers, X_CA_SIGNATURE)?;
    if key.is_none() && signature.is_none() {
        return Ok(None);
    }
    let app_key = match key {
        Some(k) if !k.is_empty() => k,
        _ => return Err(SignatureError::MissingHeader { name: "X-Ca-Key" }),
    };
    if app_key.len() > MAX_NONCE_LEN {
        return Err(SignatureError::InvalidHeader {
            name: "X-Ca-Key".to_owned(),
            reason: "is too long",
        });
    }
    let signature = match signature {
        Some(s) if !s.is_empty() => s,
        _ => return Err(SignatureError::EmptySignature),
    };
    let method = match text(headers, X_CA_SIGNATURE_METHOD)? {
        None => SignatureMethod::HmacSha256,
        Some(m) => {
            SignatureMethod::from_header(m).ok_or_else(|| SignatureError::InvalidHeader {
                name: "X-Ca-Signature-Method".to_owned(),
                reason: "must be HmacSHA256 or HmacSHA1",
            })?
        }
    };
    let timestamp_ms = match text(headers, X_CA_TIMESTAMP) {
        Err(_) => return Err(SignatureError::InvalidTimestamp),
        Ok(None) => None,
        Ok(Some(t)) => Some(parse_timestamp(t)?),
    };
    let nonce = match text(headers, X_CA_NONCE)? {
        None | Some("") => None,
        Some(n) if n.len() > MAX_NONCE_LEN => {
            return Err(SignatureError::InvalidHeader {
                name: "X-Ca-Nonce".to_owned(),
                reason: "is too long",
            })
        }
        Some(n) => Some(n.to_owned()),
    };
    for name in [
        ACCEPT.as_str(),
        CONTENT_MD5,
        CONTENT_TYPE.as_str(),
        DATE.as_str(),
    ] {
        text(headers, name)?;
    }
    let signed_header_names = signed_header_names(headers)?;
    Ok(Some(SignedHeaders {
        app_key: app_key.to_owned(),
        signature: signature.to_owned(),
        method,
        timestamp_ms,
        nonce,
        signed_header_names,
    }))
}

fn parse_timestamp(t: &str) -> Result<i64, SignatureError> {
    // Digits only: `i64::from_str` would also take a sign, and "+1" is no timestamp.
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::InvalidTimestamp);
    }
    t.parse().map_err(|_| SignatureError::InvalidTimestamp)
}

fn signed_header_names(headers: &HeaderMap) -> Result<Vec<String>, SignatureError> {
    let Some(listed) = text(headers, X_CA_SIGNATURE_HEADERS)? else {
        return Ok(Vec::new());
    };
    let listed: Vec<&str> = listed
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if listed.len() > MAX_SIGNED_HEADERS {
        return Err(SignatureError::InvalidHeader {
            name: "X-Ca-Signature-Headers".to_owned(),
            reason: "lists too many headers",
        });
    }
    let mut seen = HashSet::new();
    let mut names = Vec::new();
    for name in listed {
        let lower = name.to_ascii_lowercase();
        if NOT_IN_HEADERS.contains(&lower.as_str()) || !seen.insert(lower) {
            continue;
        }
        if let Some(v) = client_named(headers, name) {
            if std::str::from_utf8(v.as_bytes()).is_err() {
                return Err(SignatureError::InvalidHeader {
                    name: name.to_owned(),
                    reason: "is not UTF-8",
                });
            }
        }
        names.push(name.to_owned());
    }
    names.sort_by(|a, b| java_order(a, b));
    Ok(names)
}

fn lossy(value: Option<&HeaderValue>) -> Cow<'_, str> {
    // parse() has refused non-UTF-8 already; lossy only so that this can never fail.
    value.map_or(Cow::Borrowed(""), |v| String::from_utf8_lossy(v.as_bytes()))
}

fn is_form(headers: &HeaderMap) -> bool {
    headers.get(CONTENT_TYPE).is_some_and(|ct| {
        let ct = String::from_utf8_lossy(ct.as_bytes());
        ct.split(';').next().is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    })
}

/// The string the gateway signs for this request (see the module documentation): the
/// query, and the body when it is a URL-encoded form, are decoded and sorted; a JSON or
/// multipart body enters only through `Content-MD5`.
pub fn string_to_sign(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    signed: &SignedHeaders,
    body: &[u8],
) -> String {
    build_string_to_sign(method, uri, headers, signed, body, false)
}

/// The string-to-sign as an `Invalid Signature` message shows it: the values of signed
/// headers other than `X-Ca-*` are hidden, since a proxy in front of Renzheng may add
/// headers (`X-Forwarded-For`, `X-Real-IP`, its own tokens) that its client should not
/// read back by listing them.
fn echoed_string_to_sign(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    signed: &SignedHeaders,
    body: &[u8],
) -> String {
    build_string_to_sign(method, uri, headers, signed, body, true)
}

/// What an echo shows in place of a hidden header value.
const HIDDEN: &str = "<hidden>";

fn build_string_to_sign(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    signed: &SignedHeaders,
    body: &[u8],
    echo: bool,
) -> String {
    let mut out = method.as_str().to_ascii_uppercase();
    out.push('\n');
    for name in [
        ACCEPT.as_str(),
        CONTENT_MD5,
        CONTENT_TYPE.as_str(),
        DATE.as_str(),
    ] {
        out.push_str(&lossy(headers.get(name)));
        out.push('\n');
    }
    for name in &signed.signed_header_names {
        out.push_str(name);
        out.push(':');
        let value = lossy(client_named(headers, name));
        let shown = !echo
            || value.is_empty()
            || name
                .get(..5)
                .is_some_and(|p| p.eq_ignore_ascii_case("x-ca-"));
        out.push_str(if shown { &value } else { HIDDEN });
        out.push('\n');
    }
    out.push_str(uri.path());

    let mut seen = HashSet::new();
    let mut params: Vec<(Cow<'_, str>, Cow<'_, str>)> = parameters(uri, headers, body)
        .filter(|(k, _)| !k.is_empty() && seen.insert(k.clone()))
        .collect();
    params.sort_by(|a, b| java_order(&a.0, &b.0));
    for (i, (key, value)) in params.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(key);
        if !value.is_empty() {
            out.push('=');
            out.push_str(value);
        }
    }
    out
}

/// The signed parameters, decoded: the query's, then a form body's.
fn parameters<'a>(
    uri: &'a Uri,
    headers: &HeaderMap,
    body: &'a [u8],
) -> impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)> {
    let query = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes());
    let form = url::form_urlencoded::parse(if is_form(headers) { body } else { b"" });
    query.chain(form)
}

/// Refuses a request whose signature would not cover what the server reads:
///
/// * a body without `Content-Type` (the string-to-sign holds it, and the server parses
///   the body by it);
/// * a body that is not a form without `Content-MD5` (only the MD5 signs such a body:
///   without it the body could be swapped under a valid signature);
/// * a parameter sent twice (the string-to-sign takes the first value; a handler could
///   read the other).
///
/// Then checks `Content-MD5` against the body ([`check_content_md5`]).
pub fn check_body_is_signed(
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), SignatureError> {
    if !body.is_empty() {
        if headers.get(CONTENT_TYPE).is_none() {
            return Err(SignatureError::MissingHeader {
                name: "Content-Type",
            });
        }
        if !is_form(headers) && headers.get(CONTENT_MD5).is_none() {
            return Err(SignatureError::MissingHeader {
                name: "Content-MD5",
            });
        }
    }
    let mut seen = HashSet::new();
    for (key, _) in parameters(uri, headers, body) {
        if !key.is_empty() && !seen.insert(key.clone()) {
            return Err(SignatureError::RepeatedParameter {
                key: key.chars().take(64).collect(),
            });
        }
    }
    check_content_md5(headers, body)
}

fn keyed<M: Mac + KeyInit>(secret: &[u8], string_to_sign: &str) -> Option<M> {
    // HMAC takes keys of any length, so this is always Some; Option keeps it panic-free.
    let mut mac = <M as KeyInit>::new_from_slice(secret).ok()?;
    mac.update(string_to_sign.as_bytes());
    Some(mac)
}

/// The signature of a string-to-sign: base64 of its HMAC keyed by the AppSecret.
pub fn sign(secret: &[u8], method: SignatureMethod, string_to_sign: &str) -> String {
    let tag = match method {
        SignatureMethod::HmacSha256 => keyed::<Hmac<Sha256>>(secret, string_to_sign)
            .map(|m| m.finalize().into_bytes().to_vec()),
        SignatureMethod::HmacSha1 => {
            keyed::<Hmac<Sha1>>(secret, string_to_sign).map(|m| m.finalize().into_bytes().to_vec())
        }
    };
    STANDARD.encode(tag.unwrap_or_default())
}

fn tag_matches(secret: &[u8], method: SignatureMethod, string_to_sign: &str, tag: &[u8]) -> bool {
    // verify_slice compares in constant time, so timing tells nothing of the expected tag.
    match method {
        SignatureMethod::HmacSha256 => keyed::<Hmac<Sha256>>(secret, string_to_sign)
            .is_some_and(|m| m.verify_slice(tag).is_ok()),
        SignatureMethod::HmacSha1 => {
            keyed::<Hmac<Sha1>>(secret, string_to_sign).is_some_and(|m| m.verify_slice(tag).is_ok())
        }
    }
}

/// Checks the presented signature against the one the server computes with `secret`
/// (constant-time). On mismatch, including a signature that is not base64, the error
/// carries the server's string-to-sign for the client.
pub fn verify(
    secret: &[u8],
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    signed: &SignedHeaders,
) -> Result<(), SignatureError> {
    // Clients differ on the spelling of the signed header names: the gateway's newer
    // documentation lower-cases them, older SDKs (and the gateway's own error example)
    // keep the client's spelling. Both are accepted; a refusal shows the string as the
    // gateway does, in the client's spelling.
    let refused = || SignatureError::InvalidSignature {
        server_string_to_sign: ServerStringToSign(echoed_string_to_sign(
            method, uri, headers, signed, body,
        )),
    };
    let sts = string_to_sign(method, uri, headers, signed, body);
    let Ok(tag) = STANDARD.decode(signed.signature.as_bytes()) else {
        return Err(refused());
    };
    if tag_matches(secret, signed.method, &sts, &tag) {
        return Ok(());
    }
    let lower = lower_cased(signed);
    if lower.signed_header_names != signed.signed_header_names {
        let lowered = string_to_sign(method, uri, headers, &lower, body);
        if tag_matches(secret, signed.method, &lowered, &tag) {
            return Ok(());
        }
    }
    Err(refused())
}

/// The same signed headers with lower-cased names, in their sorted order.
fn lower_cased(signed: &SignedHeaders) -> SignedHeaders {
    let mut names: Vec<String> = signed
        .signed_header_names
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    names.sort_by(|a, b| java_order(a, b));
    names.dedup();
    SignedHeaders {
        signed_header_names: names,
        ..signed.clone()
    }
}

/// Checks `X-Ca-Timestamp` against `now_ms` (±[`TIMESTAMP_WINDOW_MS`], bounds included;
/// no timestamp, no check, as the gateway does). Needs only the head, so it runs before
/// the secret is looked up and the body read.
pub fn check_freshness(h: &SignedHeaders, now_ms: i64) -> Result<(), SignatureError> {
    match h.timestamp_ms {
        Some(ts) if ts.abs_diff(now_ms) > TIMESTAMP_WINDOW_MS.unsigned_abs() => {
            Err(SignatureError::TimestampExpired)
        }
        _ => Ok(()),
    }
}

/// When `Content-MD5` is present, checks that it is base64 of the body's MD5. An empty
/// body with a `Content-MD5` is refused, as the gateway's error table says.
pub fn check_content_md5(headers: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
    if let Some(md5) = headers.get(CONTENT_MD5) {
        let presented = STANDARD
            .decode(md5.as_bytes())
            .map_err(|_| SignatureError::InvalidContentMd5)?;
        if body.is_empty() || presented.as_slice() != Md5::digest(body).as_slice() {
            return Err(SignatureError::InvalidContentMd5);
        }
    }
    Ok(())
}

/// [`check_freshness`] then [`check_content_md5`]: every check that needs no secret.
pub fn check_freshness_and_md5(
    h: &SignedHeaders,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: i64,
) -> Result<(), SignatureError> {
    check_freshness(h, now_ms)?;
    check_content_md5(headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const VECTORS: &str = include_str!("../tests/ca_signature_vectors.json");

    struct Case {
        name: String,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Vec<u8>,
        secret: String,
        string_to_sign: String,
        signature: String,
    }

    fn cases() -> Vec<Case> {
        let all: Vec<Value> = serde_json::from_str(VECTORS).unwrap();
        all.iter()
            .map(|v| {
                let s = |k: &str| v[k].as_str().unwrap().to_owned();
                let mut headers = HeaderMap::new();
                for pair in v["headers"].as_array().unwrap() {
                    headers.append(
                        HeaderName::from_bytes(pair[0].as_str().unwrap().as_bytes()).unwrap(),
                        HeaderValue::from_str(pair[1].as_str().unwrap()).unwrap(),
                    );
                }
                headers.insert(
                    X_CA_SIGNATURE,
                    HeaderValue::from_str(&s("signature")).unwrap(),
                );
                let query = s("query");
                let uri = if query.is_empty() {
                    s("path")
                } else {
                    format!("{}?{}", s("path"), query)
                };
                Case {
                    name: s("name"),
                    method: Method::from_bytes(s("method").as_bytes()).unwrap(),
                    uri: uri.parse().unwrap(),
                    headers,
                    body: s("body").into_bytes(),
                    secret: s("secret"),
                    string_to_sign: s("string_to_sign"),
                    signature: s("signature"),
                }
            })
            .collect()
    }

    fn case(name: &str) -> Case {
        cases().into_iter().find(|c| c.name == name).unwrap()
    }

    fn verify_case(c: &Case) -> Result<(), SignatureError> {
        let signed = parse(&c.headers)?.unwrap();
        verify(
            c.secret.as_bytes(),
            &c.method,
            &c.uri,
            &c.headers,
            &c.body,
            &signed,
        )
    }

    fn expect_invalid_signature(r: Result<(), SignatureError>) -> String {
        let err = r.unwrap_err();
        assert!(
            matches!(err, SignatureError::InvalidSignature { .. }),
            "{err:?}"
        );
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let msg = err.gateway_message();
        assert!(
            msg.starts_with("Invalid Signature, Server StringToSign:`") && msg.ends_with('`'),
            "{msg}"
        );
        msg
    }

    #[test]
    fn every_vector_of_the_python_script_matches() {
        let cases = cases();
        assert!(cases.len() >= 10);
        for c in &cases {
            let signed = parse(&c.headers).unwrap().expect("signed");
            let sts = string_to_sign(&c.method, &c.uri, &c.headers, &signed, &c.body);
            assert_eq!(sts, c.string_to_sign, "{}", c.name);
            assert_eq!(
                sign(c.secret.as_bytes(), signed.method, &sts),
                c.signature,
                "{}",
                c.name
            );
            verify_case(c).unwrap_or_else(|e| panic!("{}: {e:?}", c.name));
            let now = signed.timestamp_ms.unwrap_or(0);
            check_freshness_and_md5(&signed, &c.headers, &c.body, now)
                .unwrap_or_else(|e| panic!("{}: {e:?}", c.name));
        }
    }

    #[test]
    fn names_listed_in_capitals_may_be_signed_lower_cased() {
        let mut headers = HeaderMap::new();
        headers.insert("X-Ca-Key", HeaderValue::from_static("203753385"));
        headers.insert("X-Ca-Timestamp", HeaderValue::from_static("1525872629832"));
        headers.insert("X-Ca-Nonce", HeaderValue::from_static("n"));
        headers.insert("X-Ca-Signature", HeaderValue::from_static("x"));
        headers.insert(
            "X-Ca-Signature-Headers",
            HeaderValue::from_static("X-Ca-Timestamp,X-Ca-Key,X-Ca-Nonce"),
        );
        let signed = parse(&headers).unwrap().unwrap();
        let (method, uri) = (Method::GET, Uri::from_static("/v1/app/balance"));
        // Independent: the issue's rule, names lower-cased and sorted.
        let lower_sts = "GET\n\n\n\n\nx-ca-key:203753385\nx-ca-nonce:n\nx-ca-timestamp:1525872629832\n/v1/app/balance";
        for sts in [
            lower_sts.to_owned(),
            string_to_sign(&method, &uri, &headers, &signed, b""),
        ] {
            let mut signed = signed.clone();
            signed.signature = sign(b"secret", SignatureMethod::HmacSha256, &sts);
            verify(b"secret", &method, &uri, &headers, b"", &signed).unwrap();
        }
        let mut forged = signed.clone();
        forged.signature = sign(b"other", SignatureMethod::HmacSha256, lower_sts);
        assert!(verify(b"secret", &method, &uri, &headers, b"", &forged).is_err());
    }

    #[test]
    fn the_docs_gateway_error_example_is_reproduced() {
        let c = case("mixed_case_header_names");
        let signed = parse(&c.headers).unwrap().unwrap();
        let err = verify(b"wrong", &c.method, &c.uri, &c.headers, &c.body, &signed).unwrap_err();
        assert_eq!(
            err.gateway_message(),
            "Invalid Signature, Server StringToSign:`GET#application/json##application/json##\
             X-Ca-Key:200000#X-Ca-Timestamp:1589458000000#/app/v1/config/keys?keys=TEST`"
        );
    }

    #[test]
    fn hmac_known_answers() {
        // RFC 2202 case 2 and RFC 4231 case 2.
        let data = "what do ya want for nothing?";
        assert_eq!(
            sign(b"Jefe", SignatureMethod::HmacSha1, data),
            "7/zfauXrL6LSdBbV8YTfnCWafHk="
        );
        assert_eq!(
            sign(b"Jefe", SignatureMethod::HmacSha256, data),
            "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
        );
    }

    #[test]
    fn a_tampered_body_is_refused_with_the_server_string_to_sign() {
        let mut c = case("post_form_mixed_with_query");
        c.body = b"username=xiaoming&password=000000000".to_vec();
        let msg = expect_invalid_signature(verify_case(&c));
        assert!(
            msg.contains("password=000000000&username=xiaoming`"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn a_tampered_param_is_refused() {
        let mut c = case("get_with_query");
        c.uri = "/faceidcard/check?b=2&a=1&c=y".parse().unwrap();
        let msg = expect_invalid_signature(verify_case(&c));
        assert!(msg.ends_with("#/faceidcard/check?a=1&b=2&c=y`"), "{msg}");
    }

    #[test]
    fn a_tampered_signed_header_is_refused() {
        let mut c = case("signed_headers_unsorted_with_custom");
        c.headers
            .insert("x-custom-b", HeaderValue::from_static("wasp"));
        let msg = expect_invalid_signature(verify_case(&c));
        // A header outside the gateway's own is not echoed (a proxy may have set it).
        assert!(msg.contains("#x-custom-b:<hidden>#"), "{msg}");
        assert!(!msg.contains("wasp"), "{msg}");
    }

    #[test]
    fn a_wrong_secret_or_method_or_garbled_signature_is_refused() {
        let mut c = case("hmac_sha1");
        c.secret = "another-secret".to_owned();
        let msg = expect_invalid_signature(verify_case(&c));
        assert!(msg.contains(&c.string_to_sign.replace('\n', "#")));

        let mut c = case("hmac_sha1");
        c.headers.insert(
            X_CA_SIGNATURE_METHOD,
            HeaderValue::from_static("HmacSHA256"),
        );
        expect_invalid_signature(verify_case(&c));

        for garbage in ["not base64!", "", "AAAA", "QS4ExTYzIfBaHvPc0wPZluG/78Y"] {
            let mut c = case("hmac_sha1");
            c.headers
                .insert(X_CA_SIGNATURE, HeaderValue::from_str(garbage).unwrap());
            assert!(verify_case(&c).is_err(), "{garbage:?}");
        }
    }

    #[test]
    fn the_error_debug_and_display_leave_the_request_out() {
        let mut c = case("unicode_values");
        c.secret = "x".to_owned();
        let err = verify_case(&c).unwrap_err();
        assert!(!format!("{err:?}").contains("张三"));
        assert!(!err.to_string().contains("张三"));
        assert!(err.gateway_message().contains("name=张三"));
        // UTF-8 reaches the header percent-encoded.
        let value = err.header_value();
        assert!(value.as_bytes().is_ascii());
        assert!(value.to_str().unwrap().contains("name=%E5%BC%A0%E4%B8%89"));
    }

    #[test]
    fn content_md5_must_match_the_body() {
        let c = case("post_json_content_md5");
        let signed = parse(&c.headers).unwrap().unwrap();
        let now = signed.timestamp_ms.unwrap();
        assert!(check_freshness_and_md5(&signed, &c.headers, &c.body, now).is_ok());
        for body in [&b"{}"[..], b""] {
            let err = check_freshness_and_md5(&signed, &c.headers, body, now).unwrap_err();
            assert!(matches!(err, SignatureError::InvalidContentMd5));
            assert_eq!(err.gateway_message(), "Invalid Content-MD5");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
        let mut headers = c.headers.clone();
        headers.insert(CONTENT_MD5, HeaderValue::from_static("%%%"));
        assert!(check_freshness_and_md5(&signed, &headers, &c.body, now).is_err());
        headers.insert(CONTENT_MD5, HeaderValue::from_static("AAAA"));
        assert!(check_freshness_and_md5(&signed, &headers, &c.body, now).is_err());
        headers.insert(CONTENT_MD5, HeaderValue::from_bytes(&[0xff, 0xfe]).unwrap());
        assert!(check_freshness_and_md5(&signed, &headers, &c.body, now).is_err());
        headers.remove(CONTENT_MD5);
        assert!(check_freshness_and_md5(&signed, &headers, &c.body, now).is_ok());
    }

    #[test]
    fn the_timestamp_window_is_fifteen_minutes_either_way() {
        let c = case("get_with_query");
        let signed = parse(&c.headers).unwrap().unwrap();
        let ts = signed.timestamp_ms.unwrap();
        let check = |now: i64| check_freshness_and_md5(&signed, &c.headers, &c.body, now);
        for now in [ts, ts + TIMESTAMP_WINDOW_MS, ts - TIMESTAMP_WINDOW_MS] {
            assert!(check(now).is_ok(), "{now}");
        }
        for now in [
            ts + TIMESTAMP_WINDOW_MS + 1,
            ts - TIMESTAMP_WINDOW_MS - 1,
            i64::MAX,
            i64::MIN,
        ] {
            let err = check(now).unwrap_err();
            assert!(matches!(err, SignatureError::TimestampExpired), "{now}");
            assert_eq!(err.gateway_message(), "Timestamp Expired");
        }
    }

    #[test]
    fn an_unparseable_timestamp_is_invalid() {
        for bad in ["", "abc", "-1", "+1", "1.5", "99999999999999999999", " 1"] {
            let mut c = case("get_with_query");
            c.headers
                .insert(X_CA_TIMESTAMP, HeaderValue::from_str(bad).unwrap());
            let err = parse(&c.headers).unwrap_err();
            assert!(matches!(err, SignatureError::InvalidTimestamp), "{bad:?}");
            assert_eq!(err.gateway_message(), "Invalid Timestamp");
        }
    }

    #[test]
    fn timestamp_and_nonce_are_optional_as_in_the_docs_unless_required() {
        let mut c = case("get_with_query");
        c.headers.remove(X_CA_TIMESTAMP);
        let signed = parse(&c.headers).unwrap().unwrap();
        assert_eq!(signed.timestamp_ms, None);
        assert!(check_freshness_and_md5(&signed, &c.headers, &c.body, 0).is_ok());
        let err = signed.require(false, true).unwrap_err();
        assert_eq!(err.gateway_message(), "Header `X-Ca-Timestamp` is Required");
        assert!(signed.require(false, false).is_ok());

        let mut c = case("get_with_query");
        c.headers.insert(X_CA_NONCE, HeaderValue::from_static(""));
        let signed = parse(&c.headers).unwrap().unwrap();
        assert_eq!(signed.nonce, None);
        let err = signed.require(true, true).unwrap_err();
        assert_eq!(err.gateway_message(), "Header `X-Ca-Nonce` is Required");
        // The gateway's default: no nonce needed (Alibaba's Java demo sends none).
        assert!(signed.require(false, true).is_ok());

        let signed = parse(&case("get_with_query").headers).unwrap().unwrap();
        assert!(signed.require(true, true).is_ok());
        assert_eq!(
            signed.nonce.as_deref(),
            Some("c9f15cbf-f4ac-4a6c-b54d-f51abf4b5b44")
        );
    }

    #[test]
    fn a_timestamp_or_nonce_sent_must_be_signed() {
        for (listed, refused) in [
            ("x-ca-key,x-ca-nonce", "X-Ca-Timestamp"),
            ("x-ca-key,X-CA-TIMESTAMP", "X-Ca-Nonce"),
            ("", "X-Ca-Timestamp"),
        ] {
            let mut c = case("get_with_query");
            c.headers.insert(
                X_CA_SIGNATURE_HEADERS,
                HeaderValue::from_str(listed).unwrap(),
            );
            let signed = parse(&c.headers).unwrap().unwrap();
            // Required or not, a header that is present is enforced and must be signed.
            for (nonce, timestamp) in [(false, false), (true, true)] {
                let err = signed.require(nonce, timestamp).unwrap_err();
                assert!(matches!(err, SignatureError::UnsignedHeader { .. }));
                assert_eq!(
                    err.gateway_message(),
                    format!("Header `{refused}` must be Signed (listed in X-Ca-Signature-Headers)")
                );
            }
        }
        let mut c = case("get_with_query");
        c.headers.remove(X_CA_NONCE);
        c.headers.insert(
            X_CA_SIGNATURE_HEADERS,
            HeaderValue::from_static("X-Ca-Timestamp"),
        );
        assert!(parse(&c.headers)
            .unwrap()
            .unwrap()
            .require(false, true)
            .is_ok());
    }

    #[test]
    fn without_a_nonce_the_signature_is_what_is_spent() {
        let signed = parse(&case("get_with_query").headers).unwrap().unwrap();
        assert_eq!(
            signed.replay_token(),
            "c9f15cbf-f4ac-4a6c-b54d-f51abf4b5b44"
        );
        let mut c = case("get_with_query");
        c.headers.remove(X_CA_NONCE);
        let signed = parse(&c.headers).unwrap().unwrap();
        let token = signed.replay_token();
        assert_eq!(token, format!("\nsig:{}", c.signature));
        // Not a value any nonce header can carry.
        assert!(HeaderValue::from_str(&token).is_err());
    }

    #[test]
    fn a_body_the_signature_does_not_cover_is_refused() {
        let uri: Uri = "/faceidcard/check".parse().unwrap();
        let json = br#"{"name":"a"}"#;
        let mut headers = HeaderMap::new();
        let missing = |h: &HeaderMap, body: &[u8]| {
            check_body_is_signed(&uri, h, body)
                .unwrap_err()
                .gateway_message()
        };
        assert_eq!(missing(&headers, json), "Header `Content-Type` is Required");
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert_eq!(missing(&headers, json), "Header `Content-MD5` is Required");
        headers.insert(
            CONTENT_MD5,
            HeaderValue::from_str(&STANDARD.encode(Md5::digest(json))).unwrap(),
        );
        assert!(check_body_is_signed(&uri, &headers, json).is_ok());
        // A form is signed parameter by parameter: no MD5 needed.
        let mut form = HeaderMap::new();
        form.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=UTF-8"),
        );
        assert!(check_body_is_signed(&uri, &form, b"name=a&idCard=1").is_ok());
        // No body, nothing to cover.
        assert!(check_body_is_signed(&uri, &HeaderMap::new(), b"").is_ok());
    }

    #[test]
    fn a_parameter_sent_twice_is_refused() {
        let mut form = HeaderMap::new();
        form.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        for (uri, body) in [
            // The query shadows the form field in the string-to-sign.
            ("/faceidcard/check?name=a", &b"name=b&idCard=1"[..]),
            ("/v1/app/calls?limit=1&limit=1000", b""),
            ("/faceidcard/check", b"name=a&name=b"),
            ("/faceidcard/check?%6Eame=a", b"name=b"),
        ] {
            let err = check_body_is_signed(&uri.parse().unwrap(), &form, body).unwrap_err();
            assert!(
                matches!(&err, SignatureError::RepeatedParameter { key } if key == "name" || key == "limit"),
                "{uri} {err:?}"
            );
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
        // Distinct keys, and empty items, are fine.
        let ok = check_body_is_signed(&"/p?a=1&&b=2".parse().unwrap(), &form, b"c=3&");
        assert!(ok.is_ok());
    }

    #[test]
    fn the_echo_shows_only_gateway_headers() {
        let mut c = case("signed_headers_unsorted_with_custom");
        c.secret = "wrong".to_owned();
        let msg = expect_invalid_signature(verify_case(&c));
        assert!(!msg.contains("x-custom-b:bee"), "{msg}");
        assert!(msg.contains("x-custom-b:<hidden>#"), "{msg}");
        assert!(msg.contains("x-ca-key:"), "{msg}");
    }

    #[test]
    fn error_messages_are_ascii_with_the_rest_percent_encoded() {
        let value = header_text("9000×40 pixels, 100% 张三\r\n");
        assert_eq!(
            value.to_str().unwrap(),
            "9000%C3%9740 pixels, 100%25 %E5%BC%A0%E4%B8%89%0D%0A"
        );
        let decoded: String =
            url::form_urlencoded::parse(format!("x={}", value.to_str().unwrap()).as_bytes())
                .next()
                .unwrap()
                .1
                .into_owned();
        assert_eq!(decoded, "9000×40 pixels, 100% 张三\r\n");
    }

    #[test]
    fn an_unknown_signature_method_is_refused() {
        for bad in ["HmacMD5", "HmacSHA512", "", "sha256"] {
            let mut c = case("get_with_query");
            c.headers
                .insert(X_CA_SIGNATURE_METHOD, HeaderValue::from_str(bad).unwrap());
            let err = parse(&c.headers).unwrap_err();
            assert_eq!(
                err.gateway_message(),
                "Invalid Header `X-Ca-Signature-Method` must be HmacSHA256 or HmacSHA1",
                "{bad:?}"
            );
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
        // A vector that does not sign X-Ca-Signature-Method, so its spelling may change.
        let mut c = case("mixed_case_header_names");
        c.headers.insert(
            X_CA_SIGNATURE_METHOD,
            HeaderValue::from_static("hmacsha256"),
        );
        assert!(verify_case(&c).is_ok());
        c.headers.remove(X_CA_SIGNATURE_METHOD);
        assert_eq!(
            parse(&c.headers).unwrap().unwrap().method,
            SignatureMethod::HmacSha256
        );
    }

    #[test]
    fn key_and_signature_presence() {
        assert!(parse(&HeaderMap::new()).unwrap().is_none());
        let mut h = HeaderMap::new();
        h.insert(X_CA_KEY, HeaderValue::from_static("k"));
        let err = parse(&h).unwrap_err();
        assert!(matches!(err, SignatureError::EmptySignature));
        assert_eq!(err.gateway_message(), "Empty Signature");
        h.insert(X_CA_SIGNATURE, HeaderValue::from_static(""));
        assert!(matches!(
            parse(&h).unwrap_err(),
            SignatureError::EmptySignature
        ));
        let mut h = HeaderMap::new();
        h.insert(X_CA_SIGNATURE, HeaderValue::from_static("c2ln"));
        assert_eq!(
            parse(&h).unwrap_err().gateway_message(),
            "Header `X-Ca-Key` is Required"
        );
        h.insert(X_CA_KEY, HeaderValue::from_static("k"));
        let signed = parse(&h).unwrap().unwrap();
        assert_eq!(signed.app_key, "k");
        assert!(signed.signed_header_names.is_empty());
    }

    #[test]
    fn caller_side_errors_have_the_gateway_wording() {
        assert_eq!(
            SignatureError::InvalidAppKey.gateway_message(),
            "Invalid AppKey"
        );
        assert_eq!(SignatureError::NonceUsed.gateway_message(), "Nonce Used");
        assert_eq!(SignatureError::NonceUsed.status(), StatusCode::BAD_REQUEST);
        assert_eq!(SignatureError::Unauthorized.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn signed_header_names_are_bounded() {
        let names = |n: usize| {
            (0..n)
                .map(|i| format!("x-h{i}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut c = case("get_with_query");
        c.headers.insert(
            X_CA_SIGNATURE_HEADERS,
            HeaderValue::from_str(&names(MAX_SIGNED_HEADERS)).unwrap(),
        );
        let signed = parse(&c.headers).unwrap().unwrap();
        assert_eq!(signed.signed_header_names.len(), MAX_SIGNED_HEADERS);
        c.headers.insert(
            X_CA_SIGNATURE_HEADERS,
            HeaderValue::from_str(&names(MAX_SIGNED_HEADERS + 1)).unwrap(),
        );
        assert!(matches!(
            parse(&c.headers).unwrap_err(),
            SignatureError::InvalidHeader { .. }
        ));
        // Empty items do not count.
        c.headers.insert(
            X_CA_SIGNATURE_HEADERS,
            HeaderValue::from_str(&",".repeat(1000)).unwrap(),
        );
        assert!(parse(&c.headers)
            .unwrap()
            .unwrap()
            .signed_header_names
            .is_empty());
    }

    #[test]
    fn garbage_never_panics() {
        let bad = HeaderValue::from_bytes(&[0xff, 0x80, b'a']).unwrap();
        for name in [
            X_CA_KEY,
            X_CA_SIGNATURE,
            X_CA_SIGNATURE_METHOD,
            X_CA_SIGNATURE_HEADERS,
            X_CA_TIMESTAMP,
            X_CA_NONCE,
            "accept",
            CONTENT_MD5,
            "content-type",
            "date",
            "x-ca-stage",
        ] {
            let mut c = case("signed_headers_unsorted_with_custom");
            c.headers.insert(name, bad.clone());
            let err = parse(&c.headers).unwrap_err();
            let _ = (err.gateway_message(), err.header_value(), err.status());
        }
        let long = HeaderValue::from_str(&"n".repeat(MAX_NONCE_LEN + 1)).unwrap();
        for name in [X_CA_KEY, X_CA_NONCE] {
            let mut c = case("get_with_query");
            c.headers.insert(name, long.clone());
            assert!(parse(&c.headers).is_err(), "{name}");
        }

        // Names no header can have, decoded control characters, broken escapes, and a
        // body that is not UTF-8: a string-to-sign and a header value all the same.
        let mut c = case("empty_values");
        c.headers.insert(
            X_CA_SIGNATURE_HEADERS,
            HeaderValue::from_bytes("bad name,x:y,\u{e9}x,,x-ca-key".as_bytes()).unwrap(),
        );
        c.uri = "/p?a=%0D%0A%00%7F&%=%&%ZZ=%E5%BC&=empty-key&&"
            .parse()
            .unwrap();
        c.body = vec![0xff, b'=', 0xfe, b'&', b'%', b'2'];
        let signed = parse(&c.headers).unwrap().unwrap();
        let sts = string_to_sign(&c.method, &c.uri, &c.headers, &signed, &c.body);
        assert!(sts.contains("bad name:\n"), "{sts:?}");
        let err = verify(b"s", &c.method, &c.uri, &c.headers, &c.body, &signed).unwrap_err();
        let value = err.header_value();
        assert!(value.as_bytes().iter().all(|&b| b >= 0x20 && b != 0x7f));

        let long = SignatureError::InvalidSignature {
            server_string_to_sign: ServerStringToSign("张".repeat(MAX_MESSAGE_STRING_TO_SIGN)),
        };
        let msg = long.gateway_message();
        assert!(msg.len() < MAX_MESSAGE_STRING_TO_SIGN + 64 && msg.ends_with("...`"));
    }

    #[test]
    fn other_methods_and_uris() {
        let c = case("path_without_params");
        let signed = parse(&c.headers).unwrap().unwrap();
        for (m, u) in [
            (Method::from_bytes(b"patch").unwrap(), "/x"),
            (Method::DELETE, "http://example.com"),
            (Method::OPTIONS, "*"),
        ] {
            let sts = string_to_sign(&m, &u.parse().unwrap(), &c.headers, &signed, b"");
            assert!(sts.starts_with(&m.as_str().to_ascii_uppercase()));
        }
    }
}
