"""Batch scoring: each newly published feature snapshot -> `gold.churn_scores` with `@champion`.

Triggered by the `features.customer_features` asset; the snapshot to score comes from the
event's extra (`snapshot_date`), or from the `snapshot_date` param on a manual trigger (empty:
the newest snapshot). `resolve` pins the champion's version for the run (no champion yet: a
clear skip, not a failure); the Spark job scores with `mlflow.pyfunc.spark_udf` and replaces
that date's partition, so reruns and retries are idempotent.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import Param, dag, task

from ml_platform.assets import FEATURES
from platform_dags import event_extra, fail_on_platform_error, task_defaults
from platform_operators import LakeSparkSubmitOperator

SPARK_JOB = str(Path(__file__).resolve().parents[1] / "spark_jobs" / "batch_score.py")


@dag(
    dag_id="batch_scoring",
    schedule=FEATURES,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(retries=1, retry_delay=timedelta(minutes=1)),
    tags=["scoring", "spark", "gold"],
    doc_md=__doc__,
    params={
        "snapshot_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Snapshot date",
            description="The feature snapshot to score on a manual run; empty: the newest.",
        )
    },
)
def batch_scoring() -> None:
    @task
    def resolve(params=None, triggering_asset_events=None) -> dict:
        """The snapshot date (event extra, param, or newest) and the champion version to use."""
        from airflow.sdk.exceptions import AirflowSkipException

        from ml_platform.registry.evaluate import alias_version
        from ml_platform.serving.batch import resolve_snapshot

        from_event = event_extra(triggering_asset_events, "snapshot_date")
        with fail_on_platform_error(None if from_event else "snapshot_date"):
            snapshot = resolve_snapshot(from_event or params.get("snapshot_date") or None)
        version = alias_version("champion")
        if version is None:
            raise AirflowSkipException("no model has alias @champion yet: nothing to score (promote one first)")
        return {"snapshot_date": snapshot.isoformat(), "version": version}

    r = resolve()
    score = LakeSparkSubmitOperator(
        task_id="score_snapshot",
        application=SPARK_JOB,
        application_args=[
            "--date",
            "{{ ti.xcom_pull(task_ids='resolve')['snapshot_date'] }}",
            "--version",
            "{{ ti.xcom_pull(task_ids='resolve')['version'] }}",
        ],
        conn_id="spark_default",
        engine="ml_platform.serving.batch:scoring_engine",
        name="batch_score_{{ run_id | replace(':', '_') | replace('+', '_') }}",
        doc_md="One job: the snapshot's features -> the @champion version's pyfunc (a Spark UDF, or in plain Python "
        "on the embedded engine) -> gold.churn_scores partition.",
    )
    r >> score


batch_scoring()
