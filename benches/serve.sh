#!/usr/bin/env bash
# HTTP benchmark on loopback, side by side in one run:
#   roi serve  GET /me      (bearer token: EdDSA verify + one store read)
#   roi serve  GET /me      (API key: one store read for the key, one for the user)
#   roi serve  GET /healthz (no auth, no store)
#   roi serve  GET /alerts  (a page of 50 of the small world's alerts, as `roi demo` left them)
#   nginx      GET /me      (the peer: a fixed JSON body from nginx, the fastest small
#                            response this machine serves)
#   roi serve  POST /auth/login (argon2id dominates)
# Reports requests/s and latency percentiles from wrk, and each ratio to nginx.
# Usage: benches/serve.sh [DURATION] [CONNECTIONS]   (default 15s, 64)
# Needs: wrk and nginx (Debian: apt-get install wrk nginx-light), curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-15s}"
connections="${2:-64}"
target="${CARGO_TARGET_DIR:-target}"
roi_port=18080
nginx_port=18081
cargo build --release --bin roi >/dev/null 2>&1 || cargo build --release --bin roi
work="$(mktemp -d)"
cleanup() {
  [ -n "${roi_pid:-}" ] && kill "$roi_pid" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Alerts to list: the small world through the whole pipeline (models, stream), ingested
# into the store and routed by `roi demo`.
echo "preparing alerts: roi demo --scale small (world, batch jobs, models, stream; ~30 s)"
"$target/release/roi" --data-dir "$work/data" demo --scale small --seed 7 >"$work/demo.log" 2>&1

# The benchmark logs in from one address far more than the default limits allow.
ROI_SERVE__LIMITS__LOGIN_PER_IP__LIMIT=100000000 \
ROI_SERVE__LIMITS__LOGIN_FAILURES_PER_ACCOUNT__LIMIT=100000000 \
  "$target/release/roi" --data-dir "$work/data" serve --bind "127.0.0.1:$roi_port" >"$work/roi.log" 2>&1 &
roi_pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$roi_port/healthz" >/dev/null && break
  sleep 0.1
done
# The demo made an organization per pipeline organization, its alerts ingested and
# routed; the benchmark signs in as the owner of the one with the most alerts.
lake_org="$("$target/release/roi" --data-dir "$work/data" sql --format csv \
  "SELECT org_id FROM alerts.alerts GROUP BY org_id ORDER BY count(*) DESC LIMIT 1" | tail -1)"
slug="$("$target/release/roi" --data-dir "$work/data" orgs list | awk -v l="pipeline org_id $lake_org" 'index($0, l) {print $1}')"
password="$(sed -n 's/.*"password": "\([^"]*\)".*/\1/p' "$work/data/demo-credentials.txt" | head -1)"
email="$(awk -F'\t' -v s="$slug" '$1 == s && $3 == "owner" {print $2}' "$work/data/demo-credentials.txt" | head -1)"
[ -n "$slug" ] && [ -n "$email" ] && [ -n "$password" ] || { echo "no demo owner found (slug '$slug')" >&2; exit 1; }
echo "listing as $email of $slug (pipeline organization $lake_org: $("$target/release/roi" --data-dir "$work/data" sql --format csv "SELECT count(*) FROM alerts.alerts WHERE org_id = $lake_org" | tail -1) alerts)"
login="{\"organization\":\"$slug\",\"email\":\"$email\",\"password\":\"$password\"}"
token="$(curl -sf "http://127.0.0.1:$roi_port/auth/login" -H 'content-type: application/json' -d "$login" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
me_body="$(curl -sf "http://127.0.0.1:$roi_port/me" -H "authorization: Bearer $token")"
api_key="$(curl -sf "http://127.0.0.1:$roi_port/api-keys" -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"name":"bench","role":"agent","scopes":["users:read"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"

mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$nginx_port;
    location /me { default_type application/json; return 200 '$me_body'; }
  }
}
CONF
nginx -c "$work/nginx.conf"

run() { # name, extra wrk args...
  local name="$1"; shift
  echo "== $name"
  wrk -t2 -c"$connections" -d"$duration" --latency "$@" | tee "$work/$name.txt" |
    grep -E 'Requests/sec|^ +(50|90|99)%|Non-2xx|Socket errors'
}
run nginx-me "http://127.0.0.1:$nginx_port/me"
run roi-me -H "authorization: Bearer $token" "http://127.0.0.1:$roi_port/me"
run roi-me-apikey -H "authorization: Bearer $api_key" "http://127.0.0.1:$roi_port/me"
run roi-healthz "http://127.0.0.1:$roi_port/healthz"
run roi-alerts -H "authorization: Bearer $token" "http://127.0.0.1:$roi_port/alerts?limit=50"
run roi-alerts-filtered -H "authorization: Bearer $token" "http://127.0.0.1:$roi_port/alerts?limit=50&sort=score&kind=sell&min_score=0.3"
# The latency target is p99 < 5 ms at 5k req/s. wrk is closed-loop, so a few connections
# give a rate near (above) the target with little queueing: its p99 is the one to read.
echo "== roi-me at low concurrency (4 connections; read its rate and p99 against 5k req/s, 5 ms)"
wrk -t2 -c4 -d"$duration" --latency -H "authorization: Bearer $token" "http://127.0.0.1:$roi_port/me" |
  tee "$work/roi-me-c4.txt" | grep -E 'Requests/sec|^ +(50|90|99)%|Non-2xx|Socket errors'
echo "== roi-alerts at low concurrency (4 connections; target p99 < 20 ms at 5k req/s)"
wrk -t2 -c4 -d"$duration" --latency -H "authorization: Bearer $token" "http://127.0.0.1:$roi_port/alerts?limit=50" |
  tee "$work/roi-alerts-c4.txt" | grep -E 'Requests/sec|^ +(50|90|99)%|Non-2xx|Socket errors'
cat >"$work/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '$login'
LUA
echo "== roi-login (4 connections: each login is one argon2id hash, ~19 MiB)"
wrk -t2 -c4 -d"$duration" --latency -s "$work/login.lua" "http://127.0.0.1:$roi_port/auth/login" |
  tee "$work/roi-login.txt" | grep -E 'Requests/sec|^ +(50|90|99)%|Non-2xx'

rps() { grep 'Requests/sec' "$work/$1.txt" | awk '{print $2}'; }
echo
python3 - "$(rps nginx-me)" "$(rps roi-me)" "$(rps roi-healthz)" <<'PY'
import sys
nginx, me, health = map(float, sys.argv[1:])
print(f"ratio roi GET /me / nginx: {me / nginx:.2f}   roi GET /healthz / nginx: {health / nginx:.2f}")
PY
