"""One weekly drift window, run in the drift environment: read, detect, record, report.

    run_window(spec) -> summary          (spec and summary are JSON-able: paths, ids, numbers)

The caller (the monitoring DAG's main-environment task) resolves the champion and its training
set through MLflow and passes plain paths, because this environment has neither MLflow nor the
platform's settings. Everything is read with `lake.reader.read_pandas` (live file list +
pyarrow, never delta-rs's `to_pyarrow_table`, whose exit abort would fail the task).

- Reference: the champion's training set (`ml.training_sets`, its `training_set_id` partition).
- Current, two sources: `served`, the feature values the service actually scored in the window
  (prediction log, returned predictions, by the time the features describe, as the labels are),
  and `batch`, the newest feature snapshot on or before the window's end.
- Per source, `detect_drift` over the model's features; the rows go to
  `monitoring.drift_reports` (one per feature per source per window: replaced when the window
  is run again), and one HTML file per window (`report_dir/drift-<end>.html`) shows every
  feature's numbers and the reference-vs-current histograms of the most shifted ones.
"""

from __future__ import annotations

import base64
import html
import io
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml_platform.lake.reader import partition_values, read_pandas, table_exists
from ml_platform.lake.rows import replace_rows
from ml_platform.monitoring.drift import DriftResult, detect_drift

PLOTTED = 8  # histograms per source in the HTML report
SCORE = "score"  # prediction drift: the model's churn probability, as one more watched column


def _served(log_table: str, features: list[str], start: datetime, end: datetime) -> pd.DataFrame:
    """Features served in the window, with the returned score as column `score`."""
    if not table_exists(log_table):
        return pd.DataFrame(columns=[*features, SCORE])
    log = read_pandas(
        log_table, columns=["returned", "event_time", "feature_timestamp", "features_json", "churn_probability"]
    )
    log = log[log["returned"].astype(bool)]
    anchor = pd.to_datetime(log["feature_timestamp"], utc=True, errors="coerce").fillna(
        pd.to_datetime(log["event_time"], utc=True)
    )
    log = log[(anchor > start) & (anchor <= end)]
    rows = [json.loads(x) for x in log["features_json"]]
    out = pd.DataFrame(rows, columns=features) if rows else pd.DataFrame(columns=features)
    out[SCORE] = log["churn_probability"].to_numpy(dtype="float64")
    return out


def _batch_scores(scores_table: str | None, end: date) -> pd.Series:
    """The newest batch scores (gold.churn_scores) on or before the window's end."""
    if not scores_table or not table_exists(scores_table):
        return pd.Series(dtype="float64")
    dates = [d for d in partition_values(scores_table, "score_date") if d <= end.isoformat()]
    if not dates:
        return pd.Series(dtype="float64")
    return read_pandas(scores_table, columns=["churn_probability"], partition=("score_date", dates[-1]))[
        "churn_probability"
    ].astype("float64")


def _batch(features_table: str, features: list[str], end: date) -> tuple[pd.DataFrame, str | None]:
    dates = [d for d in partition_values(features_table, "snapshot_date") if d <= end.isoformat()]
    if not dates:
        return pd.DataFrame(columns=features), None
    return read_pandas(features_table, columns=features, partition=("snapshot_date", dates[-1])), dates[-1]


