//! Degraded copies of a pair photo, made in memory for `renzheng eval` (issue 22): the
//! hard inputs the service meets in production but a clean pairs list lacks.
//!
//! - [`chip_portrait`]: the portrait as the resident ID card's chip stores it (102×126,
//!   heavily compressed), framed from the detected face;
//! - [`downscale`]: a small face, as in a group photo or a far-away shot sent over the web;
//! - [`watermark`]: the reticulate watermark (网纹) that copies of authority-source
//!   portraits carry, fine wavy lines over the whole picture.
//!
//! Every function is pure: the same photo, parameters and seed give the same bytes, so an
//! evaluation run can be repeated exactly. The outputs are encoded JPEG bytes, because the
//! compression is part of the degradation: the engine must decode what a caller would send.
//! [`parse_spec`] reads the command-line form of a degradation and [`apply`] runs one.

use std::f32::consts::TAU;
use std::fmt;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::{DynamicImage, Rgb, RgbImage};

/// Width of the chip portrait, in pixels (the resident ID card's chip format).
pub const CHIP_WIDTH: u32 = 102;
/// Height of the chip portrait, in pixels.
pub const CHIP_HEIGHT: u32 = 126;
/// JPEG quality of the chip portrait: the chip holds a few kilobytes, so its portrait is
/// compressed hard.
pub const CHIP_QUALITY: u8 = 70;
/// JPEG quality of `scale:FACTOR` when the spec names none.
pub const DEFAULT_SCALE_QUALITY: u8 = 75;
/// Smallest side a downscaled copy keeps: below this there is no face left to find, and
/// the measurement would be of the detector's input limit, not of small faces.
pub const MIN_SIDE: u32 = 16;
/// JPEG quality of a watermarked copy (those copies circulate as ordinary JPEGs).
pub const WATERMARK_QUALITY: u8 = 85;

/// Crop width as a multiple of the face width: a head-and-shoulders ID framing.
const CHIP_CROP_PER_FACE: f32 = 2.0;
/// Where the face centre sits in the crop, as a fraction of its height from the top: ID
/// photos leave more room below the face (neck, shoulders) than above it.
const CHIP_FACE_CENTRE: f32 = 0.45;
/// Fill where the chip framing reaches past the photo: ID photos are taken against a plain
/// light background, so a light fill reads as background, not as an edge or an object.
const CHIP_BACKGROUND: Rgb<u8> = Rgb([236, 236, 234]);
/// JPEG stores each side in 16 bits.
const JPEG_MAX_SIDE: u32 = 65_535;

/// Colour of the watermark lines: dark grey, as printed over authority-source copies.
const INK: [f32; 3] = [60.0, 60.0, 60.0];
/// Width of a watermark line, in pixels.
const LINE_WIDTH: f32 = 1.0;
/// Direction of the first family of lines (degrees from the x axis, y pointing down); the
/// mesh adds a second family mirrored to it, so the two cross at about 60°.
const FAMILY_ANGLE_DEG: f32 = 30.0;

/// A detected face, in pixels of the photo it was found in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
}

/// Which reticulate watermark to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watermark {
    /// One family of parallel wavy lines.
    Waves,
    /// Two crossing families of wavy lines: a fine net.
    Mesh,
}

/// One degradation, as named on the command line (see [`parse_spec`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Degradation {
    /// The ID-card chip portrait ([`chip_portrait`]); needs the photo's face box.
    Chip,
    /// A smaller copy ([`downscale`]).
    Scale {
        /// Size factor, in (0, 1].
        factor: f32,
        /// JPEG quality, 1 to 100.
        quality: u8,
    },
    /// A reticulate watermark ([`watermark`]).
    Watermark(Watermark),
    /// One degradation after another (`chip+watermark:mesh`: a chip portrait carrying a
    /// watermark). A chip is framed on the original photo's face, so it comes first.
    Chain(Vec<Degradation>),
}

/// The spec form [`parse_spec`] reads back, so an evaluation report can name the
/// condition exactly as it was asked for.
impl fmt::Display for Degradation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Degradation::Chip => f.write_str("chip"),
            Degradation::Scale { factor, quality } => write!(f, "scale:{factor}:{quality}"),
            Degradation::Watermark(Watermark::Waves) => f.write_str("watermark:waves"),
            Degradation::Watermark(Watermark::Mesh) => f.write_str("watermark:mesh"),
            Degradation::Chain(steps) => {
                for (i, step) in steps.iter().enumerate() {
                    if i > 0 {
                        f.write_str("+")?;
                    }
                    write!(f, "{step}")?;
                }
                Ok(())
            }
        }
    }
}

