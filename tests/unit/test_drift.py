"""Drift detection, run where it runs in production: in the drift environment (`.venv-drift`).

The checks execute in that interpreter (numpy<2, pandas<3, alibi-detect) and hand JSON back.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ml_platform.config import get_settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

CHECKS = r"""
import json
import numpy as np
import pandas as pd
from ml_platform.monitoring.drift import detect_drift, psi

out = {}
feats = [f"x{i}" for i in range(5)]
n = 5000
rng = np.random.default_rng(0)
ref = pd.DataFrame(rng.normal(size=(n, 5)), columns=feats)
cur = pd.DataFrame(rng.normal(size=(n, 5)), columns=feats)
cur["x0"] += 0.5  # half a standard deviation
r = detect_drift(ref, cur, feats)
out["shift"] = r.to_dict()

fired = 0
for seed in range(100):
    g = np.random.default_rng(1000 + seed)
    a = pd.DataFrame(g.normal(size=(n, 5)), columns=feats)
    b = pd.DataFrame(g.normal(size=(n, 5)), columns=feats)
    fired += bool(detect_drift(a, b, feats).drifted)
out["null_trials_fired"] = fired

# big sample, tiny shift: significant, but not drift
big_ref = pd.DataFrame({"x": rng.normal(size=400_000)})
big_cur = pd.DataFrame({"x": rng.normal(size=400_000) + 0.03})
out["tiny"] = detect_drift(big_ref, big_cur, ["x"], max_rows=400_000).to_dict()

# a categorical shift and a change in the share of missing values; sampling beyond max_rows
ref["plan"] = rng.choice(["basic", "pro", "family"], n)
cur["plan"] = rng.choice(["basic", "pro", "family"], n, p=[0.6, 0.3, 0.1])
cur.loc[: n // 2, "x1"] = np.nan
out["mixed"] = detect_drift(ref, cur, feats + ["plan"], ["plan"], max_rows=2000).to_dict()
out["psi_same"] = psi(np.arange(1000.0), np.arange(1000.0))
try:
    detect_drift(ref, cur, ["x0", "nope"])
except ValueError as e:
    out["missing_error"] = str(e)
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def results() -> dict:
    python = get_settings().drift_python
    assert python.exists(), f"{python} is missing: run `make setup`"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include")}  # this checkout's code in the drift env
    run = subprocess.run([str(python), "-c", CHECKS], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    line = next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def test_a_half_sigma_shift_on_5k_rows_is_detected_on_that_feature_only(results):
    r = results["shift"]
    assert r["drifted"] == ["x0"] and r["detector"].startswith("alibi-detect TabularDrift")
    x0 = r["features"][0]
    assert x0["significant"] and x0["p_value"] < 1e-6 and x0["psi"] > 0.15 and 0.15 < x0["statistic"] < 0.25
    assert r["n_reference"] == r["reference_rows"] == 5000


def test_two_samples_of_one_distribution_rarely_fire(results):
    assert results["null_trials_fired"] <= 5  # does not fire in >= 95 of 100 seeded trials


def test_a_significant_but_tiny_shift_on_a_big_sample_is_not_drift(results):
    x = results["tiny"]["features"][0]
    assert x["significant"] and x["psi"] < 0.01 and not x["drifted"]


def test_categories_missing_values_and_sampling(results):
    m = results["mixed"]
    assert set(m["drifted"]) == {"x0", "x1", "plan"}, m["drifted"]
    by = {f["feature"]: f for f in m["features"]}
    assert by["plan"]["kind"] == "categorical" and by["x1"]["cur_null_share"] > 0.45
    assert m["n_reference"] == m["n_current"] == 2000 and m["reference_rows"] == 5000
    assert results["psi_same"] == pytest.approx(0.0, abs=1e-9)
    assert "['nope']" in results["missing_error"]
