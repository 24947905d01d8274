"""The CLI as a user runs it (fresh processes, real Spark + Delta), and the benchmark at smoke size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(args: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


def test_generate_run_and_list_tables(tmp_path):
    env = {**os.environ, "ML_PLATFORM_HOME": str(tmp_path), "ML_PLATFORM_SNAPSHOT_CADENCE": "weekly"}
    gen = _run(
        [
            str(BIN / "ml-platform"),
            "data",
            "generate",
            "--customers",
            "800",
            "--start",
            "2025-01-01",
            "--end",
            "2025-01-21",
            "--seed",
            "9",
        ],
        env,
    )
    assert gen.returncode == 0, gen.stderr
    assert json.loads(gen.stdout)["files"] == 21
    run = _run([str(BIN / "ml-platform"), "run", "--start", "2025-01-01", "--end", "2025-01-21", "--publish"], env)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout)
    assert out["features"]["snapshot_dates"] == ["2025-01-04", "2025-01-11", "2025-01-18"]
    assert len(out["gates"]) == 3 and all(g["rows"] > 0 for g in out["gates"])
    assert "ingest + gate" in run.stderr  # progress is shown
    assert out["online"]["rows"] > 0 and out["online"]["skipped"] is False  # --publish: same JVM, newest snapshot
    tables = json.loads(_run([str(BIN / "ml-platform"), "tables"], env).stdout)
    assert tables["features.customer_features"]["rows"] == out["features"]["rows"] > 0
    assert tables["silver.transactions"]["rows"] > 0
    assert sum(g["quarantined"] for g in out["gates"]) == tables["quarantine.transactions"]["rows"]
    _feature_store_commands(env)


def _feature_store_commands(env: dict[str, str]) -> None:
    """The feature-store CLI on the data just built: registry, training set, online store in both backends."""
    from ml_platform.lake.reader import read_pandas

    mlp = str(BIN / "ml-platform")
    listed = json.loads(_run([mlp, "features", "list"], env).stdout)
    assert [t["name"] for t in listed] == ["features.customer_features"] and listed[0]["features"] == 20
    ts = _run(
        [mlp, "features", "training-set", "--cutoffs", "2025-01-04,2025-01-11", "--horizon-days", "7", "--id", "e2e"],
        env,
    )
    assert ts.returncode == 0, ts.stderr[-3000:]
    tset = json.loads(ts.stdout)
    assert tset["training_set_id"] == "e2e" and set(tset["per_cutoff"]) == {"2025-01-04", "2025-01-11"}
    assert all(c["without_features"] == 0 and 0 < c["churn_rate"] < 1 for c in tset["per_cutoff"].values())
    assert tset["lineage"]["features.customer_features"] >= 0
    late = _run([mlp, "features", "training-set", "--cutoffs", "2025-01-18", "--horizon-days", "7"], env)
    assert late.returncode == 2 and "not fully observed" in late.stderr and "Traceback" not in late.stderr

    feats = read_pandas(str(Path(env["ML_PLATFORM_HOME"]) / "lake" / "features" / "customer_features"))
    newest = feats[feats["snapshot_date"].astype(str) == "2025-01-18"].sort_values("customer_id").iloc[0]
    backends = {"sqlite": env}
    if os.environ.get("ML_PLATFORM_TEST_REDIS_URL"):  # set by `make test`
        backends["redis"] = {
            **env,
            "ML_PLATFORM_ONLINE_STORE": "redis",
            "ML_PLATFORM_REDIS_URL": os.environ["ML_PLATFORM_TEST_REDIS_URL"].replace("/0", "/3"),
        }
    for name, benv in backends.items():
        pub = _run([mlp, "features", "publish", "features.customer_features"], benv)
        assert pub.returncode == 0, pub.stderr[-2000:]
        got = json.loads(
            _run([mlp, "features", "get", "features.customer_features", newest["customer_id"], "nobody"], benv).stdout
        )
        assert got[0]["found"] and got[0]["feature_timestamp"].startswith("2025-01-19"), name
        assert got[0]["values"]["monetary_lifetime"] == newest["monetary_lifetime"], name
        assert got[1] == {"key": "nobody", "found": False, "feature_timestamp": None, "values": {}}
    skew = _run([mlp, "features", "skew", "features.customer_features", "--sample", "20"], env)
    assert skew.returncode == 0 and json.loads(skew.stdout)["mismatches"] == 0, skew.stderr[-2000:]
    desc = json.loads(_run([mlp, "features", "describe", "features.customer_features"], env).stdout)
    assert desc["latest_snapshot_date"] == "2025-01-18" and desc["online"]["published"] is True

    # training on the same lake: 3 weekly cutoffs with a 3-day label window (data ends 2025-01-21)
    tr = _run([mlp, "train", "--horizon-days", "3", "--trials", "3", "--families", "logreg,xgboost"], env)
    assert tr.returncode == 0, tr.stderr[-3000:]
    out = json.loads(tr.stdout)  # stdout is the JSON alone (MLflow prints go to stderr)
    assert out["model"] == "churn_model@challenger" and out["version"] == "1" and "HPO trials" in tr.stderr
    assert out["test"]["rows"] > 0 and 0.0 <= out["test"]["roc_auc"] <= 1.0


def test_plumbing_benchmark_smoke_outputs_agree():
    """benchmarks/plumbing.py: the hand-written AUC and encoder agree with scikit-learn/scipy (exit 1 if not)."""
    r = _run([sys.executable, str(ROOT / "benchmarks" / "plumbing.py"), "--smoke"], dict(os.environ))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "AUC values agree: True" in r.stdout


@pytest.mark.parametrize("script", ["feature_snapshot.py", "pit_join.py"])
def test_benchmark_smoke_outputs_agree(script):
    r = _run([sys.executable, str(ROOT / "benchmarks" / script), "--smoke"], dict(os.environ))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "outputs agree" in r.stdout and "spark/duckdb:" in r.stdout


def test_online_lookup_benchmark_smoke():
    args = [sys.executable, str(ROOT / "benchmarks" / "online_lookup.py"), "--smoke"]
    if os.environ.get("ML_PLATFORM_TEST_REDIS_URL"):
        args += ["--redis-url", os.environ["ML_PLATFORM_TEST_REDIS_URL"].replace("/0", "/4")]
    r = _run(args, dict(os.environ))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "sqlite" in r.stdout and "p99 ms" in r.stdout


def test_hpo_benchmark_smoke():
    r = _run([sys.executable, str(ROOT / "benchmarks" / "hpo.py"), "--smoke"], dict(os.environ))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2 workers vs 1:" in r.stdout and "bookkeeping: at most" in r.stdout and "peer (the machine)" in r.stdout
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith(("1w x 1t", "2w x 1t", "1w x 2t"))]
    assert len(rows) == 3 and all(int(ln.split()[3]) == 4 for ln in rows)  # every setting ran all 4 trials


def test_drift_benchmark_smoke():
    """Re-executes itself in the drift environment, finds the shifted column, prints both figures."""
    r = _run([sys.executable, str(ROOT / "benchmarks" / "drift.py"), "--smoke"], dict(os.environ))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "found the shifted column: True" in r.stdout and "floor: scipy ks_2samp" in r.stdout
    assert "goal <= 5 s detector time" in r.stdout


def test_serving_latency_benchmark_smoke():
    """Both servers answer every request at the smoke rate, and the table and ratio are printed."""
    r = _run([sys.executable, str(ROOT / "benchmarks" / "serving_latency.py"), "--smoke"], dict(os.environ))
    assert r.returncode == 0, r.stderr[-3000:]
    rows = {
        ln.split()[0]: ln.split()
        for ln in r.stdout.splitlines()
        if ln.startswith(("bentoml service", "bare starlette app"))
    }
    assert set(rows) == {"bentoml", "bare"} and all(v[-2] == "0" for v in rows.values())  # no errors
    assert "service p99 / bare app p99 =" in r.stdout and "model call alone" in r.stdout
