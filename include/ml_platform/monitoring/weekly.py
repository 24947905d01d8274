"""The weekly monitoring steps that run in the main environment (MLflow + delta-rs, no Spark).

- `drift_spec`: the champion, its training set and features, and the table paths, as the JSON
  the drift environment's `run_window` takes.
- `performance_window`: realised performance on the labels that became known in the window,
  per version / variant / slice, into `monitoring.performance` (a rerun replaces the window).
- `history` + `record_decision`: the policy's inputs from the monitoring tables and the
  registry, and its decision MERGEd into `monitoring.retrain_decisions` on decision_id.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ml_platform.config import Settings, get_settings
from ml_platform.contracts import SENSITIVE
from ml_platform.errors import MlPlatformError
from ml_platform.features.training_frame import load_training_frame
from ml_platform.lake.paths import table_path
from ml_platform.lake.reader import partition_values, read_pandas, table_exists
from ml_platform.lake.rows import insert_new, replace_rows
from ml_platform.model.scoring import rescore
from ml_platform.monitoring.policy import History, Retrain, RetrainDecision, RetrainPolicy, Window
from ml_platform.registry.evaluate import alias_version, client

DECISIONS_TABLE = "monitoring.retrain_decisions"
PERFORMANCE_TABLE = "monitoring.performance"
DRIFT_TABLE = "monitoring.drift_reports"
ESTIMATES_TABLE = "monitoring.performance_estimates"


#: columns that may be all-missing in one write but are numbers (the rest of such columns are text):
#: a first write must not give a Delta column the type null (a later MERGE / append could not cast)
_FLOATS = {
    "precision",
    "recall",
    "ece",
    "roc_auc",
    "auc_ci_low",
    "auc_ci_high",
    "offline_auc",
    "auc_vs_offline",
    "threshold",
    "expected_positives",
    "est_auc",
    "est_auc_low",
    "est_auc_high",
    "est_precision",
    "est_precision_low",
    "est_precision_high",
}


def _arrow(frame: Any) -> Any:
    """An Arrow table of `frame` (pandas, or a list of dicts) without null-typed columns."""
    import pyarrow as pa

    t = pa.Table.from_pylist(frame) if isinstance(frame, list) else pa.Table.from_pandas(frame, preserve_index=False)
    for i, f in enumerate(t.schema):
        if pa.types.is_null(f.type):
            t = t.set_column(
                i,
                pa.field(f.name, pa.float64() if f.name in _FLOATS else pa.string()),
                t.column(i).cast(pa.float64() if f.name in _FLOATS else pa.string()),
            )
    return t


def drift_dir(settings: Settings) -> Path:
    """Where the HTML drift reports and the reference score files go."""
    return settings.home / "reports" / "drift"


def _end(window_end: date) -> datetime:
    return datetime.combine(window_end + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)


def drift_spec(
    window_end: date, settings: Settings | None = None, lag_weeks: int | None = None, **thresholds: Any
) -> dict[str, Any] | None:
    """None without a champion; else the JSON-able spec of `drift_run.run_window`: every model
    input watched (but ML_PLATFORM_DRIFT_EXCLUDE), compared with the feature snapshot `lag_weeks`
    (default `drift_lag_weeks`) before the window's end, against thresholds calibrated for the
    champion (`calibration`); with `lag_weeks` 0 or without such a snapshot, against the
    champion's training set at the effect threshold."""
    import mlflow

    s = settings or get_settings()
    version = alias_version("champion", s)
    if version is None:
        return None
    c = client(s)
    mv = c.get_model_version(s.model_name, version)
    run = c.get_run(mv.run_id)
    training_set_id = run.data.tags.get("training_set_id") or run.data.params.get("training_set_id")
    inputs = mlflow.models.get_model_info(f"models:/{s.model_name}/{version}").signature.inputs
    excluded = {f.strip() for f in s.drift_exclude.split(",") if f.strip()}
    watched = [n for n in inputs.input_names() if n not in excluded]
    categorical = [i.name for i in inputs.inputs if "double" not in str(i.type) and i.name in watched]
    features_table = table_path("features.customer_features", s)
    lag = s.drift_lag_weeks if lag_weeks is None else int(lag_weeks)
    before = (window_end - timedelta(weeks=lag)).isoformat()
    earlier = [d for d in partition_values(features_table, "snapshot_date") if d <= before] if lag else []
    reference_snapshot = earlier[-1] if earlier else None
    cal = (
        calibration(str(version), watched, categorical, s, lag=lag)
        if reference_snapshot
        else {
            "snapshots": [],
            "lag_weeks": 0,
            "margin": None,
            "thresholds": {},
            "importance": _importance(version, watched, s),
            "note": "compared with the champion's training set at the effect threshold"
            + ("" if not lag else f" (no feature snapshot {lag} weeks before the window's end)"),
        }
    )
    return {
        "window_end": window_end.isoformat(),
        "days": 7,
        "model_version": str(version),
        "training_set_id": training_set_id,
        "features": watched,
        "excluded": sorted(excluded & set(inputs.input_names())),
        "categorical": categorical,
        "reference_table": table_path("ml.training_sets", s),
        "reference_snapshot": reference_snapshot,
        "log_table": table_path("monitoring.prediction_log", s),
        "features_table": features_table,
        "reports_table": table_path(DRIFT_TABLE, s),
        "report_dir": str(drift_dir(s)),
        "scores_table": table_path("gold.churn_scores", s),
        "reference_scores": (
            snapshot_scores(str(version), reference_snapshot, s)
            if reference_snapshot
            else reference_scores(str(version), training_set_id, s)
        ),
        "q_value": s.drift_q_value,
        "effect_threshold": s.drift_effect_threshold,
        "thresholds": cal["thresholds"],
        "calibration": {k: cal[k] for k in ("snapshots", "lag_weeks", "margin", "note")},
        "importance": cal["importance"],
        "min_importance": s.drift_min_importance,
        "max_rows": s.drift_max_rows,
        "seed": 0,
        **thresholds,
    }


