"""The streaming job's health, for the supervisor (the `streaming` DAG) and `ml-platform stream status`:
when its last micro-batch finished, and how far behind the topic it is (lag per partition)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from ml_platform.config import Settings, get_settings
from ml_platform.streaming.connection import check_login, event_stream
from ml_platform.streaming.job import status_path


@dataclass
class StreamStatus:
    last_batch_at: str | None
    seconds_since_last_batch: float | None
    last_batch: dict[str, Any] | None
    totals: dict[str, int]
    lag: dict[str, int]  # partition -> events in the topic the job has not processed

    @property
    def total_lag(self) -> int:
        return sum(self.lag.values())

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "total_lag": self.total_lag}


def stream_status(settings: Settings | None = None, now: datetime | None = None) -> StreamStatus:
    """The heartbeat the job writes after each batch, and each partition's end offset minus the
    next offset the job would read."""
    from confluent_kafka import Consumer, TopicPartition

    s = settings or get_settings()
    path = status_path(s)
    beat = json.loads(path.read_text()) if path.exists() else {}
    stream = event_stream(s)
    check_login(stream)  # a refused login or an absent topic: one line naming the endpoint
    consumer = Consumer({**stream.client_config(), "group.id": "ml-platform-status", "enable.auto.commit": False})
    try:
        meta = consumer.list_topics(stream.topic, timeout=15)
        done = beat.get("offsets") or {}
        lag = {}
        for p in sorted(meta.topics[stream.topic].partitions):
            _, high = consumer.get_watermark_offsets(TopicPartition(stream.topic, p), timeout=15)
            read = done.get(f"{stream.topic}/{p}")
            lag[str(p)] = max(0, int(high) - (int(read) + 1 if read is not None else 0))
    finally:
        consumer.close()
    at = beat.get("finished_at")
    since = None
    if at:
        since = round(((now or datetime.now(timezone.utc)) - datetime.fromisoformat(at)).total_seconds(), 1)
    return StreamStatus(at, since, beat.get("last_batch"), beat.get("totals") or {}, lag)


def job_pid_path(settings: Settings | None = None) -> Any:
    """The pid file of the streaming job the supervisor started (scripts/stop.sh stops it with the rest)."""
    return (settings or get_settings()).home / "run" / "stream.pid"


def _alive(pid_file: Any) -> bool:
    """Whether the pid file names a live streaming job (not a zombie, not another program that got its pid)."""
    import os
    from pathlib import Path

    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return False
    try:
        os.waitpid(pid, os.WNOHANG)  # our own child that exited: reap it
    except ChildProcessError:
        pass  # not our child
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    return not cmdline.exists() or b"stream" in cmdline.read_bytes()


@dataclass
class Supervision:
    started: bool  # the job was not running and was started from its checkpoint
    pid: int
    status: StreamStatus
    alert: str | None  # why someone should look: the lag grows and no batch finished lately

    def to_json(self) -> dict[str, Any]:
        return {"started": self.started, "pid": self.pid, "status": self.status.to_json(), "alert": self.alert}


def supervise(settings: Settings | None = None, *, max_lag: int = 10_000, stale_seconds: float = 120.0) -> Supervision:
    """Start the streaming job when it is not running (it resumes from its checkpoint; the first
    start reads the topic from the earliest offset), and say whether it needs a person: more than
    `max_lag` events behind with no batch for `stale_seconds`."""
    import os
    import subprocess
    import sys

    s = settings or get_settings()
    pid_file = job_pid_path(s)
    started = False
    if not _alive(pid_file):
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        log_file = s.home / "streaming" / "job.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("a") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ml_platform.cli", "stream", "run"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives the task that started it
                env={**os.environ, "ML_PLATFORM_HOME": str(s.home)},
            )
        pid_file.write_text(str(proc.pid))
        started = True
    status = stream_status(s)
    alert = None
    stale = status.seconds_since_last_batch is None or status.seconds_since_last_batch > stale_seconds
    if not started and status.total_lag > max_lag and stale:
        alert = (
            f"the streaming job is {status.total_lag:,} events behind (lag per partition {status.lag}) and finished "
            f"no batch for {status.seconds_since_last_batch} s: see {s.home / 'streaming' / 'job.log'}"
        )
    return Supervision(started, int(pid_file.read_text()), status, alert)
