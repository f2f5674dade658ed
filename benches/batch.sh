#!/usr/bin/env bash
# Batch benchmarks, side by side in one run:
#   - market statistics: roi's market-stats job vs DuckDB and Polars computing the
#     per-zip monthly aggregation on the same Parquet;
#   - AVM: roi train avm vs LightGBM trained on exactly the same examples and split.
# Usage: benches/batch.sh [SCALE] (default medium). Needs: pip install duckdb polars lightgbm pyarrow
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${1:-medium}"
. benches/world.sh
bench_world batch "$scale"
"$roi" jobs run property-master >/dev/null
lake=data/lake
job_seconds() { # the duration of the newest run of job $1, from the run log
  python3 - "$lake" "$1" <<'PY'
import glob, json, sys
lake, job = sys.argv[1], sys.argv[2]
for path in sorted(glob.glob(f"{lake}/_runs/jobs/run-*.json"), reverse=True):
    for r in json.load(open(path))["records"]:
        if r["job"] == job and r["outcome"] == "succeeded":
            print(f"{r['duration_ms'] / 1000:.2f}"); sys.exit()
PY
}
echo "== market statistics ($scale)"
for i in 1 2 3; do
  "$roi" jobs run market-stats --force >/dev/null
  echo "  roi market-stats (zip + H3 cells, dense months), run $i: $(job_seconds market-stats) s"
done
for peer in duckdb polars; do
  for i in 1 2 3; do
    python3 "$repo/benches/peers/market_stats.py" "$peer" "$lake" "$work/$peer-market.parquet"
  done
done
python3 - "$lake" "$work/duckdb-market.parquet" <<'PY'
import sys, duckdb
lake, peer = sys.argv[1], sys.argv[2]
n, differ = duckdb.sql(f"""
  WITH r AS (SELECT area AS zip, month, * EXCLUDE (area, month)
             FROM '{lake}/curated/market_stats/*.parquet' WHERE area_kind = 'zip' AND sales > 0)
  SELECT count(*), count(*) FILTER (WHERE r.sales <> d.sales
      OR abs(r.median_price - d.median_price) > 0.01
      OR r.median_days_on_market IS DISTINCT FROM d.median_days_on_market
      OR r.sales_12m <> d.sales_12m
      OR abs(r.median_price_12m - d.median_price_12m) > 0.01)
  FROM r JOIN '{peer}' d ON r.zip = d.zip AND r.month = d.month::DATE""").fetchall()[0]
print(f"  check: {n} zip-months compared with DuckDB, {differ} differ")
PY
echo "== AVM ($scale)"
"$roi" train avm --export-examples "$work/examples.parquet" | grep -E "model avm|holdout"
python3 "$repo/benches/peers/avm_lightgbm.py" "$work/examples.parquet"
