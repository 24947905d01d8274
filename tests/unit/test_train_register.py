"""HPO -> fit -> metrics -> MLflow registration as @challenger, on a small synthetic training frame."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.unit


def _frame(n_per_cutoff: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    parts = []
    for i in range(4):
        x = rng.normal(size=(n_per_cutoff, 3))
        y = (rng.random(n_per_cutoff) < 1 / (1 + np.exp(-(1.2 * x[:, 0] - 0.8 * x[:, 1])))).astype(int)
        parts.append(
            pd.DataFrame(
                {
                    "customer_id": [f"C{j}" for j in range(n_per_cutoff)],
                    "cutoff_date": date(2025, 1, 4) + timedelta(days=7 * i),
                    "recency_days": x[:, 0],
                    "frequency_90d": np.round(x[:, 1] * 3 + 5),
                    "monetary_90d": x[:, 2],
                    "churned": y,
                    "gender": rng.choice(["f", "m", None], n_per_cutoff),
                }
            )
        )
    df = pd.concat(parts, ignore_index=True)
    df.loc[df.index % 7 == 0, "monetary_90d"] = np.nan
    return df


def test_train_registers_challenger_with_lineage(tmp_path):
    import mlflow
    from mlflow import MlflowClient

    from ml_platform.config import Settings
    from ml_platform.training.hpo import Study
    from ml_platform.training.train import train_and_register

    s = Settings(home=tmp_path)
    res = train_and_register(
        _frame(),
        ["recency_days", "frequency_90d", "monetary_90d"],
        Study(n_trials=4, families=["logreg", "xgboost"], seed=0),
        training_set_id="ts1",
        lineage={"features.customer_features": 3},
        study_name="study-1",
        settings=s,
    )
    assert res.version == "1" and res.family in ("logreg", "xgboost")
    assert 0.7 < res.test_metrics["roc_auc"] < 0.95
    client = MlflowClient()
    mv = client.get_model_version_by_alias("churn_model", "challenger")
    assert str(mv.version) == "1" and mv.tags["training_set_id"] == "ts1"
    assert mv.tags["lineage"] == '{"features.customer_features": 3}' and mv.tags["optuna.study"] == "study-1"
    trials = client.search_runs(
        [client.get_experiment_by_name("churn").experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{res.run_id}'",
    )
    assert len(trials) == 4
    model = mlflow.pyfunc.load_model("models:/churn_model@challenger")
    probs = model.predict(
        pd.DataFrame({"recency_days": [2.0, -2.0], "frequency_90d": [5.0, 5.0], "monetary_90d": [np.nan, 0.1]})
    )
    assert probs.dtype == np.float64 and probs.iloc[0] > probs.iloc[1]
    # the evaluation report and plots are files a person can open, and MLflow artifacts
    from pathlib import Path

    report = Path(res.report)
    assert report.exists() and "data:image/png;base64," in report.read_text()
    for name in ("roc", "precision_recall", "confusion_matrix", "calibration", "shap_summary", "shap_bar", "fairness"):
        assert (report.parent / f"{name}.png").stat().st_size > 1000
    arts = {a.path for a in client.list_artifacts(res.run_id, "evaluation")}
    assert {
        "evaluation/evaluation.html",
        "evaluation/roc.png",
        "evaluation/test_metrics.json",
        "evaluation/shap_importance.json",
        "evaluation/fairness.json",
    } <= arts
    import json

    fair = json.loads((report.parent / "fairness.json").read_text())["gender"]
    assert set(fair["by_group"]) == {"f", "m", "unknown"} and 0 <= fair["equalized_odds_difference"] <= 1


def test_two_worker_processes_share_one_study_and_log_every_trial(tmp_path):
    from mlflow import MlflowClient

    from ml_platform.config import Settings
    from ml_platform.training.hpo import Study, open_study, storage_for
    from ml_platform.training.train import train_and_register

    s = Settings(home=tmp_path)
    seen: list[tuple[int, int]] = []
    res = train_and_register(
        _frame(200),
        ["recency_days", "frequency_90d", "monetary_90d"],
        Study(n_trials=6, families=["logreg"], workers=2),
        training_set_id="ts2",
        lineage={},
        study_name="study-2",
        settings=s,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert len(open_study("study-2", storage_for(s.optuna_storage)).trials) == 6
    client = MlflowClient()
    trials = client.search_runs(
        [client.get_experiment_by_name("churn").experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{res.run_id}'",
    )
    assert len(trials) == 6 and all(t.info.status in ("FINISHED", "KILLED") for t in trials)
    assert seen and all(total == 6 for _, total in seen)  # progress counts the whole study


def test_a_categorical_feature_is_encoded_in_training_and_in_the_served_model(tmp_path):
    import mlflow

    from ml_platform.config import Settings
    from ml_platform.model.scoring import rescore
    from ml_platform.training.hpo import Study
    from ml_platform.training.train import train_and_register

    rng = np.random.default_rng(7)
    df = _frame(300)
    df["plan"] = rng.choice(["basic", "pro", "family", None], len(df))
    # churn depends on the plan: "basic" customers churn far more often
    df.loc[df["plan"] == "basic", "churned"] = (rng.random((df["plan"] == "basic").sum()) < 0.9).astype(int)
    names = ["recency_days", "frequency_90d", "monetary_90d", "plan"]
    res = train_and_register(
        df,
        names,
        Study(n_trials=3, families=["xgboost"]),
        training_set_id="ts3",
        lineage={},
        study_name="study-3",
        settings=Settings(home=tmp_path),
    )
    model = mlflow.pyfunc.load_model(f"models:/churn_model/{res.version}")
    rows = pd.DataFrame(
        {
            "recency_days": [0.0] * 4,
            "frequency_90d": [5.0] * 4,
            "monetary_90d": [np.nan] * 4,
            "plan": ["basic", "pro", None, "never-seen"],
        }
    )
    p = np.asarray(model.predict(rows), dtype="float64")
    assert np.isfinite(p).all() and p[0] > p[1] + 0.2  # the category carries the signal
    np.testing.assert_allclose(rescore(model, rows), p, rtol=0, atol=1e-12)
    served = model.unwrap_python_model().predict_records(
        rows.astype("object").where(rows.notna(), None).to_dict("records")
    )
    np.testing.assert_allclose(served, p, rtol=0, atol=1e-12)  # serving's path scores the same
    top = model.unwrap_python_model().explain(rows.head(1), top_k=3)
    assert any(c["feature"].startswith("plan=") for c in top[0])
    with pytest.raises(ValueError, match="frequency_90d must be numeric"):
        model.unwrap_python_model().predict(None, rows.assign(frequency_90d="many"))
