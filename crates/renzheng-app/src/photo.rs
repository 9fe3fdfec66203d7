//! The `image` field: base64 (with or without a `data:` URI prefix) → checked bytes.

use base64::alphabet;
use base64::engine::general_purpose::GeneralPurposeConfig;
use base64::engine::{DecodePaddingMode, GeneralPurpose};
use base64::Engine as _;
use renzheng_vision::{sniff_format, ImageError};

/// Standard alphabet, padding optional: clients differ on padding and nothing is gained
/// by refusing either form.
const STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// The URL-safe alphabet, same padding rule.
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why the photo bytes cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    /// The `image` field is not base64.
    #[error("image is not valid base64")]
    Base64,
    /// A `data:` URI that is not base64-encoded.
    #[error("a data: URI image must be base64-encoded (data:image/jpeg;base64,...)")]
    DataUri,
    /// Zero bytes.
    #[error("the photo is empty")]
    Empty,
    /// Over the photo limit.
    #[error("the photo is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Bytes received (at least; counting stops past the limit for fetched photos).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not any image format.
    #[error("not an image (unrecognised format)")]
    NotAnImage,
    /// A known format we do not take.
    #[error("unsupported image format {0}; send JPEG, PNG, WebP or BMP")]
    Unsupported(String),
    /// The engine could not decode it (corrupt, truncated, absurd dimensions…).
    #[error("{0}")]
    Decode(ImageError),
}

impl From<ImageError> for PhotoError {
    fn from(e: ImageError) -> Self {
        match e {
            ImageError::Empty => PhotoError::Empty,
            ImageError::NotAnImage => PhotoError::NotAnImage,
            ImageError::UnsupportedFormat(f) => PhotoError::Unsupported(f),
            ImageError::TooManyBytes { size, limit } => PhotoError::TooLarge { size, limit },
            other => PhotoError::Decode(other),
        }
    }
}

/// Decodes the `image` field and applies the cheap checks (size, format signature). Deep
/// corruption is found by the engine's decoder later.
pub fn decode_image_field(field: &str, max_bytes: usize) -> Result<Vec<u8>, PhotoError> {
    let mut payload = field.trim();
    if let Some(rest) = payload.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or(PhotoError::DataUri)?;
        if !meta.to_ascii_lowercase().ends_with(";base64") {
            return Err(PhotoError::DataUri);
        }
        payload = data;
    }
    // Form bodies turn an unescaped '+' into a space; line-wrapped base64 has newlines.
    let cleaned: String = payload
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\t'))
        .map(|c| if c == ' ' { '+' } else { c })
        .collect();
    if cleaned.is_empty() {
        return Err(PhotoError::Empty);
    }
    // Refuse before allocating when even the encoded length says it is too big.
    let approx = cleaned.len() / 4 * 3;
    if approx > max_bytes + 3 {
        return Err(PhotoError::TooLarge {
            size: approx,
            limit: max_bytes,
        });
    }
    let engine = if cleaned.contains(['-', '_']) {
        &URL_SAFE
    } else {
        &STANDARD
    };
    let bytes = engine
        .decode(cleaned.as_bytes())
        .map_err(|_| PhotoError::Base64)?;
    check_photo_bytes(&bytes, max_bytes)?;
    Ok(bytes)
}

/// Size and format-signature checks shared by inline and fetched photos: the cheap
/// refusals, before a photo queues for the engine.
pub fn check_photo_bytes(bytes: &[u8], max_bytes: usize) -> Result<(), PhotoError> {
    if bytes.is_empty() {
        return Err(PhotoError::Empty);
    }
    if bytes.len() > max_bytes {
        return Err(PhotoError::TooLarge {
            size: bytes.len(),
            limit: max_bytes,
        });
    }
    // The decoder's own format rule, so that nothing accepted here is refused later for
    // its format (and the other way round).
    sniff_format(bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;

    const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn accepts_plain_and_data_uri_base64() {
        let b = B64.encode(PNG_SIGNATURE);
        assert_eq!(decode_image_field(&b, 1000).unwrap(), PNG_SIGNATURE);
        let uri = format!("data:image/png;base64,{b}");
        assert_eq!(decode_image_field(&uri, 1000).unwrap(), PNG_SIGNATURE);
        // A form body that lost its '+' and a line-wrapped payload.
        let spaced = b.replace('+', " ");
        assert_eq!(decode_image_field(&spaced, 1000).unwrap(), PNG_SIGNATURE);
    }

    #[test]
    fn refuses_bad_inputs_specifically() {
        assert!(matches!(
            decode_image_field("***", 1000),
            Err(PhotoError::Base64)
        ));
        assert!(matches!(
            decode_image_field("data:image/png,abc", 1000),
            Err(PhotoError::DataUri)
        ));
        assert!(matches!(
            decode_image_field("", 1000),
            Err(PhotoError::Empty)
        ));
        let text = B64.encode(b"hello, this is not an image");
        assert!(matches!(
            decode_image_field(&text, 1000),
            Err(PhotoError::NotAnImage)
        ));
        let big = B64.encode(vec![0u8; 3000]);
        assert!(matches!(
            decode_image_field(&big, 1000),
            Err(PhotoError::TooLarge { .. })
        ));
        let gif = B64.encode(b"GIF89a\x01\x00\x01\x00");
        assert!(matches!(
            decode_image_field(&gif, 1000),
            Err(PhotoError::Unsupported(_))
        ));
    }
}
