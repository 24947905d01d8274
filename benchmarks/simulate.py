"""A seeded synthetic world of customers, week by week, for proving the monitoring (not a demo
feature, not part of the library: `benchmarks/drift.py` and the unit tier use it).

    weeks = simulate_weeks(weeks=20, shift_from=None, seed=0)      # stable world
    weeks = simulate_weeks(weeks=20, shift_from=12, seed=0)        # the demo's kind of shift
    report = monitor(weeks, calibrate_on=8)                         # the production code over them

A panel of customers buys every week (Poisson counts, log-normal amounts, three channels); each
week's snapshot holds the features the platform computes, some of which trend with time as in the
demo (tenure, lifetime totals, and in a young business the 90/180-day windows) and some of which
do not. From `shift_from` on, customers buy less often, pay more and move from the web to mobile,
like the demo's generator shift, and churn follows the model's score less closely.

`monitor` runs the monitoring code the monitoring DAG runs (`monitoring.drift.calibrate_thresholds`,
`detect_drift` against the previous window, `DriftResult.important_drift`,
`monitoring.estimate.estimate_performance`, `monitoring.policy.decide_retrain`) and, for comparison,
the static detector the platform used before: the last calibration week as a fixed reference and
one PSI threshold for every feature. Runs in either environment (numpy and pandas, both lines); the
drift test needs alibi-detect, so callers run it in the drift environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd

from ml_platform.evaluation.metrics import roc_auc
from ml_platform.monitoring.drift import calibrate_thresholds, detect_drift
from ml_platform.monitoring.estimate import estimate_performance
from ml_platform.monitoring.policy import History, RetrainPolicy, Window, decide_retrain

NUMERIC = [
    "tenure_days",
    "recency_days",
    "frequency_30d",
    "monetary_30d",
    "frequency_90d",
    "monetary_90d",
    "frequency_180d",
    "monetary_180d",
    "frequency_lifetime",
    "monetary_lifetime",
    "avg_amount_90d",
    "max_amount_90d",
    "amount_trend",
    "online_share_90d",
    "mobile_share_90d",
    "active_weeks_90d",
]
CATEGORICAL = ["preferred_channel"]
FEATURES = NUMERIC + CATEGORICAL
SCORE = "score"
#: the features the shift moves within weeks (purchase counts, amounts, channels over 30 to 180 days);
#: tenure does not move with it and lifetime totals only slowly
SHIFTED = set(FEATURES) - {"tenure_days", "frequency_lifetime", "monetary_lifetime"}
#: the score's weights: the model's global importance follows them
_WEIGHTS = {"recency_days": 0.045, "frequency_30d": -0.55, "amount_trend": -0.9, "active_weeks_90d": -0.12}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def churn_score(frame: pd.DataFrame) -> np.ndarray:
    """The 'champion': a calibrated churn probability of the stable world's customers."""
    z = 0.9 + sum(w * frame[f].to_numpy(dtype=float) for f, w in _WEIGHTS.items())
    return _sigmoid(z)


def importance(frame: pd.DataFrame) -> dict[str, float]:
    """Global importance of each feature for `churn_score` (mean |weight x centred value|, the
    linear model's mean |SHAP|); features it does not use weigh 0."""
    out = {f: 0.0 for f in FEATURES}
    for f, w in _WEIGHTS.items():
        x = frame[f].to_numpy(dtype=float)
        out[f] = float(np.mean(np.abs(w * (x - x.mean()))))
    return out


