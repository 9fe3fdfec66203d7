#!/usr/bin/env bash
# Two Renzheng nodes on one PostgreSQL database, on loopback, with real photos and the real
# engine (release build):
#   1. one node vs two: checks/s, p50/p99, RSS, database time per check, connections;
#   2. kill -9 one node mid-load: the other keeps serving, nothing is charged twice or
#      lost (ledger = audit), the dead node's held units are given back;
#   3. PostgreSQL restarted mid-load: 503s (not charged) while it is down, then 200s
#      again without restarting the nodes.
#
#   scripts/cluster.sh                       # needs wrk, psql, a PostgreSQL on loopback
#   ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres DURATION=20s scripts/cluster.sh
#   SKIP_PG_RESTART=1 scripts/cluster.sh     # without step 3 (it restarts the server)
#
# Two nodes share this machine's cores, so the two-node figure shows that nothing breaks
# and the database is not the bottleneck, not a speed-up; see docs/deployment.md.
set -euo pipefail
cd "$(dirname "$0")/.."

FACES="${RENZHENG_SHARED_DIR:-$PWD/../shared}/faces"
ADMIN_URL="${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DURATION="${DURATION:-20s}"
CLIENTS="${CLIENTS:-16}"
PORT_A="${PORT_A:-18181}"
PORT_B="${PORT_B:-18182}"
PORTRAIT="$FACES/lfw_eastasian_dev/Hu_Jintao/Hu_Jintao_0004.jpg"
PROBE="$FACES/lfw_eastasian_dev/Hu_Jintao/Hu_Jintao_0008.jpg"
NAME="胡锦涛"
ID="11010519421221001X"

for tool in wrk psql curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done
cargo build --release --locked -p renzheng
bin="$PWD/target/release/renzheng"
"$bin" models install >/dev/null

work="$(mktemp -d)"
db="renzheng_cluster_$(date +%s)_$$"
psql -q "$ADMIN_URL" -c "CREATE DATABASE \"$db\"" >/dev/null
DB_URL="${ADMIN_URL%/*}/$db"
sql() { psql -qtA "$DB_URL" -c "$1"; }
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# What every node shares: the database and the keys (never generated per node).
export RENZHENG_DATABASE_URL="$DB_URL"
export RENZHENG_TEMPLATE_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
export RENZHENG_SECRETS_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
export RENZHENG_AUDIT_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
export RENZHENG_LIMITS__PER_ID_PER_MINUTE=0 RENZHENG_LIMITS__PER_ID_PER_DAY=0
# Short holds, so that the dead node's units come back within the run.
export RENZHENG_METERING__HOLD_MS=35000 RENZHENG_LIMITS__REQUEST_TIMEOUT_MS=30000
export RENZHENG_KEY_DIR="$work/keys"

"$bin" migrate >/dev/null
"$bin" apps create --name cluster --json > "$work/app.json"
code="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["app_code"])' "$work/app.json")"
app_id="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["app_id"])' "$work/app.json")"
"$bin" apps grant "$app_id" --calls 100000000 >/dev/null
printf '%s\n%s\n' "$NAME" "$ID" | "$bin" registry add --photo "$PORTRAIT" \
  --basis consent --consent-ref "$(basename "$0") fixture" >/dev/null

start_node() { # name port; sets $node_pid
  RENZHENG_DATA_DIR="$work/$1" RENZHENG_LISTEN="127.0.0.1:$2" "$bin" serve > "$work/$1.log" 2>&1 &
  node_pid=$!
  pids+=("$node_pid")
  for _ in $(seq 1 240); do
    curl -fsS "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && break
    sleep 0.5
  done
}
start_node a "$PORT_A"; pid_a=$node_pid
start_node b "$PORT_B"; pid_b=$node_pid

