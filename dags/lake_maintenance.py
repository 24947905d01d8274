"""Delta maintenance, weekly: OPTIMIZE (compact small files) and VACUUM every lake table.

The VACUUM retention per table never drops files still needed by a Delta version that a
training set's lineage pins, nor by `as_of_known_time` queries within
`ML_PLATFORM_AS_OF_HORIZON_DAYS` (see `ml_platform.pipelines.lake_maintenance`). One spark-submit
against the `spark_default` connection; it does not overlap with itself.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import Param, dag

from platform_dags import task_defaults
from platform_operators import LakeSparkSubmitOperator

SPARK_JOB = str(Path(__file__).resolve().parents[1] / "spark_jobs" / "lake_maintenance.py")


@dag(
    dag_id="lake_maintenance",
    schedule="@weekly",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(retries=1, retry_delay=timedelta(minutes=5)),
    tags=["lake", "maintenance", "spark"],
    doc_md=__doc__,
    params={
        "tables": Param(
            None,
            type=["null", "string"],
            pattern=r"^( *[A-Za-z_][\w]*\.[A-Za-z_][\w]* *,?)*$",
            title="Tables",
            description="Comma-separated tables (layer.name, e.g. silver.transactions); empty: the "
            "platform's tables and all feature tables.",
        )
    },
)
def lake_maintenance() -> None:
    LakeSparkSubmitOperator(
        task_id="optimize_and_vacuum",
        application=SPARK_JOB,
        application_args=["--tables", "{{ params.tables or '' }}"],
        conn_id="spark_default",
        name="lake_maintenance_{{ ds_nodash }}",
        doc_md="OPTIMIZE, then VACUUM with a retention that keeps pinned versions readable.",
    )


lake_maintenance()
