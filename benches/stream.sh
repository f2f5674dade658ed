#!/usr/bin/env bash
# Streaming benchmark, side by side: roi stream at 1 and 2 cores, DuckDB and Polars
# computing per-homeowner windowed counts over the same NDJSON files.
# Usage: benches/stream.sh [SCALE] (default medium). Needs: pip install duckdb polars
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${1:-medium}"
work="${TMPDIR:-/tmp}/roi-bench-stream-$scale"
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --bench stream --bin roi >/dev/null 2>&1 || cargo build --release --bench stream --bin roi
bench=$(ls -t "$target"/release/deps/stream-* | grep -v '\.d$' | head -1)
if [ ! -f "$work/lake/raw/manifest.json" ]; then
  "$target/release/roi" datasets generate --scale "$scale" --seed 7 --out "$work/lake/raw" >/dev/null
fi
events="$work/lake/raw/events"
echo "== roi, 1 core";  taskset -c 0 "$bench" "$events" 1
echo "== roi, 2 cores"; "$bench" "$events" 2
for peer in duckdb polars; do
  echo "== $peer (2 cores)"
  /usr/bin/time -f "  peak RSS: %M KB" python3 benches/peers/windowed_counts.py "$peer" "$events" "$work/$peer.parquet"
done
