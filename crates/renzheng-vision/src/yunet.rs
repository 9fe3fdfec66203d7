//! YuNet (OpenCV Zoo, 2023mar) around the network: the input tensor, the decoding of its
//! anchor-free outputs at strides 8, 16 and 32, and the suppression — the same answers as
//! OpenCV's `FaceDetectorYN`.
//!
//! OpenCV pads the photo with zeros on the right and bottom to a multiple of 32, feeds it
//! as BGR 0..255 (no mean, no scale), and for every grid cell of every stride computes
//! `score = sqrt(clamp(cls)·clamp(obj))`; a cell at column `c`, row `r` with outputs
//! `(dx, dy, dw, dh)` is a box centred on `((c + dx)·s, (r + dy)·s)` of size
//! `(exp(dw)·s, exp(dh)·s)`, and landmark `k` is at `((kx + c)·s, (ky + r)·s)`. Boxes under
//! the score threshold are dropped; the rest go through OpenCV's `NMSBoxes` on boxes
//! truncated to integers (IoU with `width·height` areas, greedy by score, stable order).

use image::RgbImage;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::geometry::{Point, Rect};
use crate::runtime::SessionPool;

/// The decoding parameters, as the manifest stores them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YunetParams {
    /// Input tensor name.
    pub input: String,
    /// Channel order the network was trained with (`bgr`).
    pub channel_order: String,
    /// Strides of the three output levels.
    pub strides: Vec<u32>,
    /// The input is zero-padded on the right and bottom to a multiple of this.
    pub pad_divisor: u32,
    /// Faces scoring below this are dropped (OpenCV's `score_threshold`).
    pub score_threshold: f32,
    /// IoU above which the lower-scoring of two boxes is suppressed.
    pub nms_threshold: f32,
    /// At most this many boxes enter the suppression (highest scores first).
    pub top_k: usize,
}

impl Default for YunetParams {
    /// OpenCV Zoo's demo settings except the score threshold, which the pack calibrates.
    fn default() -> Self {
        Self {
            input: "input".into(),
            channel_order: "bgr".into(),
            strides: vec![8, 16, 32],
            pad_divisor: 32,
            score_threshold: 0.6,
            nms_threshold: 0.3,
            top_k: 5000,
        }
    }
}

/// One face as YuNet reports it, in the coordinates of the image it was run on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct YunetFace {
    /// Left, top, width, height (real-valued; may extend past the image).
    pub bbox: [f32; 4],
    /// Right eye, left eye, nose tip, right and left mouth corner (the subject's right
    /// first, i.e. image-left first for a frontal face).
    pub landmarks: [[f32; 2]; 5],
    /// `sqrt(cls·obj)`, in [0, 1].
    pub score: f32,
}

impl YunetFace {
    /// The box as an inclusive integer rectangle (rounded edges).
    pub fn rect(&self) -> Rect {
        let [x, y, w, h] = self.bbox.map(f64::from);
        Rect::new(
            x.round() as i64,
            y.round() as i64,
            (x + w).round() as i64 - 1,
            (y + h).round() as i64 - 1,
        )
    }

    /// The landmarks as points.
    pub fn points(&self) -> Vec<Point> {
        self.landmarks
            .iter()
            .map(|p| Point::new(f64::from(p[0]), f64::from(p[1])))
            .collect()
    }

    /// The same face in an image scaled by `1 / scale` (pixel centres kept aligned):
    /// `x ↦ (x + 0.5) / scale − 0.5` for positions, `w ↦ w / scale` for sizes.
    pub(crate) fn rescaled(mut self, scale: f32) -> Self {
        if scale == 1.0 {
            return self;
        }
        let pos = |v: f32| (v + 0.5) / scale - 0.5;
        self.bbox = [
            pos(self.bbox[0]),
            pos(self.bbox[1]),
            self.bbox[2] / scale,
            self.bbox[3] / scale,
        ];
        for p in &mut self.landmarks {
            *p = [pos(p[0]), pos(p[1])];
        }
        self
    }
}

/// The padded input tensor: planar, channel order per `params`, 0..255, zero padding.
pub(crate) fn input_tensor(img: &RgbImage, params: &YunetParams) -> (usize, usize, Vec<f32>) {
    let d = params.pad_divisor.max(1) as usize;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (pw, ph) = (w.div_ceil(d) * d, h.div_ceil(d) * d);
    let plane = pw * ph;
    let mut data = vec![0f32; 3 * plane];
    let order: [usize; 3] = if params.channel_order == "rgb" {
        [0, 1, 2]
    } else {
        [2, 1, 0]
    };
    for (x, y, p) in img.enumerate_pixels() {
        let i = y as usize * pw + x as usize;
        for (c, &src) in order.iter().enumerate() {
            data[c * plane + i] = f32::from(p[src]);
        }
    }
    (ph, pw, data)
}

