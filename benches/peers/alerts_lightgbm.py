"""LightGBM on exactly the alert trainer's data and splits, the peer of `roi train alerts`.

1. caravan: the CSV split as ROI splits a file without a time column (file order in 30
   blocks: the first 18 train, the last 6 test), scored by AUC and precision in the top
   20% of the test part.
2. the lake's training table (`features/alert_training`): per kind, the same time split
   as ROI (last 6 snapshot months test; 3-month gap; 6 calibration; 3-month gap; the rest
   trains), AUC on the test months, training time, and batch scoring speed of the four
   models on one thread.

Settings match ROI's trees: 250 rounds, learning rate 0.04, depth 4, min child weight 2,
L2 5, 80% row subsample.

Usage: python3 alerts_lightgbm.py CARAVAN.csv [TRAINING_DIR]
"""
import glob
import sys
import time

import lightgbm as lgb
import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

PARAMS = dict(
    objective="binary",
    learning_rate=0.04,
    max_depth=4,
    num_leaves=16,
    min_sum_hessian_in_leaf=2.0,
    min_data_in_leaf=1,
    lambda_l2=5.0,
    bagging_fraction=0.8,
    bagging_freq=1,
    seed=7,
    verbose=-1,
)
ROUNDS = 250


def auc(scores, labels):
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    s = scores[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    p = labels.sum()
    n = len(labels) - p
    return (ranks[labels].sum() - p * (p + 1) / 2) / (p * n)


def top_precision(scores, labels, share):
    k = int(np.ceil(share * len(scores)))
    cut = np.sort(scores)[::-1][k - 1]
    flagged = scores >= cut
    return labels[flagged].mean()


def train(x, y, threads):
    params = dict(PARAMS, num_threads=threads)
    return lgb.train(params, lgb.Dataset(x, y.astype(float)), ROUNDS)


table = pacsv.read_csv(sys.argv[1])
label = np.array([v == "Yes" for v in table.column("Purchase").to_pylist()])
names = [c for c in table.column_names if c not in ("rownames", "Purchase")]
x = np.column_stack([table.column(c).to_numpy().astype(float) for c in names])
block = np.arange(len(label)) * 30 // len(label)
tr, te = block <= 17, block >= 24
model = train(x[tr], label[tr], 2)
scores = model.predict(x[te])
print(
    f"  caravan, LightGBM: AUC {auc(scores, label[te]):.3f}, precision in the top 20% "
    f"{100 * top_precision(scores, label[te], 0.2):.1f}% (test part {te.sum()} rows)"
)

if len(sys.argv) > 2:
    files = sorted(glob.glob(f"{sys.argv[2]}/**/*.parquet", recursive=True))
    t = pq.ParquetFile(files[0]).read() if len(files) == 1 else pq.read_table(sys.argv[2])
    skip = {"contact_id", "org_id", "as_of_date", "snapshot_on"}
    cols = [c for c in t.column_names if c not in skip and not c.startswith(("label_", "oracle_"))]
    x = np.column_stack([t.column(c).to_numpy(zero_copy_only=False).astype(float) for c in cols])
    months = t.column("snapshot_on").to_numpy().astype("datetime64[M]").astype(int)
    last = months.max()
    test = months >= last - 5
    cal_hi = last - 6 - 3
    train_rows = months <= cal_hi - 5 - 3
    models = []
    for kind in ["sell", "buy", "refinance", "investment"]:
        y = t.column(f"label_{kind}").to_numpy(zero_copy_only=False).astype(bool)
        started = time.perf_counter()
        m = train(x[train_rows], y[train_rows], 2)
        seconds = time.perf_counter() - started
        s = m.predict(x[test])
        print(f"  {kind}, LightGBM: AUC {auc(s, y[test]):.3f} on the test months; trained in {seconds:.1f} s")
        models.append(m)
    for threads in [1, 2]:
        started = time.perf_counter()
        for m in models:
            m.predict(x, num_threads=threads)
        seconds = time.perf_counter() - started
        print(
            f"  LightGBM batch scoring, {threads} thread(s): {seconds:.3f} s for {len(x)} contacts -> "
            f"{len(x) / seconds:.0f} contact-scores/s ({len(x) / seconds / threads:.0f} per core)"
        )
    row = x[:1]
    lat = []
    for i in range(2000):
        r = x[i * (len(x) // 2000) : i * (len(x) // 2000) + 1]
        started = time.perf_counter()
        for m in models:
            m.predict(r, num_threads=1)
        lat.append((time.perf_counter() - started) * 1e6)
    lat.sort()
    print(f"  LightGBM single contact, all four models: p50 {lat[1000]:.1f} µs, p99 {lat[1980]:.1f} µs")
