"""The streaming job on a real Kafka broker logging in the Event Hubs way, with real clients
(confluent-kafka producing, Spark's Kafka source consuming): the first start reads the first event,
poison never stops the stream and is quarantined with its reason, a restart resumes where it
stopped, a SIGKILLed job loses and duplicates nothing, the online streaming features equal the
batch computation over the same events, and a wrong credential fails fast naming the broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ml_platform.lake.paths import table_path
from ml_platform.streaming.events import encode_event

pytestmark = pytest.mark.streaming
ROOT = Path(__file__).resolve().parents[2]
KNOWN = [f"c{i}" for i in range(1, 6)]


def _customers(spark, s, ids=KNOWN) -> None:
    spark.createDataFrame([(c,) for c in ids], "customer_id string").write.format("delta").save(
        table_path("silver.customers", s)
    )


def _event(i: int, customer: str = "c1", ts: datetime | None = None, **over) -> dict:
    e = {
        "customer_id": customer,
        "transaction_id": f"t{i}",
        "transaction_ts": ts or datetime.now(timezone.utc) - timedelta(minutes=i),
        "amount": 10.0 + i,
        "quantity": 1 + i % 3,
        "product_category": "food",
        "channel": "online",
    }
    return {**e, **over}


def _send(s, messages: list[bytes]) -> None:
    from ml_platform.streaming.producer import send_events

    assert send_events(messages, s) == len(messages)


def _run_once(spark, s) -> None:
    from ml_platform.streaming.job import start_stream

    query = start_stream(spark, s, once=True, say=lambda m: None)
    query.awaitTermination(300)
    assert query.exception() is None, query.exception()


def _ids(spark, s, table: str) -> list[str]:
    path = table_path(table, s)
    return sorted(r[0] for r in spark.read.format("delta").load(path).select("transaction_id").collect())


def _online_equals_batch(spark, s) -> int:
    """The online streaming features of every streamed customer equal `stream_features` over silver."""
    from ml_platform.features.online import open_online_store
    from ml_platform.streaming.job import STREAM_FEATURES, stream_features

    silver = spark.read.format("delta").load(table_path("silver.transactions", s))
    batch = {r["customer_id"]: r.asDict() for r in stream_features(silver).collect()}
    streamed = sorted({r[0] for r in silver.where("load_id LIKE 'stream-%'").select("customer_id").collect()})
    online = open_online_store(s).get(STREAM_FEATURES, streamed)
    for row in online:
        assert row.found, row.key
        want = batch[row.key]
        assert row.feature_timestamp.replace(tzinfo=None) == want["last_event_ts"], row.key
        for name in STREAM_FEATURES.feature_names:
            assert row.values[name] == pytest.approx(want[name], abs=1e-9), (row.key, name)
    return len(online)


def test_a_wrong_credential_fails_fast_naming_the_broker_never_the_secret(stream_settings):
    from ml_platform.errors import MlPlatformError
    from ml_platform.streaming.connection import check_login, event_stream

    secret = "Endpoint=sb://127.0.0.1/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=d3Jvbmc="
    from pydantic import SecretStr

    wrong = stream_settings.model_copy(update={"event_hubs_connection_string": SecretStr(secret)})
    t0 = time.monotonic()
    with pytest.raises(MlPlatformError) as e:
        check_login(event_stream(wrong))
    message = str(e.value)
    assert stream_settings.event_hubs_bootstrap in message and "\n" not in message
    assert secret not in message and "d3Jvbmc=" not in message and "d3Jvbmc=" not in repr(event_stream(wrong))
    assert "Authentication failed" in message and time.monotonic() - t0 < 5  # not after the 15 s timeout


def test_a_message_larger_than_the_broker_takes_is_refused_by_name(stream_settings):
    from ml_platform.errors import MlPlatformError
    from ml_platform.streaming.producer import send_events

    small = encode_event(_event(1))
    with pytest.raises(MlPlatformError, match=r"event 2 of 3 \(2,000,000 bytes\) was refused before sending"):
        send_events([small, b"x" * 2_000_000, small], stream_settings)


def test_poison_is_quarantined_with_its_reason_and_the_stream_resumes_where_it_stopped(spark, stream_settings):
    s = stream_settings
    _customers(spark, s)
    now = datetime.now(timezone.utc)
    first = _event(0, "c2", now - timedelta(hours=30))
    valid = [first] + [_event(i, KNOWN[i % 5], now - timedelta(minutes=7 * i)) for i in range(1, 25)]
    late_but_in_order = _event(25, "c3", now - timedelta(days=3))  # out of order, within the watermark
    poison = {
        b"not json": "malformed_json",
        b"[1, 2]": "malformed_json",
        b'{"customer_id": "c1"': "malformed_json",
        encode_event({k: v for k, v in _event(101).items() if k != "transaction_id"}): "missing_transaction_id",
        encode_event(_event(102, customer=None)): "missing_customer_id",
        encode_event(_event(103, amount="abc")): "wrong_type_amount",
        encode_event(_event(104, amount={"v": 1})): "wrong_type_amount",
        encode_event(_event(105, quantity=2.5)): "wrong_type_quantity",
        encode_event(_event(106, transaction_ts="yesterday")): "wrong_type_transaction_ts",
        encode_event(_event(107, product_category="x" * 9000)): "oversized",
        encode_event(_event(108, customer="stranger")): "unknown_customer",
        encode_event(_event(109, ts=now + timedelta(days=1))): "far_future",
        encode_event(_event(110, ts=now - timedelta(days=30))): "too_late",
        encode_event(_event(111, amount=-5.0)): "amount_in_range",
        encode_event(_event(112, channel="fax")): "channel_allowed",
        encode_event(_event(113, amount=1.0)): "transaction_id_conflict",
        encode_event(_event(113, amount=2.0)): "transaction_id_conflict",
    }
    messages = [encode_event(first)] + list(poison)[:8] + [encode_event(e) for e in valid[1:]]
    messages += list(poison)[8:] + [encode_event(valid[5]), encode_event(late_but_in_order)]  # a redelivery
    _send(s, messages)
    _run_once(spark, s)

    expected = sorted(e["transaction_id"] for e in [*valid, late_but_in_order])
    assert _ids(spark, s, "silver.transactions") == expected  # the first event too, the redelivery once
    assert _ids(spark, s, "bronze.transactions") == expected
    quarantined = {
        r["message"][:60]: r["reasons"]
        for r in spark.read.format("delta").load(table_path("quarantine.events", s)).collect()
    }
    assert len(quarantined) == len(poison) - 1  # the two conflicting messages share a prefix
    for message, reason in poison.items():
        got = quarantined[message.decode()[:60]]
        assert reason in got.split(","), (message[:80], got)
    assert _online_equals_batch(spark, s) == 5

    # resumed where it stopped: a rerun reads nothing new, three new events are written once
    _run_once(spark, s)
    assert _ids(spark, s, "silver.transactions") == expected
    more = [_event(200 + i, "c4", now - timedelta(seconds=i)) for i in range(3)]
    _send(s, [encode_event(e) for e in more])
    _run_once(spark, s)
    assert _ids(spark, s, "bronze.transactions") == sorted(expected + [e["transaction_id"] for e in more])
    assert _online_equals_batch(spark, s) == 5
    status = json.loads((s.home / "streaming" / "status.json").read_text())
    # valid messages: 29 events and the redelivery (written once)
    assert status["totals"] == {"events": len(messages) + 3, "valid": 30, "quarantined": len(poison), "scored": 0}


def _job(s, *args: str) -> subprocess.Popen:
    env = {
        **os.environ,
        **({"ML_PLATFORM_MLFLOW_TRACKING_URI": s.mlflow_tracking_uri} if s.mlflow_tracking_uri else {}),
        "ML_PLATFORM_HOME": str(s.home),
        "ML_PLATFORM_EVENT_HUBS_BOOTSTRAP": s.event_hubs_bootstrap,
        "ML_PLATFORM_EVENT_HUBS_TOPIC": s.event_hubs_topic,
        "ML_PLATFORM_EVENT_HUBS_SCORES_TOPIC": s.event_hubs_scores_topic,
        "ML_PLATFORM_STREAM_TRIGGER_SECONDS": "0.5",
    }
    log = (s.home / f"job-{len(list(s.home.glob('job-*.log')))}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "ml_platform.cli", "stream", "run", *args],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_a_job_killed_mid_stream_and_restarted_loses_and_duplicates_nothing(spark, stream_settings):
    s = stream_settings
    s.home.mkdir(parents=True, exist_ok=True)
    _customers(spark, s)
    now = datetime.now(timezone.utc)
    events = [_event(i, KNOWN[i % 5], now - timedelta(seconds=i)) for i in range(3000)]
    sender = threading.Thread(target=_send, args=(s, [encode_event(e) for e in events[:2000]]), daemon=True)
    job = _job(s)
    status = s.home / "streaming" / "status.json"
    try:
        deadline = time.monotonic() + 180
        while not status.exists():  # the job's first batch
            assert job.poll() is None and time.monotonic() < deadline, "the job wrote no batch"
            time.sleep(0.2)
        sender.start()
        time.sleep(1.5)  # batches in flight while the events arrive
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(30)
    sender.join(120)
    _send(s, [encode_event(e) for e in events[2000:]])
    again = _job(s, "--once")
    assert again.wait(300) == 0, (s.home / "job-1.log").read_text()[-3000:]

    bronze = _ids(spark, s, "bronze.transactions")
    assert len(bronze) == len(set(bronze)) == 3000  # nothing duplicated
    assert _ids(spark, s, "silver.transactions") == sorted(e["transaction_id"] for e in events)  # nothing lost
    assert _online_equals_batch(spark, s) == 5


def test_a_broker_restarted_under_load_loses_and_duplicates_nothing(spark, broker, stream_settings):
    """The broker stops (a controlled shutdown) and starts again while events are sent and the job
    runs: the producer's retries and the job's Kafka source ride it out, every event lands once."""
    s = stream_settings
    s.home.mkdir(parents=True, exist_ok=True)
    _customers(spark, s)
    now = datetime.now(timezone.utc)
    events = [_event(i, KNOWN[i % 5], now - timedelta(seconds=i)) for i in range(1500)]
    job = _job(s)
    status = s.home / "streaming" / "status.json"
    try:
        _send(s, [encode_event(e) for e in events[:10]])
        deadline = time.monotonic() + 180
        while not status.exists():
            assert job.poll() is None and time.monotonic() < deadline, "the job wrote no batch"
            time.sleep(0.2)
        from ml_platform.streaming.producer import send_events

        sender = threading.Thread(
            target=send_events, args=([encode_event(e) for e in events[10:]], s), kwargs={"rate": 300.0}, daemon=True
        )
        sender.start()
        time.sleep(1.0)
        broker.kafka_sh("stop")
        broker.kafka_sh("start")
        sender.join(180)
        assert not sender.is_alive()
        deadline = time.monotonic() + 180
        while json.loads(status.read_text())["totals"]["valid"] < len(events):
            assert job.poll() is None, (s.home / "job-0.log").read_text()[-3000:]
            assert time.monotonic() < deadline, json.loads(status.read_text())["totals"]
            time.sleep(0.5)
    finally:
        os.killpg(job.pid, signal.SIGTERM)
        job.wait(60)
    bronze = _ids(spark, s, "bronze.transactions")
    assert len(bronze) == len(set(bronze)) == len(events)
    assert _ids(spark, s, "silver.transactions") == sorted(e["transaction_id"] for e in events)


def test_each_good_events_customer_is_scored_by_the_champion_within_seconds(
    spark, stream_settings, trained_model, tmp_path
):
    """The stream-scoring path: the session's trained model as `@champion` (in a copy of its
    registry), the workspace's feature snapshot published online; each good event's customer is
    scored with it into the scores topic and `gold.stream_scores`, the same probability the model
    gives on the customer's online features, within seconds of the event."""
    import shutil

    import mlflow
    from confluent_kafka import Consumer

    from ml_platform.features import FeatureStore
    from ml_platform.model.scoring import rescore
    from ml_platform.streaming.connection import event_stream

    ws = Path(trained_model["workspace"])
    lake = Path(stream_settings.lake_uri)
    for part in ("features", "_catalog", "silver/customers"):
        shutil.copytree(ws / "lake" / part, lake / part)
    import sqlite3

    source = sqlite3.connect(Path(trained_model["registry"].removeprefix("sqlite:///")))
    try:  # a consistent copy of the registry's rows; the artifacts stay where they are
        source.execute("VACUUM INTO ?", (str(tmp_path / "mlflow.db"),))
        models = source.execute("SELECT name FROM registered_models").fetchall()
    finally:
        source.close()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)  # not a registry another test set
    assert [m.name for m in client.search_registered_models()] == [m[0] for m in models] == ["churn_model"], models
    version = client.get_model_version_by_alias("churn_model", "challenger").version
    client.set_registered_model_alias("churn_model", "champion", version)
    s = stream_settings.model_copy(update={"mlflow_tracking_uri": uri})
    store = FeatureStore(settings=s)
    store.publish_online("features.customer_features")
    keys = store.latest_keys("features.customer_features", 4)
    now = datetime.now(timezone.utc)
    stream = event_stream(s)
    consumer = Consumer({**stream.client_config(), "group.id": "test-scores", "auto.offset.reset": "earliest"})
    consumer.subscribe([stream.scores_topic])
    job = _job(s)
    try:
        _send(s, [encode_event(_event(0, keys[0], now))])  # the first batch loads the champion
        got: dict[str, dict] = {}
        deadline = time.monotonic() + 240
        while "t0" not in got:
            assert job.poll() is None and time.monotonic() < deadline, (s.home / "job-0.log").read_text()[-3000:]
            for m in consumer.consume(10, 0.5):
                got[m.key().decode()] = json.loads(m.value())
        sent = time.monotonic()
        events = [_event(i, keys[i], now - timedelta(minutes=i)) for i in (1, 2, 3)]
        _send(s, [encode_event(e) for e in events])
        while not {"t1", "t2", "t3"} <= set(got):
            assert time.monotonic() - sent < 30, got
            for m in consumer.consume(10, 0.2):
                got[m.key().decode()] = json.loads(m.value())
        latency = time.monotonic() - sent
        status = s.home / "streaming" / "status.json"  # the batch's Delta append follows the topic's
        while json.loads(status.read_text())["totals"]["scored"] < 4:
            assert time.monotonic() - sent < 60
            time.sleep(0.2)
    finally:
        consumer.close()
        os.killpg(job.pid, signal.SIGTERM)
        job.wait(60)
    assert latency < 15, latency  # event -> score on the topic (benchmarks/streaming.py has the distribution)
    model = mlflow.pyfunc.load_model(client.get_model_version_download_uri("churn_model", version))
    online = {r.key: r.values for r in store.get_online_features("features.customer_features", keys[:4])}
    import pandas as pd

    want = rescore(model, pd.DataFrame([online[k] for k in keys[:4]]))
    for i in range(4):
        score = got[f"t{i}"]
        assert score["model_version"] == str(version) and score["customer_id"] == keys[i]
        assert score["churn_probability"] == pytest.approx(float(want[i]), abs=1e-9)
    table = spark.read.format("delta").load(table_path("gold.stream_scores", s))
    assert sorted(r["transaction_id"] for r in table.collect()) == ["t0", "t1", "t2", "t3"]  # once each


