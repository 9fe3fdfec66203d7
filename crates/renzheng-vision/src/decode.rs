//! Bytes → RGB pixels, safely.
//!
//! Invariants: nothing is allocated for pixels before the header's dimensions have been
//! checked against [`DecodeLimits`]; the decoder itself also runs under an allocation cap, so
//! a lying header cannot make it allocate more; every failure is a typed [`ImageError`].
//! The CPU a photo may cost is bounded too: pixels by [`DecodeLimits::max_pixels`], and the
//! passes over them by [`DecodeLimits::max_jpeg_scans`] (a progressive JPEG is decoded in
//! one pass a scan). PNGs are decoded straight to 8 bits a channel, so a 16-bit photo never
//! holds a 16-bit buffer.
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
    /// Most scans a JPEG may have. Baseline JPEGs have 1 (3 when not interleaved),
    /// progressive encoders write about 10 (libjpeg's default script) to 20.
    pub max_jpeg_scans: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        // Detection works at ≤ 800 px, and a photo of at most 1 MB is at most a 12-16 MP
        // camera photo: 2^24 pixels (4096 × 4096, or a 16 MP 4:3 photo) is room enough. At
        // 3 bytes a pixel the RGB image then costs at most 48 MB, and the widest decoder
        // buffer (8-bit RGBA) 64 MB.
        Self {
            max_bytes: 16 * 1024 * 1024,
            max_pixels: 1 << 24,
            max_side: 8192,
            max_jpeg_scans: 64,
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
    if photo_format == PhotoFormat::Jpeg {
        let scans = jpeg_scan_count(bytes, limits.max_jpeg_scans.saturating_add(1));
        if scans > limits.max_jpeg_scans {
            return Err(ImageError::TooManyScans {
                scans,
                limit: limits.max_jpeg_scans,
            });
        }
    }

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    // No side limits here: the header's dimensions are checked below, where the error can
    // name them.
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(max_alloc(limits));
    reader.limits(decoder_limits);

    let mut decoder = reader.into_decoder().map_err(map_image_error)?;
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
            None => DynamicImage::from_decoder(decoder).map_err(map_image_error)?,
        },
        // 16-bit PNGs are stripped to 8 bits while decoding; the image crate would hold
        // the whole 16-bit image first (6-8 bytes a pixel).
        ImageFormat::Png => decode_png_8bit(bytes, limits)?,
        _ => DynamicImage::from_decoder(decoder).map_err(map_image_error)?,
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

/// The decoders' allocation cap: the widest 8-bit layout (RGBA, 4 bytes a pixel) of the
/// largest accepted image, plus slack for row buffers and metadata. Formats the image crate
/// decodes at 16 bits (none of the accepted ones but PNG, which is decoded at 8) would
/// need twice that and are refused as over the memory limit.
fn max_alloc(limits: &DecodeLimits) -> u64 {
    limits.max_pixels.saturating_mul(4) + (16 << 20)
}

