"""Feature snapshot benchmark: the Spark feature job, the embedded engine and one bare DuckDB query.

    python benchmarks/feature_snapshot.py [--rows 1000000] [--smoke]

Generates N synthetic transactions (clean rows, one Parquet file), then for one snapshot date:
- Spark: session start (timed separately) + `compute_customer_features` + Delta write;
- the platform's default path: the data plane's feature job (`build_feature_snapshots`) with the
  engine `auto` picks (the embedded one here: DuckDB over silver's Delta files, committed to
  `features.customer_features` by the embedded Delta writer); silver is first written as the
  platform keeps it (Delta, partitioned by txn_date; not timed);
- DuckDB: one SQL query over the same file, written to Parquet (the floor).
Checks that all outputs agree (same customers; the embedded engine's values bit for bit with
Spark's, the bare query's within one unit of the 6th decimal, since it sums and rounds in binary)
and prints wall time, peak memory (RSS of the process tree,
sampled every 50 ms) and the Spark/DuckDB ratio.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psutil

RATE_PER_CUSTOMER_DAY = 0.083  # measured mean of the generator's purchase rate


class PeakRss:
    """Peak resident memory of this process and its children while the block runs."""

    def __enter__(self) -> PeakRss:
        self.peak, self._stop = 0, threading.Event()
        self._base = self._rss()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _rss(self) -> int:
        me = psutil.Process()
        total = me.memory_info().rss
        for c in me.children(recursive=True):
            try:
                total += c.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss())


def print_comparison(start_s: float, job_s: float, spark_peak: int, duck_s: float, duck_peak: int, step: str) -> None:
    """The side-by-side table every Spark-vs-DuckDB benchmark prints."""
    total = start_s + job_s
    print(f"{'engine':<8}{'wall s':>10}{'peak RSS MiB':>15}")
    print(
        f"{'spark':<8}{total:>10.2f}{spark_peak / 2**20:>15.0f}   (session start {start_s:.2f}s + {step} {job_s:.2f}s)"
    )
    print(f"{'duckdb':<8}{duck_s:>10.2f}{duck_peak / 2**20:>15.0f}")
    print(f"spark/duckdb: {total / duck_s:.1f}x with session start, {job_s / duck_s:.1f}x without")


def make_data(rows: int, out: Path) -> tuple[Path, date, int]:
    import pandas as pd

    from ml_platform.data.generator import GeneratorSpec, generate_days, make_customers

    days = 365
    customers = max(50, int(rows / (RATE_PER_CUSTOMER_DAY * days)))
    spec = GeneratorSpec(
        customers=customers,
        start=date(2024, 1, 1),
        end=date(2024, 1, 1) + timedelta(days=days - 1),
        seed=1,
        dirty_share=0.0,
    )
    frames = [df for _, df in generate_days(spec, make_customers(spec))]
    df = pd.concat(frames, ignore_index=True)
    df["transaction_ts"] = df["transaction_ts"].astype("datetime64[us]").dt.tz_localize("UTC")
    path = out / "silver.parquet"
    df.to_parquet(path, index=False, row_group_size=1_000_000)
    return path, spec.end, len(df)


DUCKDB_SQL = """
WITH s AS (SELECT * FROM read_parquet($path) WHERE transaction_ts < $end),
a AS (
  SELECT customer_id, max(transaction_ts) AS last_ts, min(transaction_ts) AS first_ts,
    {windows}
    count(*) AS frequency_lifetime, sum(amount) AS monetary_lifetime, max(amount) AS max_amount,
    count(DISTINCT strftime(transaction_ts, '%Y-%m')) AS active_months,
    count(DISTINCT product_category) AS distinct_categories,
    count(*) FILTER (WHERE channel = 'online') AS online_count,
    count(*) FILTER (WHERE channel = 'mobile') AS mobile_count,
    count(*) FILTER (WHERE channel = 'store') AS store_count
  FROM s GROUP BY customer_id)
SELECT customer_id,
  epoch($end - last_ts) / 86400.0 AS recency_days, epoch($end - first_ts) / 86400.0 AS tenure_days,
  {window_cols}
  frequency_lifetime, round(monetary_lifetime, 6) AS monetary_lifetime,
  round(monetary_lifetime / frequency_lifetime, 6) AS avg_amount, max_amount, active_months,
  CASE WHEN monetary_90d > 0 THEN round((monetary_30d / 30.0) / (monetary_90d / 90.0), 6) END AS amount_trend,
  distinct_categories, online_count, mobile_count, store_count,
  round(online_count / frequency_lifetime, 6) AS online_share,
  CASE WHEN frequency_lifetime > 1 THEN round(epoch(last_ts - first_ts) / 86400.0 / (frequency_lifetime - 1), 6) END
    AS avg_days_between_purchases
