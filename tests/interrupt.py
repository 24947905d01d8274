"""SIGTERM ends a pytest session the way Ctrl-C does (a pytest plugin; tests/conftest.py loads it).

By default a SIGTERM (scripts/test.sh's clean-up after Ctrl-C, a CI system cancelling a job) kills
pytest at once: no fixture is torn down, so what the fixtures started in sessions of their own (an
Airflow stack, the MLflow server, Azurite, a BentoML service) keeps running. Raised as
KeyboardInterrupt, it makes pytest stop the run and tear every fixture down; a second SIGTERM while
that happens is ignored, so the tear-down finishes.
"""

from __future__ import annotations

import signal
from types import FrameType

import pytest


def _interrupt(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}: stopping the tests, tearing the fixtures down")


def pytest_configure(config: pytest.Config) -> None:
    signal.signal(signal.SIGTERM, _interrupt)
