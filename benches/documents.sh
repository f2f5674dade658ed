#!/usr/bin/env bash
# Document upload and download throughput (benches/documents.rs): 1 MB and 50 MB files
# through `roi serve` on local storage, beside a plain Node.js file server (the peer).
# Then OCR pages per minute of a scanned PDF through roi serve, beside the same programs
# (pdftoppm, tesseract) run from a shell.
# Usage: benches/documents.sh [SMALL_FILES] [LARGE_FILES] [OCR_PAGES]   (default 64 6 10)
# Needs: node (the peer uses only its standard library), tesseract and pdftoppm, and
# python3 with Pillow.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --bin roi
BENCH_ROI_BIN="$target/release/roi" cargo bench --bench documents -- "${1:-64}" "${2:-6}" "${3:-10}"
