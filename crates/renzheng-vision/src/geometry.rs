//! Small 2-D geometry shared by the pipeline stages.
//!
//! Rectangles follow dlib's conventions on purpose: they are *inclusive* (a rectangle from
//! left 0 to right 9 is 10 pixels wide), because the ported models were trained with those
//! conventions and the parity tests compare corners to dlib's own output.

use serde::{Deserialize, Serialize};

/// A point with real coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Point {
    /// Horizontal coordinate, growing to the right.
    pub x: f64,
    /// Vertical coordinate, growing downwards.
    pub y: f64,
}

impl Point {
    /// A point at `(x, y)`.
    pub const fn new(x: f64, y: f64) -> Self {
        Self { x, y }
    }

    /// Rounds both coordinates the way dlib converts a real point to pixels: `floor(v + 0.5)`.
    pub fn round(self) -> (i64, i64) {
        ((self.x + 0.5).floor() as i64, (self.y + 0.5).floor() as i64)
    }

    /// Euclidean distance to `other`.
    pub fn distance(self, other: Point) -> f64 {
        ((self.x - other.x).powi(2) + (self.y - other.y).powi(2)).sqrt()
    }

    /// Midpoint of `self` and `other`.
    pub fn midpoint(self, other: Point) -> Point {
        Point::new((self.x + other.x) / 2.0, (self.y + other.y) / 2.0)
    }
}

/// An integer rectangle with inclusive corners (dlib's `rectangle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rect {
    /// Leftmost column.
    pub left: i64,
    /// Topmost row.
    pub top: i64,
    /// Rightmost column (inclusive).
    pub right: i64,
    /// Bottom row (inclusive).
    pub bottom: i64,
}

impl Rect {
    /// A rectangle from its inclusive corners.
    pub const fn new(left: i64, top: i64, right: i64, bottom: i64) -> Self {
        Self {
            left,
            top,
            right,
            bottom,
        }
    }

    /// The rectangle covering a `width` × `height` image at the origin.
    pub const fn from_size(width: i64, height: i64) -> Self {
        Self::new(0, 0, width - 1, height - 1)
    }

    /// True when the rectangle holds no pixel.
    pub fn is_empty(&self) -> bool {
        self.top > self.bottom || self.left > self.right
    }

    /// Width in pixels (0 when empty).
    pub fn width(&self) -> i64 {
        if self.is_empty() {
            0
        } else {
            self.right - self.left + 1
        }
    }

    /// Height in pixels (0 when empty).
    pub fn height(&self) -> i64 {
        if self.is_empty() {
            0
        } else {
            self.bottom - self.top + 1
        }
    }

    /// Number of pixels covered.
    pub fn area(&self) -> i64 {
        self.width() * self.height()
    }

    /// The overlap of two rectangles (possibly empty).
    pub fn intersect(&self, other: &Rect) -> Rect {
        Rect::new(
            self.left.max(other.left),
            self.top.max(other.top),
            self.right.min(other.right),
            self.bottom.min(other.bottom),
        )
    }

    /// The smallest rectangle holding both (an empty operand is ignored, as in dlib).
    pub fn union(&self, other: &Rect) -> Rect {
        if self.is_empty() {
            return *other;
        }
        if other.is_empty() {
            return *self;
        }
        Rect::new(
            self.left.min(other.left),
            self.top.min(other.top),
            self.right.max(other.right),
            self.bottom.max(other.bottom),
        )
    }

    /// True when `(x, y)` lies inside.
    pub fn contains(&self, x: i64, y: i64) -> bool {
        x >= self.left && x <= self.right && y >= self.top && y <= self.bottom
    }

    /// Real-valued centre, `((l + r) / 2, (t + b) / 2)`.
    pub fn center(&self) -> Point {
        Point::new(
            (self.left + self.right) as f64 / 2.0,
            (self.top + self.bottom) as f64 / 2.0,
        )
    }

    /// The point of the rectangle nearest to `(x, y)` (the point itself when inside).
    fn nearest_point(&self, x: f64, y: f64) -> (f64, f64) {
        (
            x.clamp(self.left as f64, self.right as f64),
            y.clamp(self.top as f64, self.bottom as f64),
        )
    }
}

/// A rectangle with real corners (dlib's `drectangle`); width is `right − left + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DRect {
    /// Left edge.
    pub left: f64,
    /// Top edge.
    pub top: f64,
    /// Right edge (inclusive convention).
    pub right: f64,
    /// Bottom edge (inclusive convention).
    pub bottom: f64,
}

impl DRect {
    /// A rectangle from its corners.
    pub const fn new(left: f64, top: f64, right: f64, bottom: f64) -> Self {
        Self {
            left,
            top,
            right,
            bottom,
        }
    }

    /// A `width` × `height` rectangle centred on `p` (dlib's `centered_drect`).
    pub fn centered(p: Point, width: f64, height: f64) -> Self {
        let (w, h) = (width - 1.0, height - 1.0);
        DRect::new(p.x - w / 2.0, p.y - h / 2.0, p.x + w / 2.0, p.y + h / 2.0)
    }

