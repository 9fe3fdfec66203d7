//! The keys: the audit hashing key, the template sealing key, the secrets master key and
//! the photo encryption key; and the key rings that seal with them.
//!
//! Generated keys are 32 random bytes, written once (hex, mode 0600, in a 0700 directory)
//! on first use and read back afterwards. They live in the key directory, not the data
//! directory: a copy of the database (a backup, a stolen disk image of the data volume) is
//! then not also a copy of the key that un-pseudonymises its audit log or decrypts its
//! photos. A key found in the data directory by an older release is still used, with a
//! warning to move it.
//!
//! The template, secrets and photo keys can be rotated (`renzheng keys`, see
//! [`crate::rotation`]): a node holds, besides its key, the next one (`next_*_key`, or
//! `<name>.next.key` in the key directory) and the previous one (`<name>.previous.key`),
//! and the database says which of them seals ([`renzheng_store::KeyRecord`]). Every key
//! is used through HKDF subkeys, one per purpose; what a key seals starts with its key id
//! ([`renzheng_store::SEALED_V2`]), so it opens without trying keys and the rows still
//! under an older key can be counted.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::XChaCha20Poly1305;
use rand::RngCore;
use renzheng_store::{key_fingerprint, key_id_of_fingerprint, subkey, SEALED_V2};
use zeroize::Zeroizing;

use crate::settings::{Secret, Settings};

/// File name of the generated audit key.
pub const AUDIT_KEY_FILE: &str = "audit.key";
/// File name of the generated photo key.
pub const PHOTO_KEY_FILE: &str = "photo.key";
/// File name of the generated key that seals face templates in the database.
pub const TEMPLATE_KEY_FILE: &str = "template.key";
/// File name of the generated master key that seals the apps' AppSecrets.
pub const SECRETS_KEY_FILE: &str = "secrets.key";

/// A key that can be rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyName {
    /// Seals face templates and registry identities, keys the ID-number and name lookup
    /// hashes, and derives the export key.
    Template,
    /// Seals the apps' AppSecrets.
    Secrets,
    /// Seals kept photos (`keep_photos`).
    Photo,
}

impl KeyName {
    /// Every rotatable key.
    pub const ALL: [KeyName; 3] = [KeyName::Template, KeyName::Secrets, KeyName::Photo];

    /// The name the CLI and the database use.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyName::Template => "template",
            KeyName::Secrets => "secrets",
            KeyName::Photo => "photo",
        }
    }

    /// The key named `name`.
    pub fn parse(name: &str) -> Option<KeyName> {
        KeyName::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The key file in the key directory.
    pub fn file(self) -> &'static str {
        match self {
            KeyName::Template => TEMPLATE_KEY_FILE,
            KeyName::Secrets => SECRETS_KEY_FILE,
            KeyName::Photo => PHOTO_KEY_FILE,
        }
    }

    /// The file of the next key (a rotation's target) in the key directory.
    pub fn next_file(self) -> String {
        format!("{}.next.key", self.as_str())
    }

    /// The file of the previous key (kept until retired) in the key directory.
    pub fn previous_file(self) -> String {
        format!("{}.previous.key", self.as_str())
    }

    /// The environment name of the key (`RENZHENG_` + this).
    pub fn env(self) -> &'static str {
        match self {
            KeyName::Template => "TEMPLATE_KEY",
            KeyName::Secrets => "SECRETS_KEY",
            KeyName::Photo => "PHOTO_KEY",
        }
    }

    /// The environment name of the next key (`RENZHENG_` + this).
    pub fn next_env(self) -> &'static str {
        match self {
            KeyName::Template => "NEXT_TEMPLATE_KEY",
            KeyName::Secrets => "NEXT_SECRETS_KEY",
            KeyName::Photo => "NEXT_PHOTO_KEY",
        }
    }

    /// The key as configured (`*_key`), if it is.
    pub(crate) fn configured(self, settings: &Settings) -> Option<&Secret> {
        match self {
            KeyName::Template => settings.template_key.as_ref(),
            KeyName::Secrets => settings.secrets_key.as_ref(),
            KeyName::Photo => settings.photo_key.as_ref(),
        }
    }

    fn configured_next(self, settings: &Settings) -> Option<&Secret> {
        match self {
            KeyName::Template => settings.next_template_key.as_ref(),
            KeyName::Secrets => settings.next_secrets_key.as_ref(),
            KeyName::Photo => settings.next_photo_key.as_ref(),
        }
    }

    /// The HKDF purpose of a secrets or photo key's sealing subkey.
    fn purpose(self) -> &'static str {
        match self {
            KeyName::Template => "template seal",
            KeyName::Secrets => "app secrets",
            KeyName::Photo => "kept photos",
        }
    }
}

