//! Face alignment: the 150×150 "face chip" the recognition network was trained on.
//!
//! Reproduces dlib's `get_face_chip_details` + `extract_image_chips` because the network's
//! embeddings are only comparable with dlib's when the chip is pixel-identical:
//! - a similarity transform maps five template points (padding 0.25) onto the landmarks;
//! - the chip keeps only a rotated rectangle, from which the sampling transform is rebuilt;
//! - faces much larger than the chip are first shrunk with dlib's 5-tap Gaussian
//!   `pyramid_down<2>` (otherwise bilinear sampling would alias);
//! - samples are bilinear, truncated to u8; a sample whose 2×2 neighbourhood leaves the
//!   source crop reads as black.

use image::{Rgb, RgbImage};

use crate::geometry::{rotate_point, Affine, DRect, Point, Rect};

/// dlib's mean 5-point face, in a unit square: outer/inner corner of one eye, then the other,
/// then the base of the nose.
const TEMPLATE: [(f64, f64); 5] = [
    (0.859_567_459_599_2, 0.213_498_153_801_4),
    (0.646_060_476_410_4, 0.228_967_438_767_7),
    (0.120_575_062_078_9, 0.213_727_452_684_8),
    (0.334_085_061_371_2, 0.229_064_240_324_2),
    (0.490_112_313_567_9, 0.627_797_531_647_5),
];

/// Where a chip is cut from: a rectangle in the image, rotated by `angle` about its centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChipDetails {
    /// The chip's footprint before rotation.
    pub rect: DRect,
    /// Rotation in radians.
    pub angle: f64,
    /// Chip side in pixels.
    pub size: usize,
}

/// The chip that aligns five landmarks onto dlib's template.
pub fn face_chip_details(landmarks: &[Point], size: usize, padding: f64) -> ChipDetails {
    let s = size as f64;
    let from: Vec<Point> = TEMPLATE
        .iter()
        .map(|&(x, y)| {
            Point::new(
                (padding + x) / (2.0 * padding + 1.0) * s,
                (padding + y) / (2.0 * padding + 1.0) * s,
            )
        })
        .collect();
    let tf = Affine::similarity(&from, &landmarks[..5]);
    // Scale and rotation are read off the image of the unit x vector.
    let (px, py) = (tf.m[0][0], tf.m[1][0]);
    let angle = py.atan2(px);
    let scale = (px * px + py * py).sqrt();
    let centre = tf.apply(Point::new(s / 2.0, s / 2.0));
    ChipDetails {
        rect: DRect::centered(centre, s * scale, s * scale),
        angle,
        size,
    }
}

/// dlib's `pyramid_down<2>` point map.
fn down2(p: Point) -> Point {
    Point::new(p.x / 2.0 - 1.25, p.y / 2.0 - 0.75)
}

