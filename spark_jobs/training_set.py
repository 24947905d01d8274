"""Job entry point: churn labels for cutoffs + point-in-time training set (one Spark session, or none).

    spark-submit spark_jobs/training_set.py --cutoffs 2025-02-01,2025-02-08 --horizon-days 90 --id ID

Writes `ml.training_sets` partition `ID` (replacing it when it exists, so a retried task is
idempotent) and its catalog entry with lineage and the engine that built it. The engine comes
first (ML_PLATFORM_ENGINE_TRAINING_SETS, `ml_platform.engines`): on the embedded engine no Spark session
starts (the DAG's operator then runs this file with plain Python, no JVM). Prints one JSON line
prefixed `TRAINING_SET_RESULT ` with the engine. Exit 2 with the reason on stderr for bad input (e.g. a cutoff whose
label window is not observed).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cutoffs", required=True, help="comma-separated dates")
    p.add_argument("--horizon-days", type=int, required=True)
    p.add_argument("--id", required=True, help="training_set_id")
    a = p.parse_args(argv)
    try:
        cutoffs = [date.fromisoformat(c) for c in a.cutoffs.split(",") if c.strip()]
    except ValueError as e:
        p.error(f"bad --cutoffs {a.cutoffs!r}: {e}")

    from ml_platform.engines.jobs import run_job
    from ml_platform.training.labels import churn_training_set, churn_training_set_engine

    def body(engine: Any, out: dict[str, Any]) -> None:
        ts = churn_training_set(cutoffs, a.horizon_days, a.id, engine=engine)
        out.update(training_set_id=ts.training_set_id, rows=ts.metadata["rows"], lineage=ts.lineage)

    return run_job("training_set", body, engine=churn_training_set_engine)


if __name__ == "__main__":
    sys.exit(main())
