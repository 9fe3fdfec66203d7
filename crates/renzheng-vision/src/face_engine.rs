//! The engine as the application sees it: a trait, so that the service holds
//! `Arc<dyn FaceEngine>` and its tests can swap in [`testing::TestEngine`](crate::testing)
//! (feature `testing`) where the face decision is not what is under test.

use crate::score::{AppliedBands, Comparison, Embedding, Metric, SizeBand, VerdictThresholds};
use crate::{Analysis, EngineError};

/// A face engine: photo bytes in, faces, quality and embeddings out.
///
/// Every method that takes a photo is blocking CPU work: call it off the async runtime.
/// Implementations know images and tensors only, never names or ID numbers, and apply no
/// product policy (what a quality warning means for a verdict is the caller's rule).
pub trait FaceEngine: Send + Sync + std::fmt::Debug {
    /// Identifies the embedding space: embeddings are only ever compared with embeddings
    /// of the same id.
    fn model_id(&self) -> &str;

    /// The verdict bands in force.
    fn thresholds(&self) -> &VerdictThresholds;

    /// The bands for small faces in force (none by default).
    fn size_bands(&self) -> &[SizeBand] {
        &[]
    }

    /// The bands that apply to a caller's photo whose eyes are `inter_eye_px` apart.
    fn bands_for_face(&self, inter_eye_px: f64) -> AppliedBands {
        crate::score::bands_for_face(self.thresholds(), self.size_bands(), inter_eye_px)
    }

    /// Decodes `photo` and analyses the face chosen in it.
    fn analyze(&self, photo: &[u8]) -> Result<Analysis, EngineError>;

    /// [`analyze`](Self::analyze), stopping with [`EngineError::Cancelled`] between
    /// stages once `cancel` is raised. Engines whose analysis is cheap may ignore it (the
    /// default).
    fn analyze_cancellable(
        &self,
        photo: &[u8],
        cancel: &crate::Cancel,
    ) -> Result<Analysis, EngineError> {
        let _ = cancel;
        self.analyze(photo)
    }

    /// The model pack's manifest (sources, hashes, calibration), when the engine was
    /// built from one.
    fn manifest(&self) -> Option<&crate::pack::Manifest> {
        None
    }

    /// How this engine's embeddings are compared (the pack's metric).
    fn metric(&self) -> Metric {
        Metric::Euclidean
    }

    /// The pack's duplicate-face line (how close two persons' portraits must be to be
    /// called one face under two ID numbers), for registry searches.
    fn duplicate_line(&self) -> crate::DuplicateLine;

    /// Compares two embeddings of this engine under its [`metric`](Self::metric) and
    /// [`thresholds`](Self::thresholds).
    fn compare(&self, a: &Embedding, b: &Embedding) -> Comparison {
        Comparison::with_metric(a, b, self.metric(), self.thresholds())
    }
}
