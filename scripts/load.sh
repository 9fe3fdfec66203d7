#!/usr/bin/env bash
# Load test of the release binary on loopback with real photos and the real engine:
# checks/s and latency (p50/p99) at several concurrencies, and the server's RSS over the
# run. Needs wrk (Debian package `wrk`) and the shared photos (../shared/faces).
#
#   scripts/load.sh                 # 8, 32 and 64 clients, 20 s each
#   CONNECTIONS="8 64" DURATION=60s scripts/load.sh
#   METERING=false scripts/load.sh  # the same without quota (every check otherwise holds
#                                   # and charges a unit in the database)
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
export RENZHENG_METERING__ENABLED="${METERING:-true}"
# One ID number is checked over and over: the per-ID limits would refuse it.
export RENZHENG_LIMITS__PER_ID_PER_MINUTE=0 RENZHENG_LIMITS__PER_ID_PER_DAY=0
"$bin" apps create --name load --json > "$work/app.json"
code="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["app_code"])' "$work/app.json")"
app_id="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["app_id"])' "$work/app.json")"
"$bin" apps grant "$app_id" --calls 100000000 >/dev/null
printf '%s\n%s\n' "$NAME" "$ID" | "$bin" registry add --photo "$PORTRAIT" \
  --basis consent --consent-ref "$(basename "$0") fixture" >/dev/null

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
-- Per-thread counts of 200s and 503s, summed in done() (wrk runs each thread in its own
-- Lua state). wrk does not honour Retry-After: a refused client retries at once.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; busy = 0; other = 0 end
function response(status)
  if status == 200 then ok = ok + 1 elseif status == 503 then busy = busy + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local n_ok, n_busy, n_other = 0, 0, 0
  for _, t in ipairs(threads) do
    n_ok = n_ok + t:get("ok"); n_busy = n_busy + t:get("busy"); n_other = n_other + t:get("other")
  end
  local secs = summary.duration / 1e6
  io.write(string.format("checks/s %.1f (200s)  503/s %.1f  other %d  latency of all answers p50 %.0f ms  p99 %.0f ms\n",
    n_ok / secs, n_busy / secs, n_other, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
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
if [ "$RENZHENG_METERING__ENABLED" = true ]; then
  kill -TERM $server; wait $server 2>/dev/null || true
  # Every 200 was charged once, and nothing else: the ledger equals the audit.
  "$bin" apps usage "$app_id" --json | python3 -c '
import json, sys
u = json.load(sys.stdin)
print("charged", u["charged"], " checks in the period", u["period"]["calls"],
      " held", u["reserved"], " ledger = audit:", u["ledger"]["consistent"])'
fi
