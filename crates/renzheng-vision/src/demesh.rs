//! Finding and removing a reticulate watermark (网纹) before a photo is analysed.
//!
//! Portraits copied from Chinese authority sources carry a reticulate watermark: one or
//! two families of fine wavy lines (1–2 px wide, a few pixels apart, semi-transparent,
//! usually dark grey) printed over the whole picture. The lines cut through the eyes, the
//! nose and the mouth; the face detector then misses some faces outright, and the
//! recognizer's embedding drifts enough to call genuine pairs "different". A clean photo
//! must come through untouched, because any change to its pixels changes its embedding:
//! the filter runs only when the pattern is found.
//!
//! **Evidence.** The watermark is made of *thin* lines, and it is *everywhere*. On the
//! grey image `I`, the black top-hat `T = close(I) − I` (grey closing with a 3×3 square)
//! is high exactly on dark features narrower than 3 px — the lines — and zero on anything
//! wider. The picture is cut into a grid of cells and in each one the share of pixels with
//! `T` above a level is counted. A photo has fine dark detail too (hair, eyelashes,
//! texture, JPEG noise), but only in places: its plain areas (skin, background, a wall)
//! have almost none. A watermark gives a high share in every cell it is visible in, so the
//! rule looks at a *low quantile* of the cells' shares: only when even the plainest cells
//! are full of thin lines is the pattern reported. Cells where dark ink cannot show (cells
//! that are themselves dark) are left out of the quantile, and there must be enough cells
//! left to judge. The same rule on the white top-hat `I − open(I)` finds light lines,
//! the other polarity.
//!
//! **Periodicity.** Density alone cannot tell a net from texture, and it misses faint or
//! wide lines and nets over dark pictures. The second piece of evidence is the net's
//! *period*. The thin-line signal (dark top-hat minus light top-hat) is cut into 32×32
//! tiles (overlapping by half, at most 12×12 of them), and each tile's power spectrum
//! (Hann window, a small radix-2 FFT) is read on the annulus of periods 3.4–9 px, without
//! the bins near the axes (straight edges, interlacing) or on JPEG's 8-px block lattice.
//! Each tile's annulus is normalised to sum 1 (so a dark or low-contrast picture weighs as
//! much as a bright one), the tiles' spectra are averaged, and the strongest bin of the
//! average over its ring's median picks the picture's line frequency. The evidence is, in
//! the *median tile*, that bin's power over its ring's median: a net puts the same sharp
//! peaks in every tile (ratios of 3 to 30), while hair, fabric or noise puts its power in
//! different places from tile to tile (about 1; at most 1.33 over the clean shared
//! photos). Tiles with less than a grey level of detail at those periods count as no
//! evidence. A picture is reported when either
//! - the density rule holds and the periodic evidence is at least 1.2 (1.5 on a picture
//!   too small for 16 separate tiles), so that dense aperiodic detail (sensor noise,
//!   grain) is not taken for a net; or
//! - the picture has room for 16 separate tiles and the periodic evidence reaches 2.0
//!   (and the average spectrum's peak 2.0). On a chip-sized portrait (102×126) a clean
//!   photo's resampling and JPEG residue reaches 2.9, so there only the density rule
//!   counts. The polarity is then whichever top-hat alone carries the period better.
//!
//! **Removal.** A grey closing (for light lines, an opening) with the same 3×3 square, per
//! colour channel, replaces each thin dark line by the brighter pixels beside it and
//! leaves every feature wider than the square as it was; a 3×3 median then evens out
//! what the lines' anti-aliased edges and the JPEG blocks around them leave behind.
//!
//! The filters are separable (a 3-wide row max/min, then a 3-tall column one) and run on
//! the interleaved RGB values at once; the median sorts each column's three values once.
//! Detection takes under 10 ms a megapixel, removal a few; neither panics on any size,
//! empty images included.

use image::RgbImage;
use serde::Serialize;

/// Which way the watermark's lines differ from the picture under them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    /// Lines darker than the picture (the usual grey ink).
    Dark,
    /// Lines lighter than the picture.
    Light,
}

/// A reticulate watermark found by [`detect`], with the evidence for it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Reticulate {
    /// Dark or light lines.
    pub polarity: Polarity,
    /// The low-quantile share of thin-line pixels over the grid's cells (0 to 1): even
    /// the plainest part of the picture has this much of it.
    pub density: f32,
    /// The median share over the same cells.
    pub median_density: f32,
    /// How many cells were judged (cells where the lines could show).
    pub cells: u32,
    /// Periodic evidence: in the median tile of the picture, the power of the picture's
    /// strongest line frequency (periods 3.4–9 px) over its ring's median power. About 1
    /// on a clean photo; a net gives 3 and far more.
    pub periodicity: f32,
}

/// Pictures smaller than this on either side are never judged: too few pixels to tell a
/// pattern from detail.
const MIN_SIDE: usize = 24;
/// The grid is `GRID × GRID` cells (fewer on small pictures, see [`MIN_CELL`]).
const GRID: usize = 10;
/// Smallest cell side, in pixels.
const MIN_CELL: usize = 12;
/// Radius of the structuring element: 1 is a 3×3 square, which catches lines up to
/// 2 px wide (and their anti-aliased edges).
const RADIUS: usize = 1;
/// Top-hat level, in grey levels, above which a pixel counts as on a thin line. JPEG noise
/// on plain areas stays well below it; a watermark line at 25 % opacity over mid-grey
/// skin is well above it.
const LEVEL: u8 = 8;
/// A cell whose mean grey is below this (for dark lines; above `255 −` this for light
/// ones) is left out: the lines cannot show there.
const VISIBLE_FROM: u8 = 120;
/// The density statistic is the cell at this fraction from the bottom of the judged
/// cells' sorted shares.
const QUANTILE: f32 = 0.03;
/// The statistic must reach this share for the pattern to be reported.
const MIN_DENSITY: f32 = 0.25;
/// At least this fraction of the grid's cells must be judged.
const MIN_JUDGED: f32 = 0.1;
/// The periodic rule (see [`periodicity`]): the median tile's power at the picture's
/// strongest line frequency over its ring's median must reach this…
const MIN_PERIODIC: f32 = 2.0;
/// …and the tiles' mean spectrum's peak over its ring's median this.
const MIN_PEAK: f32 = 2.0;
/// The periodic rule alone is trusted only on pictures with room for this many separate
/// tiles: on an ID-card chip portrait (102×126, 9 tiles) a clean photo's JPEG and
/// resampling residue reaches the same tile ratios as a net.
const MIN_PERIODIC_TILES: usize = 16;
/// The density rule alone needs at least this much periodic evidence: dense but
/// aperiodic fine detail everywhere (sensor noise, film grain) is not a net.
const MIN_DENSE_PERIODIC: f32 = 1.2;
/// The same on a picture without room for [`MIN_PERIODIC_TILES`] tiles, where a clean
/// chip portrait's residue reaches higher.
const MIN_DENSE_PERIODIC_SMALL: f32 = 1.5;

