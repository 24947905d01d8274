"""Data plane: landed transaction files -> bronze -> Great Expectations gate -> silver -> feature snapshot.

Runs `@daily` (`@weekly` when `ML_PLATFORM_SNAPSHOT_CADENCE=weekly`, as in the demo) with catch-up,
one run at a time. Each run owns its data interval: it ingests the files landed under
`<home>/landing/transactions/<day>/` for the days of the interval (a day without a file is a
clear skip of `find_landed_files`, not a failure), gates them (failing rows go to
`quarantine.transactions`; a failed gate fails the run and leaves silver untouched), merges
silver, replaces the feature snapshot of the interval's last day, registers the table's spec in
the feature registry and, when this snapshot is the newest, publishes it to the online store
(SQLite by default, Redis with `ML_PLATFORM_ONLINE_STORE=redis`). All Spark work is one
spark-submit against the `spark_default` connection. `publish_features` emits the `features`
asset only when this run's snapshot is the newest in the table, so a backfill of old dates
neither republishes stale values nor triggers anything downstream. Rerunning or backfilling any
interval is safe (from the UI: the trigger dialog's Backfill option). Links:
`ingest_validate_features` -> the gate's JSON result and the GE data docs.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import Param, dag, task
from platform_links import ResultLink, data_docs, gate_result, link_results
from platform_operators import LakeSparkSubmitOperator

from ml_platform.assets import FEATURES
from ml_platform.config import get_settings
from ml_platform.data.plane import run_interval
from ml_platform.monitoring.alerts import task_failure_alert

_settings = get_settings()  # environment variables only, no I/O
SPARK_JOB = str(Path(__file__).resolve().parents[1] / "spark_jobs" / "data_plane.py")


@dag(
    dag_id="features_build",
    schedule="@weekly" if _settings.snapshot_cadence == "weekly" else "@daily",
    start_date=pendulum.instance(_settings.dag_start_date_utc),
    end_date=pendulum.instance(_settings.dag_end_date_utc) if _settings.dag_end_date else None,
    catchup=True,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30), "on_failure_callback": task_failure_alert},
    tags=["features", "data-plane", "spark"],
    doc_md=__doc__,
    params={
        "steps": Param("ingest,validate,features", type="string",
                       enum=["ingest,validate,features", "validate,features", "features"],
                       description="Which data-plane steps to run (e.g. only recompute the feature snapshot)."),
        "quarantine_max_share": Param(_settings.quarantine_max_share, type="number", minimum=0, maximum=1,
                                      description="Fail the gate above this share of quarantined rows."),
    },
    user_defined_macros={"run_interval": lambda start, end: run_interval(start, end, _settings.snapshot_cadence)},
)
def features_build() -> None:
    @task
    def find_landed_files(data_interval_start=None, data_interval_end=None) -> list[str]:
        """List the landing folders of the interval; skip (not fail) when nothing landed."""
        from airflow.sdk.exceptions import AirflowSkipException

        from ml_platform.data.plane import landed_days

        start, end = run_interval(data_interval_start, data_interval_end, _settings.snapshot_cadence)
        days = landed_days("transactions", start, end)
        if not days:
            raise AirflowSkipException(
                f"no transaction files landed for [{start}, {end}) "
                f"under {get_settings().landing_dir / 'transactions'}")
        return [str(folder) for _, folder in days]

    data_plane = LakeSparkSubmitOperator(
        task_id="ingest_validate_features",
        application=SPARK_JOB,
        application_args=["--start", "{{ run_interval(data_interval_start, data_interval_end)[0] }}",
                          "--end", "{{ run_interval(data_interval_start, data_interval_end)[1] }}",
                          "--steps", "{{ params.steps }}"],
        env_vars={"ML_PLATFORM_QUARANTINE_MAX_SHARE": "{{ params.quarantine_max_share }}"},
        conn_id="spark_default",
        name="features_build_{{ ds_nodash }}",
        trigger_rule="none_failed",
        max_active_tis_per_dag=1,  # one writer of the lake tables, even when a backfill runs dates in parallel
        doc_md="One Spark job: ingest landed files -> GE gate (quarantine) -> silver MERGE -> feature snapshot "
               "-> online store if newest.",
    )

    @task(outlets=[FEATURES])
    def publish_features(data_interval_start=None, data_interval_end=None, outlet_events=None) -> str:
        """Emit `features` only if this run's snapshot is the newest one in the table."""
        from airflow.sdk.exceptions import AirflowSkipException

        from ml_platform.features.publish import newest_snapshot_check

        _, end = run_interval(data_interval_start, data_interval_end, _settings.snapshot_cadence)
        snapshot = end - timedelta(days=1)
        ok, newest = newest_snapshot_check(snapshot)
        if not ok:
            raise AirflowSkipException(f"snapshot {snapshot} is not the newest ({newest}): nothing to publish")
        outlet_events[FEATURES].extra = {"snapshot_date": snapshot.isoformat()}
        return snapshot.isoformat()

    link_results(data_plane, ResultLink("Gate result", gate_result()), ResultLink("GE data docs", data_docs()))
    find_landed_files() >> data_plane >> publish_features()


features_build()
