"""The DAGs under a real Airflow (api-server, scheduler, dag-processor, triggerer, and two
`airflow celery worker`s: CeleryExecutor with a Redis broker and PostgreSQL results) on
PostgreSQL, the production metadata setting: `airflow backfill create` of features_build for 4
dates succeeds, then an event on the `training.retrain_requested` asset (posted to the REST API,
as the monitoring loop's sensor will) starts a `training` run that registers a challenger whose
asset event carries the request's decision_id; unpausing `training` also runs its latest weekly
slot.

Uses the PostgreSQL and Redis servers `.ci/run` / `scripts/services.sh` started
(ML_PLATFORM_TEST_PG_URL, ML_PLATFORM_TEST_REDIS_URL) and the same launcher as the demo
(scripts/airflow_up.sh). The tasks of the backfill and of training (its mapped HPO) ran on both workers.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest

from ml_platform.data.generator import GeneratorSpec, write_landing

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
START = date(2025, 1, 1)
DAYS = 4  # with a 1-day label window: 3 cutoffs (train, validation, test) for the training DAG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_url() -> str:
    url = os.environ.get("ML_PLATFORM_TEST_PG_URL")
    assert url, "ML_PLATFORM_TEST_PG_URL is not set: run through `make test` (it starts PostgreSQL)"
    return url


@pytest.fixture(scope="module")
def stack(tmp_path_factory, pg_url):
    import sqlalchemy as sa

    home = tmp_path_factory.mktemp("airflow-pg")
    db = f"airflow_it_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{pg_url}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{db}"'))
    port = _free_port()
    env = {
        **os.environ,
        "ML_PLATFORM_HOME": str(home),
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{pg_url}/{db}",
        "ML_PLATFORM_AIRFLOW_PORT": str(port),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
        "ML_PLATFORM_DAG_START_DATE": START.isoformat(),
        "ML_PLATFORM_DAG_END_DATE": (START + timedelta(days=DAYS - 1)).isoformat(),
        "ML_PLATFORM_LABEL_HORIZON_DAYS": "1",
        "ML_PLATFORM_TRAINING_TRIALS": "4",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": os.environ["ML_PLATFORM_TEST_REDIS_URL"].rsplit("/", 1)[0] + "/5",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{pg_url}/{db}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",  # the mapped HPO's two tasks need both workers
    }  # two training runs below: what is tested is the wiring
    write_landing(
        GeneratorSpec(customers=1000, start=START, end=START + timedelta(days=DAYS - 1), seed=5), home / "landing"
    )
    up = subprocess.run(["bash", str(ROOT / "scripts" / "airflow_up.sh")], env=env, capture_output=True, text=True)
    assert up.returncode == 0, up.stderr
    yield env, home, db
    subprocess.run(["bash", str(ROOT / "scripts" / "stop.sh")], env=env, capture_output=True)
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))


def _airflow(env, *args: str) -> str:
    out = subprocess.run(["airflow", *args], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def _runs(env, dag_id: str = "features_build") -> dict[str, str]:
    text = _airflow(env, "dags", "list-runs", dag_id, "-o", "json")
    rows = next((json.loads(ln) for ln in text.splitlines() if ln.startswith("[") and ln.rstrip().endswith("]")), [])
    return {r["run_id"]: r["state"] for r in rows}


def _wait_registered(env, dag_id: str) -> None:
    deadline = time.monotonic() + 120
    while dag_id not in _airflow(env, "dags", "list", "-o", "plain"):
        assert time.monotonic() < deadline, f"dag-processor did not register {dag_id}"
        time.sleep(2)


def _api(env, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
    import urllib.request

    req = urllib.request.Request(
        f"http://127.0.0.1:{env['ML_PLATFORM_AIRFLOW_PORT']}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


def test_backfill_of_four_dates_succeeds_on_postgres(stack):
    env, home, db = stack
    _wait_registered(env, "features_build")
    _airflow(
        env,
        "backfill",
        "create",
        "--dag-id",
        "features_build",
        "--from-date",
        START.isoformat(),
        "--to-date",
        (START + timedelta(days=DAYS - 1)).isoformat(),
        "--max-active-runs",
        "1",
    )
    _airflow(env, "dags", "unpause", "-y", "features_build")  # backfill runs only start for an unpaused DAG
    deadline = time.monotonic() + 900
    while True:
        runs = _runs(env)
        if len(runs) >= DAYS and all(s in ("success", "failed") for s in runs.values()):
            break
        assert time.monotonic() < deadline, f"runs did not finish: {runs}"
        time.sleep(5)
    backfills = {k: v for k, v in runs.items() if k.startswith("backfill__")}
    assert len(backfills) == DAYS and set(backfills.values()) == {"success"}, runs
    assert set(runs.values()) == {"success"}, runs  # nothing else ran, nothing failed

    from ml_platform.lake.reader import partition_values

    snaps = partition_values(str(home / "lake" / "features" / "customer_features"), "snapshot_date")
    assert snaps == ["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-04"]
    assert _workers(env, "features_build") == {"celery-1", "celery-2"}


def _workers(env, dag_id: str) -> set[str]:
    """The Celery workers (scripts/airflow_up.sh names them in ti.hostname) that ran `dag_id`'s tasks."""
    import sqlalchemy as sa

    engine = sa.create_engine(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    try:
        with engine.connect() as c:
            q = sa.text("select distinct hostname from task_instance where dag_id = :d and state = 'success'")
            hosts = {row[0] for row in c.execute(q, {"d": dag_id})}
    finally:
        engine.dispose()
    return {re.sub(r"^.*-(celery-\d+)$", r"\1", h) for h in hosts}


def test_the_demo_rest_client_agrees_with_the_cli(stack, monkeypatch):
    """scripts/airflow_api.py (the demo's waits and unpauses) against the same api-server."""
    import sys

    env, home, db = stack
    monkeypatch.setenv("ML_PLATFORM_AIRFLOW_PORT", env["ML_PLATFORM_AIRFLOW_PORT"])
    monkeypatch.setenv("AIRFLOW_HOME", env["AIRFLOW_HOME"])
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    sys.modules.pop("airflow_api", None)
    import airflow_api

    airflow_api.wait_parsed(["features_build", "training"], timeout=120)
    assert {r["dag_run_id"]: r["state"] for r in airflow_api.runs("features_build")} == _runs(env)
    assert airflow_api.wait_idle("features_build", min_runs=DAYS, timeout=60) is True
    with pytest.raises(airflow_api.ApiError, match="HTTP 404"):
        airflow_api.unpause("no_such_dag")


def test_a_retrain_request_event_runs_training_and_registers_a_challenger(stack):
    env, home, db = stack
    _wait_registered(env, "training")
    _airflow(env, "dags", "unpause", "-y", "training")
    password = json.loads((home / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
    token = _api(env, "POST", "/auth/token", {"username": "admin", "password": password})["access_token"]
    assets = {a["name"]: a["id"] for a in _api(env, "GET", "/api/v2/assets?limit=100", token=token)["assets"]}
    _api(
        env,
        "POST",
        "/api/v2/assets/events",
        {
            "asset_id": assets["training.retrain_requested"],
            "extra": {"decision_id": "it-decision-1", "reason": "integration"},
        },
        token=token,
    )
    deadline = time.monotonic() + 1200
    while True:
        runs = _runs(env, "training")
        if len(runs) >= 2 and all(s in ("success", "failed") for s in runs.values()):
            break
        assert time.monotonic() < deadline, f"training did not finish: {runs}"
        time.sleep(5)
    # unpausing also starts the latest weekly (Monday 04:00) run: both paths ran, one at a time
    kinds = sorted(k.split("__")[0] for k in runs)
    assert kinds == ["asset_triggered", "scheduled"] and set(runs.values()) == {"success"}, runs
    events = _api(env, "GET", f"/api/v2/assets/events?asset_id={assets['registry.challenger']}", token=token)
    extras = [e["extra"] for e in events["asset_events"]]
    assert len(extras) == 2 and {e["model_name"] for e in extras} == {"churn_model"}
    assert sorted(str(e.get("decision_id")) for e in extras) == ["None", "it-decision-1"], extras
    assert _workers(env, "training") == {"celery-1", "celery-2"}
