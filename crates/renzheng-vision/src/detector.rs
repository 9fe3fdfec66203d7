//! The MMOD CNN face detector: the tiled image pyramid in front of the network and the
//! decoding and non-maximum suppression behind it.
//!
//! The network itself (`detector.onnx`) is fully convolutional; everything dlib does outside
//! the graph lives here and follows dlib's arithmetic exactly, because the parity tests hold
//! boxes to within 2 px of dlib's:
//! - the pyramid is `pyramid_down<6>` (each level ⌊5/6·n⌋ until the height drops below 5),
//!   every level resized bilinearly ("align corners") from the previous *normalised* level and
//!   packed into one image by [`tile_pyramid`];
//! - a score cell maps back through the tile it falls in, then up that tile's pyramid level;
//! - suppression compares the overlap with the *enclosing box* of both rectangles, not IoU.

use image::RgbImage;

use crate::geometry::{nearest_rect, DRect, Point, Rect};

/// Parameters of the detector read from the model pack.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DetectorParams {
    /// Per-channel mean subtracted from pixels (R, G, B).
    pub input_avg_rgb: [f32; 3],
    /// Divisor applied after the mean (dlib uses 256, not 255).
    pub input_scale: f32,
    /// N of `pyramid_down<N>`: each level is (N−1)/N of the previous.
    pub pyramid_downsample: u32,
    /// Gap between pyramid tiles, pixels.
    pub pyramid_padding: u32,
    /// Border around the whole tiled image, pixels.
    pub pyramid_outer_padding: u32,
    /// Sliding-window size in tensor pixels (width, height).
    pub window: (f64, f64),
    /// Score-map cell → tensor pixel: `p = stride·cell + offset`.
    pub score_map_stride: f64,
    /// See `score_map_stride`.
    pub score_map_offset: f64,
    /// NMS: suppress when overlap / area of enclosing box exceeds this.
    pub nms_iou_thresh: f64,
    /// NMS: suppress when overlap covers more than this fraction of either box.
    pub nms_percent_covered_thresh: f64,
}

impl Default for DetectorParams {
    /// dlib's `mmod_human_face_detector.dat` values (checked against the pack at load).
    fn default() -> Self {
        Self {
            input_avg_rgb: [122.782, 117.001, 104.298],
            input_scale: 256.0,
            pyramid_downsample: 6,
            pyramid_padding: 10,
            pyramid_outer_padding: 11,
            window: (80.0, 80.0),
            score_map_stride: 8.0,
            score_map_offset: 14.0,
            nms_iou_thresh: 0.338_28,
            nms_percent_covered_thresh: 1.0,
        }
    }
}

/// One detection in the coordinates of the image given to the detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// The box, inclusive, as dlib rounds it (may extend past the image).
    pub rect: Rect,
    /// Raw MMOD score; positive means "face".
    pub score: f32,
}

/// The normalised, tiled pyramid: the tensor the network sees and where each level sits.
#[derive(Debug, Clone)]
pub struct TiledPyramid {
    /// Planar R, G, B, each `height × width`.
    pub data: Vec<f32>,
    /// Tensor height.
    pub height: usize,
    /// Tensor width.
    pub width: usize,
    /// Where each pyramid level sits inside the tensor, level 0 first.
    pub rects: Vec<Rect>,
}

/// Where the pyramid levels of an `nr × nc` image go (dlib's tiled-pyramid layout).
///
/// Levels run down the first column until the next one fits beside the column; the rest
/// climb back up along the right edge. Returns the level rectangles and the tensor size.
pub fn tile_pyramid(
    nr: i64,
    nc: i64,
    downsample: u32,
    padding: i64,
    outer: i64,
) -> (Vec<Rect>, i64, i64) {
    if nr * nc == 0 {
        return (Vec::new(), 0, 0);
    }
    let rate = (f64::from(downsample) - 1.0) / f64::from(downsample);
    let mut sizes = vec![(nr, nc)];
    let (mut r, mut c) = (nr, nc);
    loop {
        r = (rate * r as f64).floor() as i64;
        c = (rate * c as f64).floor() as i64;
        if r * c == 0 || r < 5 {
            break;
        }
        sizes.push((r, c));
    }

    let total_height: i64 = sizes.iter().map(|(h, _)| h + padding).sum::<i64>() - 2 * padding;
    let (first_h, first_w) = sizes[0];
    let mut height = 0;
    let mut prev_width = 0;
    for &(h, w) in &sizes {
        // Stop the first column once the next level fits beside the previous one and the
        // column is at least half of everything.
        if w <= first_w - prev_width - padding && (height - first_h) * 2 >= total_height - first_h {
            break;
        }
        height += h + padding;
        prev_width = w;
    }
    height -= padding;
    let width = first_w;
    let out_nr = height + 2 * outer;
    let out_nc = width + 2 * outer;

    let mut rects: Vec<Rect> = Vec::with_capacity(sizes.len());
    let mut y = outer;
    let mut i = 0;
    while y < height + outer && i < sizes.len() {
        let (h, w) = sizes[i];
        rects.push(Rect::new(outer, y, outer + w - 1, y + h - 1));
        y += h + padding;
        i += 1;
    }
    y -= padding;
    while i < sizes.len() {
        let (h, w) = sizes[i];
        // Bottom-right corner pinned to the right edge, climbing upwards.
        let (br_x, br_y) = (outer + width - 1, y - 1);
        let rect = Rect::new(br_x - (w - 1), br_y - (h - 1), br_x, br_y);
        if !rects[0].intersect(&rect).is_empty() {
            break;
        }
        rects.push(rect);
        y -= h + padding;
        i += 1;
    }
    (rects, out_nr, out_nc)
}

