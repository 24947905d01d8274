"""Cutoff splits and evaluation metrics on hand-made data with known answers."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from ml_platform.errors import MlPlatformError
from ml_platform.evaluation.metrics import best_threshold, classification_metrics, expected_calibration_error, roc_auc
from ml_platform.training.splits import split_by_cutoff

pytestmark = pytest.mark.unit


def test_split_by_cutoff_latest_is_test_previous_is_validation():
    cut = [date(2025, 1, d) for d in (4, 11, 18, 25)]
    df = pd.DataFrame(
        {"cutoff_date": np.repeat(cut, 3), "f": np.arange(12.0), "churned": [0, 1, 0] * 4, "gender": ["x"] * 12}
    )
    s = split_by_cutoff(df, ["f"])
    assert (s["train"].cutoffs, s["validation"].cutoffs, s["test"].cutoffs) == (cut[:2], [cut[2]], [cut[3]])
    assert s["test"].x[:, 0].tolist() == [9.0, 10.0, 11.0] and len(s["train"].y) == 6
    with pytest.raises(MlPlatformError, match="sensitive"):
        split_by_cutoff(df, ["f", "gender"])
    with pytest.raises(MlPlatformError, match="at least 3 cutoffs"):
        split_by_cutoff(df[df["cutoff_date"] >= cut[2]], ["f"])


def test_the_same_rows_in_any_order_give_the_same_splits():
    """Either engine may write a training set's rows in another order; a seeded fit samples rows
    by position, so the splits must not depend on it (NULLs, tied keys and exact duplicates too)."""
    rng = np.random.default_rng(7)
    cut = [date(2025, 1, d) for d in (4, 11, 18, 25)]
    n = 200
    df = pd.DataFrame(
        {
            "customer_id": rng.choice([f"C{i}" for i in range(30)], n),
            "cutoff_date": rng.choice(cut, n),
            "f": np.where(rng.random(n) < 0.2, np.nan, rng.integers(0, 5, n).astype(float)),
            "g": rng.integers(0, 3, n).astype(float),
            "churned": rng.integers(0, 2, n),
            "region": rng.choice(["north", "south", None], n),
        }
    )
    df = pd.concat([df, df.head(10)], ignore_index=True)  # exact duplicates
    a = split_by_cutoff(df, ["f", "g"])
    for seed in range(3):
        b = split_by_cutoff(df.sample(frac=1.0, random_state=seed), ["f", "g"])
        for name in ("train", "validation", "test"):
            assert np.array_equal(a[name].x, b[name].x, equal_nan=True), name
            assert np.array_equal(a[name].y, b[name].y), name
            pd.testing.assert_frame_equal(a[name].frame, b[name].frame)


def test_metrics_known_values():
    y = np.array([0, 0, 1, 1], dtype=float)
    p = np.array([0.1, 0.4, 0.35, 0.8])
    m = classification_metrics(y, p, threshold=0.5)
    assert m["roc_auc"] == pytest.approx(0.75) and m["precision"] == 1.0 and m["recall"] == 0.5
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert expected_calibration_error(np.array([1.0, 0.0]), np.array([0.95, 0.95])) == pytest.approx(0.45)
    assert best_threshold(y, p) == pytest.approx(0.35)  # catches both positives with one false positive


def test_a_split_of_one_outcome_is_refused_naming_it():
    cut = [date(2025, 1, d) for d in (4, 11, 18, 25)]
    churned = [0, 1, 0] * 2 + [1, 1, 1] + [0, 1, 0]  # every validation customer churned
    df = pd.DataFrame({"cutoff_date": np.repeat(cut, 3), "f": np.arange(12.0), "churned": churned})
    with pytest.raises(MlPlatformError, match=r"the validation split \(cutoff 2025-01-18\) holds one outcome only"):
        split_by_cutoff(df, ["f"])


def test_the_one_auc_equals_scikit_learn_and_is_undefined_for_one_class():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    for n in (2, 7, 500):
        y = np.r_[0, 1, rng.integers(0, 2, n - 2)]
        p = rng.integers(0, 5, n) / 4  # many ties
        assert roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert roc_auc([1, 1, 1], [0.1, 0.5, 0.9]) is None and roc_auc([], []) is None
    metrics = classification_metrics(np.zeros(5), np.linspace(0, 1, 5), 0.5)
    assert metrics["roc_auc"] is None  # not 0.5, not nan
