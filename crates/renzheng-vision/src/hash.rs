//! sha256, as the model pack writes and checks it: lower-case hex, files streamed.
//!
//! A leaf: it imports nothing of the crate, so the pack, the runtime and the installer can
//! all hash without depending on one another.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// sha256 of bytes, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// sha256 of a file, lower-case hex, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_sha256() {
        let d = std::env::temp_dir().join(format!("rz-hash-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("abc"), b"abc").unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_file(&d.join("abc")).unwrap(), abc);
        assert_eq!(sha256_hex(b"abc"), abc);
        let _ = std::fs::remove_dir_all(&d);
    }
}