/// Looks for a reticulate watermark in `img`; `None` for a clean photo (or one too small
/// to judge). See the [module documentation](self) for the rule.
pub fn detect(img: &RgbImage) -> Option<Reticulate> {
    let t = top_hats(img)?;
    let m = judge(&cells(&t, RULE.grid, RULE.level), &RULE);
    let p = periodicity(&thin_lines(&t), t.w, t.h);
    let periodic = p.median_ratio();
    // Room for enough separate tiles to trust the periodic evidence on its own.
    let room = (t.w / TILE) * (t.h / TILE) >= MIN_PERIODIC_TILES;
    let dense_periodic = if room {
        MIN_DENSE_PERIODIC
    } else {
        MIN_DENSE_PERIODIC_SMALL
    };
    let dense = [m.dark, m.light]
        .into_iter()
        .filter(|r| r.density >= MIN_DENSITY && r.cells > 0)
        .max_by(|a, b| a.density.total_cmp(&b.density))
        .filter(|_| periodic >= dense_periodic);
    let found = dense.or_else(|| {
        (room && p.peak >= MIN_PEAK && periodic >= MIN_PERIODIC).then(|| {
            // The lines' polarity: whichever top-hat alone carries the pattern more
            // clearly. (Dark ink over a darker picture shows as light lines.)
            let alone = |v: &[u8]| {
                let s: Vec<f32> = v.iter().map(|&x| f32::from(x)).collect();
                periodicity(&s, t.w, t.h).median_ratio()
            };
            if alone(&t.dark) >= alone(&t.light) {
                m.dark
            } else {
                m.light
            }
        })
    })?;
    Some(Reticulate {
        periodicity: periodic,
        ..found
    })
}

/// `img` with the watermark `found` described removed: a grey closing (dark lines) or
/// opening (light lines) with a 3×3 square per channel, then a 3×3 median. Pictures
/// smaller than 3 px on a side come back unchanged.
pub fn remove(img: &RgbImage, found: &Reticulate) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w < 3 || h < 3 {
        return img.clone();
    }
    // All three channels at once, interleaved: a pixel's neighbours are 3 values apart.
    let (len, raw) = (3 * w, img.as_raw());
    let filtered = match found.polarity {
        Polarity::Dark => rank_n(
            &rank_n(raw, len, h, 3, RADIUS, true),
            len,
            h,
            3,
            RADIUS,
            false,
        ),
        Polarity::Light => rank_n(
            &rank_n(raw, len, h, 3, RADIUS, false),
            len,
            h,
            3,
            RADIUS,
            true,
        ),
    };
    let smoothed = median3_n(&filtered, len, h, 3);
    RgbImage::from_raw(w as u32, h as u32, smoothed).unwrap_or_else(|| img.clone())
}

/// Both polarities' evidence.
#[derive(Debug, Clone, Copy)]
struct Measurement {
    dark: Reticulate,
    light: Reticulate,
}

/// The rule's parameters (constants in production; varied by the surveys in the tests).
#[derive(Debug, Clone, Copy)]
struct Rule {
    grid: usize,
    level: u8,
    visible_from: u8,
    quantile: f32,
    min_judged: f32,
}

const RULE: Rule = Rule {
    grid: GRID,
    level: LEVEL,
    visible_from: VISIBLE_FROM,
    quantile: QUANTILE,
    min_judged: MIN_JUDGED,
};

/// The grey picture and its two top-hats.
struct TopHats {
    w: usize,
    h: usize,
    grey: Vec<u8>,
    dark: Vec<u8>,
    light: Vec<u8>,
}

fn top_hats(img: &RgbImage) -> Option<TopHats> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w < MIN_SIDE || h < MIN_SIDE {
        return None;
    }
    let grey = luma(img);
    let closed = close(&grey, w, h, RADIUS);
    let opened = open(&grey, w, h, RADIUS);
    let dark = closed
        .iter()
        .zip(&grey)
        .map(|(c, g)| c.saturating_sub(*g))
        .collect();
    let light = grey
        .iter()
        .zip(&opened)
        .map(|(g, o)| g.saturating_sub(*o))
        .collect();
    Some(TopHats {
        w,
        h,
        grey,
        dark,
        light,
    })
}

/// The thin-line signal the periodic rule reads: dark top-hat minus light top-hat (thin
/// dark lines positive, thin light lines negative; edges, shading and anything wider
/// than the square are zero).
fn thin_lines(t: &TopHats) -> Vec<f32> {
    t.dark
        .iter()
        .zip(&t.light)
        .map(|(&d, &l)| f32::from(d) - f32::from(l))
        .collect()
}

/// One cell of the grid: its mean grey and the shares of its pixels on dark and on light
/// thin lines.
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    mean: f32,
    dark: f32,
    light: f32,
}

fn cells(t: &TopHats, grid: usize, level: u8) -> Vec<Cell> {
    let (w, h) = (t.w, t.h);
    let gx = grid.min(w / MIN_CELL).max(1);
    let gy = grid.min(h / MIN_CELL).max(1);
    let n = gx * gy;
    // Per cell: pixels, sum of grey, dark-line pixels, light-line pixels.
    let mut acc = vec![[0u64; 4]; n];
    let col: Vec<usize> = (0..w).map(|x| x * gx / w).collect();
    for y in 0..h {
        let row = y * gy / h * gx;
        let span = y * w..(y + 1) * w;
        for (((&c, &g), &d), &l) in col
            .iter()
            .zip(&t.grey[span.clone()])
            .zip(&t.dark[span.clone()])
            .zip(&t.light[span])
        {
            let a = &mut acc[row + c];
            a[0] += 1;
            a[1] += u64::from(g);
            a[2] += u64::from(d >= level);
            a[3] += u64::from(l >= level);
        }
    }
    acc.iter()
        .map(|a| {
            let n = a[0].max(1) as f32;
            Cell {
                mean: a[1] as f32 / n,
                dark: a[2] as f32 / n,
                light: a[3] as f32 / n,
            }
        })
        .collect()
}

fn judge(cells: &[Cell], rule: &Rule) -> Measurement {
    if rule.visible_from == 0 {
        let both = evidence(
            Polarity::Dark,
            cells.iter().map(|c| c.dark.max(c.light)).collect(),
            cells.len(),
            rule,
        );
        return Measurement {
            dark: both,
            light: both,
        };
    }
    let visible = f32::from(rule.visible_from);
    let dark = evidence(
        Polarity::Dark,
        cells
            .iter()
            .filter(|c| c.mean >= visible)
            .map(|c| c.dark)
            .collect(),
        cells.len(),
        rule,
    );
    let light = evidence(
        Polarity::Light,
        cells
            .iter()
            .filter(|c| c.mean <= 255.0 - visible)
            .map(|c| c.light)
            .collect(),
        cells.len(),
        rule,
    );
    Measurement { dark, light }
}

#[cfg(test)]
fn measure(img: &RgbImage) -> Option<Measurement> {
    let t = top_hats(img)?;
    Some(judge(&cells(&t, RULE.grid, RULE.level), &RULE))
}

/// The low-quantile and median of the judged cells' shares; zero evidence when too few
/// cells could be judged.
fn evidence(polarity: Polarity, mut shares: Vec<f32>, cells: usize, rule: &Rule) -> Reticulate {
    let judged = shares.len();
    if judged == 0 || (judged as f32) < rule.min_judged * cells as f32 {
        return Reticulate {
            polarity,
            density: 0.0,
            median_density: 0.0,
            cells: 0,
            periodicity: 0.0,
        };
    }
    shares.sort_by(f32::total_cmp);
    let low = ((judged as f32 * rule.quantile) as usize).min(judged - 1);
    Reticulate {
        polarity,
        density: shares[low],
        median_density: shares[judged / 2],
        cells: judged as u32,
        periodicity: 0.0,
    }
}

/// ITU-R BT.601 luma, rounded.
fn luma(img: &RgbImage) -> Vec<u8> {
    img.pixels()
        .map(|p| {
            let [r, g, b] = p.0;
            let y = (299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b) + 500) / 1000;
            y.min(255) as u8
        })
        .collect()
}