impl std::fmt::Display for KeyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key this node holds: its bytes (wiped on drop), fingerprint and where it came from.
#[derive(Clone)]
pub struct HeldKey {
    /// The 32 bytes.
    pub bytes: Zeroizing<Vec<u8>>,
    /// [`fingerprint`] of the bytes.
    pub fingerprint: String,
    /// Where it came from: a setting's name, or a key file's path.
    pub source: String,
}

impl std::fmt::Debug for HeldKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HeldKey({} from {})",
            self.fingerprint.get(..16).unwrap_or_default(),
            self.source
        )
    }
}

impl HeldKey {
    fn new(bytes: Zeroizing<Vec<u8>>, source: String) -> Self {
        HeldKey {
            fingerprint: fingerprint(&bytes),
            bytes,
            source,
        }
    }
}

/// Every key this node holds for `name`, its own first (`*_key`, else the key file,
/// generated when absent as [`key_file`] says), then the next key (`next_*_key`, the
/// `.next.key` file) and the previous one (the `.previous.key` file); each once.
pub fn held_keys(settings: &Settings, name: KeyName) -> Result<Vec<HeldKey>, KeyError> {
    let mut held = vec![match name.configured(settings) {
        Some(key) => HeldKey::new(parse_hex_key(key, name.env())?, name.env().to_owned()),
        None => HeldKey::new(
            key_file(settings, name.file(), name.env())?,
            key_path(settings, name.file())?.display().to_string(),
        ),
    }];
    if let Some(key) = name.configured_next(settings) {
        held.push(HeldKey::new(
            parse_hex_key(key, name.next_env())?,
            name.next_env().to_owned(),
        ));
    }
    if let Ok(dir) = key_dir(settings) {
        for file in [name.next_file(), name.previous_file()] {
            let path = dir.join(&file);
            if path.exists() {
                held.push(HeldKey::new(read_key(&path)?, path.display().to_string()));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    held.retain(|k| seen.insert(k.fingerprint.clone()));
    Ok(held)
}

fn parse_hex_key(key: &Secret, env: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    // Validated as 64 hex digits with the rest of the settings.
    hex::decode(key.expose().trim())
        .ok()
        .filter(|k| k.len() == 32)
        .map(Zeroizing::new)
        .ok_or_else(|| KeyError::Corrupt(env.into()))
}

/// Writes a new random key to `path` (0600, in a 0700 directory), failing if the file
/// exists; returns it.
pub fn create_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        let mut dirs = std::fs::DirBuilder::new();
        dirs.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
        dirs.create(dir).map_err(io)?;
    }
    let key = new_key();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(hex::encode(&*key).as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(key)
}

/// 32 fresh random bytes.
pub fn new_key() -> Zeroizing<Vec<u8>> {
    let mut key = Zeroizing::new(vec![0u8; 32]);
    rand::thread_rng().fill_bytes(&mut key);
    key
}

/// Problems with a key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
    /// Neither `key_dir` nor a home directory to default it from.
    #[error("no key directory: set key_dir (RENZHENG_KEY_DIR)")]
    NoKeyDir,
    /// The file does not hold 64 hex digits.
    #[error("key file {0} is corrupt (expected 64 hex digits)")]
    Corrupt(String),
    /// The audit key is neither 64 hex digits nor a passphrase of 16 characters or more.
    #[error("audit_key must be 64 hex digits, or a passphrase of at least 16 characters")]
    WeakAuditKey,
    /// Several nodes share the database (`database_url`) and this key is neither
    /// configured nor in the key directory: generating one here would write data the
    /// other nodes cannot read.
    #[error("{0} is not configured: with database_url every node must be given the same keys (set RENZHENG_{1}, or copy {2} into key_dir)")]
    NotShared(&'static str, &'static str, &'static str),
}

/// The key file `file` of the key directory: read, or created when absent, except when
/// nodes share a database (then a missing key is [`KeyError::NotShared`]).
fn key_file(
    settings: &Settings,
    file: &'static str,
    env: &'static str,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let path = key_path(settings, file)?;
    if settings.database_url.is_some() && !path.exists() {
        return Err(KeyError::NotShared(file, env, file));
    }
    load_or_create_key(&path)
}

/// The audit hashing key.
pub struct AuditKey {
    /// The key pseudonyms are made with (32 bytes).
    pub key: Zeroizing<Vec<u8>>,
    /// What releases before 0.9 made of the same setting (its text's bytes, used raw):
    /// deleting a person also clears the pseudonyms made with it.
    pub legacy: Option<Zeroizing<Vec<u8>>>,
    /// Whether the key is 32 random bytes (generated, or 64 hex digits), so that its
    /// fingerprint can be stored for nodes to compare without helping anyone guess it.
    pub random: bool,
}

/// The audit hashing key: `audit_key` as 64 hex digits, or a passphrase stretched with
/// Argon2id; else generated once in the key directory.
pub fn audit_key(settings: &Settings) -> Result<AuditKey, KeyError> {
    let Some(configured) = &settings.audit_key else {
        return Ok(AuditKey {
            key: key_file(settings, AUDIT_KEY_FILE, "AUDIT_KEY")?,
            legacy: None,
            random: true,
        });
    };
    // Releases before 0.9 used the configured text's bytes as the key, whatever it was.
    let legacy = Some(Zeroizing::new(configured.expose().as_bytes().to_vec()));
    let text = configured.expose().trim();
    if let Some(key) = hex::decode(text).ok().filter(|k| k.len() == 32) {
        return Ok(AuditKey {
            key: Zeroizing::new(key),
            legacy,
            random: true,
        });
    }
    if configured.expose().chars().count() < 16 {
        return Err(KeyError::WeakAuditKey);
    }
    Ok(AuditKey {
        key: stretch_passphrase(configured.expose()),
        legacy,
        random: false,
    })
}

/// A 32-byte key from a passphrase: Argon2id (19 MiB, 2 passes, OWASP's minimum), with a
/// fixed salt (every node must derive the same key; the passphrase is the secret). A guess
/// then costs an Argon2 computation, not one HMAC.
fn stretch_passphrase(passphrase: &str) -> Zeroizing<Vec<u8>> {
    let params = argon2::Params::new(19 * 1024, 2, 1, Some(32)).expect("valid Argon2 parameters");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new(vec![0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), b"renzheng audit key v2", &mut out)
        .expect("Argon2 with valid parameters and a 21-byte salt");
    out
}

/// Compares secrets in time independent of where they differ (only the lengths show).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A key's fingerprint: HMAC-SHA256 of a fixed label under the key. It identifies the
/// key without revealing it, so nodes can compare keys through the database.
pub fn fingerprint(key: &[u8]) -> String {
    key_fingerprint(key)
}

/// HMAC-SHA256 of a fixed `label` under `key`: a value tied to the key that neither
/// reveals it nor serves another purpose (the export key).
pub(crate) fn derive(key: &[u8], label: &str) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

/// One key of a [`Sealer`].
struct SealView {
    /// The key id its blobs start with; `None` for the derivation of older releases (the
    /// raw key, blobs without a prefix).
    id: Option<[u8; 8]>,
    cipher: XChaCha20Poly1305,
}

/// A key ring sealing one kind of value (XChaCha20-Poly1305, `2 ‖ key id ‖ nonce ‖
/// ciphertext`): the current key seals, every key of the ring opens what it sealed.
#[derive(Clone)]
pub struct Sealer {
    /// The current key's view first, then the others', then the legacy views.
    views: Arc<[SealView]>,
}

impl Sealer {
    /// The ring of `current` and `others` (32 bytes each) for the key `name`.
    pub fn ring(name: KeyName, current: &[u8], others: &[&[u8]]) -> Self {
        let mut keys = vec![current];
        keys.extend(others.iter().copied().filter(|k| *k != current));
        let mut views = Vec::with_capacity(keys.len() * 2);
        for key in &keys {
            views.push(SealView {
                id: key_id_of_fingerprint(&fingerprint(key)),
                cipher: XChaCha20Poly1305::new_from_slice(subkey(key, name.purpose()).as_ref())
                    .expect("subkeys are 32 bytes"),
            });
        }
        for key in &keys {
            views.push(SealView {
                id: None,
                cipher: XChaCha20Poly1305::new_from_slice(key).expect("keys are 32 bytes"),
            });
        }
        Sealer {
            views: views.into(),
        }
    }

    /// The prefix of what the current key seals.
    pub fn prefix(&self) -> Vec<u8> {
        let mut prefix = vec![SEALED_V2];
        prefix.extend_from_slice(&self.views[0].id.expect("the current view has an id"));
        prefix
    }

    /// Whether `blob` was sealed by the current key.
    pub fn is_current(&self, blob: &[u8]) -> bool {
        blob.starts_with(&self.prefix())
    }

    fn seal(&self, aad: &[u8], msg: &[u8]) -> Vec<u8> {
        let view = &self.views[0];
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = self.prefix();
        out.extend_from_slice(&nonce);
        out.extend(
            view.cipher
                .encrypt(&nonce, Payload { msg, aad })
                .expect("encryption of a slice cannot fail"),
        );
        out
    }

    /// Opens `blob` with the view its prefix names (authenticated with `aad`), or, a blob
    /// of an older release, with each legacy view (authenticated with `legacy_aad`).
    fn open(&self, aad: &[u8], legacy_aad: &[u8], blob: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        self.views.iter().find_map(|view| {
            let (body, aad) = match view.id {
                Some(id) => match blob.split_first() {
                    Some((&SEALED_V2, rest)) if rest.get(..8) == Some(&id[..]) => (&rest[8..], aad),
                    _ => return None,
                },
                None => (blob, legacy_aad),
            };
            let (nonce, ciphertext) = body.split_at_checked(24)?;
            view.cipher
                .decrypt(
                    nonce.into(),
                    Payload {
                        msg: ciphertext,
                        aad,
                    },
                )
                .ok()
                .map(Zeroizing::new)
        })
    }
}

/// Seals AppSecrets (bound to the AppKey as associated data, so a sealed secret copied
/// onto another app does not open).
#[derive(Clone)]
pub struct SecretBox {
    ring: Sealer,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(****)")
    }
}

impl SecretBox {
    /// A box under one 32-byte key.
    pub fn new(key: &[u8]) -> Self {
        SecretBox::from_ring(Sealer::ring(KeyName::Secrets, key, &[]))
    }

    /// A box over a key ring.
    pub fn from_ring(ring: Sealer) -> Self {
        SecretBox { ring }
    }

    /// The ring.
    pub fn ring(&self) -> &Sealer {
        &self.ring
    }

    /// The sealed `secret`, bound to `app_key`.
    pub fn seal(&self, app_key: &str, secret: &str) -> Vec<u8> {
        self.ring.seal(app_key.as_bytes(), secret.as_bytes())
    }

    /// The secret sealed for `app_key`; `None` under a key the ring lacks, for another
    /// AppKey, or altered.
    pub fn open(&self, app_key: &str, sealed: &[u8]) -> Option<Zeroizing<String>> {
        let clear = self
            .ring
            .open(app_key.as_bytes(), app_key.as_bytes(), sealed)?;
        String::from_utf8(clear.to_vec()).ok().map(Zeroizing::new)
    }
}

/// Encrypts kept photos, each bound to its person's ID number (associated data), so that
/// a photo moved to another person's portrait does not open.
#[derive(Clone)]
pub struct PhotoCipher {
    ring: Sealer,
}

impl std::fmt::Debug for PhotoCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PhotoCipher(****)")
    }
}

