"""Small builders shared by tests (hand-made data with known answers)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def txn(
    customer: str | None,
    tid: str | None,
    ts: datetime | None,
    amount: float | None,
    channel: str | None = "online",
    category: str | None = "grocery",
    quantity: int | None = 1,
) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "transaction_id": tid,
        "transaction_ts": ts,
        "amount": amount,
        "quantity": quantity,
        "product_category": category,
        "channel": channel,
    }


def land(home: Path, day: str, rows: list[dict[str, Any]], fmt: str = "parquet") -> Path:
    """Write rows as a landed transactions file for `day` under `home`."""
    import pandas as pd

    folder = home / "landing" / "transactions" / day
    folder.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(
        rows,
        columns=[
            "customer_id",
            "transaction_id",
            "transaction_ts",
            "amount",
            "quantity",
            "product_category",
            "channel",
        ],
    )
    df["transaction_ts"] = pd.to_datetime(df["transaction_ts"], utc=True).astype("datetime64[us, UTC]")
    df["quantity"] = df["quantity"].astype("Int64")
    path = folder / f"transactions.{fmt}"
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path


def online_store_contract(store: Any) -> None:
    """What every online-store backend must do: typed values in order, missing keys, idempotent
    publishes, and readers that never see half of a publish."""
    import threading
    from datetime import date, timedelta

    from ml_platform.features.registry import FeatureSpec, FeatureTable

    table = FeatureTable(
        name="features.contract",
        primary_keys=("k",),
        timestamp_key="ts",
        ttl_seconds=86_400.0,
        features=(
            FeatureSpec("x", "double"),
            FeatureSpec("n", "bigint"),
            FeatureSpec("s", "string"),
            FeatureSpec("d", "date"),
            FeatureSpec("t", "timestamp"),
        ),
    )
    t0 = datetime(2025, 1, 2, tzinfo=timezone.utc)

    def rows(version: int, n: int = 2000):
        for i in range(n):
            yield f"c{i}", t0 + timedelta(days=version), [float(version), i, f"s{i}", date(2025, 1, version), None]

    assert store.current(table.name) is None
    assert store.get(table, ["c1"])[0].found is False  # never published: missing, not an error
    first = store.publish(table, rows(1), "v1")
    assert (first.rows, first.skipped) == (2000, False)
    assert store.publish(table, rows(1), "v1").skipped is True
    one, unknown, two = store.get(table, ["c1", "nope", "c2"])
    assert one.found and one.values == {"x": 1.0, "n": 1, "s": "s1", "d": date(2025, 1, 1), "t": None}
    assert list(one.values) == ["x", "n", "s", "d", "t"] and one.feature_timestamp == t0 + timedelta(days=1)
    assert not unknown.found and two.values["n"] == 2
    assert store.current(table.name)["max_feature_ts"].startswith("2025-01-03")

    seen: set[float] = set()
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        keys = [f"c{i}" for i in range(0, 2000, 20)]
        while True:
            last = stop.is_set()  # one more read after the last publish, however the threads are scheduled
            got = {r.values.get("x") for r in store.get(table, keys)}
            if len(got) != 1 or None in got:
                errors.append(f"mixed or missing values during a publish: {got}")
            seen.update(got)
            if last:
                return

    th = threading.Thread(target=reader)
    th.start()
    try:
        for v in (2, 3, 4):
            store.publish(table, rows(v), f"v{v}")
    finally:
        stop.set()
        th.join()
    assert not errors, errors[:3]
    assert store.get(table, ["c5"])[0].values["x"] == 4.0 and 4.0 in seen

    # a streamed table (upsert): created on the first rows, updated in place key by key
    streamed = FeatureTable(name="features.contract_stream", primary_keys=("k",), timestamp_key="ts",
                            features=(FeatureSpec("x", "double"),))  # fmt: skip
    assert store.upsert(streamed, [("a", t0, [1.0]), ("b", t0, [2.0])]) == 2
    assert store.upsert(streamed, [("a", t0 + timedelta(hours=1), [3.0])]) == 1
    a, b, c = store.get(streamed, ["a", "b", "c"])
    assert (a.values, a.feature_timestamp, b.values, c.found) == (
        {"x": 3.0},
        t0 + timedelta(hours=1),
        {"x": 2.0},
        False,
    )
    assert store.current(streamed.name)["rows"] == 2
    assert store.get(table, ["c5"])[0].values["x"] == 4.0  # other tables untouched


def small_trial_data(seed: int) -> Any:
    """600 rows, 5 features, a learnable label: 400 train / 200 validation (HPO study tests)."""
    import numpy as np

    from ml_platform.training.hpo import TrialData

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, 5))
    y = (x[:, 0] - x[:, 1] + rng.normal(scale=0.7, size=600) > 0).astype(float)
    return TrialData(x[:400], y[:400], x[400:], y[400:])


def free_port_block(n: int = 3) -> int:
    """A port p with p .. p+n-1 free (Airflow's api-server and its two log servers)."""
    import socket

    from ml_platform.serving.bento import free_port

    def free(port: int) -> bool:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return True
            except OSError:
                return False

    for _ in range(50):
        p = free_port()
        if p + n < 65535 and all(free(p + i) for i in range(1, n)):
            return p
    raise RuntimeError("no block of free ports")


def demo_home() -> Path | None:
    """Where the cluster tier's quick demo runs when tiers share a folder (scripts/test.sh), so the ui
    tier can open what it produced instead of running the demo a second time."""
    import os

    shared = os.environ.get("ML_PLATFORM_TEST_SHARED")
    return Path(shared) / "demo" / "platform" if shared else None


def run_quick_demo(
    home: Path, log: Path, serving_port: int, weeks: int = 4, *, keep_running: bool = False
) -> tuple[int, str]:
    """`make demo QUICK=1 LAKE=azurite TOPOLOGY=cluster`'s script in a fresh platform home, as a user
    runs it; then `make stop`. The richest topology the quick demo has: the production topology
    (scripts/cluster.sh: a Spark standalone master + 2 workers, Airflow's CeleryExecutor with 2
    workers, an MLflow tracking server on PostgreSQL that every client reaches over HTTP, Optuna on
    its own PostgreSQL database, the online store in Redis) with the lake, the landing zone and
    MLflow's artifacts in Azurite. Needs the test services (ML_PLATFORM_TEST_PG_URL and _REDIS_URL,
    scripts/test.sh starts them); fresh databases each time.
    `weeks`: the monitoring loop's weeks (QUICK's 4 by default).
    Returns the exit code and the output. `home/DONE` marks a demo that ran to the end.
    `keep_running`: a demo that succeeded leaves its stack up (the caller stops it: `stop_demo_stack`)."""
    import os
    import subprocess

    from ml_platform.serving.bento import free_port

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ML_PLATFORM_", "AZURE_"))}
    env |= {
        "QUICK": "1",
        "LAKE": "azurite",
        "TOPOLOGY": "cluster",
        "DEMO_WEEKS": str(weeks),
        "ML_PLATFORM_HOME": str(home),
        "ML_PLATFORM_AIRFLOW_PORT": str(free_port_block()),
        "ML_PLATFORM_SERVING_PORT": str(serving_port),
        "ML_PLATFORM_MLFLOW_PORT": str(free_port()),
        "ML_PLATFORM_SPARK_CONNECT_PORT": str(free_port()),
        "ML_PLATFORM_AZURITE_PORT": str(free_port()),
    }
    pg = os.environ["ML_PLATFORM_TEST_PG_URL"]
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = fresh_database(pg, "cluster_airflow")
    env["ML_PLATFORM_MLFLOW_BACKEND_STORE"] = fresh_database(pg, "cluster_mlflow")
    env["ML_PLATFORM_OPTUNA_STORAGE"] = fresh_database(pg, "cluster_optuna")
    env["ML_PLATFORM_SPARK_MASTER_PORT"] = str(free_port_block(2))  # the master and its web UI
    r = None
    try:
        with log.open("w") as f:
            r = subprocess.run(
                ["bash", str(root / "scripts" / "demo.sh")],
                env=env,
                cwd=root,
                stdout=f,
                stderr=subprocess.STDOUT,
                timeout=2400,
            )
    finally:
        if not (keep_running and r is not None and r.returncode == 0):
            stop_demo_stack(home)
    if r.returncode == 0:
        (home / "DONE").touch()
    return r.returncode, log.read_text()


def fresh_database(server_url: str, name: str) -> str:
    """An empty PostgreSQL database `name` on the test server (dropped first if it exists); its URL."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(f"{server_url}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return f"{server_url}/{name}"


def stop_demo_stack(home: Path, *names: str) -> None:
    """`scripts/stop.sh` for the platform home `home`: every process it recorded, or only `names`."""
    import os
    import subprocess

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ML_PLATFORM_"))}
    env["ML_PLATFORM_HOME"] = str(home)
    subprocess.run(["bash", str(root / "scripts" / "stop.sh"), *names], env=env, capture_output=True, timeout=120)


def restart_demo_stack(
    home: Path, extra: dict[str, str] | None = None, *, cluster: bool = True, fresh_ports: bool = True
) -> dict[str, str]:
    """Start again what a finished quick demo in `home` ran on, with the demo's settings
    (`run/demo.env`) plus `extra`, and fresh Airflow ports: Azurite on its data, the Spark cluster (the cluster
    topology), Airflow (with its Celery workers) and the MLflow server. What still runs is kept
    (each script starts only what is not running); `fresh_ports=False` keeps the demo's Airflow
    port for that. Returns the environment the stack runs with; `scripts/stop.sh` with it stops
    everything."""
    import os
    import re
    import subprocess

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ML_PLATFORM_"))}
    for line in (home / "run" / "demo.env").read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value
    auth = home / "run" / "mlflow-auth.env"  # the tracking server's admin, generated by the demo
    if auth.exists():
        env |= dict(line.split("=", 1) for line in auth.read_text().splitlines() if "=" in line)
    env.pop("ML_PLATFORM_SPARK_REMOTE", None)  # a demo's Connect server is gone: a JVM per job
    # the demo's own ports: its tasks' links name the MLflow UI and the service where the demo had them
    env.setdefault("ML_PLATFORM_MLFLOW_PORT", "25000")
    env.setdefault("ML_PLATFORM_SERVING_PORT", "23000")
    if fresh_ports:
        env["ML_PLATFORM_AIRFLOW_PORT"] = str(free_port_block())
    env["ML_PLATFORM_HOME"] = str(home)
    if not cluster:  # the demo's data and stores, run by Airflow's LocalExecutor and local Spark
        env = {
            k: v for k, v in env.items() if not k.startswith("AIRFLOW__CELERY__") and k != "ML_PLATFORM_SPARK_CORES_MAX"
        }
        env["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
        env["ML_PLATFORM_SPARK_MASTER"] = "local[*]"
        env["AIRFLOW_CONN_SPARK_DEFAULT"] = '{"conn_type": "spark", "host": "local[2]"}'
    env |= extra or {}

    def run(script: str, *args: str) -> str:
        up = subprocess.run(
            ["bash", str(root / "scripts" / script), *args], env=env, capture_output=True, text=True, timeout=300
        )
        assert up.returncode == 0, f"{script}: {up.stderr[-3000:]}"
        return up.stdout

    if "ML_PLATFORM_AZURE_EMULATOR_ENDPOINT" in env:  # the demo ran on Azurite: its data is under the home
        env |= dict(re.findall(r"^export (\w+)='?(.*?)'?$", run("azurite.sh", "start"), re.M))
    master = env.get("ML_PLATFORM_SPARK_MASTER", "")
    if master.startswith("spark://127.0.0.1:"):  # the cluster topology: its Spark cluster again
        env["ML_PLATFORM_SPARK_MASTER_PORT"] = master.rsplit(":", 1)[1]
        run("spark_cluster.sh", "start")
    run("airflow_up.sh")
    run("mlflow_ui.sh")
    return env


def record_outcome(name: str, **figures: object) -> None:
    """What a fault test measured, as `test-results/faults/<name>.json` (the closing notes and the
    README's guarantees table quote these files)."""
    import json

    folder = Path(__file__).resolve().parents[1] / "test-results" / "faults"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(figures, indent=1, sort_keys=True, default=str) + "\n")


def brute_force_pit(entity, feats, ttl):
    """The point-in-time join by its definition, row by row: entity rows (key, ts, tag), feature
    rows (key, fts, tiebreak, value) -> sorted (tag, value or None)."""
    out = []
    for k, ts, tag in entity:
        best = None
        for fk, fts, tb, v in feats:
            if k is None or ts is None or fk != k or fts > ts:
                continue
            if best is None or (fts, tb) > (best[0], best[1]):
                best = (fts, tb, v)
        if best is not None and ttl is not None and ts - best[0] > ttl:
            best = None
        out.append((tag, None if best is None else best[2]))
    return sorted(out, key=lambda r: (r[0], -1 if r[1] is None else r[1]))