/// Counts the start-of-scan markers of a JPEG by walking its marker segments, stopping at
/// `stop`. Entropy-coded data is skipped the way a decoder does (`FF 00` is a stuffed byte,
/// `FF D0`-`FF D7` are restart markers), so bytes inside a scan or a segment never count.
/// A malformed stream returns what was counted so far: the decoder reports the damage.
fn jpeg_scan_count(bytes: &[u8], stop: usize) -> usize {
    const SOS: u8 = 0xDA;
    const EOI: u8 = 0xD9;
    let mut scans = 0;
    let mut i = 2; // after SOI
    while scans < stop {
        // A marker: one or more FF fill bytes, then its code.
        if bytes.get(i) != Some(&0xFF) {
            return scans;
        }
        while bytes.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = bytes.get(i) else {
            return scans;
        };
        i += 1;
        match marker {
            EOI => return scans,
            // Standalone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = bytes
            .get(i..i + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        else {
            return scans;
        };
        i += len;
        if marker == SOS {
            scans += 1;
            // Skip the entropy-coded data up to the next real marker.
            while i + 1 < bytes.len() {
                if bytes[i] == 0xFF && !matches!(bytes[i + 1], 0x00 | 0xD0..=0xD7 | 0xFF) {
                    break;
                }
                i += 1;
            }
        }
    }
    scans
}

/// Decodes a PNG to 8 bits a channel (palette and low bit depths expanded, 16-bit samples
/// stripped row by row), under the decoder's allocation cap. The caller has already checked
/// the dimensions against the limits.
fn decode_png_8bit(bytes: &[u8], limits: &DecodeLimits) -> Result<DynamicImage, ImageError> {
    let cap = usize::try_from(max_alloc(limits)).unwrap_or(usize::MAX);
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: cap });
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(png_error)?;
    let size = reader
        .output_buffer_size()
        .filter(|&n| n <= cap)
        .ok_or(ImageError::OverMemoryLimit)?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf).map_err(png_error)?;
    buf.truncate(frame.buffer_size());
    let (w, h) = (frame.width, frame.height);
    let corrupt = || ImageError::Corrupt("PNG frame does not match its header".into());
    let img = match frame.color_type {
        png::ColorType::Grayscale => {
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, buf).ok_or_else(corrupt)?)
        }
        png::ColorType::GrayscaleAlpha => DynamicImage::ImageLumaA8(
            image::GrayAlphaImage::from_raw(w, h, buf).ok_or_else(corrupt)?,
        ),
        png::ColorType::Rgb => {
            DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, buf).ok_or_else(corrupt)?)
        }
        png::ColorType::Rgba => {
            DynamicImage::ImageRgba8(image::RgbaImage::from_raw(w, h, buf).ok_or_else(corrupt)?)
        }
        // EXPAND turns palettes into RGB(A).
        png::ColorType::Indexed => return Err(corrupt()),
    };
    Ok(img)
}

fn png_error(e: png::DecodingError) -> ImageError {
    match e {
        png::DecodingError::LimitsExceeded => ImageError::OverMemoryLimit,
        png::DecodingError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageError::Corrupt("unexpected end of file".into())
        }
        other => ImageError::Corrupt(other.to_string()),
    }
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

