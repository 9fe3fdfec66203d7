//! Helpers shared by the engine's integration tests: where the shared photos and the model
//! pack are, and one engine per test binary.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use renzheng_vision::{DetectionMode, Engine, EngineConfig, PackKind};

/// `shared/faces`: `$RENZHENG_SHARED_DIR/faces`, else `../shared/faces` beside the checkout.
pub fn faces_dir() -> PathBuf {
    let shared = std::env::var_os("RENZHENG_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let dir = shared.join("faces");
    assert!(
        dir.is_dir(),
        "test photos not found at {} (set RENZHENG_SHARED_DIR)",
        dir.display()
    );
    dir
}

fn open_pack(kind: PackKind, mode: DetectionMode) -> Engine {
    let mut cfg = EngineConfig {
        pack: Some(kind),
        ..EngineConfig::default()
    };
    cfg.detection.mode = mode;
    Engine::open(&cfg).unwrap_or_else(|e| {
        panic!("cannot open the {kind} model pack ({e}); run `renzheng models install --pack {kind}` first")
    })
}

fn open(mode: DetectionMode) -> Engine {
    // These tests hold the dlib pack to dlib's own answers, whatever the default pack is.
    open_pack(PackKind::Dlib, mode)
}

/// The production (auto-scaling) engine of a pack kind, loaded once per test binary.
pub fn pack_engine(kind: PackKind) -> Arc<Engine> {
    static SFACE: OnceLock<Arc<Engine>> = OnceLock::new();
    match kind {
        PackKind::Dlib => auto_engine(),
        PackKind::Sface => SFACE
            .get_or_init(|| Arc::new(open_pack(kind, DetectionMode::Auto)))
            .clone(),
    }
}

/// The engine in dlib-exact detection mode (no scaling), loaded once per test binary.
///
/// ONNX Runtime allows one environment per process, and loading costs seconds, so every
/// test in a binary shares it.
pub fn exact_engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| Arc::new(open(DetectionMode::Exact)))
        .clone()
}

/// The engine in production (auto-scaling) mode.
pub fn auto_engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| Arc::new(open(DetectionMode::Auto)))
        .clone()
}
