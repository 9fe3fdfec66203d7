use std::fmt;

/// Why a template or query was refused.
///
/// Messages never echo the offending values: templates are biometric data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexError {
    /// The slice does not have the index's dimension.
    DimensionMismatch {
        /// The index's dimension.
        expected: usize,
        /// The length of the slice passed in.
        got: usize,
    },
    /// A value is NaN or infinite, the vector has no direction (all zeros under
    /// [`Metric::Cosine`](crate::Metric::Cosine)), its norm overflows `f32`, or a
    /// search threshold is NaN.
    NotFinite,
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DimensionMismatch { expected, got } => {
                write!(
                    f,
                    "template has {got} dimensions, the index expects {expected}"
                )
            }
            Self::NotFinite => {
                f.write_str("template, query or threshold is not finite (or has no usable norm)")
            }
        }
    }
}

impl std::error::Error for IndexError {}
