# Shared set-up of the whole-job benchmarks, sourced by batch.sh and alerts.sh:
# builds the release `roi`, and enters a work directory holding a world of the given
# scale (seed 7) in ./data/lake, generating it on first use.
# Usage (from a benchmark script at the repository root): bench_world NAME SCALE
# Sets: repo (the repository), roi (the binary), work (the work directory, now current).
bench_world() {
  repo="$PWD"
  local target="${CARGO_TARGET_DIR:-target}"
  case "$target" in /*) ;; *) target="$repo/$target" ;; esac
  cargo build --release --bin roi >/dev/null 2>&1 || cargo build --release --bin roi
  roi="$target/release/roi"
  work="${TMPDIR:-/tmp}/roi-bench-$1-$2"
  mkdir -p "$work"
  cd "$work"
  if [ ! -f data/lake/raw/manifest.json ]; then
    "$roi" datasets generate --scale "$2" --seed 7 >/dev/null
  fi
}
