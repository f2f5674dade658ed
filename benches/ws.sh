#!/usr/bin/env bash
# The alert push under load (benches/ws.rs): CLIENTS WebSocket clients on one `roi
# serve` process, ALERTS_PER_SEC alerts stored for SECONDS, beside a Node.js `ws`
# fan-out server (the peer) with the same clients and rate.
# Usage: benches/ws.sh [CLIENTS] [ALERTS_PER_SEC] [SECONDS]   (default 10000 1000 20)
# The store is a new SQLite file; BENCH_DATABASE_URL=postgres://… names an empty
# PostgreSQL database to use instead.
# Needs: node and npm (the peer is installed with `npm ci` from its lockfile).
set -euo pipefail
cd "$(dirname "$0")/.."
# Two processes with CLIENTS sockets each, and the server's store and log files: raise
# the open-file limit to the hard limit, and say so when that is too low.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $(( ${1:-10000} + 1000 )) ]; then
  echo "the open-file limit ($(ulimit -n)) is too low for ${1:-10000} clients" >&2
  exit 1
fi
target="${CARGO_TARGET_DIR:-target}"
(cd benches/peers/ws && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; })
cargo build --release --bin roi
BENCH_ROI_BIN="$target/release/roi" cargo bench --bench ws -- "${1:-10000}" "${2:-1000}" "${3:-20}"
