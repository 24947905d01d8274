"""Monitoring rows written with delta-rs keep their types when a first write has only missing values."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from ml_platform.config import Settings
from ml_platform.lake.paths import table_path
from ml_platform.lake.reader import read_pandas
from ml_platform.monitoring.policy import RetrainDecision
from ml_platform.monitoring.weekly import _arrow, record_decision

pytestmark = pytest.mark.unit


def _decision(i: str, retrain: bool) -> RetrainDecision:
    return RetrainDecision(
        decision_id=f"rd-{i}",
        retrain=retrain,
        trigger="drift" if retrain else None,
        reason="why",
        decided_at=f"2025-04-0{i}T00:00:00+00:00",
        windows=("2025-03-29",),
        numbers={"auc_drop": None},
    )


def test_a_no_retrain_first_then_a_retrain_both_recorded_once(tmp_path):
    s = Settings(home=tmp_path)
    assert record_decision(_decision("1", False), date(2025, 3, 29), s) is True  # trigger: all missing
    assert record_decision(_decision("2", True), date(2025, 4, 5), s) is True
    assert record_decision(_decision("2", True), date(2025, 4, 5), s) is False  # the same decision again
    rows = read_pandas(table_path("monitoring.retrain_decisions", s)).sort_values("decision_id")
    assert list(rows["decision_id"]) == ["rd-1", "rd-2"] and list(rows["trigger"].fillna("-")) == ["-", "drift"]


def test_all_missing_columns_become_numbers_or_text():
    t = _arrow(pd.DataFrame({"roc_auc": [None], "note": [None], "n": [3]}))
    assert [str(f.type) for f in t.schema] == ["double", "string", "int64"]
