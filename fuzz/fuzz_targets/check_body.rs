//! Any bytes as a check body (JSON and form), then the `image` field as base64: a clear
//! refusal or fields, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use renzheng_app::check::decode_image_field;
use renzheng_server::check::{fields_from_form, fields_from_json};

fuzz_target!(|data: &[u8]| {
    for fields in [fields_from_json(data), fields_from_form(data)] {
        let Ok(fields) = fields else { continue };
        if let Some(image) = &fields.image {
            if let Ok(bytes) = decode_image_field(image, 1 << 20) {
                assert!(bytes.len() <= 1 << 20);
            }
        }
    }
    // The base64 field on its own, whatever the bytes.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = decode_image_field(text, 1 << 16);
    }
});
