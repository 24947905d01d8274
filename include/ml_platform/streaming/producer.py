"""Sending transaction events: the demo's and the benchmark's producer, and the shape a team's own
producer follows (one JSON object per message, keyed by customer so a customer's events stay in order)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from ml_platform.config import Settings, get_settings
from ml_platform.contracts import CHANNELS
from ml_platform.errors import MlPlatformError
from ml_platform.lake.paths import table_path
from ml_platform.streaming.connection import event_stream
from ml_platform.streaming.events import encode_event


def known_customers(settings: Settings | None = None, limit: int = 500) -> list[str]:
    """Up to `limit` customer ids of silver.customers (sorted), read from the lake without Spark."""
    from ml_platform.lake.reader import read_pandas

    path = table_path("silver.customers", settings or get_settings())
    try:
        ids = read_pandas(path, columns=["customer_id"])["customer_id"].dropna()
    except Exception:  # no table yet
        return []
    return sorted(ids.unique().tolist())[:limit]


def generate_events(n: int, seed: int = 0, customers: Sequence[str] | None = None) -> list[bytes]:
    """`n` valid events of known customers (else `S0000`...), timestamped now, ids unique per call."""
    import random

    rng = random.Random(seed)
    ids = list(customers or known_customers() or [f"S{i:04d}" for i in range(100)])
    now = datetime.now(timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%S%f")
    return [
        encode_event(
            {
                "customer_id": rng.choice(ids),
                "transaction_id": f"stream-{stamp}-{seed}-{i}",
                "transaction_ts": now,
                "amount": round(rng.uniform(1, 200), 2),
                "quantity": rng.randint(1, 5),
                "product_category": rng.choice(["food", "home", "toys", "sports"]),
                "channel": rng.choice(list(CHANNELS)),
            }
        )
        for i in range(n)
    ]


def _key(event: bytes) -> bytes | None:
    try:
        key = json.loads(event).get("customer_id")
    except (ValueError, AttributeError):
        return None
    return str(key).encode() if key is not None else None


def send_events(
    events: Sequence[bytes],
    settings: Settings | None = None,
    *,
    rate: float = 0.0,
    progress: Callable[[str], Any] | None = None,
) -> int:
    """Send `events` to the events topic (keyed by customer), at most `rate` per second when given;
    the number the broker acknowledged. `MlPlatformError` when some were not."""
    from confluent_kafka import KafkaException, Producer

    stream = event_stream(settings)
    failed: list[str] = []
    producer = Producer(
        {**stream.client_config(), "enable.idempotence": True, "linger.ms": 5, "message.max.bytes": 1_000_000}
    )
    t0 = time.monotonic()
    for i, event in enumerate(events):
        if rate > 0:
            wait = t0 + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        while True:
            try:
                producer.produce(
                    stream.topic, value=event, key=_key(event), on_delivery=lambda e, m: e and failed.append(str(e))
                )
                break
            except BufferError:  # the local queue is full: let deliveries drain
                producer.poll(0.1)
            except KafkaException as e:  # e.g. larger than the broker takes: nothing of it was sent
                producer.flush(60)
                raise MlPlatformError(
                    f"event {i + 1} of {len(events)} ({len(event):,} bytes) was refused before sending: {e.args[0].str()}"
                    f"; the {i} before it were handed to the broker"
                ) from None
        producer.poll(0)
        if progress and (i + 1) % 10_000 == 0:
            progress(f"sent {i + 1:,} of {len(events):,} events")
    left = producer.flush(60)
    if left or failed:
        raise MlPlatformError(
            f"{left + len(failed)} of {len(events)} events were not acknowledged by {stream.bootstrap}: {failed[:1]}"
        )
    return len(events)