def _champion_model(version: str, s: Settings) -> Any:
    import mlflow

    return mlflow.pyfunc.load_model(f"models:/{s.model_name}/{version}")


def _champion_frame(model: Any, snapshot: str, s: Settings) -> Any:
    """The snapshot's features with `model`'s churn score (column `score`)."""
    frame = read_pandas(table_path("features.customer_features", s), partition=("snapshot_date", snapshot))
    return frame.assign(score=rescore(model, frame))


def snapshot_scores(version: str, snapshot: str, settings: Settings | None = None) -> str:
    """A parquet file of the version's churn scores over one feature snapshot (column `score`):
    the reference of prediction drift when windows are compared with that snapshot."""
    import pandas as pd

    s = settings or get_settings()
    path = drift_dir(s) / f"scores-v{version}-{snapshot}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        pd.DataFrame({"score": _champion_frame(_champion_model(version, s), snapshot, s)["score"]}).to_parquet(
            tmp, index=False
        )
        tmp.replace(path)
    return str(path)


def _importance(version: str, features: list[str], s: Settings) -> dict[str, float]:
    """The version's global mean |SHAP| per feature (its training run's evaluation/shap_importance.json);
    equal weights for a model logged without one."""
    import mlflow

    run_id = client(s).get_model_version(s.model_name, version).run_id
    try:
        shap = mlflow.artifacts.load_dict(f"runs:/{run_id}/evaluation/shap_importance.json")["mean_abs_shap"]
    except (OSError, KeyError, mlflow.exceptions.MlflowException):
        shap = {}
    return {f: float(shap.get(f, 0.0)) for f in features} if shap else {f: 1.0 for f in features}


def weekly_snapshots(dates: list[str], n: int) -> list[str]:
    """Up to `n` of the sorted ISO `dates`, oldest first, at least a week apart: the newest, then
    each time the latest a week or more before the one picked last (weekly snapshots: the last `n`;
    daily ones: one a week), so a calibration lag of k means k weeks whatever the cadence."""
    out: list[str] = []
    for d in reversed(dates):
        if len(out) == n:
            break
        if not out or date.fromisoformat(d) <= date.fromisoformat(out[-1]) - timedelta(days=7):
            out.append(d)
    return out[::-1]


