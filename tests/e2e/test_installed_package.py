"""The platform as a user installs it: the wheel in a fresh environment outside the checkout, run from
another folder with nothing of the checkout in reach (no PYTHONPATH, not on PATH, no setting pointing
into it): set-up, generate, ingest, validate, features and the feature-store commands, a small
training run, promotion, the service answering a prediction, and a Bento built from the installed
package's own files, then served from an environment of the serving lock alone (no Airflow, Spark,
JDK or torch) against an MLflow tracking server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).parent / "uv"  # the pinned uv scripts/bootstrap.sh links beside python


def _run(
    args: list, env: dict[str, str], cwd: Path, timeout: int = 900, ok: bool = True
) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if ok:
        assert r.returncode == 0, f"{[str(a) for a in args[:3]]}: {r.stderr[-3000:]}"
    return r


def _venv(where: Path, lock: Path, wheel: Path | None, env: dict[str, str]) -> Path:
    _run([UV, "venv", "-q", "--python", "3.11", where], env, where.parent)
    py = where / "bin" / "python"
    _run([UV, "pip", "install", "-q", "--python", py, "--require-hashes", "-r", lock], env, where.parent)
    if wheel:
        _run([UV, "pip", "install", "-q", "--python", py, "--no-deps", wheel], env, where.parent)
    return py


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline, last = time.monotonic() + timeout, ""
    while True:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5):
                return  # 200: a champion loaded, the online store answers
        except urllib.error.HTTPError as e:
            last = e.read().decode(errors="replace")  # 503 names what is missing
        except OSError as e:
            last = str(e)
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, last
        time.sleep(1)


def _predict(url: str, key: str) -> dict:
    req = urllib.request.Request(
        f"{url}/predict?explain=true",
        data=json.dumps({"customer_ids": [key, "nobody"]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def _serve(args: list, env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            [str(a) for a in args], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, 15)
    proc.wait(timeout=60)


@pytest.mark.timeout(1800)
def test_the_installed_wheel_runs_the_cli_outside_the_checkout(tmp_path):
    from ml_platform.lake.reader import read_pandas
    from ml_platform.serving.bento import free_port

    build_env = {k: v for k, v in os.environ.items() if not k.startswith(("ML_PLATFORM_", "PYTHONPATH"))}
    dist = tmp_path / "dist"
    _run([UV, "build", "--wheel", "--out-dir", dist, ROOT], build_env, tmp_path)
    (wheel,) = dist.glob("ml_platform-*.whl")
    py = _venv(tmp_path / "venv", ROOT / "requirements.txt", wheel, build_env)

    work = tmp_path / "elsewhere"
    work.mkdir()
    home = work / "home"
    env = {
        "HOME": os.environ["HOME"],
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "JAVA_HOME": os.environ["JAVA_HOME"],
        "TZ": "UTC",
        "ML_PLATFORM_HOME": str(home),
        "ML_PLATFORM_SERVING_PORT": str(free_port()),
        "ML_PLATFORM_SNAPSHOT_CADENCE": "weekly",
        "ML_PLATFORM_SPARK_SHUFFLE_PARTITIONS": "2",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "BENTOML_DO_NOT_TRACK": "true",
        **({"XDG_CACHE_HOME": os.environ["XDG_CACHE_HOME"]} if "XDG_CACHE_HOME" in os.environ else {}),
    }
    where = _run([py, "-c", "import ml_platform; print(ml_platform.__file__)"], env, work).stdout.strip()
    assert where.startswith(str(tmp_path / "venv")) and str(ROOT) not in where, where
    mlp = tmp_path / "venv" / "bin" / "ml-platform"

    setup = json.loads(_run([mlp, "setup"], env, work).stdout)  # the jars make setup fetched: same cache folder
    assert any(j.startswith("delta-spark_") for j in setup["jars"])
    assert not setup["spark_jars_dir"].startswith(str(ROOT))

    gen = [mlp, "data", "generate", "--customers", "800", "--start", "2025-01-01", "--end", "2025-01-21"]
    generated = json.loads(_run([*gen, "--seed", "9", "--out", work / "incoming"], env, work).stdout)
    assert generated["files"] == 21
    ingest = [mlp, "ingest", "--transactions", work / "incoming" / "transactions"]
    ingested = json.loads(
        _run([*ingest, "--customers", work / "incoming" / "customers", "--ingest-date", "2025-01-21"], env, work).stdout
    )
    assert ingested["transactions"]["files"] == 21 and ingested["transactions"]["rows"] > 0
    assert ingested["next"] == "ml-platform validate --start 2025-01-21 --end 2025-01-21"
    gate = json.loads(_run([mlp, "validate", "--start", "2025-01-21", "--end", "2025-01-21"], env, work).stdout)
    assert gate.get("success") is True and "skipped" not in gate, gate
    built = _run([mlp, "features", "build", "--start", "2025-01-01", "--end", "2025-01-21"], env, work)
    assert json.loads(built.stdout)["snapshot_dates"] == ["2025-01-04", "2025-01-11", "2025-01-18"]
    tables = json.loads(_run([mlp, "tables"], env, work).stdout)
    assert gate["rows_in"] == ingested["transactions"]["rows"] and gate["quarantined"] > 0
    assert tables["quarantine.transactions"]["rows"] == gate["quarantined"]
    assert tables["silver.transactions"]["rows"] == gate["rows_validated"] - gate["quarantined"]
    assert tables["features.customer_features"]["rows"] > 0

    _feature_store_commands(mlp, env, work, read_pandas)
    train = [mlp, "train", "--horizon-days", "3", "--trials", "3", "--families", "logreg,xgboost"]
    tr = _run(train, env, work)
    out = json.loads(tr.stdout)  # stdout is the JSON alone (MLflow prints go to stderr)
    assert out["model"] == "churn_model@challenger" and out["version"] == "1" and "HPO trials" in tr.stderr
    assert out["test"]["rows"] > 0 and 0.0 <= out["test"]["roc_auc"] <= 1.0
    # the first challenger of a tiny data set: the package is under test here, not the model's quality
    floors = '{"floor_auc": 0, "floor_max_ece": 1, "floor_max_fairness_gap": 1}'
    promoted = json.loads(_run([mlp, "registry", "promote", "--policy", floors, "--json"], env, work).stdout)
    assert promoted["decision"]["promote"] is True, promoted
    key = _run([mlp, "features", "keys", "features.customer_features", "--limit", "1"], env, work).stdout.strip()

    url = f"http://127.0.0.1:{env['ML_PLATFORM_SERVING_PORT']}"
    serve = _serve([mlp, "serve"], env, work, work / "serve.log")
    try:
        _wait_ready(url, serve, work / "serve.log")
        full = _predict(url, key)
    finally:
        _stop(serve)
    assert [p["found"] for p in full["predictions"]] == [True, False], full
    assert full["predictions"][0]["model_version"] == "1" and full["predictions"][0]["explanation"], full

    bento = json.loads(_run([mlp, "bento", "build", "--model-version", "1"], env, work).stdout)
    assert bento["tag"].startswith("churn_service:"), bento
    _slim_bento_serves_the_same(bento["tag"], key, full, env, build_env, work, tmp_path)
    for log in ("serve.log", "bento.log", "mlflow.log"):
        assert str(ROOT) not in (work / log).read_text(), log
    shutil.rmtree(tmp_path / "venv")  # 2 GB of hard links


def _slim_bento_serves_the_same(
    tag: str, key: str, full: dict, env: dict, build_env: dict, work: Path, tmp_path: Path
) -> None:
    """The Bento served from a venv of requirements-serving.txt only (its code comes from the Bento), the
    model from an MLflow tracking server over HTTP: the same answer as the full environment's service."""
    from ml_platform.serving.bento import free_port

    slim = _venv(tmp_path / "slim", ROOT / "requirements-serving.txt", None, build_env)
    missing = "import importlib.util as u; print([m for m in ('pyspark','airflow','torch','optuna') if u.find_spec(m)])"
    assert _run([slim, "-c", missing], env, work).stdout.strip() == "[]"
    home = Path(env["ML_PLATFORM_HOME"])
    port = free_port()
    mlflow_server = _serve(
        [tmp_path / "venv" / "bin" / "mlflow", "server", "--host", "127.0.0.1", "--port", port, "--workers", "1"]
        + ["--backend-store-uri", f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"],
        env,
        work,
        work / "mlflow.log",
    )
    sport = free_port()
    slim_env = {
        **env,
        "ML_PLATFORM_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}",
        "BENTOML_HOME": str(home / "bentoml"),
    }
    served = _serve(
        [tmp_path / "slim" / "bin" / "bentoml", "serve", tag, "--host", "127.0.0.1", "--port", sport],
        slim_env,
        work,
        work / "bento.log",
    )
    try:
        _wait_ready(f"http://127.0.0.1:{sport}", served, work / "bento.log")
        slim_answer = _predict(f"http://127.0.0.1:{sport}", key)
    finally:
        _stop(served)
        _stop(mlflow_server)
    for a, b in zip(slim_answer["predictions"], full["predictions"], strict=True):
        assert {k: v for k, v in a.items() if k != "explanation"} == {k: v for k, v in b.items() if k != "explanation"}
    assert slim_answer["predictions"][0]["explanation"] == full["predictions"][0]["explanation"]
    shutil.rmtree(tmp_path / "slim")


def _feature_store_commands(mlp: Path, env: dict[str, str], work: Path, read_pandas) -> None:
    """The feature-store CLI on the data just built: registry, training set, online store in both backends."""
    listed = json.loads(_run([mlp, "features", "list"], env, work).stdout)
    assert [t["name"] for t in listed] == ["features.customer_features"] and listed[0]["features"] == 20
    ts = [mlp, "features", "training-set", "--cutoffs", "2025-01-04,2025-01-11", "--horizon-days", "7", "--id", "e2e"]
    tset = json.loads(_run(ts, env, work).stdout)
    assert tset["training_set_id"] == "e2e" and set(tset["per_cutoff"]) == {"2025-01-04", "2025-01-11"}
    assert all(c["without_features"] == 0 and 0 < c["churn_rate"] < 1 for c in tset["per_cutoff"].values())
    assert tset["lineage"]["features.customer_features"] >= 0
    late = [mlp, "features", "training-set", "--cutoffs", "2025-01-18", "--horizon-days", "7"]
    late = _run(late, env, work, ok=False)
    assert late.returncode == 2 and "not fully observed" in late.stderr and "Traceback" not in late.stderr

    feats = read_pandas(str(Path(env["ML_PLATFORM_HOME"]) / "lake" / "features" / "customer_features"))
    newest = feats[feats["snapshot_date"].astype(str) == "2025-01-18"].sort_values("customer_id").iloc[0]
    backends: dict[str, dict[str, str]] = {}
    if os.environ.get("ML_PLATFORM_TEST_REDIS_URL"):  # set by `make test`
        redis_url = os.environ["ML_PLATFORM_TEST_REDIS_URL"].replace("/0", "/3")
        backends["redis"] = {**env, "ML_PLATFORM_ONLINE_STORE": "redis", "ML_PLATFORM_REDIS_URL": redis_url}
    backends["sqlite"] = env  # last: the store the service reads
    for name, benv in backends.items():
        _run([mlp, "features", "publish", "features.customer_features"], benv, work)
        get = [mlp, "features", "get", "features.customer_features", newest["customer_id"], "nobody"]
        got = json.loads(_run(get, benv, work).stdout)
        assert got[0]["found"] and got[0]["feature_timestamp"].startswith("2025-01-19"), name
        assert got[0]["values"]["monetary_lifetime"] == newest["monetary_lifetime"], name
        assert got[1] == {"key": "nobody", "found": False, "feature_timestamp": None, "values": {}}
    skew = json.loads(_run([mlp, "features", "skew", "features.customer_features", "--sample", "20"], env, work).stdout)
    assert skew["mismatches"] == 0 and skew["engine"]["engine"] == "embedded", skew  # auto: no JVM
    desc = json.loads(_run([mlp, "features", "describe", "features.customer_features"], env, work).stdout)
    assert desc["latest_snapshot_date"] == "2025-01-18" and desc["online"]["published"] is True