/// Builds the network input for `img`.
pub fn build_pyramid(img: &RgbImage, params: &DetectorParams) -> TiledPyramid {
    let (nc, nr) = (i64::from(img.width()), i64::from(img.height()));
    let (rects, out_nr, out_nc) = tile_pyramid(
        nr,
        nc,
        params.pyramid_downsample,
        i64::from(params.pyramid_padding),
        i64::from(params.pyramid_outer_padding),
    );
    let (height, width) = (out_nr as usize, out_nc as usize);
    let plane = height * width;
    let mut data = vec![0f32; 3 * plane];
    if rects.is_empty() {
        return TiledPyramid {
            data,
            height,
            width,
            rects,
        };
    }
    let r0 = rects[0];
    for (x, y, px) in img.enumerate_pixels() {
        let idx = (r0.top as usize + y as usize) * width + r0.left as usize + x as usize;
        for c in 0..3 {
            data[c * plane + idx] =
                (f32::from(px[c]) - params.input_avg_rgb[c]) / params.input_scale;
        }
    }
    for lvl in 1..rects.len() {
        for c in 0..3 {
            let chan = &mut data[c * plane..(c + 1) * plane];
            resize_bilinear_in_place(chan, width, rects[lvl - 1], rects[lvl]);
        }
    }
    TiledPyramid {
        data,
        height,
        width,
        rects,
    }
}

/// Resizes the `src` region of a plane into the `dst` region of the same plane, bilinear
/// with corners aligned (dlib's `resize_image` on float images). The regions never overlap.
fn resize_bilinear_in_place(plane: &mut [f32], stride: usize, src: Rect, dst: Rect) {
    let (snr, snc) = (src.height() as usize, src.width() as usize);
    let (dnr, dnc) = (dst.height() as usize, dst.width() as usize);
    let x_scale = (snc as f64 - 1.0) / (dnc.max(2) as f64 - 1.0);
    let y_scale = (snr as f64 - 1.0) / (dnr.max(2) as f64 - 1.0);
    let at = |r: usize, c: usize| (src.top as usize + r) * stride + src.left as usize + c;
    // Columns' weights are the same on every row: compute them once.
    let cols: Vec<(usize, usize, f32)> = (0..dnc)
        .map(|c| {
            let x = c as f64 * x_scale;
            let left = x.floor() as usize;
            let right = (left + 1).min(snc - 1);
            (left, right, (x - left as f64) as f32)
        })
        .collect();
    for r in 0..dnr {
        let y = r as f64 * y_scale;
        let top = y.floor() as usize;
        let bottom = (top + 1).min(snr - 1);
        let tb = (y - top as f64) as f32;
        let out_row = (dst.top as usize + r) * stride + dst.left as usize;
        for (c, &(left, right, lr)) in cols.iter().enumerate() {
            let tl = plane[at(top, left)];
            let tr = plane[at(top, right)];
            let bl = plane[at(bottom, left)];
            let br = plane[at(bottom, right)];
            plane[out_row + c] = (1.0 - tb) * (1.0 - lr) * tl
                + (1.0 - tb) * lr * tr
                + tb * (1.0 - lr) * bl
                + tb * lr * br;
        }
    }
}

/// Turns the network's score map into boxes in image coordinates, best first, after
/// non-maximum suppression. Cells scoring `<= threshold` are ignored.
pub fn decode_detections(
    scores: &[f32],
    map_height: usize,
    map_width: usize,
    pyramid: &TiledPyramid,
    params: &DetectorParams,
    threshold: f32,
) -> Vec<Detection> {
    let mut candidates: Vec<(DRect, f32)> = Vec::new();
    for r in 0..map_height {
        for c in 0..map_width {
            let score = scores[r * map_width + c];
            if score <= threshold {
                continue;
            }
            let p = Point::new(
                params.score_map_stride * c as f64 + params.score_map_offset,
                params.score_map_stride * r as f64 + params.score_map_offset,
            );
            let rect = DRect::centered(p, params.window.0, params.window.1);
            candidates.push((tensor_to_image(rect, &pyramid.rects, params), score));
        }
    }
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1));

    let mut kept: Vec<Detection> = Vec::new();
    for (rect, score) in candidates {
        let rect = rect.round();
        if kept.iter().any(|k| overlaps_nms(&k.rect, &rect, params)) {
            continue;
        }
        kept.push(Detection { rect, score });
    }
    kept
}

