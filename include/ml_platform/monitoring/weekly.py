"""The weekly monitoring steps that run in the main environment (MLflow + delta-rs, no Spark).

- `drift_spec`: the champion, its training set and features, and the table paths, as the JSON
  the drift environment's `run_window` takes.
- `performance_window`: realised performance on the labels that became known in the window,
  per version / variant / slice, into `monitoring.performance` (a rerun replaces the window).
- `history` + `record_decision`: the policy's inputs from the monitoring tables and the
  registry, and its decision MERGEd into `monitoring.retrain_decisions` on decision_id.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ml_platform.config import Settings, get_settings
from ml_platform.contracts import SENSITIVE
from ml_platform.errors import MlPlatformError
from ml_platform.features.training_frame import load_training_frame
from ml_platform.lake.paths import table_path
from ml_platform.lake.reader import read_pandas, table_exists
from ml_platform.lake.rows import insert_new, replace_rows
from ml_platform.model.scoring import rescore
from ml_platform.monitoring.policy import History, Retrain, RetrainDecision, RetrainPolicy, Window
from ml_platform.registry.evaluate import alias_version, client

DECISIONS_TABLE = "monitoring.retrain_decisions"
PERFORMANCE_TABLE = "monitoring.performance"
DRIFT_TABLE = "monitoring.drift_reports"


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


def drift_spec(window_end: date, settings: Settings | None = None, **thresholds: Any) -> dict[str, Any] | None:
    """None without a champion; else the JSON-able spec of `drift_run.run_window`."""
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
    return {
        "window_end": window_end.isoformat(),
        "days": 7,
        "model_version": str(version),
        "training_set_id": training_set_id,
        "features": watched,
        "excluded": sorted(excluded & set(inputs.input_names())),
        "categorical": [i.name for i in inputs.inputs if "double" not in str(i.type) and i.name in watched],
        "reference_table": table_path("ml.training_sets", s),
        "log_table": table_path("monitoring.prediction_log", s),
        "features_table": table_path("features.customer_features", s),
        "reports_table": table_path(DRIFT_TABLE, s),
        "report_dir": str(drift_dir(s)),
        "scores_table": table_path("gold.churn_scores", s),
        "reference_scores": reference_scores(version, training_set_id, s),
        "q_value": s.drift_q_value,
        "effect_threshold": s.drift_effect_threshold,
        "max_rows": s.drift_max_rows,
        "seed": 0,
        **thresholds,
    }


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


def performance_window(window_end: date, days: int = 7, settings: Settings | None = None) -> dict[str, Any]:
    import pandas as pd

    from ml_platform.monitoring.performance import compare_variants, performance_table

    s = settings or get_settings()
    labels_path = table_path("monitoring.labels", s)
    if not table_exists(labels_path):
        return {"window_end": window_end.isoformat(), "rows": 0, "skipped": "no labels yet"}
    end = _end(window_end)
    lab = read_pandas(labels_path)
    known = pd.to_datetime(lab["label_known_at"], utc=True)
    lab = lab[(known > end - timedelta(days=days)) & (known <= end)]
    if lab.empty:
        return {"window_end": window_end.isoformat(), "rows": 0, "skipped": "no label became known in the window"}
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
    }


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
                drifted=tuple(sorted(set(w.loc[w["drifted"].astype(bool), "feature"]))),
                max_effect=float(w["psi"].max()),
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
