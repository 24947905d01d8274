"""Faults injected into a running service: `ml-platform serve` (2 workers) over a real Redis and a
real `mlflow server`, with the prediction log loaded into Delta and counted against the answers.

The tests run in file order on one stack: the load through a champion swap, a worker SIGKILLed
under load, Redis hung (SIGSTOP) and killed, the MLflow server stopped and started again."""

from __future__ import annotations

import contextlib
import itertools
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.helpers import record_outcome
from tests.serving_helpers import BIN, RedisServer, Server, serving_home, with_env

pytestmark = pytest.mark.faults

RATE, SECONDS = 100, 60  # the load: 100 requests/s for 60 s through a champion swap


class MlflowServer:
    def __init__(self, db: Path, log: Path) -> None:
        from ml_platform.serving.bento import free_port

        self.db, self.log, self.port = db, log, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
            + ["--backend-store-uri", f"sqlite:///{self.db}"],
            env=with_env({"MLFLOW_DISABLE_TELEMETRY": "true"}),
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.5)
        raise RuntimeError(f"mlflow server did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        from ml_platform.serving.bento import stop_process_group

        if self.proc is not None:
            stop_process_group(self.proc, wait=20)


@pytest.fixture(scope="module")
def stack(trained_model, tmp_path_factory):
    from ml_platform.config import Settings
    from ml_platform.registry.aliases import apply_decision, evaluate_and_decide
    from ml_platform.registry.evaluate import alias_version, client
    from ml_platform.registry.promotion import Policy

    tmp = tmp_path_factory.mktemp("faults-serving")
    with contextlib.ExitStack() as cleanup:  # whatever started is stopped, also when setting up fails
        redis = RedisServer(tmp / "redis")
        cleanup.callback(redis.stop)
        redis.start()
        home = tmp / "home"
        env = serving_home(trained_model, home, redis.url)
        mlflow = MlflowServer(home / "mlflow" / "mlflow.db", tmp / "mlflow.log")
        cleanup.callback(mlflow.stop)
        env |= {
            "ML_PLATFORM_MLFLOW_TRACKING_URI": mlflow.url,
            "ML_PLATFORM_SERVING_WORKERS": "2",
            "ML_PLATFORM_SERVING_POLL_SECONDS": "1",
            "ML_PLATFORM_SERVING_SHADOW": "false",
            "ML_PLATFORM_SERVING_CHALLENGER_SHARE": "0",
            "ML_PLATFORM_REDIS_TIMEOUT_SECONDS": "1",
        }
        # the champion and a second version of it, written to the database before the server reads
        # it (a server refuses a version whose source is another version's logged model)
        local = Settings(home=home, online_store="redis", redis_url=redis.url)
        decision = evaluate_and_decide(Policy(latency_p99_ms=1000.0), settings=local)
        assert decision.promote, decision.reason
        apply_decision(decision, settings=local)
        v1 = alias_version("champion", local)
        mv = client(local).get_model_version("churn_model", v1)
        v2 = str(client(local).create_model_version("churn_model", mv.source, run_id=mv.run_id).version)
        client(local).set_model_version_tag("churn_model", v2, "threshold", mv.tags.get("threshold", "0.5"))
        mlflow.start()
        s = Settings(home=home, online_store="redis", redis_url=redis.url, mlflow_tracking_uri=mlflow.url)
        server = Server(env, tmp / "serve.log")
        cleanup.callback(server.stop)
        ids = _ids(redis.url, 200)
        yield {"server": server, "redis": redis, "mlflow": mlflow, "settings": s, "ids": ids, "v1": v1, "v2": v2}


def _ids(redis_url: str, n: int) -> list[str]:
    import redis

    rc = redis.Redis.from_url(redis_url)
    return sorted(k.decode() for k in rc.hkeys(rc.get("mlp:online:features.customer_features:current").decode()))[:n]


class Load:
    """`rate` requests/s (one customer id each) from 8 client threads, each request at its slot."""

    def __init__(self, url: str, ids: list[str], rate: float) -> None:
        self.url, self.ids, self.rate = url, ids, rate
        self.results: list[tuple[float, int | str, str | None, str | None]] = []  # (t, status, request_id, version)
        self._stop, self._next, self._lock = threading.Event(), itertools.count(), threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(8)]
        self.latencies: list[float] = []  # seconds per request, answered or not

    def __enter__(self) -> Load:
        self.t0 = time.time()
        for t in self._threads:
            t.start()
        return self

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as c:
            while not self._stop.is_set():
                with self._lock:
                    i = next(self._next)
                delay = self.t0 + i / self.rate - time.time()
                if delay > 0 and self._stop.wait(delay):
                    return
                cid = self.ids[i % len(self.ids)]
                sent = time.perf_counter()
                try:
                    r = c.post("/predict", json={"customer_ids": [cid]})
                    if r.status_code == 200:
                        p = r.json()["predictions"][0]
                        self.results.append((time.time(), 200, r.json()["request_id"], p["model_version"]))
                    else:
                        self.results.append((time.time(), r.status_code, None, r.text[:200]))
                except httpx.HTTPError as exc:
                    self.results.append((time.time(), type(exc).__name__, None, None))
                self.latencies.append(time.perf_counter() - sent)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    @property
    def answered(self) -> list[str]:
        return [rid for _, status, rid, _ in self.results if status == 200]

    def failures(self) -> list[tuple]:
        return [r for r in self.results if r[1] != 200]

    def figures(self) -> dict[str, object]:
        import numpy as np

        lat = np.array(self.latencies or [0.0])
        return {
            "requests": len(self.results),
            "answered": len(self.answered),
            "failed": Counter(str(r[1]) for r in self.failures()),
            "latency_p50_ms": round(float(np.percentile(lat, 50)) * 1000, 1),
            "latency_p99_ms": round(float(np.percentile(lat, 99)) * 1000, 1),
            "latency_max_ms": round(float(lat.max()) * 1000, 1),
        }


