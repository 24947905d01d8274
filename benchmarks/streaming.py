"""Event -> online feature latency of the streaming job at rising event rates, beside a bare consumer.

    .venv/bin/python benchmarks/streaming.py                       # rates 250,1000,2000 ev/s, 20 s each
    .venv/bin/python benchmarks/streaming.py --rates 100 --seconds 5 --smoke

One Kafka broker with the Event Hubs login (scripts/kafka.sh) and one Redis (the online store of
both) on 127.0.0.1. At each rate a producer sends background events of 1,000 customers plus, every
0.2 s, a probe event of a customer of its own timestamped at sending; a poller reads the online
store every 20 ms and takes a probe's latency when its value is there:

- platform: the streaming job (`ml-platform stream run`, Spark Structured Streaming, micro-batch
  trigger ML_PLATFORM_STREAM_TRIGGER_SECONDS, default 1 s; here 0.5 s) writing
  `features.customer_stream` to Redis after validating, with the lake writes and scoring after;
- floor: one confluent-kafka consumer process that parses each event and writes the customer's
  newest time and running totals to a Redis hash: no validation, no lake, no Spark.

Prints p50/p99 latency per rate for both, and the rate where the platform's p99 passes 5 s.
Scores (event -> score) need a champion model and are left out here (stated in the output).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _floor(config: dict, topic: str, redis_url: str, stop) -> None:
    """The bare consumer: parse, then one Redis hash per customer."""
    import redis
    from confluent_kafka import Consumer

    r = redis.Redis.from_url(redis_url)
    c = Consumer({**config, "group.id": "floor", "auto.offset.reset": "earliest", "enable.auto.commit": True})
    c.subscribe([topic])
    while not stop.is_set():
        for m in c.consume(500, 0.05):
            if m.error():
                continue
            e = json.loads(m.value())
            p = r.pipeline(transaction=False)
            p.hset(f"floor:{e['customer_id']}", mapping={"last": e["transaction_ts"]})
            p.hincrbyfloat(f"floor:{e['customer_id']}", "spend", float(e["amount"]))
            p.hincrby(f"floor:{e['customer_id']}", "count", 1)
            p.execute()
    c.close()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("inf")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def _drive(producer, topic: str, rate: float, seconds: float, seen: dict, pending: list) -> list[float]:
    """Send at `rate` for `seconds` through one producer, a probe first in every 0.2 s slice (its key
    appended to `pending` for the poller); the probes' latencies (inf: not seen within 30 s)."""
    from ml_platform.streaming.events import encode_event

    sent: dict[str, float] = {}
    tag, n = f"{int(rate)}-{time.time_ns()}", int(rate * seconds)
    step = max(1, int(rate * 0.2))
    t0 = time.monotonic()
    for k in range(0, n, step):
        now = datetime.now(timezone.utc)
        probe = f"P{tag}-{k}"
        sent[probe] = time.monotonic()
        pending.append(probe)
        producer.produce(topic, encode_event({"customer_id": probe, "transaction_id": probe, "transaction_ts": now,
                                              "amount": 1.0}), key=probe.encode())  # fmt: skip
        for j in range(k + 1, min(n, k + step)):
            cust = f"B{j % 1000:04d}"
            event = {"customer_id": cust, "transaction_id": f"b{tag}-{j}", "transaction_ts": now, "amount": 2.0}
            producer.produce(topic, encode_event(event), key=cust.encode())
        producer.flush(10)
        wait = t0 + (k + step) / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(p in seen for p in sent):
        time.sleep(0.1)
    return [seen[p] - t if p in seen else float("inf") for p, t in sent.items()]


