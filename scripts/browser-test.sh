#!/usr/bin/env bash
# The operator console (/console) in a real, headless Chromium: signs in, creates an app,
# grants a package, enrols a person, runs "try it" on real photos with the real engine,
# reads the call history and its CSV, removes the person, probes CSRF and session expiry,
# switches language, and screenshots every page at desktop and phone widths into
# target/console-screenshots/.
#
# Called by scripts/test.sh after `cargo test`; runs alone too (builds the binary and
# installs the sface pack if missing). Never skips: a missing Chromium is installed with
# apt-get (as root), and anything else missing fails the run, saying what to install.
#
# Needs: Node.js >= 20 with npm (the npm registry, for playwright-core, on the first run),
# Chromium at /usr/bin/chromium (or RENZHENG_CHROMIUM), the shared photos
# (../shared/faces, or RENZHENG_SHARED_DIR/faces). RENZHENG_BIN overrides the binary
# (default target/debug/renzheng).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

fail() {
  echo "browser-test: $*" >&2
  exit 1
}

# --- Chromium (and a font with Chinese glyphs, so the screenshots are readable) ---------
chromium="${RENZHENG_CHROMIUM:-/usr/bin/chromium}"
apt_install() {
  [ "$(id -u)" = 0 ] || return 1
  command -v apt-get >/dev/null || return 1
  DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}
if [ ! -x "$chromium" ]; then
  echo "browser-test: $chromium missing: installing Debian's chromium"
  apt_install chromium ||
    fail "cannot install chromium (needs root and apt-get): install it, or set RENZHENG_CHROMIUM"
  [ -x "$chromium" ] || fail "chromium installed but $chromium is still missing"
fi
if command -v fc-list >/dev/null && [ -z "$(fc-list :lang=zh 2>/dev/null)" ]; then
  echo "browser-test: no font with Chinese glyphs: installing fonts-wqy-microhei"
  apt_install fonts-wqy-microhei ||
    echo "browser-test: WARNING: could not install a CJK font; Chinese text in the screenshots will be boxes" >&2
fi

# --- Node and playwright-core (cached in tests/browser/node_modules by the lock's hash) -
command -v node >/dev/null && command -v npm >/dev/null ||
  fail "node and npm are needed (Node.js >= 20)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || fail "Node.js >= 20 is needed (found $(node --version))"
lock_hash="$(sha256sum tests/browser/package-lock.json | cut -c1-64)"
stamp="tests/browser/node_modules/.renzheng-lock-sha256"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$lock_hash" ]; then
  (cd tests/browser && npm ci --no-audit --no-fund)
  echo "$lock_hash" >"$stamp"
fi

# --- The binary, the model pack, the photos ---------------------------------------------
bin="${RENZHENG_BIN:-target/debug/renzheng}"
case "$bin" in /*) ;; *) bin="$root/$bin" ;; esac
if [ ! -x "$bin" ]; then
  echo "browser-test: $bin missing: building it"
  cargo build --locked -p renzheng
fi
"$bin" models install --pack sface >/dev/null
if [ -n "${RENZHENG_SHARED_DIR:-}" ]; then
  faces="$RENZHENG_SHARED_DIR/faces"
else
  faces="$root/../shared/faces"
fi
[ -d "$faces" ] || fail "the shared photos are missing: $faces (set RENZHENG_SHARED_DIR)"
faces="$(cd "$faces" && pwd)"

# --- Two servers in a throw-away directory ----------------------------------------------
tmp="$(mktemp -d)"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

operator="admin"
password="Pw-$(random_hex 12)"
admin_token="$(random_hex 24)"
password_hash="$(printf '%s\n' "$password" | "$bin" console hash-password)" ||
  fail "'renzheng console hash-password' failed"
case "$password_hash" in
  '$argon2'*) ;;
  *) fail "'renzheng console hash-password' printed no argon2 PHC string: $password_hash" ;;
esac

# start NAME PORT [VAR=VALUE...]: one server with its own data and key directories.
# The session cookie is `Secure` (`__Host-`), as in production: Chromium treats
# http://localhost as a secure context and stores it, so the suite proves a real browser
# signs in with the default setting (it could not when the cookie had `Path=/console`).
start() {
  local name="$1" port="$2"
  shift 2
  mkdir -p "$tmp/$name/data" "$tmp/$name/keys"
  # Always a throw-away SQLite database, whatever the caller's environment names.
  env -u RENZHENG_DATABASE_URL \
    RENZHENG_LISTEN="127.0.0.1:$port" \
    RENZHENG_DATA_DIR="$tmp/$name/data" \
    RENZHENG_KEY_DIR="$tmp/$name/keys" \
    RENZHENG_ADMIN_TOKEN="$admin_token" \
    RENZHENG_CONSOLE__OPERATOR="$operator" \
    RENZHENG_CONSOLE__PASSWORD_HASH="$password_hash" \
    RENZHENG_CONSOLE__SECURE_COOKIE=true \
    "$@" \
    "$bin" serve >"$tmp/$name.log" 2>&1 &
  pids+=("$!")
}

show_logs() {
  local log
  for log in "$tmp"/*.log; do
    echo "----- $(basename "$log") (last 200 lines) -----" >&2
    tail -n 200 "$log" >&2
  done
}

# wait_ready NAME PORT PID
wait_ready() {
  local name="$1" port="$2" pid="$3" i
  for i in $(seq 1 240); do
    if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' \
        "http://127.0.0.1:$port/readyz"; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { show_logs; fail "the $name server exited before it was ready"; }
    sleep 0.25
  done
  show_logs
  fail "the $name server was not ready after 60 s"
}

port="$(free_port)"
start main "$port"
main_pid="${pids[-1]}"
short_port="$(free_port)"
while [ "$short_port" = "$port" ]; do short_port="$(free_port)"; done
start short-idle "$short_port" RENZHENG_CONSOLE__SESSION_IDLE_SECS=2
short_pid="${pids[-1]}"
wait_ready main "$port" "$main_pid"
wait_ready short-idle "$short_port" "$short_pid"

# --- The suite --------------------------------------------------------------------------
shots="$root/target/console-screenshots"
rm -rf "$shots"
mkdir -p "$shots"

status=0
(
  cd tests/browser
  CONSOLE_TEST_BASE_URL="http://localhost:$port" \
    CONSOLE_TEST_SHORT_IDLE_URL="http://localhost:$short_port" \
    CONSOLE_TEST_SHORT_IDLE_SECS=2 \
    CONSOLE_TEST_SECURE_COOKIE=1 \
    CONSOLE_TEST_OPERATOR="$operator" \
    CONSOLE_TEST_PASSWORD="$password" \
    CONSOLE_TEST_ADMIN_TOKEN="$admin_token" \
    CONSOLE_TEST_FACES_DIR="$faces" \
    CONSOLE_TEST_BIN="$bin" \
    CONSOLE_TEST_SCREENSHOTS_DIR="$shots" \
    CONSOLE_TEST_CHROMIUM="$chromium" \
    node --test --test-concurrency=1 --test-reporter=spec console.test.mjs
) || status=$?

if [ "$status" != 0 ]; then
  show_logs
  fail "the console suite failed (screenshots so far: $shots)"
fi
echo "browser-test: screenshots in $shots"
