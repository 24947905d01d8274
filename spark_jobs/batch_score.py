"""spark-submit entry point: score one feature snapshot with a registered model -> gold.churn_scores.

    spark-submit spark_jobs/batch_score.py --date 2025-03-30 --version 3

Replaces the `score_date` partition (a rerun gives identical rows). Prints one JSON line
prefixed `BATCH_SCORE_RESULT `. Exit 2 with the reason on stderr for bad input (no such
snapshot, a model needing features the snapshot lacks).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--date", type=date.fromisoformat, required=True, help="snapshot_date to score")
    p.add_argument("--version", required=True, help="model version (the DAG resolves @champion)")
    a = p.parse_args(argv)

    from ml_platform.lake import run_job
    from ml_platform.serving.batch import score_snapshot

    return run_job("batch_score", lambda spark, out: out.update(score_snapshot(spark, a.date, a.version)))


if __name__ == "__main__":
    sys.exit(main())