const SPEC_FORMS: &str =
    "chip, scale:FACTOR, scale:FACTOR:QUALITY, watermark:waves or watermark:mesh, or several joined by + (chip+watermark:mesh)";

/// Reads a degradation from its command-line form: `chip`, `scale:0.3` (JPEG quality
/// [`DEFAULT_SCALE_QUALITY`]), `scale:0.3:60`, `watermark:waves` or `watermark:mesh`.
/// The factor must be in (0, 1] and the quality in 1..=100; anything else is an error
/// that says what was expected.
pub fn parse_spec(s: &str) -> Result<Degradation, String> {
    let spec = s.trim();
    if spec.contains('+') {
        let steps = spec
            .split('+')
            .map(parse_spec)
            .collect::<Result<Vec<_>, _>>()?;
        if steps.iter().skip(1).any(|d| *d == Degradation::Chip) {
            return Err(format!(
                "`{spec}`: `chip` can only come first (it is framed on the original photo's face)"
            ));
        }
        return Ok(Degradation::Chain(steps));
    }
    let mut parts = spec.split(':');
    let kind = parts.next().unwrap_or_default();
    let params: Vec<&str> = parts.collect();
    match (kind, params.as_slice()) {
        ("chip", []) => Ok(Degradation::Chip),
        ("chip", _) => Err(format!("`{spec}`: `chip` takes no parameters")),
        ("scale", [factor]) => Ok(Degradation::Scale {
            factor: parse_factor(factor)?,
            quality: DEFAULT_SCALE_QUALITY,
        }),
        ("scale", [factor, quality]) => Ok(Degradation::Scale {
            factor: parse_factor(factor)?,
            quality: parse_quality(quality)?,
        }),
        ("scale", _) => Err(format!(
            "`{spec}`: expected scale:FACTOR or scale:FACTOR:QUALITY, e.g. scale:0.3 or scale:0.3:60"
        )),
        ("watermark", ["waves"]) => Ok(Degradation::Watermark(Watermark::Waves)),
        ("watermark", ["mesh"]) => Ok(Degradation::Watermark(Watermark::Mesh)),
        ("watermark", _) => Err(format!(
            "`{spec}`: expected watermark:waves or watermark:mesh"
        )),
        _ => Err(format!("unknown degradation `{spec}`: expected {SPEC_FORMS}")),
    }
}

fn parse_factor(s: &str) -> Result<f32, String> {
    let factor: f32 = s
        .trim()
        .parse()
        .map_err(|_| format!("scale factor `{s}` is not a number"))?;
    // Written so that NaN fails too (every comparison with NaN is false).
    if factor > 0.0 && factor <= 1.0 {
        Ok(factor)
    } else {
        Err(format!("scale factor `{s}` must be in (0, 1]"))
    }
}

fn parse_quality(s: &str) -> Result<u8, String> {
    match s.trim().parse::<u8>() {
        Ok(q) if (1..=100).contains(&q) => Ok(q),
        _ => Err(format!(
            "JPEG quality `{s}` must be a whole number from 1 to 100"
        )),
    }
}

/// Applies `d` to `photo` and returns the JPEG bytes. `face` is the photo's detected face,
/// which only [`Degradation::Chip`] uses; `seed` only matters for watermarks.
///
/// Unlike the functions it calls, it does not panic: an empty photo, or one too large for
/// JPEG, is an error.
pub fn apply(
    d: &Degradation,
    photo: &DynamicImage,
    face: Option<FaceBox>,
    seed: u64,
) -> Result<Vec<u8>, String> {
    let size = (photo.width(), photo.height());
    if size.0 == 0 || size.1 == 0 {
        return Err("the photo is empty".into());
    }
    // The size checks first, so that the functions below cannot panic.
    match d {
        Degradation::Chip => {
            let face = face.ok_or("no face to frame a chip portrait around")?;
            Ok(chip_portrait(photo, face))
        }
        Degradation::Scale { factor, quality } => {
            encodable(scaled_size(size, *factor))?;
            Ok(downscale(photo, *factor, *quality))
        }
        Degradation::Watermark(family) => {
            encodable(size)?;
            Ok(watermark(photo, *family, seed))
        }
        Degradation::Chain(steps) => {
            let mut bytes: Option<Vec<u8>> = None;
            for step in steps {
                let out = match &bytes {
                    None => apply(step, photo, face, seed)?,
                    Some(previous) => {
                        let img = image::load_from_memory(previous)
                            .map_err(|e| format!("re-reading a degraded copy: {e}"))?;
                        apply(step, &img, None, seed)?
                    }
                };
                bytes = Some(out);
            }
            bytes.ok_or_else(|| "an empty chain of degradations".to_string())
        }
    }
}

