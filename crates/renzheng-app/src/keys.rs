//! The generated keys: the audit hashing key, the template sealing key and the photo
//! encryption key.
//!
//! Both are 32 random bytes, written once (hex, mode 0600, in a 0700 directory) on first
//! use and read back afterwards, so that audit hashes stay comparable across restarts and
//! kept photos stay readable. They live in the key directory, not the data directory: a
//! copy of the database (a backup, a stolen disk image of the data volume) is then not
//! also a copy of the key that un-pseudonymises its audit log or decrypts its photos.
//! A key found in the data directory by an older release is still used, with a warning
//! to move it.

use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::XChaCha20Poly1305;
use rand::RngCore;

use crate::settings::Settings;

/// File name of the generated audit key.
pub const AUDIT_KEY_FILE: &str = "audit.key";
/// File name of the generated photo key.
pub const PHOTO_KEY_FILE: &str = "photo.key";
/// File name of the generated key that seals face templates in the database.
pub const TEMPLATE_KEY_FILE: &str = "template.key";
/// File name of the generated master key that seals the apps' AppSecrets.
pub const SECRETS_KEY_FILE: &str = "secrets.key";

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
) -> Result<Vec<u8>, KeyError> {
    let path = key_path(settings, file)?;
    if settings.database_url.is_some() && !path.exists() {
        return Err(KeyError::NotShared(file, env, file));
    }
    load_or_create_key(&path)
}

/// A configured 64-hex-digit key, or the key file.
fn hex_key(
    settings: &Settings,
    configured: Option<&crate::settings::Secret>,
    file: &'static str,
    env: &'static str,
) -> Result<Vec<u8>, KeyError> {
    match configured {
        // Validated as 64 hex digits with the rest of the settings.
        Some(key) => hex::decode(key.expose().trim()).map_err(|_| KeyError::Corrupt(env.into())),
        None => key_file(settings, file, env),
    }
}

/// The audit hashing key: configured, or generated once in the key directory.
pub fn audit_key(settings: &Settings) -> Result<Vec<u8>, KeyError> {
    match &settings.audit_key {
        Some(key) => Ok(key.expose().as_bytes().to_vec()),
        None => key_file(settings, AUDIT_KEY_FILE, "AUDIT_KEY"),
    }
}

/// The photo key when `keep_photos` is on.
pub fn photo_key(settings: &Settings) -> Result<Option<Vec<u8>>, KeyError> {
    if !settings.keep_photos {
        return Ok(None);
    }
    hex_key(
        settings,
        settings.photo_key.as_ref(),
        PHOTO_KEY_FILE,
        "PHOTO_KEY",
    )
    .map(Some)
}

/// The photo cipher when `keep_photos` is on.
pub fn photo_cipher(settings: &Settings) -> Result<Option<PhotoCipher>, KeyError> {
    Ok(photo_key(settings)?.map(|key| PhotoCipher::new(&key)))
}

/// The bytes of the key that seals face templates: `template_key`, or generated once in
/// the key directory. Losing it loses the templates (re-enrol, or `registry reembed`
/// from kept photos); back it up apart from the database.
pub fn template_key_bytes(settings: &Settings) -> Result<Vec<u8>, KeyError> {
    hex_key(
        settings,
        settings.template_key.as_ref(),
        TEMPLATE_KEY_FILE,
        "TEMPLATE_KEY",
    )
}

/// The key that seals face templates in the database.
pub fn template_key(settings: &Settings) -> Result<renzheng_store::TemplateKey, KeyError> {
    renzheng_store::TemplateKey::from_bytes(&template_key_bytes(settings)?)
        .ok_or_else(|| KeyError::Corrupt(TEMPLATE_KEY_FILE.into()))
}

/// The bytes of the secrets master key.
pub fn secrets_key_bytes(settings: &Settings) -> Result<Vec<u8>, KeyError> {
    hex_key(
        settings,
        settings.secrets_key.as_ref(),
        SECRETS_KEY_FILE,
        "SECRETS_KEY",
    )
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
    hex::encode(derive(key, "renzheng key fingerprint v1"))
}

/// HMAC-SHA256 of a fixed `label` under `key`: a value tied to the key that neither
/// reveals it nor serves another purpose (fingerprints, the export key).
pub(crate) fn derive(key: &[u8], label: &str) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The master key of AppSecrets: `secrets_key` when configured (nodes sharing a database
/// must share it), else generated once in the key directory.
pub fn secret_box(settings: &Settings) -> Result<SecretBox, KeyError> {
    Ok(SecretBox::new(&secrets_key_bytes(settings)?))
}

/// Seals AppSecrets (XChaCha20-Poly1305, bound to the AppKey as associated data, so a
/// sealed secret copied onto another app does not open).
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(****)")
    }
}

impl SecretBox {
    /// A box under a 32-byte key.
    pub fn new(key: &[u8]) -> Self {
        SecretBox {
            cipher: XChaCha20Poly1305::new_from_slice(key).expect("secret keys are 32 bytes"),
        }
    }