/// Three-wide `pick` (max or min) along each row of `src` (rows of `len` values, `step`
/// values a pixel: neighbours are `step` apart), into `dst`; edges replicate.
fn rows3(src: &[u8], dst: &mut [u8], len: usize, step: usize, pick: impl Fn(u8, u8) -> u8) {
    for (d, row) in dst.chunks_exact_mut(len).zip(src.chunks_exact(len)) {
        if len <= step {
            d.copy_from_slice(row);
            continue;
        }
        for (((o, &a), &b), &c) in d[step..len - step]
            .iter_mut()
            .zip(&row[..len - 2 * step])
            .zip(&row[step..len - step])
            .zip(&row[2 * step..])
        {
            *o = pick(pick(a, b), c);
        }
        for i in 0..step {
            d[i] = pick(row[i], row[i + step]);
            d[len - step + i] = pick(row[len - step + i], row[len - 2 * step + i]);
        }
    }
}

/// Three-tall `pick` down each column of `src` (`h` rows of `len`), into `dst`; edges
/// replicate.
fn cols3(src: &[u8], dst: &mut [u8], len: usize, h: usize, pick: impl Fn(u8, u8) -> u8) {
    for y in 0..h {
        let up = &src[y.saturating_sub(1) * len..][..len];
        let mid = &src[y * len..][..len];
        let down = &src[(y + 1).min(h - 1) * len..][..len];
        for (((o, &a), &b), &c) in dst[y * len..][..len].iter_mut().zip(up).zip(mid).zip(down) {
            *o = pick(pick(a, b), c);
        }
    }
}

/// Max (`dilate`) or min over a 3×3 square, applied `r` times (which is the `(2r+1)²`
/// square), on an image of `h` rows of `len` values with `step` channels interleaved;
/// separable: a row pass then a column pass. Edges replicate.
fn rank_n(src: &[u8], len: usize, h: usize, step: usize, r: usize, dilate: bool) -> Vec<u8> {
    let mut out = src.to_vec();
    if len == 0 || h == 0 || src.len() != len * h {
        return out;
    }
    let mut tmp = vec![0u8; src.len()];
    for _ in 0..r {
        if dilate {
            rows3(&out, &mut tmp, len, step, u8::max);
            cols3(&tmp, &mut out, len, h, u8::max);
        } else {
            rows3(&out, &mut tmp, len, step, u8::min);
            cols3(&tmp, &mut out, len, h, u8::min);
        }
    }
    out
}

/// Max (`dilate`) or min over a `(2r+1)²` square on a grey plane; edges replicate.
fn rank(src: &[u8], w: usize, h: usize, r: usize, dilate: bool) -> Vec<u8> {
    rank_n(src, w, h, 1, r, dilate)
}

/// Grey closing: dark features narrower than the square are filled in.
fn close(src: &[u8], w: usize, h: usize, r: usize) -> Vec<u8> {
    rank(&rank(src, w, h, r, true), w, h, r, false)
}

/// Grey opening: light features narrower than the square are removed.
fn open(src: &[u8], w: usize, h: usize, r: usize) -> Vec<u8> {
    rank(&rank(src, w, h, r, false), w, h, r, true)
}

/// Median of three.
#[inline]
fn med3(a: u8, b: u8, c: u8) -> u8 {
    a.max(b).min(a.min(b).max(c))
}

/// 3×3 median on a grey plane; edges replicate.
#[cfg(test)]
fn median3(src: &[u8], w: usize, h: usize) -> Vec<u8> {
    median3_n(src, w, h, 1)
}

/// 3×3 median on `h` rows of `len` values with `step` channels interleaved (each channel
/// on its own); edges replicate. Each column's three values are sorted once; the median
/// of nine is then the median of (the largest of the three minima, the median of the
/// three medians, the smallest of the three maxima).
fn median3_n(src: &[u8], len: usize, h: usize, step: usize) -> Vec<u8> {
    let mut out = src.to_vec();
    if len == 0 || h == 0 || src.len() != len * h {
        return out;
    }
    let mut lo = vec![0u8; len];
    let mut mid = vec![0u8; len];
    let mut hi = vec![0u8; len];
    for y in 0..h {
        let up = &src[y.saturating_sub(1) * len..][..len];
        let row = &src[y * len..][..len];
        let down = &src[(y + 1).min(h - 1) * len..][..len];
        for (((((l, m), hh), &a), &b), &c) in lo
            .iter_mut()
            .zip(mid.iter_mut())
            .zip(hi.iter_mut())
            .zip(up)
            .zip(row)
            .zip(down)
        {
            *l = a.min(b).min(c);
            *hh = a.max(b).max(c);
            *m = med3(a, b, c);
        }
        let dst = &mut out[y * len..][..len];
        let at = |i: usize| (lo[i], mid[i], hi[i]);
        let combine = |p: (u8, u8, u8), q: (u8, u8, u8), r: (u8, u8, u8)| {
            med3(
                p.0.max(q.0).max(r.0),
                med3(p.1, q.1, r.1),
                p.2.min(q.2).min(r.2),
            )
        };
        if len <= step {
            for (i, o) in dst.iter_mut().enumerate() {
                *o = combine(at(i), at(i), at(i));
            }
            continue;
        }
        for (i, o) in dst[step..len - step].iter_mut().enumerate() {
            let (a, b, c) = (i, i + step, i + 2 * step);
            *o = med3(
                lo[a].max(lo[b]).max(lo[c]),
                med3(mid[a], mid[b], mid[c]),
                hi[a].min(hi[b]).min(hi[c]),
            );
        }
        for i in 0..step {
            dst[i] = combine(at(i), at(i), at(i + step));
            let j = len - step + i;
            dst[j] = combine(at(j - step), at(j), at(j));
        }
    }
    out
}

/// Side of the square tiles whose spectra are taken (a power of two).
const TILE: usize = 32;
/// Tiles start this many pixels apart (they overlap by half)…
const TILE_STRIDE: usize = TILE / 2;
/// …with at most this many along a side (evenly spread on larger pictures).
const MAX_TILES_SIDE: usize = 12;
/// The line periods looked at, in pixels: the annulus of the spectrum between these.
const MIN_PERIOD: f32 = 3.4;
const MAX_PERIOD: f32 = 9.0;
/// A tile with less detail than this (root-mean-square grey levels, at the periods
/// looked at) is blank: no evidence either way.
const MIN_TILE_RMS: f32 = 1.0;
/// Bins nearer the axes than this are left out.
const AXIS_GAP: i32 = 3;

/// A small radix-2 FFT of length [`TILE`], and the tile window.
struct Fft {
    cos: [f32; TILE / 2],
    sin: [f32; TILE / 2],
    rev: [usize; TILE],
    window: [f32; TILE],
}

impl Fft {
    fn new() -> Self {
        let mut f = Fft {
            cos: [0.0; TILE / 2],
            sin: [0.0; TILE / 2],
            rev: [0; TILE],
            window: [0.0; TILE],
        };
        let bits = TILE.trailing_zeros();
        for k in 0..TILE / 2 {
            let a = std::f32::consts::TAU * k as f32 / TILE as f32;
            f.cos[k] = a.cos();
            f.sin[k] = a.sin();
        }
        for i in 0..TILE {
            f.rev[i] = i.reverse_bits() >> (usize::BITS - bits);
            // Hann window.
            let a = std::f32::consts::TAU * (i as f32 + 0.5) / TILE as f32;
            f.window[i] = 0.5 - 0.5 * a.cos();
        }
        f
    }

