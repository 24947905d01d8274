"""Shared fixtures. Every test must carry exactly one tier marker (unit, spark, dags,
integration, e2e, cluster, ui, azure, faults, streaming); an unmarked test is a collection error.

The whole test session runs under a private platform home (and Airflow home) in a temporary
folder, so a running demo and a test run never share files or ports.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.interrupt import pytest_configure  # noqa: F401  (SIGTERM tears the fixtures down)

ROOT = Path(__file__).resolve().parents[1]
TIERS = ("unit", "spark", "dags", "integration", "e2e", "cluster", "ui", "azure", "faults", "streaming")

# Before anything imports airflow or reads settings: a private home for this test session.
_HOME = Path(tempfile.mkdtemp(prefix="ml-platform-test-"))
os.environ["ML_PLATFORM_HOME"] = str(_HOME)
os.environ["TZ"] = "UTC"  # Python-side datetimes from Spark are in the process's local zone
time.tzset()
os.environ["AIRFLOW_HOME"] = str(_HOME / "airflow")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# a demo's service on the default port must not answer the tests (serving_deploy's confirm_serving)
os.environ["ML_PLATFORM_SERVING_PORT"] = str(_free_port())
os.environ.setdefault("ML_PLATFORM_SPARK_SHUFFLE_PARTITIONS", "2")
os.environ.pop("ML_PLATFORM_LAKE_URI", None)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("AIRFLOW_CONN_SPARK_DEFAULT", '{"conn_type": "spark", "host": "local[2]"}')
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
for _folder in ("plugins", "scripts"):  # Airflow's plugins; the demo's script modules (week_report)
    if str(ROOT / _folder) not in sys.path:
        sys.path.insert(0, str(ROOT / _folder))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    bad = [item.nodeid for item in items if sum(1 for t in TIERS if item.get_closest_marker(t)) != 1]
    if bad:
        raise pytest.UsageError(
            "tests without exactly one tier marker (" + ", ".join(TIERS) + "):\n  " + "\n  ".join(bad)
        )


@pytest.fixture(autouse=True)
def _parity_runs(request: pytest.FixtureRequest):
    """A test marked `parity(<operation>, ...)` must run each named engine operation on every engine
    (`ml_platform.engines`): the calls are recorded while it runs, and a pair it never ran fails
    it. tests/unit/test_engines.py holds every operation to have such a test."""
    marker = request.node.get_closest_marker("parity")
    if marker is None:
        yield
        return
    import functools
    import importlib

    from ml_platform.engines import ENGINES, OPERATIONS

    ran: set[tuple[str, str]] = set()
    saved = []
    for name in marker.args:
        importlib.import_module("ml_platform." + name.rsplit(".", 1)[0])
        op = OPERATIONS[name]
        for engine in ENGINES:
            impl = op.registry[engine]

            @functools.wraps(impl)
            def recorded(*args, _impl=impl, _key=(name, engine.name), **kwargs):
                ran.add(_key)
                return _impl(*args, **kwargs)

            saved.append((op, engine, impl))
            op.register(engine, recorded)
    try:
        yield
    finally:
        for op, engine, impl in saved:
            op.register(engine, impl)
    missing = sorted({(n, e.name) for n in marker.args for e in ENGINES} - ran)
    assert not missing, f"a parity test that never ran these operations on these engines: {missing}"


@pytest.fixture(scope="session")
def platform_home() -> Path:
    return _HOME


@pytest.fixture()
def settings(tmp_path: Path):
    """Settings with a lake of the test's own (same Spark session, separate tables)."""
    from ml_platform.config import Settings

    return Settings(home=tmp_path / "home")


@pytest.fixture(scope="session")
def spark():
    """The one SparkSession of the test session (Delta, UTC, 2 shuffle partitions, no UI): a
    classic one even when ML_PLATFORM_SPARK_REMOTE is set (the e2e tier's demo covers Connect)."""
    from ml_platform.config import get_settings
    from ml_platform.lake import get_spark

    get_settings.cache_clear()
    session = get_spark("tests", extra_conf={"spark.master": "local[2]"}, classic=True)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """An initialised Airflow metadata database (SQLite under the test home)."""
    env = {**os.environ}
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return Path(os.environ["AIRFLOW_HOME"])


#: The data and cutoffs of the shared trained model: 6 000 customers over 110 days, weekly
#: cutoffs with a 14-day churn window, walk-forward (train cutoffs' windows close by the test cutoff).
TRAINED_MODEL_ARGS = [
    "--train-cutoffs",
    "2025-03-02,2025-03-09,2025-03-16",
    "--test-cutoff",
    "2025-03-30",
    "--horizon-days",
    "14",
    "--trials",
    "6",
    "--families",
    "xgboost,logreg",
    "--seed",
    "0",
]


def user_files(out: Path, customers: int = 6000, seed: int = 5) -> tuple[Path, Path]:
    """A user's transaction log as ONE CSV file (and a customers CSV), from the generator."""
    from datetime import date

    from ml_platform.data.generator import GeneratorSpec, write_landing

    landing = out / "landing"
    write_landing(
        GeneratorSpec(customers=customers, start=date(2025, 1, 1), end=date(2025, 4, 20), seed=seed), landing, "csv"
    )
    tx = out / "transactions.csv"
    with tx.open("w") as f:
        for i, day in enumerate(sorted((landing / "transactions").iterdir())):
            lines = (day / "transactions.csv").read_text().splitlines(keepends=True)
            f.writelines(lines if i == 0 else lines[1:])
    return tx, next((landing / "customers").glob("*/customers.csv"))


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """ONE model for the whole test session, trained the way a user would (`ml-platform backtest
    --json` on a CSV file, small data, 6 trials) in its own workspace. Later tiers (serving,
    batch scoring, promotion, monitoring) reuse it: `registry` is the MLflow tracking URI holding
    `churn_model@challenger`, `workspace` its platform home."""
    import fcntl

    shared = os.environ.get("ML_PLATFORM_TEST_SHARED")  # set by scripts/test.sh: one model for every tier
    root = Path(shared) / "trained-model" if shared else tmp_path_factory.mktemp("trained-model")
    # tiers in concurrent lanes (scripts/test.sh) may ask at once: one builds, the others wait for it
    with open(root.parent / "trained-model.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _trained_model(root)


def _trained_model(root: Path) -> dict:
    import json

    done = root / "result.json"
    if done.exists():
        out = json.loads(done.read_text())
        return {
            **out,
            "registry": out["mlflow_tracking_uri"],
            "workspace": root / "workspace",
            "stderr": (root / "stderr.txt").read_text(),
        }
    if root.exists():
        import shutil

        shutil.rmtree(root)  # a half-built one from an interrupted tier
    root.mkdir(parents=True, exist_ok=True)
    tx, customers = user_files(root)
    ws = root / "workspace"
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "ml-platform"),
            "backtest",
            "--transactions",
            str(tx),
            "--customers",
            str(customers),
            *TRAINED_MODEL_ARGS,
            "--workspace",
            str(ws),
            "--json",
        ],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout)  # stdout is the JSON alone
    (root / "stderr.txt").write_text(run.stderr)
    done.write_text(run.stdout)  # last: its presence means the model is complete
    return {**out, "registry": out["mlflow_tracking_uri"], "workspace": ws, "stderr": run.stderr}
