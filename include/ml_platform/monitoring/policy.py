"""The governed retrain policy: a pure decision over the monitoring history.

`decide_retrain(history, policy)` says whether the champion should be retrained now, and why,
from per-window monitoring numbers (drift effect sizes, realised AUC against late labels) and
the retrains already done. It never does I/O: the monitoring DAG builds a `History` from
`monitoring.drift_reports`, `monitoring.performance` and `monitoring.retrain_decisions`, and
writes the returned decision there. A retrain only produces a challenger; the promotion gate
still decides what is served.

The rules, in order:

1. Budget: at most `max_retrains` retrains (any kind, scheduled cron runs included) in the last
   `budget_days`.
2. Cool-down: none within `cooldown_days` of the last retrain.
3. Drift: the latest window drifted, and at least `persist_windows` of the last `of_windows`
   windows did. A window "drifted" when some feature (or the score) was significant after the FDR
   correction AND shifted with an effect size at or above the drift threshold (`monitoring.drift`:
   significance alone on a big sample is noise). Or performance: even the upper end of the latest
   window's 95 % interval of realised AUC is more than `auc_drop` below the offline baseline, on at
   least `min_labelled` labelled predictions (a point estimate on a few hundred labels swings by
   several points of AUC: the decision never rests on it).
4. Only windows that end after the last retrain count: a retrain can never be triggered again by
   the windows that caused it (no runaway loop).

The `decision_id` is a digest of the inputs that decided, so re-running monitoring over the same
windows yields the same id and a downstream MERGE on it acts once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal


@dataclass(frozen=True)
class RetrainPolicy:
    persist_windows: int = 2  # N drifted windows ...
    of_windows: int = 3  # ... among the last M (the latest must be one of them)
    auc_drop: float = 0.05  # realised AUC this far below the offline test AUC ...
    min_labelled: int = 200  # ... on at least this many labelled predictions
    cooldown_days: int = 14
    max_retrains: int = 2  # K retrains (scheduled ones included) ...
    budget_days: int = 28  # ... per this many days

    def __post_init__(self) -> None:
        if not 1 <= self.persist_windows <= self.of_windows:
            raise ValueError(
                f"need 1 <= persist_windows <= of_windows, got {self.persist_windows} of {self.of_windows}"
            )
        for name in ("auc_drop", "min_labelled", "cooldown_days", "max_retrains", "budget_days"):
            if getattr(self, name) < 0:
                raise ValueError(f"retrain policy {name} must be >= 0, got {getattr(self, name)!r}")

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None) -> RetrainPolicy:
        values = dict(values or {})
        fields = cls.__dataclass_fields__
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(f"unknown retrain policy key(s) {unknown}; known: {sorted(fields)}")
        out: dict[str, Any] = {}
        for k, v in values.items():
            kind = float if fields[k].type in ("float", float) else int
            try:
                out[k] = kind(v)
            except (TypeError, ValueError):
                what = "a number" if kind is float else "an integer"
                raise ValueError(f"retrain policy {k} must be {what}, got {v!r}") from None
        return cls(**out)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """JSON schema of an overrides object: the known keys, each a non-negative number or integer."""
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                name: {"type": "number" if f.type in ("float", float) else "integer", "minimum": 0}
                for name, f in cls.__dataclass_fields__.items()
            },
        }


@dataclass(frozen=True)
class Window:
    """One monitoring window (a week) of the serving champion."""

    end: date  # last day of the window
    model_version: str
    drifted: tuple[str, ...] = ()  # features (or "score") that drifted (`monitoring.drift.FeatureDrift.drifted`)
    max_effect: float = 0.0  # the largest PSI over features as a multiple of its threshold, significant or not
    realised_auc: float | None = None  # on predictions of this window whose labels are known
    auc_ci_high: float | None = None  # upper end of its bootstrap 95 % interval
    labelled: int = 0
    baseline_auc: float | None = None  # the model's offline test AUC (registry)


@dataclass(frozen=True)
class Retrain:
    """A retrain that happened (or was decided): the policy's memory."""

    at: datetime
    kind: Literal["drift", "performance", "scheduled", "manual"]
    decision_id: str | None = None


@dataclass(frozen=True)
class History:
    now: datetime
    windows: tuple[Window, ...]
    retrains: tuple[Retrain, ...] = ()


@dataclass(frozen=True)
class RetrainDecision:
    decision_id: str
    retrain: bool
    trigger: Literal["drift", "performance"] | None
    reason: str
    decided_at: str
    windows: tuple[str, ...]  # window end dates considered (ISO), oldest first
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide_retrain(history: History, policy: RetrainPolicy | None = None) -> RetrainDecision:
    """The policy over the monitoring windows: what the windows say (persistent drift, or a
    realised AUC whose interval is surely below the offline one), then the governors (the retrain
    budget, the cool-down). The decision's id is a digest of what it decided on, so a rerun of the
    same window decides the same decision."""
    p = policy or RetrainPolicy()
    windows = sorted(history.windows, key=lambda w: w.end)
    last = max(history.retrains, key=lambda r: r.at, default=None)
    fresh = [w for w in windows if last is None or w.end > last.at.date()]  # rule 4
    recent = fresh[-p.of_windows :]
    latest = windows[-1] if windows else None
    numbers = _numbers(fresh, recent, latest, last)

    def done(retrain: bool, trigger: Literal["drift", "performance"] | None, reason: str) -> RetrainDecision:
        return _decision(history, p, recent, latest, numbers, retrain, trigger, reason)

    if latest is None:
        return done(False, None, "no monitoring window yet")
    if latest not in fresh:
        return done(
            False,
            None,
            f"the latest window ({latest.end}) ends before the last retrain "
            f"({last.at.date() if last else '-'}): its data already caused a retrain",
        )
    trigger, why = _signal(latest, recent, p, numbers)
    if trigger is None:
        return done(False, None, why)
    held = _governed(history, p, last, numbers)
    return done(False, None, f"{why}, but {held}") if held else done(True, trigger, why)


