"""One drift window end to end in the drift environment: Delta in, Delta + HTML out, rerun replaces."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from ml_platform.config import Settings, get_settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ["tenure_days", "monetary_90d", "plan"]


def _lake(tmp_path: Path) -> dict:
    import pyarrow as pa
    from deltalake import write_deltalake

    from ml_platform.lake.paths import table_path
    from ml_platform.serving.spool import PredictionSpool, load_spool

    s = Settings(home=tmp_path)
    rng = np.random.default_rng(3)
    n = 3000
    ref = {
        "customer_id": [f"C{i}" for i in range(n)],
        "tenure_days": rng.normal(300, 50, n),
        "monetary_90d": rng.gamma(2, 50, n),
        "plan": rng.choice(["basic", "pro"], n).tolist(),
        "training_set_id": ["ts1"] * n,
    }
    write_deltalake(table_path("ml.training_sets", s), pa.table(ref), partition_by=["training_set_id"])
    spool = PredictionSpool(tmp_path / "spool")
    for i in range(800):  # served in the window: tenure shifted up by one standard deviation
        feats = {
            "tenure_days": float(rng.normal(350, 50)),
            "monetary_90d": float(rng.gamma(2, 50)),
            "plan": str(rng.choice(["basic", "pro"])),
        }
        spool.append(
            [
                {
                    "prediction_id": f"r{i}:0:champion",
                    "request_id": f"r{i}",
                    "event_time": "2026-11-26T10:00:00+00:00",
                    "customer_id": f"C{i}",
                    "model_name": "churn_model",
                    "model_version": "2",
                    "variant": "champion",
                    "returned": True,
                    "churn_probability": 0.3,
                    "feature_timestamp": "2025-03-05T00:00:00+00:00",
                    "features_json": json.dumps(feats),
                }
            ]
        )
    spool.close()
    load_spool(tmp_path / "spool", s)
    for d, shift in ((date(2025, 3, 1), 0.0), (date(2025, 3, 15), 500.0)):  # the later one is after the window
        snap = {
            "customer_id": [f"C{i}" for i in range(n)],
            "tenure_days": rng.normal(300 + shift, 50, n),
            "monetary_90d": rng.gamma(2, 50, n),
            "plan": rng.choice(["basic", "pro"], n).tolist(),
            "snapshot_date": [d] * n,
        }
        write_deltalake(
            table_path("features.customer_features", s), pa.table(snap), partition_by=["snapshot_date"], mode="append"
        )
    return {
        "window_end": "2025-03-08",
        "days": 7,
        "model_version": "2",
        "training_set_id": "ts1",
        "features": FEATURES,
        "categorical": ["plan"],
        "reference_table": table_path("ml.training_sets", s),
        "log_table": table_path("monitoring.prediction_log", s),
        "features_table": table_path("features.customer_features", s),
        "reports_table": table_path("monitoring.drift_reports", s),
        "report_dir": str(tmp_path / "reports"),
        "q_value": 0.05,
        "effect_threshold": 0.1,
        "max_rows": 100_000,
        "seed": 0,
    }


def _run(*specs: dict) -> list[dict]:
    """The specs one after another in ONE drift-environment process (each run_window reads what the
    one before wrote); the reports table is read back after each, from this side."""
    code = (
        "import json, sys\nfrom ml_platform.lake.reader import read_pandas\n"
        "from ml_platform.monitoring.drift_run import run_window\nout = []\n"
        "for spec in json.loads(sys.argv[1]):\n"
        "    r = run_window(spec)\n"
        "    out.append(r | {'table_rows': len(read_pandas(spec['reports_table']))})\n"
        "print('RESULT ' + json.dumps(out))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include")}
    r = subprocess.run(
        [str(get_settings().drift_python), "-c", code, json.dumps(list(specs))],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, (r.returncode, r.stderr[-3000:])  # 134 would be delta-rs aborting at exit
    return json.loads(next(x for x in r.stdout.splitlines() if x.startswith("RESULT "))[7:])


def test_a_window_is_detected_recorded_and_reported_and_a_rerun_replaces_it(tmp_path):
    from ml_platform.lake.reader import read_pandas

    spec = _lake(tmp_path)
    out, again, later = _run(spec, spec, {**spec, "window_end": "2025-03-15"})
    assert out["sources"]["served"]["drifted"] == ["tenure_days"] and out["sources"]["served"]["n_current"] == 800
    assert out["sources"]["batch"]["drifted"] == []  # the 03-01 snapshot; the shifted 03-15 one is after the window
    report = Path(out["report"])
    text = report.read_text()
    assert report.name == "drift-2025-03-08.html" and text.count("data:image/png;base64,") == 6
    assert "training set <code>ts1</code>" in text and "tenure_days" in text
    assert out["table_rows"] == out["rows_written"] == 6
    # the same window again: its rows are replaced, not added; a later window adds its own
    assert again["sources"] == out["sources"] and again["table_rows"] == 6
    assert later["sources"]["batch"]["drifted"] == ["tenure_days"] and "served" not in later["sources"]
    rows = read_pandas(spec["reports_table"])
    assert later["table_rows"] == len(rows) == 9 and set(rows["source"]) == {"served", "batch"}
    psi = rows[rows.window_end.astype(str) == "2025-03-08"].set_index(["source", "feature"])["psi"]
    assert psi["served", "tenure_days"] > 0.1 > psi["batch", "tenure_days"]


def test_prediction_drift_compares_served_and_batch_scores_with_the_training_sets_scores(tmp_path):
    import pandas as pd
    import pyarrow as pa
    from deltalake import write_deltalake

    spec = _lake(tmp_path)  # every served prediction returned 0.3
    rng = np.random.default_rng(4)
    ref_scores = tmp_path / "reference-scores.parquet"
    pd.DataFrame({"score": rng.beta(2, 5, 3000)}).to_parquet(ref_scores)
    scores_table = str(tmp_path / "gold_scores")
    write_deltalake(
        scores_table,
        pa.table(
            {
                "customer_id": [f"C{i}" for i in range(2000)],
                "churn_probability": rng.beta(2, 5, 2000),
                "score_date": [date(2025, 3, 1)] * 2000,
            }
        ),
        partition_by=["score_date"],
    )
    (out,) = _run({**spec, "reference_scores": str(ref_scores), "scores_table": scores_table})
    assert "score" in out["sources"]["served"]["drifted"]  # a constant 0.3 is not the training-time spread
    assert "score" not in out["sources"]["batch"]["drifted"]  # the same distribution
    assert out["rows_written"] == 8  # 3 features + the score, per source


def test_a_window_compared_with_an_earlier_snapshot_drifts_only_past_its_calibrated_threshold(tmp_path):
    import pyarrow as pa
    from deltalake import write_deltalake

    from ml_platform.lake.reader import read_pandas

    spec = _lake(tmp_path)
    # a reports table of the release before: no threshold or importance column
    old = {"window_end": [date(2025, 3, 1)], "source": ["batch"], "feature": ["plan"], "psi": [0.0], "drifted": [False]}
    write_deltalake(spec["reports_table"], pa.table(old))
    base = {
        **spec,
        "reference_snapshot": "2025-03-01",
        "importance": {"tenure_days": 0.0, "monetary_90d": 3.0, "plan": 1.0},
    }
    loose, tight = _run(
        {**base, "thresholds": {"tenure_days": 0.1}},  # served tenure moved 1 sd from the 03-01 snapshot
        {**base, "thresholds": {"tenure_days": 5.0}},  # ... less than this feature's calibrated movement
    )
    assert loose["sources"]["served"]["drifted"] == ["tenure_days"]
    assert loose["sources"]["served"]["important_drift"] == 0.0  # the model ignores tenure here
    assert tight["sources"]["served"]["drifted"] == []
    assert "feature snapshot 2025-03-01" in Path(tight["report"]).read_text()
    rows = read_pandas(spec["reports_table"])
    now = rows[rows.window_end.astype(str) == "2025-03-08"].set_index(["source", "feature"])
    assert now.loc[("served", "tenure_days"), "threshold"] == 5.0 and now.loc[("served", "plan"), "threshold"] == 0.1
    assert now.loc[("served", "monetary_90d"), "importance"] == 0.75
    assert rows[rows.window_end.astype(str) == "2025-03-01"]["threshold"].isna().all()  # the old row kept, null


def test_drifted_features_the_champion_ignores_do_not_count_toward_a_retrain():
    import pandas as pd

    from ml_platform.monitoring.weekly import _counted

    rows = pd.DataFrame(
        {
            "feature": ["tenure_days", "monetary_90d", "score", "plan", "old"],
            "drifted": [True, True, True, False, True],
            "importance": [0.001, 0.4, None, 0.5, float("nan")],
        }
    )
    assert _counted(rows, 0.01) == ("monetary_90d", "old", "score")
    assert _counted(rows.drop(columns="importance"), 0.01) == ("monetary_90d", "old", "score", "tenure_days")


def test_calibration_takes_snapshots_a_week_apart_whatever_the_cadence():
    from datetime import date, timedelta

    from ml_platform.monitoring.weekly import weekly_snapshots

    weekly = [(date(2025, 1, 5) + timedelta(weeks=k)).isoformat() for k in range(10)]
    assert weekly_snapshots(weekly, 6) == weekly[-6:]
    daily = [(date(2025, 1, 1) + timedelta(days=k)).isoformat() for k in range(60)]  # .. 2025-03-01
    picked = weekly_snapshots(daily, 6)
    assert picked[-1] == "2025-03-01" and len(picked) == 6
    gaps = {(date.fromisoformat(b) - date.fromisoformat(a)).days for a, b in zip(picked, picked[1:])}
    assert gaps == {7}  # a lag of 4 is 4 weeks, not 4 days
    assert weekly_snapshots(daily[:10], 6) == ["2025-01-03", "2025-01-10"]  # fewer when the history is short