printf '{"name":"%s","idCard":"%s","image":"%s"}' "$NAME" "$ID" "$(base64 -w0 "$PROBE")" > "$work/body.json"
cat > "$work/check.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "APPCODE $code"
local f = io.open("$work/body.json", "rb"); wrk.body = f:read("*a"); f:close()
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
  io.write(string.format("200s %d (%.1f/s)  503s %d  other %d  errors %d  p50 %.0f ms  p99 %.0f ms\n",
    n_ok, n_ok / secs, n_busy, n_other, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
load() { # port clients duration
  wrk -t1 -c"$2" -d"$3" --timeout 35s -s "$work/check.lua" "http://127.0.0.1:$1/faceidcard/check" | tail -1
}
rss() { awk '/VmRSS/ {print int($2/1024)}' "/proc/$1/status" 2>/dev/null || echo -; }
active_ms() { sql "SELECT active_time FROM pg_stat_database WHERE datname = current_database()"; }
charged() { sql "SELECT count(*) FROM ledger WHERE kind = 'charge'"; }
peak_connections() { # seconds → the most connections to the database seen, sampled every 0.5 s
  local peak=0 n
  for _ in $(seq 1 $(( $1 * 2 ))); do
    n="$(sql "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")"
    [ "$n" -gt "$peak" ] && peak=$n
    sleep 0.5
  done
  echo "$peak"
}
secs="${DURATION%s}"
phase() { # label, then the load commands run in parallel
  local label="$1"; shift
  local a0 c0 a1 c1
  a0="$(active_ms)"; c0="$(charged)"
  peak_connections "$secs" > "$work/peak" &
  local sampler=$!
  "$@"
  wait "$sampler" || true
  a1="$(active_ms)"; c1="$(charged)"
  python3 - "$label" "$a0" "$a1" "$c0" "$c1" "$(cat "$work/peak")" <<'PY'
import sys
label, a0, a1, c0, c1, peak = sys.argv[1:]
checks = int(c1) - int(c0)
db_ms = float(a1) - float(a0)
per = db_ms / checks if checks else float("nan")
print(f"   {label}: {checks} checks charged; database busy {db_ms:.0f} ms = {per:.2f} ms per check; peak connections {peak}")
PY
}

echo "== 1. one node vs two ($CLIENTS clients, $DURATION)"
echo "RSS before: a $(rss "$pid_a") MB, b $(rss "$pid_b") MB"
one() { printf '   node a alone:  '; load "$PORT_A" "$CLIENTS" "$DURATION"; }
phase "one node" one
two() {
  load "$PORT_A" $(( CLIENTS / 2 )) "$DURATION" > "$work/two-a" &
  local other=$!
  load "$PORT_B" $(( CLIENTS / 2 )) "$DURATION" > "$work/two-b"
  wait "$other"
  printf '   node a:        %s\n   node b:        %s\n' "$(cat "$work/two-a")" "$(cat "$work/two-b")"
}
phase "two nodes" two
echo "RSS after: a $(rss "$pid_a") MB, b $(rss "$pid_b") MB"

reconcile() {
  "$bin" apps usage "$app_id" --json | python3 -c '
import json, sys
u = json.load(sys.stdin)
print("   ledger charges", u["ledger"]["ledger_charges"], "= audit charged", u["ledger"]["audit_charged"],
      "->", "consistent" if u["ledger"]["consistent"] else "NOT CONSISTENT", "; units held", u["reserved"])'
  local ok
  ok="$(sql "SELECT count(*) FROM audit WHERE http_status BETWEEN 200 AND 299")"
  echo "   2xx audit rows $ok (every one charged: $(sql "SELECT count(*) FROM audit WHERE http_status BETWEEN 200 AND 299 AND charged")), non-2xx charged: $(sql "SELECT count(*) FROM audit WHERE http_status NOT BETWEEN 200 AND 299 AND charged")"
}

echo "== 2. kill -9 node b mid-load"
load "$PORT_A" $(( CLIENTS / 2 )) "$DURATION" > "$work/kill-a" &
load_a=$!
load "$PORT_B" $(( CLIENTS / 2 )) "$DURATION" > "$work/kill-b" &
load_b=$!
sleep $(( secs / 3 ))
kill -9 "$pid_b"
echo "   killed node b; held units right after: $(sql "SELECT count(*) FROM reservations")"
wait "$load_a" "$load_b" || true
printf '   node a:        %s\n   node b (dead): %s\n' "$(cat "$work/kill-a")" "$(cat "$work/kill-b")"
reconcile
echo "   waiting for the dead node's holds to lapse (metering.hold_ms 35 s + upkeep every 30 s)…"
for _ in $(seq 1 90); do
  [ "$(sql "SELECT count(*) FROM reservations")" = 0 ] && break
  sleep 1
done
echo "   held units now: $(sql "SELECT count(*) FROM reservations")"
reconcile

if [ -z "${SKIP_PG_RESTART:-}" ]; then
  echo "== 3. PostgreSQL restarted mid-load (node a)"
  cluster_of() { pg_lsclusters -h | awk 'NR==1{print $1, $2}'; }
  pg() { # stop|start
    if command -v pg_ctlcluster >/dev/null; then
      # shellcheck disable=SC2046
      pg_ctlcluster $(cluster_of) "$1" ${2:+-m "$2"}
    else
      service postgresql "$1"
    fi
  }
  load "$PORT_A" $(( CLIENTS / 2 )) "$DURATION" > "$work/restart-a" &
  load_a=$!
  sleep $(( secs / 4 ))
  pg stop fast
  sleep 5
  echo "   PostgreSQL down 5 s: node a readyz $(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$PORT_A/readyz")"
  pg start
  wait "$load_a" || true
  printf '   node a:        %s\n' "$(cat "$work/restart-a")"
  for _ in $(seq 1 20); do
    curl -fsS "http://127.0.0.1:$PORT_A/readyz" >/dev/null 2>&1 && break
    sleep 0.5
  done
  printf '   after: readyz %s; one more check: ' "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_A/readyz")"
  curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: APPCODE $code" -H 'Content-Type: application/json' \
    --data-binary @"$work/body.json" "http://127.0.0.1:$PORT_A/faceidcard/check"
  reconcile
fi