def simulate_weeks(
    weeks: int = 20, *, shift_from: int | None = None, customers: int = 4000, seed: int = 0, burn_in: int = 30
) -> list[pd.DataFrame]:
    """`weeks` weekly snapshots (features + `churned`, drawn from the week's true churn
    probability), after `burn_in` unrecorded weeks; from week index `shift_from` on (0-based), the
    shifted world."""
    rng = np.random.default_rng(seed)
    n = customers
    rate = rng.gamma(2.0, 0.6, n)  # purchases a week
    mu = rng.normal(3.6, 0.45, n)  # log amount
    tenure = rng.integers(0, 200, n).astype(float)  # a young business, as the demo's
    counts = np.zeros((26, n))
    sums = np.zeros((26, n))
    maxes = np.zeros((13, n))
    online = np.zeros((13, n))
    mobile = np.zeros((13, n))
    life_n = np.zeros(n)
    life_m = np.zeros(n)
    last = np.full(n, -1.0)
    out = []
    for t in range(burn_in + weeks):
        shifted = shift_from is not None and t - burn_in >= shift_from
        k = rng.poisson(rate * (0.55 if shifted else 1.0))
        amounts = np.exp(rng.normal(np.repeat(mu + (0.4 if shifted else 0.0), k), 0.5))
        owner = np.repeat(np.arange(n), k)
        week_sum = np.bincount(owner, weights=amounts, minlength=n)
        week_max = np.zeros(n)
        np.maximum.at(week_max, owner, amounts)
        probs = [0.3, 0.55, 0.15] if shifted else [0.55, 0.3, 0.15]
        ch = rng.binomial(k, probs[0])
        mob = rng.binomial(k - ch, probs[1] / (probs[1] + probs[2]))
        counts, sums = np.roll(counts, 1, 0), np.roll(sums, 1, 0)
        maxes, online, mobile = np.roll(maxes, 1, 0), np.roll(online, 1, 0), np.roll(mobile, 1, 0)
        counts[0], sums[0], maxes[0], online[0], mobile[0] = k, week_sum, week_max, ch, mob
        life_n += k
        life_m += week_sum
        tenure += 7
        last = np.where(k > 0, 0.0, np.where(last >= 0, last + 7, -1.0))
        if t < burn_in:
            continue
        f90, m90 = counts[:13].sum(0), sums[:13].sum(0)
        on90, mob90 = online.sum(0), mobile.sum(0)
        store90 = f90 - on90 - mob90
        frame = pd.DataFrame(
            {
                "tenure_days": tenure,
                "recency_days": np.where(last >= 0, last + rng.integers(0, 7, n), tenure),
                "frequency_30d": counts[:4].sum(0),
                "monetary_30d": sums[:4].sum(0),
                "frequency_90d": f90,
                "monetary_90d": m90,
                "frequency_180d": counts.sum(0),
                "monetary_180d": sums.sum(0),
                "frequency_lifetime": life_n.copy(),
                "monetary_lifetime": life_m.copy(),
                "avg_amount_90d": np.where(f90 > 0, m90 / np.maximum(f90, 1), np.nan),
                "max_amount_90d": maxes.max(0),
                "amount_trend": np.where(m90 > 0, sums[:4].sum(0) * 3.25 / np.maximum(m90, 1e-9), np.nan),
                "online_share_90d": np.where(f90 > 0, on90 / np.maximum(f90, 1), np.nan),
                "mobile_share_90d": np.where(f90 > 0, mob90 / np.maximum(f90, 1), np.nan),
                "active_weeks_90d": (counts[:13] > 0).sum(0).astype(float),
                "preferred_channel": np.select(
                    [f90 == 0, (on90 >= mob90) & (on90 >= store90), mob90 >= store90],
                    ["none", "online", "mobile"],
                    "store",
                ),
            }
        )
        p = churn_score(frame.fillna({"amount_trend": 0.0}))
        # after the shift, churn follows the score less closely (what a retrain would fix)
        p_true = _sigmoid(0.45 * np.log(p / (1 - p)) + 0.2) if shifted else p
        frame["churned"] = (rng.random(n) < p_true).astype(int)
        out.append(frame)
    return out


@dataclass
class WeekResult:
    week: int
    drifted: list[str]  # calibrated, against the previous week
    important_drift: float
    static_drifted: list[str]  # the static detector: fixed reference, one threshold
    est_auc: float | None
    est_auc_low: float | None
    est_auc_high: float | None
    realised_auc: float | None
    retrain: bool
    reason: str


