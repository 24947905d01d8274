"""spark-submit entry point: churn labels for cutoffs + point-in-time training set (one JVM).

    spark-submit spark_jobs/training_set.py --cutoffs 2025-02-01,2025-02-08 --horizon-days 90 --id ID

Writes `ml.training_sets` partition `ID` (replacing it when it exists, so a retried task is
idempotent) and its catalog entry with lineage and the engine that built it (Spark, or the
embedded engine in this process: ML_PLATFORM_ENGINE_TRAINING_SETS, `lake.engine`). Prints one JSON line prefixed
`TRAINING_SET_RESULT `. Exit 2 with the reason on stderr for bad input (e.g. a cutoff whose
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

    from ml_platform.features import FeatureLookup, FeatureStore
    from ml_platform.lake import run_job
    from ml_platform.training.labels import build_churn_labels, build_churn_labels_embedded

    def body(spark: Any, out: dict[str, Any]) -> None:
        store = FeatureStore(spark=spark)
        lookups = [FeatureLookup("features.customer_features")]
        engine = store.training_set_engine(lookups)  # embedded: DuckDB in this process over the lake's files
        print(f"training set: {engine.engine} engine ({engine.reason})", flush=True)
        if engine.engine == "embedded":
            entity = build_churn_labels_embedded(cutoffs, a.horizon_days, store.settings)
        else:
            entity = build_churn_labels(cutoffs, a.horizon_days, spark=spark)
        ts = store.create_training_set(
            entity,
            lookups,
            timestamp_key="event_timestamp",
            label="churned",
            training_set_id=a.id,
            engine=engine,
        )
        out.update(
            training_set_id=ts.training_set_id,
            rows=ts.metadata["rows"],
            lineage=ts.lineage,
            engine=ts.metadata["engine"],
        )

    return run_job("training_set", body)


if __name__ == "__main__":
    sys.exit(main())
