"""The distributed final-fit paths on local[2] with 2 workers: xgboost.spark and TorchDistributor
produce a model that scores like the local one and serves through the same pyfunc."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.spark

PARAMS = {
    "xgboost": {
        "max_depth": 3,
        "learning_rate": 0.1,
        "min_child_weight": 1.0,
        "subsample": 0.9,
        "colsample_bytree": 0.9,
        "reg_lambda": 1.0,
        "n_rounds": 100,
        "balanced": True,
    },
    "mlp": {"lr": 3e-3, "weight_decay": 1e-5, "batch_size": 128, "max_epochs": 8, "patience": 3, "balanced": False},
}


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.5 * x[:, 0] - x[:, 1] - 1.0)))).astype("float64")
    x[rng.random(n) < 0.5, 4] = np.nan  # NULL-heavy, as from the PIT join
    return x, y


@pytest.mark.parametrize("family", ["xgboost", "mlp"])
def test_distributed_fit_on_two_workers_gives_a_usable_model(spark, family):
    from sklearn.metrics import roc_auc_score

    from ml_platform.model.pyfunc import ChurnModel
    from ml_platform.training.distributed import fit_distributed

    assert spark.sparkContext.defaultParallelism >= 2  # local[2]: one task slot per worker
    xt, yt = _data(3000, 1)
    xv, yv = _data(800, 2)
    fitted = fit_distributed(spark, family, PARAMS[family], xt, yt, xv, yv, num_workers=2, seed=0)
    p = fitted.predict_proba(xv)
    assert p.dtype == np.float64 and p.shape == (800,) and np.all((p > 0) & (p < 1))
    assert roc_auc_score(yv, p) > 0.75
    names = [f"c{i}" for i in range(5)]
    row = pd.DataFrame([[np.nan] * 5], columns=names)
    served = ChurnModel(fitted, names).predict(None, row)
    assert served.dtype == np.float64 and np.isfinite(served).all()


def test_a_family_without_a_distributed_path_is_refused(spark):
    from ml_platform.training.distributed import fit_distributed

    x, y = _data(100, 0)
    with pytest.raises(ValueError, match="logreg.*no distributed path"):
        fit_distributed(spark, "logreg", {"C": 1.0}, x, y, x, y)
