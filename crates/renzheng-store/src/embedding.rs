//! The on-disk form of face embeddings, shared by every backend.

use crate::StoreError;

/// Encodes an embedding as consecutive little-endian `f32`s.
///
/// Little-endian fixed so that a database file (or dump) moves between
/// machines unchanged; bit patterns, NaNs included, survive exactly.
pub fn encode_embedding(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Decodes [`encode_embedding`]'s output.
///
/// Fails with [`StoreError::Corrupt`] for an empty blob or one whose length
/// is not a multiple of four.
pub fn decode_embedding(blob: &[u8]) -> Result<Vec<f32>, StoreError> {
    if blob.is_empty() || !blob.len().is_multiple_of(4) {
        return Err(StoreError::Corrupt(format!(
            "embedding blob of {} bytes is not a whole number of f32s",
            blob.len()
        )));
    }
    Ok(blob
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_bit_exact() {
        let values = [0.0, -0.0, 1.5, f32::MIN_POSITIVE, f32::INFINITY, f32::NAN];
        let decoded = decode_embedding(&encode_embedding(&values)).unwrap();
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&decoded), bits(&values));
    }

    #[test]
    fn layout_is_little_endian() {
        assert_eq!(encode_embedding(&[1.0]), vec![0x00, 0x00, 0x80, 0x3f]);
    }

    #[test]
    fn bad_lengths_are_corrupt() {
        for len in [0, 1, 3, 5, 513] {
            assert!(matches!(
                decode_embedding(&vec![0; len]),
                Err(StoreError::Corrupt(_))
            ));
        }
    }
}
