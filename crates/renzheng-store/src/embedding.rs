//! The on-disk form of face embeddings, shared by every backend: little-endian `f32`s,
//! sealed with XChaCha20-Poly1305 under the template key.
//!
//! A face template is biometric data: a copy of the database must not be a copy of the
//! faces. The sealed form is `2 ‖ key id (8 bytes) ‖ nonce (24 bytes) ‖ ciphertext`,
//! authenticated together with the portrait's ID number and model id, so a template moved
//! to another person or model does not open.

use std::sync::Arc;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::XChaCha20Poly1305;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::StoreError;

/// The first byte of a blob sealed by this release: `SEALED_V2 ‖ key id (8 bytes) ‖ nonce
/// (24) ‖ ciphertext`. The key id names the key that sealed it, so a blob opens without
/// trying keys, and the rows still under an older key are found in SQL
/// (`substr(blob, 1, 9)`), which key rotation and `keys status` rely on. Blobs of older
/// releases carry no prefix (`nonce ‖ ciphertext`) and are opened by trying each key.
pub const SEALED_V2: u8 = 2;

/// Length of the prefix [`SEALED_V2`] ‖ key id.
pub const SEALED_PREFIX_LEN: usize = 9;

/// A key's fingerprint: hex HMAC-SHA256 of a fixed label under the key. It identifies the
/// key without revealing it, so nodes can compare keys through the database; its first 8
/// bytes are the key id that prefixes what the key seals.
pub fn key_fingerprint(key: &[u8]) -> String {
    hex::encode(hmac(key, &[b"renzheng key fingerprint v1"]))
}

/// The key id (first 8 bytes of the fingerprint) of a hex fingerprint.
pub fn key_id_of_fingerprint(fingerprint: &str) -> Option<[u8; 8]> {
    let bytes = hex::decode(fingerprint.get(..16)?).ok()?;
    bytes.try_into().ok()
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// A 32-byte subkey of `key` for one purpose (HKDF-SHA256, `info` naming the purpose):
/// a key is never used raw, nor for two purposes.
pub fn subkey(key: &[u8], info: &str) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    hkdf::Hkdf::<Sha256>::new(Some(b"renzheng v2"), key)
        .expand(info.as_bytes(), out.as_mut())
        .expect("32 bytes is a valid HKDF length");
    out
}

/// One key as the registry uses it: a cipher and a lookup-hash key.
struct View {
    /// The key id that prefixes what this view seals; `None` for the derivation of older
    /// releases (the raw key as cipher), whose blobs carry no prefix.
    id: Option<[u8; 8]>,
    cipher: XChaCha20Poly1305,
    /// HMAC key of the registry's lookup hashes.
    index: Zeroizing<[u8; 32]>,
}

impl View {
    fn current(key: &[u8]) -> Option<View> {
        let id = key_id_of_fingerprint(&key_fingerprint(key));
        Some(View {
            id,
            cipher: XChaCha20Poly1305::new_from_slice(subkey(key, "template seal").as_ref())
                .ok()?,
            index: subkey(key, "registry index"),
        })
    }

    /// The derivation of releases before 0.9: the raw key as cipher key, the lookup key an
    /// HMAC of a label. Kept to read (and rotate away) the rows they wrote.
    fn legacy(key: &[u8]) -> Option<View> {
        Some(View {
            id: None,
            cipher: XChaCha20Poly1305::new_from_slice(key).ok()?,
            index: Zeroizing::new(hmac(key, &[b"renzheng registry index v1"])),
        })
    }

    fn person_key(&self, id_number: &str) -> String {
        hex::encode(hmac(self.index.as_ref(), &[id_number.as_bytes()]))
    }

    fn name_key(&self, name: &str) -> String {
        hex::encode(hmac(self.index.as_ref(), &[b"name\0", name.as_bytes()]))
    }

    fn seal(&self, msg: &[u8], aad: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg, aad })
            .expect("sealing a slice cannot fail");
        let mut out = Vec::with_capacity(SEALED_PREFIX_LEN + 24 + sealed.len());
        if let Some(id) = self.id {
            out.push(SEALED_V2);
            out.extend_from_slice(&id);
        }
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    fn open(&self, blob: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let body = match self.id {
            Some(id) => match blob.split_first() {
                Some((&SEALED_V2, rest)) if rest.get(..8) == Some(&id[..]) => &rest[8..],
                _ => return None,
            },
            None => blob,
        };
        let (nonce, sealed) = body.split_at_checked(24)?;
        self.cipher
            .decrypt(nonce.into(), Payload { msg: sealed, aad })
            .ok()
    }
}