    /// In-place forward transform of one line.
    fn run(&self, re: &mut [f32], im: &mut [f32]) {
        for i in 0..TILE {
            let j = self.rev[i];
            if j > i {
                re.swap(i, j);
                im.swap(i, j);
            }
        }
        let mut len = 2;
        while len <= TILE {
            let half = len / 2;
            let step = TILE / len;
            for start in (0..TILE).step_by(len) {
                for k in 0..half {
                    let (c, s) = (self.cos[k * step], self.sin[k * step]);
                    let (a, b) = (start + k, start + k + half);
                    let tr = re[b] * c + im[b] * s;
                    let ti = im[b] * c - re[b] * s;
                    re[b] = re[a] - tr;
                    im[b] = im[a] - ti;
                    re[a] += tr;
                    im[a] += ti;
                }
            }
            len *= 2;
        }
    }

    /// The power spectrum of the `TILE × TILE` tile at `(x0, y0)` of `src` (row length
    /// `w`), mean removed and windowed; `power[ky * TILE + kx]`.
    fn tile_power(&self, src: &[f32], w: usize, x0: usize, y0: usize, power: &mut [f32]) {
        let mut re = [0f32; TILE * TILE];
        let mut im = [0f32; TILE * TILE];
        let mut sum = 0f32;
        for y in 0..TILE {
            for x in 0..TILE {
                sum += src[(y0 + y) * w + x0 + x];
            }
        }
        let mean = sum / (TILE * TILE) as f32;
        for y in 0..TILE {
            for x in 0..TILE {
                re[y * TILE + x] =
                    (src[(y0 + y) * w + x0 + x] - mean) * self.window[x] * self.window[y];
            }
        }
        for y in 0..TILE {
            let r = y * TILE..(y + 1) * TILE;
            self.run(&mut re[r.clone()], &mut im[r]);
        }
        let mut cr = [0f32; TILE];
        let mut ci = [0f32; TILE];
        for x in 0..TILE {
            for y in 0..TILE {
                cr[y] = re[y * TILE + x];
                ci[y] = im[y * TILE + x];
            }
            self.run(&mut cr, &mut ci);
            for y in 0..TILE {
                power[y * TILE + x] = cr[y] * cr[y] + ci[y] * ci[y];
            }
        }
    }
}

/// One frequency bin of the annulus: where it is in a tile's spectrum and which ring
/// (whole radius) it is on.
#[derive(Clone, Copy)]
struct Bin {
    index: usize,
    ring: usize,
}

/// The half-plane annulus of periods [`MIN_PERIOD`]..[`MAX_PERIOD`], without the bins on
/// or next to the axes (where JPEG's block grid and a picture's straight edges put their
/// power).
fn annulus() -> Vec<Bin> {
    let (rmin, rmax) = (TILE as f32 / MAX_PERIOD, TILE as f32 / MIN_PERIOD);
    let half = TILE as i32 / 2;
    let mut bins = Vec::new();
    for ky in AXIS_GAP..half {
        for kx in -half + 1..=half {
            // JPEG's 8-px block grid puts its power on multiples of TILE / 8.
            let lattice = TILE as i32 / 8;
            if kx.abs() < AXIS_GAP || (kx % lattice == 0 && ky % lattice == 0) {
                continue;
            }
            let r = ((kx * kx + ky * ky) as f32).sqrt();
            if r < rmin || r > rmax {
                continue;
            }
            bins.push(Bin {
                index: ky as usize * TILE + kx.rem_euclid(TILE as i32) as usize,
                ring: r.round() as usize,
            });
        }
    }
    bins
}

/// Evidence of a periodic pattern over the picture.
#[derive(Debug, Clone, Default)]
struct Periodicity {
    /// The strongest bin of the tiles' mean (normalised) annulus spectrum over its ring's
    /// median.
    peak: f32,
    /// Per tile (sorted, ascending): that bin's power over its ring's median in the tile.
    ratios: Vec<f32>,
    /// Tiles judged.
    #[cfg_attr(not(test), allow(dead_code))]
    tiles: u32,
    /// The period of the strongest bin, in pixels.
    #[cfg_attr(not(test), allow(dead_code))]
    period: f32,
}

impl Periodicity {
    /// The median tile's ratio (0 when no tile was judged).
    fn median_ratio(&self) -> f32 {
        self.ratios
            .get(self.ratios.len() / 2)
            .copied()
            .unwrap_or(0.0)
    }
}

