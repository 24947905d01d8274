"""Realised performance per version / variant / slice, and the A/B verdict, on constructed labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ml_platform.monitoring.performance import compare_variants, performance_table

pytestmark = pytest.mark.unit


def _labelled(n: int, signal: float, variant: str, version: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    p = 1 / (1 + np.exp(-(signal * (y - 0.3) * 4 + rng.normal(size=n))))
    return pd.DataFrame(
        {
            "model_version": version,
            "variant": variant,
            "churned": y,
            "churn_probability": p,
            "region": rng.choice(["north", "south", None], n),
        }
    )


def test_metrics_per_version_variant_and_slice_with_intervals():
    df = pd.concat([_labelled(2000, 1.0, "champion", "3", 1), _labelled(25, 1.0, "challenger", "3", 2)])
    t = performance_table(df, ["region"], thresholds={"3": 0.4}, offline_auc={"3": 0.80}, n_boot=100)
    overall = t[(t.grouping == "all")].iloc[0]
    assert overall["n"] == 2025 and overall["roc_auc"] == pytest.approx(roc_auc_score(df.churned, df.churn_probability))
    assert overall["auc_ci_low"] < overall["roc_auc"] < overall["auc_ci_high"]
    assert overall["auc_vs_offline"] == pytest.approx(overall["roc_auc"] - 0.80) and overall["threshold"] == 0.4
    pred = df.churn_probability >= 0.4
    assert overall["precision"] == pytest.approx((pred & (df.churned == 1)).sum() / pred.sum())
    small = t[(t.grouping == "variant") & (t.group == "challenger")].iloc[0]
    assert small["n"] == 25 and np.isnan(small["roc_auc"]) and "fewer than 30" in small["note"]
    assert set(t[t.grouping == "region"].group) == {"north", "south", "<null>"}
    one = performance_table(df.assign(churned=0), n_boot=10).iloc[0]
    assert one["note"] == "one class only: AUC undefined"
    with pytest.raises(ValueError, match=r"lack column\(s\) \['region'\]"):
        performance_table(df.drop(columns="region"), ["region"])


def test_the_ab_verdict_needs_an_interval_that_excludes_zero():
    better = pd.concat([_labelled(3000, 0.4, "champion", "3", 3), _labelled(3000, 1.5, "challenger", "4", 4)])
    v = compare_variants(better, n_boot=200)
    assert v["verdict"].startswith("challenger better") and v["ci_low"] > 0 and v["n"]["challenger"] == 3000
    same = pd.concat([_labelled(3000, 1.0, "champion", "3", 5), _labelled(3000, 1.0, "challenger", "4", 6)])
    s = compare_variants(same, n_boot=200)
    assert s["verdict"].startswith("no significant difference") and s["ci_low"] < 0 < s["ci_high"]
    worse = compare_variants(
        better.assign(variant=better.variant.map({"champion": "challenger", "challenger": "champion"})), n_boot=200
    )
    assert worse["verdict"].startswith("challenger worse")
    assert compare_variants(same[same.variant == "champion"])["difference"] is None