/// Cuts the chip out of `img`.
pub fn extract_chip(img: &RgbImage, d: &ChipDetails) -> RgbImage {
    let size = d.size;
    let area_limit = (size * size) as f64;

    // How many halvings keep the source footprint comparable to the chip.
    let mut depth = 0usize;
    let mut grow = 2.0;
    let mut r = d.rect.map_corners(down2);
    while r.area() > area_limit {
        r = r.map_corners(down2);
        depth += 1;
        grow = grow * 2.0 + 2.0;
    }

    // Crop to the rotated footprint (plus a margin for the filters) before any work.
    let centre = d.rect.center();
    let rot = d.rect.corners().iter().fold(DRect::empty(), |acc, &c| {
        acc.including(rotate_point(centre, c, d.angle))
    });
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let grown = DRect::new(
        rot.left - grow,
        rot.top - grow,
        rot.right + grow,
        rot.bottom + grow,
    );
    let clipped = DRect::new(
        grown.left.max(0.0),
        grown.top.max(0.0),
        grown.right.min((w - 1) as f64),
        grown.bottom.min((h - 1) as f64),
    );
    let mut chip = RgbImage::new(size as u32, size as u32);
    if clipped.is_empty() {
        return chip;
    }
    let bbox = clipped.round().intersect(&Rect::from_size(w, h));
    if bbox.is_empty() {
        return chip;
    }
    let crop = image::imageops::crop_imm(
        img,
        bbox.left as u32,
        bbox.top as u32,
        bbox.width() as u32,
        bbox.height() as u32,
    )
    .to_image();

    // Pick the pyramid level and express the footprint in its coordinates.
    let mut rect = DRect::new(
        d.rect.left - bbox.left as f64,
        d.rect.top - bbox.top as f64,
        d.rect.right - bbox.left as f64,
        d.rect.bottom - bbox.top as f64,
    );
    let mut level = 0usize;
    while rect.map_corners(down2).area() > area_limit {
        level += 1;
        rect = rect.map_corners(down2);
    }
    let mut source = crop;
    for _ in 0..level.min(depth) {
        source = pyramid_down2(&source);
    }

    let c = rect.center();
    let to = [
        rotate_point(c, Point::new(rect.left, rect.top), d.angle),
        rotate_point(c, Point::new(rect.right, rect.top), d.angle),
        rotate_point(c, Point::new(rect.left, rect.bottom), d.angle),
    ];
    let last = (size - 1) as f64;
    let from = [
        Point::new(0.0, 0.0),
        Point::new(last, 0.0),
        Point::new(0.0, last),
    ];
    let Some(tf) = Affine::from_three(from, to) else {
        return chip;
    };
    sample_bilinear(&source, &tf, &mut chip);
    chip
}

fn sample_bilinear(src: &RgbImage, tf: &Affine, out: &mut RgbImage) {
    let (nc, nr) = (i64::from(src.width()), i64::from(src.height()));
    for (c, r, px) in out.enumerate_pixels_mut() {
        let p = tf.apply(Point::new(f64::from(c), f64::from(r)));
        let (left, top) = (p.x.floor() as i64, p.y.floor() as i64);
        if !(left >= 0 && top >= 0 && left + 1 < nc && top + 1 < nr) {
            *px = Rgb([0, 0, 0]);
            continue;
        }
        let lr = p.x - left as f64;
        let tb = p.y - top as f64;
        let get = |x: i64, y: i64| src.get_pixel(x as u32, y as u32);
        let (tl, tr, bl, br) = (
            get(left, top),
            get(left + 1, top),
            get(left, top + 1),
            get(left + 1, top + 1),
        );
        for k in 0..3 {
            let v = (1.0 - tb) * ((1.0 - lr) * f64::from(tl[k]) + lr * f64::from(tr[k]))
                + tb * ((1.0 - lr) * f64::from(bl[k]) + lr * f64::from(br[k]));
            px[k] = v as u8;
        }
    }
}

