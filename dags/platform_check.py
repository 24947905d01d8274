"""Self-check of the two Python environments: a task in the drift environment (alibi-detect).

Manual only (`schedule=None`). `drift_env_versions` runs through `@task.external_python` in
the drift environment built by set-up (numpy<2, pandas<3, alibi-detect 0.13), with imports
inside the function and JSON-able values out, exactly as the monitoring tasks will. Trigger it
after set-up to see that the environment is usable from Airflow.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from ml_platform.config import get_settings
from platform_dags import task_defaults

DRIFT_PYTHON = str(get_settings().drift_python)


@dag(
    dag_id="platform_check",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    default_args=task_defaults(retries=1, retry_delay=timedelta(seconds=10)),
    tags=["platform", "monitoring"],
    doc_md=__doc__,
)
def platform_check() -> None:
    @task.external_python(python=DRIFT_PYTHON, expect_airflow=False)
    def drift_env_versions() -> dict:
        import alibi_detect
        import numpy
        import pandas

        return {"alibi_detect": alibi_detect.__version__, "numpy": numpy.__version__, "pandas": pandas.__version__}

    drift_env_versions()


platform_check()
