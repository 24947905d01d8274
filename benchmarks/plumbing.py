"""Hand-written numerics kept instead of a library, next to the library, in one run.

    .venv/bin/python benchmarks/plumbing.py [--rows 2000] [--boot 1000] [--smoke]

1. ROC AUC inside the monitoring bootstrap (`evaluation.metrics.roc_auc`, the platform's one AUC:
   ranks with ties averaged) vs scikit-learn's `roc_auc_score` and scipy's Mann-Whitney U, per call and for a 1000-resample
   95 % interval; the three must agree to 1e-12.
2. The feature encoder (`model.encoding.FeatureEncoder`) vs scikit-learn's `OneHotEncoder` in a
   `ColumnTransformer` (numeric passthrough), on the serving path (one row, all numeric) and on a
   training-sized frame with one categorical column; the matrices must agree where both define the
   value (the project's encoder gives NaN indicators for a NULL category, sklearn a 0 row).
Prints per-call times and the ratios; exit 1 if the outputs disagree.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))


def _per_call(fn: Callable[[], object], calls: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t) / calls


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=2000, help="labelled predictions per AUC (default 2000)")
    p.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    a = p.parse_args(argv)
    rows, boot, frame_rows, calls = (300, 50, 2000, 20) if a.smoke else (a.rows, a.boot, 100_000, 200)

    from scipy.stats import mannwhitneyu
    from sklearn.compose import ColumnTransformer
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import OneHotEncoder

    from ml_platform.evaluation.metrics import roc_auc
    from ml_platform.model.encoding import FeatureEncoder

    rng = np.random.default_rng(0)
    y = (rng.random(rows) < 0.2).astype(int)
    s = np.round(rng.random(rows) * 0.5 + y * 0.2, 3)  # rounded: ties, as served probabilities have
    aucs = {
        "project (ranks)": lambda yy, ss: roc_auc(yy, ss),
        "sklearn roc_auc_score": lambda yy, ss: roc_auc_score(yy, ss),
        "scipy mannwhitneyu": lambda yy, ss: (
            mannwhitneyu(ss[yy == 1], ss[yy == 0]).statistic / (yy.sum() * (len(yy) - yy.sum()))
        ),
    }
    values = {k: float(f(y, s)) for k, f in aucs.items()}
    agree = max(values.values()) - min(values.values()) < 1e-12
    print(f"ROC AUC of {rows:,} labelled predictions, {boot} bootstrap resamples for the interval")
    base = None
    for name, f in aucs.items():
        one = _per_call(lambda: f(y, s), calls)
        idx = [rng.integers(0, rows, rows) for _ in range(boot)]
        t = time.perf_counter()
        for i in idx:
            if y[i].min() != y[i].max():
                f(y[i], s[i])
        interval = time.perf_counter() - t
        base = base or interval
        print(f"  {name:24s} {one * 1e3:8.3f} ms/call  interval {interval:7.2f} s  ({interval / base:5.1f}x)")
    print(f"  AUC values agree: {agree} ({values['project (ranks)']:.12f})")

    n = frame_rows
    frame = pd.DataFrame(
        {
            "amount": rng.random(n) * 100,
            "count": rng.integers(0, 50, n).astype(float),
            "channel": rng.choice(["web", "store", "app", None], n),
        }
    )
    ours = FeatureEncoder.fit(frame, ["amount", "count", "channel"])
    theirs = ColumnTransformer(
        [
            ("num", "passthrough", ["amount", "count"]),
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore", categories=[ours.categories["channel"]], sparse_output=False),
                ["channel"],
            ),
        ]
    ).fit(frame)
    a_ = ours.transform(frame)
    b_ = theirs.transform(frame)
    defined = ~np.isnan(a_)
    enc_agree = a_.shape == b_.shape and bool(np.allclose(a_[defined], b_[defined]))
    numeric = FeatureEncoder.fit(frame[["amount", "count"]], ["amount", "count"])
    numeric_sk = ColumnTransformer([("num", "passthrough", ["amount", "count"])]).fit(frame[["amount", "count"]])
    one_row = frame[["amount", "count"]].iloc[:1]
    print("feature encoding: project FeatureEncoder vs sklearn ColumnTransformer + OneHotEncoder")
    r1 = _per_call(lambda: numeric.transform(one_row), calls * 10)
    r2 = _per_call(lambda: numeric_sk.transform(one_row), calls * 10)
    print(f"  one row, numeric (serving)  project {r1 * 1e6:8.1f} us   sklearn {r2 * 1e6:8.1f} us   ({r2 / r1:.1f}x)")
    f1 = _per_call(lambda: ours.transform(frame), 3)
    f2 = _per_call(lambda: theirs.transform(frame), 3)
    print(f"  {n:,} rows, 1 categorical     project {f1 * 1e3:8.1f} ms   sklearn {f2 * 1e3:8.1f} ms   ({f2 / f1:.1f}x)")
    print(f"  matrices agree where both define a value: {enc_agree}")
    return 0 if agree and enc_agree else 1


if __name__ == "__main__":
    sys.exit(main())
