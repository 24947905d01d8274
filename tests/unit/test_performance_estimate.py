"""The label-free performance estimate (monitoring.estimate) against labels drawn as a calibrated
model promises: the realised AUC falls in the estimate's band about as often as it says."""

from __future__ import annotations

import numpy as np
import pytest

from ml_platform.evaluation.metrics import roc_auc
from ml_platform.monitoring.estimate import estimate_performance

pytestmark = pytest.mark.unit


def _week(rng: np.random.Generator, n: int, spread: float) -> np.ndarray:
    """Calibrated churn probabilities of a week: logits around the base rate, `spread` wide."""
    return 1 / (1 + np.exp(-(rng.normal(-1.5, spread, n))))


def test_the_realised_auc_of_calibrated_labels_falls_in_the_band_about_95_percent_of_weeks():
    rng = np.random.default_rng(7)
    inside, errors = 0, []
    for seed in range(60):
        p = _week(rng, 1500, 1.2)
        est = estimate_performance(p, 0.5, n_sim=200, seed=seed)
        y = (rng.random(len(p)) < p).astype(int)  # the labels that arrive later
        real = roc_auc(y, p)
        inside += est["est_auc_low"] <= real <= est["est_auc_high"]
        errors.append(abs(est["est_auc"] - real))
    assert inside >= 51, inside  # 95 % nominal; 51/60 leaves room for the draw
    assert np.mean(errors) < 0.02, np.mean(errors)


def test_a_shift_towards_uncertain_customers_lowers_the_estimate_before_any_label():
    rng = np.random.default_rng(3)
    before = estimate_performance(_week(rng, 3000, 1.4), 0.5)
    after = estimate_performance(_week(rng, 3000, 0.5), 0.5)  # probabilities crowd the base rate
    assert after["est_auc_high"] < before["est_auc_low"], (before, after)


def test_precision_is_the_mean_probability_of_the_flagged_and_small_weeks_give_no_number():
    p = np.array([0.9, 0.8, 0.6, 0.2, 0.1] * 20)
    est = estimate_performance(p, 0.5, n_sim=100)
    assert est["est_precision"] == pytest.approx((0.9 + 0.8 + 0.6) / 3)
    assert est["est_precision_low"] <= est["est_precision"] <= est["est_precision_high"]
    small = estimate_performance(p[:10], 0.5)
    assert small["est_auc"] is None and "fewer than 30" in small["note"]
    assert estimate_performance(np.full(100, 0.5), 0.5)["est_auc"] == pytest.approx(0.5, abs=0.02)