    /// True when the rectangle holds nothing.
    pub fn is_empty(&self) -> bool {
        self.top > self.bottom || self.left > self.right
    }

    /// Width, inclusive convention.
    pub fn width(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.right - self.left + 1.0
        }
    }

    /// Height, inclusive convention.
    pub fn height(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.bottom - self.top + 1.0
        }
    }

    /// `width × height`.
    pub fn area(&self) -> f64 {
        self.width() * self.height()
    }

    /// Centre point.
    pub fn center(&self) -> Point {
        Point::new(
            (self.left + self.right) / 2.0,
            (self.top + self.bottom) / 2.0,
        )
    }

    /// Corners rounded with `lround`, as dlib converts a `drectangle` to a `rectangle`.
    pub fn round(&self) -> Rect {
        Rect::new(
            self.left.round() as i64,
            self.top.round() as i64,
            self.right.round() as i64,
            self.bottom.round() as i64,
        )
    }

    /// The four corners: top-left, top-right, bottom-left, bottom-right.
    pub fn corners(&self) -> [Point; 4] {
        [
            Point::new(self.left, self.top),
            Point::new(self.right, self.top),
            Point::new(self.left, self.bottom),
            Point::new(self.right, self.bottom),
        ]
    }

    /// Applies `f` to both corners.
    pub fn map_corners(&self, f: impl Fn(Point) -> Point) -> DRect {
        let tl = f(Point::new(self.left, self.top));
        let br = f(Point::new(self.right, self.bottom));
        DRect::new(tl.x, tl.y, br.x, br.y)
    }

    /// The smallest rectangle holding `self` and `p`.
    pub fn including(&self, p: Point) -> DRect {
        if self.is_empty() {
            return DRect::new(p.x, p.y, p.x, p.y);
        }
        DRect::new(
            self.left.min(p.x),
            self.top.min(p.y),
            self.right.max(p.x),
            self.bottom.max(p.y),
        )
    }

    /// An empty rectangle (the identity for [`DRect::including`]).
    pub const fn empty() -> DRect {
        DRect::new(0.0, 0.0, -1.0, -1.0)
    }
}

/// Index of the rectangle that contains `p`, or else the nearest one (dlib's `nearest_rect`).
pub fn nearest_rect(rects: &[Rect], x: i64, y: i64) -> usize {
    let mut best = 0;
    let mut best_dist = f64::INFINITY;
    for (i, r) in rects.iter().enumerate() {
        if r.contains(x, y) {
            return i;
        }
        let (nx, ny) = r.nearest_point(x as f64, y as f64);
        let d = ((nx - x as f64).powi(2) + (ny - y as f64).powi(2)).sqrt();
        if d < best_dist {
            best_dist = d;
            best = i;
        }
    }
    best
}

/// An affine map `p ↦ M·p + t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    /// Row-major 2×2 linear part.
    pub m: [[f64; 2]; 2],
    /// Translation.
    pub t: [f64; 2],
}

impl Affine {
    /// Applies the map.
    pub fn apply(&self, p: Point) -> Point {
        Point::new(
            self.m[0][0] * p.x + self.m[0][1] * p.y + self.t[0],
            self.m[1][0] * p.x + self.m[1][1] * p.y + self.t[1],
        )
    }

    /// The least-squares similarity transform (rotation, uniform scale, translation) taking
    /// `from[i]` to `to[i]`.
    ///
    /// This is the closed form of Umeyama's estimate without reflection, which is what
    /// dlib's `find_similarity_transform` returns for any sane face shape.
    pub fn similarity(from: &[Point], to: &[Point]) -> Affine {
        debug_assert_eq!(from.len(), to.len());
        let n = from.len().max(1) as f64;
        let mf = from
            .iter()
            .fold(Point::default(), |a, p| Point::new(a.x + p.x, a.y + p.y));
        let mt = to
            .iter()
            .fold(Point::default(), |a, p| Point::new(a.x + p.x, a.y + p.y));
        let (mf, mt) = (
            Point::new(mf.x / n, mf.y / n),
            Point::new(mt.x / n, mt.y / n),
        );
        let (mut num_a, mut num_b, mut den) = (0.0, 0.0, 0.0);
        for (f, t) in from.iter().zip(to) {
            let (fx, fy) = (f.x - mf.x, f.y - mf.y);
            let (tx, ty) = (t.x - mt.x, t.y - mt.y);
            num_a += fx * tx + fy * ty;
            num_b += fx * ty - fy * tx;
            den += fx * fx + fy * fy;
        }
        let (a, b) = if den == 0.0 {
            (1.0, 0.0)
        } else {
            (num_a / den, num_b / den)
        };
        let m = [[a, -b], [b, a]];
        let t = [
            mt.x - (m[0][0] * mf.x + m[0][1] * mf.y),
            mt.y - (m[1][0] * mf.x + m[1][1] * mf.y),
        ];
        Affine { m, t }
    }