def _hist_png(ref: pd.Series, cur: pd.Series, categorical: bool) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 2.6))
    if categorical:
        r = ref.astype(str).value_counts(normalize=True)
        c = cur.astype(str).value_counts(normalize=True)
        cats = sorted(set(r.index) | set(c.index))
        x = np.arange(len(cats))
        ax.bar(x - 0.2, [r.get(k, 0) for k in cats], 0.4, label="reference")
        ax.bar(x + 0.2, [c.get(k, 0) for k in cats], 0.4, label="current")
        ax.set_xticks(x, cats, rotation=45, fontsize=7)
    else:
        r, c = pd.to_numeric(ref, errors="coerce").dropna(), pd.to_numeric(cur, errors="coerce").dropna()
        both = pd.concat([r, c])
        lo, hi = (both.quantile(0.005), both.quantile(0.995)) if len(both) else (0, 1)
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 30)
        ax.hist(r.clip(lo, hi), bins=bins, density=True, alpha=0.5, label="reference")
        ax.hist(c.clip(lo, hi), bins=bins, density=True, alpha=0.5, label="current")
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _html(
    spec: dict[str, Any],
    results: dict[str, tuple[DriftResult, pd.DataFrame, str]],
    ref: pd.DataFrame,
    scores: dict[str, tuple[pd.Series, pd.Series]],
) -> str:
    e = html.escape
    parts = [
        f"<html><head><meta charset='utf-8'><title>Drift {e(spec['window_end'])}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:right}"
        "tr.d{background:#fdd}img{margin:4px}</style></head><body>",
        f"<h1>Drift, window ending {e(spec['window_end'])}</h1>",
        f"<p>Champion v{e(str(spec['model_version']))}; reference: "
        + (
            f"feature snapshot {e(spec['reference_snapshot'])}"
            if spec.get("reference_snapshot")
            else f"training set <code>{e(spec['training_set_id'])}</code>"
        )
        + f" ({len(ref)} rows).</p>",
    ]
    cal = spec.get("calibration") or {}
    if cal.get("snapshots"):
        parts.append(
            f"<p>Thresholds: {cal['margin']} x each feature's natural {cal['lag_weeks']}-week movement over the "
            f"snapshots {e(cal['snapshots'][0])} .. {e(cal['snapshots'][-1])}.</p>"
        )
    if cal.get("note"):
        parts.append(f"<p>{e(cal['note'])}</p>")
    if spec.get("excluded"):
        parts.append(f"<p>Not watched (ML_PLATFORM_DRIFT_EXCLUDE): {e(', '.join(spec['excluded']))}.</p>")
    for source, (res, cur, note) in results.items():
        sampled = (
            f" Sampled to {res.n_reference} reference and {res.n_current} current rows "
            f"(of {res.reference_rows} and {res.current_rows})."
            if (res.n_reference, res.n_current) != (res.reference_rows, res.current_rows)
            else ""
        )
        parts.append(
            f"<h2>{e(source)}: {len(res.drifted)} drifted</h2><p>{e(note)} {res.current_rows} current rows. "
            f"{e(res.detector)}, q = {res.q_value}; a feature drifts when significant and its PSI reaches "
            f"its threshold (calibrated per feature, at least {res.effect_threshold})."
            f"{sampled} Detector time {res.detector_seconds:.2f} s.</p>"
        )
        parts.append(
            "<table><tr><th>feature</th><th>kind</th><th>p-value</th><th>statistic</th><th>PSI</th><th>threshold</th>"
            "<th>significant</th><th>drifted</th><th>null share ref / cur</th></tr>"
        )
        for f in sorted(res.features, key=lambda f: -f.psi):
            parts.append(
                f"<tr class='{'d' if f.drifted else ''}'><td style='text-align:left'>{e(f.feature)}</td>"
                f"<td>{f.kind}</td><td>{f.p_value:.2e}</td><td>{f.statistic:.3f}</td><td>{f.psi:.3f}</td>"
                f"<td>{f.threshold:.3f}</td>"
                f"<td>{f.significant}</td><td>{f.drifted}</td>"
                f"<td>{f.ref_null_share:.2f} / {f.cur_null_share:.2f}</td></tr>"
            )
        parts.append("</table><div>")
        for f in sorted(res.features, key=lambda f: -f.psi)[:PLOTTED]:
            r, c = scores[source] if f.feature == SCORE else (ref[f.feature], cur[f.feature])
            png = _hist_png(r, c, f.kind == "categorical")
            parts.append(
                f"<figure style='display:inline-block'><img src='data:image/png;base64,{png}'>"
                f"<figcaption>{e(f.feature)} (PSI {f.psi:.3f})</figcaption></figure>"
            )
        parts.append("</div>")
    if not results:
        parts.append("<p>No current data in this window (no served predictions, no feature snapshot).</p>")
    return "\n".join(parts + ["</body></html>"])