/// Maps a rectangle in tensor space back to the original image: find the pyramid tile its
/// centre falls in (or is nearest to), then undo that many `pyramid_down` steps.
fn tensor_to_image(rect: DRect, rects: &[Rect], params: &DetectorParams) -> DRect {
    let (cx, cy) = rect.center().round();
    let level = nearest_rect(rects, cx, cy);
    let origin = rects[level];
    let n = f64::from(params.pyramid_downsample);
    let ratio = n / (n - 1.0);
    rect.map_corners(|p| {
        let mut q = Point::new(p.x - origin.left as f64, p.y - origin.top as f64);
        for _ in 0..level {
            q = Point::new(q.x * ratio + 0.3, q.y * ratio + 0.3);
        }
        q
    })
}

/// dlib's `test_box_overlap`: overlap against the enclosing box, or coverage of either box.
pub fn overlaps_nms(a: &Rect, b: &Rect, params: &DetectorParams) -> bool {
    let inner = a.intersect(b).area() as f64;
    if inner == 0.0 {
        return false;
    }
    let outer = a.union(b).area() as f64;
    inner / outer > params.nms_iou_thresh
        || inner / a.area() as f64 > params.nms_percent_covered_thresh
        || inner / b.area() as f64 > params.nms_percent_covered_thresh
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyramid_levels_shrink_by_five_sixths_and_stay_inside() {
        let (rects, nr, nc) = tile_pyramid(250, 250, 6, 10, 11);
        assert_eq!(rects[0], Rect::new(11, 11, 260, 260));
        assert_eq!((rects[1].height(), rects[1].width()), (208, 208));
        assert_eq!((rects[2].height(), rects[2].width()), (173, 173));
        let whole = Rect::new(0, 0, nc - 1, nr - 1);
        for (i, r) in rects.iter().enumerate() {
            assert_eq!(whole.intersect(r), *r, "level {i} outside the tensor");
            for other in &rects[i + 1..] {
                assert!(r.intersect(other).is_empty(), "tiles overlap");
            }
        }
        assert_eq!(nc, 250 + 22);
        // The last level is the first whose next level would be under 5 rows.
        let last = rects.last().unwrap();
        assert!(last.height() >= 5 && (last.height() as f64 * 5.0 / 6.0).floor() < 5.0);
    }

    #[test]
    fn tiny_images_have_a_single_level() {
        let (rects, nr, nc) = tile_pyramid(5, 5, 6, 10, 11);
        assert_eq!(rects.len(), 1);
        assert_eq!((nr, nc), (27, 27));
        assert_eq!(tile_pyramid(0, 10, 6, 10, 11).0.len(), 0);
    }

    #[test]
    fn bilinear_resize_keeps_corners_and_linear_ramps() {
        let stride = 20;
        let mut plane = vec![0f32; stride * 20];
        let src = Rect::new(0, 0, 9, 9);
        for r in 0..10 {
            for c in 0..10 {
                plane[r * stride + c] = c as f32 + 10.0 * r as f32;
            }
        }
        let dst = Rect::new(12, 0, 15, 3);
        resize_bilinear_in_place(&mut plane, stride, src, dst);
        assert_eq!(plane[12], 0.0);
        assert!((plane[3 * stride + 15] - 99.0).abs() < 1e-4);
        // A linear ramp stays linear: the middle column is at 3.0 (= 9/3).
        assert!((plane[13] - 3.0).abs() < 1e-4);
    }

    #[test]
    fn nms_uses_enclosing_box_not_iou() {
        let p = DetectorParams::default();
        let a = Rect::new(0, 0, 99, 99);
        // Shifted by 40: intersection 60×100 = 6000, enclosing 140×100 = 14000 → 0.43 > 0.338.
        assert!(overlaps_nms(&a, &Rect::new(40, 0, 139, 99), &p));
        // Shifted by 60: 4000 / 16000 = 0.25 → kept.
        assert!(!overlaps_nms(&a, &Rect::new(60, 0, 159, 99), &p));
        assert!(!overlaps_nms(&a, &Rect::new(200, 200, 299, 299), &p));
    }

    #[test]
    fn decoding_maps_cells_through_pyramid_levels() {
        let params = DetectorParams::default();
        let img = RgbImage::new(250, 250);
        let pyr = build_pyramid(&img, &params);
        // One hot cell at (c, r) = (10, 10) → tensor point (94, 94), inside level 0 at
        // offset (83, 83); box 83 ± 39.5 → [43.5, 122.5] → rounded 44..123 (lround of .5 is up).
        let (mh, mw) = (40, 40);
        let mut scores = vec![-1.0f32; mh * mw];
        scores[10 * mw + 10] = 2.0;
        scores[10 * mw + 11] = 1.0; // suppressed: heavy overlap with the first
        let dets = decode_detections(&scores, mh, mw, &pyr, &params, 0.0);
        assert_eq!(dets.len(), 1);
        assert_eq!(dets[0].rect, Rect::new(44, 44, 123, 123));
        assert_eq!(dets[0].score, 2.0);
    }
}
