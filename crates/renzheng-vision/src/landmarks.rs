//! dlib's 5-point shape predictor (an ensemble of regression trees), read from the pack's
//! `landmarks.rzsp` and evaluated in plain Rust — 7,500 tiny trees are faster as code than
//! as a graph.
//!
//! The `.rzsp` layout (little-endian) is written by `tools/dlib_to_onnx.py`:
//! ```text
//! "RZSP" u32 version=1
//! u32 landmarks, cascades, trees_per_cascade, splits_per_tree, leaves_per_tree, feature_pixels
//! f32 initial_shape[2·landmarks]                         x0 y0 x1 y1 …, box-normalised
//! per cascade: u32 anchor[feature_pixels]; f32 delta[2·feature_pixels]
//!              per tree: (u32 idx1, u32 idx2, f32 thresh)[splits]; f32 leaf[leaves][2·landmarks]
//! ```
//! Evaluation follows dlib exactly (the parity tests hold landmarks to 1 px): feature pixel
//! offsets are carried by the similarity between the initial and current shape, pixel
//! coordinates round with `floor(v + 0.5)`, pixels outside the image read as 0, and grey is
//! the integer mean of R, G and B.

use std::path::Path;

use image::RgbImage;

use crate::error::EngineError;
use crate::geometry::{Affine, Point, Rect};

/// A loaded shape predictor.
#[derive(Debug, Clone)]
pub struct ShapePredictor {
    landmarks: usize,
    initial_shape: Vec<f32>,
    cascades: Vec<Cascade>,
}

#[derive(Debug, Clone)]
struct Cascade {
    anchors: Vec<u32>,
    deltas: Vec<[f32; 2]>,
    trees: Vec<Tree>,
}

#[derive(Debug, Clone)]
struct Tree {
    splits: Vec<Split>,
    /// `leaves × 2·landmarks`, flattened.
    leaves: Vec<f32>,
}

