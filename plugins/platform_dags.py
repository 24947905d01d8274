"""Helpers the DAG files share: the triggering event's extra, and platform errors as task failures."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any


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
    without a traceback, its message naming `param` when the error is about one."""
    from ml_platform.errors import MlPlatformError

    try:
        yield
    except MlPlatformError as e:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"param {param}: {e}" if param else str(e)) from None