fn map_image_error(e: image::ImageError) -> ImageError {
    match e {
        // The declared dimensions are checked right after the header (with the real numbers
        // in the error); a limit the decoder meets later is its allocation cap.
        image::ImageError::Limits(_) => ImageError::OverMemoryLimit,
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

    fn jpeg(width: usize, height: usize, progressive: bool) -> Vec<u8> {
        let pixels: Vec<u8> = (0..width * height * 3)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        if !progressive {
            // The image crate writes baseline JPEGs (mozjpeg's defaults are progressive).
            let img = RgbImage::from_raw(width as u32, height as u32, pixels).unwrap();
            let mut out = Vec::new();
            DynamicImage::ImageRgb8(img)
                .write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
                .unwrap();
            return out;
        }
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        c.set_size(width, height);
        c.set_progressive_mode();
        let mut started = c.start_compress(Vec::new()).unwrap();
        started.write_scanlines(&pixels).unwrap();
        started.finish().unwrap()
    }

    /// The byte range of each scan (SOS segment and its entropy-coded data).
    fn scans(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
        let starts: Vec<usize> = (0..bytes.len() - 1)
            .filter(|&i| bytes[i] == 0xFF && bytes[i + 1] == 0xDA)
            .collect();
        let eoi = bytes.len() - 2;
        let mut out = Vec::new();
        for (k, &start) in starts.iter().enumerate() {
            // Segments between scans (DHT) end a scan's data as well.
            let next = starts.get(k + 1).copied().unwrap_or(eoi);
            let end = (start + 2..next)
                .find(|&i| bytes[i] == 0xFF && !matches!(bytes[i + 1], 0x00 | 0xD0..=0xD7))
                .unwrap_or(next);
            out.push(start..end);
        }
        out
    }

    #[test]
    fn scans_are_counted_by_walking_the_markers() {
        let baseline = jpeg(64, 48, false);
        assert_eq!(jpeg_scan_count(&baseline, usize::MAX), 1);
        let progressive = jpeg(64, 48, true);
        let n = jpeg_scan_count(&progressive, usize::MAX);
        assert!(
            (2..=DecodeLimits::default().max_jpeg_scans).contains(&n),
            "{n}"
        );
        assert_eq!(n, scans(&progressive).len());
        // Counting stops at `stop`.
        assert_eq!(jpeg_scan_count(&progressive, 2), 2);
        // Garbage and truncation end the walk without a panic.
        assert_eq!(jpeg_scan_count(b"\xFF\xD8", 10), 0);
        assert!(jpeg_scan_count(&progressive[..progressive.len() / 2], 100) <= n);
        for cut in 0..progressive.len().min(400) {
            let _ = jpeg_scan_count(&progressive[..cut], 100);
        }
    }

    #[test]
    fn a_progressive_jpeg_with_thousands_of_scans_is_refused_before_decoding() {
        // The attack: a progressive JPEG whose refinement scans repeat thousands of times.
        // libjpeg walks every block of the image for every scan; a 6000×6000 one costs
        // minutes of CPU. The repeated scan is a real one, so only the count refuses it.
        let progressive = jpeg(256, 256, true);
        let last = scans(&progressive).pop().unwrap();
        let mut bomb = progressive[..last.end].to_vec();
        for _ in 0..5_000 {
            bomb.extend_from_slice(&progressive[last.clone()]);
        }
        bomb.extend_from_slice(&[0xFF, 0xD9]);
        let started = std::time::Instant::now();
        let err = decode_rgb(&bomb, &DecodeLimits::default()).unwrap_err();
        assert_eq!(
            err,
            ImageError::TooManyScans {
                scans: DecodeLimits::default().max_jpeg_scans + 1,
                limit: DecodeLimits::default().max_jpeg_scans
            }
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // The same photo with its ordinary scans decodes.
        let (img, _) = decode_rgb(&progressive, &DecodeLimits::default()).unwrap();
        assert_eq!(img.dimensions(), (256, 256));
    }

    #[test]
    fn sixteen_bit_png_decodes_to_eight_bits_and_big_ones_are_refused_by_size() {
        let rgb16 = image::ImageBuffer::<image::Rgb<u16>, _>::from_fn(5, 4, |x, _| {
            image::Rgb([0x1234, 0xFFFF, if x == 0 { 0 } else { 0x80FF }])
        });
        let bytes = png_bytes(&DynamicImage::ImageRgb16(rgb16));
        let (rgb, info) = decode_rgb(&bytes, &DecodeLimits::default()).unwrap();
        assert_eq!((rgb.dimensions(), info.format), ((5, 4), "png"));
        assert_eq!(rgb.get_pixel(0, 0).0, [0x12, 0xFF, 0]);
        assert_eq!(rgb.get_pixel(1, 0).0, [0x12, 0xFF, 0x80]);
        // Refusals name the real size.
        let big = DynamicImage::ImageRgb16(image::ImageBuffer::new(300, 200));
        let limits = DecodeLimits {
            max_pixels: 50_000,
            ..DecodeLimits::default()
        };
        let err = decode_rgb(&png_bytes(&big), &limits).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::TooLarge {
                    width: 300,
                    height: 200,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("300×200"), "{err}");
    }

    #[test]
    fn palette_and_grey_alpha_pngs_decode() {
        let la = DynamicImage::ImageLumaA8(image::ImageBuffer::from_pixel(
            3,
            3,
            image::LumaA([100u8, 255]),
        ));
        let (rgb, _) = decode_rgb(&png_bytes(&la), &DecodeLimits::default()).unwrap();
        assert_eq!(rgb.get_pixel(2, 2).0, [100, 100, 100]);
    }
}
