"""The BentoML churn service as a real process (2 workers) over a real Redis online store and the
shared trained model: readiness, auth, payload errors, A/B, alias swap under load, Redis outage,
and the prediction log surviving a SIGKILL."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.serving_helpers import RedisServer, Server, serving_home

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    r = RedisServer(tmp_path_factory.mktemp("redis"))
    r.start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def home(trained_model, redis_server, tmp_path_factory):
    """Serving home; no champion yet (the fixture model is only @challenger)."""
    path = tmp_path_factory.mktemp("serving-home")
    env = serving_home(trained_model, path, redis_server.url)
    return path, env


def _settings(env):
    from ml_platform.config import Settings

    return Settings(home=Path(env["ML_PLATFORM_HOME"]), online_store="redis", redis_url=env["ML_PLATFORM_REDIS_URL"])


def _ids(redis_url: str, n: int) -> list[str]:
    import redis

    r = redis.Redis.from_url(redis_url)
    data = r.get("mlp:online:features.customer_features:current").decode()
    return sorted(k.decode() for k in r.hkeys(data))[:n]


def _wait(cond, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_service_end_to_end(home, redis_server, tmp_path):
    """One server (2 workers, token, A/B 10 %, poll 1 s) through its whole life."""
    import mlflow

    from ml_platform.registry.aliases import apply_decision, evaluate_and_decide
    from ml_platform.registry.evaluate import alias_version, client
    from ml_platform.registry.promotion import Policy

    path, env = home
    env = env | {
        "ML_PLATFORM_API_TOKEN": TOKEN,
        "ML_PLATFORM_SERVING_WORKERS": "2",
        "ML_PLATFORM_SERVING_POLL_SECONDS": "1",
        "ML_PLATFORM_SERVING_CHALLENGER_SHARE": "0.1",
    }
    s = _settings(env)
    server = Server(env, tmp_path / "serve.log")
    try:
        c = server.client
        # --- no champion: not ready, predict says why; health stays open without a token
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")  # without the token: the status only
        assert r.status_code == 503 and r.json() == {"ready": False}
        r = c.get("/readyz", headers=AUTH)
        assert r.status_code == 503 and "no @champion" in r.json()["reasons"][0]
        r = c.post("/predict", json={"customer_ids": ["x"]}, headers=AUTH)
        assert r.status_code == 503 and "@champion" in r.json()["error"]

        # --- promote the trained model through the gate; the running workers pick it up
        # (the latency budget is relaxed: the 2 workers are still starting on the same 2 cores)
        decision = evaluate_and_decide(Policy(latency_p99_ms=1000.0), settings=s)
        assert decision.promote, decision.reason
        apply_decision(decision, settings=s)
        v1 = alias_version("champion", s)
        ready = _wait(lambda: (r := c.get("/readyz", headers=AUTH)).status_code == 200 and r.json(), 15, "readiness")
        assert ready["champion"] == v1 and ready["online_store"] == "ok"

        ids = _ids(redis_server.url, 5000)
        # --- auth
        assert c.post("/predict", json={"customer_ids": ids[:2]}).status_code == 401
        assert (
            c.post("/predict", json={"customer_ids": ids[:2]}, headers={"Authorization": "Bearer no"}).status_code
            == 401
        )
        r = c.post("/predict", json={"customer_ids": [ids[0], "NO-SUCH-CUSTOMER"]}, headers=AUTH)
        assert r.status_code == 200, r.text
        hit, miss = r.json()["predictions"]
        assert hit["found"] and 0 <= hit["churn_probability"] <= 1 and hit["model_version"] == v1
        assert (
            hit["variant"] == "champion"
            and hit["feature_timestamp"]
            and hit["risk_band"] in ("High", "Medium", "Low", "Very Low")
        )
        assert not miss["found"] and "not found" in miss["detail"]
        # the same customer's features given as a row score the same
        import redis

        from ml_platform.model.scoring import feature_names

        names = feature_names(mlflow.pyfunc.load_model(f"models:/churn_model/{v1}"))
        rc = redis.Redis.from_url(redis_server.url)
        stored = json.loads(rc.hget(rc.get("mlp:online:features.customer_features:current").decode(), ids[0]))[1]
        row = dict(zip(names, stored)) | {"customer_id": ids[0]}
        r = c.post("/predict?explain=true", json={"rows": [row]}, headers=AUTH)
        assert r.status_code == 200, r.text
        p = r.json()["predictions"][0]
        assert abs(p["churn_probability"] - hit["churn_probability"]) < 1e-9 and len(p["explanation"]) == 5

        # --- bad payloads: 4xx naming the problem, never 5xx
        bad = [
            ({}, "exactly one of"),
            ({"customer_ids": []}, "empty"),
            ({"rows": []}, "empty"),
            ({"customer_ids": ["a"], "rows": [row]}, "exactly one of"),
            ({"customer_ids": "abc"}, "customer_ids"),
            ({"customer_ids": [1, 2]}, "customer_ids"),
            ({"customer_ids": ["a"], "extra": 1}, "extra"),
            ({"customer_ids": [" "]}, "blank"),
            ({"rows": [{"nope": 1}]}, "unknown field"),
            ({"rows": [{k: v for k, v in row.items() if k != names[0]}]}, "missing feature"),
            ({"rows": [row | {names[0]: "high"}]}, "must be a number"),
            ({"rows": [row | {names[0]: [1, 2]}]}, "rows"),
            ({"customer_ids": ids[:101]}, "limit is 100"),
            ({"rows": [[[[]]]]}, "rows"),  # nested where a row belongs
        ]
        for payload, words in bad:
            r = c.post("/predict", json=payload, headers=AUTH)
            assert r.status_code == 400 and words in r.json()["error"], (payload, r.status_code, r.text)
        deep = b'{"rows": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"  # within the body limit, beyond any parser's depth
        for raw in (b"not json", b'{"customer_ids": [', b"[1, 2]", b"null", deep):
            r = c.post("/predict", content=raw, headers=AUTH | {"content-type": "application/json"})
            assert r.status_code == 400 and r.json()["error"], (raw, r.text)
        r = c.post("/predict", content=b"x" * 2_000_000, headers=AUTH | {"content-type": "application/json"})
        assert r.status_code == 413
        # ids a JSON string allows and a store key cannot be: a lone surrogate (was a 503 "online store
        # unavailable"), a control character, 100,000 characters; the error names the position, not the value
        for raw, words in (
            (b'{"customer_ids": ["C42-0000001", "ab\\ud800"]}', "customer id 1 is not valid Unicode text"),
            (b'{"customer_ids": ["a\\u0000"]}', "customer id 0 holds a control character"),
            (b'{"customer_ids": ["' + b"9" * 100_000 + b'"]}', "customer id 0 has 100000 characters: at most 128"),
        ):
            r = c.post("/predict", content=raw, headers=AUTH | {"content-type": "application/json"})
            assert r.status_code == 400 and words in r.json()["error"], (raw[:80], r.status_code, r.text[:300])
            assert len(r.text) < 500, r.text[:300]

        # --- A/B: a challenger (a second version) takes ~10 % of customers, sticky
        mv = client(s).get_model_version("churn_model", v1)
        v2 = str(client(s).create_model_version("churn_model", mv.source, run_id=mv.run_id).version)
        client(s).set_model_version_tag("churn_model", v2, "threshold", mv.tags.get("threshold", "0.5"))
        client(s).set_registered_model_alias("churn_model", "challenger", v2)
        _wait(
            lambda: all(c.get("/readyz", headers=AUTH).json()["challenger"] == v2 for _ in range(6)),
            15,
            "challenger loaded",
        )

        def variants() -> dict[str, str]:
            out = {}
            for i in range(0, len(ids), 100):
                r = c.post("/predict", json={"customer_ids": ids[i : i + 100]}, headers=AUTH)
                assert r.status_code == 200, r.text
                out.update({p["customer_id"]: p["variant"] for p in r.json()["predictions"]})
            return out

        first, second = variants(), variants()
        share = sum(v == "challenger" for v in first.values()) / len(first)
        assert len(first) == 5000 and abs(share - 0.10) <= 0.03, share
        assert first == second  # sticky

        # --- alias swap under concurrent load: no failed request, the new champion within the poll interval
        failures, versions, stop = [], [], threading.Event()

        def load() -> None:
            with httpx.Client(base_url=server.url, timeout=30) as cc:
                while not stop.is_set():
                    try:
                        rr = cc.post("/predict", json={"customer_ids": ids[200:210]}, headers=AUTH)
                        if rr.status_code != 200:
                            failures.append(rr.status_code)
                        else:
                            versions.append(
                                (
                                    time.time(),
                                    {
                                        p["model_version"]
                                        for p in rr.json()["predictions"]
                                        if p["variant"] == "champion"
                                    },
                                )
                            )
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        client(s).set_registered_model_alias("churn_model", "champion", v2)
        moved = time.time()
        time.sleep(4)
        stop.set()
        for t in threads:
            t.join()
        assert not failures, failures[:5]
        late = [vs for ts, vs in versions if ts > moved + 2.5]  # poll 1 s + a load, on both workers
        assert late and all(vs <= {v2} for vs in late), late[-5:]

        # --- Redis down: by id -> 503 naming the store; by rows -> still served; back -> recovers by itself
        redis_server.stop()
        r = c.post("/predict", json={"customer_ids": ids[:3]}, headers=AUTH)
        assert r.status_code == 503 and "online store" in r.json()["error"] and "redis" in r.json()["error"]
        assert c.post("/predict", json={"rows": [row]}, headers=AUTH).status_code == 200
        assert c.get("/readyz").status_code == 503
        redis_server.start()
        _wait(
            lambda: c.post("/predict", json={"customer_ids": ids[:3]}, headers=AUTH).status_code == 200,
            20,
            "recovery after Redis restart",
        )

        # --- metrics: per-variant counters and latency from both workers, store misses; random
        # paths (404) add no series: one unlabelled counter counts them
        for i in range(40):
            assert c.get(f"/no-such-{i}-{os.urandom(4).hex()}").status_code == 404

        def unrouted() -> str | None:  # either worker answers /metrics; both workers' counts, summed
            text = c.get("/metrics").text
            return (
                text
                if sum(float(v) for v in re.findall(r"^churn_unrouted_requests_total (\S+)", text, re.M)) >= 40
                else None
            )

        try:
            m = _wait(unrouted, 10, "the 40 unrouted requests in /metrics")
        except AssertionError:
            raise AssertionError(c.get("/metrics").text[-3000:]) from None
        assert "no-such-" not in m, m[-2000:]
        assert 'endpoint="/predict"' in m  # BentoML's own HTTP series are still there for routed paths
        assert (
            'churn_predictions_total{variant="champion"}' in m and 'churn_predictions_total{variant="challenger"}' in m
        )
        assert "churn_predict_seconds_bucket" in m and "churn_feature_store_misses_total" in m
        assert "/predict" in c.get("/docs.json").json()["paths"]
    finally:
        server.stop()


def test_prediction_log_survives_sigkill_and_loads_exactly_once(home, redis_server, tmp_path):
    """Shadow mode: every answered request is in monitoring.prediction_log once, with the
    challenger's shadow score beside it, after the whole server is SIGKILLed."""
    from ml_platform.lake.paths import table_path
    from ml_platform.lake.reader import read_pandas
    from ml_platform.registry.evaluate import alias_version, client
    from ml_platform.serving.spool import load_spool

    path, env = home
    spool_home = tmp_path / "home"
    spool_home.mkdir()
    for sub in ("mlflow", "lake"):
        (spool_home / sub).symlink_to(path / sub)
    env = env | {
        "ML_PLATFORM_HOME": str(spool_home),
        "ML_PLATFORM_SERVING_WORKERS": "2",
        "ML_PLATFORM_SERVING_SHADOW": "true",
    }
    s = _settings(env)
    champion = alias_version("champion", s)
    if champion is None:
        pytest.fail("needs the champion set by test_service_end_to_end (run the module)")
    other = next(v.version for v in client(s).search_model_versions("name='churn_model'") if str(v.version) != champion)
    client(s).set_registered_model_alias("churn_model", "challenger", str(other))
    server = Server(env, tmp_path / "serve.log")
    ids = _ids(redis_server.url, 300)
    answered = []
    try:
        for i in range(0, 300, 3):
            r = server.client.post("/predict", json={"customer_ids": ids[i : i + 3]})
            assert r.status_code == 200, r.text
            answered += [(r.json()["request_id"], p["customer_id"]) for p in r.json()["predictions"]]
    finally:
        server.kill()
    spool = spool_home / "serving" / "spool"
    first = load_spool(spool, s)
    again = load_spool(spool, s)
    assert first["inserted"] == 600 and again["inserted"] == 0  # 300 returned + 300 shadow, once
    log = read_pandas(table_path("monitoring.prediction_log", s))
    returned = log[log["returned"]]
    assert sorted(zip(returned["request_id"], returned["customer_id"])) == sorted(answered)
    assert set(log[~log["returned"]]["variant"]) == {"shadow"} and len(log) == 600
    assert json.loads(returned["features_json"].iloc[0])  # the exact feature values served


