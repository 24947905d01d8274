"""Backtest: "how well would churn prediction work on my data?" in one call.

A user's transaction file (and optionally a customers file) goes into a fresh workspace: its own
lake, MLflow store and Optuna journal, so nothing touches the platform's tables. There it runs
the same steps as production: ingest to bronze -> the Great Expectations gate -> silver ->
feature snapshots at the cutoffs only -> churn labels + point-in-time training set -> Optuna HPO
-> final fit -> evaluation on the test cutoff -> MLflow model (in the workspace's registry).

The split is a walk-forward one: the last training cutoff is the validation set, and every
training (and validation) cutoff's label window must have closed by the test cutoff, as it
would have for a model deployed at that date. Otherwise training labels would be taken from
the same future the test labels come from.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ml_platform.config import get_settings
from ml_platform.contracts import CUSTOMERS, TRANSACTIONS
from ml_platform.data.ingest import ingest
from ml_platform.engines import SparkEngine
from ml_platform.errors import MlPlatformError
from ml_platform.features.training_frame import with_sensitive_attributes
from ml_platform.lake.paths import table_path
from ml_platform.pipelines import data_plane as plane
from ml_platform.training.hpo import Study
from ml_platform.training.labels import churn_training_set, churn_training_set_engine
from ml_platform.training.train import train_and_register

#: Settings a backtest points into its workspace (the rest, e.g. Spark memory, are inherited).
_WORKSPACE_VARIABLES = (
    "ML_PLATFORM_LAKE_URI",
    "ML_PLATFORM_MLFLOW_TRACKING_URI",
    "ML_PLATFORM_OPTUNA_STORAGE",
    "ML_PLATFORM_ONLINE_SQLITE_PATH",
    "ML_PLATFORM_ONLINE_STORE",
)


@dataclass(frozen=True)
class BacktestPlan:
    train_cutoffs: list[date]  # the last one is the validation cutoff
    test_cutoff: date
    horizon_days: int


def check_plan(train_cutoffs: Sequence[date], test_cutoff: date, horizon_days: int) -> BacktestPlan:
    """The cutoffs as a walk-forward plan, or an error naming what is wrong with them."""
    if horizon_days < 1:
        raise MlPlatformError(f"--horizon-days must be >= 1, got {horizon_days}")
    train = sorted(set(train_cutoffs))
    if len(train) < 2:
        raise MlPlatformError(f"--train-cutoffs needs at least 2 dates (training + validation), got {len(train)}")
    late = [c for c in train if c + timedelta(days=horizon_days) > test_cutoff]
    if late:
        latest = test_cutoff - timedelta(days=horizon_days)
        raise MlPlatformError(
            f"train cutoff(s) {', '.join(map(str, late))}: their {horizon_days}-day label window is still open at the "
            f"test cutoff {test_cutoff}, so a model deployed then could not have learned from them; use cutoffs "
            f"on or before {latest}"
        )
    return BacktestPlan(train, test_cutoff, horizon_days)


def observed_end(rows_per_day: dict[date, int], min_ratio: float) -> date:
    """The last day of the log that is fully there: a trailing day with fewer rows than
    `min_ratio` x the median day (stray future-dated rows, a file cut mid-day) does not count."""
    import statistics

    floor = min_ratio * statistics.median(rows_per_day.values())
    days = sorted(rows_per_day)
    while len(days) > 1 and rows_per_day[days[-1]] < floor:
        days.pop()
    return days[-1]


def prepare_workspace(workspace: Path | None, home: Path) -> Path:
    """A new, empty workspace folder (default: <home>/backtests/<UTC time>)."""
    if workspace is None:
        workspace = home / "backtests" / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    workspace = workspace.expanduser().absolute()
    if workspace.exists() and (not workspace.is_dir() or any(workspace.iterdir())):
        raise MlPlatformError(f"workspace {workspace} is not empty: a backtest starts from a fresh one")
    workspace.mkdir(parents=True, exist_ok=True)
    return workspace


def use_workspace(workspace: Path) -> None:
    """Point this process's settings at the workspace (lake, MLflow, Optuna, online store)."""
    for var in _WORKSPACE_VARIABLES:
        os.environ.pop(var, None)
    os.environ["ML_PLATFORM_HOME"] = str(workspace)
    get_settings.cache_clear()