    /// nonce ‖ ciphertext of `secret`, bound to `app_key`.
    pub fn seal(&self, app_key: &str, secret: &str) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        let payload = chacha20poly1305::aead::Payload {
            msg: secret.as_bytes(),
            aad: app_key.as_bytes(),
        };
        out.extend(
            self.cipher
                .encrypt(&nonce, payload)
                .expect("encryption of a slice cannot fail"),
        );
        out
    }

    /// The secret sealed for `app_key`; `None` under another key, for another AppKey, or
    /// altered.
    pub fn open(&self, app_key: &str, sealed: &[u8]) -> Option<String> {
        let (nonce, ciphertext) = sealed.split_at_checked(24)?;
        let payload = chacha20poly1305::aead::Payload {
            msg: ciphertext,
            aad: app_key.as_bytes(),
        };
        let clear = self.cipher.decrypt(nonce.into(), payload).ok()?;
        String::from_utf8(clear).ok()
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

/// Reads the 32-byte key at `path` (tightening its permissions, [`tighten`]), creating it
/// when absent.
pub fn load_or_create_key(path: &Path) -> Result<Vec<u8>, KeyError> {
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            tighten(path).map_err(io)?;
            let key = hex::decode(text.trim())
                .map_err(|_| KeyError::Corrupt(path.display().to_string()))?;
            if key.len() != 32 {
                return Err(KeyError::Corrupt(path.display().to_string()));
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                let mut dirs = std::fs::DirBuilder::new();
                dirs.recursive(true);
                #[cfg(unix)]
                std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
                dirs.create(dir).map_err(io)?;
            }
            let mut key = vec![0u8; 32];
            rand::thread_rng().fill_bytes(&mut key);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(path) {
                Ok(mut file) => {
                    file.write_all(hex::encode(&key).as_bytes()).map_err(io)?;
                    file.sync_all().map_err(io)?;
                    Ok(key)
                }
                // Another process created it between our read and our write: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create_key(path),
                Err(e) => Err(io(e)),
            }
        }
        Err(e) => Err(io(e)),
    }
}

/// Encrypts kept photos (XChaCha20-Poly1305; nonce stored in front of the ciphertext).
#[derive(Clone)]
pub struct PhotoCipher {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for PhotoCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PhotoCipher(****)")
    }
}

impl PhotoCipher {
    /// A cipher under a 32-byte key.
    pub fn new(key: &[u8]) -> Self {
        PhotoCipher {
            cipher: XChaCha20Poly1305::new_from_slice(key).expect("photo keys are 32 bytes"),
        }
    }

    /// nonce ‖ ciphertext.
    pub fn encrypt(&self, photo: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        out.extend(
            self.cipher
                .encrypt(&nonce, photo)
                .expect("encryption of a slice cannot fail"),
        );
        out
    }

    /// The photo sealed by [`encrypt`](Self::encrypt); `None` when it was sealed under
    /// another key or altered.
    pub fn decrypt(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, ciphertext) = sealed.split_at_checked(24)?;
        self.cipher.decrypt(nonce.into(), ciphertext).ok()
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

    fn decrypt(c: &PhotoCipher, sealed: &[u8]) -> Option<Vec<u8>> {
        c.decrypt(sealed)
    }

    #[test]
    fn photos_round_trip_and_tampering_is_detected() {
        let c = PhotoCipher::new(&[7u8; 32]);
        let sealed = c.encrypt(b"photo");
        assert_ne!(&sealed[24..], b"photo");
        assert_eq!(decrypt(&c, &sealed).unwrap(), b"photo");
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(decrypt(&c, &bad).is_none());
    }

    #[test]
    fn secrets_are_bound_to_their_app_key() {
        let sealed_box = SecretBox::new(&[3u8; 32]);
        let sealed = sealed_box.seal("key1", "s3cret");
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(sealed_box.open("key1", &sealed).as_deref(), Some("s3cret"));
        assert_eq!(sealed_box.open("key2", &sealed), None);
        assert_eq!(SecretBox::new(&[4u8; 32]).open("key1", &sealed), None);
        assert_eq!(sealed_box.open("key1", &sealed[..10]), None);
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
        assert!(photo_cipher(&settings).unwrap().is_some());
        template_key(&settings).unwrap();
        assert!(dir.path().join("keys").join(TEMPLATE_KEY_FILE).exists());
        assert!(dir.path().join("keys").join(AUDIT_KEY_FILE).exists());
        assert!(dir.path().join("keys").join(PHOTO_KEY_FILE).exists());
        assert!(!settings.data_dir.join(AUDIT_KEY_FILE).exists());
        assert_eq!(audit_key(&settings).unwrap(), key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(dir.path().join("keys")), 0o700);
            assert_eq!(mode(dir.path().join("keys").join(AUDIT_KEY_FILE)), 0o600);
        }
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
        assert_eq!(load_or_create_key(&file).unwrap(), vec![7u8; 32]);
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
        let err = template_key(&settings).unwrap_err().to_string();
        assert!(err.contains("RENZHENG_TEMPLATE_KEY"), "{err}");
        assert!(!dir.path().join("keys").exists());
        settings.template_key = Some(crate::settings::Secret::new("ab".repeat(32)));
        settings.audit_key = Some(crate::settings::Secret::new("a shared audit key"));
        template_key(&settings).unwrap();
        audit_key(&settings).unwrap();
        assert!(secret_box(&settings).is_err());
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
        assert_eq!(audit_key(&settings).unwrap(), legacy);
        assert!(!dir.path().join("keys").join(AUDIT_KEY_FILE).exists());
    }
}
