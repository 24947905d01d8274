"""The monitoring weeks as a person reads them: one row per week from the monitoring tables
(drift per source, realised AUC per version, the retrain decision), a text table and a PNG.
Used by the demo's loop (`scripts/demo_weeks.py`); a script module, not part of the library."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from ml_platform.config import Settings, get_settings
from ml_platform.lake.paths import table_path
from ml_platform.lake.reader import read_pandas, table_exists


def week_row(end: date, settings: Settings | None = None) -> dict[str, Any]:
    """One monitoring week of the lake's monitoring tables: per source the drifted features of
    those watched and the largest PSI as a multiple of its threshold, the importance-weighted
    drift (the drifted features' share of the champion's SHAP importance, batch source), the
    champion, its label-free AUC estimate
    with a 95 % band, the realised AUC of the week's own predictions with its bootstrap interval
    once enough of their labels are known (the retrain policy's `min_labelled`; fewer: no point),
    realised AUC per version on the labels that became known in the week, and the decision."""
    from ml_platform.monitoring.weekly import max_effect, retrain_policy

    s = settings or get_settings()
    row: dict[str, Any] = {"week_end": end.isoformat()}
    drift = read_pandas(table_path("monitoring.drift_reports", s))
    w = drift[drift["window_end"].astype(str) == end.isoformat()]
    for source in ("served", "batch"):
        ws = w[w["source"] == source]
        row[f"{source}_watched"] = len(ws) if len(ws) else None
        row[f"{source}_drifted"] = int(ws["drifted"].astype(bool).sum()) if len(ws) else None
        row[f"{source}_max_psi"] = float(ws["psi"].max()) if len(ws) else None
        # the largest PSI as a multiple of its feature's threshold (>= 1: at or over it)
        row[f"{source}_max_effect"] = max_effect(ws, s.drift_effect_threshold) if len(ws) else None
    b = w[w["source"] == "batch"]
    share = pd.to_numeric(b.get("importance", pd.Series(dtype=float)), errors="coerce")
    row["important_drift"] = float(share[b["drifted"].astype(bool)].sum()) if share.notna().any() else None
    row["champion"] = str(w["model_version"].iloc[0]) if len(w) else None
    row["estimate"] = None
    est_path = table_path("monitoring.performance_estimates", s)
    if row["champion"] and table_exists(est_path):
        e = read_pandas(est_path)
        e = e[(e["window_end"].astype(str) == end.isoformat()) & (e["model_version"].astype(str) == row["champion"])]
        if len(e) and pd.notna(e["est_auc"].iloc[0]):
            row["estimate"] = tuple(round(float(e[c].iloc[0]), 3) for c in ("est_auc", "est_auc_low", "est_auc_high"))
    row.update(own_week(end, row["champion"], s))
    row["auc"] = {}  # version: (AUC, interval low, high, labels), no AUC below the policy's min_labelled
    if table_exists(table_path("monitoring.performance", s)):
        perf = read_pandas(table_path("monitoring.performance", s))
        p = perf[(perf["window_end"].astype(str) == end.isoformat()) & (perf["grouping"] == "all")]
        enough = retrain_policy(settings=s).min_labelled

        def num(x: Any) -> float | None:
            return None if pd.isna(x) else round(float(x), 3)

        row["auc"] = {
            f"v{r.model_version}": (
                (num(r.roc_auc), num(r.auc_ci_low), num(r.auc_ci_high)) if int(r.n) >= enough else (None, None, None)
            )
            + (int(r.n),)
            for r in p.itertuples()
        }
    dec = read_pandas(table_path("monitoring.retrain_decisions", s))
    d = dec[dec["window_end"].astype(str) == end.isoformat()].sort_values("decided_at")
    row["retrain"] = bool(d["retrain"].astype(bool).any()) if len(d) else False
    row["decision"] = str(d.iloc[0]["reason"]) if len(d) else ""
    row["decision_id"] = str(d.iloc[0]["decision_id"]) if len(d) else ""
    return row


def own_week(end: date, champion: str | None, settings: Settings | None = None) -> dict[str, Any]:
    """The realised AUC of the champion's predictions whose features describe the week ending
    `end`, with its bootstrap 95 % interval, from the labels known now: {"own_labels": n,
    "own_auc": (AUC, low, high) or None below the retrain policy's `min_labelled`}. Called again
    once later weeks brought their labels (`scripts/demo_weeks.py`)."""
    import numpy as np

    from ml_platform.monitoring.performance import group_metrics
    from ml_platform.monitoring.weekly import retrain_policy

    s = settings or get_settings()
    out: dict[str, Any] = {"own_labels": 0, "own_auc": None}
    labels = table_path("monitoring.labels", s)
    if not champion or not table_exists(labels):
        return out
    lab = read_pandas(labels, columns=["anchor_ts", "model_version", "returned", "churn_probability", "churned"])
    at = pd.to_datetime(lab["anchor_ts"], utc=True)  # the time the features describe, as for drift
    stop = pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)
    own = lab[
        (at > stop - pd.Timedelta(days=7))
        & (at <= stop)
        & lab["returned"].astype(bool)
        & (lab["model_version"].astype(str) == champion)
    ]
    out["own_labels"] = len(own)
    if len(own) >= retrain_policy(settings=s).min_labelled:
        m = group_metrics(
            own["churned"].to_numpy(), own["churn_probability"].to_numpy(), 0.5, 200, np.random.default_rng(0)
        )
        if m["roc_auc"] is not None:
            out["own_auc"] = (round(m["roc_auc"], 3), round(m["auc_ci_low"], 3), round(m["auc_ci_high"], 3))
    return out


def _band(t: tuple[float | None, float | None, float | None] | None) -> str:
    """A value with its 95 % interval; "-" without a value (an AUC of one class has no interval)."""
    if t is None or t[0] is None:
        return "-"
    return f"{t[0]:.3f} [{t[1]:.3f}, {t[2]:.3f}]" if None not in t[1:3] else f"{t[0]:.3f} [no interval]"


def format_weeks(rows: list[dict[str, Any]], shift_day: date) -> str:
    """The week table a person reads (`week_row` rows, with `served` versions and, after a retrain,
    the training run's state and the gate's verdict)."""
    lines = [
        "  week ending  shift  served by      drifted (PSI/thr): served  batch       weighted  "
        "est. AUC [95 %]        own-week AUC [95 %] (labels)  decision"
    ]
    for r in rows:
        drift = {
            src: (
                "-"
                if r[f"{src}_drifted"] is None
                else f"{r[f'{src}_drifted']:2d}/{r[f'{src}_watched']} ({r[f'{src}_max_effect']:.2f})"
            )
            for src in ("served", "batch")
        }
        weighted = "-" if r.get("important_drift") is None else f"{r['important_drift']:.2f}"
        own = f"{_band(r.get('own_auc'))} ({r.get('own_labels', 0)})"
        served = ",".join(f"v{v}" for v in sorted(r.get("served", {}))) or "-"
        shift = "yes" if date.fromisoformat(r["week_end"]) >= shift_day else "no"
        lines.append(
            f"  {r['week_end']}  {shift:5s}  {served:13s}  {drift['served']:19s}  {drift['batch']:15s}  "
            f"{weighted:8s}  {_band(r.get('estimate')):22s}  {own:28s}  "
            f"{'RETRAIN ' + r['decision_id'] if r['retrain'] else 'no retrain'}"
        )
        auc = ", ".join(f"{v} {_band(t[:3])} ({t[3]})" for v, t in sorted(r["auc"].items()))
        if auc:
            lines.append(f"  {'':11s}  realised AUC on the labels known this week: {auc}")
        lines.append(f"  {'':11s}  {r['decision'][:150]}")
        if "gate" in r:
            lines.append(f"  {'':11s}  training run {r['training']}; gate: {r['gate'][:150]}")
    return "\n".join(lines)


def estimate_error(rows: list[dict[str, Any]]) -> float | None:
    """Mean |estimated - realised| AUC over the weeks whose own predictions have a realised AUC."""
    pairs = [(r["estimate"][0], r["own_auc"][0]) for r in rows if r.get("estimate") and r.get("own_auc")]
    return sum(abs(a - b) for a, b in pairs) / len(pairs) if pairs else None


def plot_weeks(rows: list[dict[str, Any]], shift_day: date, path: Path) -> None:
    """A PNG: estimated AUC and realised AUC with their intervals, drifted features per source and the
    importance-weighted drift, over the weeks; retrains marked."""
    import logging

    import matplotlib

    # Airflow's logging (imported by run_dag) would print matplotlib's INFO notes on the console
    logging.getLogger("matplotlib").setLevel(logging.WARNING)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weeks = [r["week_end"] for r in rows]
    x = list(range(len(weeks)))
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)

    def bars(key: str, offset: float, label: str, marker: str) -> None:
        pts = [(i + offset, r[key]) for i, r in zip(x, rows) if r.get(key)]
        if pts:
            xs, ts = zip(*pts)
            mid = [t[0] for t in ts]
            err = [[t[0] - t[1] for t in ts], [t[2] - t[0] for t in ts]]
            a1.errorbar(xs, mid, yerr=err, fmt=marker, capsize=3, label=label)

    bars("estimate", -0.08, "estimated AUC, 95 % band (no labels)", "o")
    bars("own_auc", 0.08, "realised AUC of the week's predictions, 95 % interval", "s")
    a1.set_ylabel("ROC AUC")
    if a1.get_legend_handles_labels()[0]:
        a1.legend(loc="best", fontsize=8)
    else:  # no estimate and no labelled week yet
        a1.text(0.5, 0.5, "no estimate or labelled week yet", ha="center", va="center", transform=a1.transAxes)
    for source in ("served", "batch"):
        a2.plot(x, [r[f"{source}_drifted"] for r in rows], marker="s", label=f"drifted features ({source})")
    a2.plot(x, [(r.get("important_drift") or 0) * 10 for r in rows], linestyle="--", label="importance-weighted x10")
    a2.set_ylabel("features drifted")
    a2.set_xticks(x, weeks, rotation=30, fontsize=8)
    for ax in (a1, a2):
        for i, r in zip(x, rows):
            if r["retrain"]:
                ax.axvline(i, color="red", alpha=0.4)
    a2.legend(loc="upper left", fontsize=8)
    a2.set_xlabel(f"week ending (distribution shift from {shift_day}; red: retrain decided)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