def run_backtest(
    plan: BacktestPlan,
    transactions: Path,
    customers: Path | None,
    *,
    spark: Any,
    study: Study,
    fmt: str | None = None,
    delimiter: str = ",",
    timestamp_format: str | None = None,
    say: Callable[[str], None] = lambda m: None,
    progress: Any = None,
) -> dict[str, Any]:
    """Run every step in the current (workspace) settings; the metrics as a JSON-able dict."""

    s = get_settings()
    engine = SparkEngine("the backtest runs on Spark", spark)
    day = datetime.now(timezone.utc).date()
    loaded = {}
    for contract, src in ((TRANSACTIONS, transactions), (CUSTOMERS, customers)):
        if src is not None:
            say(f"ingesting {src} into bronze.{contract.name}")
            r = ingest(engine, src, contract, day, fmt=fmt, delimiter=delimiter, timestamp_format=timestamp_format)
            loaded[contract.name] = r.rows
    say("running the data gate (Great Expectations)")
    gate = plane.validate_to_silver(engine, day, day + timedelta(days=1))
    silver = spark.read.format("delta").load(table_path("silver.transactions", s))
    per_day = {r["txn_date"]: r["count"] for r in silver.groupBy("txn_date").count().collect()}
    if not per_day:
        raise MlPlatformError(f"no valid transactions in {transactions} after the gate")
    lo, hi, observed = min(per_day), max(per_day), observed_end(per_day, s.row_count_min_ratio)
    cutoffs = [*plan.train_cutoffs, plan.test_cutoff]
    early = [c for c in cutoffs if c < lo]
    if early:
        raise MlPlatformError(
            f"cutoff(s) {', '.join(map(str, early))} are before the first transaction "
            f"({lo}): no customer has history there"
        )
    if plan.test_cutoff + timedelta(days=plan.horizon_days) > observed:
        raise MlPlatformError(
            f"the test cutoff's {plan.horizon_days}-day label window ends after the data does ({observed}"
            f"{'' if observed == hi else f'; the days after it up to {hi} have too few rows to count'}); "
            f"use a test cutoff on or before {observed - timedelta(days=plan.horizon_days)}"
        )
    say(f"feature snapshots at {len(cutoffs)} cutoffs")
    plane.build_feature_snapshots(plane.features_engine().using(engine), cutoffs)
    say(f"churn labels ({plan.horizon_days}-day window) + point-in-time training set")
    ts = churn_training_set(cutoffs, plan.horizon_days, "backtest", engine=churn_training_set_engine().using(engine))
    df = with_sensitive_attributes(ts.to_pandas(), s)
    rows = {str(c): int((df["cutoff_date"] == c).sum()) for c in sorted(df["cutoff_date"].unique())}
    say(f"Optuna search: {study.n_trials} trials over {', '.join(study.families)}")
    res = train_and_register(
        df,
        ts.feature_names,
        study,
        training_set_id=ts.training_set_id,
        lineage=ts.lineage,
        study_name="backtest",
        settings=s,
        progress=progress,
    )
    test = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.test_metrics.items()}
    return {
        "workspace": str(s.home),
        "data": {
            "first_day": str(lo),
            "last_day": str(observed),
            "sparse_tail_days": sum(1 for d in per_day if d > observed),
            "rows_loaded": loaded,
            "gate_quarantined": gate.quarantined,
        },
        "train_cutoffs": [str(c) for c in plan.train_cutoffs[:-1]],
        "validation_cutoff": str(plan.train_cutoffs[-1]),
        "test_cutoff": str(plan.test_cutoff),
        "horizon_days": plan.horizon_days,
        "rows_per_cutoff": rows,
        "churn_rate_test": round(float(df.loc[df["cutoff_date"] == plan.test_cutoff, "churned"].mean()), 4),
        "family": res.family,
        "best_params": res.best_params,
        "validation_auc": round(res.validation_auc, 4),
        "test_auc": test["roc_auc"],
        "test": test,
        "report": res.report,
        "model": f"models:/{res.model_name}/{res.version}",
        "mlflow_tracking_uri": s.mlflow_tracking_uri,
    }


def format_report(out: dict[str, Any]) -> str:
    """The backtest's result (`run_backtest`) as the few lines a person reads."""
    t = {k: ("n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else v) for k, v in out["test"].items()}
    return (
        f"backtest on {out['data']['first_day']}..{out['data']['last_day']}: trained on "
        f"{', '.join(out['train_cutoffs'])}, validated on {out['validation_cutoff']}, tested on "
        f"{out['test_cutoff']} ({out['horizon_days']}-day churn window)\n"
        f"best model: {out['family']} (validation AUC {out['validation_auc']:.3f})\n"
        f"test: ROC AUC {t['roc_auc']}  average precision {t['average_precision']}  F1 {t['f1']} at threshold "
        f"{t['threshold']}  Brier {t['brier']}  ECE {t['ece']}  rows {t['rows']} "
        f"(churn rate {out['churn_rate_test']})\n"
        f"report: {out['report']}\nworkspace: {out['workspace']}"
    )
