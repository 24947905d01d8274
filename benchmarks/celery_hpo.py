"""HPO trials per minute on Airflow's CeleryExecutor with 1 and with 2 Celery workers: the training
DAG's mapped `hpo` tasks on one Optuna study in PostgreSQL, as the production topology runs them.

    python benchmarks/celery_hpo.py [--customers 20000] [--trials 16] [--families random_forest]

One lake is prepared once (`ml-platform data generate` + `ml-platform run`, weekly snapshots), then
for each worker count: a fresh Airflow metadata database and Optuna database, Airflow started by
scripts/airflow_up.sh with the CeleryExecutor (Redis broker, PostgreSQL results) and N `airflow
celery worker`s of concurrency 1 (a worker is a slot, as one per machine would be), and one
`training` run triggered with the same conf (`n_workers` = 2 mapped HPO tasks, the same trials,
seed and families; no distributed refit). The figure is completed trials per minute over the HPO
window (the first mapped hpo task's start to the last one's end, from Airflow's metadata: the task
processes' start-up and Airflow's scheduling are inside it), next to the same run with one worker:
the floor of what a second worker can give on these 2 cores is 1.0x, the ceiling 2.0x.
Needs PostgreSQL and Redis: scripts/services.sh starts them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sh(args: list, env: dict[str, str], what: str, timeout: float = 1800) -> str:
    r = subprocess.run([str(a) for a in args], env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise SystemExit(f"{what} failed ({r.returncode}): {r.stderr[-2000:]}")
    return r.stdout


def _database(pg: str, prefix: str) -> str:
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{pg}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{pg}/{name}"


def _drop(pg: str, name: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(f"{pg}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _trials(optuna_url: str) -> list[tuple[float, float]]:
    import sqlalchemy as sa

    engine = sa.create_engine(optuna_url)
    with engine.connect() as c:
        rows = c.execute(
            sa.text("select datetime_start, datetime_complete from trials where state in ('COMPLETE', 'PRUNED')")
        ).all()
    engine.dispose()
    return [(a.timestamp(), b.timestamp()) for a, b in rows]


def _hpo_tasks(airflow_url: str, run_id: str) -> tuple[float, float, list[str]]:
    """The mapped hpo tasks of `run_id`: first start, last end (the HPO window, a task process's
    start-up included), and the Celery workers that ran them."""
    import sqlalchemy as sa

    engine = sa.create_engine(airflow_url)
    with engine.connect() as c:
        q = (
            "select start_date, end_date, hostname from task_instance "
            "where dag_id = 'training' and task_id = 'hpo' and run_id = :r and state = 'success'"
        )
        rows = c.execute(sa.text(q), {"r": run_id}).all()
    engine.dispose()
    hosts = sorted({re.sub(r"^.*-(celery-\d+)$", r"\1", h) for _, _, h in rows})
    return min(r[0] for r in rows).timestamp(), max(r[1] for r in rows).timestamp(), hosts


def _stop_run(base: str, token: str, run_id: str) -> None:
    import urllib.request
    from urllib.parse import quote

    req = urllib.request.Request(
        f"{base}/api/v2/dags/training/dagRuns/{quote(run_id)}",
        method="PATCH",
        data=json.dumps({"state": "failed"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    urllib.request.urlopen(req, timeout=30).close()


def run_setting(workers: int, base: dict[str, str], home: Path, pg: str, redis: str, conf: dict) -> dict:
    airflow_db, optuna_db = _database(pg, "bench_airflow"), _database(pg, "bench_optuna")
    env = {
        **base,
        "AIRFLOW_HOME": str(home / f"airflow-{workers}w"),
        "ML_PLATFORM_AIRFLOW_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db,
        "AIRFLOW__CELERY__BROKER_URL": f"{redis}/6",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{airflow_db}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        "ML_PLATFORM_CELERY_WORKERS": str(workers),
        "ML_PLATFORM_OPTUNA_STORAGE": optuna_db,
    }
    api = [sys.executable, ROOT / "scripts" / "airflow_api.py"]
    try:
        print(f"{workers} worker(s): starting Airflow", file=sys.stderr, flush=True)
        _sh(["bash", ROOT / "scripts" / "airflow_up.sh"], env, "airflow_up.sh", 600)
        _sh([*api, "parsed", "training"], env, "parsed")
        run_id = _sh([*api, "trigger", "training", "--conf", json.dumps(conf)], env, "trigger").strip()
        _sh([*api, "unpause", "training"], env, "unpause")
        # unpausing also creates the latest weekly run: only the triggered one is measured, the other
        # is stopped so that it does not share the workers
        sys.path.insert(0, str(ROOT / "scripts"))
        os.environ.update({k: env[k] for k in ("AIRFLOW_HOME", "ML_PLATFORM_AIRFLOW_PORT")})
        import airflow_api

        airflow_api._client = None  # a new api-server per setting
        token = airflow_api._token()
        t0 = time.monotonic()
        while True:
            runs = airflow_api.runs("training")
            for r in runs:
                if r["dag_run_id"] != run_id and r["state"] in ("queued", "running"):
                    _stop_run(airflow_api.base_url(), token, r["dag_run_id"])
            mine = next((r for r in runs if r["dag_run_id"] == run_id), None)
            if mine and mine["state"] in ("success", "failed"):
                break
            if time.monotonic() - t0 > 3600:
                raise SystemExit(f"training run {run_id} did not end within an hour")
            time.sleep(2)
        if mine["state"] != "success":
            raise SystemExit(f"training run {run_id} ended {mine['state']} (logs: {env['AIRFLOW_HOME']})")
        start, end, hosts = _hpo_tasks(airflow_db, run_id)
        trials = [t for t in _trials(optuna_db) if start <= t[0] <= end]
        return {
            "trials": len(trials),
            "window": end - start,
            "per_minute": len(trials) / (end - start) * 60,
            "busy": sum(b - a for a, b in trials) / (end - start),  # fit-seconds per second: parallelism
            "hosts": hosts,
            "run": time.monotonic() - t0,
        }
    finally:
        subprocess.run(["bash", str(ROOT / "scripts" / "stop.sh")], env=env, capture_output=True, timeout=300)
        for url in (airflow_db, optuna_db):
            _drop(pg, url.rsplit("/", 1)[1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--customers", type=int, default=20000, help="synthetic customers (default 20000)")
    p.add_argument("--trials", type=int, default=16, help="HPO trials of each run (default 16)")
    p.add_argument(
        "--families",
        default="random_forest",
        help="families searched (default random_forest: it reports no intermediate values, so no trial is "
        "pruned and both settings fit the same work; xgboost's pruning depends on which trials ran first)",
    )
    a = p.parse_args(argv)
    services = _sh(["bash", ROOT / "scripts" / "services.sh", "start"], dict(os.environ), "services.sh")
    found = dict(re.findall(r"^export (\w+)=(\S+)$", services, re.M))
    pg, redis = found["ML_PLATFORM_TEST_PG_URL"], found["ML_PLATFORM_TEST_REDIS_URL"].rsplit("/", 1)[0]
    with tempfile.TemporaryDirectory(prefix="celery-hpo-") as tmp:
        home = Path(tmp)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ML_PLATFORM_"))}
        base |= {
            "ML_PLATFORM_HOME": str(home),
            "ML_PLATFORM_SNAPSHOT_CADENCE": "weekly",
            "ML_PLATFORM_DAG_START_DATE": "2025-01-01",
            "ML_PLATFORM_DAG_END_DATE": "2025-02-28",
            "PATH": f"{BIN}:{os.environ['PATH']}",
        }
        print("preparing the lake (generate + ml-platform run)", file=sys.stderr, flush=True)
        gen = [BIN / "ml-platform", "data", "generate", "--customers", a.customers]
        _sh([*gen, "--start", "2025-01-01", "--end", "2025-02-28", "--seed", "1"], base, "generate")
        _sh([BIN / "ml-platform", "run", "--start", "2025-01-01", "--end", "2025-02-28"], base, "ml-platform run")
        conf = {
            "n_trials": a.trials,
            "n_workers": 2,
            "families": a.families,
            "horizon_days": 7,
            "last_k": 4,
            "seed": 0,
            "distributed_workers": 0,
        }
        results = {w: run_setting(w, base, home, pg, redis, conf) for w in (1, 2)}
    head = f"{'Celery workers':<16} {'trials':>6} {'HPO window':>11} {'trials/min':>11} {'trial-s per s':>14}"
    print(head + "  mapped hpo tasks ran on")
    for w, r in results.items():
        print(
            f"{w:<16} {r['trials']:>6} {r['window']:>10.1f}s {r['per_minute']:>11.2f} {r['busy']:>14.2f}"
            f"  {', '.join(r['hosts'])}"
        )
    one, two = results[1], results[2]
    print(
        f"2 workers vs 1: {two['per_minute'] / one['per_minute']:.2f}x trials per minute, "
        f"{two['busy'] / one['busy']:.2f}x trial-seconds per second (floor 1.0x, ceiling 2.0x on 2 cores; "
        "the sampler proposes other parameters when trials finish in another order, so trials differ in "
        "cost between the runs and the second figure is the one that compares like with like)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
