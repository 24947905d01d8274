"""Drift detector time: the platform's `detect_drift` vs plain scipy tests over the same columns.

    python benchmarks/drift.py [--rows 100000] [--features 50] [--big 1000000] [--smoke]

Runs in the drift environment (re-executes itself there when alibi-detect is not importable).
Synthetic reference and current samples, 4 in 5 columns numeric (normal, 10 % missing) and 1 in
5 categorical (8 categories), one numeric column shifted by 0.5 sigma. Prints:

- `detect_drift` on rows x features: detector time (the tests + the effect sizes, what the
  5-second goal is about) and the whole call (with encoding);
- `detect_drift` on `--big` rows per side with the default 100 000-row sample;
- the floor: `scipy.stats.ks_2samp` (asymptotic, as alibi-detect calls it) per numeric column
  and `chi2_contingency` per categorical column on the same samples, nothing else;
- the calibrated detector (`calibrate_thresholds` over 8 weekly windows, lag 4, then
  `detect_drift` with those thresholds) on the same rows x features;
- over `simulate.py`'s seeded customer panel (`--seeds` worlds, 12 monitored weeks each):
  the false-alarm rate (drifted feature-weeks of all watched ones) of a stable world, and the
  detection delay (weeks from the shift to the first retrain decision) of the same world shifted
  from its 4th monitored week, for the calibrated detector and for the static one the platform
  used before (the champion's reference, one PSI threshold, every feature watched).

Goal: <= 5 s of detector time for 100 000 rows x 50 features.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _in_drift_env() -> None:
    try:
        import alibi_detect  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(ROOT / "include"))
        from ml_platform.config import get_settings

        python = str(get_settings().drift_python)
        if not Path(python).exists() and (ROOT / ".venv-drift" / "bin" / "python").exists():
            python = str(ROOT / ".venv-drift" / "bin" / "python")  # this checkout's (scripts/env.sh)
        if not Path(python).exists():
            raise SystemExit(f"the drift environment is missing ({python}): run `make setup`") from None
        env = {**os.environ, "PYTHONPATH": str(ROOT / "include")}
        os.execve(python, [python, __file__, *sys.argv[1:]], env)


def frames(rows: int, features: int, seed: int):  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    cols, cats = {}, []
    for i in range(features):
        name = f"f{i:02d}"
        if i % 5 == 4:
            cols[name] = rng.choice([f"c{k}" for k in range(8)], rows)
            cats.append(name)
        else:
            x = rng.normal(size=rows)
            x[rng.random(rows) < 0.1] = np.nan
            cols[name] = x
    return pd.DataFrame(cols), cats


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000, help="rows per side (default 100000)")
    p.add_argument("--features", type=int, default=50, help="columns (default 50, every 5th categorical)")
    p.add_argument("--big", type=int, default=1_000_000, help="rows per side for the sampled run (default 1000000)")
    p.add_argument("--seeds", type=int, default=5, help="simulated worlds per scenario (default 5)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, to check the script runs")
    a = p.parse_args()
    if a.smoke:
        a.rows, a.features, a.big, a.seeds = 5_000, 10, 20_000, 1
    _in_drift_env()
    import numpy as np
    from scipy.stats import chi2_contingency, ks_2samp

    from ml_platform.monitoring.drift import detect_drift

    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    say(f"{a.rows} rows x {a.features} features per side")
    ref, cats = frames(a.rows, a.features, 1)
    cur, _ = frames(a.rows, a.features, 2)
    cur["f00"] = cur["f00"] + 0.5
    names = list(ref.columns)
    t = time.perf_counter()
    res = detect_drift(ref, cur, names, cats, max_rows=max(a.rows, 100_000))
    whole = time.perf_counter() - t
    say(f"detect_drift: drifted {res.drifted}")

    t = time.perf_counter()  # the floor: the same tests, scipy alone
    for c in names:
        if c in cats:
            vals = sorted(set(ref[c]) | set(cur[c]))
            chi2_contingency(np.vstack([[(ref[c] == v).sum() for v in vals], [(cur[c] == v).sum() for v in vals]]))
        else:
            ks_2samp(ref[c].dropna().to_numpy(), cur[c].dropna().to_numpy(), mode="asymp")
    floor = time.perf_counter() - t

    say(f"{a.big} rows per side, sampled to 100000")
    big_ref, _ = frames(a.big, a.features, 3)
    big_cur, _ = frames(a.big, a.features, 4)
    t = time.perf_counter()
    big = detect_drift(big_ref, big_cur, names, cats, max_rows=100_000)
    big_whole = time.perf_counter() - t

    say("the calibrated detector: thresholds from 8 windows, lag 4")
    from ml_platform.monitoring.drift import calibrate_thresholds

    windows = [frames(a.rows // 4, a.features, 10 + k)[0] for k in range(8)]
    t = time.perf_counter()
    thresholds = calibrate_thresholds(windows, names, cats, lag=4)
    calibrate_s = time.perf_counter() - t
    t = time.perf_counter()
    cal = detect_drift(ref, cur, names, cats, max_rows=max(a.rows, 100_000), thresholds=thresholds)
    cal_whole = time.perf_counter() - t

    from simulate import monitor, simulate_weeks, summary

    stable, shifted = [], []
    for seed in range(a.seeds):
        say(f"simulated world {seed + 1}/{a.seeds}: stable, then shifted from monitored week 4")
        stable.append(summary(monitor(simulate_weeks(weeks=18, seed=seed), calibrate_on=6)))
        shifted.append(summary(monitor(simulate_weeks(weeks=18, shift_from=9, seed=seed), calibrate_on=6)))

    print(f"\ndrift detection, {a.features} features ({len(cats)} categorical), one core of 2")
    print(f"{'':46s}{'detector s':>11s}{'whole call s':>13s}")
    print(f"{'detect_drift, ' + f'{a.rows:,} rows':46s}{res.detector_seconds:11.2f}{whole:13.2f}")
    print(
        f"{'detect_drift, ' + f'{a.big:,} rows sampled to {big.n_reference:,}':46s}"
        f"{big.detector_seconds:11.2f}{big_whole:13.2f}"
    )
    print(f"{'floor: scipy ks_2samp + chi2_contingency, ' + f'{a.rows:,}':46s}{floor:11.2f}")
    print(f"found the shifted column: {res.drifted == ['f00']}; sampled run drifted: {big.drifted}")
    print(
        f"{'calibrated detect_drift, ' + f'{a.rows:,} rows':46s}{cal.detector_seconds:11.2f}{cal_whole:13.2f}"
        f"   (calibration over 8 x {a.rows // 4:,} rows: {calibrate_s:.2f} s; drifted {cal.drifted})"
    )

    def rate(rows: list[dict], key: str) -> str:
        return f"{100 * sum(r[key] for r in rows) / len(rows):.1f} %"

    def delays(rows: list[dict], key: str) -> str:
        d = [r[key] - 3 if r[key] is not None else None for r in rows]
        return ", ".join("never" if x is None else str(x) for x in d)

    print(f"\nsimulated customer panel ({a.seeds} seeds, 12 monitored weeks, 18 watched columns with the score)")
    print(f"{'':54s}{'calibrated':>20s}{'static':>20s}")
    print(
        f"{'false alarms, stable world (feature-weeks)':54s}{rate(stable, 'false_alarm_rate'):>20s}"
        f"{rate(stable, 'static_false_alarm_rate'):>20s}"
    )
    print(f"{'retrains decided, stable world':54s}{sum(r['retrains'] for r in stable):>20d}{'-':>20s}")
    print(
        f"{'weeks from the shift to the first drift (<0: before)':54s}{delays(shifted, 'first_drift_week'):>20s}"
        f"{delays(shifted, 'static_first_drift_week'):>20s}"
    )
    print(f"{'weeks from the shift to the retrain decision':54s}{delays(shifted, 'first_retrain_week'):>20s}")
    err = [r["est_auc_mean_abs_error"] for r in stable]
    print(f"label-free AUC estimate vs realised, stable world: mean |error| {sum(err) / len(err):.4f}")
    ok = res.detector_seconds <= 5.0
    print(
        f"goal <= 5 s detector time at {a.rows:,} x {a.features}: {'met' if ok else 'NOT met'} "
        f"({res.detector_seconds / floor:.1f}x the scipy floor)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
