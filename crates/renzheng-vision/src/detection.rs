//! Detection around the network: the scaling rule of [`DetectionConfig`], running the
//! detector on one tiled pyramid, and which face goes first.

use image::RgbImage;
use ort::value::TensorRef;

use crate::config::{DetectionConfig, DetectionMode};
use crate::detector::{self, Detection, DetectorParams};
use crate::error::EngineError;
use crate::geometry::{Point, Rect};
use crate::runtime::SessionPool;
use crate::yunet::YunetFace;

/// Applies the scaling rule of `cfg` to `img`: `run` detects faces in the image it is
/// given (the network at its own scale); the boxes come back in `img`'s coordinates.
///
/// The rule takes the detector as a function so that it is one piece of logic whatever
/// runs the network, and can be checked without one.
pub(crate) fn detect_scaled<D: Rescale>(
    img: &RgbImage,
    cfg: &DetectionConfig,
    mut run: impl FnMut(&RgbImage) -> Result<Vec<D>, EngineError>,
) -> Result<Vec<D>, EngineError> {
    if cfg.mode == DetectionMode::Exact {
        return run(img);
    }
    let long = img.width().max(img.height());
    if long > cfg.max_side {
        let k = long.div_ceil(cfg.max_side.max(1));
        let small = box_reduce(img, k);
        return Ok(to_original(run(&small)?, 1.0 / f64::from(k)));
    }
    let dets = run(img)?;
    if dets.is_empty() && long <= cfg.upsample_max_side {
        let big = image::imageops::resize(
            img,
            img.width() * 2,
            img.height() * 2,
            image::imageops::FilterType::Triangle,
        );
        return Ok(to_original(run(&big)?, 2.0));
    }
    Ok(dets)
}

/// A detection that can be mapped back from a scaled copy of the photo.
pub(crate) trait Rescale {
    /// The detection in the original, when it was found in the original scaled by `scale`.
    fn to_original(self, scale: f64) -> Self;
}

impl Rescale for Detection {
    fn to_original(self, scale: f64) -> Self {
        // Pixel centres: original x ↦ scaled (x + 0.5)·s − 0.5, and back.
        let back = |v: i64| (((v as f64) + 0.5) / scale - 0.5).round() as i64;
        Detection {
            rect: Rect::new(
                back(self.rect.left),
                back(self.rect.top),
                back(self.rect.right),
                back(self.rect.bottom),
            ),
            score: self.score,
        }
    }
}

impl Rescale for YunetFace {
    fn to_original(self, scale: f64) -> Self {
        self.rescaled(scale as f32)
    }
}

/// Maps detections found in the original scaled by `scale` back to the original.
fn to_original<D: Rescale>(dets: Vec<D>, scale: f64) -> Vec<D> {
    if scale == 1.0 {
        return dets;
    }
    dets.into_iter().map(|d| d.to_original(scale)).collect()
}

/// Runs the detector network on `img` as it is (one tiled pyramid, one inference) and
/// decodes the score map into boxes of `img`.
pub(crate) fn run_detector(
    pool: &SessionPool,
    params: &DetectorParams,
    min_score: f32,
    img: &RgbImage,
) -> Result<Vec<Detection>, EngineError> {
    let pyramid = detector::build_pyramid(img, params);
    // Three unpadded 5×5 stride-2 convolutions need at least 29 px on each side; a
    // smaller tensor (a photo of a few pixels) cannot hold a face anyway.
    const MIN_TENSOR_SIDE: usize = 29;
    if pyramid.rects.is_empty() || pyramid.height.min(pyramid.width) < MIN_TENSOR_SIDE {
        return Ok(Vec::new());
    }
    let shape = [1usize, 3, pyramid.height, pyramid.width];
    pool.with(|session| -> Result<Vec<Detection>, EngineError> {
        let input = TensorRef::from_array_view((shape, pyramid.data.as_slice()))?;
        let outputs = session.run(ort::inputs!["image" => input])?;
        let (out_shape, scores) = outputs["scores"].try_extract_tensor::<f32>()?;
        if out_shape.len() != 4 || out_shape[0] != 1 || out_shape[1] != 1 {
            return Err(EngineError::BadOutput(format!(
                "detector output shape {out_shape:?}"
            )));
        }
        let (mh, mw) = (out_shape[2] as usize, out_shape[3] as usize);
        Ok(detector::decode_detections(
            scores, mh, mw, &pyramid, params, min_score,
        ))
    })
}

/// Puts the face (anything with a box: `rect` gives it) to verify first: the largest, and among faces of about the same size
/// (within 10 % of the largest area) the one nearest the centre — the subject of a photo
/// is framed, bystanders are not. The rest follow by decreasing size.
pub(crate) fn order_by_rect<T>(faces: &mut [T], rect: impl Fn(&T) -> Rect, (w, h): (u32, u32)) {
    faces.sort_by_key(|f| std::cmp::Reverse(rect(f).area()));
    let Some(largest) = faces.first().map(|f| rect(f).area() as f64) else {
        return;
    };
    let centre = Point::new(f64::from(w) / 2.0, f64::from(h) / 2.0);
    let best = faces
        .iter()
        .enumerate()
        .take_while(|(_, f)| rect(f).area() as f64 >= 0.9 * largest)
        .min_by(|(_, a), (_, b)| {
            rect(a)
                .center()
                .distance(centre)
                .total_cmp(&rect(b).center().distance(centre))
        })
        .map(|(i, _)| i)
        .unwrap_or(0);
    faces[..=best].rotate_right(1);
}

