"""Streaming: keeps the streaming job running and says when it falls behind.

Every 5 minutes `supervise` checks the job (`ml-platform stream run`: events from Event Hubs' Kafka
endpoint or a Kafka broker into bronze/silver, the online streaming features and real-time scores)
and starts it when it is not running: the first start reads the topic from its earliest offset,
every later one resumes exactly after the last committed micro-batch (its checkpoint under the
lake). The task fails, and alerts, when the job is more than `max_lag` events behind and finished
no batch for two minutes. Backfills stay batch (`features_build`). Replaying from a time is a
command: `ml-platform stream run --replay-from 2025-03-01T00:00:00Z`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from platform_dags import task_defaults


@dag(
    dag_id="streaming",
    schedule=timedelta(minutes=5),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(retries=1, retry_delay=timedelta(seconds=30)),  # safe: starts only a stopped job
    tags=["streaming", "event-hubs", "online"],
    doc_md=__doc__,
    params={
        "max_lag": Param(
            10_000,
            type="integer",
            minimum=0,
            title="Alert above this lag",
            description="Events the job may be behind the topic (all partitions) before the run fails and alerts.",
        ),
    },
)
def streaming() -> None:
    @task
    def supervise(params=None) -> dict:
        """Start the job when it is not running; its status; fail (alert) when it falls behind."""
        from airflow.sdk.exceptions import AirflowFailException

        from ml_platform.errors import MlPlatformError
        from ml_platform.streaming.supervise import supervise as check

        try:
            result = check(max_lag=int(params["max_lag"]))
        except MlPlatformError as e:  # the broker refuses the login, the topic is missing
            raise AirflowFailException(str(e)) from None
        if result.alert:
            raise AirflowFailException(result.alert)
        return result.to_json()

    supervise()


streaming()
