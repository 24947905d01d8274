"""Cluster overhead benchmark: the feature job and the point-in-time join on `local[2]` vs a Spark
standalone cluster of 2 workers (1 core each) on the same 2 cores.

    python benchmarks/cluster.py [--rows 10000000] [--smoke]

Generates N synthetic transactions (benchmarks/feature_snapshot.py) and a PIT workload of N/10
entity rows x N feature rows (benchmarks/pit_join.py), starts the cluster with
scripts/spark_cluster.sh (a private platform home, its own ports), then runs each job once per
master in one process tree: session start (executors registered) timed apart from the job. Both
masters must write the same rows. The cluster cannot be faster on the same 2 cores: the ratio is
the price of real executors (JVMs of their own, Python workers, shuffles over the network stack,
the platform's code shipped as a zip), which says what N real workers should give.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import feature_snapshot  # noqa: E402
import pit_join  # noqa: E402
from feature_snapshot import PeakRss  # noqa: E402


def _cluster(home: Path, action: str) -> dict[str, str]:
    env = dict(
        os.environ,
        ML_PLATFORM_HOME=str(home),
        ML_PLATFORM_SPARK_MASTER_PORT=os.environ.get("BENCH_SPARK_PORT", "27177"),
    )
    run = subprocess.run(
        ["bash", str(HERE.parent / "scripts" / "spark_cluster.sh"), action], env=env, capture_output=True, text=True
    )
    if run.returncode != 0:
        raise SystemExit(f"spark_cluster.sh {action} failed: {run.stderr[-2000:]}")
    return dict(re.findall(r"^export (\w+)='?(.*?)'?$", run.stdout, re.M))


def _run(master: str, home: Path, work: Path, silver: Path, snapshot) -> dict[str, float]:
    from ml_platform.config import Settings
    from ml_platform.lake import get_spark

    settings = Settings(home=home, spark_master=master)
    out: dict[str, float] = {}
    with PeakRss() as mem:
        t = time.perf_counter()
        spark = get_spark(f"bench-{master}", settings=settings)
        spark.range(4).count()  # executors registered
        out["start"] = time.perf_counter() - t
        t = time.perf_counter()
        feature_snapshot.spark_features(spark, silver, snapshot, work / f"features-{master[:5]}")
        out["features"] = time.perf_counter() - t
        t = time.perf_counter()
        pit_join.spark_join(spark, work)
        out["pit"] = time.perf_counter() - t
        shutil.move(str(work / "spark.parquet"), str(work / f"pit-{master[:5]}.parquet"))
        spark.stop()
    out["peak_mib"] = mem.peak / 2**20
    return out


def _same(a: Path, b: Path, key: list[str]) -> int:
    import pandas as pd

    from ml_platform.lake.reader import read_pandas

    read = (lambda p: read_pandas(str(p))) if (a / "_delta_log").is_dir() else pd.read_parquet
    x, y = (read(p).sort_values(key).reset_index(drop=True) for p in (a, b))
    pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=1e-9)
    return len(x)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=10_000_000, help="transactions, and PIT feature rows (default 10 M)")
    p.add_argument("--smoke", action="store_true", help="tiny run for CI (20,000 rows)")
    a = p.parse_args(argv)
    rows = 20_000 if a.smoke else a.rows
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    home = work / "home"
    try:
        t = time.perf_counter()
        silver, snapshot, n = feature_snapshot.make_data(rows, work)
        pit_join.make_data(max(1, rows // 10), rows, work)
        print(
            f"data: {n:,} transactions; PIT {rows // 10:,} x {rows:,}; generated in {time.perf_counter() - t:.1f}s",
            flush=True,
        )
        master = _cluster(home, "start")["ML_PLATFORM_SPARK_MASTER"]
        try:
            results = {}
            for m in ("local[2]", master):
                print(f"running the feature job and the PIT join on {m}", file=sys.stderr, flush=True)
                results[m] = _run(m, home, work, silver, snapshot)
        finally:
            _cluster(home, "stop")
        customers = _same(work / "features-local", work / "features-spark", ["customer_id"])
        entity_rows = _same(work / "pit-local.parquet", work / "pit-spark.parquet", ["row"])
        print(f"outputs agree: {customers:,} customers' features, {entity_rows:,} PIT rows")
        print(f"{'master':<28}{'start s':>9}{'features s':>12}{'PIT s':>9}{'peak RSS MiB':>14}")
        for m, r in results.items():
            print(f"{m:<28}{r['start']:>9.1f}{r['features']:>12.1f}{r['pit']:>9.1f}{r['peak_mib']:>14.0f}")
        lo, cl = results["local[2]"], results[master]
        print(
            f"cluster/local: start {cl['start'] / lo['start']:.2f}x, features {cl['features'] / lo['features']:.2f}x, "
            f"PIT {cl['pit'] / lo['pit']:.2f}x (same 2 cores: the overhead of real executors)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