/// Shrinks by an integer factor, averaging each k×k block (a cheap, alias-free reduction).
fn box_reduce(img: &RgbImage, k: u32) -> RgbImage {
    if k <= 1 {
        return img.clone();
    }
    let (w, h) = (img.width() / k, img.height() / k);
    let (w, h) = (w.max(1), h.max(1));
    let area = k * k;
    RgbImage::from_fn(w, h, |x, y| {
        let mut acc = [0u32; 3];
        for dy in 0..k {
            for dx in 0..k {
                let (sx, sy) = (
                    (x * k + dx).min(img.width() - 1),
                    (y * k + dy).min(img.height() - 1),
                );
                let p = img.get_pixel(sx, sy);
                for c in 0..3 {
                    acc[c] += u32::from(p[c]);
                }
            }
        }
        image::Rgb([
            ((acc[0] + area / 2) / area) as u8,
            ((acc[1] + area / 2) / area) as u8,
            ((acc[2] + area / 2) / area) as u8,
        ])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::FaceBox;

    #[test]
    fn box_reduce_averages_blocks() {
        let img = RgbImage::from_fn(4, 2, |x, _| {
            image::Rgb([if x < 2 { 0 } else { 200 }, 10, 255])
        });
        let r = box_reduce(&img, 2);
        assert_eq!(r.dimensions(), (2, 1));
        assert_eq!(r.get_pixel(0, 0).0, [0, 10, 255]);
        assert_eq!(r.get_pixel(1, 0).0, [200, 10, 255]);
    }

    #[test]
    fn the_central_face_wins_among_equals() {
        let face = |l: i64, t: i64, side: i64| FaceBox {
            rect: Rect::new(l, t, l + side - 1, t + side - 1),
            score: 1.0,
        };
        // Two equal faces: the one nearer the centre of a 250×250 photo goes first.
        let mut faces = vec![face(164, 60, 80), face(92, 84, 80), face(0, 0, 40)];
        order_by_rect(&mut faces, |f| f.rect, (250, 250));
        assert_eq!(faces[0].rect.left, 92);
        assert_eq!(faces.len(), 3);
        // A clearly larger face wins even off-centre.
        let mut faces = vec![face(100, 100, 60), face(0, 0, 100)];
        order_by_rect(&mut faces, |f| f.rect, (250, 250));
        assert_eq!(faces[0].rect.left, 0);
    }

    /// What `detect_scaled` asked for: the sizes it ran the detector on.
    fn sizes_tried(
        (w, h): (u32, u32),
        cfg: &DetectionConfig,
        found: Option<Rect>,
    ) -> (Vec<(u32, u32)>, Vec<Detection>) {
        let img = RgbImage::new(w, h);
        let mut tried = Vec::new();
        let dets = detect_scaled(&img, cfg, |scaled| {
            tried.push(scaled.dimensions());
            Ok(found
                .map(|rect| Detection { rect, score: 1.0 })
                .into_iter()
                .collect())
        })
        .unwrap();
        (tried, dets)
    }

    #[test]
    fn large_photos_are_reduced_by_an_integer_factor_and_boxes_mapped_back() {
        let cfg = DetectionConfig::default();
        // 2000 px long side over max_side 800: k = 3, 666×400.
        let (tried, dets) = sizes_tried((2000, 1200), &cfg, Some(Rect::new(100, 50, 179, 129)));
        assert_eq!(tried, vec![(666, 400)]);
        // (v + 0.5)·3 − 0.5 rounded.
        assert_eq!(dets[0].rect, Rect::new(301, 151, 538, 388));
    }

    #[test]
    fn small_photos_are_enlarged_only_when_nothing_is_found() {
        let cfg = DetectionConfig::default();
        let (tried, _) = sizes_tried((300, 200), &cfg, Some(Rect::new(0, 0, 79, 79)));
        assert_eq!(tried, vec![(300, 200)]);
        let (tried, dets) = sizes_tried((300, 200), &cfg, None);
        assert_eq!(tried, vec![(300, 200), (600, 400)]);
        assert!(dets.is_empty());
        // Between upsample_max_side and max_side: one try at its own size.
        let (tried, _) = sizes_tried((700, 500), &cfg, None);
        assert_eq!(tried, vec![(700, 500)]);
    }

    #[test]
    fn exact_mode_never_scales() {
        let cfg = DetectionConfig {
            mode: DetectionMode::Exact,
            ..DetectionConfig::default()
        };
        let (tried, _) = sizes_tried((2000, 1200), &cfg, None);
        assert_eq!(tried, vec![(2000, 1200)]);
        let (tried, _) = sizes_tried((100, 100), &cfg, None);
        assert_eq!(tried, vec![(100, 100)]);
    }
}
