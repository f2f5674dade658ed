#!/usr/bin/env bash
# Document search latency (benches/search.rs): DOCS documents' text in one organization,
# searched through roi serve (GET /documents/search) beside PostgreSQL full-text search
# on the same texts (the peer).
# Usage: benches/search.sh [DOCS] [QUERIES]   (default 100000 500)
# Needs: PostgreSQL (BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --bin roi
BENCH_ROI_BIN="$target/release/roi" cargo bench --bench search -- "${1:-100000}" "${2:-500}"
