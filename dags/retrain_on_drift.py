"""Hand a retrain decision to the training DAG, exactly once.

Always listening: `@continuous` with one active run, so a new run starts as soon as the last one
ends. Its deferrable sensor (no worker slot while it waits: the triggerer polls every
`ML_PLATFORM_RETRAIN_POLL_SECONDS`, a minute by default)
waits up to 50 minutes for a retrain decision not yet handled (then the run ends as skipped and
the next one waits); `request` claims it (MERGE into `monitoring.retrain_handled` with this run's id) and
emits `training.retrain_requested` with {decision_id, reason}. A decision another run claimed
emits nothing; a retry of the claiming run still emits.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from ml_platform.assets import RETRAIN_REQUESTED
from ml_platform.config import get_settings
from platform_dags import task_defaults
from retrain_sensor import RetrainDecisionSensor


@dag(
    dag_id="retrain_on_drift",
    schedule="@continuous",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(retries=1, retry_delay=timedelta(seconds=30)),
    tags=["monitoring", "training"],
    doc_md=__doc__,
)
def retrain_on_drift() -> None:
    wait = RetrainDecisionSensor(
        task_id="wait_for_decision", poke_interval=get_settings().retrain_poll_seconds, timeout=50 * 60, soft_fail=True
    )

    @task(outlets=[RETRAIN_REQUESTED])
    def request(decision: dict, run_id=None, outlet_events=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from ml_platform.lake.paths import table_path
        from ml_platform.monitoring.handoff import HANDLED_TABLE, claim

        if not claim(decision["decision_id"], run_id, table_path(HANDLED_TABLE)):
            raise AirflowSkipException(f"decision {decision['decision_id']} was handled by another run")
        outlet_events[RETRAIN_REQUESTED].extra = {"decision_id": decision["decision_id"], "reason": decision["reason"]}
        return decision

    request(wait.output)


retrain_on_drift()
