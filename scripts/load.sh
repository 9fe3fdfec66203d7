#!/usr/bin/env bash
# Load test of the release binary on loopback with real photos and the real engine:
# checks/s and latency (p50/p99) at several concurrencies, and the server's RSS over the
# run. Needs wrk (Debian package `wrk`) and the shared photos (../shared/faces).
#
#   scripts/load.sh                 # 8, 32 and 64 clients, 20 s each
#   CONNECTIONS="8 64" DURATION=60s scripts/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."

FACES="${RENZHENG_SHARED_DIR:-$PWD/../shared}/faces"
CONNECTIONS="${CONNECTIONS:-8 32 64}"
DURATION="${DURATION:-20s}"
PORT="${PORT:-18080}"
PORTRAIT="$FACES/lfw_eastasian_dev/Hu_Jintao/Hu_Jintao_0004.jpg"
PROBE="$FACES/lfw_eastasian_dev/Hu_Jintao/Hu_Jintao_0008.jpg"
NAME="胡锦涛"
ID="11010519421221001X"

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release --locked -p renzheng
bin="$PWD/target/release/renzheng"
"$bin" models install >/dev/null

work="$(mktemp -d)"
export RENZHENG_DATA_DIR="$work/data" RENZHENG_KEY_DIR="$work/keys" RENZHENG_LISTEN="127.0.0.1:$PORT"
code="$("$bin" apps create --name load --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["app_code"])')"
printf '%s\n%s\n' "$NAME" "$ID" | "$bin" registry add --photo "$PORTRAIT" >/dev/null

"$bin" serve > "$work/server.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 240); do
  curl -fsS "http://$RENZHENG_LISTEN/readyz" >/dev/null 2>&1 && break
  sleep 0.5
done

printf '{"name":"%s","idCard":"%s","image":"%s"}' "$NAME" "$ID" "$(base64 -w0 "$PROBE")" > "$work/body.json"
cat > "$work/check.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "APPCODE $code"
local f = io.open("$work/body.json", "rb"); wrk.body = f:read("*a"); f:close()
local statuses = {}
response = function(status) statuses[status] = (statuses[status] or 0) + 1 end
done = function(summary, latency, requests)
  io.write(string.format("checks/s %.1f  p50 %.0f ms  p99 %.0f ms  requests %d  errors %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
LUA

rss() { awk '/VmRSS/ {print int($2/1024)}' "/proc/$server/status"; }
echo "server RSS before: $(rss) MB"
for c in $CONNECTIONS; do
  ( while kill -0 $server 2>/dev/null; do rss; sleep 1; done ) > "$work/rss-$c" &
  sampler=$!
  printf 'clients %-3s ' "$c"
  wrk -t2 -c"$c" -d"$DURATION" --timeout 30s -s "$work/check.lua" "http://$RENZHENG_LISTEN/faceidcard/check" | tail -1
  kill $sampler 2>/dev/null || true
  echo "            RSS min/max during the run: $(sort -n "$work/rss-$c" | head -1)/$(sort -n "$work/rss-$c" | tail -1) MB"
done
echo "server RSS after: $(rss) MB"
grep -c '"status":503' "$work/server.log" | sed 's/^/503 answers logged: /' || true
