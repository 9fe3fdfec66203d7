//! The distances an index compares templates by (a leaf: the index and the
//! quantisation both use it).

/// How two templates are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// `1 − cos(a, b)`, in `[0, 2]`. Templates need not be unit length: only their
    /// direction is stored, so a template's norm never changes its distances.
    Cosine,
    /// `‖a − b‖₂`.
    Euclidean,
}