/// dlib's `pyramid_down<2>` on RGB: separable [1 4 6 4 1] filter, every other pixel, integer
/// arithmetic with a final `/256`. Output is `(n − 3) / 2` on each side.
pub fn pyramid_down2(img: &RgbImage) -> RgbImage {
    let (nc, nr) = (img.width() as usize, img.height() as usize);
    if nr <= 8 || nc <= 8 {
        return RgbImage::new(0, 0);
    }
    let tw = (nc - 3) / 2;
    let mut temp = vec![[0u32; 3]; nr * tw];
    for r in 0..nr {
        for c in 0..tw {
            let oc = 2 * c;
            let mut acc = [0u32; 3];
            for (k, wgt) in [1u32, 4, 6, 4, 1].iter().enumerate() {
                let p = img.get_pixel((oc + k) as u32, r as u32);
                for ch in 0..3 {
                    acc[ch] += wgt * u32::from(p[ch]);
                }
            }
            temp[r * tw + c] = acc;
        }
    }
    let oh = (nr - 3) / 2;
    let mut out = RgbImage::new(tw as u32, oh as u32);
    let mut dr = 0;
    let mut r = 2;
    while r + 2 < nr && dr < oh {
        for c in 0..tw {
            let mut acc = [0u32; 3];
            for (k, wgt) in [1u32, 4, 6, 4, 1].iter().enumerate() {
                let t = temp[(r + k - 2) * tw + c];
                for ch in 0..3 {
                    acc[ch] += wgt * t[ch];
                }
            }
            out.put_pixel(
                c as u32,
                dr as u32,
                Rgb([
                    (acc[0] / 256) as u8,
                    (acc[1] / 256) as u8,
                    (acc[2] / 256) as u8,
                ]),
            );
        }
        dr += 1;
        r += 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template_landmarks(scale: f64, dx: f64, dy: f64) -> Vec<Point> {
        TEMPLATE
            .iter()
            .map(|&(x, y)| {
                Point::new(
                    (0.25 + x) / 1.5 * 150.0 * scale + dx,
                    (0.25 + y) / 1.5 * 150.0 * scale + dy,
                )
            })
            .collect()
    }

    #[test]
    fn template_points_give_an_axis_aligned_chip() {
        let d = face_chip_details(&template_landmarks(1.0, 0.0, 0.0), 150, 0.25);
        assert!(d.angle.abs() < 1e-9);
        assert!((d.rect.width() - 150.0).abs() < 1e-6);
        assert!((d.rect.center().x - 75.0).abs() < 1e-6);
    }

    #[test]
    fn scaled_and_shifted_landmarks_scale_the_footprint() {
        let d = face_chip_details(&template_landmarks(2.0, 30.0, 40.0), 150, 0.25);
        assert!((d.rect.width() - 300.0).abs() < 1e-6, "{:?}", d.rect);
        assert!((d.rect.center().x - 180.0).abs() < 1e-6);
    }

    #[test]
    fn chip_of_identity_footprint_copies_pixels() {
        let mut img = RgbImage::new(200, 200);
        for (x, y, p) in img.enumerate_pixels_mut() {
            *p = Rgb([x as u8, y as u8, 7]);
        }
        let d = ChipDetails {
            rect: DRect::new(10.0, 20.0, 159.0, 169.0),
            angle: 0.0,
            size: 150,
        };
        let chip = extract_chip(&img, &d);
        assert_eq!(chip.get_pixel(0, 0).0, [10, 20, 7]);
        assert_eq!(chip.get_pixel(149, 149).0, [159, 169, 7]);
    }

    #[test]
    fn footprint_outside_the_image_gives_black() {
        let img = RgbImage::from_pixel(50, 50, Rgb([200, 200, 200]));
        let d = ChipDetails {
            rect: DRect::new(1000.0, 1000.0, 1149.0, 1149.0),
            angle: 0.3,
            size: 150,
        };
        assert!(extract_chip(&img, &d).pixels().all(|p| p.0 == [0, 0, 0]));
    }

    #[test]
    fn pyramid_down2_sizes_and_flat_colour() {
        let img = RgbImage::from_pixel(41, 20, Rgb([100, 50, 255]));
        let down = pyramid_down2(&img);
        assert_eq!(down.dimensions(), (19, 8));
        // 16·16·v / 256 = v exactly for a flat image.
        assert!(down.pixels().all(|p| p.0 == [100, 50, 255]));
        assert_eq!(pyramid_down2(&RgbImage::new(8, 100)).dimensions(), (0, 0));
    }

    #[test]
    fn large_faces_are_shrunk_before_sampling() {
        // A 600-px footprint needs two halvings; the chip must still be the flat colour
        // inside (no black from a wrong level offset).
        let img = RgbImage::from_pixel(800, 800, Rgb([90, 90, 90]));
        let d = ChipDetails {
            rect: DRect::new(100.0, 100.0, 699.0, 699.0),
            angle: 0.1,
            size: 150,
        };
        let chip = extract_chip(&img, &d);
        assert_eq!(chip.get_pixel(75, 75).0, [90, 90, 90]);
        assert_eq!(chip.get_pixel(5, 5).0, [90, 90, 90]);
    }
}
