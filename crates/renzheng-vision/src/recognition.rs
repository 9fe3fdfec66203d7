//! From landmarks to embeddings: the aligned face chip and the recognition network.

use image::RgbImage;
use ort::value::TensorRef;

use crate::chip;
use crate::error::EngineError;
use crate::geometry::Point;
use crate::pack::RecognitionModel;
use crate::runtime::SessionPool;
use crate::score::Embedding;

/// Cuts the chip the recognition network `r` takes for `landmarks` out of `img`.
pub(crate) fn face_chip(r: &RecognitionModel, img: &RgbImage, landmarks: &[Point]) -> RgbImage {
    let details = chip::face_chip_details(landmarks, r.chip_size, r.chip_padding);
    chip::extract_chip(img, &details)
}

/// Embeds `chips` in one batch: one tensor, one inference, one embedding per chip in order.
pub(crate) fn embed_chips(
    pool: &SessionPool,
    r: &RecognitionModel,
    chips: &[RgbImage],
) -> Result<Vec<Embedding>, EngineError> {
    if chips.is_empty() {
        return Ok(Vec::new());
    }
    let size = r.chip_size;
    let plane = size * size;
    let mut data = vec![0f32; chips.len() * 3 * plane];
    for (n, chip) in chips.iter().enumerate() {
        if chip.width() as usize != size || chip.height() as usize != size {
            return Err(EngineError::BadOutput(format!(
                "chip is {}×{}, the network takes {size}×{size}",
                chip.width(),
                chip.height()
            )));
        }
        let base = n * 3 * plane;
        for (i, p) in chip.pixels().enumerate() {
            for c in 0..3 {
                data[base + c * plane + i] = (f32::from(p[c]) - r.input_avg_rgb[c]) / r.input_scale;
            }
        }
    }
    let dim = r.embedding_dim;
    let shape = [chips.len(), 3, size, size];
    pool.with(|session| {
        let input = TensorRef::from_array_view((shape, data.as_slice()))?;
        let outputs = session.run(ort::inputs!["chip" => input])?;
        let (out_shape, values) = outputs["embedding"].try_extract_tensor::<f32>()?;
        if out_shape.len() != 2
            || out_shape[0] as usize != chips.len()
            || out_shape[1] as usize != dim
        {
            return Err(EngineError::BadOutput(format!(
                "recognition output shape {out_shape:?}"
            )));
        }
        Ok(values
            .chunks_exact(dim)
            .map(|c| Embedding(c.to_vec()))
            .collect())
    })
}