def _logged(stack: dict) -> Counter:
    """request_id -> rows in monitoring.prediction_log, after loading every spool segment."""
    from ml_platform.lake.paths import table_path
    from ml_platform.lake.reader import read_pandas
    from ml_platform.serving.spool import load_spool

    s = stack["settings"]
    load_spool(s.home / "serving" / "spool", s)
    return Counter(read_pandas(table_path("monitoring.prediction_log", s), columns=["request_id"])["request_id"])


def _wait(cond, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if out := cond():
            return out
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_100_requests_a_second_for_60_s_through_a_champion_swap(stack):
    """0 errors, every answer logged exactly once, the new champion answering within the poll."""
    from ml_platform.registry.evaluate import client

    server, s = stack["server"], stack["settings"]
    _wait(lambda: server.client.get("/readyz").status_code == 200, 30, "readiness")
    with Load(server.url, stack["ids"], RATE) as load:
        time.sleep(SECONDS / 2)
        client(s).set_registered_model_alias("churn_model", "champion", stack["v2"])
        moved = time.time()
        time.sleep(SECONDS / 2)
    assert not load.failures(), load.failures()[:5]
    assert len(load.results) >= RATE * SECONDS * 0.9, len(load.results)  # the load was really offered
    versions_after = {v for t, _, _, v in load.results if t > moved + 5}
    assert versions_after == {stack["v2"]}, versions_after
    assert {v for t, _, _, v in load.results if t < moved} == {stack["v1"]}
    logged = _logged(stack)
    assert all(logged[rid] == 1 for rid in load.answered), [r for r in load.answered if logged[r] != 1][:5]
    first_new = min(t for t, _, _, v in load.results if v == stack["v2"])
    record_outcome(
        "champion_swap_under_load",
        **load.figures(),
        rate_per_s=RATE,
        seconds=SECONDS,
        logged_exactly_once=sum(logged[rid] == 1 for rid in load.answered),
        new_champion_first_answer_s=round(first_new - moved, 2),
    )


def test_a_worker_sigkilled_under_load_loses_no_answered_prediction(stack):
    import os

    server = stack["server"]
    # the pids that answer, each asked on a new connection (the kernel spreads them over the workers)
    workers = {httpx.get(f"{server.url}/readyz", timeout=10).json()["pid"] for _ in range(30)}
    assert len(workers) == 2, workers
    with Load(server.url, stack["ids"], 50) as load:
        time.sleep(5)
        os.kill(max(workers), signal.SIGKILL)
        killed = time.time()
        time.sleep(15)
    # only requests that were on the killed worker fail; the others, and all after a respawn, answer
    lost = load.failures()
    assert len(lost) <= 8 and all(killed - 1 < t < killed + 10 for t, *_ in lost), lost[:5]
    assert [r for r in load.results if r[0] > killed + 10] and all(
        r[1] == 200 for r in load.results if r[0] > killed + 10
    )
    logged = _logged(stack)
    assert all(logged[rid] == 1 for rid in load.answered), [r for r in load.answered if logged[r] != 1][:5]
    # BentoML's arbiter starts a new worker in the killed one's place
    _wait(
        lambda: len({httpx.get(f"{server.url}/readyz", timeout=10).json()["pid"] for _ in range(30)} - workers) == 1,
        60,
        "a respawned worker answering",
    )
    record_outcome(
        "serving_worker_sigkill",
        **load.figures(),
        logged_exactly_once=sum(logged[rid] == 1 for rid in load.answered),
        respawned_after_s=round(time.time() - killed, 1),
    )


def test_a_hung_then_killed_redis_fails_lookups_fast_and_the_service_recovers(stack):
    """Redis stopped (SIGSTOP: connections accepted by the kernel, never answered) for 6 s under
    20 requests/s: every lookup answers 503 naming the online store within the Redis timeout, none
    hangs; then SIGKILLed and started again from its RDB. The service recovers by itself."""
    import redis as redis_client

    server, redis = stack["server"], stack["redis"]
    c = server.client
    ids = stack["ids"][:3]
    assert c.post("/predict", json={"customer_ids": ids}).status_code == 200
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        with Load(server.url, stack["ids"], 20) as hung:
            time.sleep(6)
        t = time.time()
        ready = c.get("/readyz")
        readyz_s = time.time() - t
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    statuses = Counter(r[1] for r in hung.results)
    assert set(statuses) == {503} and statuses[503] >= 24, statuses  # named refusals, the load kept flowing
    assert all("online store" in r[3] for r in hung.results), hung.results[:2]
    assert max(hung.latencies) < 5, max(hung.latencies)  # bounded by ML_PLATFORM_REDIS_TIMEOUT_SECONDS (1 s)
    assert ready.status_code == 503 and readyz_s < 5
    t = time.time()
    _wait(lambda: c.post("/predict", json={"customer_ids": ids}).status_code == 200, 20, "recovery after SIGCONT")
    back_s = time.time() - t
    redis_client.Redis(port=redis.port).save()  # an RDB as of now: the restart below brings the features back
    redis.proc.send_signal(signal.SIGKILL)
    redis.proc.wait(10)
    r = c.post("/predict", json={"customer_ids": ids})
    assert r.status_code == 503 and "online store" in r.json()["error"], r.text
    redis.start()
    t = time.time()
    _wait(lambda: c.post("/predict", json={"customer_ids": ids}).status_code == 200, 30, "recovery after restart")
    record_outcome(
        "redis_hung_then_killed",
        hung=hung.figures(),
        readyz_while_hung_s=round(readyz_s, 2),
        recovered_after_sigcont_s=round(back_s, 2),
        recovered_after_restart_s=round(time.time() - t, 2),
    )


def test_the_service_keeps_answering_while_mlflow_is_down_and_follows_it_back(stack):
    from ml_platform.registry.evaluate import client

    server, mlflow, s = stack["server"], stack["mlflow"], stack["settings"]
    c = server.client
    mlflow.stop()
    try:
        ready = _wait(
            lambda: (r := c.get("/readyz")).status_code == 200 and r.json()["registry"] != "ok" and r.json(),
            30,
            "the registry error in /readyz",
        )
        assert ready["champion"] == stack["v2"]
        with Load(server.url, stack["ids"], 20) as load:
            time.sleep(5)
        assert not load.failures() and {v for *_, v in load.results} == {stack["v2"]}
    finally:
        mlflow.start()
    client(s).set_registered_model_alias("churn_model", "champion", stack["v1"])
    moved = time.time()
    _wait(
        lambda: all(c.get("/readyz").json()["champion"] == stack["v1"] for _ in range(6)),
        30,
        "the champion moved after MLflow came back",
    )
    record_outcome(
        "mlflow_down_under_the_service",
        **load.figures(),
        readyz_registry=ready["registry"][:200],
        alias_followed_after_s=round(time.time() - moved, 2),
    )
