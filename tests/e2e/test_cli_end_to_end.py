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
    gen = _run([str(BIN / "ml-platform"), "data", "generate", "--customers", "800", "--start", "2025-01-01",
                "--end", "2025-01-21", "--seed", "9"], env)
    assert gen.returncode == 0, gen.stderr
    assert json.loads(gen.stdout)["files"] == 21
    run = _run([str(BIN / "ml-platform"), "run", "--start", "2025-01-01", "--end", "2025-01-21"], env)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout)
    assert out["features"]["snapshot_dates"] == ["2025-01-04", "2025-01-11", "2025-01-18"]
    assert len(out["gates"]) == 3 and all(g["rows"] > 0 for g in out["gates"])
    assert "ingest + gate" in run.stderr  # progress is shown
    tables = json.loads(_run([str(BIN / "ml-platform"), "tables"], env).stdout)
    assert tables["features.customer_features"]["rows"] == out["features"]["rows"] > 0
    assert tables["silver.transactions"]["rows"] > 0
    assert sum(g["quarantined"] for g in out["gates"]) == tables["quarantine.transactions"]["rows"]


def test_benchmark_smoke_outputs_agree():
    r = _run([sys.executable, str(ROOT / "benchmarks" / "feature_snapshot.py"), "--smoke"], dict(os.environ))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "outputs agree" in r.stdout and "spark/duckdb:" in r.stdout
