"""A deferrable sensor for retrain decisions: it holds no worker slot while waiting.

`RetrainDecisionSensor` checks once in the worker; with nothing pending it defers to
`RetrainDecisionTrigger`, which polls the Delta tables from the triggerer (in a thread, every
`poke_interval` seconds) and fires with the oldest pending decision.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from airflow.sdk.bases.sensor import BaseSensorOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent


class RetrainDecisionTrigger(BaseTrigger):
    def __init__(self, decisions_path: str, handled_path: str, poke_interval: float = 60.0) -> None:
        super().__init__()
        self.decisions_path, self.handled_path, self.poke_interval = decisions_path, handled_path, poke_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "retrain_sensor.RetrainDecisionTrigger",
            {
                "decisions_path": self.decisions_path,
                "handled_path": self.handled_path,
                "poke_interval": self.poke_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from ml_platform.monitoring.handoff import pending_decisions

        while True:
            pending = await asyncio.to_thread(pending_decisions, self.decisions_path, self.handled_path)
            if pending:
                yield TriggerEvent(pending[0])
                return
            await asyncio.sleep(self.poke_interval)


class RetrainDecisionSensor(BaseSensorOperator):
    def __init__(self, *, poke_interval: float = 60.0, **kwargs: Any) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)

    def _paths(self) -> tuple[str, str]:
        from ml_platform.lake.paths import table_path
        from ml_platform.monitoring.handoff import HANDLED_TABLE

        return table_path("monitoring.retrain_decisions"), table_path(HANDLED_TABLE)

    def execute(self, context: Any) -> dict[str, Any]:
        from ml_platform.monitoring.handoff import pending_decisions

        pending = pending_decisions(*self._paths())
        if pending:
            return pending[0]
        self.defer(
            trigger=RetrainDecisionTrigger(*self._paths(), poke_interval=self.poke_interval),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        return event