def _poll(read, keys_of, seen, stop) -> None:
    while not stop.is_set():
        for key in read(keys_of()):
            seen.setdefault(key, time.monotonic())
        time.sleep(0.02)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", default="250,1000,2000", help="events per second, comma-separated")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds at each rate")
    p.add_argument("--smoke", action="store_true", help="one low rate, a few seconds")
    a = p.parse_args()
    rates = [100.0] if a.smoke else [float(r) for r in a.rates.split(",")]
    seconds = 4.0 if a.smoke else a.seconds

    from ml_platform.config import Settings
    from ml_platform.features.online import RedisOnlineStore
    from ml_platform.streaming.connection import event_stream
    from ml_platform.streaming.job import STREAM_FEATURES

    tmp = Path(tempfile.mkdtemp(prefix="stream-bench-"))
    bootstrap, redis_port = f"127.0.0.1:{_free_port()}", _free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = {**os.environ, "ML_PLATFORM_HOME": str(tmp / "home"), "ML_PLATFORM_EVENT_HUBS_BOOTSTRAP": bootstrap,
           "ML_PLATFORM_ONLINE_STORE": "redis", "ML_PLATFORM_REDIS_URL": redis_url,
           "ML_PLATFORM_STREAM_TRIGGER_SECONDS": "0.5"}  # fmt: skip
    redis_proc = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    procs: list[subprocess.Popen] = []
    stop = multiprocessing.Event()
    try:
        run = subprocess.run(["bash", "scripts/kafka.sh", "start"], cwd=ROOT, env=env, capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            return 1
        s = Settings(home=tmp / "home", event_hubs_bootstrap=bootstrap, online_store="redis", redis_url=redis_url)
        stream = event_stream(s)
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient(stream.client_config())
        for f in admin.create_topics([NewTopic("floor-events", 2, 1)]).values():
            f.result(30)
        print(f"broker {bootstrap}, Redis {redis_port}; starting the streaming job", file=sys.stderr, flush=True)
        log = (tmp / "job.log").open("w")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "ml_platform.cli", "stream", "run"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        )
        floor = multiprocessing.Process(target=_floor, args=(stream.client_config(), "floor-events", redis_url, stop))
        floor.start()
        store = RedisOnlineStore(redis_url)
        from confluent_kafka import Producer

        producer = Producer({**stream.client_config(), "linger.ms": 2, "enable.idempotence": True})
        import redis

        r = redis.Redis.from_url(redis_url)
        results = {}
        for name, topic in (("platform", stream.topic), ("floor", "floor-events")):
            seen: dict[str, float] = {}
            pending: list[str] = []
            if name == "platform":
                read = lambda keys: [row.key for row in store.get(STREAM_FEATURES, keys) if row.found]  # noqa: E731
            else:
                read = lambda keys: [k for k in keys if r.exists(f"floor:{k}")]  # noqa: E731
            keys_of = lambda: [k for k in list(pending) if k not in seen]  # noqa: E731
            halt = threading.Event()
            poller = threading.Thread(target=_poll, args=(read, keys_of, seen, halt), daemon=True)
            poller.start()
            # warm up: the first micro-batch (session start, first Delta commits) is not a latency
            warm = f"W-{name}"
            pending.append(warm)
            from ml_platform.streaming.events import encode_event

            producer.produce(
                topic,
                encode_event(
                    {
                        "customer_id": warm,
                        "transaction_id": warm,
                        "transaction_ts": datetime.now(timezone.utc),
                        "amount": 1.0,
                    }
                ),
            )
            producer.flush(10)  # fmt: skip
            deadline = time.monotonic() + 240
            while warm not in seen and time.monotonic() < deadline:
                time.sleep(0.2)
            for rate in rates:
                print(f"{name}: {rate:,.0f} events/s for {seconds:.0f} s", file=sys.stderr, flush=True)
                results[(name, rate)] = _drive(producer, topic, rate, seconds, seen, pending)
            halt.set()
        stop.set()
        floor.join(10)
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, 15)
                proc.wait(60)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        subprocess.run(["bash", "scripts/kafka.sh", "stop"], cwd=ROOT, env=env, capture_output=True)
        redis_proc.terminate()
    print()
    print(f"{'rate ev/s':>10} {'platform p50 s':>15} {'p99 s':>8} {'floor p50 s':>12} {'p99 s':>8}")
    for rate in rates:
        pl, fl = results[("platform", rate)], results[("floor", rate)]
        print(f"{rate:>10,.0f} {_percentile(pl, .5):>15.2f} {_percentile(pl, .99):>8.2f} "
              f"{_percentile(fl, .5):>12.2f} {_percentile(fl, .99):>8.2f}")  # fmt: skip
    print("micro-batch trigger 0.5 s; event -> score not measured here (needs a champion model)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