def test_serving_deploy_dag_promotes_and_the_running_service_confirms(
    home, redis_server, tmp_path, monkeypatch, airflow_db
):
    """The deployment DAG against a running `ml-platform serve`: the Bento is built and
    smoke-tested, the aliases move, and confirm_serving sees the service report the new version."""
    from airflow.dag_processing.dagbag import DagBag

    from ml_platform.config import get_settings
    from ml_platform.registry.aliases import history
    from ml_platform.registry.evaluate import alias_version, client
    from ml_platform.serving.bento import free_port

    path, env = home
    env = env | {
        "ML_PLATFORM_SERVING_PORT": str(free_port()),
        "ML_PLATFORM_SERVING_POLL_SECONDS": "1",
        "ML_PLATFORM_SERVING_WORKERS": "2",
        "ML_PLATFORM_SERVING_SHADOW": "false",
        "BENTOML_HOME": str(tmp_path / "bentoml"),
    }
    s = _settings(env)
    champion = alias_version("champion", s)
    if champion is None:
        pytest.fail("needs the champion set by test_service_end_to_end (run the module)")
    mv = client(s).get_model_version("churn_model", champion)
    candidate = str(client(s).create_model_version("churn_model", mv.source, run_id=mv.run_id).version)
    client(s).set_model_version_tag("churn_model", candidate, "threshold", mv.tags.get("threshold", "0.5"))
    client(s).set_registered_model_alias("churn_model", "challenger", candidate)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    server = Server(env, tmp_path / "serve.log", port=int(env["ML_PLATFORM_SERVING_PORT"]))  # where the DAG looks
    try:
        dag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags" / "serving_deploy.py")).get_dag(
            "serving_deploy"
        )
        # the candidate is the champion's model again: a zero gain must be allowed to promote it
        run = dag.test(run_conf={"min_auc_gain": -1.0, "smoke_p99_ms": 1000.0, "latency_p99_ms": 1000.0})
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        assert str(run.state) == "success", states
        tis = {ti.task_id: ti for ti in run.get_task_instances()}
        confirmed = tis["confirm_serving"].xcom_pull(task_ids="confirm_serving")
        assert confirmed["running"] is True and confirmed["confirmed"] is True and confirmed["version"] == candidate
        assert confirmed["workers"] == 2  # both workers answered with the candidate, not one twice
        assert server.client.get("/readyz").json()["champion"] == candidate
        assert alias_version("champion", s) == candidate and alias_version("previous_champion", s) == champion
        assert history(s)[-1]["dag_run_id"] == run.run_id
    finally:
        server.stop()
        get_settings.cache_clear()
