#!/usr/bin/env bash
# Alert-model benchmarks, side by side in one run:
#   - training and test AUC: roi train alerts vs LightGBM on the same training table and
#     time split; caravan (real buy/no-buy data) on the same split;
#   - scoring: the four promoted models' batch throughput (1 core, all cores) and
#     single-contact latency, vs LightGBM predicting with the same number of trees.
# Usage: benches/alerts.sh [SCALE] (default small). Needs: pip install lightgbm pyarrow numpy
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${1:-small}"
. benches/world.sh
bench_world alerts "$scale"
echo "== alert models ($scale): roi"
start=$(date +%s.%N)
"$roi" train alerts --model all | grep -E "^(sell|buy|refinance|investment)-v|  AUC|alert-training-set:"
echo "  (train alerts wall time, including the training-set job when stale: $(echo "$(date +%s.%N) - $start" | bc) s)"
echo "== caravan: roi"
"$roi" train alerts --csv "$repo/datasets/real/caravan.csv" --mapping "$repo/datasets/real/caravan.mapping.toml"
echo "== scoring: roi (promoted models)"
(cd "$repo" && cargo bench --bench scoring -- "$work/data/lake" 2>/dev/null)
echo "== LightGBM on the same data and splits"
python3 "$repo/benches/peers/alerts_lightgbm.py" "$repo/datasets/real/caravan.csv" data/lake/features/alert_training