def test_the_supervisor_starts_the_job_restarts_it_when_it_died_and_alerts_on_lag(spark, stream_settings, monkeypatch):
    """What the `streaming` DAG's task does (`streaming.supervise.supervise`): a job that is not
    running is started (and resumes from its checkpoint after a kill), a running one is left alone,
    and a lag with no recent batch is an alert naming the lag."""
    from ml_platform.streaming.supervise import supervise

    s = stream_settings
    s.home.mkdir(parents=True, exist_ok=True)
    _customers(spark, s)
    for name, value in (
        ("EVENT_HUBS_BOOTSTRAP", s.event_hubs_bootstrap),
        ("EVENT_HUBS_TOPIC", s.event_hubs_topic),
        ("EVENT_HUBS_SCORES_TOPIC", s.event_hubs_scores_topic),
        ("STREAM_TRIGGER_SECONDS", "0.5"),
    ):
        monkeypatch.setenv(f"ML_PLATFORM_{name}", value)  # the job the supervisor starts reads its environment
    now = datetime.now(timezone.utc)
    events = [_event(i, KNOWN[i % 5], now - timedelta(seconds=i)) for i in range(200)]
    _send(s, [encode_event(e) for e in events[:100]])
    status = s.home / "streaming" / "status.json"
    first = supervise(s)
    try:
        assert first.started and first.alert is None
        deadline = time.monotonic() + 180
        while not status.exists() or json.loads(status.read_text())["totals"]["valid"] < 100:
            assert time.monotonic() < deadline, (s.home / "streaming" / "job.log").read_text()[-3000:]
            time.sleep(0.3)
        again = supervise(s)
        assert not again.started and again.pid == first.pid and again.status.total_lag == 0
        os.killpg(first.pid, signal.SIGKILL)  # the job dies
        time.sleep(0.5)
        _send(s, [encode_event(e) for e in events[100:]])
        stale = supervise(s, max_lag=0, stale_seconds=0)
        assert stale.started and stale.pid != first.pid  # restarted from its checkpoint
        deadline = time.monotonic() + 180
        while json.loads(status.read_text())["totals"]["valid"] < 200:
            assert time.monotonic() < deadline, (s.home / "streaming" / "job.log").read_text()[-3000:]
            time.sleep(0.3)
        os.killpg(stale.pid, signal.SIGKILL)
        time.sleep(0.5)
        _send(s, [encode_event(_event(999, "c1", now))])
        from ml_platform.streaming.supervise import job_pid_path

        job_pid_path(s).write_text(str(first.pid))  # a pid that is gone: the next check starts a job...
        behind = supervise(s, max_lag=0, stale_seconds=0)
        assert behind.started
        os.killpg(behind.pid, signal.SIGKILL)
        time.sleep(0.5)
        stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "stream", "run"])
        job_pid_path(s).write_text(str(stand_in.pid))  # ...while a live one is left alone and reported
        alert = supervise(s, max_lag=0, stale_seconds=0)
        stand_in.kill()
        stand_in.wait()
        assert not alert.started and alert.alert and "1 events behind" in alert.alert
    finally:
        for p in (first, locals().get("stale"), locals().get("behind")):
            if p is not None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    bronze = _ids(spark, s, "bronze.transactions")
    assert len(bronze) == len(set(bronze)) and set(bronze) >= {e["transaction_id"] for e in events}
