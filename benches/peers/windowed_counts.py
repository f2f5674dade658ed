"""Peers for the streaming benchmark: per-homeowner, per-type event counts over trailing
1/7/30/90-day windows for every (homeowner, type, day) with events, from the same NDJSON
files, written to Parquet. Usage: python3 windowed_counts.py duckdb|polars EVENTS_DIR OUT"""
import sys
import time

engine, events, out = sys.argv[1], sys.argv[2], sys.argv[3]
pattern = f"{events}/arrivals-*.ndjson"
start = time.perf_counter()
if engine == "duckdb":
    import duckdb

    con = duckdb.connect()
    con.execute(f"""
        COPY (
          WITH ev AS (
            SELECT contact_id, event_type, CAST(CAST(ts AS TIMESTAMPTZ) AS DATE) AS d
            FROM read_json('{pattern}', format='newline_delimited',
                           columns={{contact_id:'BIGINT', event_type:'VARCHAR', ts:'VARCHAR'}},
                           ignore_errors=true)
          ), daily AS (
            SELECT contact_id, event_type, d, count(*) AS c FROM ev GROUP BY ALL
          )
          SELECT contact_id, event_type, d,
            sum(c) OVER w1 AS c1, sum(c) OVER w7 AS c7, sum(c) OVER w30 AS c30, sum(c) OVER w90 AS c90
          FROM daily
          WINDOW w1 AS (PARTITION BY contact_id, event_type ORDER BY d RANGE BETWEEN INTERVAL 0 DAYS PRECEDING AND CURRENT ROW),
                 w7 AS (PARTITION BY contact_id, event_type ORDER BY d RANGE BETWEEN INTERVAL 6 DAYS PRECEDING AND CURRENT ROW),
                 w30 AS (PARTITION BY contact_id, event_type ORDER BY d RANGE BETWEEN INTERVAL 29 DAYS PRECEDING AND CURRENT ROW),
                 w90 AS (PARTITION BY contact_id, event_type ORDER BY d RANGE BETWEEN INTERVAL 89 DAYS PRECEDING AND CURRENT ROW)
        ) TO '{out}' (FORMAT parquet)
    """)
    rows = con.execute(f"SELECT count(*) FROM '{out}'").fetchone()[0]
elif engine == "polars":
    import polars as pl

    ev = (
        pl.scan_ndjson(pattern, schema={"contact_id": pl.Int64, "event_type": pl.Utf8, "ts": pl.Utf8}, ignore_errors=True)
        .with_columns(pl.col("ts").str.to_datetime(time_zone="UTC", strict=False).dt.date().alias("d"))
        .drop_nulls(["contact_id", "event_type", "d"])
        .group_by(["contact_id", "event_type", "d"])
        .agg(pl.len().alias("c"))
        .sort(["contact_id", "event_type", "d"])
    )
    df = ev.collect()
    for days in (1, 7, 30, 90):
        w = df.rolling(index_column="d", period=f"{days}d", group_by=["contact_id", "event_type"]).agg(
            pl.col("c").sum().alias(f"c{days}")
        )
        df = df.join(w, on=["contact_id", "event_type", "d"], how="left")
    df.write_parquet(out)
    rows = df.height
else:
    raise SystemExit(f"unknown engine {engine}")
print(f"{engine}: {time.perf_counter() - start:.2f} s, {rows} rows")