FROM a
"""


def duckdb_features(path: Path, snapshot: date, out: Path) -> None:
    import duckdb

    windows = "".join(
        f"count(*) FILTER (WHERE transaction_ts >= $end - INTERVAL {w} DAY) AS frequency_{w}d, "
        f"coalesce(sum(amount) FILTER (WHERE transaction_ts >= $end - INTERVAL {w} DAY), 0) AS monetary_{w}d, "
        for w in (30, 90, 180)
    )
    window_cols = "".join(f"frequency_{w}d, round(monetary_{w}d, 6) AS monetary_{w}d, " for w in (30, 90, 180))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET threads = 2")
    sql = DUCKDB_SQL.format(windows=windows, window_cols=window_cols).replace("$end", "CAST($end AS TIMESTAMPTZ)")
    end = f"{snapshot + timedelta(days=1)} 00:00:00+00"
    con.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet)", {"path": str(path), "end": end})


def embedded_silver(path: Path, work: Path) -> Any:
    """Settings whose lake holds the generated rows as the platform keeps silver: a Delta table
    partitioned by txn_date, committed by the embedded writer (set-up, not timed)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from ml_platform.config import Settings
    from ml_platform.lake.delta_log import replace_partitions
    from ml_platform.lake.paths import table_path

    s = Settings(  # its own local lake and defaults, whatever the environment sets
        home=work / "home",
        lake_uri=str(work / "home" / "lake"),
        spark_master="local[2]",
        spark_remote="",
        engine_features="auto",
        engine_training_sets="auto",
        embedded_max_bytes=2**30,
    )
    rows = pq.read_table(path)
    rows = rows.append_column("txn_date", pc.cast(rows.column("transaction_ts"), "date32"))
    replace_partitions(table_path("silver.transactions", s), rows, ["txn_date"])
    return s


def embedded_features(settings: Any, snapshot: date) -> dict[str, Any]:
    """The platform's default path: the data plane's feature job with the engine `auto` picks,
    from silver's Delta files to `features.customer_features` (a Delta commit)."""
    from ml_platform.pipelines.data_plane import build_feature_snapshots, features_engine

    return build_feature_snapshots(features_engine(settings), [snapshot], "daily", settings)


def spark_features(spark, path: Path, snapshot: date, out: Path) -> None:
    from ml_platform.features.customer_features import compute_customer_features

    silver = spark.read.parquet(str(path))
    compute_customer_features(silver, [snapshot]).write.format("delta").mode("overwrite").save(str(out))


def compare(spark_out: Path, duck_out: Path, tolerance: float) -> tuple[int, float]:
    import numpy as np
    import pandas as pd

    from ml_platform.lake.reader import read_pandas

    s = (
        read_pandas(str(spark_out))
        .drop(columns=["snapshot_date", "feature_timestamp"])
        .set_index("customer_id")
        .sort_index()
    )
    if (duck_out / "_delta_log").is_dir():
        d = read_pandas(str(duck_out)).drop(columns=["snapshot_date", "feature_timestamp"])
    else:
        d = pd.read_parquet(duck_out)
    d = d.set_index("customer_id").sort_index()
    if list(s.index) != list(d.index):
        raise SystemExit(f"outputs disagree on customers: spark {len(s)} vs duckdb {len(d)}")
    worst = 0.0
    for col in s.columns:
        a, b = s[col].astype("float64").to_numpy(), d[col].astype("float64").to_numpy()
        if not np.array_equal(np.isnan(a), np.isnan(b)):
            raise SystemExit(f"outputs disagree on NULLs in {col}")
        diff = np.nanmax(np.abs(a - b)) if len(a) else 0.0
        worst = max(worst, float(diff if not np.isnan(diff) else 0.0))
    if worst > tolerance:
        raise SystemExit(f"outputs disagree: max abs difference {worst} > {tolerance} ({duck_out.name})")
    return len(s), worst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000, help="transactions to generate (default 1,000,000)")
    p.add_argument("--smoke", action="store_true", help="tiny run for CI (20,000 rows)")
    args = p.parse_args(argv)
    rows = 20_000 if args.smoke else args.rows
    work = Path(tempfile.mkdtemp(prefix="bench-features-"))
    try:
        t = time.perf_counter()
        path, snapshot, n = make_data(rows, work)
        print(f"data: {n:,} transactions, snapshot {snapshot}, generated in {time.perf_counter() - t:.1f}s", flush=True)

        with PeakRss() as duck_mem:
            t = time.perf_counter()
            duckdb_features(path, snapshot, work / "duck.parquet")
            duck_s = time.perf_counter() - t

        settings = embedded_silver(path, work)
        with PeakRss() as emb_mem:
            t = time.perf_counter()
            result = embedded_features(settings, snapshot)
            emb_s = time.perf_counter() - t
        print(f"default path: {result['engine']['engine']} engine ({result['engine']['reason']})", flush=True)

        from ml_platform.lake import get_spark

        with PeakRss() as spark_mem:
            t = time.perf_counter()
            spark = get_spark("bench", extra_conf={"spark.master": "local[2]"})
            start_s = time.perf_counter() - t
            t = time.perf_counter()
            spark_features(spark, path, snapshot, work / "spark_delta")
            job_s = time.perf_counter() - t
        spark.stop()
        from ml_platform.features.customer_features import FEATURE_COLUMNS

        customers, worst = compare(work / "spark_delta", work / "duck.parquet", 1.5e-6)
        from ml_platform.lake.paths import table_path

        _, worst_emb = compare(work / "spark_delta", Path(table_path("features.customer_features", settings)), 0.0)
        print(
            f"outputs agree: {customers:,} customers x {len(FEATURE_COLUMNS)} features (+ customer_id), max abs diff "
            f"{worst:.1e} (DuckDB query), {worst_emb:.1e} (embedded engine)"
        )
        print_comparison(start_s, job_s, spark_mem.peak, duck_s, duck_mem.peak, "job")
        print(
            f"platform default ({result['engine']['engine']}: silver's Delta files in, a Delta commit out): "
            f"{emb_s:.2f} s, peak RSS "
            f"{emb_mem.peak / 2**20:,.0f} MiB; {emb_s / duck_s:.2f}x the DuckDB floor, "
            f"{(start_s + job_s) / emb_s:.1f}x faster than Spark with its start"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
