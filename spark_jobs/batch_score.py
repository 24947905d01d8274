"""Job entry point: score one feature snapshot with a registered model -> gold.churn_scores.

    spark-submit spark_jobs/batch_score.py --date 2025-03-30 --version 3

The engine comes first (`ML_PLATFORM_ENGINE_SCORING`, `ml_platform.engines`): on Spark the model runs as
a UDF; on the embedded engine no Spark session starts and the snapshot is scored in this process
(the DAG's operator then runs this file with plain Python, no JVM). Replaces the `score_date`
partition (a rerun gives identical rows). Prints one JSON line prefixed `BATCH_SCORE_RESULT `
with the engine. Exit 2 with the reason on stderr for bad input (no such snapshot, a model
needing features the snapshot lacks).
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

    from ml_platform.engines.jobs import run_job
    from ml_platform.serving.batch import score_snapshot, scoring_engine

    return run_job(
        "batch_score",
        lambda engine, out: out.update(score_snapshot(engine, a.date, a.version)),
        engine=scoring_engine,
    )


if __name__ == "__main__":
    sys.exit(main())