fn photo_aad(id_number: &str) -> Vec<u8> {
    let mut aad = b"renzheng kept photo\0".to_vec();
    aad.extend_from_slice(id_number.as_bytes());
    aad
}

impl PhotoCipher {
    /// A cipher under one 32-byte key.
    pub fn new(key: &[u8]) -> Self {
        PhotoCipher::from_ring(Sealer::ring(KeyName::Photo, key, &[]))
    }

    /// A cipher over a key ring.
    pub fn from_ring(ring: Sealer) -> Self {
        PhotoCipher { ring }
    }

    /// The ring.
    pub fn ring(&self) -> &Sealer {
        &self.ring
    }

    /// The photo sealed for the person `id_number`.
    pub fn encrypt(&self, id_number: &str, photo: &[u8]) -> Vec<u8> {
        self.ring.seal(&photo_aad(id_number), photo)
    }

    /// The photo sealed by [`encrypt`](Self::encrypt) for `id_number`; `None` when it was
    /// sealed under a key the ring lacks, for another person, or altered. Photos of
    /// releases before 0.9 (bound to no one) open until a rotation re-seals them.
    pub fn decrypt(&self, id_number: &str, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        self.ring.open(&photo_aad(id_number), b"", sealed)
    }
}

/// The directory of generated keys: `key_dir`, else `$XDG_CONFIG_HOME/renzheng/keys`,
/// else `~/.config/renzheng/keys`.
pub fn key_dir(settings: &Settings) -> Result<PathBuf, KeyError> {
    if let Some(dir) = &settings.key_dir {
        return Ok(dir.clone());
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or(KeyError::NoKeyDir)?;
    Ok(config.join("renzheng").join("keys"))
}

/// Where the key `file` is: in the key directory, or (from an older release) in the data
/// directory when only that one exists.
fn key_path(settings: &Settings, file: &str) -> Result<PathBuf, KeyError> {
    let path = key_dir(settings)?.join(file);
    let legacy = settings.data_dir.join(file);
    if !path.exists() && legacy.exists() {
        tracing::warn!(
            key = %legacy.display(),
            move_to = %path.display(),
            "a key is kept in the data directory; move it to the key directory"
        );
        return Ok(legacy);
    }
    Ok(path)
}

/// Tightens an existing key file to 0600 and its directory to 0700 when they are open to
/// other users (a key copied in with `cp` under the default umask, a directory made by
/// hand), saying so: a key others can read is a key to assume exposed, so the warning
/// names the file for the operator to judge (rotate, or not).
fn tighten(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        for (target, wanted) in [(Some(path), 0o600), (dir, 0o700)] {
            let Some(target) = target else { continue };
            let mode = std::fs::metadata(target)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %target.display(),
                    mode = format!("{mode:o}"),
                    wanted = format!("{wanted:o}"),
                    "a key file or key directory was open to other users; tightened"
                );
                std::fs::set_permissions(target, std::fs::Permissions::from_mode(wanted))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Reads the 32-byte key at `path`, tightening its permissions ([`tighten`]).
pub fn read_key(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
    tighten(path).map_err(io)?;
    let key = Zeroizing::new(
        hex::decode(text.trim()).map_err(|_| KeyError::Corrupt(path.display().to_string()))?,
    );
    if key.len() != 32 {
        return Err(KeyError::Corrupt(path.display().to_string()));
    }
    Ok(key)
}

/// Reads the 32-byte key at `path` ([`read_key`]), creating it when absent.
pub fn load_or_create_key(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    match read_key(path) {
        Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            match create_key_file(path) {
                // Another process created it between our read and our write: use theirs.
                Err(KeyError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    read_key(path)
                }
                other => other,
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(AUDIT_KEY_FILE);
        let a = load_or_create_key(&path).unwrap();
        let b = load_or_create_key(&path).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
        std::fs::write(&path, "nope").unwrap();
        assert!(matches!(
            load_or_create_key(&path),
            Err(KeyError::Corrupt(_))
        ));
    }

    #[test]
    fn photos_round_trip_bound_to_their_person_and_tampering_is_detected() {
        let c = PhotoCipher::new(&[7u8; 32]);
        let sealed = c.encrypt("11010519491231002X", b"photo");
        assert!(!sealed.windows(5).any(|w| w == b"photo"));
        assert_eq!(
            &c.decrypt("11010519491231002X", &sealed).unwrap()[..],
            b"photo"
        );
        assert!(
            c.decrypt("330106199003070022", &sealed).is_none(),
            "another person"
        );
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(c.decrypt("11010519491231002X", &bad).is_none());
    }

    #[test]
    fn photos_of_older_releases_still_open() {
        // What 0.8 wrote: the raw key, no prefix, no associated data.
        let key = [7u8; 32];
        let raw = XChaCha20Poly1305::new_from_slice(&key).unwrap();
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut old = nonce.to_vec();
        old.extend(raw.encrypt(&nonce, &b"photo"[..]).unwrap());
        let c = PhotoCipher::new(&key);
        assert_eq!(&c.decrypt("any", &old).unwrap()[..], b"photo");
        assert!(!c.ring().is_current(&old));
        assert!(c.ring().is_current(&c.encrypt("any", b"photo")));
    }

    #[test]
    fn secrets_are_bound_to_their_app_key() {
        let sealed_box = SecretBox::new(&[3u8; 32]);
        let sealed = sealed_box.seal("key1", "s3cret");
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(
            sealed_box
                .open("key1", &sealed)
                .as_deref()
                .map(String::as_str),
            Some("s3cret")
        );
        assert_eq!(sealed_box.open("key2", &sealed), None);
        assert_eq!(SecretBox::new(&[4u8; 32]).open("key1", &sealed), None);
        assert_eq!(sealed_box.open("key1", &sealed[..10]), None);
    }

    #[test]
    fn a_ring_opens_under_each_key_and_seals_under_the_current_one() {
        let old = SecretBox::new(&[3u8; 32]);
        let sealed_old = old.seal("k", "a");
        let ring = SecretBox::from_ring(Sealer::ring(KeyName::Secrets, &[4u8; 32], &[&[3u8; 32]]));
        assert_eq!(
            ring.open("k", &sealed_old).as_deref().map(String::as_str),
            Some("a")
        );
        let sealed_new = ring.seal("k", "b");
        assert!(ring.ring().is_current(&sealed_new) && !ring.ring().is_current(&sealed_old));
        assert_eq!(old.open("k", &sealed_new), None);
        assert_eq!(
            SecretBox::new(&[4u8; 32])
                .open("k", &sealed_new)
                .as_deref()
                .map(String::as_str),
            Some("b")
        );
    }

    #[test]
    fn generated_keys_live_outside_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().join("data"),
            key_dir: Some(dir.path().join("keys")),
            keep_photos: true,
            ..Settings::default()
        };
        let key = audit_key(&settings).unwrap();
        assert!(key.random && key.legacy.is_none());
        for name in KeyName::ALL {
            assert_eq!(held_keys(&settings, name).unwrap().len(), 1);
        }
        for file in [
            TEMPLATE_KEY_FILE,
            AUDIT_KEY_FILE,
            PHOTO_KEY_FILE,
            SECRETS_KEY_FILE,
        ] {
            assert!(dir.path().join("keys").join(file).exists(), "{file}");
        }
        assert!(!settings.data_dir.join(AUDIT_KEY_FILE).exists());
        assert_eq!(audit_key(&settings).unwrap().key, key.key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(dir.path().join("keys")), 0o700);
            assert_eq!(mode(dir.path().join("keys").join(AUDIT_KEY_FILE)), 0o600);
        }
    }

    #[test]
    fn next_and_previous_keys_are_held_beside_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let mut settings = Settings {
            data_dir: dir.path().join("data"),
            key_dir: Some(keys.clone()),
            ..Settings::default()
        };
        let own = held_keys(&settings, KeyName::Template).unwrap();
        let previous = create_key_file(&keys.join(KeyName::Template.previous_file())).unwrap();
        settings.next_template_key = Some(Secret::new("cd".repeat(32)));
        let held = held_keys(&settings, KeyName::Template).unwrap();
        assert_eq!(held.len(), 3);
        assert_eq!(held[0].fingerprint, own[0].fingerprint);
        assert_eq!(held[1].bytes[..], [0xcd; 32]);
        assert_eq!(held[2].bytes, previous);
        // The same key given twice is held once.
        settings.next_template_key = Some(Secret::new(hex::encode(&*previous)));
        assert_eq!(held_keys(&settings, KeyName::Template).unwrap().len(), 2);
    }

    #[test]
    fn audit_keys_are_random_bytes_or_stretched_passphrases() {
        let mut settings = Settings {
            audit_key: Some(Secret::new("ab".repeat(32))),
            ..Settings::default()
        };
        let hex_key = audit_key(&settings).unwrap();
        assert!(hex_key.random);
        assert_eq!(hex_key.legacy.as_deref().map(|k| k.len()), Some(64));
        assert_eq!(hex_key.key[..], [0xab; 32]);
        settings.audit_key = Some(Secret::new("correct horse battery staple"));
        let stretched = audit_key(&settings).unwrap();
        assert!(!stretched.random);
        assert_eq!(stretched.key.len(), 32);
        assert_ne!(&stretched.key[..], b"correct horse battery staple");
        assert_eq!(
            stretched.legacy.as_deref().map(|k| &k[..]),
            Some(&b"correct horse battery staple"[..])
        );
        assert_eq!(audit_key(&settings).unwrap().key, stretched.key, "stable");
        settings.audit_key = Some(Secret::new("too short"));
        assert!(matches!(audit_key(&settings), Err(KeyError::WeakAuditKey)));
    }

    #[cfg(unix)]
    #[test]
    fn key_files_and_their_directory_open_to_others_are_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        let file = keys.join(TEMPLATE_KEY_FILE);
        std::fs::write(&file, hex::encode([7u8; 32])).unwrap();
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(load_or_create_key(&file).unwrap()[..], [7u8; 32]);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&keys), 0o700);
        assert_eq!(mode(&file), 0o600);
    }

    #[test]
    fn nodes_sharing_a_database_never_generate_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            data_dir: dir.path().join("data"),
            key_dir: Some(dir.path().join("keys")),
            database_url: Some(crate::settings::Secret::new("postgres://db/renzheng")),
            ..Settings::default()
        };
        let err = held_keys(&settings, KeyName::Template)
            .unwrap_err()
            .to_string();
        assert!(err.contains("RENZHENG_TEMPLATE_KEY"), "{err}");
        assert!(!dir.path().join("keys").exists());
        settings.template_key = Some(crate::settings::Secret::new("ab".repeat(32)));
        settings.audit_key = Some(crate::settings::Secret::new("a shared audit key"));
        held_keys(&settings, KeyName::Template).unwrap();
        audit_key(&settings).unwrap();
        assert!(held_keys(&settings, KeyName::Secrets).is_err());
        assert_eq!(fingerprint(&[1; 32]), fingerprint(&[1; 32]));
        assert_ne!(fingerprint(&[1; 32]), fingerprint(&[2; 32]));
    }

    #[test]
    fn a_key_left_in_the_data_directory_is_still_used() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().join("data"),
            key_dir: Some(dir.path().join("keys")),
            ..Settings::default()
        };
        let legacy = load_or_create_key(&settings.data_dir.join(AUDIT_KEY_FILE)).unwrap();
        assert_eq!(audit_key(&settings).unwrap().key, legacy);
        assert!(!dir.path().join("keys").join(AUDIT_KEY_FILE).exists());
    }
}
