"""spark-submit entry point: late labels for logged predictions -> monitoring.labels.

    spark-submit spark_jobs/monitoring_labels.py --horizon-days 28

Prints one JSON line prefixed `MONITORING_LABELS_RESULT `.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--horizon-days", type=int, required=True, help="churn label window (days)")
    a = p.parse_args(argv)
    if a.horizon_days <= 0:
        p.error("--horizon-days must be positive")

    from ml_platform.engines.jobs import run_job
    from ml_platform.monitoring.labels import derive_labels

    return run_job("monitoring_labels", lambda engine, out: out.update(derive_labels(engine.spark, a.horizon_days)))


if __name__ == "__main__":
    sys.exit(main())