/// The photo as an ID-card chip portrait: [`CHIP_WIDTH`]×[`CHIP_HEIGHT`] pixels, JPEG
/// quality [`CHIP_QUALITY`].
///
/// The framing follows the face box: a crop about twice the face's width, with the chip's
/// aspect ratio, the face centred horizontally and its centre at 45 % of the crop's height.
/// Where the crop reaches past the photo it is filled with a light grey-white, the plain
/// background of an ID photo. The crop is then resized (Catmull-Rom) to the chip size.
pub fn chip_portrait(photo: &DynamicImage, face: FaceBox) -> Vec<u8> {
    // Always 102×126, so the encoder has nothing to refuse.
    encode_jpeg(&chip_image(photo, face), CHIP_QUALITY)
}

/// A smaller copy of the photo: resized by `factor` (Triangle filter) and encoded as JPEG
/// at `jpeg_quality` (clamped to 1..=100), like a web photo recompressed.
///
/// `factor` is taken in (0, 1]: above 1 counts as 1, zero, negative or NaN as the smallest
/// size. The copy keeps the photo's aspect ratio and is never smaller than
/// [`MIN_SIDE`] pixels on its shorter side (nor larger than the photo).
///
/// # Panics
///
/// If the photo is empty or the copy is wider or taller than 65,535 pixels, which JPEG
/// cannot store; [`apply`] returns those as errors.
pub fn downscale(photo: &DynamicImage, factor: f32, jpeg_quality: u8) -> Vec<u8> {
    encode_jpeg(&downscaled_image(photo, factor), jpeg_quality)
}

/// The photo under a reticulate watermark (网纹), encoded as JPEG at quality
/// [`WATERMARK_QUALITY`].
///
/// The lines are sinusoids (period 14–18 px along the line, amplitude 2.5–3.5 px), 1 px
/// wide and anti-aliased, 4.5–5.5 px apart, in dark grey at 36–44 % opacity, over the
/// whole picture. [`Watermark::Waves`] draws one family at about +30°;
/// [`Watermark::Mesh`] adds a second at about −30°, giving a fine net. `seed` picks
/// phases, spacing, period, amplitude, opacity and a few degrees of angle within those
/// ranges, deterministically; the mesh's first family is the waves' for the same seed.
///
/// # Panics
///
/// If the photo is empty or wider or taller than 65,535 pixels, which JPEG cannot store;
/// [`apply`] returns those as errors.
pub fn watermark(photo: &DynamicImage, family: Watermark, seed: u64) -> Vec<u8> {
    encode_jpeg(&watermarked_image(photo, family, seed), WATERMARK_QUALITY)
}

/// Whether JPEG can store an image of `(width, height)`.
fn encodable((w, h): (u32, u32)) -> Result<(), String> {
    if w == 0 || h == 0 {
        Err("an empty image has nothing to encode".into())
    } else if w > JPEG_MAX_SIDE || h > JPEG_MAX_SIDE {
        Err(format!(
            "a {w}×{h} image is larger than JPEG allows ({JPEG_MAX_SIDE} px a side)"
        ))
    } else {
        Ok(())
    }
}

/// `img` as JPEG at `quality`.
///
/// # Panics
///
/// If JPEG cannot store an image of its size (see [`encodable`]).
fn encode_jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    if let Err(e) = encodable(img.dimensions()) {
        panic!("{e}");
    }
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
        .encode_image(img)
        // Writing into a Vec cannot fail, and the size was checked above.
        .unwrap_or_else(|e| panic!("JPEG encoding of an encodable image failed: {e}"));
    out
}

fn chip_image(photo: &DynamicImage, face: FaceBox) -> RgbImage {
    let rgb = photo.to_rgb8();
    let crop = chip_crop(&rgb, face);
    imageops::resize(&crop, CHIP_WIDTH, CHIP_HEIGHT, FilterType::CatmullRom)
}