#[derive(Debug, Clone, Copy)]
struct Split {
    idx1: u32,
    idx2: u32,
    thresh: f32,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| format!("file ends at byte {} (needed {n} more)", self.bytes.len()))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn f32(&mut self) -> Result<f32, String> {
        Ok(f32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn f32s(&mut self, n: usize) -> Result<Vec<f32>, String> {
        (0..n).map(|_| self.f32()).collect()
    }
}

impl ShapePredictor {
    /// Loads a predictor from an `.rzsp` file.
    pub fn load(path: &Path) -> Result<Self, EngineError> {
        let bytes = std::fs::read(path).map_err(|e| EngineError::pack(path, e.to_string()))?;
        Self::parse(&bytes).map_err(|reason| EngineError::pack(path, reason))
    }

    /// Parses the `.rzsp` bytes, checking every count against the header.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(4)? != b"RZSP" {
            return Err("not a landmark model (bad magic)".into());
        }
        let version = r.u32()?;
        if version != 1 {
            return Err(format!("unsupported landmark model version {version}"));
        }
        let header: Vec<usize> = (0..6)
            .map(|_| r.u32().map(|v| v as usize))
            .collect::<Result<_, _>>()?;
        let [landmarks, cascades, trees, splits, leaves, pixels] = header[..] else {
            unreachable!("six header fields were read")
        };
        if landmarks == 0 || leaves != splits + 1 || !leaves.is_power_of_two() {
            return Err(format!(
                "inconsistent header: {landmarks} landmarks, {splits} splits, {leaves} leaves"
            ));
        }
        // Guard the allocation below against a corrupt header.
        let (c, t, s, l, n, p) = (
            cascades as u128,
            trees as u128,
            splits as u128,
            leaves as u128,
            landmarks as u128,
            pixels as u128,
        );
        let needed = c * (p * 12 + t * (s * 12 + l * n * 8));
        if needed > bytes.len() as u128 {
            return Err(format!(
                "header promises {needed} bytes of trees; file has {}",
                bytes.len()
            ));
        }
        let initial_shape = r.f32s(2 * landmarks)?;
        let mut out = Vec::with_capacity(cascades);
        for _ in 0..cascades {
            let anchors: Vec<u32> = (0..pixels).map(|_| r.u32()).collect::<Result<_, _>>()?;
            if let Some(bad) = anchors.iter().find(|&&a| a as usize >= landmarks) {
                return Err(format!("anchor index {bad} ≥ {landmarks} landmarks"));
            }
            let deltas = (0..pixels)
                .map(|_| Ok([r.f32()?, r.f32()?]))
                .collect::<Result<Vec<_>, String>>()?;
            let mut tree_list = Vec::with_capacity(trees);
            for _ in 0..trees {
                let s = (0..splits)
                    .map(|_| {
                        Ok(Split {
                            idx1: r.u32()?,
                            idx2: r.u32()?,
                            thresh: r.f32()?,
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                if s.iter()
                    .any(|s| s.idx1 as usize >= pixels || s.idx2 as usize >= pixels)
                {
                    return Err("split refers to a feature pixel out of range".into());
                }
                tree_list.push(Tree {
                    splits: s,
                    leaves: r.f32s(leaves * 2 * landmarks)?,
                });
            }
            out.push(Cascade {
                anchors,
                deltas,
                trees: tree_list,
            });
        }
        if r.pos != bytes.len() {
            return Err(format!("{} trailing bytes", bytes.len() - r.pos));
        }
        Ok(Self {
            landmarks,
            initial_shape,
            cascades: out,
        })
    }

    /// Number of points predicted.
    pub fn num_landmarks(&self) -> usize {
        self.landmarks
    }

    /// Predicts the landmarks of the face in `rect`, in image pixels (rounded as dlib does).
    pub fn predict(&self, img: &RgbImage, rect: Rect) -> Vec<Point> {
        let (w, h) = (i64::from(img.width()), i64::from(img.height()));
        let grey = |x: i64, y: i64| -> f32 {
            if x < 0 || y < 0 || x >= w || y >= h {
                return 0.0;
            }
            let p = img.get_pixel(x as u32, y as u32);
            ((u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2])) / 3) as f32
        };
        // Box-normalised coordinates → pixels: (0,0) ↦ top-left, (1,1) ↦ bottom-right.
        let (l, t) = (rect.left as f64, rect.top as f64);
        let (sx, sy) = (
            (rect.right - rect.left) as f64,
            (rect.bottom - rect.top) as f64,
        );
        let to_img = |x: f64, y: f64| Point::new(l + sx * x, t + sy * y);

        let initial: Vec<Point> = self.points(&self.initial_shape);
        let mut shape = self.initial_shape.clone();
        let mut features = Vec::new();
        for cascade in &self.cascades {
            let current = self.points(&shape);
            let tf = Affine::similarity(&initial, &current);
            let m = [
                [tf.m[0][0] as f32, tf.m[0][1] as f32],
                [tf.m[1][0] as f32, tf.m[1][1] as f32],
            ];
            features.clear();
            features.extend(cascade.anchors.iter().zip(&cascade.deltas).map(|(&a, d)| {
                let a = a as usize;
                let x = m[0][0] * d[0] + m[0][1] * d[1] + shape[2 * a];
                let y = m[1][0] * d[0] + m[1][1] * d[1] + shape[2 * a + 1];
                let (px, py) = to_img(f64::from(x), f64::from(y)).round();
                grey(px, py)
            }));
            let n = 2 * self.landmarks;
            for tree in &cascade.trees {
                let mut i = 0usize;
                while i < tree.splits.len() {
                    let s = tree.splits[i];
                    i = if features[s.idx1 as usize] - features[s.idx2 as usize] > s.thresh {
                        2 * i + 1
                    } else {
                        2 * i + 2
                    };
                }
                let leaf = &tree.leaves[(i - tree.splits.len()) * n..][..n];
                for (v, d) in shape.iter_mut().zip(leaf) {
                    *v += d;
                }
            }
        }
        self.points(&shape)
            .into_iter()
            .map(|p| {
                let (x, y) = to_img(p.x, p.y).round();
                Point::new(x as f64, y as f64)
            })
            .collect()
    }

    fn points(&self, shape: &[f32]) -> Vec<Point> {
        shape
            .chunks_exact(2)
            .map(|c| Point::new(f64::from(c[0]), f64::from(c[1])))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-cascade, one-tree predictor with depth-1 trees, written in the `.rzsp` layout.
    fn tiny_model(thresh: f32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"RZSP");
        for v in [1u32, 1, 1, 1, 1, 2, 2] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for v in [0.5f32, 0.5] {
            b.extend_from_slice(&v.to_le_bytes()); // initial shape: box centre
        }
        for a in [0u32, 0] {
            b.extend_from_slice(&a.to_le_bytes());
        }
        for d in [-0.25f32, 0.0, 0.25, 0.0] {
            b.extend_from_slice(&d.to_le_bytes()); // left and right of the point
        }
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&thresh.to_le_bytes());
        for v in [0.1f32, 0.0, -0.1, 0.0] {
            b.extend_from_slice(&v.to_le_bytes()); // left leaf moves right, right leaf left
        }
        b
    }

    #[test]
    fn parses_and_walks_the_tree() {
        let sp = ShapePredictor::parse(&tiny_model(10.0)).unwrap();
        assert_eq!(sp.num_landmarks(), 1);
        // Bright on the left half: f[0] − f[1] = 255 > 10 → left leaf → +0.1 of the width.
        let mut img = RgbImage::new(100, 100);
        for y in 0..100 {
            for x in 0..50 {
                img.put_pixel(x, y, image::Rgb([255, 255, 255]));
            }
        }
        let rect = Rect::new(0, 0, 100, 100);
        assert_eq!(sp.predict(&img, rect), vec![Point::new(60.0, 50.0)]);
        // A dark image takes the right branch.
        assert_eq!(
            sp.predict(&RgbImage::new(100, 100), rect),
            vec![Point::new(40.0, 50.0)]
        );
    }

    #[test]
    fn rejects_truncated_and_inconsistent_files() {
        let good = tiny_model(0.0);
        assert!(ShapePredictor::parse(&good[..good.len() - 1]).is_err());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(ShapePredictor::parse(&trailing)
            .unwrap_err()
            .contains("trailing"));
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        assert!(ShapePredictor::parse(&bad_magic).is_err());
        let mut huge = good;
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes()); // cascades
        assert!(ShapePredictor::parse(&huge).is_err());
    }
}
