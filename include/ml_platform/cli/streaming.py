"""`ml-platform stream run | send | status | topics | broker-config`: transaction events from Event
Hubs (its Kafka endpoint) or a Kafka broker into the lake, the online store and real-time scores."""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ml_platform.cli._common import SubParsers, positive, say
from ml_platform.config import get_settings
from ml_platform.errors import MlPlatformError


def _when(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = -1.0
    if not 0 <= rate < float("inf"):
        raise argparse.ArgumentTypeError(f"not a rate (events per second, 0 or more): {text!r}")
    return rate


def broker_config(a: argparse.Namespace) -> dict[str, Any]:
    """The local broker's server.properties from the settings (scripts/kafka.sh), readable by its owner only."""
    from ml_platform.streaming.connection import USER, event_stream

    stream = event_stream()
    host, _, port = stream.bootstrap.split(",")[0].rpartition(":")
    if host not in ("127.0.0.1", "localhost"):
        raise MlPlatformError(
            f"the local broker listens on 127.0.0.1; ML_PLATFORM_EVENT_HUBS_BOOTSTRAP is {stream.bootstrap}"
        )
    controller = int(port) + 1
    jaas = (
        f'org.apache.kafka.common.security.plain.PlainLoginModule required username="{USER}" '
        f'password="{stream.password}" user_{USER}="{stream.password}";'
    )
    lines = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller}",
        "listeners": f"SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"SASL_PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
        "log.dirs": str(Path(a.data).absolute()),
        "num.partitions": "2",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "168",
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("".join(f"{k}={v}\n" for k, v in lines.items()))
    return {"out": str(out), "bootstrap": stream.bootstrap}


def topics(a: argparse.Namespace) -> dict[str, Any]:
    """Create the events and scores topics when missing (Event Hubs: create the event hubs in the namespace)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    from ml_platform.streaming.connection import event_stream

    stream = event_stream()
    admin = AdminClient(stream.client_config())
    have = set(admin.list_topics(timeout=30).topics)
    wanted = [t for t in (stream.topic, stream.scores_topic) if t not in have]
    created = admin.create_topics([NewTopic(t, a.partitions, 1) for t in wanted]) if wanted else {}
    for topic, future in created.items():
        future.result(30)
        say(f"created topic {topic} ({a.partitions} partitions)")
    return {"topics": [stream.topic, stream.scores_topic], "created": wanted}


def run(a: argparse.Namespace) -> dict[str, Any]:
    from ml_platform.lake import get_spark
    from ml_platform.lake.storage import check_location
    from ml_platform.streaming.job import start_stream

    check_location(get_settings().lake_uri, what="lake (ML_PLATFORM_LAKE_URI)")
    say("starting Spark for the stream (a session of its own: foreachBatch runs in this driver)")
    session = get_spark("stream", classic=True)
    query = start_stream(session, once=a.once, replay_from=a.replay_from, say=say)
    try:
        query.awaitTermination()
    except KeyboardInterrupt:
        query.stop()
    if query.exception() is not None:
        raise MlPlatformError(f"the streaming query failed: {query.exception()}")
    from ml_platform.streaming.job import status_path

    path = status_path()
    return json.loads(path.read_text()) if path.exists() else {"batches": 0}


def send(a: argparse.Namespace) -> dict[str, Any]:
    from ml_platform.streaming.producer import generate_events, send_events

    if a.file:
        try:  # bytes as they are: a line that is not UTF-8 JSON is the job's to quarantine, with its reason
            data = Path(a.file).read_bytes()
        except OSError as e:
            raise MlPlatformError(f"--file {a.file}: {e.strerror}") from None
        events = [line for line in data.splitlines() if line.strip()]
    else:
        events = generate_events(a.generate, seed=a.seed)
    sent = send_events(events, rate=a.rate, progress=say)
    return {"sent": sent}


def status(a: argparse.Namespace) -> dict[str, Any]:
    from ml_platform.streaming.supervise import stream_status

    return stream_status().to_json()


def register(sub: SubParsers) -> None:
    st = sub.add_parser("stream", help="events from Event Hubs / Kafka: the streaming job").add_subparsers(
        dest="stream_command", required=True
    )
    r = st.add_parser("run", help="run the streaming job (earliest offset first, then from its checkpoint)")
    r.add_argument("--once", action="store_true", help="process what the topic holds now, then stop")
    r.add_argument("--replay-from", type=_when, help="set the checkpoint aside and read from this time (ISO 8601)")
    r.set_defaults(func=run)
    s = st.add_parser("send", help="send transaction events to the topic (a file of JSON lines, or generated)")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--file", help="one JSON event per line")
    g.add_argument("--generate", type=positive, help="N events of the lake's known customers, timestamped now")
    s.add_argument("--rate", type=_rate, default=0.0, help="events per second (default: as fast as possible)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=send)
    st.add_parser("status", help="the job's last batch and its lag per partition").set_defaults(func=status)
    t = st.add_parser("topics", help="create the events and scores topics when missing")
    t.add_argument("--partitions", type=positive, default=2)
    t.set_defaults(func=topics)
    b = st.add_parser("broker-config", help="write the local broker's configuration (scripts/kafka.sh)")
    b.add_argument("--data", required=True, help="the broker's data folder")
    b.add_argument("--out", required=True, help="the server.properties to write (mode 600)")
    b.set_defaults(func=broker_config)
