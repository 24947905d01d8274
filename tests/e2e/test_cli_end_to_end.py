"""The benchmarks at smoke size (the CLI as a user runs it: tests/e2e/test_installed_package.py)."""

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


def test_plane_benchmark_smoke_ways_agree():
    """benchmarks/plane_ingest.py: the embedded data plane and the bare DuckDB floor write the same
    silver and quarantine row counts (exit 1 if not)."""
    r = _run([sys.executable, str(ROOT / "benchmarks" / "plane_ingest.py"), "--smoke"], dict(os.environ))
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    platform, floor = result["platform, embedded engine"], result["bare DuckDB (floor)"]
    assert (platform["silver"], platform["quarantined"]) == (floor["silver"], floor["quarantined"])
    assert platform["silver"] > 0 and platform["quarantined"] > 0


def test_delta_log_benchmark_smoke_reads_the_same_state_from_fewer_files():
    """benchmarks/delta_log_read.py: with the writer's checkpoints a read opens at most ten log files
    and sees the state a full replay sees (exit 1 if not), also from Azurite, where it makes fewer
    requests than the log has commits."""
    r = _run([sys.executable, str(ROOT / "benchmarks" / "delta_log_read.py"), "--smoke", "--azurite"], dict(os.environ))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    files = [int(ln.split()[-4]) for ln in r.stdout.splitlines() if "log files read" in ln]
    assert files[0] <= 10 < files[1] == 30, r.stdout
    requests = [int(ln.split()[-7]) for ln in r.stdout.splitlines() if "requests to Azurite" in ln]
    assert len(requests) == 2 and requests[0] < 30 <= requests[1], r.stdout


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


def test_serving_image_benchmark_smoke():
    """The serving lock installs on its own and has none of pyspark, torch or airflow (exit 1 if it had)."""
    r = _run([sys.executable, str(ROOT / "benchmarks" / "serving_image.py"), "--smoke"], dict(os.environ))
    assert r.returncode == 0, r.stderr[-3000:]
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("serving lock (now)"))
    assert row.split()[-1] == "none" and 50 < int(row.split()[-2]) < 200
