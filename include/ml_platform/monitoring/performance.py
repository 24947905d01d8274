"""Realised performance against late labels, per model version, variant and slice, with intervals.

Input: one row per labelled prediction (`monitoring.labels`, which carries what was served:
model version, variant, probability) joined with slice columns (e.g. a sensitive attribute or
region from silver.customers). Output rows for `monitoring.performance`: sample size, positives,
ROC AUC with a bootstrap 95 % interval, precision and recall at the model's threshold, expected
calibration error, and the gap to the model's offline test AUC from the registry. A group with
too few rows or a single class gets no AUC and says why, instead of a number that means nothing.

`compare_variants` answers the A/B question with a confidence statement: the challenger variant's
AUC minus the champion variant's, with a bootstrap interval, and "better" / "worse" only when the
interval excludes zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ml_platform.evaluation.metrics import expected_calibration_error, roc_auc

MIN_ROWS = 30  # below this a group's AUC is not reported


def _boot_aucs(y: np.ndarray, p: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    out = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        a = roc_auc(y[i], p[i])
        if a is not None:
            out.append(a)
    return np.asarray(out)


def group_metrics(
    y: np.ndarray, p: np.ndarray, threshold: float, n_boot: int, rng: np.random.Generator
) -> dict[str, Any]:
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    pred = p >= threshold
    tp = int((pred & (y == 1)).sum())
    out: dict[str, Any] = {
        "n": len(y),
        "positives": int(y.sum()),
        "threshold": threshold,
        "precision": tp / int(pred.sum()) if pred.any() else None,
        "recall": tp / int(y.sum()) if y.any() else None,
        "ece": expected_calibration_error(y, p) if len(y) else None,
        "roc_auc": None,
        "auc_ci_low": None,
        "auc_ci_high": None,
        "note": None,
    }
    if len(y) < MIN_ROWS:
        out["note"] = f"{len(y)} labelled predictions: fewer than {MIN_ROWS}, no AUC"
        return out
    auc = roc_auc(y, p)
    if auc is None:
        out["note"] = "one class only: AUC undefined"
        return out
    boots = _boot_aucs(y, p, n_boot, rng)
    out.update(roc_auc=auc, auc_ci_low=float(np.quantile(boots, 0.025)), auc_ci_high=float(np.quantile(boots, 0.975)))
    return out


def performance_table(
    frame: pd.DataFrame,
    slices: list[str] | tuple[str, ...] = (),
    *,
    thresholds: dict[str, float] | None = None,
    offline_auc: dict[str, float] | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (model_version, grouping, group): the version overall, per variant, per slice value."""
    need = {"model_version", "variant", "churned", "churn_probability", *slices}
    missing = sorted(need - set(frame.columns))
    if missing:
        raise ValueError(f"labelled predictions lack column(s) {missing}")
    rng = np.random.default_rng(seed)
    rows = []
    for version, part in frame.groupby("model_version", sort=True):
        version = str(version)
        thr = (thresholds or {}).get(version, 0.5)
        groupings: list[tuple[str, Any, pd.DataFrame]] = [("all", "all", part)]
        groupings += [("variant", v, g) for v, g in part.groupby("variant", sort=True)]
        for col in slices:
            groupings += [(col, v, g) for v, g in part.groupby(part[col].fillna("<null>"), sort=True)]
        for by, value, g in groupings:
            m = group_metrics(g["churned"].to_numpy(), g["churn_probability"].to_numpy(), thr, n_boot, rng)
            base = (offline_auc or {}).get(version)
            rows.append(
                {
                    "model_version": version,
                    "grouping": by,
                    "group": str(value),
                    **m,
                    "offline_auc": base,
                    "auc_vs_offline": (m["roc_auc"] - base) if m["roc_auc"] is not None and base is not None else None,
                }
            )
    return pd.DataFrame(rows)


def compare_variants(frame: pd.DataFrame, n_boot: int = 500, seed: int = 0) -> dict[str, Any]:
    """Challenger variant vs champion variant on their own traffic: AUC difference with a 95 % interval."""
    rng = np.random.default_rng(seed)
    parts = {v: g for v, g in frame.groupby("variant")}
    if "champion" not in parts or "challenger" not in parts:
        return {"verdict": "no A/B traffic with labels for both variants", "difference": None}
    (yc, pc), (yx, px) = (
        (parts[v]["churned"].to_numpy(int), parts[v]["churn_probability"].to_numpy(float))
        for v in ("champion", "challenger")
    )
    a_c, a_x = roc_auc(yc, pc), roc_auc(yx, px)
    n = {"champion": len(yc), "challenger": len(yx)}
    if a_c is None or a_x is None or min(n.values()) < MIN_ROWS:
        return {
            "verdict": f"not enough labelled traffic to compare ({n}, each needs {MIN_ROWS} and both classes)",
            "difference": None,
            "n": n,
        }
    diffs = []
    for _ in range(n_boot):
        i, j = rng.integers(0, len(yc), len(yc)), rng.integers(0, len(yx), len(yx))
        b_c, b_x = roc_auc(yc[i], pc[i]), roc_auc(yx[j], px[j])
        if b_c is not None and b_x is not None:
            diffs.append(b_x - b_c)
    lo, hi = (float(q) for q in np.quantile(diffs, [0.025, 0.975]))
    d = a_x - a_c
    if lo > 0:
        verdict = f"challenger better: AUC +{d:.3f} (95 % interval {lo:+.3f} to {hi:+.3f})"
    elif hi < 0:
        verdict = f"challenger worse: AUC {d:+.3f} (95 % interval {lo:+.3f} to {hi:+.3f})"
    else:
        verdict = f"no significant difference: AUC {d:+.3f} (95 % interval {lo:+.3f} to {hi:+.3f} includes 0)"
    return {
        "verdict": verdict,
        "difference": d,
        "ci_low": lo,
        "ci_high": hi,
        "champion_auc": a_c,
        "challenger_auc": a_x,
        "n": n,
    }
