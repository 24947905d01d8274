"""The monitoring weeks as a person reads them: one row per week from the monitoring tables
(drift per source, realised AUC per version, the retrain decision), a text table and a PNG.
Used by the demo's loop (`scripts/demo_weeks.py`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from ml_platform.config import Settings, get_settings
from ml_platform.lake.paths import table_path
from ml_platform.lake.reader import read_pandas, table_exists


def week_row(end: date, settings: Settings | None = None) -> dict[str, Any]:
    """One monitoring week of the lake's monitoring tables: drifted features and the largest PSI per
    source, the champion, realised AUC (and labels) per version, and the retrain decision."""
    s = settings or get_settings()
    row: dict[str, Any] = {"week_end": end.isoformat()}
    drift = read_pandas(table_path("monitoring.drift_reports", s))
    w = drift[drift["window_end"].astype(str) == end.isoformat()]
    for source in ("served", "batch"):
        ws = w[w["source"] == source]
        row[f"{source}_drifted"] = int(ws["drifted"].astype(bool).sum()) if len(ws) else None
        row[f"{source}_max_psi"] = float(ws["psi"].max()) if len(ws) else None
    row["champion"] = str(w["model_version"].iloc[0]) if len(w) else None
    row["auc"] = {}
    if table_exists(table_path("monitoring.performance", s)):
        perf = read_pandas(table_path("monitoring.performance", s))
        p = perf[(perf["window_end"].astype(str) == end.isoformat()) & (perf["grouping"] == "all")]
        row["auc"] = {
            f"v{r.model_version}": (None if pd.isna(r.roc_auc) else round(float(r.roc_auc), 3), int(r.n))
            for r in p.itertuples()
        }
    dec = read_pandas(table_path("monitoring.retrain_decisions", s))
    d = dec[dec["window_end"].astype(str) == end.isoformat()].sort_values("decided_at")
    row["retrain"] = bool(d["retrain"].astype(bool).any()) if len(d) else False
    row["decision"] = str(d.iloc[0]["reason"]) if len(d) else ""
    row["decision_id"] = str(d.iloc[0]["decision_id"]) if len(d) else ""
    return row


def format_weeks(rows: list[dict[str, Any]], shift_day: date) -> str:
    """The week table a person reads (`week_row` rows, with `served` versions and, after a retrain,
    the training run's state and the gate's verdict)."""
    lines = [
        "  week ending  shift  served by        drift served (n, max PSI)  batch          realised AUC (labels)"
        "        decision"
    ]
    for r in rows:
        drift = {
            src: ("-" if r[f"{src}_drifted"] is None else f"{r[f'{src}_drifted']:2d}, {r[f'{src}_max_psi']:.3f}")
            for src in ("served", "batch")
        }
        auc = ", ".join(f"{v} {a_ if a_ is not None else '-'} ({n})" for v, (a_, n) in sorted(r["auc"].items())) or "-"
        served = ",".join(f"v{v}" for v in sorted(r.get("served", {}))) or "-"
        shift = "yes" if date.fromisoformat(r["week_end"]) >= shift_day else "no"
        lines.append(
            f"  {r['week_end']}  {shift:5s}  {served:15s}  {drift['served']:25s}  {drift['batch']:13s}  "
            f"{auc:28s}  {'RETRAIN ' + r['decision_id'] if r['retrain'] else 'no retrain'}"
        )
        lines.append(f"  {'':11s}  {r['decision'][:150]}")
        if "gate" in r:
            lines.append(f"  {'':11s}  training run {r['training']}; gate: {r['gate'][:150]}")
    return "\n".join(lines)


def plot_weeks(rows: list[dict[str, Any]], shift_day: date, path: Path) -> None:
    """A PNG of realised AUC per version and the largest PSI per source over the weeks, retrains marked."""
    import logging

    import matplotlib

    # Airflow's logging (imported by run_dag) would print matplotlib's INFO notes on the console
    logging.getLogger("matplotlib").setLevel(logging.WARNING)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weeks = [r["week_end"] for r in rows]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    versions = sorted({v for r in rows for v in r["auc"]})
    for v in versions:
        a1.plot(weeks, [r["auc"].get(v, (None, 0))[0] for r in rows], marker="o", label=f"realised AUC {v}")
    a1.set_ylabel("ROC AUC (late labels)")
    a1.legend(loc="lower left", fontsize=8)
    for source in ("served", "batch"):
        a2.plot(weeks, [r[f"{source}_max_psi"] for r in rows], marker="s", label=f"max PSI ({source})")
    a2.axhline(0.1, color="grey", linestyle=":", label="effect threshold")
    a2.set_ylabel("largest feature PSI")
    for ax in (a1, a2):
        for r in rows:
            if r["retrain"]:
                ax.axvline(r["week_end"], color="red", alpha=0.4)
    a2.legend(loc="upper left", fontsize=8)
    a2.set_xlabel(f"week ending (distribution shift from {shift_day}; red: retrain decided)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
