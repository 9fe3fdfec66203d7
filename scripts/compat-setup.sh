#!/usr/bin/env bash
# Installs what the compatibility suite (crates/renzheng/tests/api/compat.rs,
# tests/compat/) needs, idempotently, and prints the environment it should run with.
#
#   eval "$(scripts/compat-setup.sh)"     # then: cargo test -p renzheng --test api compat
#
# What it does (each step says so on stderr; stdout carries only `export` lines):
#   * Java: checks for a JDK (javac and java, 11 or later; installs Debian's
#     default-jdk-headless with apt-get when missing and run as root) and that
#     tests/compat/java compiles;
#   * npm: `npm ci` in tests/compat/node (aliyun-api-gateway, pinned by its
#     package-lock.json), skipped while node_modules matches the lock's hash;
#   * Python: when tests/compat/requirements.txt exists, a virtualenv under
#     ${RENZHENG_CACHE_DIR:-~/.cache/renzheng}/compat-venv/<hash of that file>, built with
#     `pip install --no-deps -r` then `pip check`, reused while the file is unchanged;
#     without the file, the Python client (standard library only) runs on python3.
# Then prints `export RENZHENG_COMPAT_REQUIRED=1` (a missing client is then a failure, not
# a skip) and, when the virtualenv exists, `export RENZHENG_COMPAT_PYTHON=<its python>`.
# Anything it cannot provide fails the script, saying what to install.
#
# Needs: Node.js >= 18 with npm (and the npm registry on the first run), Python 3, a JDK.
# RENZHENG_PYTHON picks the Python that builds the virtualenv (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "compat-setup: $*" >&2; }
fail() {
  say "$*"
  exit 1
}
apt_install() {
  [ "$(id -u)" = 0 ] || return 1
  command -v apt-get >/dev/null || return 1
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

PYTHON="${RENZHENG_PYTHON:-python3}"
CACHE="${RENZHENG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/renzheng}"

# --- Java -------------------------------------------------------------------------------
if ! command -v javac >/dev/null || ! command -v java >/dev/null; then
  say "no JDK (javac/java): installing Debian's default-jdk-headless"
  apt_install default-jdk-headless || fail "cannot install a JDK (needs root and apt-get): install JDK 11 or later"
fi
say "Java: $(javac -version 2>&1)"
java_out="$(mktemp -d)"
trap 'rm -rf "$java_out"' EXIT
javac -encoding UTF-8 -d "$java_out" tests/compat/java/*.java >&2 ||
  fail "tests/compat/java does not compile"
say "Java: tests/compat/java compiles"

# --- npm: aliyun-api-gateway ------------------------------------------------------------
command -v node >/dev/null && command -v npm >/dev/null ||
  fail "node and npm are needed (Node.js >= 18)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 18 ] || fail "Node.js >= 18 is needed (found $(node --version))"
lock_hash="$(sha256sum tests/compat/node/package-lock.json | cut -c1-64)"
stamp="tests/compat/node/node_modules/.renzheng-lock-sha256"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$lock_hash" ]; then
  say "npm: npm ci in tests/compat/node"
  # --ignore-scripts: nothing the suite uses has an install step to run.
  (cd tests/compat/node && npm ci --no-audit --no-fund --ignore-scripts >&2)
  echo "$lock_hash" >"$stamp"
else
  say "npm: tests/compat/node/node_modules is up to date with its lock"
fi
say "npm: aliyun-api-gateway $(node -p 'require("./tests/compat/node/node_modules/aliyun-api-gateway/package.json").version')"

# --- Python -----------------------------------------------------------------------------
requirements="tests/compat/requirements.txt"
venv=""
if [ -f "$requirements" ]; then
  key="$(sha256sum "$requirements" | cut -c1-16)"
  venv="$CACHE/compat-venv/$key"
  if [ ! -x "$venv/bin/python" ]; then
    say "Python: building $venv from $requirements"
    # Built beside its final place and renamed, so an interrupted build is never taken for
    # a finished one.
    partial="$venv.partial-$$"
    rm -rf "$partial"
    mkdir -p "$CACHE/compat-venv"
    "$PYTHON" -m venv "$partial" >&2
    "$partial/bin/python" -m pip install --disable-pip-version-check -q --no-deps \
      -r "$requirements" >&2
    "$partial/bin/python" -m pip check >&2
    # A concurrent run may have finished first; either copy is the same.
    mv -T "$partial" "$venv" 2>/dev/null || rm -rf "$partial"
  else
    say "Python: $venv is up to date with $requirements"
  fi
else
  say "Python: no $requirements yet: no virtualenv; the client runs on $PYTHON"
  "$PYTHON" --version >&2 || fail "$PYTHON does not run"
fi

echo "export RENZHENG_COMPAT_REQUIRED=1"
if [ -n "$venv" ]; then
  echo "export RENZHENG_COMPAT_PYTHON=$(printf %q "$venv/bin/python")"
fi
say "ready"