/// The keys that seal face templates at rest and the registry's identities: a person's
/// row is found by a keyed hash of the ID number ([`person_key`]) and holds the ID number
/// and name only sealed ([`seal_person`]). Kept by the application outside the data
/// directory, like the other keys.
///
/// It is a key ring: the current key, which seals everything written, and while a key
/// rotation runs the others (the previous key, and each key's derivation of older
/// releases), which only open and find what they sealed. Each key is used through HKDF
/// subkeys, one per purpose (sealing, lookup hashes).
///
/// [`person_key`]: TemplateKey::person_key
/// [`seal_person`]: TemplateKey::seal_person
#[derive(Clone)]
pub struct TemplateKey {
    /// The current key's view first; then the other keys'; then the legacy views.
    views: Arc<[View]>,
    fingerprint: Arc<str>,
}

impl std::fmt::Debug for TemplateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TemplateKey(****)")
    }
}

/// The view of a [`TemplateKey`] a row was found under: writes to that row seal with the
/// same key, so a row is always wholly under one key (a rotation moves it whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ViewIndex(usize);

impl ViewIndex {
    /// The current key's view.
    pub(crate) const CURRENT: ViewIndex = ViewIndex(0);
}

impl TemplateKey {
    /// A key from 32 bytes; `None` for any other length.
    pub fn from_bytes(key: &[u8]) -> Option<Self> {
        TemplateKey::ring(key, &[])
    }

    /// The ring of `current` (which seals all that is written) and `others` (which only
    /// open what they sealed); `None` when a key is not 32 bytes.
    pub fn ring(current: &[u8], others: &[&[u8]]) -> Option<Self> {
        if current.len() != 32 || others.iter().any(|k| k.len() != 32) {
            return None;
        }
        let fingerprint = key_fingerprint(current);
        let mut seen = vec![fingerprint.clone()];
        let mut keys = vec![current];
        for other in others {
            let fp = key_fingerprint(other);
            if !seen.contains(&fp) {
                seen.push(fp);
                keys.push(other);
            }
        }
        let mut views = Vec::with_capacity(keys.len() * 2);
        for key in &keys {
            views.push(View::current(key)?);
        }
        for key in &keys {
            views.push(View::legacy(key)?);
        }
        Some(TemplateKey {
            views: views.into(),
            fingerprint: fingerprint.into(),
        })
    }

