//! Any bytes through the photo decoder: a typed error or an image within the limits,
//! never a panic, an abort or an allocation past the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use renzheng_vision::{decode_rgb_as_stored, sniff_format, DecodeLimits};

fuzz_target!(|data: &[u8]| {
    // Small limits keep each run fast; the code paths are the same as the defaults'.
    let limits = DecodeLimits {
        max_bytes: 1 << 20,
        max_pixels: 1 << 20,
        max_side: 2048,
        max_jpeg_scans: 64,
    };
    let sniffed = sniff_format(data);
    match decode_rgb_as_stored(data, &limits) {
        Ok(img) => {
            assert!(sniffed.is_ok());
            assert!(u64::from(img.width()) * u64::from(img.height()) <= limits.max_pixels);
        }
        Err(e) => {
            // What the sniffer refuses, the decoder refuses the same way.
            if let Err(s) = sniffed {
                assert_eq!(e, s);
            }
        }
    }
});