@dataclass
class MonitorReport:
    calibrate_on: int
    thresholds: dict[str, float]
    weeks: list[WeekResult] = field(default_factory=list)

    def false_alarm_rate(self, static: bool = False) -> float:
        """Drifted feature-weeks over watched feature-weeks (score included)."""
        cells = len(self.weeks) * (len(FEATURES) + 1)
        hits = sum(len(w.static_drifted if static else w.drifted) for w in self.weeks)
        return hits / cells if cells else 0.0

    def first_retrain(self) -> int | None:
        return next((w.week for w in self.weeks if w.retrain), None)

    def first_drift(self, static: bool = False) -> int | None:
        return next((w.week for w in self.weeks if (w.static_drifted if static else w.drifted)), None)


def _frame(f: pd.DataFrame) -> pd.DataFrame:
    return f[FEATURES].assign(**{SCORE: churn_score(f.fillna({"amount_trend": 0.0}))})


def monitor(
    weeks: list[pd.DataFrame],
    *,
    calibrate_on: int = 6,
    lag: int = 4,
    policy: RetrainPolicy | None = None,
    effect_threshold: float = 0.05,
    seed: int = 0,
) -> MonitorReport:
    """The first `calibrate_on` weeks are the champion's (its thresholds and importance); every
    later week is monitored as the monitoring DAG does it, and decided on by the retrain policy."""
    if len(weeks) <= calibrate_on:
        raise ValueError(f"need more than {calibrate_on} weeks, got {len(weeks)}")
    watched = FEATURES + [SCORE]
    frames = [_frame(w) for w in weeks]
    thresholds = calibrate_thresholds(frames[:calibrate_on], watched, CATEGORICAL, lag=lag, floor=effect_threshold)
    weights = importance(weeks[calibrate_on - 1].fillna({"amount_trend": 0.0}))
    report = MonitorReport(calibrate_on=calibrate_on, thresholds=thresholds)
    p = policy or RetrainPolicy(max_retrains=10, budget_days=7)
    windows: list[Window] = []
    start = date(2025, 1, 5)
    for i in range(calibrate_on, len(weeks)):
        end = start + timedelta(days=7 * i)
        res = detect_drift(frames[i - lag], frames[i], watched, CATEGORICAL, thresholds=thresholds, seed=seed)
        static = detect_drift(
            frames[calibrate_on - 1], frames[i], watched, CATEGORICAL, effect_threshold=effect_threshold, seed=seed
        )
        counted = tuple(f for f in res.drifted if f == SCORE or weights.get(f, 0.0) > 0)
        windows.append(Window(end=end, model_version="1", drifted=counted, max_effect=res.max_effect))
        decision = decide_retrain(
            History(
                now=datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc),
                windows=tuple(windows[-8:]),
                retrains=(),
            ),
            p,
        )
        scores = frames[i][SCORE].to_numpy()
        est = estimate_performance(scores, 0.5, seed=seed + i)
        report.weeks.append(
            WeekResult(
                week=i - calibrate_on,
                drifted=list(res.drifted),
                important_drift=res.important_drift(weights),
                static_drifted=list(static.drifted),
                est_auc=est["est_auc"],
                est_auc_low=est["est_auc_low"],
                est_auc_high=est["est_auc_high"],
                realised_auc=roc_auc(weeks[i]["churned"].to_numpy(), scores),
                retrain=decision.retrain,
                reason=decision.reason,
            )
        )
    return report


def summary(report: MonitorReport) -> dict[str, Any]:
    """The figures a person compares: false-alarm rates, first drift and retrain weeks, estimate error."""
    err = [
        abs(w.est_auc - w.realised_auc) for w in report.weeks if w.est_auc is not None and w.realised_auc is not None
    ]
    return {
        "weeks": len(report.weeks),
        "false_alarm_rate": report.false_alarm_rate(),
        "static_false_alarm_rate": report.false_alarm_rate(static=True),
        "first_drift_week": report.first_drift(),
        "static_first_drift_week": report.first_drift(static=True),
        "first_retrain_week": report.first_retrain(),
        "retrains": sum(w.retrain for w in report.weeks),
        "est_auc_mean_abs_error": float(np.mean(err)) if err else None,
    }