    /// The inverse map (None when the linear part is singular).
    pub fn inverse(&self) -> Option<Affine> {
        let [[a, b], [c, d]] = self.m;
        let det = a * d - b * c;
        if det.abs() < 1e-15 || !det.is_finite() {
            return None;
        }
        let m = [[d / det, -b / det], [-c / det, a / det]];
        let t = [
            -(m[0][0] * self.t[0] + m[0][1] * self.t[1]),
            -(m[1][0] * self.t[0] + m[1][1] * self.t[1]),
        ];
        Some(Affine { m, t })
    }

    /// The exact affine map taking three points to three points (None when `from` is
    /// degenerate).
    pub fn from_three(from: [Point; 3], to: [Point; 3]) -> Option<Affine> {
        // Solve [x y 1] · [a c; b d; tx ty] = [x' y'] for the three rows.
        let [p0, p1, p2] = from;
        let det = p0.x * (p1.y - p2.y) - p0.y * (p1.x - p2.x) + (p1.x * p2.y - p2.x * p1.y);
        if det.abs() < 1e-12 {
            return None;
        }
        let inv = |a: f64, b: f64, c: f64| -> [f64; 3] {
            // Cramer's rule on the 3×3 system with right-hand side (a, b, c).
            let d0 = a * (p1.y - p2.y) - p0.y * (b - c) + (b * p2.y - c * p1.y);
            let d1 = p0.x * (b - c) - a * (p1.x - p2.x) + (p1.x * c - p2.x * b);
            let d2 = p0.x * (p1.y * c - p2.y * b) - p0.y * (p1.x * c - p2.x * b)
                + a * (p1.x * p2.y - p2.x * p1.y);
            [d0 / det, d1 / det, d2 / det]
        };
        let rx = inv(to[0].x, to[1].x, to[2].x);
        let ry = inv(to[0].y, to[1].y, to[2].y);
        Some(Affine {
            m: [[rx[0], rx[1]], [ry[0], ry[1]]],
            t: [rx[2], ry[2]],
        })
    }
}

/// Rotates `p` about `center` by `angle` radians.
pub fn rotate_point(center: Point, p: Point, angle: f64) -> Point {
    let (s, c) = angle.sin_cos();
    let (dx, dy) = (p.x - center.x, p.y - center.y);
    Point::new(center.x + c * dx - s * dy, center.y + s * dx + c * dy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inclusive_rect_sizes() {
        let r = Rect::new(0, 0, 9, 4);
        assert_eq!((r.width(), r.height(), r.area()), (10, 5, 50));
        assert!(Rect::new(5, 0, 4, 0).is_empty());
        assert_eq!(Rect::new(5, 0, 4, 0).area(), 0);
    }

    #[test]
    fn similarity_recovers_a_known_transform() {
        let truth = Affine {
            m: [[0.8, -0.6], [0.6, 0.8]],
            t: [10.0, -3.0],
        };
        let from = [
            Point::new(0.0, 0.0),
            Point::new(5.0, 1.0),
            Point::new(2.0, 7.0),
            Point::new(-3.0, 4.0),
        ];
        let to: Vec<Point> = from.iter().map(|p| truth.apply(*p)).collect();
        let est = Affine::similarity(&from, &to);
        for i in 0..2 {
            for j in 0..2 {
                assert!((est.m[i][j] - truth.m[i][j]).abs() < 1e-12);
            }
            assert!((est.t[i] - truth.t[i]).abs() < 1e-12);
        }
    }

    #[test]
    fn affine_from_three_points_is_exact() {
        let from = [
            Point::new(0.0, 0.0),
            Point::new(149.0, 0.0),
            Point::new(0.0, 149.0),
        ];
        let to = [
            Point::new(10.0, 20.0),
            Point::new(100.0, 30.0),
            Point::new(5.0, 120.0),
        ];
        let a = Affine::from_three(from, to).unwrap();
        for (f, t) in from.iter().zip(&to) {
            let p = a.apply(*f);
            assert!((p.x - t.x).abs() < 1e-9 && (p.y - t.y).abs() < 1e-9);
        }
        assert!(Affine::from_three([Point::new(0.0, 0.0); 3], to).is_none());
    }

    #[test]
    fn nearest_rect_prefers_containing_rect() {
        let rects = [Rect::new(0, 0, 9, 9), Rect::new(20, 0, 29, 9)];
        assert_eq!(nearest_rect(&rects, 25, 5), 1);
        assert_eq!(nearest_rect(&rects, 16, 5), 1);
        assert_eq!(nearest_rect(&rects, 12, 5), 0);
    }

    #[test]
    fn dlib_rounding() {
        assert_eq!(Point::new(2.5, -0.5).round(), (3, 0));
        assert_eq!(
            DRect::new(0.5, 1.49, 2.5, 3.5).round(),
            Rect::new(1, 1, 3, 4)
        );
    }
}
