"""spark-submit entry point of the data plane (one JVM per DAG run).

    spark-submit spark_jobs/data_plane.py --start 2025-01-01 --end 2025-01-02 [--steps ingest,validate,features]

Runs, for the half-open interval [start, end) of UTC dates: ingest of landed files -> GE gate
-> silver -> feature snapshots for the snapshot dates in [start, end - 1 day] -> the online store
(only when the interval's last day is the newest snapshot). On the engine `data_plane_engine` picks
(ML_PLATFORM_ENGINE_DATA_PLANE, `ml_platform.engines`): the embedded one runs every step in this process
with no Spark session; on Spark the snapshots may still run embedded (ML_PLATFORM_ENGINE_FEATURES). Prints one JSON
line (prefixed `DATA_PLANE_RESULT `) with what it did. Exit 2 on a failed gate or bad input,
with the reason on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta
from typing import Any


def main(argv: list[str] | None = None) -> int:
    from ml_platform.errors import MlPlatformError
    from ml_platform.pipelines import data_plane as plane

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--start", type=date.fromisoformat, required=True, help="first day of the interval (UTC)")
    p.add_argument("--end", type=date.fromisoformat, required=True, help="day after the last day (exclusive)")
    p.add_argument(
        "--steps",
        default=",".join(plane.DATA_PLANE_STEPS),
        help=f"comma-separated subset of {','.join(plane.DATA_PLANE_STEPS)}",
    )
    args = p.parse_args(argv)
    try:
        steps = plane.parse_steps(args.steps)
    except MlPlatformError as e:
        p.error(str(e))
    if args.end <= args.start:
        p.error("--end must be after --start")

    from ml_platform.engines import Engine
    from ml_platform.engines.jobs import run_job

    def body(engine: Engine, out: dict[str, Any]) -> None:
        out["interval"] = [args.start.isoformat(), args.end.isoformat()]
        seconds = out.setdefault("seconds", {})  # per step, in the task log
        t = time.perf_counter()
        if "ingest" in steps:
            out["ingest"] = plane.ingest_landed(engine, args.start, args.end)
            seconds["ingest"], t = round(time.perf_counter() - t, 1), time.perf_counter()
        if "validate" in steps:
            gate = plane.validate_to_silver(engine, args.start, args.end).to_json()
            out["gate"] = {
                k: gate.get(k)
                for k in ("success", "rows_validated", "quarantined", "result_path", "data_docs", "skipped")
            }
            seconds["validate"], t = round(time.perf_counter() - t, 1), time.perf_counter()
        if "features" in steps:
            # a features-only run already chose; after ingest and the gate, the snapshots choose
            # their own engine (embedded: DuckDB in this driver; Spark: this job's session)
            features = engine if steps == ["features"] else plane.features_engine().using(engine)
            print(f"feature snapshots: {features.name} engine ({features.reason})", flush=True)
            out["features"] = plane.build_features(features, args.start, args.end - timedelta(days=1))
            seconds["features"], t = round(time.perf_counter() - t, 1), time.perf_counter()
            out["online"] = plane.publish_if_newest(features, args.end - timedelta(days=1))
            seconds["publish"] = round(time.perf_counter() - t, 1)

    return run_job("data_plane", body, engine=lambda: plane.data_plane_engine(args.steps))


if __name__ == "__main__":
    sys.exit(main())