def calibration(
    version: str, features: list[str], categorical: list[str], settings: Settings | None = None, *, lag: int = 4
) -> dict:
    """Per watched feature (and the score), the PSI threshold of a `lag`-week change for the
    champion: `drift_margin` x the 95th percentile of that change among the last
    `drift_calibration_weeks` weekly snapshots up to its data cutoff (`data_as_of`, else its test
    cutoff); the caller's effect threshold is its floor (`drift_run`). And the champion's global
    SHAP importance. Computed once per version, watched set and lag (a JSON file beside the drift
    reports). Too few snapshots: no thresholds (the floor for every feature), said in `note`."""
    from ml_platform.monitoring.drift import calibrate_thresholds

    s = settings or get_settings()
    weeks, margin = s.drift_calibration_weeks, s.drift_margin
    key = hashlib.sha256(json.dumps([features, categorical, lag, weeks, margin]).encode()).hexdigest()[:12]
    path = drift_dir(s) / f"calibration-v{version}-{key}.json"
    if path.exists():
        return json.loads(path.read_text())
    mv = client(s).get_model_version(s.model_name, version)
    cutoff = mv.tags.get("data_as_of") or mv.tags.get("test_cutoff") or "9999-12-31"
    importance = _importance(version, features, s)
    dates = [d for d in partition_values(table_path("features.customer_features", s), "snapshot_date") if d <= cutoff]
    snaps = weekly_snapshots(dates, max(weeks, lag + 2))
    watched = [*features, "score"]
    if len(snaps) >= lag + 2:
        model = _champion_model(version, s)  # loaded once for every snapshot
        frames = [_champion_frame(model, d, s) for d in snaps]
        thresholds = calibrate_thresholds(frames, watched, categorical, lag=lag, margin=margin, floor=0.0)
        note = None
    else:
        thresholds = {}
        note = (
            f"{len(snaps)} weekly snapshots up to {cutoff}: {lag + 2} needed to calibrate; the effect threshold for all"
        )
    out = {
        "version": version,
        "snapshots": snaps,
        "lag_weeks": lag,
        "margin": margin,
        "thresholds": thresholds,
        "importance": importance,
        "note": note,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1))
    tmp.replace(path)
    return out


