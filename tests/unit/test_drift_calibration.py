"""Drift thresholds learned from the training windows (issue 21): a feature that trends every week
is watched with the threshold its own movement sets, not excluded; a real shift still stands out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_platform.monitoring.drift import calibrate_thresholds, detect_drift

pytestmark = pytest.mark.unit


def _week(rng: np.random.Generator, k: int, n: int = 4000) -> pd.DataFrame:
    """Week k of a stable world: tenure grows a week a week, spend is stationary, channel too."""
    start = rng.integers(0, 700, n)
    return pd.DataFrame(
        {
            "tenure_days": start + 7 * k + rng.integers(0, 7, n),
            "lifetime_spend": (start + 7 * k) * rng.gamma(2.0, 1.5, n),
            "spend_30d": rng.gamma(2.0, 20.0, n),
            "channel": rng.choice(["web", "store", "app"], n, p=[0.5, 0.3, 0.2]),
        }
    )


class _EverythingSignificant:
    """A detector for which every feature is significant, so only the effect size decides."""

    name = "all-significant"

    def test(self, x_ref, x_cur, cat_idx, q):
        k = x_ref.shape[1]
        return np.zeros(k), np.ones(k), np.ones(k, dtype=bool)


FEATURES = ["tenure_days", "lifetime_spend", "spend_30d", "channel"]


def test_a_trending_feature_gets_its_own_threshold_and_a_stable_week_raises_nothing():
    rng = np.random.default_rng(0)
    weeks = [_week(rng, k) for k in range(8)]
    thr = calibrate_thresholds(weeks, FEATURES, ["channel"])
    assert thr["spend_30d"] == thr["channel"] == 0.1  # stationary: the floor
    # the next week of the same stable world, compared with the last training week
    nxt = _week(rng, 8)
    fixed = detect_drift(weeks[-1], nxt, FEATURES, ["channel"], detector=_EverythingSignificant())
    calibrated = detect_drift(weeks[-1], nxt, FEATURES, ["channel"], detector=_EverythingSignificant(), thresholds=thr)
    assert not any(f.drifted for f in calibrated.features), [(f.feature, f.psi) for f in calibrated.features]
    assert len(fixed.features) == 4  # every feature watched, none excluded


def test_a_real_shift_still_stands_out_against_the_calibrated_thresholds():
    rng = np.random.default_rng(1)
    weeks = [_week(rng, k) for k in range(8)]
    thr = calibrate_thresholds(weeks, FEATURES, ["channel"])
    shifted = _week(rng, 8)
    shifted["spend_30d"] *= 0.5  # customers spend half
    shifted["channel"] = rng.choice(["web", "store", "app"], len(shifted), p=[0.2, 0.3, 0.5])
    out = detect_drift(weeks[-1], shifted, FEATURES, ["channel"], detector=_EverythingSignificant(), thresholds=thr)
    assert {f.feature for f in out.features if f.drifted} == {"spend_30d", "channel"}


def test_calibration_needs_three_windows():
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match="at least 3 windows"):
        calibrate_thresholds([_week(rng, 0), _week(rng, 1)], FEATURES, ["channel"])


def test_drift_on_a_feature_the_model_ignores_weighs_nothing():
    rng = np.random.default_rng(1)
    weeks = [_week(rng, k) for k in range(8)]
    thr = calibrate_thresholds(weeks, FEATURES, ["channel"])
    shifted = _week(rng, 8)
    shifted["channel"] = rng.choice(["web", "store", "app"], len(shifted), p=[0.2, 0.3, 0.5])
    out = detect_drift(weeks[-1], shifted, FEATURES, ["channel"], detector=_EverythingSignificant(), thresholds=thr)
    assert out.drifted == ["channel"]
    assert out.important_drift({"spend_30d": 0.6, "tenure_days": 0.4, "channel": 0.0}) == 0.0
    assert out.important_drift({"spend_30d": 0.5, "channel": 0.5}) == pytest.approx(0.5)
    assert out.important_drift({}) == 0.0
