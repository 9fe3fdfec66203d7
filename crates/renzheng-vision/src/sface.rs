//! SFace (OpenCV Zoo, 2021dec) around the network: the aligned crop in, the embedding out,
//! as OpenCV's `FaceRecognizerSF::feature` computes it — planar RGB 0..255, no mean and no
//! scale — then L2-normalised, so that the cosine metric is a dot product and stored
//! vectors all have unit length.

use image::RgbImage;
use ort::value::TensorRef;

use crate::error::EngineError;
use crate::pack::SfaceModel;
use crate::runtime::SessionPool;
use crate::score::Embedding;

/// Embeds each crop (the network's batch is fixed to one, so one inference per crop).
pub(crate) fn embed(
    pool: &SessionPool,
    model: &SfaceModel,
    size: u32,
    crops: &[RgbImage],
) -> Result<Vec<Embedding>, EngineError> {
    let side = size as usize;
    let plane = side * side;
    let mut data = vec![0f32; 3 * plane];
    let order: [usize; 3] = if model.channel_order == "bgr" {
        [2, 1, 0]
    } else {
        [0, 1, 2]
    };
    crops
        .iter()
        .map(|crop| {
            if crop.dimensions() != (size, size) {
                return Err(EngineError::BadOutput(format!(
                    "crop is {}×{}, the network takes {size}×{size}",
                    crop.width(),
                    crop.height()
                )));
            }
            for (i, p) in crop.pixels().enumerate() {
                for (c, &src) in order.iter().enumerate() {
                    data[c * plane + i] = f32::from(p[src]);
                }
            }
            let values = pool.with(|session| -> Result<Vec<f32>, EngineError> {
                let input = TensorRef::from_array_view(([1usize, 3, side, side], data.as_slice()))?;
                let outputs = session.run(ort::inputs![model.input.as_str() => input])?;
                let (shape, v) = outputs[model.output.as_str()].try_extract_tensor::<f32>()?;
                if v.len() != model.embedding_dim {
                    return Err(EngineError::BadOutput(format!(
                        "recognition output shape {shape:?}, expected {} values",
                        model.embedding_dim
                    )));
                }
                Ok(v.to_vec())
            })?;
            let e = Embedding(values);
            Ok(if model.l2_normalize {
                e.l2_normalized()
            } else {
                e
            })
        })
        .collect()
}
