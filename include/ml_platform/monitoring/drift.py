"""Feature and score drift between a reference and a current sample: significance AND effect size.

Runs in the drift environment (`.venv-drift`: alibi-detect 0.13 pins numpy<2 and pandas<3), so
this module imports only numpy and pandas at the top and works on both lines of each. Called
from `@task.external_python` tasks with JSON-able ids in and out.

Per feature, `detect_drift` reports:

- a two-sample test through a `Detector` (default `AlibiTabularDrift`: alibi-detect's
  `TabularDrift`, Kolmogorov-Smirnov for numeric and chi-squared for categorical columns) with a
  false-discovery-rate correction over all features (Benjamini-Hochberg at `q_value`);
- an effect size: the population stability index (numeric: 10 quantile bins of the reference;
  categorical: the categories), and the test statistic (the KS distance for numeric columns).

A feature has *drifted* only when it is significant after the correction AND its PSI is at least
`effect_threshold` (default 0.1; a 0.5 sigma mean shift of a normal feature is about 0.22, two
samples of one distribution of 5 000 rows about 0.003): on big samples a tiny shift is
"significant" and is not worth a retrain.
A missing value counts as a value below every observed one (numeric) or as its own category, so
a change in the share of missing values is a shift too. Beyond `max_rows` rows a side is sampled
uniformly (seeded), and the result says so. Swapping alibi-detect for another test library means
one more `Detector` class here (e.g. `scipy.stats.ks_2samp` and `chi2_contingency` directly).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

PSI_BINS = 10
_EPS = 1e-4  # floor of a bin's share in the PSI (an empty bin would make it infinite)


class Detector(Protocol):
    name: str

    def test(
        self, reference: np.ndarray, current: np.ndarray, categorical: list[int], q_value: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per column: p-value, statistic, significant after the FDR correction over all columns."""
        ...


class AlibiTabularDrift:
    """alibi-detect `TabularDrift`: KS (numeric) / chi-squared (categorical), FDR over features."""

    name = "alibi-detect TabularDrift (KS / chi-squared, FDR)"

    def test(
        self, reference: np.ndarray, current: np.ndarray, categorical: list[int], q_value: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from alibi_detect.cd import TabularDrift

        cd = TabularDrift(
            reference, p_val=q_value, categories_per_feature={i: None for i in categorical}, correction="fdr"
        )
        out = cd.predict(current, drift_type="batch", return_p_val=True, return_distance=True)["data"]
        p = np.asarray(out["p_val"], dtype="float64")
        threshold = out["threshold"]  # the Benjamini-Hochberg cut when any column is significant
        significant = p < float(threshold) if out["is_drift"] else np.zeros(len(p), dtype=bool)
        return p, np.asarray(out["distance"], dtype="float64"), significant


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # numeric | categorical
    p_value: float
    statistic: float  # KS distance (numeric) or chi-squared statistic (categorical)
    psi: float
    significant: bool  # after the FDR correction
    drifted: bool  # significant and psi >= threshold
    ref_null_share: float
    cur_null_share: float
    threshold: float = 0.1  # the PSI this feature had to reach (calibrated, or the effect threshold)


@dataclass(frozen=True)
class DriftResult:
    detector: str
    q_value: float
    effect_threshold: float
    n_reference: int  # rows tested (after sampling)
    n_current: int
    reference_rows: int  # rows available before sampling
    current_rows: int
    detector_seconds: float
    features: list[FeatureDrift] = field(default_factory=list)

    @property
    def drifted(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def max_psi(self) -> float:
        return max((f.psi for f in self.features), default=0.0)

    @property
    def max_effect(self) -> float:
        """The largest PSI as a multiple of its feature's threshold (1 or more: at or over it)."""
        return max((f.psi / f.threshold if f.threshold > 0 else f.psi for f in self.features), default=0.0)

    def important_drift(self, importance: dict[str, float]) -> float:
        """The share of the model's attention on drifted features: the drifted features' global
        importance (e.g. mean |SHAP|) over all watched features' (0 when the model ignores what
        moved, 1 when everything it uses moved). A feature missing from `importance` weighs 0."""
        total = sum(max(importance.get(f.feature, 0.0), 0.0) for f in self.features)
        moved = sum(max(importance.get(f, 0.0), 0.0) for f in self.drifted)
        return moved / total if total > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"drifted": self.drifted, "max_psi": self.max_psi}


def _sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=max_rows, random_state=seed) if len(frame) > max_rows else frame


