//! The installed packs' manifests are, byte for byte, what this build writes from their
//! files: `pack::write_manifest` run on a copy of each pack (without its manifest) must
//! give the installed `manifest.json` back. A change to how manifests are built that would
//! change a pack — its id, a hash, a band, the embedding id — fails here instead of
//! silently making `renzheng models install` build a different pack.
//!
//! Needs both packs (`renzheng models install --pack dlib`, `--pack sface`).

use std::path::PathBuf;

use renzheng_vision::pack::{self, PackKind, MANIFEST_FILE};

#[test]
fn the_installed_manifests_are_what_this_build_writes() {
    for kind in PackKind::ALL {
        let dir = pack::default_pack_dir_for(kind);
        let installed = std::fs::read(dir.join(MANIFEST_FILE)).unwrap_or_else(|e| {
            panic!(
                "no {kind} pack at {} ({e}); run `renzheng models install --pack {kind}` first",
                dir.display()
            )
        });
        let staging =
            std::env::temp_dir().join(format!("rz-manifest-{kind}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name() == MANIFEST_FILE {
                continue;
            }
            let to: PathBuf = staging.join(entry.file_name());
            // A hard link where the cache and the temporary directory share a file system.
            if std::fs::hard_link(entry.path(), &to).is_err() {
                std::fs::copy(entry.path(), &to).unwrap();
            }
        }
        let manifest = pack::write_manifest(kind, &staging).unwrap();
        let rebuilt = std::fs::read(staging.join(MANIFEST_FILE)).unwrap();
        let _ = std::fs::remove_dir_all(&staging);
        assert_eq!(manifest.pack_id, kind.pack_id());
        assert!(
            rebuilt == installed,
            "the {kind} manifest this build writes differs from the installed one at {}:\n{}",
            dir.display(),
            String::from_utf8_lossy(&rebuilt)
        );
    }
}
