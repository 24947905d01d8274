"""`make demo QUICK=1 LAKE=azurite` end to end, as a user runs it: Airflow's components, the
BentoML service, Spark + Delta on an Azure Storage lake (Azurite), an MLflow tracking server on
PostgreSQL with its artifacts in a Blob container, in a fresh platform home. The loop must close:
drift -> the policy's retrain decision -> exactly one asset-triggered training run -> the gate
decides on it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import demo_home, run_quick_demo

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(2700)  # about 8 minutes on 2 cores, 13 to 24 with a JVM per Spark job (README "The quick demo")
def test_quick_demo_closes_the_loop(tmp_path):
    # in the folder the tiers share, the ui tier then opens what this demo produced
    home = demo_home() or tmp_path / "platform"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    rc, out = run_quick_demo(home, home.parent / "demo.log", int(os.environ["ML_PLATFORM_SERVING_PORT"]))
    assert rc == 0, out[-6000:]
    assert "8/8 monitoring loop: 4 weeks" in out and "Demo took" in out
    weeks = json.loads((home / "reports" / "monitoring_weeks.json").read_text())
    assert [w["week_end"] for w in weeks] == ["2025-03-29", "2025-04-05", "2025-04-12", "2025-04-19"]
    assert (home / "reports" / "monitoring_weeks.png").stat().st_size > 10_000
    assert all(w["served_drifted"] is not None for w in weeks)  # every week compared served features
    retrains = [w for w in weeks if w["retrain"]]
    assert retrains, [w["decision"] for w in weeks]
    for w in retrains:  # each decision ran exactly one training, and the gate decided on its challenger
        assert w["training"] == "success" and w["gate"].split()[0] in ("promote", "reject"), w
    # the service answers with the champion the gate left: the last promoted retrain, else v1
    promoted = [w["gate"].split()[1].rstrip(":") for w in retrains if w["gate"].startswith("promote")]
    answer = next((line for line in out.splitlines() if line.startswith("  the service now answers: ")), "")
    expected = (promoted[-1] if promoted else "v1").removeprefix("v")
    assert f'"model_version":"{expected}"' in answer and '"found":true' in answer, out[-3000:]
    # exactly one training run per decision, started by the retrain_requested asset
    import sqlite3

    with sqlite3.connect(home / "airflow" / "airflow.db") as db:
        runs = dict(db.execute("select run_type, count(*) from dag_run where dag_id = 'training' group by run_type"))
        weekly = db.execute("select count(*) from dag_run where dag_id = 'monitoring' and state = 'success'").fetchone()
    assert runs == {"scheduled": 1, "asset_triggered": len(retrains)}, runs
    assert weekly == (4,)
    # the decision reached the registry: the retrained version carries its decision_id
    import mlflow
    from mlflow import MlflowClient

    settings = dict(line.split("=", 1) for line in (home / "run" / "demo.env").read_text().splitlines())
    store = settings["ML_PLATFORM_MLFLOW_BACKEND_STORE"]  # the tracking server's own store (it is stopped)
    assert store.startswith("postgresql") or not os.environ.get("ML_PLATFORM_TEST_PG_URL"), store
    assert settings["ML_PLATFORM_MLFLOW_TRACKING_URI"].startswith("http://127.0.0.1:")
    mlflow.set_tracking_uri(store)
    tagged = [v for v in MlflowClient().search_model_versions("name='churn_model'") if v.tags.get("decision_id")]
    assert sorted(v.tags["decision_id"] for v in tagged) == sorted(w["decision_id"] for w in retrains)
    # nothing of the lake, the landing zone or the artifacts on local disk: all of it went to Azurite
    assert not any((home / p).exists() for p in ("lake", "landing", "mlflow/artifacts"))
    assert sum(f.stat().st_size for f in (home / "azurite").rglob("*") if f.is_file()) > 5_000_000
    runs_artifacts = {
        MlflowClient().get_run(v.run_id).info.artifact_uri.split(":")[0]
        for v in MlflowClient().search_model_versions("name='churn_model'")
    }
    assert runs_artifacts == {"mlflow-artifacts"}, runs_artifacts  # served by the tracking server from wasbs://