    /// A fresh random key, for stores that live no longer than the process (tests).
    pub fn random() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        TemplateKey::from_bytes(&key).expect("a generated key has the right length")
    }

    /// The current key's fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The prefix of what the current key seals ([`SEALED_V2`] ‖ key id).
    pub fn sealed_prefix(&self) -> Vec<u8> {
        let mut prefix = vec![SEALED_V2];
        prefix.extend_from_slice(&self.views[0].id.expect("the current view has an id"));
        prefix
    }

    /// The registry key of an ID number under the current key: hex HMAC-SHA256 under a
    /// subkey. Rows are found by it; the number itself is never stored in clear.
    pub fn person_key(&self, id_number: &str) -> String {
        self.views[0].person_key(id_number)
    }

    /// The registry keys the ID number may be stored under, one per view (the current
    /// key's first), each with the view it belongs to.
    pub(crate) fn person_keys(&self, id_number: &str) -> Vec<(String, ViewIndex)> {
        self.views
            .iter()
            .enumerate()
            .map(|(i, v)| (v.person_key(id_number), ViewIndex(i)))
            .collect()
    }

    /// The view whose key made `person_key` for `id_number`.
    pub(crate) fn view_of(&self, id_number: &str, person_key: &str) -> Option<ViewIndex> {
        self.person_keys(id_number)
            .into_iter()
            .find(|(k, _)| k == person_key)
            .map(|(_, v)| v)
    }

    /// The lookup hash of a (normalised) name under the current key: hex HMAC-SHA256
    /// under the same subkey, domain-separated from the ID numbers' keys. The console
    /// finds persons by exact name through it; the name itself stays sealed.
    pub fn name_key(&self, name: &str) -> String {
        self.views[0].name_key(name)
    }

    /// The name's lookup hash under each view.
    pub(crate) fn name_keys(&self, name: &str) -> Vec<String> {
        let mut keys: Vec<String> = self.views.iter().map(|v| v.name_key(name)).collect();
        keys.dedup();
        keys
    }

    /// The name's lookup hash under `view`.
    pub(crate) fn name_key_in(&self, view: ViewIndex, name: &str) -> String {
        self.views[view.0].name_key(name)
    }

    /// Seals a person's ID number and name for the row of `key` (its [`person_key`]):
    /// `prefix ‖ nonce ‖ ciphertext` of `id \0 name`, authenticated with the key, so a
    /// sealed identity moved to another row does not open.
    ///
    /// [`person_key`]: TemplateKey::person_key
    pub fn seal_person(&self, key: &str, id_number: &str, name: &str) -> Vec<u8> {
        self.seal_person_in(ViewIndex::CURRENT, key, id_number, name)
    }

    pub(crate) fn seal_person_in(
        &self,
        view: ViewIndex,
        key: &str,
        id_number: &str,
        name: &str,
    ) -> Vec<u8> {
        let mut clear = Zeroizing::new(Vec::with_capacity(id_number.len() + name.len() + 1));
        clear.extend_from_slice(id_number.as_bytes());
        clear.push(0);
        clear.extend_from_slice(name.as_bytes());
        self.views[view.0].seal(&clear, key.as_bytes())
    }

    /// Opens [`seal_person`](TemplateKey::seal_person)'s output: the ID number and name.
    pub fn open_person(&self, key: &str, blob: &[u8]) -> Result<(String, String), StoreError> {
        let corrupt = || {
            StoreError::Corrupt(
                "a registry identity does not open with the template keys (a key this node lacks, or the row was altered)".into(),
            )
        };
        let clear = Zeroizing::new(self.open_bytes(blob, key.as_bytes()).ok_or_else(corrupt)?);
        let text = std::str::from_utf8(&clear).map_err(|_| corrupt())?;
        let (id, name) = text.split_once('\0').ok_or_else(corrupt)?;
        Ok((id.to_owned(), name.to_owned()))
    }

    /// Opens a blob under whichever view sealed it: the one its prefix names, else (a
    /// blob of an older release) each legacy view in turn.
    fn open_bytes(&self, blob: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        self.views.iter().find_map(|v| v.open(blob, aad))
    }

    /// Whether `blob` was sealed by the current key.
    pub fn is_current(&self, blob: &[u8]) -> bool {
        blob.starts_with(&self.sealed_prefix())
    }

    /// Seals `values` for the portrait of `id_number` made by `model_id`.
    pub fn seal(&self, id_number: &str, model_id: &str, values: &[f32]) -> Vec<u8> {
        self.seal_in(ViewIndex::CURRENT, id_number, model_id, values)
    }

    pub(crate) fn seal_in(
        &self,
        view: ViewIndex,
        id_number: &str,
        model_id: &str,
        values: &[f32],
    ) -> Vec<u8> {
        let clear = Zeroizing::new(encode_embedding(values));
        self.views[view.0].seal(&clear, &associated_data(id_number, model_id))
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
            .map(Zeroizing::new)
            .ok_or_else(|| {
                StoreError::Corrupt(
                    "a face template does not open with the template keys (a key this node lacks, or the row was altered)".into(),
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

    #[test]
    fn a_ring_opens_what_each_of_its_keys_sealed_and_seals_under_the_current_one() {
        let (old, new) = ([1u8; 32], [2u8; 32]);
        let before = TemplateKey::from_bytes(&old).unwrap();
        let during = TemplateKey::ring(&new, &[&old]).unwrap();
        let after = TemplateKey::from_bytes(&new).unwrap();
        let id = "11010519491231002X";
        let sealed_old = before.seal(id, "m", &[1.0]);
        let sealed_new = during.seal(id, "m", &[2.0]);
        assert_eq!(during.open(id, "m", &sealed_old).unwrap(), vec![1.0]);
        assert_eq!(after.open(id, "m", &sealed_new).unwrap(), vec![2.0]);
        assert!(
            after.open(id, "m", &sealed_old).is_err(),
            "the old key is gone"
        );
        assert!(during.is_current(&sealed_new) && !during.is_current(&sealed_old));
        // Lookups: the ring knows the ID number's key under each of its keys.
        let keys = during.person_keys(id);
        assert!(keys.iter().any(|(k, _)| *k == before.person_key(id)));
        assert_eq!(keys[0].0, after.person_key(id));
        assert_ne!(before.person_key(id), after.person_key(id));
    }

    #[test]
    fn blobs_of_the_legacy_derivation_still_open() {
        // What releases before HKDF subkeys sealed: the raw key as cipher, no prefix.
        let key = [9u8; 32];
        let legacy = View::legacy(&key).unwrap();
        let blob = legacy.seal(&encode_embedding(&[0.5]), &associated_data("x", "m"));
        assert_ne!(
            blob[0..9],
            TemplateKey::from_bytes(&key).unwrap().sealed_prefix()[..]
        );
        let ring = TemplateKey::from_bytes(&key).unwrap();
        assert_eq!(ring.open("x", "m", &blob).unwrap(), vec![0.5]);
        assert!(!ring.is_current(&blob));
        // The lookup hash of the legacy derivation is one of the ring's.
        let legacy_key = legacy.person_key("x");
        assert!(ring.view_of("x", &legacy_key).is_some());
        assert_ne!(ring.person_key("x"), legacy_key);
        // The sealing subkey is not the raw key.
        let raw = XChaCha20Poly1305::new_from_slice(&key).unwrap();
        let sealed = ring.seal("x", "m", &[0.5]);
        let body = &sealed[SEALED_PREFIX_LEN..];
        assert!(raw
            .decrypt(
                body[..24].into(),
                Payload {
                    msg: &body[24..],
                    aad: &associated_data("x", "m")
                }
            )
            .is_err());
    }
}