/// The chip framing of `face`, padded with the background where it leaves the photo.
fn chip_crop(rgb: &RgbImage, face: FaceBox) -> RgbImage {
    let (iw, ih) = rgb.dimensions();
    let finite = |v: f32| if v.is_finite() { v } else { 0.0 };
    // A detected face is never wider than its photo; capping the width keeps a nonsense box
    // from asking for a huge canvas, and the floor keeps the crop at least a pixel.
    let photo_side = iw.max(ih).max(1) as f32;
    let face_w = finite(face.width).clamp(1.0, photo_side);
    let face_h = finite(face.height).clamp(0.0, photo_side);
    // Likewise a centre far off the photo gives the same all-background crop as one just
    // off it; clamping keeps the integer offsets small.
    let cx = (finite(face.x) + face_w / 2.0).clamp(-2.0 * photo_side, 3.0 * photo_side);
    let cy = (finite(face.y) + face_h / 2.0).clamp(-2.0 * photo_side, 3.0 * photo_side);

    let crop_w = (CHIP_CROP_PER_FACE * face_w).round().max(1.0);
    let crop_h = (crop_w * CHIP_HEIGHT as f32 / CHIP_WIDTH as f32)
        .round()
        .max(1.0);
    let left = (cx - crop_w / 2.0).round() as i64;
    let top = (cy - CHIP_FACE_CENTRE * crop_h).round() as i64;

    // Pad rather than shift the crop back inside the photo: shifting would move the face off
    // its place in the frame, and the framing is what the chip condition is about.
    let mut canvas = RgbImage::from_pixel(crop_w as u32, crop_h as u32, CHIP_BACKGROUND);
    imageops::replace(&mut canvas, rgb, -left, -top);
    canvas
}

/// Output size of [`downscale`] for a `(width, height)` photo.
fn scaled_size((w, h): (u32, u32), factor: f32) -> (u32, u32) {
    // Written so that NaN takes the smallest size.
    let factor = if factor > 0.0 { factor.min(1.0) } else { 0.0 };
    let short = w.min(h);
    // One factor for both sides: stretching the face to reach the minimum would measure
    // distortion, not smallness.
    let floor = if short == 0 {
        1.0
    } else {
        (MIN_SIDE as f32 / short as f32).min(1.0)
    };
    let factor = factor.max(floor);
    let side = |s: u32| ((s as f32 * factor).round() as u32).clamp(MIN_SIDE.min(s), s);
    (side(w), side(h))
}

fn downscaled_image(photo: &DynamicImage, factor: f32) -> RgbImage {
    let rgb = photo.to_rgb8();
    let (w, h) = scaled_size(rgb.dimensions(), factor);
    if (w, h) == rgb.dimensions() {
        rgb
    } else {
        imageops::resize(&rgb, w, h, FilterType::Triangle)
    }
}

/// splitmix64: a tiny, well-mixed generator, enough to vary a watermark deterministically
/// from a seed without pulling a random-number crate into the evaluation's output.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        // The top 24 bits: exactly representable in an f32, so the result stays below 1.
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }
}

/// One family of parallel wavy lines. Coordinates: `along` runs in the lines' direction,
/// `across` perpendicular to it; line `k` is `across = offset + k·spacing +
/// amplitude·sin(wavenumber·along + wave_phase)`. All lines share the wave's phase, so
/// they stay parallel and never touch.
struct LineFamily {
    cos: f32,
    sin: f32,
    spacing: f32,
    offset: f32,
    amplitude: f32,
    wavenumber: f32,
    wave_phase: f32,
    opacity: f32,
}

impl LineFamily {
    fn new(angle_deg: f32, opacity: f32, rng: &mut SplitMix64) -> Self {
        let angle = (angle_deg + rng.uniform(-4.0, 4.0)).to_radians();
        let spacing = rng.uniform(4.5, 5.5);
        LineFamily {
            cos: angle.cos(),
            sin: angle.sin(),
            spacing,
            offset: rng.uniform(0.0, spacing),
            amplitude: rng.uniform(2.5, 3.5),
            wavenumber: TAU / rng.uniform(14.0, 18.0),
            wave_phase: rng.uniform(0.0, TAU),
            opacity,
        }
    }

