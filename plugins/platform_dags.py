"""What the DAG files share: task defaults, the triggering event's extra, platform errors as task failures,
and the lake's Azure credential from an Airflow connection."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from ml_platform.monitoring.alerts import task_failure_alert


def worker_hostname() -> str:
    """`core.hostname_callable` of the Celery workers that share one machine (scripts/airflow_up.sh):
    the host's name plus the worker's (`AIRFLOW_WORKER_NAME`), so that `ti.hostname` tells
    which worker ran a task as it would with one host per worker. Elsewhere: the host's name."""
    import os
    import socket

    host = socket.getfqdn()
    name = os.environ.get("AIRFLOW_WORKER_NAME", "")
    return f"{host}-{name}" if name else host


def task_defaults(retries: int = 1, retry_delay: timedelta = timedelta(minutes=1), **overrides: Any) -> dict[str, Any]:
    """`default_args` of every platform DAG: retries after `retry_delay` (`ML_PLATFORM_TASK_RETRY_DELAY_SECONDS`
    sets one for every DAG), a bound on each try (`ML_PLATFORM_TASK_TIMEOUT_MINUTES`), the failure alert,
    the lake's credential before each task."""
    from ml_platform.config import get_settings

    delay = get_settings().task_retry_delay_seconds
    return {
        "retries": retries,
        "retry_delay": retry_delay if delay is None else timedelta(seconds=delay),
        "execution_timeout": timedelta(minutes=get_settings().task_timeout_minutes),
        "on_failure_callback": task_failure_alert,
        "pre_execute": lake_credentials,
        **overrides,
    }


def event_extra(triggering_asset_events: Mapping[Any, Any] | None, key: str, default: Any = None) -> Any:
    """`key` from the extra of the newest triggering asset event that carries it (else `default`)."""
    value = default
    for events in (triggering_asset_events or {}).values():
        for ev in events:
            value = (ev.extra or {}).get(key, value)
    return value


@contextmanager
def fail_on_platform_error(param: str | None = None) -> Iterator[None]:
    """A platform error (bad param, too little data) fails the task at once, without retries and
    without a traceback, its message naming `param` when the error is about one. A service that
    does not answer (`Unreachable`: MLflow, a Spark master) is not such an error: the try fails
    and retries."""
    from ml_platform.errors import MlPlatformError
    from ml_platform.lake.endpoints import Unreachable

    try:
        yield
    except Unreachable:
        raise
    except MlPlatformError as e:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"param {param}: {e}" if param else str(e)) from None


def lake_credentials(context: Any = None) -> None:
    """`pre_execute` of every platform task: with `ML_PLATFORM_AZURE_CONN_ID` set, the Azure
    Storage credentials of this task process (and of the Spark job it starts) are the ones of that
    Airflow connection (type `wasb` or `adls`), replacing any `ML_PLATFORM_AZURE_*` secret of the
    environment. A missing or unusable connection fails the task at once, naming the connection
    (never a secret)."""
    import os

    from ml_platform.config import get_settings

    conn_id = get_settings().azure_conn_id
    if not conn_id:
        return
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

    from ml_platform.errors import MlPlatformError
    from ml_platform.lake.storage import connection_env

    try:
        conn = BaseHook.get_connection(conn_id)
        env = connection_env(conn.conn_type or "", conn.login, conn.password, conn.extra_dejson or {})
    except AirflowNotFoundException:
        raise AirflowFailException(f"ML_PLATFORM_AZURE_CONN_ID={conn_id}: no such Airflow connection") from None
    except MlPlatformError as e:
        raise AirflowFailException(f"Airflow connection {conn_id}: {e}") from None
    for name, value in env.items():
        if value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)
    get_settings.cache_clear()