fn median_of(v: &mut [f32]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

fn periodicity(src: &[f32], w: usize, h: usize) -> Periodicity {
    if w < TILE || h < TILE {
        return Periodicity::default();
    }
    let starts = |side: usize| -> Vec<usize> {
        let n = ((side - TILE) / TILE_STRIDE + 1).min(MAX_TILES_SIDE);
        if n == 1 {
            return vec![(side - TILE) / 2];
        }
        (0..n).map(|i| i * (side - TILE) / (n - 1)).collect()
    };
    let fft = Fft::new();
    let bins = annulus();
    let rings = bins.iter().map(|b| b.ring).max().unwrap_or(0) + 1;
    let mut power = vec![0f32; TILE * TILE];
    let mut spectra: Vec<Vec<f32>> = Vec::new();
    let mut mean = vec![0f32; bins.len()];
    // Parseval: the half-plane annulus of a windowed tile with `rms` of detail there holds
    // about rms² · TILE² · (Σ window²)² / 2.
    let sum_w2: f32 = fft.window.iter().map(|v| v * v).sum();
    let floor = MIN_TILE_RMS * MIN_TILE_RMS * (TILE * TILE) as f32 * sum_w2 * sum_w2 / 2.0;
    let mut blank = 0usize;
    for &y0 in &starts(h) {
        for &x0 in &starts(w) {
            fft.tile_power(src, w, x0, y0, &mut power);
            let p: Vec<f32> = bins.iter().map(|b| power[b.index]).collect();
            let total: f32 = p.iter().sum();
            // A tile with under [`MIN_TILE_RMS`] of detail at these periods says nothing
            // (and counts as no evidence).
            if total < floor {
                blank += 1;
                continue;
            }
            let p: Vec<f32> = p.iter().map(|v| v / total).collect();
            for (m, v) in mean.iter_mut().zip(&p) {
                *m += v;
            }
            spectra.push(p);
        }
    }
    if spectra.is_empty() {
        return Periodicity::default();
    }
    let ring_median = |p: &[f32], ring: usize| {
        let mut v: Vec<f32> = bins
            .iter()
            .zip(p)
            .filter(|(b, _)| b.ring == ring)
            .map(|(_, v)| *v)
            .collect();
        median_of(&mut v)
    };
    let medians: Vec<f32> = (0..rings).map(|r| ring_median(&mean, r)).collect();
    let (best, peak) = bins
        .iter()
        .zip(&mean)
        .enumerate()
        .map(|(i, (b, m))| (i, m / medians[b.ring].max(1e-12)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, 0.0));
    let ring = bins[best].ring;
    let mut ratios: Vec<f32> = spectra
        .iter()
        .map(|p| p[best] / ring_median(p, ring).max(1e-12))
        .chain(std::iter::repeat_n(0.0, blank))
        .collect();
    ratios.sort_by(f32::total_cmp);
    let b = bins[best].index;
    let (ky, kx) = ((b / TILE) as f32, (b % TILE) as f32);
    let kx = if kx > (TILE / 2) as f32 {
        kx - TILE as f32
    } else {
        kx
    };
    Periodicity {
        peak,
        ratios,
        tiles: (spectra.len() + blank) as u32,
        period: TILE as f32 / (kx * kx + ky * ky).sqrt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// One family of sinusoidal lines, drawn anti-aliased onto `img`.
    #[derive(Clone, Copy)]
    pub(super) struct Family {
        pub angle_deg: f32,
        pub spacing: f32,
        pub width: f32,
        pub amplitude: f32,
        pub period: f32,
        pub phase: f32,
    }

    pub(super) fn draw(img: &mut RgbImage, families: &[Family], ink: [f32; 3], opacity: f32) {
        for (x, y, px) in img.enumerate_pixels_mut() {
            let (x, y) = (x as f32, y as f32);
            let mut cover = 0f32;
            for f in families {
                let a = f.angle_deg.to_radians();
                let along = x * a.cos() + y * a.sin();
                let across = -x * a.sin() + y * a.cos();
                let arg = std::f32::consts::TAU / f.period * along + f.phase;
                let off = across - f.amplitude * arg.sin();
                let near = off - f.spacing * (off / f.spacing).round();
                let slope = f.amplitude * std::f32::consts::TAU / f.period * arg.cos();
                let d = near.abs() / (1.0 + slope * slope).sqrt();
                let c = ((f.width + 1.0) / 2.0 - d).clamp(0.0, 1.0);
                cover = cover.max(c);
            }
            let a = opacity * cover;
            for (ch, inkc) in px.0.iter_mut().zip(ink) {
                *ch = (f32::from(*ch) * (1.0 - a) + inkc * a).round() as u8;
            }
        }
    }

    pub(super) fn jpeg(img: &RgbImage, quality: u8) -> RgbImage {
        let mut buf = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality)
            .encode_image(img)
            .unwrap();
        image::load_from_memory(&buf).unwrap().to_rgb8()
    }

    /// A smooth face-like picture: a gradient background, a lit ellipse, a few dark
    /// blobs wider than the filter, and some fine detail in one corner (hair).
    fn portrait(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let bg = 200.0 - 60.0 * fy;
            let (dx, dy) = ((fx - 0.5) / 0.3, (fy - 0.5) / 0.38);
            let mut v = if dx * dx + dy * dy < 1.0 {
                170.0 + 30.0 * (1.0 - dx * dx - dy * dy)
            } else {
                bg
            };
            for (ex, ey) in [(0.4, 0.42), (0.6, 0.42)] {
                let (ax, ay) = ((fx - ex) * w as f32, (fy - ey) * h as f32);
                if ax * ax + ay * ay < 36.0 {
                    v = 50.0;
                }
            }
            // "Hair": fine dark strands in the top-left corner only.
            if fx < 0.3 && fy < 0.25 && (x + 2 * y) % 4 == 0 {
                v = 40.0;
            }
            let v = v.clamp(0.0, 255.0) as u8;
            Rgb([v, v.saturating_sub(10), v.saturating_sub(25)])
        })
    }

    fn mesh() -> [Family; 2] {
        [
            Family {
                angle_deg: 31.0,
                spacing: 5.0,
                width: 1.0,
                amplitude: 3.0,
                period: 16.0,
                phase: 0.3,
            },
            Family {
                angle_deg: -28.0,
                spacing: 4.8,
                width: 1.0,
                amplitude: 2.8,
                period: 15.0,
                phase: 1.7,
            },
        ]
    }

    fn top_hat_share(img: &RgbImage) -> f32 {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let g = luma(img);
        let c = close(&g, w, h, RADIUS);
        let n = g
            .iter()
            .zip(&c)
            .filter(|(a, b)| b.saturating_sub(**a) >= LEVEL)
            .count();
        n as f32 / g.len() as f32
    }

    #[test]
    fn a_drawn_net_is_found_and_removed() {
        let clean = portrait(240, 300);
        let mut marked = clean.clone();
        draw(&mut marked, &mesh(), [60.0; 3], 0.4);
        let marked = jpeg(&marked, 85);
        let found = detect(&marked).expect("the net is found");
        assert_eq!(found.polarity, Polarity::Dark);
        assert!(found.density > 0.3, "{found:?}");
        let cleaned = remove(&marked, &found);
        assert_eq!(cleaned.dimensions(), marked.dimensions());
        let (before, after) = (top_hat_share(&marked), top_hat_share(&cleaned));
        assert!(after < before / 5.0, "top-hat share {before} → {after}");
        assert!(detect(&cleaned).is_none(), "{:?}", detect(&cleaned));
        // And the picture is nearer the clean one than the marked copy was.
        let err = |img: &RgbImage| {
            clean
                .as_raw()
                .iter()
                .zip(img.as_raw())
                .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
                .sum::<f64>()
                / clean.as_raw().len() as f64
        };
        let (before, after) = (err(&marked), err(&cleaned));
        assert!(after < before / 2.0, "mean error {before} → {after}");
    }

    #[test]
    fn one_family_and_a_chip_sized_portrait_are_found() {
        let mut waves = portrait(300, 360);
        draw(&mut waves, &mesh()[..1], [60.0; 3], 0.38);
        assert!(detect(&jpeg(&waves, 85)).is_some());
        let mut chip = portrait(102, 126);
        draw(&mut chip, &mesh(), [70.0; 3], 0.4);
        assert!(detect(&jpeg(&chip, 80)).is_some());
    }

    #[test]
    fn light_lines_are_found_as_light() {
        let mut img = RgbImage::from_fn(200, 200, |x, y| {
            let v = (60 + (x + y) / 8) as u8;
            Rgb([v, v, v])
        });
        draw(&mut img, &mesh(), [235.0; 3], 0.4);
        let found = detect(&jpeg(&img, 85)).expect("light net found");
        assert_eq!(found.polarity, Polarity::Light);
        let cleaned = remove(&img, &found);
        assert!(detect(&cleaned).is_none());
    }

    #[test]
    fn clean_pictures_are_not_found() {
        assert_eq!(detect(&jpeg(&portrait(240, 300), 85)), None);
        assert_eq!(detect(&portrait(102, 126)), None);
        let gradient = RgbImage::from_fn(320, 240, |x, y| {
            Rgb([(x * 255 / 320) as u8, (y * 255 / 240) as u8, 128])
        });
        assert_eq!(detect(&gradient), None);
        // Noise-like texture over a third of the picture, plain elsewhere.
        let texture = RgbImage::from_fn(300, 300, |x, y| {
            let n = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)).wrapping_mul(2_654_435_761);
            let v = if x < 100 {
                100 + (n >> 27) as u8 * 4
            } else {
                180
            };
            Rgb([v, v, v])
        });
        assert_eq!(detect(&texture), None);
    }

    #[test]
    fn no_panic_on_any_size() {
        for (w, h) in [
            (0, 0),
            (0, 5),
            (5, 0),
            (1, 1),
            (2, 2),
            (3, 3),
            (1, 500),
            (500, 1),
            (24, 24),
            (25, 700),
        ] {
            let img = RgbImage::from_fn(w, h, |x, y| Rgb([(x * 31 + y * 17) as u8, 9, 200]));
            let _ = detect(&img);
            let forced = Reticulate {
                polarity: Polarity::Dark,
                density: 1.0,
                median_density: 1.0,
                cells: 1,
                periodicity: 0.0,
            };
            for polarity in [Polarity::Dark, Polarity::Light] {
                let out = remove(&img, &Reticulate { polarity, ..forced });
                assert_eq!(out.dimensions(), (w, h));
            }
        }
    }

    /// The shared photo sets, for the surveys below.
    fn shared_photos() -> Vec<(String, Vec<(std::path::PathBuf, RgbImage)>)> {
        let root = std::env::var("RENZHENG_SHARED_DIR")
            .map(|d| std::path::PathBuf::from(d).join("faces"))
            .unwrap_or_else(|_| std::path::PathBuf::from("../../../shared/faces"));
        let mut sets = Vec::new();
        let Ok(dirs) = std::fs::read_dir(&root) else {
            return sets;
        };
        let mut dirs: Vec<_> = dirs
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let mut files = Vec::new();
            let mut stack = vec![dir.clone()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else {
                        files.push(p);
                    }
                }
            }
            files.sort();
            let limits = crate::decode::DecodeLimits::default();
            let photos = files
                .into_iter()
                .filter_map(|p| {
                    let bytes = std::fs::read(&p).ok()?;
                    let (img, _) = crate::decode::decode_rgb(&bytes, &limits).ok()?;
                    Some((p, img))
                })
                .collect();
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            sets.push((name, photos));
        }
        sets
    }

    /// No clean shared photo is flagged. `cargo test -p renzheng-vision --release --lib
    /// demesh -- --ignored --nocapture`
    #[test]
    #[ignore = "reads ../shared/faces; a survey, run by hand"]
    fn survey_clean_shared_photos() {
        let mut flagged_total = 0;
        let mut sets = shared_photos();
        let chips: Vec<_> = sets
            .iter()
            .map(|(set, photos)| {
                let small = photos.iter().map(|(p, img)| (p.clone(), chip_like(img)));
                (
                    format!("{set} (chip-like copies)"),
                    small.collect::<Vec<_>>(),
                )
            })
            .collect();
        sets.extend(chips);
        for (set, photos) in sets {
            let mut rows: Vec<(f32, f32, String)> = photos
                .iter()
                .filter_map(|(p, img)| {
                    let m = measure(img)?;
                    Some((m.dark.density, m.light.density, p.display().to_string()))
                })
                .collect();
            let flagged: Vec<_> = photos
                .iter()
                .filter(|(_, img)| detect(img).is_some())
                .collect();
            flagged_total += flagged.len();
            rows.sort_by(|a, b| b.0.max(b.1).total_cmp(&a.0.max(a.1)));
            println!(
                "{set}: {} photos, {} judged, {} flagged",
                photos.len(),
                rows.len(),
                flagged.len()
            );
            for (d, l, p) in rows.iter().take(4) {
                println!("    dark {d:.3} light {l:.3}  {p}");
            }
            let mut periodic: Vec<(f32, f32, String)> = photos
                .iter()
                .filter_map(|(p, img)| {
                    let t = top_hats(img)?;
                    let r = periodicity(&thin_lines(&t), t.w, t.h);
                    Some((r.median_ratio(), r.peak, p.display().to_string()))
                })
                .collect();
            periodic.sort_by(|a, b| b.0.total_cmp(&a.0));
            for (m, k, p) in periodic.iter().take(3) {
                println!("    periodicity {m:.2} (peak {k:.2}; rule {MIN_PERIODIC})  {p}");
            }
            for (p, _) in &flagged {
                println!("    FLAGGED {}", p.display());
            }
        }
        assert_eq!(flagged_total, 0);
    }

    struct Lcg(u64);
    impl Lcg {
        fn unit(&mut self) -> f32 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 40) as f32 / (1u64 << 24) as f32
        }
        fn range(&mut self, lo: f32, hi: f32) -> f32 {
            lo + (hi - lo) * self.unit()
        }
    }

    /// A watermark style for the survey.
    fn styled(img: &RgbImage, style: &str, rng: &mut Lcg) -> RgbImage {
        let fam = |rng: &mut Lcg,
                   angle: f32,
                   sp: (f32, f32),
                   width: (f32, f32),
                   amp: (f32, f32),
                   per: (f32, f32)| Family {
            angle_deg: angle + rng.range(-5.0, 5.0),
            spacing: rng.range(sp.0, sp.1),
            width: rng.range(width.0, width.1),
            amplitude: rng.range(amp.0, amp.1),
            period: rng.range(per.0, per.1),
            phase: rng.range(0.0, std::f32::consts::TAU),
        };
        let mut out = img.clone();
        match style {
            "ours-mesh" | "ours-waves" => {
                let mut f = vec![fam(
                    rng,
                    30.0,
                    (4.5, 5.5),
                    (1.0, 1.0),
                    (2.5, 3.5),
                    (14.0, 18.0),
                )];
                if style == "ours-mesh" {
                    f.push(fam(
                        rng,
                        -30.0,
                        (4.5, 5.5),
                        (1.0, 1.0),
                        (2.5, 3.5),
                        (14.0, 18.0),
                    ));
                }
                let op = rng.range(0.36, 0.44);
                draw(&mut out, &f, [60.0; 3], op);
                jpeg(&out, 85)
            }
            "foreign" => {
                // Wider, fainter, other angles, longer waves, other ink, other quality.
                let a = rng.range(0.0, 90.0);
                let b = a + rng.range(50.0, 90.0);
                let f = [
                    fam(rng, a, (4.0, 6.5), (1.2, 2.0), (1.0, 4.0), (12.0, 40.0)),
                    fam(rng, b, (4.0, 6.5), (1.2, 2.0), (1.0, 4.0), (12.0, 40.0)),
                ];
                let ink = rng.range(40.0, 110.0);
                let op = rng.range(0.25, 0.4);
                draw(&mut out, &f, [ink, ink, ink * 1.05], op);
                jpeg(&out, rng.range(72.0, 92.0) as u8)
            }
            "faint" => {
                let f = [
                    fam(rng, 20.0, (4.0, 6.0), (1.0, 1.5), (1.5, 3.5), (14.0, 30.0)),
                    fam(rng, -40.0, (4.0, 6.0), (1.0, 1.5), (1.5, 3.5), (14.0, 30.0)),
                ];
                draw(&mut out, &f, [80.0; 3], rng.range(0.2, 0.27));
                jpeg(&out, 85)
            }
            "light" => {
                let f = [
                    fam(rng, 30.0, (4.5, 6.0), (1.0, 1.8), (2.0, 3.5), (14.0, 30.0)),
                    fam(rng, -30.0, (4.5, 6.0), (1.0, 1.8), (2.0, 3.5), (14.0, 30.0)),
                ];
                draw(&mut out, &f, [245.0; 3], rng.range(0.35, 0.5));
                jpeg(&out, 85)
            }
            "chip-mesh" => {
                let mut small =
                    image::imageops::resize(img, 102, 126, image::imageops::FilterType::Triangle);
                let f = [
                    fam(rng, 30.0, (4.5, 5.5), (1.0, 1.0), (2.5, 3.5), (14.0, 18.0)),
                    fam(rng, -30.0, (4.5, 5.5), (1.0, 1.0), (2.5, 3.5), (14.0, 18.0)),
                ];
                draw(&mut small, &f, [60.0; 3], rng.range(0.36, 0.44));
                jpeg(&small, 70)
            }
            _ => unreachable!(),
        }
    }

    /// A clean ID-card-chip-like copy: the middle of the photo, resized to 102×126
    /// (Catmull-Rom) and stored as JPEG at quality 70, as `renzheng eval --portrait-as
    /// chip` makes it.
    fn chip_like(img: &RgbImage) -> RgbImage {
        let (w, h) = img.dimensions();
        let cw = (w.min(h) * 4 / 5).max(1);
        let ch = (cw * 126 / 102).min(h);
        let crop = image::imageops::crop_imm(img, (w - cw) / 2, (h - ch) / 2, cw, ch).to_image();
        let small =
            image::imageops::resize(&crop, 102, 126, image::imageops::FilterType::CatmullRom);
        jpeg(&small, 70)
    }

    /// Watermarked copies of shared photos are flagged, and their residue is small.
    #[test]
    #[ignore = "reads ../shared/faces; a survey, run by hand"]
    fn survey_watermarked_shared_photos() {
        let sets = shared_photos();
        for style in [
            "ours-mesh",
            "ours-waves",
            "foreign",
            "faint",
            "light",
            "chip-mesh",
        ] {
            let mut rng = Lcg(7);
            let (mut n, mut hit, mut min_d, mut after) = (0, 0, f32::MAX, 0usize);
            let (mut wrong_polarity, mut periodic_only) = (0, 0);
            let mut misses = Vec::new();
            for (set, photos) in &sets {
                if set != "lfw_eastasian_dev" && set != "celeb5" && set != "fr_examples" {
                    continue;
                }
                for (p, img) in photos {
                    let marked = styled(img, style, &mut rng);
                    let Some(m) = measure(&marked) else { continue };
                    n += 1;
                    let best = m.dark.density.max(m.light.density);
                    min_d = min_d.min(best);
                    match detect(&marked) {
                        Some(found) => {
                            hit += 1;
                            let want = if style == "light" {
                                Polarity::Light
                            } else {
                                Polarity::Dark
                            };
                            if found.polarity != want {
                                wrong_polarity += 1;
                            }
                            if found.density < MIN_DENSITY {
                                periodic_only += 1;
                            }
                            if detect(&remove(&marked, &found)).is_some() {
                                after += 1;
                            }
                        }
                        None => misses.push(format!("{best:.3} {}", p.display())),
                    }
                }
            }
            println!(
                "{style}: {hit}/{n} found ({periodic_only} by periodicity alone, \
                 {wrong_polarity} with the wrong polarity), lowest density {min_d:.3}, \
                 still found after removal {after}"
            );
            for m in misses.iter().take(5) {
                println!("    missed {m}");
            }
        }
    }

    /// Dumps the periodicity evidence of clean and watermarked shared photos to
    /// /tmp/demesh_periodic.csv.
    #[test]
    #[ignore = "reads ../shared/faces; a survey, run by hand"]
    fn dump_periodicity() {
        use std::io::Write;
        let sets = shared_photos();
        let mut out = std::fs::File::create("/tmp/demesh_periodic.csv").unwrap();
        let q = |v: &[f32], f: f32| -> f32 {
            if v.is_empty() {
                0.0
            } else {
                v[((v.len() as f32 * f) as usize).min(v.len() - 1)]
            }
        };
        let mut row = |kind: &str, set: &str, p: &std::path::Path, img: &RgbImage| {
            let Some(t) = top_hats(img) else { return };
            let m = judge(&cells(&t, RULE.grid, RULE.level), &RULE);
            let g: Vec<f32> = t.grey.iter().map(|&v| f32::from(v)).collect();
            let s: Vec<f32> = t
                .dark
                .iter()
                .zip(&t.light)
                .map(|(&d, &l)| f32::from(d) - f32::from(l))
                .collect();
            let mut line = format!(
                "{kind},{set},{},{},{},{:.3},{:.3},{:.3},{:.3}",
                p.file_name().unwrap().to_string_lossy().replace(',', "_"),
                t.w,
                t.h,
                m.dark.density,
                m.light.density,
                m.dark.median_density,
                m.light.median_density
            );
            for sig in [&g, &s] {
                let r = periodicity(sig, t.w, t.h);
                line += &format!(
                    ",{:.2},{:.2},{},{:.2},{:.2},{:.2},{:.2}",
                    r.peak,
                    r.period,
                    r.tiles,
                    q(&r.ratios, 0.1),
                    q(&r.ratios, 0.25),
                    q(&r.ratios, 0.5),
                    q(&r.ratios, 0.75)
                );
            }
            writeln!(out, "{line}").unwrap();
        };
        let styles = [
            "ours-mesh",
            "ours-waves",
            "foreign",
            "faint",
            "light",
            "chip-mesh",
        ];
        for (set, photos) in &sets {
            for (p, img) in photos {
                row("clean", set, p, img);
                row("clean-chip", set, p, &chip_like(img));
            }
        }
        for style in styles {
            let mut rng = Lcg(7);
            for (set, photos) in &sets {
                if set != "lfw_eastasian_dev" && set != "celeb5" && set != "fr_examples" {
                    continue;
                }
                for (p, img) in photos {
                    let marked = styled(img, style, &mut rng);
                    row(style, set, p, &marked);
                }
            }
        }
    }

    #[test]
    fn the_fft_matches_a_naive_dft() {
        let fft = Fft::new();
        let mut rng = Lcg(5);
        let src: Vec<f32> = (0..TILE * TILE).map(|_| rng.unit() * 100.0).collect();
        let mut power = vec![0f32; TILE * TILE];
        fft.tile_power(&src, TILE, 0, 0, &mut power);
        let mean = src.iter().sum::<f32>() / src.len() as f32;
        for (ky, kx) in [(0usize, 1usize), (3, 7), (5, 30), (16, 16), (9, 2)] {
            let (mut re, mut im) = (0f64, 0f64);
            for y in 0..TILE {
                for x in 0..TILE {
                    let v = f64::from((src[y * TILE + x] - mean) * fft.window[x] * fft.window[y]);
                    let a =
                        -std::f64::consts::TAU * ((kx * x + ky * y) % TILE) as f64 / TILE as f64;
                    re += v * a.cos();
                    im += v * a.sin();
                }
            }
            let want = (re * re + im * im) as f32;
            let got = power[ky * TILE + kx];
            assert!(
                (got - want).abs() <= 1e-3 * want.max(1.0),
                "({ky},{kx}): {got} vs {want}"
            );
        }
    }

    /// Fine random texture over the whole picture, plus smooth shading: dense thin
    /// detail everywhere, but no period.
    fn textured(w: u32, h: u32, seed: u64) -> RgbImage {
        let mut rng = Lcg(seed);
        let noise: Vec<f32> = (0..w * h).map(|_| rng.range(-18.0, 18.0)).collect();
        RgbImage::from_fn(w, h, |x, y| {
            let base = 150.0 + 40.0 * ((x as f32 / 37.0).sin() * (y as f32 / 53.0).cos());
            let v = (base + noise[(y * w + x) as usize]).clamp(0.0, 255.0) as u8;
            Rgb([v, v, v.saturating_sub(10)])
        })
    }

    #[test]
    fn random_texture_is_not_periodic() {
        for seed in [1, 2, 3] {
            let img = jpeg(&textured(240, 300, seed), 85);
            let t = top_hats(&img).unwrap();
            let p = periodicity(&thin_lines(&t), t.w, t.h);
            assert!(p.median_ratio() < MIN_PERIODIC * 0.75, "{p:?}");
            assert_eq!(detect(&img), None, "{p:?}");
        }
    }

    #[test]
    fn a_faint_net_on_texture_is_found_by_its_period() {
        for seed in [1, 2, 3] {
            let mut img = textured(240, 300, seed);
            let mut f = mesh();
            f[0].width = 1.5;
            f[1].width = 1.5;
            draw(&mut img, &f, [80.0; 3], 0.22);
            let img = jpeg(&img, 85);
            let t = top_hats(&img).unwrap();
            let p = periodicity(&thin_lines(&t), t.w, t.h);
            assert!(p.median_ratio() >= MIN_PERIODIC * 1.5, "{p:?}");
            assert!((3.4..=9.0).contains(&p.period), "{p:?}");
            let found = detect(&img).expect("the net is found");
            assert!(found.periodicity >= MIN_PERIODIC, "{found:?}");
        }
    }

    #[test]
    fn interleaved_filters_match_per_channel_ones() {
        let (w, h) = (29, 17);
        let mut rng = Lcg(9);
        let img = RgbImage::from_fn(w, h, |_, _| {
            Rgb([
                (rng.unit() * 255.0) as u8,
                (rng.unit() * 255.0) as u8,
                (rng.unit() * 255.0) as u8,
            ])
        });
        let (w, h) = (w as usize, h as usize);
        for polarity in [Polarity::Dark, Polarity::Light] {
            let found = Reticulate {
                polarity,
                density: 1.0,
                median_density: 1.0,
                cells: 1,
                periodicity: 0.0,
            };
            let out = remove(&img, &found);
            for c in 0..3 {
                let plane: Vec<u8> = img.pixels().map(|p| p.0[c]).collect();
                let filtered = match polarity {
                    Polarity::Dark => close(&plane, w, h, RADIUS),
                    Polarity::Light => open(&plane, w, h, RADIUS),
                };
                let want = median3(&filtered, w, h);
                let got: Vec<u8> = out.pixels().map(|p| p.0[c]).collect();
                assert_eq!(got, want, "channel {c}, {polarity:?}");
            }
        }
    }

    /// detect + remove on a 1 MP picture.
    #[test]
    #[ignore = "a timing, run by hand in release"]
    fn time_one_megapixel() {
        let mut img = portrait(1200, 860);
        draw(&mut img, &mesh(), [60.0; 3], 0.4);
        let t = std::time::Instant::now();
        let clean = portrait(1200, 860);
        let t_clean = std::time::Instant::now();
        let _ = detect(&clean);
        let clean_time = t_clean.elapsed();
        let _ = t;
        let t = std::time::Instant::now();
        let found = detect(&img).unwrap();
        let detect_time = t.elapsed();
        let t = std::time::Instant::now();
        let _ = remove(&img, &found);
        println!(
            "1 MP: detect {detect_time:?} (clean {clean_time:?}), remove {:?}",
            t.elapsed()
        );
    }

    #[test]
    fn fast_filters_match_the_naive_ones() {
        let (w, h) = (37, 23);
        let mut rng = Lcg(3);
        let src: Vec<u8> = (0..w * h).map(|_| (rng.unit() * 255.0) as u8).collect();
        let at = |x: i64, y: i64| {
            src[(y.clamp(0, h as i64 - 1) as usize) * w + x.clamp(0, w as i64 - 1) as usize]
        };
        let med = median3(&src, w, h);
        let dil = rank(&src, w, h, 2, true);
        for y in 0..h as i64 {
            for x in 0..w as i64 {
                let mut v: Vec<u8> = (-1..=1)
                    .flat_map(|dy| (-1..=1).map(move |dx| (dx, dy)))
                    .map(|(dx, dy)| at(x + dx, y + dy))
                    .collect();
                v.sort_unstable();
                assert_eq!(med[y as usize * w + x as usize], v[4]);
                let m = (-2..=2)
                    .flat_map(|dy| (-2..=2).map(move |dx| (dx, dy)))
                    .map(|(dx, dy)| at(x + dx, y + dy))
                    .max()
                    .unwrap();
                assert_eq!(dil[y as usize * w + x as usize], m);
            }
        }
    }

    /// Sweeps the rule's parameters over clean and watermarked shared photos.
    #[test]
    #[ignore = "reads ../shared/faces; a survey, run by hand"]
    fn sweep_rules() {
        let grids = [6usize, 8, 10];
        let levels = [6u8, 8, 12];
        let combos: Vec<(usize, u8)> = grids
            .iter()
            .flat_map(|&g| levels.iter().map(move |&l| (g, l)))
            .collect();
        let styles = [
            "ours-mesh",
            "ours-waves",
            "foreign",
            "faint",
            "light",
            "chip-mesh",
        ];
        let sets = shared_photos();
        // clean[i] = per combo cells; marked[style] = per image per combo cells.
        let mut clean: Vec<(String, Vec<Vec<Cell>>)> = Vec::new();
        let mut marked: Vec<Vec<Vec<Vec<Cell>>>> = vec![Vec::new(); styles.len()];
        let mut rng = Lcg(11);
        for (set, photos) in &sets {
            for (p, img) in photos {
                if let Some(t) = top_hats(img) {
                    clean.push((
                        format!("{set}:{}", p.display()),
                        combos.iter().map(|&(g, l)| cells(&t, g, l)).collect(),
                    ));
                }
                if set != "lfw_eastasian_dev" && set != "celeb5" && set != "fr_examples" {
                    continue;
                }
                for (k, style) in styles.iter().enumerate() {
                    let m = styled(img, style, &mut rng);
                    if let Some(t) = top_hats(&m) {
                        marked[k].push(combos.iter().map(|&(g, l)| cells(&t, g, l)).collect());
                    }
                }
            }
        }
        let stat = |m: Measurement| m.dark.density.max(m.light.density);
        let mut rows = Vec::new();
        for (ci, &(grid, level)) in combos.iter().enumerate() {
            for visible_from in [0u8, 90, 120] {
                for quantile in [0.03f32, 0.06, 0.1, 0.2] {
                    for min_judged in [0.1f32, 0.3] {
                        let rule = Rule {
                            grid,
                            level,
                            visible_from,
                            quantile,
                            min_judged,
                        };
                        let mut cs: Vec<(f32, &str)> = clean
                            .iter()
                            .map(|(n, c)| (stat(judge(&c[ci], &rule)), n.as_str()))
                            .collect();
                        cs.sort_by(|a, b| b.0.total_cmp(&a.0));
                        let thr = (cs[0].0 * 1.25).max(0.05);
                        let rates: Vec<f32> = marked
                            .iter()
                            .map(|imgs| {
                                let hit = imgs
                                    .iter()
                                    .filter(|c| stat(judge(&c[ci], &rule)) >= thr)
                                    .count();
                                hit as f32 / imgs.len().max(1) as f32
                            })
                            .collect();
                        let worst = rates.iter().copied().fold(1.0f32, f32::min);
                        let mean = rates.iter().sum::<f32>() / rates.len() as f32;
                        rows.push((worst, mean, format!(
                            "g{grid} L{level} vis{visible_from} q{quantile} mj{min_judged}: clean max {:.3} ({}) 2nd {:.3}; thr {thr:.3}; rates {:?}",
                            cs[0].0, cs[0].1, cs[1].0,
                            rates.iter().map(|r| (r * 1000.0).round() / 10.0).collect::<Vec<_>>()
                        )));
                    }
                }
            }
        }
        rows.sort_by(|a, b| (b.0 + b.1).total_cmp(&(a.0 + a.1)));
        for (w, m, r) in rows.iter().filter(|r| r.2.contains("vis0 ")).take(8) {
            println!("worst {w:.3} mean {m:.3}  {r}");
        }
        for (w, m, r) in rows.iter().take(5) {
            println!("worst {w:.3} mean {m:.3}  {r}");
        }
    }
}
