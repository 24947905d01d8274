"""spark-submit entry point of Delta maintenance (one JVM per run).

    spark-submit spark_jobs/lake_maintenance.py [--tables features.customer_features,...]

OPTIMIZE then VACUUM every existing lake table (default: the platform's tables and every
registered feature table), with a retention that keeps versions pinned by training-set lineage
and the as-of horizon readable (`ml_platform.pipelines.lake_maintenance`). Prints one JSON line prefixed
`LAKE_MAINTENANCE_RESULT `.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tables", default="", help="comma-separated table names (default: all maintained tables)")
    args = p.parse_args(argv)

    from ml_platform.engines.jobs import run_job
    from ml_platform.pipelines.lake_maintenance import maintain, maintained_tables

    tables = [t.strip() for t in args.tables.split(",") if t.strip()] or maintained_tables()
    return run_job("lake_maintenance", lambda engine, out: out.update(tables=maintain(engine.spark, tables)))


if __name__ == "__main__":
    sys.exit(main())
