"""The streaming tier's broker: a real Kafka broker (scripts/kafka.sh) on a free port of 127.0.0.1,
logging in the Event Hubs way, for the whole session; each test gets topics and a lake of its own."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class Broker:
    """The session's broker: its address, and a stop/start as `scripts/kafka.sh` does it."""

    def __init__(self, home: Path) -> None:
        from ml_platform.serving.bento import free_port

        self.bootstrap = f"127.0.0.1:{free_port()}"
        self.env = {**os.environ, "ML_PLATFORM_HOME": str(home), "ML_PLATFORM_EVENT_HUBS_BOOTSTRAP": self.bootstrap}

    def kafka_sh(self, command: str) -> None:
        run = subprocess.run(
            ["bash", "scripts/kafka.sh", command], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, run.stderr[-3000:]


@pytest.fixture(scope="session")
def broker(platform_home: Path) -> Broker:
    b = Broker(platform_home / "broker")
    b.kafka_sh("start")
    yield b
    b.kafka_sh("stop")


@pytest.fixture()
def stream_settings(broker: Broker, tmp_path: Path):
    """Settings of a lake of the test's own and topics of its own on the session's broker (created)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    from ml_platform.config import Settings
    from ml_platform.streaming.connection import event_stream

    tag = uuid.uuid4().hex[:8]
    s = Settings(
        home=tmp_path / "home",
        event_hubs_bootstrap=broker.bootstrap,
        event_hubs_topic=f"events-{tag}",
        event_hubs_scores_topic=f"scores-{tag}",
        stream_trigger_seconds=0.5,
    )
    stream = event_stream(s)
    admin = AdminClient(stream.client_config())  # alive until the futures resolve
    futures = admin.create_topics([NewTopic(stream.topic, 2, 1), NewTopic(stream.scores_topic, 1, 1)])
    for f in futures.values():
        f.result(30)
    return s
