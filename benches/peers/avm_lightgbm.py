"""LightGBM on exactly the AVM's examples, the peer of `roi train avm`.

Reads the Parquet written by `roi train avm --export-examples FILE` (features, target =
index-adjusted log price, log_index, price, part = train|calibration|holdout), trains
LightGBM with the settings ROI's trees use (600 rounds, learning rate 0.05, depth 6,
min child weight 5, L2 1, 80% row subsample, 2 threads), calibrates the same 80%
split-conformal interval on the calibration part and scores the holdout.

Usage: python3 avm_lightgbm.py EXAMPLES.parquet
"""
import sys
import time

import lightgbm as lgb
import numpy as np
import pyarrow.parquet as pq

table = pq.read_table(sys.argv[1])
features = [c for c in table.column_names if c not in ("target", "log_index", "price", "part")]
parts = np.array(table.column("part").to_pylist())


def columns(name, names):
    mask = parts == name
    return np.column_stack([table.column(c).to_numpy()[mask] for c in names])


def column(name, c):
    return table.column(c).to_numpy()[parts == name]


params = dict(
    objective="regression",
    learning_rate=0.05,
    max_depth=6,
    num_leaves=63,
    min_sum_hessian_in_leaf=5.0,
    lambda_l2=1.0,
    bagging_fraction=0.8,
    bagging_freq=1,
    seed=7,
    num_threads=2,
    verbose=-1,
)
start = time.perf_counter()
model = lgb.train(
    params,
    lgb.Dataset(columns("train", features), column("train", "target")),
    num_boost_round=600,
)
residuals = np.sort(
    np.abs(column("calibration", "target") - model.predict(columns("calibration", features)))
)
n = len(residuals)
k = min(max(int(np.ceil((n + 1) * 0.8)), 1), n)
half_width = residuals[k - 1]
seconds = time.perf_counter() - start
pred = model.predict(columns("holdout", features)) + column("holdout", "log_index")
price = column("holdout", "price")
ape = np.abs(np.exp(pred) - price) / price
low, high = np.exp(pred - half_width), np.exp(pred + half_width)
print(
    f"  lightgbm: {len(column('train', 'target'))} training sales in {seconds:.2f} s; "
    f"holdout ({len(price)} sales): MdAPE {100 * np.median(ape):.1f}%, "
    f"PPE10 {100 * np.mean(ape <= 0.10):.1f}%, PPE20 {100 * np.mean(ape <= 0.20):.1f}%, "
    f"80% interval coverage {100 * np.mean((low <= price) & (price <= high)):.1f}%"
)
