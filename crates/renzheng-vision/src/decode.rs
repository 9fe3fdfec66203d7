//! Bytes → RGB pixels, safely.
//!
//! Invariants: nothing is allocated for pixels before the header's dimensions have been
//! checked against [`DecodeLimits`]; the decoder itself also runs under an allocation cap, so
//! a lying header cannot make it allocate more; every failure is a typed [`ImageError`].
//! EXIF orientation is applied so that a phone photo taken sideways is upright before
//! detection.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};
use serde::{Deserialize, Serialize};

use crate::error::ImageError;

/// Bounds on what a photo may cost to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeLimits {
    /// Largest encoded size accepted, in bytes.
    pub max_bytes: usize,
    /// Largest pixel count (width × height) accepted.
    pub max_pixels: u64,
    /// Largest width or height accepted.
    pub max_side: u32,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        // 40 MP covers any phone camera; 3 bytes a pixel keeps the worst case at ~120 MB.
        Self {
            max_bytes: 16 * 1024 * 1024,
            max_pixels: 40_000_000,
            max_side: 12_000,
        }
    }
}

/// A photo format the engine decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhotoFormat {
    /// JPEG (JFIF, EXIF).
    Jpeg,
    /// PNG.
    Png,
    /// WebP (lossy or lossless).
    WebP,
    /// Windows bitmap.
    Bmp,
}

impl PhotoFormat {
    /// Lower-case name: `jpeg`, `png`, `webp`, `bmp`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PhotoFormat::Jpeg => "jpeg",
            PhotoFormat::Png => "png",
            PhotoFormat::WebP => "webp",
            PhotoFormat::Bmp => "bmp",
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            PhotoFormat::Jpeg => ImageFormat::Jpeg,
            PhotoFormat::Png => ImageFormat::Png,
            PhotoFormat::WebP => ImageFormat::WebP,
            PhotoFormat::Bmp => ImageFormat::Bmp,
        }
    }
}

/// Which accepted format `bytes` are in, from their signature alone: no decoding, no
/// allocation (except the format name of an unsupported one).
///
/// This is the decoder's own first step, so a photo that passes here is refused later
/// only for what decoding finds (size limits, corruption), never for its format; callers
/// that want to refuse non-images cheaply (before queueing for the engine) use this and
/// get the same [`ImageError`] the decoder would return: [`ImageError::Empty`],
/// [`ImageError::NotAnImage`] or [`ImageError::UnsupportedFormat`].
pub fn sniff_format(bytes: &[u8]) -> Result<PhotoFormat, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    match image::guess_format(bytes).map_err(|_| ImageError::NotAnImage)? {
        ImageFormat::Jpeg => Ok(PhotoFormat::Jpeg),
        ImageFormat::Png => Ok(PhotoFormat::Png),
        ImageFormat::WebP => Ok(PhotoFormat::WebP),
        ImageFormat::Bmp => Ok(PhotoFormat::Bmp),
        other => Err(ImageError::UnsupportedFormat(
            other
                .extensions_str()
                .first()
                .copied()
                .unwrap_or("unknown")
                .to_string(),
        )),
    }
}

/// What the decoder found, besides the pixels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecodedInfo {
    /// The container format, lower-case (`jpeg`, `png`, `webp`, `bmp`).
    pub format: &'static str,
    /// Width and height as stored, before orientation.
    pub stored_size: (u32, u32),
    /// Whether an EXIF orientation other than "normal" was applied.
    pub rotated: bool,
}

