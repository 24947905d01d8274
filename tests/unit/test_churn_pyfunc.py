"""The served pyfunc: logged to MLflow, loaded back, probabilities as doubles, NULLs handled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_platform.model.pyfunc import ChurnModel
from ml_platform.training.families import fit_family

pytestmark = pytest.mark.unit


def test_logged_model_predicts_the_same_probabilities(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    rng = np.random.default_rng(0)
    names = ["a", "b", "c"]
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] + rng.normal(scale=0.5, size=400) > 0).astype(float)
    fitted = fit_family("logreg", {"C": 1.0}, x, y, x, y)
    model = ChurnModel(fitted, names)
    frame = pd.DataFrame(x[:5], columns=names).assign(extra="ignored")
    frame.loc[0, "a"] = None  # a NULL
    frame["b"] = frame["b"].astype("object")  # and a column that arrives untyped
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = mlflow.create_experiment("pyfunc", artifact_location=str(tmp_path / "artifacts"))
    with mlflow.start_run(experiment_id=exp):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=model, input_example=pd.DataFrame(x[:2], columns=names)
        )
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    got = loaded.predict(frame[names].astype("float64"))
    want = model.predict(None, frame)
    assert want.dtype == np.float64 and np.isfinite(want).all()
    np.testing.assert_allclose(np.asarray(got, dtype="float64"), want.to_numpy(), rtol=0, atol=1e-12)
    records = [
        {k: (None if pd.isna(v) else float(v)) for k, v in row.items()} for row in frame[names].to_dict("records")
    ]
    np.testing.assert_allclose(model.predict_records(records), want.to_numpy(), rtol=0, atol=1e-12)  # serving
    with pytest.raises(ValueError, match=r"lacks feature column\(s\) \['c'\]"):
        model.predict(None, frame[["a", "b"]])