def _numbers(fresh: list[Window], recent: list[Window], latest: Window | None, last: Retrain | None) -> dict[str, Any]:
    """What the decision saw, kept with it."""
    return {
        "windows_after_last_retrain": len(fresh),
        "drifted_in_last": [w.end.isoformat() for w in recent if w.drifted],
        "latest_drifted": list(latest.drifted) if latest else [],
        "latest_max_effect": latest.max_effect if latest else None,
        "latest_realised_auc": latest.realised_auc if latest else None,
        "latest_auc_ci_high": latest.auc_ci_high if latest else None,
        "latest_labelled": latest.labelled if latest else 0,
        "baseline_auc": latest.baseline_auc if latest else None,
        "last_retrain": last.at.isoformat() if last else None,
    }


def _signal(
    latest: Window, recent: list[Window], p: RetrainPolicy, numbers: dict[str, Any]
) -> tuple[Literal["drift", "performance"] | None, str]:
    """What the windows say before the governors: the trigger and why, or None and why not."""
    drifted = [w for w in recent if w.drifted]
    drop = (
        latest.baseline_auc - latest.realised_auc
        if latest.realised_auc is not None and latest.baseline_auc is not None
        else None
    )
    # the drop the interval guarantees: the baseline minus the best AUC the labels allow
    sure = (
        latest.baseline_auc - latest.auc_ci_high
        if latest.auc_ci_high is not None and latest.baseline_auc is not None
        else None
    )
    numbers["auc_drop"], numbers["auc_drop_lower_bound"] = drop, sure
    if latest.drifted and len(drifted) >= p.persist_windows:
        return "drift", (
            f"drift in {len(drifted)} of the last {len(recent)} windows including the latest "
            f"({', '.join(latest.drifted)}; largest PSI {latest.max_effect:.2f} x its threshold)"
        )
    if sure is not None and sure > p.auc_drop and latest.labelled >= p.min_labelled:
        return "performance", (
            f"realised AUC {latest.realised_auc:.3f} (95 % interval up to {latest.auc_ci_high:.3f}) is at "
            f"least {sure:.3f} below the offline {latest.baseline_auc:.3f} (> {p.auc_drop}) on "
            f"{latest.labelled} labels"
        )
    return None, "; ".join([_why_no_drift(latest, drifted, recent, p), _why_no_performance(latest, drop, p)])


def _why_no_drift(latest: Window, drifted: list[Window], recent: list[Window], p: RetrainPolicy) -> str:
    if latest.drifted:
        return (
            f"drift in only {len(drifted)} of the last {len(recent)} windows "
            f"(needs {p.persist_windows} of {p.of_windows})"
        )
    return f"no feature drifted in the latest window (largest PSI {latest.max_effect:.2f} x its threshold)"


def _why_no_performance(latest: Window, drop: float | None, p: RetrainPolicy) -> str:
    if latest.realised_auc is not None and latest.labelled < p.min_labelled:  # no point on a few labels
        return f"only {latest.labelled} labels so far (a realised AUC needs {p.min_labelled})"
    if drop is not None and drop > p.auc_drop:
        why_not = (
            f"its interval reaches {latest.auc_ci_high:.3f}"
            if latest.auc_ci_high is not None
            else "it has no interval (too few labels or one class)"
        )
        return f"realised AUC {latest.realised_auc:.3f} is {drop:.3f} below the offline, but {why_not}"
    if drop is not None:
        return f"realised AUC {latest.realised_auc:.3f} within {p.auc_drop} of the offline {latest.baseline_auc:.3f}"
    return "no realised AUC yet (labels not in)"


def _governed(history: History, p: RetrainPolicy, last: Retrain | None, numbers: dict[str, Any]) -> str | None:
    """Why the governors hold a retrain the windows call for (the budget, the cool-down), or None."""
    since = history.now - timedelta(days=p.budget_days)
    used = [r for r in history.retrains if r.at > since]
    numbers["retrains_in_budget_period"] = len(used)
    if len(used) >= p.max_retrains:
        return (
            f"the budget is spent: {len(used)} retrains (scheduled ones included) "
            f"in the last {p.budget_days} days, at most {p.max_retrains}"
        )
    if last is not None and history.now - last.at < timedelta(days=p.cooldown_days):
        return (
            f"in cool-down: the last retrain ({last.kind}, {last.at.date()}) was less than {p.cooldown_days} days ago"
        )
    return None


def _decision(
    history: History,
    p: RetrainPolicy,
    recent: list[Window],
    latest: Window | None,
    numbers: dict[str, Any],
    retrain: bool,
    trigger: Literal["drift", "performance"] | None,
    reason: str,
) -> RetrainDecision:
    body = {
        "retrain": retrain,
        "trigger": trigger,
        "latest": latest.end.isoformat() if latest else None,
        "version": latest.model_version if latest else None,
        "last_retrain": numbers["last_retrain"],
        "policy": asdict(p),
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    return RetrainDecision(
        decision_id=f"rd-{digest}",
        retrain=retrain,
        trigger=trigger,
        reason=reason,
        decided_at=history.now.isoformat(),
        windows=tuple(w.end.isoformat() for w in recent),
        numbers=numbers,
    )