    /// How much of the pixel centred at `(x, y)` the nearest line covers, 0 to 1.
    fn coverage(&self, x: f32, y: f32) -> f32 {
        let along = x * self.cos + y * self.sin;
        let across = -x * self.sin + y * self.cos;
        let arg = self.wavenumber * along + self.wave_phase;
        let offset = across - self.offset - self.amplitude * arg.sin();
        let to_nearest = offset - self.spacing * (offset / self.spacing).round();
        // `to_nearest` is measured straight across; where the wave is steep the line is
        // closer than that. Dividing by the wave's stretch gives the distance normal to the
        // line, so the line keeps one width along its whole course instead of thickening
        // on the slopes.
        let slope = self.amplitude * self.wavenumber * arg.cos();
        let distance = to_nearest.abs() / (1.0 + slope * slope).sqrt();
        // Overlap of the line (LINE_WIDTH across) with a one-pixel-wide pixel at that
        // distance: a box-filtered, hence anti-aliased, line rather than on/off pixels.
        ((LINE_WIDTH + 1.0) / 2.0 - distance).clamp(0.0, LINE_WIDTH.min(1.0))
    }
}

fn line_families(family: Watermark, seed: u64) -> Vec<LineFamily> {
    let mut rng = SplitMix64(seed);
    // One opacity for the whole watermark: it is printed in one pass.
    let opacity = rng.uniform(0.36, 0.44);
    let first = LineFamily::new(FAMILY_ANGLE_DEG, opacity, &mut rng);
    match family {
        Watermark::Waves => vec![first],
        Watermark::Mesh => {
            let second = LineFamily::new(-FAMILY_ANGLE_DEG, opacity, &mut rng);
            vec![first, second]
        }
    }
}

