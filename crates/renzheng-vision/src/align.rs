//! Template alignment for recognizers trained on aligned crops (SFace: the 112×112 ArcFace
//! template): the least-squares similarity transform from the five landmarks to the
//! template, and the bilinear warp that cuts the crop — as OpenCV's
//! `FaceRecognizerSF::alignCrop` does (`warpAffine`, `INTER_LINEAR`, constant 0 border).
//!
//! The warp follows OpenCV 5's `warpAffine` for 8-bit images: the inverse map in single
//! precision, bilinear weights in single precision, rounded to nearest (ties to even).
//! Crops are within one grey level of OpenCV's (the parity tests check it; OpenCV 4's
//! fixed-point variant differs from both by up to a few levels on sharp patterns).

use image::RgbImage;

use crate::geometry::{Affine, Point, Rect};

/// The similarity transform taking `landmarks` (photo pixels) to `template` (crop pixels).
pub(crate) fn estimate(landmarks: &[Point], template: &[[f64; 2]]) -> Affine {
    let to: Vec<Point> = template.iter().map(|p| Point::new(p[0], p[1])).collect();
    Affine::similarity(landmarks, &to)
}

/// Cuts the `size`×`size` crop: every crop pixel samples the photo at the inverse of
/// `photo_to_crop`; pixels outside the photo count as black.
pub(crate) fn warp(img: &RgbImage, photo_to_crop: &Affine, size: u32) -> RgbImage {
    let mut out = RgbImage::new(size, size);
    let Some(inv) = photo_to_crop.inverse() else {
        return out;
    };
    let m = [
        [inv.m[0][0] as f32, inv.m[0][1] as f32, inv.t[0] as f32],
        [inv.m[1][0] as f32, inv.m[1][1] as f32, inv.t[1] as f32],
    ];
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let raw = img.as_raw();
    let pixel = |x: i64, y: i64, c: usize| -> f32 {
        if x < 0 || y < 0 || x >= w || y >= h {
            0.0
        } else {
            f32::from(raw[((y * w + x) * 3) as usize + c])
        }
    };
    for y in 0..size {
        let yf = y as f32;
        for x in 0..size {
            let xf = x as f32;
            let sx = m[0][0] * xf + m[0][1] * yf + m[0][2];
            let sy = m[1][0] * xf + m[1][1] * yf + m[1][2];
            if !(sx.is_finite() && sy.is_finite()) {
                continue;
            }
            let (x0, y0) = (sx.floor(), sy.floor());
            let (ax, ay) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            if x0 >= w || x0 + 1 < 0 || y0 >= h || y0 + 1 < 0 {
                continue; // wholly outside: black
            }
            let mut px = [0u8; 3];
            for (c, v) in px.iter_mut().enumerate() {
                let top = pixel(x0, y0, c) * (1.0 - ax) + pixel(x0 + 1, y0, c) * ax;
                let bottom = pixel(x0, y0 + 1, c) * (1.0 - ax) + pixel(x0 + 1, y0 + 1, c) * ax;
                let value = top * (1.0 - ay) + bottom * ay;
                *v = value.round_ties_even().clamp(0.0, 255.0) as u8;
            }
            out.put_pixel(x, y, image::Rgb(px));
        }
    }
    out
}

/// The bounding box, in photo pixels, of the area the crop for `landmarks` samples: where
/// the face the recognizer sees lies, whether or not the photo contains all of it.
pub(crate) fn footprint(landmarks: &[Point], template: &[[f64; 2]], size: u32) -> Option<Rect> {
    let inv = estimate(landmarks, template).inverse()?;
    let s = f64::from(size);
    let corners =
        [(0.0, 0.0), (s, 0.0), (0.0, s), (s, s)].map(|(x, y)| inv.apply(Point::new(x, y)));
    let fold = |f: fn(f64, f64) -> f64, pick: fn(&Point) -> f64| {
        corners.iter().map(pick).reduce(f).unwrap_or(0.0)
    };
    let (l, t) = (fold(f64::min, |p| p.x), fold(f64::min, |p| p.y));
    let (r, b) = (fold(f64::max, |p| p.x), fold(f64::max, |p| p.y));
    if !(l.is_finite() && t.is_finite() && r.is_finite() && b.is_finite()) {
        return None;
    }
    Some(Rect::new(
        l.round() as i64,
        t.round() as i64,
        r.round() as i64 - 1,
        b.round() as i64 - 1,
    ))
}

/// The aligned crop for `landmarks`.
pub(crate) fn crop(
    img: &RgbImage,
    landmarks: &[Point],
    template: &[[f64; 2]],
    size: u32,
) -> RgbImage {
    warp(img, &estimate(landmarks, template), size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_copies_pixels() {
        let img = RgbImage::from_fn(8, 8, |x, y| image::Rgb([x as u8 * 30, y as u8 * 30, 7]));
        let id = Affine {
            m: [[1.0, 0.0], [0.0, 1.0]],
            t: [0.0, 0.0],
        };
        assert_eq!(warp(&img, &id, 8), img);
    }

    #[test]
    fn half_pixel_shifts_average_and_the_outside_is_black() {
        let img = RgbImage::from_fn(4, 1, |x, _| {
            image::Rgb([if x % 2 == 0 { 0 } else { 100 }, 0, 0])
        });
        // Crop pixel x samples photo x + 0.5.
        let shift = Affine {
            m: [[1.0, 0.0], [0.0, 1.0]],
            t: [-0.5, 0.0],
        };
        let out = warp(&img, &shift, 4);
        assert_eq!(out.get_pixel(0, 0)[0], 50);
        assert_eq!(out.get_pixel(1, 0)[0], 50);
        // The last column mixes the last pixel with the black border.
        assert_eq!(out.get_pixel(3, 0)[0], 50);
        // Row 1 samples y = 1, outside the one-row photo, mixed with nothing: black.
        assert_eq!(out.get_pixel(0, 1)[0], 0);
    }

    #[test]
    fn the_footprint_is_the_crop_mapped_back() {
        let template = [[10.0, 10.0], [30.0, 10.0], [20.0, 25.0]];
        // The photo's face is the template twice as large, shifted by (100, 50).
        let pts: Vec<Point> = template
            .iter()
            .map(|p| Point::new(2.0 * p[0] + 100.0, 2.0 * p[1] + 50.0))
            .collect();
        assert_eq!(
            footprint(&pts, &template, 40),
            Some(Rect::new(100, 50, 179, 129))
        );
    }

    #[test]
    fn landmarks_on_the_template_give_the_identity() {
        let template = [
            [38.2946, 51.6963],
            [73.5318, 51.5014],
            [56.0252, 71.7366],
            [41.5493, 92.3655],
            [70.7299, 92.2041],
        ];
        let pts: Vec<Point> = template
            .iter()
            .map(|p| Point::new(p[0] * 2.0 + 5.0, p[1] * 2.0 - 3.0))
            .collect();
        let t = estimate(&pts, &template);
        for (p, q) in pts.iter().zip(&template) {
            let m = t.apply(*p);
            assert!((m.x - q[0]).abs() < 1e-9 && (m.y - q[1]).abs() < 1e-9);
        }
    }
}
