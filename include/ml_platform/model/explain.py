"""SHAP values of one fitted model, the same way for the evaluation report and for serving.

XGBoost: the booster's own TreeSHAP (`pred_contribs`), exact and fast enough per request. Random
forest / extra trees: `shap.TreeExplainer` on the imputed matrix. Logistic regression and the
MLP: a permutation explainer over a sampled background of training rows (the registered model
carries that background, so a prediction can be explained at serving time). Values are in the
model's output space (log-odds for xgboost, probability otherwise); they rank features, which is
what the top-k explanation shows. A Platt-calibrated model (`families.Calibrated`) is explained
through its base model: exact for xgboost (log-odds times the slope), and for the others the
base model's probability (calibration is monotone, so the ranking of features is the same).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def shap_values(
    fitted: Any, rows: np.ndarray, background: np.ndarray | None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(SHAP values per row and feature, the matrix they describe)."""
    rows = np.asarray(rows, dtype="float64")
    slope = float(getattr(fitted, "slope", 1.0))
    fitted = getattr(fitted, "base", fitted)
    if fitted.family == "xgboost":
        import xgboost as xgb

        contribs = fitted.booster.predict(xgb.DMatrix(rows), pred_contribs=True)
        return slope * np.asarray(contribs[:, :-1], dtype="float64"), rows  # last column: the bias
    if fitted.family in ("random_forest", "extra_trees"):
        import shap

        pre, est = fitted.pipeline[:-1], fitted.pipeline[-1]
        shown = pre.transform(rows)
        values = shap.TreeExplainer(est).shap_values(shown, check_additivity=False)
        values = values[:, :, 1] if np.ndim(values) == 3 else values
        return np.asarray(values, dtype="float64"), shown
    import shap

    if background is None or len(background) == 0:
        raise ValueError(f"explaining a {fitted.family} model needs a background sample of training rows")
    bg = np.asarray(background, dtype="float64")
    rng = np.random.default_rng(seed)
    bg = bg[rng.choice(len(bg), size=min(100, len(bg)), replace=False)]
    explainer = shap.explainers.Permutation(fitted.predict_proba, shap.maskers.Independent(bg), seed=seed)
    values = explainer(rows, max_evals=2 * rows.shape[1] + 1, silent=True).values
    return np.asarray(values, dtype="float64"), rows


def top_contributions(values: np.ndarray, rows: np.ndarray, names: Sequence[str], k: int) -> list[list[dict[str, Any]]]:
    """Per row, the k features with the largest |SHAP|: name, the value served, its contribution."""
    out = []
    for vals, row in zip(values, rows):
        order = np.argsort(-np.abs(vals))[:k]
        out.append(
            [
                {
                    "feature": names[i],
                    "value": None if np.isnan(row[i]) else float(row[i]),
                    "contribution": float(vals[i]),
                }
                for i in order
            ]
        )
    return out