/// Decodes `bytes` into an upright 8-bit RGB image.
pub fn decode_rgb(
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<(RgbImage, DecodedInfo), ImageError> {
    decode(bytes, limits, true)
}

/// Like [`decode_rgb`] but ignores EXIF orientation, as `face_recognition.load_image_file`
/// does; for parity with dlib's tools only.
pub fn decode_rgb_as_stored(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, ImageError> {
    decode(bytes, limits, false).map(|(img, _)| img)
}

fn decode(
    bytes: &[u8],
    limits: &DecodeLimits,
    orient: bool,
) -> Result<(RgbImage, DecodedInfo), ImageError> {
    // Empty input is refused by `sniff_format`, after the byte limit (which 0 bytes pass).
    if bytes.len() > limits.max_bytes {
        return Err(ImageError::TooManyBytes {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let photo_format = sniff_format(bytes)?;
    let format = photo_format.image_format();
    let format_name = photo_format.as_str();

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_side);
    decoder_limits.max_image_height = Some(limits.max_side);
    // 16-bit RGBA is the widest layout we accept: 8 bytes a pixel, plus slack for the
    // conversion buffer.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8) + (64 << 20));
    reader.limits(decoder_limits);

    let mut decoder = reader
        .into_decoder()
        .map_err(|e| map_image_error(e, limits))?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(ImageError::ZeroSize { width, height });
    }
    if width > limits.max_side
        || height > limits.max_side
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(ImageError::TooLarge {
            width,
            height,
            max_pixels: limits.max_pixels,
            max_side: limits.max_side,
        });
    }
    // A broken EXIF block must not cost the photo: treat it as "no rotation".
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = match format {
        // JPEG goes through libjpeg-turbo so that pixels are bit-identical to what dlib's
        // own tools (PIL) see; the Rust decoder differs by up to 4 levels on 12 % of pixels,
        // enough to move landmarks a pixel. CMYK/YCCK stays with the Rust decoder.
        ImageFormat::Jpeg => match decode_jpeg_turbo(bytes)? {
            Some(rgb) => DynamicImage::ImageRgb8(rgb),
            None => DynamicImage::from_decoder(decoder).map_err(|e| map_image_error(e, limits))?,
        },
        _ => DynamicImage::from_decoder(decoder).map_err(|e| map_image_error(e, limits))?,
    };
    let rotated = orient && orientation != image::metadata::Orientation::NoTransforms;
    if rotated {
        img.apply_orientation(orientation);
    }
    Ok((
        to_rgb(img),
        DecodedInfo {
            format: format_name,
            stored_size: (width, height),
            rotated,
        },
    ))
}

/// Decodes a JPEG with libjpeg-turbo; `Ok(None)` for colour spaces it should not convert
/// (CMYK, YCCK). The caller has already checked the dimensions against the limits.
fn decode_jpeg_turbo(bytes: &[u8]) -> Result<Option<RgbImage>, ImageError> {
    // libjpeg fills a cut-off scan with grey and only warns; a photo missing its end is
    // refused instead. FF D9 cannot occur inside entropy-coded data (FF is stuffed).
    if !bytes.windows(2).any(|w| w == [0xFF, 0xD9]) {
        return Err(ImageError::Corrupt(
            "truncated JPEG (no end-of-image marker)".into(),
        ));
    }
    // libjpeg reports fatal errors by unwinding (without the panic hook); contain them here.
    let result = std::panic::catch_unwind(|| -> std::io::Result<Option<RgbImage>> {
        let d = mozjpeg::Decompress::new_mem(bytes)?;
        if matches!(
            d.color_space(),
            mozjpeg::ColorSpace::JCS_CMYK | mozjpeg::ColorSpace::JCS_YCCK
        ) {
            return Ok(None);
        }
        let mut started = d.rgb()?;
        let (w, h) = (started.width() as u32, started.height() as u32);
        let pixels: Vec<u8> = started.read_scanlines::<u8>()?;
        started.finish()?;
        Ok(RgbImage::from_raw(w, h, pixels))
    });
    match result {
        Ok(Ok(Some(img))) => Ok(Some(img)),
        Ok(Ok(None)) => Ok(None),
        Ok(Err(e)) => Err(ImageError::Corrupt(e.to_string())),
        Err(panic) => Err(ImageError::Corrupt(
            panic
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "undecodable JPEG".into()),
        )),
    }
}

/// Flattens any colour layout to RGB8. Transparent pixels are composited over white, the
/// colour a cut-out portrait would be shown on.
fn to_rgb(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = RgbImage::new(w, h);
    for (dst, src) in out.pixels_mut().zip(rgba.pixels()) {
        let a = u32::from(src[3]);
        for c in 0..3 {
            dst[c] = ((u32::from(src[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    out
}

fn map_image_error(e: image::ImageError, limits: &DecodeLimits) -> ImageError {
    match e {
        image::ImageError::Limits(_) => ImageError::TooLarge {
            width: 0,
            height: 0,
            max_pixels: limits.max_pixels,
            max_side: limits.max_side,
        },
        image::ImageError::Unsupported(u) => ImageError::UnsupportedFormat(u.to_string()),
        image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageError::Corrupt("unexpected end of file".into())
        }
        other => ImageError::Corrupt(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_bytes(img: &DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn sniffing_names_the_four_formats_and_refuses_the_rest() {
        assert_eq!(sniff_format(&[]), Err(ImageError::Empty));
        assert_eq!(sniff_format(b"hello"), Err(ImageError::NotAnImage));
        assert_eq!(sniff_format(b"\xFF\xD8\xFF\xE0"), Ok(PhotoFormat::Jpeg));
        assert_eq!(
            sniff_format(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Ok(PhotoFormat::Png)
        );
        assert_eq!(sniff_format(b"RIFF\0\0\0\0WEBPVP8 "), Ok(PhotoFormat::WebP));
        assert_eq!(sniff_format(b"BM\0\0\0\0"), Ok(PhotoFormat::Bmp));
        assert_eq!(
            sniff_format(b"GIF89a\x01\x00\x01\x00"),
            Err(ImageError::UnsupportedFormat("gif".into()))
        );
        assert_eq!(
            sniff_format(b"II*\0\x08\0\0\0"),
            Err(ImageError::UnsupportedFormat("tiff".into()))
        );
    }

    #[test]
    fn the_decoder_and_the_sniffer_agree() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(3, 2, image::Rgb([9, 99, 199])));
        for (format, expected) in [
            (ImageFormat::Png, PhotoFormat::Png),
            (ImageFormat::Jpeg, PhotoFormat::Jpeg),
            (ImageFormat::WebP, PhotoFormat::WebP),
            (ImageFormat::Bmp, PhotoFormat::Bmp),
        ] {
            let mut bytes = Vec::new();
            img.write_to(&mut Cursor::new(&mut bytes), format).unwrap();
            assert_eq!(sniff_format(&bytes), Ok(expected));
            let (_, info) = decode_rgb(&bytes, &DecodeLimits::default()).unwrap();
            assert_eq!(info.format, expected.as_str());
        }
        // What the sniffer refuses the decoder refuses the same way.
        for bad in [&b""[..], b"not an image", b"GIF89a\x01\x00\x01\x00"] {
            assert_eq!(
                decode_rgb(bad, &DecodeLimits::default()).unwrap_err(),
                sniff_format(bad).unwrap_err()
            );
        }
    }

    #[test]
    fn rejects_empty_and_garbage() {
        let l = DecodeLimits::default();
        assert_eq!(decode_rgb(&[], &l).unwrap_err(), ImageError::Empty);
        assert_eq!(
            decode_rgb(b"hello, not an image", &l).unwrap_err(),
            ImageError::NotAnImage
        );
    }

    #[test]
    fn rejects_unsupported_formats() {
        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
        assert!(matches!(
            decode_rgb(gif, &DecodeLimits::default()).unwrap_err(),
            ImageError::UnsupportedFormat(_)
        ));
    }

    #[test]
    fn truncated_png_is_corrupt() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 64, image::Rgb([10, 200, 30])));
        let bytes = png_bytes(&img);
        let err = decode_rgb(&bytes[..bytes.len() / 2], &DecodeLimits::default()).unwrap_err();
        assert!(matches!(err, ImageError::Corrupt(_)), "{err:?}");
    }

    #[test]
    fn header_declaring_huge_size_is_refused_before_allocation() {
        // A valid PNG header claiming 100000 × 100000 pixels with almost no data.
        let img = DynamicImage::ImageLuma8(image::GrayImage::new(1, 1));
        let mut bytes = png_bytes(&img);
        // IHDR width/height live at bytes 16..24; patch them (the CRC will be wrong, which
        // a decoder may report first; either answer is a clean refusal).
        bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let err = decode_rgb(&bytes, &DecodeLimits::default()).unwrap_err();
        assert!(
            matches!(err, ImageError::TooLarge { .. } | ImageError::Corrupt(_)),
            "{err:?}"
        );
    }

    #[test]
    fn byte_limit_is_enforced() {
        let limits = DecodeLimits {
            max_bytes: 10,
            ..DecodeLimits::default()
        };
        assert!(matches!(
            decode_rgb(&[0u8; 11], &limits).unwrap_err(),
            ImageError::TooManyBytes {
                size: 11,
                limit: 10
            }
        ));
    }

    #[test]
    fn pixel_limit_is_enforced() {
        let img = DynamicImage::ImageRgb8(RgbImage::new(200, 100));
        let limits = DecodeLimits {
            max_pixels: 10_000,
            ..DecodeLimits::default()
        };
        assert!(matches!(
            decode_rgb(&png_bytes(&img), &limits).unwrap_err(),
            ImageError::TooLarge {
                width: 200,
                height: 100,
                ..
            }
        ));
    }

    #[test]
    fn grey_sixteen_bit_and_rgba_become_rgb() {
        let l = DecodeLimits::default();
        let grey16 = DynamicImage::ImageLuma16(image::ImageBuffer::from_pixel(
            4,
            3,
            image::Luma([65535u16]),
        ));
        let (rgb, info) = decode_rgb(&png_bytes(&grey16), &l).unwrap();
        assert_eq!((rgb.width(), rgb.height(), info.format), (4, 3, "png"));
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);

        let rgba = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            2,
            2,
            image::Rgba([0, 0, 0, 0]),
        ));
        let (rgb, _) = decode_rgb(&png_bytes(&rgba), &l).unwrap();
        assert_eq!(
            rgb.get_pixel(1, 1).0,
            [255, 255, 255],
            "transparent → white"
        );
    }
}