/// Runs YuNet on `img` at its own (padded) size and returns the faces after suppression,
/// best first.
pub(crate) fn detect(
    pool: &SessionPool,
    params: &YunetParams,
    img: &RgbImage,
) -> Result<Vec<YunetFace>, EngineError> {
    if img.width() == 0 || img.height() == 0 {
        return Ok(Vec::new());
    }
    let (ph, pw, data) = input_tensor(img, params);
    let shape = [1usize, 3, ph, pw];
    let candidates = pool.with(|session| -> Result<Vec<YunetFace>, EngineError> {
        let input = TensorRef::from_array_view((shape, data.as_slice()))?;
        let outputs = session.run(ort::inputs![params.input.as_str() => input])?;
        let mut faces = Vec::new();
        for &stride in &params.strides {
            let (cols, rows) = (pw / stride as usize, ph / stride as usize);
            let cells = cols * rows;
            let get = |kind: &str, width: usize| -> Result<&[f32], EngineError> {
                let name = format!("{kind}_{stride}");
                let value = outputs
                    .get(name.as_str())
                    .ok_or_else(|| EngineError::BadOutput(format!("YuNet has no output {name}")))?;
                let (s, v) = value.try_extract_tensor::<f32>()?;
                if v.len() != cells * width {
                    return Err(EngineError::BadOutput(format!(
                        "YuNet output {name} has shape {s:?}, expected {cells}×{width}"
                    )));
                }
                Ok(v)
            };
            let (cls, obj, bbox, kps) = (
                get("cls", 1)?,
                get("obj", 1)?,
                get("bbox", 4)?,
                get("kps", 10)?,
            );
            decode_level(
                stride as f32,
                cols,
                rows,
                [cls, obj, bbox, kps],
                params.score_threshold,
                &mut faces,
            );
        }
        Ok(faces)
    })?;
    Ok(suppress(candidates, params))
}

/// Decodes one output level into `out` (cells scoring at least `threshold`), row-major as
/// OpenCV visits them.
fn decode_level(
    stride: f32,
    cols: usize,
    rows: usize,
    [cls, obj, bbox, kps]: [&[f32]; 4],
    threshold: f32,
    out: &mut Vec<YunetFace>,
) {
    for r in 0..rows {
        for c in 0..cols {
            let i = r * cols + c;
            let score = (cls[i].clamp(0.0, 1.0) * obj[i].clamp(0.0, 1.0)).sqrt();
            if score < threshold {
                continue;
            }
            let (cf, rf) = (c as f32, r as f32);
            let b = &bbox[i * 4..i * 4 + 4];
            let cx = (cf + b[0]) * stride;
            let cy = (rf + b[1]) * stride;
            let w = b[2].exp() * stride;
            let h = b[3].exp() * stride;
            let k = &kps[i * 10..i * 10 + 10];
            let mut landmarks = [[0f32; 2]; 5];
            for (n, p) in landmarks.iter_mut().enumerate() {
                *p = [(k[2 * n] + cf) * stride, (k[2 * n + 1] + rf) * stride];
            }
            out.push(YunetFace {
                bbox: [cx - w / 2.0, cy - h / 2.0, w, h],
                landmarks,
                score,
            });
        }
    }
}

/// OpenCV's `NMSBoxes` as `FaceDetectorYN` calls it: boxes truncated to integers, scores
/// strictly above the threshold, stable sort by score, the first `top_k`, then greedy
/// suppression at IoU > `nms_threshold`. A single candidate is returned as it is (OpenCV
/// skips the suppression then).
pub(crate) fn suppress(faces: Vec<YunetFace>, params: &YunetParams) -> Vec<YunetFace> {
    if faces.len() <= 1 {
        return faces;
    }
    // C++ `int(float)` truncates towards zero.
    let boxes: Vec<[i64; 4]> = faces
        .iter()
        .map(|f| f.bbox.map(|v| v.trunc() as i64))
        .collect();
    let mut order: Vec<usize> = (0..faces.len())
        .filter(|&i| faces[i].score > params.score_threshold)
        .collect();
    order.sort_by(|&a, &b| faces[b].score.total_cmp(&faces[a].score));
    if params.top_k > 0 {
        order.truncate(params.top_k);
    }
    let mut kept: Vec<usize> = Vec::new();
    for i in order {
        if kept
            .iter()
            .all(|&k| iou(boxes[i], boxes[k]) <= f64::from(params.nms_threshold))
        {
            kept.push(i);
        }
    }
    kept.into_iter().map(|i| faces[i]).collect()
}

