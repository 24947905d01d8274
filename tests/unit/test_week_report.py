"""The demo's week table from the monitoring tables (issue 21): drifted of watched features, the
importance-weighted drift, the label-free estimate with its band, and the realised AUC of the
week's own predictions only once enough of their labels are known."""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pytest

from ml_platform.config import Settings

pytestmark = pytest.mark.unit

END = date(2025, 4, 5)


def _tables(s: Settings, labelled: int) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    from ml_platform.lake.paths import table_path

    feats = ["tenure_days", "amount_trend", "score"]
    write_deltalake(
        table_path("monitoring.drift_reports", s),
        pa.table(
            {
                "window_end": [END] * 6,
                "source": ["served"] * 3 + ["batch"] * 3,
                "model_version": ["1"] * 6,
                "feature": feats * 2,
                "drifted": [False, True, True, False, True, False],
                "psi": [0.01, 0.4, 0.3, 0.02, 0.5, 0.05],
                "threshold": [0.5, 0.2, 0.1, 0.5, 0.2, 0.1],  # calibrated: tenure moves a lot by nature
                "importance": [0.2, 0.8, None] * 2,
            }
        ),
    )
    write_deltalake(
        table_path("monitoring.retrain_decisions", s),
        pa.table(
            {
                "window_end": [END],
                "decided_at": [datetime(2025, 4, 6, tzinfo=timezone.utc)],
                "retrain": [True],
                "reason": ["drift in 2 of 3 windows"],
                "decision_id": ["d1"],
            }
        ),
    )
    write_deltalake(
        table_path("monitoring.performance_estimates", s),
        pa.table(
            {
                "window_end": [END],
                "model_version": ["1"],
                "est_auc": [0.74],
                "est_auc_low": [0.70],
                "est_auc_high": [0.78],
            }
        ),
    )
    write_deltalake(  # the realised AUC of the labels that came in this week, per version
        table_path("monitoring.performance", s),
        pa.table(
            {
                "window_end": [END] * 2,
                "grouping": ["all"] * 2,
                "model_version": ["1", "2"],
                "roc_auc": [0.71, 0.52],
                "auc_ci_low": [0.67, 0.40],
                "auc_ci_high": [0.75, 0.63],
                "n": [600, 120],
            }
        ),
    )
    rng = np.random.default_rng(0)
    p = rng.random(labelled)
    write_deltalake(
        table_path("monitoring.labels", s),
        pa.table(
            {
                "anchor_ts": [datetime(2025, 4, 2, 12, tzinfo=timezone.utc)] * labelled,
                "model_version": ["1"] * labelled,
                "returned": [True] * labelled,
                "churn_probability": p,
                "churned": (rng.random(labelled) < p).astype(int),
            }
        ),
    )


@pytest.mark.parametrize("labelled", [150, 600])
def test_a_week_row_shows_a_realised_auc_only_on_enough_labels(tmp_path, labelled):
    from week_report import estimate_error, format_weeks, week_row

    s = Settings(home=tmp_path)
    _tables(s, labelled)
    row = week_row(END, s)
    assert (row["served_drifted"], row["served_watched"], row["batch_drifted"]) == (2, 3, 1)
    assert row["important_drift"] == pytest.approx(0.8)  # batch: amount_trend's share
    assert row["estimate"] == (0.74, 0.70, 0.78)
    # the largest PSI as a multiple of its own threshold: the score's 0.3 over 0.1, not tenure's raw PSI
    assert row["served_max_effect"] == pytest.approx(3.0) and row["batch_max_effect"] == pytest.approx(2.5)
    # a version's realised AUC on the week's new labels: with its interval, none on 120 (< min_labelled 200)
    assert row["auc"] == {"v1": (0.71, 0.67, 0.75, 600), "v2": (None, None, None, 120)}
    assert row["own_labels"] == labelled
    if labelled < 200:  # the policy's min_labelled: no point, no interval
        assert row["own_auc"] is None and estimate_error([row]) is None
    else:
        auc, low, high = row["own_auc"]
        assert low <= auc <= high and 0.6 < auc < 0.95
        assert estimate_error([row]) == pytest.approx(abs(0.74 - auc))
    text = format_weeks([row | {"served": {"1": 10}}], date(2025, 3, 30))
    assert "2/3 (3.00)" in text and "0.740 [0.700, 0.780]" in text and "RETRAIN d1" in text
    assert "v1 0.710 [0.670, 0.750] (600), v2 - (120)" in text
