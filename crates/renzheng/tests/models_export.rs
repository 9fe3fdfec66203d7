//! `renzheng models export` and `renzheng models import`: the installed `sface` pack,
//! carried as one archive into a fresh cache, must install without network or Python and
//! give the same answers as the original; a damaged, truncated or doctored archive must be
//! refused without leaving anything behind.
//!
//! Needs the `sface` pack installed where the default configuration finds it
//! (`renzheng models install --pack sface`, which `scripts/test.sh` runs first) and
//! `../shared/faces`; without the pack the tests are skipped with a message. Each test
//! exports the pack once (about 60 MB, a few seconds on two cores).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flate2::read::GzDecoder;
use renzheng_vision::pack::{self, PackKind};
use renzheng_vision::{Engine, EngineConfig};

/// The installed `sface` pack, or `None` (and a message) when there is none.
fn installed_sface() -> Option<PathBuf> {
    let dir = pack::default_pack_dir_for(PackKind::Sface);
    if dir.join(pack::MANIFEST_FILE).is_file() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: no sface pack at {} (run `renzheng models install --pack sface` first)",
            dir.display()
        );
        None
    }
}

/// The shared faces folder: `$RENZHENG_SHARED_DIR/faces`, else `<workspace>/../shared/faces`.
fn faces_dir() -> PathBuf {
    let shared = std::env::var_os("RENZHENG_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let faces = shared.join("faces");
    assert!(
        faces.is_dir(),
        "test photos not found at {}: set RENZHENG_SHARED_DIR to the shared folder",
        faces.display()
    );
    faces
}

/// `renzheng --pack sface …` with its cache in `cache` and no pack directory or pack kind
/// from the environment, so the pack is looked for where that cache puts it.
fn renzheng(cache: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_renzheng"));
    cmd.args(["--pack", "sface"])
        .args(args)
        .env("RENZHENG_CACHE_DIR", cache)
        .env_remove("RENZHENG_MODELS_DIR")
        .env_remove("RENZHENG_ENGINE__PACK_DIR")
        .env_remove("RENZHENG_ENGINE__PACK");
    cmd
}

/// Like [`renzheng`], as on an air-gapped node: nothing on `PATH` (no Python, no pip) and
/// a Python that does not exist.
fn offline(cache: &Path, args: &[&str]) -> Command {
    let mut cmd = renzheng(cache, args);
    cmd.env("PATH", "")
        .env("RENZHENG_PYTHON", "/nonexistent/python3");
    cmd
}

/// `renzheng --pack sface …` on the originally installed pack.
fn on_original(original: &Path, args: &[&str]) -> Command {
    let mut cmd = renzheng(Path::new("/nonexistent-cache"), args);
    cmd.env("RENZHENG_MODELS_DIR", original);
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Exports the installed pack to `<dir>/<name>`, checking the command's output.
fn export(original: &Path, dir: &Path, name: &str) -> PathBuf {
    let file = dir.join(name);
    let started = std::time::Instant::now();
    let out = on_original(original, &["models", "export", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    eprintln!(
        "exported {} bytes in {:.1} s",
        std::fs::metadata(&file).unwrap().len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(stdout(&out), file.display().to_string());
    file
}

/// Every file of a directory with its sha256, by name.
fn hashes(dir: &Path) -> Vec<(String, String)> {
    let mut all: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                pack::sha256_file(&e.path()).unwrap(),
            )
        })
        .collect();
    all.sort();
    all
}

/// The engine on the pack in `dir`, with the default configuration otherwise.
fn engine(dir: &Path) -> Engine {
    Engine::open(&EngineConfig {
        pack: Some(PackKind::Sface),
        pack_dir: Some(dir.to_path_buf()),
        ..EngineConfig::default()
    })
    .unwrap_or_else(|e| panic!("opening the pack at {}: {e}", dir.display()))
}

#[test]
fn an_exported_pack_imports_offline_and_answers_the_same() {
    let Some(original) = installed_sface() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let archive = export(&original, root.path(), "sface.tar.gz");
    // The same pack exports to the same bytes: nodes can compare the archive's sha256.
    let again = export(&original, root.path(), "again.tar.gz");
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        std::fs::read(&again).unwrap()
    );
    // An existing file is never overwritten.
    let out = on_original(&original, &["models", "export", archive.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));

    let cache = root.path().join("fresh-cache");
    let started = std::time::Instant::now();
    let out = offline(&cache, &["models", "import", archive.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    eprintln!("imported in {:.1} s", started.elapsed().as_secs_f64());
    let imported = cache.join("packs").join(PackKind::Sface.pack_id());
    assert_eq!(stdout(&out), imported.display().to_string());
    // Exactly the installed pack: the same files with the same bytes, nothing else.
    assert_eq!(hashes(&imported), hashes(&original));

    // The commands that use a pack find it there, offline.
    let out = offline(&cache, &["models", "verify"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let faces = faces_dir().join("fr_examples/Barack_Obama");
    let (a, b) = (faces.join("obama.jpg"), faces.join("obama1.jpg"));
    let compare = [
        "compare",
        "--json",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ];
    let here = offline(&cache, &compare).output().unwrap();
    let there = on_original(&original, &compare).output().unwrap();
    assert!(here.status.success(), "{}", text(&here));
    assert!(there.status.success(), "{}", text(&there));
    assert_eq!(stdout(&here), stdout(&there));
    assert!(stdout(&here).contains("\"verdict\""), "{}", text(&here));

    // And in this process: the same embedding, bit for bit, and the same comparison.
    let photo = std::fs::read(&a).unwrap();
    let other = std::fs::read(&b).unwrap();
    let (e1, e2) = (engine(&original), engine(&imported));
    let face = |e: &Engine, bytes: &[u8]| e.analyze(bytes).unwrap().face.expect("a face");
    let (f1, f2) = (face(&e1, &photo), face(&e2, &photo));
    assert_eq!(f1.embedding.0, f2.embedding.0);
    let (g1, g2) = (face(&e1, &other), face(&e2, &other));
    assert_eq!(
        e1.compare(&f1.embedding, &g1.embedding),
        e2.compare(&f2.embedding, &g2.embedding)
    );

    // A second import of the same archive finds the pack and changes nothing.
    let out = offline(&cache, &["models", "import", archive.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already installed"),
        "{}",
        text(&out)
    );

    // A damaged pack in the way is replaced only when asked to.
    std::fs::write(imported.join("sface_report.json"), b"{}").unwrap();
    let out = offline(&cache, &["models", "import", archive.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--force"),
        "{}",
        text(&out)
    );
    let out = offline(
        &cache,
        &["models", "import", "--force", archive.to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(hashes(&imported), hashes(&original));

    // The archive's pack must be the kind asked for.
    let out = Command::new(env!("CARGO_BIN_EXE_renzheng"))
        .args([
            "--pack",
            "dlib",
            "models",
            "import",
            archive.to_str().unwrap(),
        ])
        .env("RENZHENG_CACHE_DIR", root.path().join("dlib-cache"))
        .env_remove("RENZHENG_MODELS_DIR")
        .env_remove("RENZHENG_ENGINE__PACK_DIR")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a `dlib` pack"),
        "{}",
        text(&out)
    );

    let left: Vec<_> = std::fs::read_dir(cache.join("packs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec![PackKind::Sface.pack_id().to_string()]);
}

/// One entry of a hand-made archive: path, type, bytes.
type Entry = (String, tar::EntryType, Vec<u8>);

/// The entries of an exported archive, in order.
fn entries(archive: &Path) -> Vec<Entry> {
    let mut tar = tar::Archive::new(GzDecoder::new(std::fs::File::open(archive).unwrap()));
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let kind = e.header().entry_type();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            (path, kind, data)
        })
        .collect()
}

/// A plain tar of `entries`, names written into the header as they are, so that paths the
/// tar writer itself refuses (`..`) can be made.
fn plain_tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, data) in entries {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        if kind.is_symlink() {
            h.set_link_name("recognition.onnx").unwrap();
        }
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// `SHA256SUMS` rewritten for `entries`, as someone doctoring the archive would.
fn resum(entries: &mut Vec<Entry>) {
    entries.retain(|(p, _, _)| !p.ends_with("/SHA256SUMS"));
    let top = entries[0].0.split('/').next().unwrap().to_string();
    let sums: String = entries
        .iter()
        .map(|(p, _, d)| {
            format!(
                "{}  {}\n",
                pack::sha256_hex(d),
                p.rsplit('/').next().unwrap()
            )
        })
        .collect();
    entries.push((
        format!("{top}/SHA256SUMS"),
        tar::EntryType::Regular,
        sums.into_bytes(),
    ));
}

#[test]
fn damaged_or_doctored_archives_are_refused_and_leave_nothing() {
    let Some(original) = installed_sface() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let archive = export(&original, root.path(), "sface.tar.gz");
    let good = entries(&archive);
    let top = good[0].0.split('/').next().unwrap().to_string();
    assert_eq!(top, PackKind::Sface.pack_id());
    let names: Vec<String> = good.iter().map(|(p, _, _)| p.clone()).collect();
    for file in [
        "manifest.json",
        "detector.onnx",
        "recognition.onnx",
        "libonnxruntime.so",
        "SHA256SUMS",
    ] {
        assert!(
            names.contains(&format!("{top}/{file}")),
            "{file} in {names:?}"
        );
    }
    let recognition = format!("{top}/recognition.onnx");
    let with = |f: &dyn Fn(&mut Vec<Entry>)| {
        let mut e = good.clone();
        f(&mut e);
        plain_tar(&e)
    };
    let gz = std::fs::read(&archive).unwrap();

    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    // The rebuilt plain tar itself is accepted: the checks below are about the changes.
    cases.push(("a plain tar of the same files", with(&|_| {}), ""));
    cases.push((
        "a flipped byte in a network",
        with(&|e| {
            let (_, _, d) = e.iter_mut().find(|(p, _, _)| *p == recognition).unwrap();
            let mid = d.len() / 2;
            d[mid] ^= 0x01;
        }),
        "recognition.onnx has sha256",
    ));
    let mut flipped = gz.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    cases.push(("a flipped byte in the gzip stream", flipped, "refusing"));
    cases.push((
        "a truncated archive",
        gz[..gz.len() / 2].to_vec(),
        "truncated",
    ));
    cases.push(("the end cut off", gz[..gz.len() - 4].to_vec(), "truncated"));
    cases.push((
        "an extra file",
        with(&|e| {
            e.push((
                format!("{top}/extra.txt"),
                tar::EntryType::Regular,
                b"hi".to_vec(),
            ))
        }),
        "extra.txt is in the archive but not in SHA256SUMS",
    ));
    cases.push((
        "an extra file, listed in SHA256SUMS",
        with(&|e| {
            e.push((
                format!("{top}/extra.txt"),
                tar::EntryType::Regular,
                b"hi".to_vec(),
            ));
            resum(e);
        }),
        "extra.txt is not a file of pack",
    ));
    cases.push((
        "a missing file",
        with(&|e| e.retain(|(p, _, _)| *p != recognition)),
        "recognition.onnx is listed in SHA256SUMS but missing",
    ));
    cases.push((
        "a changed network with SHA256SUMS rewritten to match",
        with(&|e| {
            let (_, _, d) = e.iter_mut().find(|(p, _, _)| *p == recognition).unwrap();
            d[100] ^= 0x01;
            resum(e);
        }),
        "sha256 mismatch",
    ));
    cases.push((
        "a `../` path",
        with(&|e| {
            e.insert(
                0,
                (
                    format!("{top}/../evil"),
                    tar::EntryType::Regular,
                    b"x".to_vec(),
                ),
            )
        }),
        "path traversal",
    ));
    cases.push((
        "an absolute path",
        with(&|e| {
            e.insert(
                0,
                (
                    "/tmp/rz-evil".to_string(),
                    tar::EntryType::Regular,
                    b"x".to_vec(),
                ),
            )
        }),
        "absolute path",
    ));
    cases.push((
        "a symbolic link",
        with(&|e| {
            e.insert(
                0,
                (format!("{top}/link"), tar::EntryType::Symlink, Vec::new()),
            )
        }),
        "symbolic link",
    ));

    for (i, (what, bytes, why)) in cases.into_iter().enumerate() {
        let file = root.path().join(format!("case-{i}.tar"));
        std::fs::write(&file, bytes).unwrap();
        let cache = root.path().join(format!("cache-{i}"));
        let out = offline(&cache, &["models", "import", file.to_str().unwrap()])
            .output()
            .unwrap();
        let packs = cache.join("packs");
        if why.is_empty() {
            assert!(out.status.success(), "{what}: {}", text(&out));
            continue;
        }
        assert!(!out.status.success(), "{what}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("{what}: {}", stderr.trim());
        assert!(
            stderr.contains(why),
            "{what}: expected {why:?} in {}",
            text(&out)
        );
        // Nothing final, no staging directory, nothing outside.
        let left: Vec<_> = std::fs::read_dir(&packs)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "{what}: left {left:?} in {}",
            packs.display()
        );
        assert!(!packs.join("evil").exists() && !cache.join("evil").exists());
        assert!(!Path::new("/tmp/rz-evil").exists());
    }
}
