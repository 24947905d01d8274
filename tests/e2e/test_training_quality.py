"""The shared trained model (`ml-platform backtest` on a user's CSV file): plausible quality, no
label leakage, and one probability whatever path scores a row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.e2e


def _training_frame(trained_model: dict) -> tuple[pd.DataFrame, list[str]]:
    from ml_platform.config import Settings
    from ml_platform.features.training_frame import load_training_frame

    df, names, _ = load_training_frame("backtest", Settings(home=trained_model["workspace"]))
    return df, names


def test_backtest_on_a_csv_reports_metrics_in_a_plausible_band(trained_model):
    t = trained_model
    assert t["test_cutoff"] == "2025-03-30" and t["validation_cutoff"] == "2025-03-16"
    assert t["train_cutoffs"] == ["2025-03-02", "2025-03-09"] and t["horizon_days"] == 14
    assert t["data"]["rows_loaded"]["transactions"] > 50_000 and t["data"]["rows_loaded"]["customers"] == 6000
    # above 0.95 on churn data means leakage; below 0.75 the generated signal was not learned
    assert 0.75 <= t["test_auc"] <= 0.95, t["test"]
    assert t["test"]["rows"] >= 5000 and 0 < t["churn_rate_test"] < 1
    assert {"accuracy", "precision", "recall", "f1", "average_precision", "log_loss", "brier", "ece"} <= set(t["test"])
    report = Path(t["report"])
    assert report.is_file() and "data:image/png;base64," in report.read_text()
    for plot in ("roc", "precision_recall", "confusion_matrix", "calibration", "shap_summary", "shap_bar", "fairness"):
        assert (report.parent / f"{plot}.png").stat().st_size > 1000, plot
    fairness = json.loads((report.parent / "fairness.json").read_text())
    assert set(fairness) == {"gender", "age_band", "region"}
    assert "HPO trials" in t["stderr"] and "running the data gate" in t["stderr"]  # progress is shown


def test_shuffled_labels_give_chance_auc(trained_model):
    """Retrain the winning configuration on shuffled labels: features that leaked the label would
    still rank the (shuffled) test labels; honest features give AUC 0.5 +- 0.05 on >= 5000 rows."""
    import optuna
    from sklearn.metrics import roc_auc_score

    from ml_platform.training.families import fit_family, suggest_params
    from ml_platform.training.splits import split_by_cutoff

    df, names = _training_frame(trained_model)
    rng = np.random.default_rng(3)
    df = df.assign(churned=rng.permutation(df["churned"].to_numpy()))
    parts = split_by_cutoff(df, names)
    train, val, test = parts["train"], parts["validation"], parts["test"]
    best = trained_model["best_params"]
    params = suggest_params(optuna.trial.FixedTrial(best), best["family"])
    fitted = fit_family(best["family"], params, train.x, train.y, val.x, val.y, seed=0)
    assert len(test.y) >= 5000
    assert abs(roc_auc_score(test.y, fitted.predict_proba(test.x)) - 0.5) <= 0.05


def test_a_row_with_nulls_scores_the_same_through_pyfunc_spark_udf_and_rescoring(trained_model, spark):
    import mlflow

    from ml_platform.model.scoring import feature_names, rescore, spark_scorer

    mlflow.set_tracking_uri(trained_model["registry"])
    uri = "models:/churn_model@challenger"
    model = mlflow.pyfunc.load_model(uri)
    names = feature_names(model)
    df, train_names = _training_frame(trained_model)
    assert names == train_names
    row = df[names].head(1).astype("float64").copy()
    row.iloc[0, ::3] = np.nan  # every third feature NULL
    direct = float(model.predict(row).iloc[0])
    again = float(rescore(model, row.assign(customer_id="C1", extra="ignored"))[0])
    sdf = spark.createDataFrame(
        row.astype(object).where(row.notna(), None), schema=", ".join(f"{c} double" for c in names)
    )
    via_spark = sdf.select(spark_scorer(spark, uri)(*names).alias("p")).collect()[0]["p"]
    assert 0.0 < direct < 1.0
    assert direct == pytest.approx(again, abs=1e-12) and direct == pytest.approx(via_spark, abs=1e-12)
