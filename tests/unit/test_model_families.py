"""Every model family fits on small data, handles NULL-heavy columns, is seeded, and reports progress."""

from __future__ import annotations

import numpy as np
import pytest

from ml_platform.training.families import FAMILIES, fit_family

pytestmark = pytest.mark.unit

PARAMS = {
    "xgboost": {
        "max_depth": 3,
        "learning_rate": 0.1,
        "min_child_weight": 1.0,
        "subsample": 0.9,
        "colsample_bytree": 0.9,
        "reg_lambda": 1.0,
        "n_rounds": 100,
    },
    "logreg": {"C": 1.0},
    "random_forest": {"n_estimators": 50, "max_depth": 6, "min_samples_leaf": 5, "max_features": 0.7},
    "extra_trees": {"n_estimators": 50, "max_depth": 6, "min_samples_leaf": 5, "max_features": 0.7},
    "mlp": {"lr": 3e-3, "weight_decay": 1e-5, "batch_size": 128, "max_epochs": 15, "patience": 3},
}


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    logit = 1.5 * x[:, 0] - 1.0 * x[:, 1] + 0.5 * x[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("float64")
    x[rng.random(n) < 0.9, 5] = np.nan  # a NULL-heavy column
    x[:, 4] = np.nan  # an all-NULL column
    return x, y


@pytest.mark.parametrize("family", FAMILIES)
def test_family_learns_is_seeded_and_reports(family):
    from sklearn.metrics import roc_auc_score

    xt, yt = _data(1500, 1)
    xv, yv = _data(500, 2)
    reports: list[tuple[int, float]] = []
    a = fit_family(family, PARAMS[family], xt, yt, xv, yv, seed=7, report=lambda s, v: reports.append((s, v)))
    p = a.predict_proba(xv)
    assert p.dtype == np.float64 and p.shape == (500,) and np.all((p >= 0) & (p <= 1))
    assert roc_auc_score(yv, p) > 0.75
    assert reports and all(0.0 <= v <= 1.0 for _, v in reports)
    b = fit_family(family, PARAMS[family], xt, yt, xv, yv, seed=7)
    np.testing.assert_allclose(a.predict_proba(xv[:50]), b.predict_proba(xv[:50]), rtol=0, atol=1e-6)
    one = xv[:1].copy()
    one[0, :] = np.nan  # a row with every value missing still scores
    assert np.isfinite(a.predict_proba(one)).all()


def test_unknown_family_is_a_clear_error():
    x, y = _data(50, 0)
    with pytest.raises(ValueError, match="unknown model family 'lightgbm'"):
        fit_family("lightgbm", {}, x, y, x, y)


@pytest.mark.parametrize("family", FAMILIES)
def test_shap_explains_every_family(family, tmp_path):
    from ml_platform.evaluation.report import shap_plots

    xt, yt = _data(600, 3)
    fitted = fit_family(family, {**PARAMS[family], **({"max_epochs": 3} if family == "mlp" else {})}, xt, yt, xt, yt)
    paths, means = shap_plots(fitted, xt, xt, [f"f{i}" for i in range(6)], tmp_path, max_rows=60)
    assert all(p.stat().st_size > 1000 for p in paths.values())
    assert list(means)[0] in ("f0", "f1")  # the strongest true effects rank first
    assert means["f4"] == pytest.approx(0.0, abs=1e-9)  # an all-NULL column explains nothing
    # the registered model explains a single served row the same way (serving's ?explain=true)
    import pandas as pd

    from ml_platform.model.pyfunc import ChurnModel

    names = [f"f{i}" for i in range(6)]
    model = ChurnModel(fitted, names, background=xt[:100])
    row = pd.DataFrame(xt[:1], columns=names)
    top = model.explain(row, top_k=3)
    assert len(top) == 1 and len(top[0]) == 3
    assert {c["feature"] for c in top[0]} <= set(names) and all(np.isfinite(c["contribution"]) for c in top[0])
    assert top[0][0]["contribution"] ** 2 >= top[0][-1]["contribution"] ** 2  # ordered by |SHAP|


def test_platt_scaling_fixes_inflated_probabilities_keeps_ranking_and_explains():
    """Balanced xgboost over-predicts churn; Platt scaling on held-out rows brings ECE down,
    leaves the AUC as it was, and SHAP (log-odds) is the base's times the slope."""
    from sklearn.metrics import roc_auc_score

    from ml_platform.evaluation.metrics import expected_calibration_error
    from ml_platform.model.explain import shap_values
    from ml_platform.training.families import Calibrated, calibrate

    def rare(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        x, _ = _data(n, seed)
        rng = np.random.default_rng(seed + 100)
        y = (rng.random(n) < 1 / (1 + np.exp(-(1.5 * x[:, 0] - 2.5)))).astype("float64")  # ~12 % positive
        return x, y

    xt, yt = rare(3000, 1)
    xv, yv = rare(1500, 2)
    xs, ys = rare(3000, 3)
    base = fit_family("xgboost", PARAMS["xgboost"] | {"balanced": True}, xt, yt, xv, yv, seed=7)
    cal = calibrate(base, xv, yv)
    assert isinstance(cal, Calibrated) and cal.family == "xgboost" and cal.slope > 0
    raw_ece, cal_ece = (
        expected_calibration_error(ys, base.predict_proba(xs)),
        expected_calibration_error(ys, cal.predict_proba(xs)),
    )
    assert raw_ece > 0.15 and cal_ece < 0.05, (raw_ece, cal_ece)
    assert roc_auc_score(ys, cal.predict_proba(xs)) == pytest.approx(
        roc_auc_score(ys, base.predict_proba(xs)), abs=1e-3
    )
    v_base, _ = shap_values(base, xs[:5], None)
    v_cal, _ = shap_values(cal, xs[:5], None)
    np.testing.assert_allclose(v_cal, cal.slope * v_base, rtol=1e-9)
    assert calibrate(base, xv, np.zeros_like(yv)) is base  # one class: nothing to fit


def test_the_mlp_scores_in_numpy_as_torch_does_in_eval_mode():
    """The served MLP needs no torch: its numpy forward pass equals the trained network's (eval mode:
    BatchNorm's running statistics, no dropout), on rows with missing values too."""
    import torch

    from ml_platform.training.families import _mlp

    xt, yt = _data(600, 5)
    fitted = fit_family("mlp", {**PARAMS["mlp"], "max_epochs": 4}, xt, yt, xt, yt)
    assert all(isinstance(v, np.ndarray) for v in fitted.state.values())  # no tensor is pickled with the model
    net = _mlp(fitted.n_features)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in fitted.state.items()}, strict=False)
    net.eval()
    with torch.no_grad():
        z = torch.from_numpy(fitted.pre.transform(xt).astype("float32"))
        expected = torch.sigmoid(net(z)).squeeze(1).double().numpy()
    got = fitted.predict_proba(xt)
    assert got.dtype == np.float64 and got.shape == (len(xt),)
    assert np.abs(got - expected).max() < 1e-5
    assert 0.05 < float(np.std(got))  # a network that learned something, not a constant