fn watermarked_image(photo: &DynamicImage, family: Watermark, seed: u64) -> RgbImage {
    let mut rgb = photo.to_rgb8();
    let families = line_families(family, seed);
    for (x, y, px) in rgb.enumerate_pixels_mut() {
        let (cx, cy) = (x as f32 + 0.5, y as f32 + 0.5);
        let mut value = px.0.map(f32::from);
        // Each family is laid over the result of the previous one, so where the lines cross
        // the ink builds up as two printed layers would.
        for fam in &families {
            let alpha = fam.opacity * fam.coverage(cx, cy);
            for (v, ink) in value.iter_mut().zip(INK) {
                *v += (ink - *v) * alpha;
            }
        }
        px.0 = value.map(|v| v.round().clamp(0.0, 255.0) as u8);
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            Rgb([
                (x * 255 / w.max(1)) as u8,
                (y * 255 / h.max(1)) as u8,
                ((x + y) * 127 / (w + h).max(1)) as u8 + 64,
            ])
        }))
    }

    fn flat(w: u32, h: u32, level: u8) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, Rgb([level; 3])))
    }

    fn decode(bytes: &[u8]) -> RgbImage {
        assert_eq!(&bytes[..2], &[0xFF, 0xD8], "not a JPEG");
        image::load_from_memory(bytes).expect("decodes").to_rgb8()
    }

    fn luma(px: &Rgb<u8>) -> f32 {
        let [r, g, b] = px.0.map(f32::from);
        0.299 * r + 0.587 * g + 0.114 * b
    }

    fn mean_luma(img: &RgbImage) -> f32 {
        img.pixels().map(luma).sum::<f32>() / (img.width() * img.height()) as f32
    }

    #[test]
    fn chains_parse_print_and_apply_in_order() {
        let chain = parse_spec("chip+watermark:mesh").unwrap();
        assert_eq!(chain.to_string(), "chip+watermark:mesh");
        assert_eq!(parse_spec(&chain.to_string()).unwrap(), chain);
        assert!(parse_spec("watermark:mesh+chip").is_err());
        assert!(parse_spec("scale:0.5+nothing").is_err());
        let face = FaceBox {
            x: 80.0,
            y: 70.0,
            width: 90.0,
            height: 110.0,
        };
        let out = apply(&chain, &gradient(250, 250), Some(face), 7).unwrap();
        let img = decode(&out);
        assert_eq!(img.dimensions(), (CHIP_WIDTH, CHIP_HEIGHT));
        let halved = apply(
            &parse_spec("scale:0.5+scale:0.5").unwrap(),
            &gradient(200, 200),
            None,
            0,
        )
        .unwrap();
        assert_eq!(decode(&halved).dimensions(), (50, 50));
    }

    #[test]
    fn chip_is_chip_sized_jpeg() {
        let face = FaceBox {
            x: 95.0,
            y: 80.0,
            width: 60.0,
            height: 70.0,
        };
        let chip = decode(&chip_portrait(&gradient(250, 250), face));
        assert_eq!(chip.dimensions(), (102, 126));
        // Also for a face much larger and much smaller than the chip.
        for width in [4.0, 240.0] {
            let face = FaceBox { width, ..face };
            let chip = decode(&chip_portrait(&gradient(250, 250), face));
            assert_eq!(chip.dimensions(), (CHIP_WIDTH, CHIP_HEIGHT));
        }
    }

    #[test]
    fn chip_puts_face_centre_at_45_percent_height() {
        // A dark disc at the face centre on a mid-grey photo; where it lands in the chip is
        // where the framing put the face.
        let (fx, fy) = (120.0_f32, 110.0_f32);
        let photo = RgbImage::from_fn(250, 250, |x, y| {
            let (dx, dy) = (x as f32 + 0.5 - fx, y as f32 + 0.5 - fy);
            if dx * dx + dy * dy <= 64.0 {
                Rgb([10, 10, 10])
            } else {
                Rgb([180, 180, 180])
            }
        });
        let face = FaceBox {
            x: fx - 30.0,
            y: fy - 35.0,
            width: 60.0,
            height: 70.0,
        };
        let chip = decode(&chip_portrait(&DynamicImage::ImageRgb8(photo), face));
        let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
        for (x, y, px) in chip.enumerate_pixels() {
            if luma(px) < 90.0 {
                sx += x as f32 + 0.5;
                sy += y as f32 + 0.5;
                n += 1.0;
            }
        }
        assert!(n > 20.0, "the disc vanished: {n} dark pixels");
        let (cx, cy) = (sx / n, sy / n);
        let want_y = CHIP_HEIGHT as f32 * 0.45;
        assert!(
            (cy - want_y).abs() < 2.0,
            "face centre at y {cy}, want {want_y}"
        );
        let want_x = CHIP_WIDTH as f32 / 2.0;
        assert!(
            (cx - want_x).abs() < 2.0,
            "face centre at x {cx}, want {want_x}"
        );
        // The crop is twice the face: the disc (16 px across in a 120 px crop) is about
        // 102/120 as wide in the chip.
        let area = n / (CHIP_WIDTH as f32 / 120.0).powi(2);
        assert!(
            (area - 201.0).abs() < 40.0,
            "disc area {area} px, want ~201"
        );
    }

    #[test]
    fn chip_pads_with_light_background_past_the_edges() {
        let dark = flat(250, 250, 40);
        let is_background = |px: &Rgb<u8>| luma(px) > 215.0;
        let is_photo = |px: &Rgb<u8>| luma(px) < 70.0;

        // Face in the top-left corner: the chip's top-left is background, its lower right
        // is photo.
        let corner = FaceBox {
            x: 0.0,
            y: 0.0,
            width: 80.0,
            height: 90.0,
        };
        let chip = decode(&chip_portrait(&dark, corner));
        assert_eq!(chip.dimensions(), (CHIP_WIDTH, CHIP_HEIGHT));
        assert!(
            is_background(chip.get_pixel(4, 4)),
            "{:?}",
            chip.get_pixel(4, 4)
        );
        assert!(
            is_photo(chip.get_pixel(90, 115)),
            "{:?}",
            chip.get_pixel(90, 115)
        );

        // Face against the bottom-right corner: the other way round.
        let corner = FaceBox {
            x: 170.0,
            y: 160.0,
            width: 80.0,
            height: 90.0,
        };
        let chip = decode(&chip_portrait(&dark, corner));
        assert!(
            is_photo(chip.get_pixel(10, 10)),
            "{:?}",
            chip.get_pixel(10, 10)
        );
        assert!(
            is_background(chip.get_pixel(97, 121)),
            "{:?}",
            chip.get_pixel(97, 121)
        );

        // A face box wholly off the photo is all background, not a failure.
        let off = FaceBox {
            x: 1.0e6,
            y: -1.0e6,
            width: 50.0,
            height: 60.0,
        };
        let chip = decode(&chip_portrait(&dark, off));
        assert!(chip.pixels().all(is_background));
    }

    #[test]
    fn downscale_scales_and_clamps_to_16_px() {
        let size = |w, h, factor| decode(&downscale(&gradient(w, h), factor, 75)).dimensions();
        assert_eq!(size(250, 250, 0.3), (75, 75));
        assert_eq!(size(250, 100, 0.5), (125, 50));
        assert_eq!(size(250, 250, 1.0), (250, 250));
        // The minimum: 16 px on the short side, aspect ratio kept.
        assert_eq!(size(250, 250, 0.01), (16, 16));
        assert_eq!(size(250, 100, 0.1), (40, 16));
        // Out-of-range factors are clamped, not trusted.
        assert_eq!(size(250, 250, 0.0), (16, 16));
        assert_eq!(size(250, 250, f32::NAN), (16, 16));
        assert_eq!(size(250, 250, 3.0), (250, 250));
        // A photo already under the minimum is left at its size, not enlarged.
        assert_eq!(size(12, 40, 0.5), (12, 40));
    }

    #[test]
    fn downscale_quality_sets_the_compression() {
        let photo = gradient(250, 250);
        let low = downscale(&photo, 0.5, 20).len();
        let high = downscale(&photo, 0.5, 95).len();
        assert!(
            low < high,
            "quality 20: {low} bytes, quality 95: {high} bytes"
        );
    }

    /// Pixels the watermark darkened by more than `by` on a flat photo of `level`.
    fn darkened(img: &RgbImage, level: u8, by: f32) -> usize {
        img.pixels()
            .filter(|px| luma(px) < f32::from(level) - by)
            .count()
    }

    #[test]
    fn watermark_darkens_along_its_lines_only() {
        let level = 200;
        let seed = 7;
        let marked = decode(&watermark(&flat(250, 250, level), Watermark::Waves, seed));
        let family = &line_families(Watermark::Waves, seed)[0];
        let (mut on, mut n_on, mut off, mut n_off) = (0.0, 0.0, 0.0, 0.0);
        for (x, y, px) in marked.enumerate_pixels() {
            let cover = family.coverage(x as f32 + 0.5, y as f32 + 0.5);
            let drop = f32::from(level) - luma(px);
            if cover > 0.9 {
                on += drop;
                n_on += 1.0;
            } else if cover == 0.0 {
                off += drop;
                n_off += 1.0;
            }
        }
        assert!(n_on > 1000.0 && n_off > 1000.0, "{n_on} on, {n_off} off");
        let (on, off) = (on / n_on, off / n_off);
        // Full cover at ~40 % of the way from 200 to the ink's 60 is ~55 levels; JPEG
        // smears a 1-px line somewhat.
        assert!(on > 30.0, "pixels on a line darkened by {on} on average");
        assert!(
            off.abs() < 10.0,
            "pixels between lines changed by {off} on average"
        );
    }

    #[test]
    fn watermark_keeps_the_photo_recognisable() {
        let photo = gradient(250, 250);
        let before = mean_luma(&photo.to_rgb8());
        for family in [Watermark::Waves, Watermark::Mesh] {
            let marked = decode(&watermark(&photo, family, 1));
            assert_eq!(marked.dimensions(), (250, 250));
            let drop = before - mean_luma(&marked);
            assert!(
                (2.0..30.0).contains(&drop),
                "{family:?}: mean brightness fell by {drop}"
            );
        }
    }

    #[test]
    fn mesh_covers_more_than_waves() {
        let level = 200;
        let photo = flat(250, 250, level);
        for seed in [0, 1, 99] {
            let waves = decode(&watermark(&photo, Watermark::Waves, seed));
            let mesh = decode(&watermark(&photo, Watermark::Mesh, seed));
            let total = (250 * 250) as f32;
            let w = darkened(&waves, level, 20.0) as f32 / total;
            let m = darkened(&mesh, level, 20.0) as f32 / total;
            // Lines 1 px wide every ~5 px: a fifth to a third of the pixels per family.
            assert!((0.1..0.5).contains(&w), "waves darkened {w} of the pixels");
            assert!(m > 1.4 * w, "mesh darkened {m} of the pixels, waves {w}");
            assert!(m < 0.8, "mesh darkened {m} of the pixels");
        }
    }

    #[test]
    fn watermark_is_deterministic_per_seed() {
        let photo = gradient(120, 90);
        for family in [Watermark::Waves, Watermark::Mesh] {
            assert_eq!(watermark(&photo, family, 42), watermark(&photo, family, 42));
            assert_ne!(watermark(&photo, family, 42), watermark(&photo, family, 43));
        }
        assert_ne!(
            watermark(&photo, Watermark::Waves, 42),
            watermark(&photo, Watermark::Mesh, 42)
        );
    }

    #[test]
    fn seeds_stay_within_the_stated_ranges() {
        for seed in 0..200 {
            for fam in line_families(Watermark::Mesh, seed) {
                assert!((4.5..5.5).contains(&fam.spacing));
                assert!((2.5..3.5).contains(&fam.amplitude));
                assert!((14.0..18.0).contains(&(TAU / fam.wavenumber)));
                assert!((0.36..0.44).contains(&fam.opacity));
            }
        }
    }

    #[test]
    fn parse_spec_reads_the_listed_forms() {
        assert_eq!(parse_spec("chip"), Ok(Degradation::Chip));
        assert_eq!(
            parse_spec("scale:0.3"),
            Ok(Degradation::Scale {
                factor: 0.3,
                quality: DEFAULT_SCALE_QUALITY
            })
        );
        assert_eq!(
            parse_spec("scale:0.3:60"),
            Ok(Degradation::Scale {
                factor: 0.3,
                quality: 60
            })
        );
        assert_eq!(
            parse_spec("scale:1"),
            Ok(Degradation::Scale {
                factor: 1.0,
                quality: 75
            })
        );
        assert_eq!(
            parse_spec("watermark:waves"),
            Ok(Degradation::Watermark(Watermark::Waves))
        );
        assert_eq!(
            parse_spec("watermark:mesh"),
            Ok(Degradation::Watermark(Watermark::Mesh))
        );
    }

    #[test]
    fn parse_spec_rejects_everything_else() {
        for bad in [
            "scale:0",
            "scale:1.5",
            "scale:-0.2",
            "scale:nan",
            "scale:x",
            "scale",
            "scale:0.3:0",
            "scale:0.3:101",
            "scale:0.3:60:1",
            "blur",
            "",
            "chip:2",
            "watermark",
            "watermark:dots",
        ] {
            assert!(parse_spec(bad).is_err(), "`{bad}` was accepted");
        }
        let err = parse_spec("scale:1.5").unwrap_err();
        assert!(err.contains("(0, 1]"), "{err}");
        let err = parse_spec("blur").unwrap_err();
        assert!(
            err.contains("blur") && err.contains("watermark:mesh"),
            "{err}"
        );
        let err = parse_spec("watermark:dots").unwrap_err();
        assert!(err.contains("watermark:waves"), "{err}");
    }

    #[test]
    fn display_reads_back() {
        for spec in ["chip", "scale:0.3:60", "watermark:waves", "watermark:mesh"] {
            let d = parse_spec(spec).unwrap();
            assert_eq!(d.to_string(), spec);
            assert_eq!(parse_spec(&d.to_string()), Ok(d));
        }
    }

    #[test]
    fn apply_runs_each_degradation() {
        let photo = gradient(250, 250);
        let face = FaceBox {
            x: 95.0,
            y: 80.0,
            width: 60.0,
            height: 70.0,
        };
        assert_eq!(
            apply(&Degradation::Chip, &photo, None, 0),
            Err("no face to frame a chip portrait around".to_string())
        );
        assert_eq!(
            apply(&Degradation::Chip, &photo, Some(face), 0),
            Ok(chip_portrait(&photo, face))
        );
        let scale = Degradation::Scale {
            factor: 0.3,
            quality: 60,
        };
        assert_eq!(
            apply(&scale, &photo, None, 0),
            Ok(downscale(&photo, 0.3, 60))
        );
        let mesh = Degradation::Watermark(Watermark::Mesh);
        assert_eq!(
            apply(&mesh, &photo, None, 5),
            Ok(watermark(&photo, Watermark::Mesh, 5))
        );
        // An empty photo is an error, not a panic.
        let empty = DynamicImage::ImageRgb8(RgbImage::new(0, 0));
        for d in [Degradation::Chip, scale, mesh] {
            assert_eq!(
                apply(&d, &empty, Some(face), 5),
                Err("the photo is empty".to_string())
            );
        }
        // So is a copy JPEG cannot store; the size checks need no huge buffer.
        assert!(encodable((70_000, 10)).is_err());
        assert!(encodable((65_535, 1)).is_ok());
    }
}