def reference_scores(version: str, training_set_id: str, settings: Settings | None = None) -> str:
    """A parquet file of the version's churn scores over its training set (column `score`): the
    reference of prediction drift. Made once per version."""
    import mlflow
    import pandas as pd

    s = settings or get_settings()
    path = drift_dir(s) / f"reference-scores-v{version}.parquet"
    if not path.exists():
        frame, _, _ = load_training_frame(training_set_id, s)
        model = mlflow.pyfunc.load_model(f"models:/{s.model_name}/{version}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        pd.DataFrame({"score": rescore(model, frame)}).to_parquet(tmp, index=False)
        tmp.replace(path)
    return str(path)


def log_drift_report(spec: dict[str, Any], drift: dict[str, Any], settings: Settings | None = None) -> None:
    """Attach the window's HTML drift report to the champion's MLflow run (monitoring/drift/)."""
    s = settings or get_settings()
    c = client(s)
    run_id = c.get_model_version(s.model_name, spec["model_version"]).run_id
    c.log_artifact(run_id, drift["report"], "monitoring/drift")


def _offline(versions: list[str], s: Settings) -> tuple[dict[str, float], dict[str, float]]:
    c = client(s)
    auc, thr = {}, {}
    for v in versions:
        mv = c.get_model_version(s.model_name, v)
        m = c.get_run(mv.run_id).data.metrics
        if "test_roc_auc" in m:
            auc[v] = float(m["test_roc_auc"])
        thr[v] = float(mv.tags.get("threshold", 0.5))
    return auc, thr


def estimate_window(window_end: date, days: int = 7, settings: Settings | None = None) -> dict[str, Any]:
    """The label-free performance estimate (`monitoring.estimate`) of each version's predictions
    returned in the window, at the version's decision threshold, into `monitoring.performance_estimates`
    (a rerun replaces the window); {version: estimate}."""
    import pandas as pd

    from ml_platform.monitoring.estimate import estimate_performance

    s = settings or get_settings()
    log_path = table_path("monitoring.prediction_log", s)
    if not table_exists(log_path):
        return {}
    log = read_pandas(
        log_path, columns=["returned", "event_time", "feature_timestamp", "model_version", "churn_probability"]
    )
    end = _end(window_end)
    # the week a prediction belongs to: the time its features describe (as for drift and labels)
    at = pd.to_datetime(log["feature_timestamp"], utc=True, errors="coerce").fillna(
        pd.to_datetime(log["event_time"], utc=True)
    )
    log = log[log["returned"].astype(bool) & (at > end - timedelta(days=days)) & (at <= end)]
    if log.empty:
        return {}
    versions = sorted(log["model_version"].astype(str).unique())
    _, thr = _offline(versions, s)
    rows = []
    for v in versions:
        p = log.loc[log["model_version"].astype(str) == v, "churn_probability"].to_numpy(dtype=float)
        rows.append(
            {"window_end": window_end, "model_version": v, "threshold": thr[v]} | estimate_performance(p, thr[v])
        )
    frame = pd.DataFrame(rows)
    replace_rows(table_path(ESTIMATES_TABLE, s), _arrow(frame), "window_end", window_end.isoformat())
    return {r["model_version"]: {k: r[k] for k in ("n", "est_auc", "est_auc_low", "est_auc_high")} for r in rows}


def performance_window(window_end: date, days: int = 7, settings: Settings | None = None) -> dict[str, Any]:
    """Realised performance on the labels that became known in the window (and, first, the
    label-free estimate of the window's predictions: `estimate_window`)."""
    import pandas as pd

    from ml_platform.monitoring.performance import compare_variants, performance_table

    s = settings or get_settings()
    estimates = estimate_window(window_end, days, s)
    labels_path = table_path("monitoring.labels", s)
    if not table_exists(labels_path):
        return {"window_end": window_end.isoformat(), "rows": 0, "skipped": "no labels yet", "estimates": estimates}
    end = _end(window_end)
    lab = read_pandas(labels_path)
    known = pd.to_datetime(lab["label_known_at"], utc=True)
    lab = lab[(known > end - timedelta(days=days)) & (known <= end)]
    if lab.empty:
        return {
            "window_end": window_end.isoformat(),
            "rows": 0,
            "skipped": "no label became known in the window",
            "estimates": estimates,
        }
    slices = []
    customers = table_path("silver.customers", s)
    if table_exists(customers):
        cust = read_pandas(customers)
        slices = [c for c in SENSITIVE if c in cust.columns]
        lab = lab.merge(cust[["customer_id", *slices]], on="customer_id", how="left")
    versions = sorted(lab["model_version"].astype(str).unique())
    auc, thr = _offline(versions, s)
    table = performance_table(
        lab.assign(model_version=lab["model_version"].astype(str)), slices, thresholds=thr, offline_auc=auc
    )
    table.insert(0, "window_end", window_end)
    replace_rows(table_path(PERFORMANCE_TABLE, s), _arrow(table), "window_end", window_end.isoformat())
    ab = compare_variants(lab)
    overall = table[table["grouping"] == "all"]
    return {
        "window_end": window_end.isoformat(),
        "rows": len(table),
        "labelled": len(lab),
        "ab": ab["verdict"],
        "realised_auc": {r.model_version: r.roc_auc for r in overall.itertuples()},
        "estimates": estimates,
    }


def max_effect(rows: Any, floor: float) -> float:
    """The window's largest PSI as a multiple of its feature's threshold (rows written before
    thresholds were recorded: the effect threshold)."""
    import pandas as pd

    thr = pd.to_numeric(rows.get("threshold", pd.Series(index=rows.index, dtype=float)), errors="coerce")
    thr = thr.fillna(floor).where(lambda x: x > 0, 1.0)
    return float((rows["psi"] / thr).max()) if len(rows) else 0.0


def _counted(rows: Any, min_importance: float) -> tuple[str, ...]:
    """The drifted features of a window's drift rows that count toward a retrain: those with at
    least `min_importance` of the champion's importance, the score, and rows that carry none."""
    import pandas as pd

    d = rows[rows["drifted"].astype(bool)]
    share = d["importance"] if "importance" in d.columns else pd.Series([None] * len(d), index=d.index)
    keep = share.isna() | (pd.to_numeric(share, errors="coerce") >= min_importance)
    return tuple(sorted(set(d.loc[keep, "feature"])))


def history(window_end: date, settings: Settings | None = None, windows: int = 8) -> History:
    """The last `windows` monitoring windows and every retrain (decided ones and registered models
    that no decision caused: scheduled or manual training runs count toward the budget)."""
    import pandas as pd

    s = settings or get_settings()
    drift = read_pandas(table_path(DRIFT_TABLE, s)) if table_exists(table_path(DRIFT_TABLE, s)) else pd.DataFrame()
    perf = (
        read_pandas(table_path(PERFORMANCE_TABLE, s))
        if table_exists(table_path(PERFORMANCE_TABLE, s))
        else pd.DataFrame()
    )
    out = []
    ends = sorted(
        {d for d in drift.get("window_end", pd.Series(dtype=object)).astype(str) if d <= window_end.isoformat()}
    )[-windows:]
    for e in ends:
        w = drift[drift["window_end"].astype(str) == e]
        version = str(w["model_version"].iloc[0])
        p = (
            perf[
                (perf.get("window_end", pd.Series(dtype=object)).astype(str) == e)
                & (perf.get("grouping") == "all")
                & (perf.get("model_version").astype(str) == version)
            ]
            if len(perf)
            else pd.DataFrame()
        )
        auc = p["roc_auc"].iloc[0] if len(p) and pd.notna(p["roc_auc"].iloc[0]) else None
        out.append(
            Window(
                end=date.fromisoformat(e),
                model_version=version,
                drifted=_counted(w, s.drift_min_importance),
                max_effect=max_effect(w, s.drift_effect_threshold),
                realised_auc=auc,
                auc_ci_high=(
                    float(p["auc_ci_high"].iloc[0]) if len(p) and pd.notna(p["auc_ci_high"].iloc[0]) else None
                ),
                labelled=int(p["n"].iloc[0]) if len(p) else 0,
                baseline_auc=float(p["offline_auc"].iloc[0]) if len(p) and pd.notna(p["offline_auc"].iloc[0]) else None,
            )
        )
    retrains = []
    decided = table_path(DECISIONS_TABLE, s)
    if table_exists(decided):
        d = read_pandas(decided)
        for r in d[d["retrain"].astype(bool)].itertuples():
            retrains.append(
                Retrain(
                    at=pd.Timestamp(r.decided_at).to_pydatetime(), kind=r.trigger or "drift", decision_id=r.decision_id
                )
            )
    caused = {r.decision_id for r in retrains}
    for mv in client(s).search_model_versions(f"name = '{s.model_name}'"):
        if mv.tags.get("decision_id") in caused:
            continue  # counted as its decision
        # when, in data time, the version was trained: the newest snapshot it could see
        as_of = mv.tags.get("data_as_of") or mv.tags.get("test_cutoff")
        if as_of:
            retrains.append(Retrain(at=_end(date.fromisoformat(as_of)) - timedelta(seconds=1), kind="scheduled"))
    return History(now=_end(window_end), windows=tuple(out), retrains=tuple(retrains))


def retrain_policy(overrides: dict[str, Any] | None = None, settings: Settings | None = None) -> RetrainPolicy:
    """The policy: defaults, then ML_PLATFORM_RETRAIN_POLICY (JSON), then `overrides` (DAG params).
    A bad key or value raises MlPlatformError naming it."""
    s = settings or get_settings()
    try:
        base = json.loads(s.retrain_policy) if s.retrain_policy.strip() else {}
    except json.JSONDecodeError as e:
        raise MlPlatformError(f"ML_PLATFORM_RETRAIN_POLICY is not JSON: {e}") from None
    if not isinstance(base, dict):
        raise MlPlatformError("ML_PLATFORM_RETRAIN_POLICY must be a JSON object")
    try:
        return RetrainPolicy.from_mapping({**base, **(overrides or {})})
    except ValueError as e:
        raise MlPlatformError(str(e)) from None


def record_decision(decision: RetrainDecision, window_end: date, settings: Settings | None = None) -> bool:
    """MERGE on decision_id; True when the row is new (a rerun over the same windows adds nothing)."""
    s = settings or get_settings()
    row = {
        "decision_id": decision.decision_id,
        "window_end": window_end,
        "decided_at": decision.decided_at,
        "retrain": decision.retrain,
        "trigger": decision.trigger,
        "reason": decision.reason,
        "windows_json": json.dumps(list(decision.windows)),
        "numbers_json": json.dumps(decision.numbers, default=str),
    }
    return insert_new(table_path(DECISIONS_TABLE, s), _arrow([row]), "decision_id") == 1
