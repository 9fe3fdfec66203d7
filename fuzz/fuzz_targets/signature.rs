//! The API gateway signature: arbitrary headers, URI and body through `parse`,
//! `check_freshness_and_md5`, `string_to_sign` and `verify` must never panic.

#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use libfuzzer_sys::fuzz_target;
use renzheng_server::signature;

fuzz_target!(|data: &[u8]| {
    // Layout: up to 8 "name\0value\n" header lines, then "\x01", the URI, "\x01", the body.
    let mut parts = data.splitn(3, |b| *b == 1);
    let head = parts.next().unwrap_or_default();
    let uri = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for line in head.split(|b| *b == b'\n').take(8) {
        let mut kv = line.splitn(2, |b| *b == 0);
        let (Some(k), Some(v)) = (kv.next(), kv.next()) else {
            continue;
        };
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k), HeaderValue::from_bytes(v)) {
            headers.append(k, v);
        }
    }
    let uri: Uri = std::str::from_utf8(uri)
        .ok()
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| Uri::from_static("/faceidcard/check"));
    if let Ok(Some(signed)) = signature::parse(&headers) {
        let _ = signature::check_freshness_and_md5(&signed, &headers, body, 1_700_000_000_000);
        let _ = signed.require(true, true);
        let _ = signed.replay_token();
        if let Err(e) = signature::check_body_is_signed(&uri, &headers, body) {
            let _ = e.header_value();
        }
        let _ = signature::string_to_sign(&Method::POST, &uri, &headers, &signed, body);
        if let Err(e) = signature::verify(b"secret", &Method::POST, &uri, &headers, body, &signed) {
            let _ = e.header_value();
        }
    }
});
