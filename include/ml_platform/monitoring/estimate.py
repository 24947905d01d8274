"""Performance before the labels arrive: what ROC AUC and precision a calibrated model should
reach on the predictions it served, with an interval.

If the served probabilities are calibrated (the champion's calibration is checked offline and,
once labels arrive, by the realised ECE), customer i churns with probability p_i. The labels the
week will get are then one draw of y_i ~ Bernoulli(p_i), and the AUC those labels will give is a
random variable whose distribution depends only on the p_i: simulating `n_sim` label draws gives
its expected value and a 95 % interval (confidence-based performance estimation). A shift that
moves customers to where the model is less sure (probabilities towards the base rate) lowers the
estimate before any label exists; a shift that breaks calibration itself is invisible to it, which
is why the realised AUC, when labels come, is shown beside the estimate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ml_platform.evaluation.metrics import roc_auc
from ml_platform.monitoring.performance import MIN_ROWS


def estimate_performance(probabilities: Any, threshold: float, *, n_sim: int = 200, seed: int = 0) -> dict[str, Any]:
    """Expected ROC AUC and precision at `threshold` of calibrated `probabilities`, each with a
    95 % interval from `n_sim` simulated label draws; None (with a note) below MIN_ROWS."""
    p = np.clip(np.asarray(probabilities, dtype=float), 0.0, 1.0)
    out: dict[str, Any] = {
        "n": len(p),
        "expected_positives": float(p.sum()),
        "est_auc": None,
        "est_auc_low": None,
        "est_auc_high": None,
        "est_precision": None,
        "est_precision_low": None,
        "est_precision_high": None,
        "note": None,
    }
    if len(p) < MIN_ROWS:
        out["note"] = f"{len(p)} predictions: fewer than {MIN_ROWS}, no estimate"
        return out
    rng = np.random.default_rng(seed)
    flagged = p >= threshold
    aucs, precisions = [], []
    for _ in range(n_sim):
        y = (rng.random(len(p)) < p).astype(int)
        a = roc_auc(y, p)
        if a is not None:
            aucs.append(a)
        if flagged.any():
            precisions.append(float(y[flagged].mean()))
    if aucs:
        out.update(
            est_auc=float(np.mean(aucs)),
            est_auc_low=float(np.quantile(aucs, 0.025)),
            est_auc_high=float(np.quantile(aucs, 0.975)),
        )
    else:
        out["note"] = "every simulated week had one class only: AUC undefined"
    if precisions:
        out.update(
            est_precision=float(p[flagged].mean()),  # E[TP] / flagged, exact
            est_precision_low=float(np.quantile(precisions, 0.025)),
            est_precision_high=float(np.quantile(precisions, 0.975)),
        )
    return out
