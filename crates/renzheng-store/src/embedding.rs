//! The on-disk form of face embeddings, shared by every backend: little-endian `f32`s,
//! sealed with XChaCha20-Poly1305 under the template key.
//!
//! A face template is biometric data: a copy of the database must not be a copy of the
//! faces. The sealed form is `nonce (24 bytes) ‖ ciphertext`, authenticated together with
//! the portrait's ID number and model id, so a template moved to another person or model
//! does not open.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::XChaCha20Poly1305;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::StoreError;

/// The key that seals face templates at rest (32 bytes), and the registry's identities: a
/// person's row is found by a keyed hash of the ID number ([`person_key`]) and holds the
/// ID number and name only sealed ([`seal_person`]). Kept by the application outside the
/// data directory, like the other keys.
///
/// [`person_key`]: TemplateKey::person_key
/// [`seal_person`]: TemplateKey::seal_person
#[derive(Clone)]
pub struct TemplateKey {
    cipher: XChaCha20Poly1305,
    /// HMAC key of the registry's lookup hashes, derived from the key.
    index: [u8; 32],
}

impl std::fmt::Debug for TemplateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TemplateKey(****)")
    }
}

impl TemplateKey {
    /// A key from 32 bytes; `None` for any other length.
    pub fn from_bytes(key: &[u8]) -> Option<Self> {
        let cipher = XChaCha20Poly1305::new_from_slice(key).ok()?;
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(b"renzheng registry index v1");
        Some(TemplateKey {
            cipher,
            index: mac.finalize().into_bytes().into(),
        })
    }

    /// A fresh random key, for stores that live no longer than the process (tests).
    pub fn random() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        TemplateKey::from_bytes(&key).expect("a generated key has the right length")
    }

    /// The registry key of an ID number: hex HMAC-SHA256 under a key derived from this
    /// one. Rows are found by it; the number itself is never stored in clear.
    pub fn person_key(&self, id_number: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.index).expect("HMAC takes any key length");
        mac.update(id_number.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The lookup hash of a (normalised) name: hex HMAC-SHA256 under the same derived key,
    /// domain-separated from the ID numbers' keys. The console finds persons by exact name
    /// through it; the name itself stays sealed.
    pub fn name_key(&self, name: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.index).expect("HMAC takes any key length");
        mac.update(b"name\0");
        mac.update(name.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Seals a person's ID number and name for the row of `key` (its [`person_key`]):
    /// `nonce ‖ ciphertext` of `id \0 name`, authenticated with the key, so a sealed
    /// identity moved to another row does not open.
    ///
    /// [`person_key`]: TemplateKey::person_key
    pub fn seal_person(&self, key: &str, id_number: &str, name: &str) -> Vec<u8> {
        let mut clear = Vec::with_capacity(id_number.len() + name.len() + 1);
        clear.extend_from_slice(id_number.as_bytes());
        clear.push(0);
        clear.extend_from_slice(name.as_bytes());
        self.seal_bytes(&clear, key.as_bytes())
    }

    /// Opens [`seal_person`](TemplateKey::seal_person)'s output: the ID number and name.
    pub fn open_person(&self, key: &str, blob: &[u8]) -> Result<(String, String), StoreError> {
        let corrupt = || {
            StoreError::Corrupt(
                "a registry identity does not open with the template key (wrong key, or the row was altered)".into(),
            )
        };
        let clear = self.open_bytes(blob, key.as_bytes()).ok_or_else(corrupt)?;
        let text = String::from_utf8(clear).map_err(|_| corrupt())?;
        let (id, name) = text.split_once('\0').ok_or_else(corrupt)?;
        Ok((id.to_owned(), name.to_owned()))
    }

    fn seal_bytes(&self, msg: &[u8], aad: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg, aad })
            .expect("sealing a slice cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    fn open_bytes(&self, blob: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        if blob.len() < 24 {
            return None;
        }
        let (nonce, sealed) = blob.split_at(24);
        self.cipher
            .decrypt(nonce.into(), Payload { msg: sealed, aad })
            .ok()
    }

    /// Seals `values` for the portrait of `id_number` made by `model_id`.
    pub fn seal(&self, id_number: &str, model_id: &str, values: &[f32]) -> Vec<u8> {
        self.seal_bytes(
            &encode_embedding(values),
            &associated_data(id_number, model_id),
        )
    }

    /// Opens what [`seal`](Self::seal) made for the same ID number and model.
    pub fn open(
        &self,
        id_number: &str,
        model_id: &str,
        blob: &[u8],
    ) -> Result<Vec<f32>, StoreError> {
        if blob.len() < 24 {
            return Err(StoreError::Corrupt("sealed template is too short".into()));
        }
        let clear = self
            .open_bytes(blob, &associated_data(id_number, model_id))
            .ok_or_else(|| {
                StoreError::Corrupt(
                    "a face template does not open with the template key (wrong key, or the row was altered)".into(),
                )
            })?;
        decode_embedding(&clear)
    }
}

fn associated_data(id_number: &str, model_id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(id_number.len() + model_id.len() + 1);
    aad.extend_from_slice(id_number.as_bytes());
    aad.push(0);
    aad.extend_from_slice(model_id.as_bytes());
    aad
}

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

    #[test]
    fn sealed_templates_open_only_for_their_person_model_and_key() {
        let key = TemplateKey::random();
        let values = vec![0.25f32, -1.5, f32::MIN_POSITIVE];
        let blob = key.seal("11010519491231002X", "m1", &values);
        assert!(
            !blob.windows(4).any(|w| w == 0.25f32.to_le_bytes()),
            "no clear value in the blob"
        );
        assert_eq!(key.open("11010519491231002X", "m1", &blob).unwrap(), values);
        for (id, model) in [("11010519491231002X", "m2"), ("330106199003070022", "m1")] {
            assert!(matches!(
                key.open(id, model, &blob),
                Err(StoreError::Corrupt(_))
            ));
        }
        assert!(TemplateKey::random()
            .open("11010519491231002X", "m1", &blob)
            .is_err());
        assert!(key.open("11010519491231002X", "m1", &blob[..10]).is_err());
    }
}
