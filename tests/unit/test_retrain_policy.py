"""The governed retrain policy on constructed monitoring histories."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from ml_platform.monitoring.policy import History, Retrain, RetrainPolicy, Window, decide_retrain

pytestmark = pytest.mark.unit

NOW = datetime(2025, 6, 2, 6, 0, tzinfo=timezone.utc)
POLICY = RetrainPolicy(
    persist_windows=2, of_windows=3, auc_drop=0.05, min_labelled=200, cooldown_days=14, max_retrains=2, budget_days=28
)


def _weeks(*drifted: bool, auc: float | None = 0.80, labelled: int = 1000, width: float = 0.02) -> tuple[Window, ...]:
    """One window per flag, the last ending yesterday; a drifted window has `tenure` shifted; the
    realised AUC's interval reaches `width` above it."""
    n = len(drifted)
    return tuple(
        Window(
            end=(NOW - timedelta(days=1 + 7 * (n - 1 - i))).date(),
            model_version="3",
            drifted=("tenure",) if d else (),
            max_effect=0.35 if d else 0.05,
            realised_auc=auc,
            auc_ci_high=None if auc is None else auc + width,
            labelled=labelled,
            baseline_auc=0.80,
        )
        for i, d in enumerate(drifted)
    )


def test_drift_must_persist_in_n_of_m_windows_including_the_latest():
    assert not decide_retrain(History(NOW, _weeks(False, False, True)), POLICY).retrain  # once: noise
    d = decide_retrain(History(NOW, _weeks(True, False, True)), POLICY)
    assert d.retrain and d.trigger == "drift" and "2 of the last 3" in d.reason and "tenure" in d.reason
    gone = decide_retrain(History(NOW, _weeks(True, True, False)), POLICY)  # drift over by now
    assert not gone.retrain and "no feature drifted" in gone.reason
    old = decide_retrain(History(NOW, _weeks(True, True, False, False, True)), POLICY)  # only the last 3 count
    assert not old.retrain and "only 1 of the last 3" in old.reason


def test_a_performance_drop_needs_enough_labels():
    few = decide_retrain(History(NOW, _weeks(False, False, False, auc=0.70, labelled=150)), POLICY)
    assert not few.retrain and "only 150 labels" in few.reason
    wide = decide_retrain(History(NOW, _weeks(False, False, False, auc=0.70, labelled=150, width=0.08)), POLICY)
    assert "only 150 labels" in wide.reason and "0.70" not in wide.reason  # no point shown on too few labels
    d = decide_retrain(History(NOW, _weeks(False, False, False, auc=0.70, labelled=250)), POLICY)
    assert d.retrain and d.trigger == "performance" and d.numbers["auc_drop"] == pytest.approx(0.10)
    small = decide_retrain(History(NOW, _weeks(False, False, False, auc=0.77)), POLICY)
    assert not small.retrain and "within 0.05" in small.reason
    none = decide_retrain(History(NOW, _weeks(False, auc=None, labelled=0)), POLICY)
    assert not none.retrain and "labels not in" in none.reason


def test_a_performance_retrain_rests_on_the_interval_not_the_point():
    # point 0.70 (0.10 below), but the labels allow up to 0.78: not sure of a 0.05 drop
    wide = decide_retrain(History(NOW, _weeks(False, auc=0.70, labelled=400, width=0.08)), POLICY)
    assert not wide.retrain and "its interval reaches 0.780" in wide.reason
    assert wide.numbers["auc_drop_lower_bound"] == pytest.approx(0.02)
    sure = decide_retrain(History(NOW, _weeks(False, auc=0.70, labelled=400, width=0.04)), POLICY)
    assert sure.retrain and sure.trigger == "performance" and "at least 0.060 below" in sure.reason
    bare = Window(end=NOW.date(), model_version="3", realised_auc=0.6, labelled=900, baseline_auc=0.8)
    assert "no interval" in decide_retrain(History(NOW, (bare,)), POLICY).reason


def test_cool_down_and_budget_hold_a_justified_retrain_back():
    windows = _weeks(True, True, True)
    recent = Retrain(NOW - timedelta(days=10), "scheduled")  # before the windows' last two ends
    held = decide_retrain(History(NOW, windows[1:], (Retrain(NOW - timedelta(days=20), "drift"),)), POLICY)
    assert held.retrain  # 20 days ago: past the cool-down, and 1 < 2 in the budget period
    cool = decide_retrain(History(NOW, windows, (recent,)), RetrainPolicy(persist_windows=1, of_windows=1))
    assert not cool.retrain and "cool-down" in cool.reason and "scheduled" in cool.reason
    spent = (Retrain(NOW - timedelta(days=26), "scheduled"), Retrain(NOW - timedelta(days=19), "scheduled"))
    budget = decide_retrain(History(NOW, windows, spent), RetrainPolicy(persist_windows=1, of_windows=1))
    assert not budget.retrain and "budget is spent" in budget.reason and "scheduled ones included" in budget.reason


def test_windows_that_caused_a_retrain_never_cause_another():
    windows = _weeks(True, True, True)
    first = decide_retrain(History(NOW, windows), POLICY)
    assert first.retrain
    # that retrain ran right after; a month later nothing new has been observed: same windows
    later = NOW + timedelta(days=30)
    again = decide_retrain(History(later, windows, (Retrain(NOW, "drift", first.decision_id),)), POLICY)
    assert not again.retrain and "already caused a retrain" in again.reason
    # one new drifted window after the retrain is not persistence yet; two are
    new = tuple(
        Window(
            end=(NOW + timedelta(days=7 * k)).date(),
            model_version="4",
            drifted=("tenure",),
            max_effect=0.3,
            realised_auc=0.8,
            labelled=500,
            baseline_auc=0.8,
        )
        for k in (1, 2)
    )
    one = decide_retrain(History(later, windows + new[:1], (Retrain(NOW, "drift", first.decision_id),)), POLICY)
    assert not one.retrain and "only 1 of the last 1" in one.reason
    two = decide_retrain(History(later, windows + new, (Retrain(NOW, "drift", first.decision_id),)), POLICY)
    assert two.retrain and two.windows == tuple(w.end.isoformat() for w in new)


def test_the_same_windows_give_the_same_decision_id():
    h = History(NOW, _weeks(True, False, True))
    a, b = decide_retrain(h, POLICY), decide_retrain(History(NOW + timedelta(hours=3), h.windows), POLICY)
    assert a.decision_id == b.decision_id and a.decision_id.startswith("rd-")
    other = decide_retrain(History(NOW, _weeks(True, True, True)), POLICY)
    assert (
        other.retrain
        and other.decision_id != decide_retrain(History(NOW, _weeks(False, False, False)), POLICY).decision_id
    )
    assert decide_retrain(History(NOW, ()), POLICY).reason == "no monitoring window yet"


def test_policy_from_mapping_names_bad_keys_and_values():
    assert RetrainPolicy.from_mapping({"max_retrains": "3", "auc_drop": "0.1"}) == RetrainPolicy(
        max_retrains=3, auc_drop=0.1
    )
    with pytest.raises(ValueError, match="unknown retrain policy key"):
        RetrainPolicy.from_mapping({"max_retrain": 3})
    with pytest.raises(ValueError, match="cooldown_days must be an integer"):
        RetrainPolicy.from_mapping({"cooldown_days": "two weeks"})
    with pytest.raises(ValueError, match="persist_windows <= of_windows"):
        RetrainPolicy(persist_windows=4, of_windows=3)
    assert date.fromisoformat(decide_retrain(History(NOW, _weeks(True)), POLICY).windows[0])
