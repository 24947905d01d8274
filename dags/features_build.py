"""Data plane: landed transaction files -> bronze -> Great Expectations gate -> silver -> feature snapshot.

Runs `@daily` (`@weekly` when `ML_PLATFORM_SNAPSHOT_CADENCE=weekly`, as in the demo) with catch-up,
one run at a time. Each run owns its data interval: it ingests the files landed under
`<landing>/transactions/<day>/` for the days of the interval (a day without a file is a
clear skip of `find_landed_files`, not a failure). When the landing zone is a Blob container
(`ML_PLATFORM_LANDING_URI=abfss://...`), a deferrable `WasbPrefixSensor` first waits, in the
triggerer, up to `ML_PLATFORM_LANDING_WAIT_SECONDS` for the interval's last day, and the Azure
provider's hook lists the container (connection `ML_PLATFORM_AZURE_CONN_ID`). It gates them
(failing rows go to `quarantine.transactions`; a failed gate fails the run and leaves silver untouched), merges
silver, replaces the feature snapshot of the interval's last day, registers the table's spec in
the feature registry and, when this snapshot is the newest, publishes it to the online store
(SQLite by default, Redis with `ML_PLATFORM_ONLINE_STORE=redis`). The work is one job
(`spark_jobs/data_plane.py`) on the engine `ML_PLATFORM_ENGINE_DATA_PLANE` picks, the choice and
its reason in the task log: on one machine the embedded engine (DuckDB, GE on pandas, delta-rs)
runs it with plain Python, no spark-submit and no JVM; with a Spark cluster it is one spark-submit
against the `spark_default` connection (the snapshot inside it takes `ML_PLATFORM_ENGINE_FEATURES`'s
choice). `publish_features` emits the `features`
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

from ml_platform.assets import FEATURES
from ml_platform.config import get_settings
from ml_platform.locations import is_remote, parse
from ml_platform.pipelines.data_plane import run_interval
from platform_dags import task_defaults
from platform_links import ResultLink, data_docs, gate_result, link_results
from platform_operators import LakeSparkSubmitOperator

_settings = get_settings()  # environment variables only, no I/O
LANDING = parse(_settings.landing_uri) if is_remote(_settings.landing_uri) else None  # a Blob container
WASB_CONN_ID = _settings.azure_conn_id or "wasb_default"
SPARK_JOB = str(Path(__file__).resolve().parents[1] / "spark_jobs" / "data_plane.py")


@dag(
    dag_id="features_build",
    schedule="@weekly" if _settings.snapshot_cadence == "weekly" else "@daily",
    start_date=pendulum.instance(_settings.dag_start_date_utc),
    end_date=pendulum.instance(_settings.dag_end_date_utc) if _settings.dag_end_date else None,
    catchup=True,
    max_active_runs=1,
    default_args=task_defaults(retries=2, retry_delay=timedelta(seconds=30)),
    tags=["features", "data-plane", "spark"],
    doc_md=__doc__,
    params={
        "steps": Param(
            "ingest,validate,features",
            type="string",
            enum=["ingest,validate,features", "validate,features", "features"],
            description="Which data-plane steps to run (e.g. only recompute the feature snapshot).",
        ),
        "quarantine_max_share": Param(
            _settings.quarantine_max_share,
            type="number",
            minimum=0,
            maximum=1,
            description="Fail the gate above this share of quarantined rows.",
        ),
    },
    user_defined_macros={"run_interval": lambda start, end: run_interval(start, end, _settings.snapshot_cadence)},
)
def features_build() -> None:
    @task(trigger_rule="none_failed")  # also after the landing sensor gave up waiting (skipped)
    def find_landed_files(data_interval_start=None, data_interval_end=None) -> list[str]:
        """List the landing folders of the interval; skip (not fail) when nothing landed. A Blob
        landing zone is listed with the Azure provider's hook (connection ML_PLATFORM_AZURE_CONN_ID)."""
        from airflow.sdk.exceptions import AirflowSkipException

        from ml_platform.pipelines.data_plane import landed_days

        s = get_settings()
        start, end = run_interval(data_interval_start, data_interval_end, s.snapshot_cadence)
        names = None
        if LANDING is not None:
            from airflow.providers.microsoft.azure.hooks.wasb import WasbHook

            prefix = f"{LANDING.path}/transactions/".lstrip("/")
            names = [
                n[len(prefix) :]
                for n in WasbHook(wasb_conn_id=WASB_CONN_ID).get_blobs_list_recursive(LANDING.container, prefix=prefix)
            ]
        days = landed_days("transactions", start, end, names=names)
        if not days:
            raise AirflowSkipException(
                f"no transaction files landed for [{start}, {end}) under {s.landing_uri}/transactions"
            )
        return [str(folder) for _, folder in days]

    data_plane = LakeSparkSubmitOperator(
        task_id="ingest_validate_features",
        application=SPARK_JOB,
        application_args=[
            "--start",
            "{{ run_interval(data_interval_start, data_interval_end)[0] }}",
            "--end",
            "{{ run_interval(data_interval_start, data_interval_end)[1] }}",
            "--steps",
            "{{ params.steps }}",
        ],
        env_vars={"ML_PLATFORM_QUARANTINE_MAX_SHARE": "{{ params.quarantine_max_share }}"},
        engine="ml_platform.pipelines.data_plane:data_plane_engine",  # embedded: plain Python, no JVM
        engine_kwargs={"steps": "{{ params.steps }}"},
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
    landed = find_landed_files()
    if LANDING is not None:
        from airflow.providers.microsoft.azure.sensors.wasb import WasbPrefixSensor

        # a Blob landing zone: wait (deferred, in the triggerer) until the interval's last day landed
        (
            WasbPrefixSensor(
                task_id="wait_for_landing",
                container_name=LANDING.container,
                prefix=f"{LANDING.path}/transactions/".lstrip("/") + "{{ (run_interval(data_interval_start, "
                "data_interval_end)[1] - macros.timedelta(days=1)).isoformat() }}/",
                wasb_conn_id=WASB_CONN_ID,
                deferrable=True,
                poke_interval=30,
                timeout=_settings.landing_wait_seconds,
                soft_fail=True,  # nothing landed in time: find_landed_files decides (skip), errors show there
                doc_md="Deferrable WasbPrefixSensor: the last day of the interval in the Blob landing zone.",
            )
            >> landed
        )
    landed >> data_plane >> publish_features()


features_build()