/// OpenCV's `Rect` overlap: `|a ∩ b| / (|a| + |b| − |a ∩ b|)` with `width·height` areas.
fn iou(a: [i64; 4], b: [i64; 4]) -> f64 {
    let (ax1, ay1, ax2, ay2) = (a[0], a[1], a[0] + a[2], a[1] + a[3]);
    let (bx1, by1, bx2, by2) = (b[0], b[1], b[0] + b[2], b[1] + b[3]);
    let iw = (ax2.min(bx2) - ax1.max(bx1)).max(0);
    let ih = (ay2.min(by2) - ay1.max(by1)).max(0);
    let inter = (iw * ih) as f64;
    let union = (a[2] * a[3] + b[2] * b[3]) as f64 - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, y: f32, side: f32, score: f32) -> YunetFace {
        YunetFace {
            bbox: [x, y, side, side],
            landmarks: [[x, y]; 5],
            score,
        }
    }

    #[test]
    fn the_input_is_padded_bgr_0_to_255() {
        let img = RgbImage::from_fn(33, 2, |x, _| image::Rgb([x as u8, 100, 200]));
        let (h, w, data) = input_tensor(&img, &YunetParams::default());
        assert_eq!((h, w), (32, 64));
        let plane = h * w;
        assert_eq!(data[5], 200.0, "blue first");
        assert_eq!(data[plane + 5], 100.0);
        assert_eq!(data[2 * plane + 5], 5.0, "red last");
        assert_eq!(data[40], 0.0, "padding is zero");
        assert_eq!(data[2 * plane + w + 32], 32.0, "second row");
    }

    #[test]
    fn a_cell_decodes_as_opencv_does() {
        // One 2×1 grid at stride 8; the second cell scores sqrt(0.81·1) = 0.9.
        let cls = [0.1, 0.81];
        let obj = [0.1, 1.7]; // clamped to 1
        let bbox = [0.0, 0.0, 0.0, 0.0, 0.5, 0.25, 1.0f32.ln(), 2.0f32.ln()];
        let mut kps = [0f32; 20];
        kps[10] = 0.5;
        kps[11] = 1.0;
        let mut out = Vec::new();
        decode_level(8.0, 2, 1, [&cls, &obj, &bbox, &kps], 0.5, &mut out);
        assert_eq!(out.len(), 1);
        let f = out[0];
        assert!((f.score - 0.9).abs() < 1e-6);
        // Centre ((1 + 0.5)·8, (0 + 0.25)·8) = (12, 2), size (8, 16).
        assert_eq!(f.bbox, [8.0, -6.0, 8.0, 16.0]);
        assert_eq!(f.landmarks[0], [12.0, 8.0]);
        assert_eq!(f.landmarks[1], [8.0, 0.0]);
    }

    #[test]
    fn suppression_keeps_the_best_of_overlapping_boxes() {
        let p = YunetParams::default();
        let faces = vec![
            face(10.0, 10.0, 50.0, 0.8),
            face(12.0, 11.0, 50.0, 0.95),
            face(200.0, 10.0, 40.0, 0.7),
            face(100.0, 100.0, 40.0, 0.6), // not above the threshold: dropped
        ];
        let kept = suppress(faces, &p);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.95);
        assert_eq!(kept[1].score, 0.7);
        // IoU uses width·height areas: identical boxes overlap fully, disjoint not at all.
        assert_eq!(iou([0, 0, 10, 10], [0, 0, 10, 10]), 1.0);
        assert_eq!(iou([0, 0, 10, 10], [10, 0, 10, 10]), 0.0);
        assert!((iou([0, 0, 10, 10], [5, 0, 10, 10]) - 50.0 / 150.0).abs() < 1e-12);
    }

    #[test]
    fn rescaling_keeps_pixel_centres() {
        let f = face(9.5, 1.5, 20.0, 0.9).rescaled(0.5);
        assert_eq!(f.bbox, [19.5, 3.5, 40.0, 40.0]);
        assert_eq!(f.rect(), Rect::new(20, 4, 59, 43));
    }
}