def run_window(spec: dict[str, Any]) -> dict[str, Any]:
    """Detect drift for one window; `spec` keys: window_end, days, model_version, training_set_id,
    features, categorical, reference_table, log_table, features_table, reports_table, report_dir,
    q_value, effect_threshold, max_rows, seed; optional: reference_scores (a parquet file with the
    champion's scores of its training set, column `score`), scores_table (gold.churn_scores) and
    excluded (features not watched, named in the report)."""
    import pyarrow as pa

    end_day = date.fromisoformat(spec["window_end"])
    end = datetime.combine(end_day + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
    start = end - timedelta(days=int(spec.get("days", 7)))
    feats, cats = list(spec["features"]), list(spec.get("categorical", []))
    if spec.get("reference_snapshot"):  # the same population some weeks earlier
        ref = read_pandas(
            spec["features_table"], columns=feats, partition=("snapshot_date", spec["reference_snapshot"])
        )
        what = f"feature snapshot {spec['reference_snapshot']}"
    else:  # no snapshot that far back: what the champion was trained on
        ref = read_pandas(spec["reference_table"], partition=("training_set_id", spec["training_set_id"]))
        what = f"training set {spec['training_set_id']}"
    missing = [f for f in feats if f not in ref.columns]
    if missing or ref.empty:
        raise ValueError(f"{what} lacks rows or feature(s) {missing}")
    served = _served(spec["log_table"], feats, start, end)
    batch, snap = _batch(spec["features_table"], feats, end_day)
    currents = {
        "served": (served, f"Features served between {start:%Y-%m-%d} and {end:%Y-%m-%d} (exclusive)."),
        "batch": (batch, f"Feature snapshot {snap}." if snap else ""),
    }
    results: dict[str, tuple[DriftResult, pd.DataFrame, str]] = {}
    floor = float(spec.get("effect_threshold", 0.1))
    kw = {
        "q_value": float(spec.get("q_value", 0.05)),
        "effect_threshold": floor,
        "max_rows": int(spec.get("max_rows", 100_000)),
        "seed": int(spec.get("seed", 0)),
        # a calibrated threshold is never below the floor the caller (a DAG param) asks for
        "thresholds": {f: max(float(t), floor) for f, t in (spec.get("thresholds") or {}).items()},
    }
    importance = {f: float(v) for f, v in (spec.get("importance") or {}).items()}
    total = sum(max(v, 0.0) for v in importance.values())
    share = {f: (max(v, 0.0) / total if total > 0 else 0.0) for f, v in importance.items()}
    ref_scores = (
        pd.read_parquet(spec["reference_scores"])[SCORE] if spec.get("reference_scores") else pd.Series(dtype="float64")
    )
    cur_scores = {"served": served[SCORE].dropna(), "batch": _batch_scores(spec.get("scores_table"), end_day)}
    for source, (cur, note) in currents.items():
        if len(cur):
            res = detect_drift(ref, cur, feats, cats, **kw)
            if len(ref_scores) and len(cur_scores[source]):  # prediction drift: its own test (one column)
                res.features.append(
                    detect_drift(
                        ref_scores.to_frame(SCORE), cur_scores[source].to_frame(SCORE), [SCORE], **kw
                    ).features[0]
                )
            results[source] = (res, cur, note)

    report_dir = Path(spec["report_dir"])
    report_dir.mkdir(parents=True, exist_ok=True)
    report = report_dir / f"drift-{end_day.isoformat()}.html"
    tmp = report.with_suffix(".html.tmp")
    tmp.write_text(_html(spec, results, ref, {k: (ref_scores, v) for k, v in cur_scores.items()}))
    tmp.replace(report)

    rows = [
        {
            "window_end": end_day,
            "source": source,
            "model_version": str(spec["model_version"]),
            "training_set_id": spec["training_set_id"],
            "detector": res.detector,
            "q_value": res.q_value,
            "effect_threshold": res.effect_threshold,
            "n_reference": res.n_reference,
            "n_current": res.n_current,
            "reference_rows": res.reference_rows,
            "current_rows": res.current_rows,
            "report": str(report),
            "threshold": f.threshold,
            # the feature's share of the champion's importance (None: the score, or not known)
            "importance": share.get(f.feature) if share else None,
            **{
                k: getattr(f, k)
                for k in (
                    "feature",
                    "kind",
                    "p_value",
                    "statistic",
                    "psi",
                    "significant",
                    "drifted",
                    "ref_null_share",
                    "cur_null_share",
                )
            },
        }
        for source, (res, _, _) in results.items()
        for f in res.features
    ]
    if rows:  # the window's rows are replaced, atomically (a table of an older release gains the new columns)
        table = pa.Table.from_pylist(rows)
        i = table.schema.get_field_index("importance")  # all-None would give the column the type null
        table = table.set_column(i, pa.field("importance", pa.float64()), table.column(i).cast(pa.float64()))
        replace_rows(spec["reports_table"], table, "window_end", end_day.isoformat(), add_columns=True)
    return {
        "window_end": end_day.isoformat(),
        "report": str(report),
        "rows_written": len(rows),
        "sources": {
            s: {
                "drifted": r.drifted,
                "max_psi": r.max_psi,
                "important_drift": r.important_drift(importance) if importance else None,
                "n_current": r.current_rows,
                "sampled_to": r.n_current,
            }
            for s, (r, _, _) in results.items()
        },
    }