def _numeric(ref: pd.Series, cur: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    r, c = ref.to_numpy(dtype="float64", na_value=np.nan), cur.to_numpy(dtype="float64", na_value=np.nan)
    both = np.concatenate([r, c])
    finite = both[np.isfinite(both)]
    sentinel = (finite.min() - 1.0) if finite.size else -1.0
    return np.where(np.isnan(r), sentinel, r), np.where(np.isnan(c), sentinel, c)


def _codes(ref: pd.Series, cur: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    r = ref.astype("object").where(ref.notna(), "<null>").astype(str)
    c = cur.astype("object").where(cur.notna(), "<null>").astype(str)
    cats = {v: i for i, v in enumerate(sorted(set(r) | set(c)))}
    return r.map(cats).to_numpy(dtype="float64"), c.map(cats).to_numpy(dtype="float64")


def psi(reference: np.ndarray, current: np.ndarray, categorical: bool = False, bins: int = PSI_BINS) -> float:
    """Population stability index of `current` against `reference` (0: the same shape)."""
    if categorical:
        cats = np.union1d(np.unique(reference), np.unique(current))
        r = np.array([(reference == v).sum() for v in cats], dtype="float64")
        c = np.array([(current == v).sum() for v in cats], dtype="float64")
    else:
        edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
        r = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1).astype("float64")
        c = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1).astype("float64")
    r = np.maximum(r / max(r.sum(), 1.0), _EPS)
    c = np.maximum(c / max(c.sum(), 1.0), _EPS)
    return float(np.sum((c - r) * np.log(c / r)))


def calibrate_thresholds(
    windows: list[pd.DataFrame],
    features: list[str],
    categorical: list[str] | tuple[str, ...] = (),
    *,
    lag: int = 1,
    margin: float = 1.5,
    floor: float = 0.1,
    quantile: float = 0.95,
) -> dict[str, float]:
    """Per feature, the PSI above which a change over `lag` windows is more than the feature's own
    natural movement: `margin` times the `quantile` of the PSIs between windows `lag` apart among
    `windows` (oldest first, e.g. the weekly snapshots up to the champion's training cutoff), never
    below `floor`. A trending feature (tenure, lifetime totals) moves every week: its threshold
    learns how much, instead of the feature being excluded from monitoring."""
    if lag < 1:
        raise ValueError(f"lag must be at least 1, got {lag}")
    if len(windows) < lag + 2:
        raise ValueError(f"need at least {lag + 2} windows to calibrate a lag of {lag} on, got {len(windows)}")
    out = {}
    for f in features:
        moves = []
        for before, after in zip(windows, windows[lag:]):
            r, c = (_codes if f in categorical else _numeric)(before[f], after[f])
            moves.append(psi(r, c, categorical=f in categorical))
        out[f] = max(floor, margin * float(np.quantile(moves, quantile)))
    return out


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: list[str],
    categorical: list[str] | tuple[str, ...] = (),
    *,
    q_value: float = 0.05,
    effect_threshold: float = 0.1,
    max_rows: int = 100_000,
    seed: int = 0,
    detector: Detector | None = None,
    thresholds: dict[str, float] | None = None,
) -> DriftResult:
    """Test every column of `features` (those in `categorical` as categories) for a shift; a
    feature's PSI must reach `thresholds[feature]` (from `calibrate_thresholds`) when given, else
    `effect_threshold`."""
    missing = sorted(
        {f for f in features if f not in reference.columns} | {f for f in features if f not in current.columns}
    )
    if missing:
        raise ValueError(f"column(s) {missing} missing from the reference or the current sample")
    if not len(reference) or not len(current):
        raise ValueError(f"need rows on both sides, got {len(reference)} reference and {len(current)} current")
    unknown = sorted(set(categorical) - set(features))
    if unknown:
        raise ValueError(f"categorical column(s) {unknown} are not among the features")
    det = detector or AlibiTabularDrift()
    ref, cur = _sample(reference[features], max_rows, seed), _sample(current[features], max_rows, seed + 1)
    cat_idx = [i for i, f in enumerate(features) if f in categorical]
    r_cols, c_cols = [], []
    for f in features:
        r, c = (_codes if f in categorical else _numeric)(ref[f], cur[f])
        r_cols.append(r)
        c_cols.append(c)
    x_ref, x_cur = np.column_stack(r_cols), np.column_stack(c_cols)
    t0 = time.perf_counter()
    p, stat, sig = det.test(x_ref, x_cur, cat_idx, q_value)
    psis = [psi(x_ref[:, i], x_cur[:, i], categorical=i in cat_idx) for i in range(len(features))]
    seconds = time.perf_counter() - t0
    out = [
        FeatureDrift(
            feature=f,
            kind="categorical" if i in cat_idx else "numeric",
            p_value=float(p[i]),
            statistic=float(stat[i]),
            psi=psis[i],
            significant=bool(sig[i]),
            threshold=(thresholds or {}).get(f, effect_threshold),
            drifted=bool(sig[i]) and psis[i] >= (thresholds or {}).get(f, effect_threshold),
            ref_null_share=float(ref[f].isna().mean()),
            cur_null_share=float(cur[f].isna().mean()),
        )
        for i, f in enumerate(features)
    ]
    return DriftResult(
        detector=det.name,
        q_value=q_value,
        effect_threshold=effect_threshold,
        n_reference=len(ref),
        n_current=len(cur),
        reference_rows=len(reference),
        current_rows=len(current),
        detector_seconds=seconds,
        features=out,
    )
