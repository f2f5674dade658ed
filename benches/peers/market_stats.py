"""Monthly per-zip market statistics with DuckDB or Polars, the peers of `roi jobs run
market-stats`: sales joined to the property master, per zip and month the sales count,
median price, median $/sqft and median days on market, and the trailing-12-month sales
count and median price. (ROI computes the same per H3 cell as well, and fills months
without sales, so it does more work than the peers.)

Usage: python3 market_stats.py duckdb|polars LAKE OUT.parquet
Prints the wall time of the computation including reading and writing Parquet.
"""
import sys
import time

engine, lake, out = sys.argv[1], sys.argv[2], sys.argv[3]
sales = f"{lake}/raw/sales/*.parquet"
master = f"{lake}/curated/property_master/*.parquet"
start = time.perf_counter()
if engine == "duckdb":
    import duckdb

    con = duckdb.connect()
    con.execute("PRAGMA threads=2")
    con.execute(
        f"""
        COPY (
          WITH s AS (
            SELECT p.zip, date_trunc('month', s.sold_on) AS month, s.price,
                   CASE WHEN p.sqft > 0 THEN s.price / p.sqft END AS ppsf,
                   s.days_on_market AS dom
            FROM read_parquet('{sales}') s
            JOIN read_parquet('{master}') p USING (property_id)
            WHERE p.zip IS NOT NULL AND s.price > 0
          ),
          w AS (
            SELECT zip, month,
                   count(*) OVER t AS sales_12m,
                   median(price) OVER t AS median_price_12m
            FROM s
            WINDOW t AS (PARTITION BY zip ORDER BY month
                         RANGE BETWEEN INTERVAL 11 MONTH PRECEDING AND CURRENT ROW)
          ),
          tr AS (
            SELECT zip, month, any_value(sales_12m) AS sales_12m,
                   any_value(median_price_12m) AS median_price_12m
            FROM w GROUP BY zip, month
          )
          SELECT zip, month, count(*) AS sales, median(price) AS median_price,
                 median(ppsf) AS median_price_per_sqft, median(dom) AS median_days_on_market,
                 any_value(t.sales_12m) AS sales_12m,
                 any_value(t.median_price_12m) AS median_price_12m
          FROM s JOIN tr t USING (zip, month)
          GROUP BY zip, month
          ORDER BY zip, month
        ) TO '{out}' (FORMAT parquet)
        """
    )
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
elif engine == "polars":
    import polars as pl

    s = (
        pl.scan_parquet(sales)
        .join(pl.scan_parquet(master).select("property_id", "zip", "sqft"), on="property_id")
        .filter(pl.col("zip").is_not_null() & (pl.col("price") > 0))
        .with_columns(
            pl.col("sold_on").dt.truncate("1mo").alias("month"),
            pl.when(pl.col("sqft") > 0).then(pl.col("price") / pl.col("sqft")).alias("ppsf"),
        )
        .sort("zip", "month")
    )
    monthly = s.group_by("zip", "month").agg(
        pl.len().alias("sales"),
        pl.col("price").median().alias("median_price"),
        pl.col("ppsf").median().alias("median_price_per_sqft"),
        pl.col("days_on_market").median().alias("median_days_on_market"),
    )
    trailing = (
        s.rolling(index_column="month", period="12mo", group_by="zip")
        .agg(pl.len().alias("sales_12m"), pl.col("price").median().alias("median_price_12m"))
        .group_by("zip", "month")
        .agg(pl.col("sales_12m").last(), pl.col("median_price_12m").last())
    )
    result = monthly.join(trailing, on=["zip", "month"]).sort("zip", "month").collect()
    result.write_parquet(out)
    rows = result.height
else:
    sys.exit(f"unknown engine {engine!r}; expected duckdb or polars")
print(f"  {engine}: {rows} zip-month rows in {time.perf_counter() - start:.2f} s")
