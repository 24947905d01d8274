"""`ml-platform train | backtest`: Optuna HPO over the model families, tracked in MLflow."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ml_platform.cli._common import SubParsers, cutoffs, iso_date, on_engine, positive, progress, say, spark
from ml_platform.config import get_settings
from ml_platform.data.ingest import list_files
from ml_platform.pipelines.backtest import check_plan, format_report, prepare_workspace, run_backtest, use_workspace
from ml_platform.training import FAMILIES
from ml_platform.training.families import check_families
from ml_platform.training.hpo import Study
from ml_platform.training.labels import churn_training_set_engine
from ml_platform.training.train import train_from_lake, usable_cutoffs


def train(a: argparse.Namespace) -> dict[str, Any]:
    s = get_settings()
    families = check_families(a.families.split(","))
    horizon = a.horizon_days or s.label_horizon_days
    trials = a.trials or s.training_trials
    chosen = a.cutoffs or usable_cutoffs(horizon, a.last_k)
    engine = on_engine(churn_training_set_engine(), "train", "training set: ")
    say(f"training on cutoffs {', '.join(map(str, chosen))} ({trials} trials over {', '.join(families)})")
    res = train_from_lake(
        chosen,
        horizon,
        Study(
            n_trials=trials,
            families=families,
            seed=a.seed,
            timeout=a.timeout,
            workers=a.workers,
            distributed_workers=a.distributed_workers,
        ),
        engine=engine,
        progress=progress("HPO trials"),
    )
    return {
        "model": f"{res.model_name}@challenger",
        "version": res.version,
        "family": res.family,
        "validation_auc": round(res.validation_auc, 4),
        "test": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.test_metrics.items()},
        "best_params": res.best_params,
        "run_id": res.run_id,
        "training_set_id": res.tags["training_set_id"],
        "report": res.report,
    }


def backtest(a: argparse.Namespace) -> dict[str, Any] | str:
    horizon = a.horizon_days or get_settings().label_horizon_days
    plan = check_plan(a.train_cutoffs, a.test_cutoff, horizon)
    families = check_families(a.families.split(","))
    list_files(a.transactions, a.format)  # check the inputs before making a workspace or paying for a JVM
    if a.customers:
        list_files(a.customers, a.format)
    trials = a.trials or get_settings().training_trials
    workspace = prepare_workspace(a.workspace, get_settings().home)
    use_workspace(workspace)
    say(f"workspace {workspace}")
    out = run_backtest(
        plan,
        a.transactions,
        a.customers,
        spark=spark("backtest"),
        study=Study(n_trials=trials, families=families, seed=a.seed),
        fmt=a.format,
        delimiter=a.delimiter,
        timestamp_format=a.timestamp_format,
        say=say,
        progress=progress("HPO trials"),
    )
    return out if a.json else format_report(out)


def _search_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--horizon-days",
        type=positive,
        default=None,
        help="churn label window (default: ML_PLATFORM_LABEL_HORIZON_DAYS, 90)",
    )
    p.add_argument(
        "--trials", type=positive, default=None, help="Optuna trials (default: ML_PLATFORM_TRAINING_TRIALS, 20)"
    )
    p.add_argument(
        "--families",
        default=",".join(FAMILIES),
        help=f"model families to search, comma-separated (default: {','.join(FAMILIES)})",
    )
    p.add_argument("--seed", type=int, default=0)


def register(sub: SubParsers) -> None:
    tr = sub.add_parser("train", help="labels + PIT training set -> Optuna HPO -> register the model as @challenger")
    tr.add_argument(
        "--cutoffs",
        type=cutoffs,
        default=None,
        help="comma-separated snapshot dates (default: the last --last-k with an observed label window)",
    )
    tr.add_argument("--last-k", type=positive, default=4, help="cutoffs to use when --cutoffs is not given (default 4)")
    _search_flags(tr)
    tr.add_argument("--timeout", type=float, default=None, help="stop the search after this many seconds")
    tr.add_argument(
        "--workers",
        type=positive,
        default=1,
        help="HPO processes on the one Optuna study (default 1: reproducible for a seed)",
    )
    tr.add_argument(
        "--distributed-workers",
        type=int,
        choices=range(0, 65),
        default=0,
        metavar="N",
        help="refit an xgboost/mlp winner over N Spark tasks (xgboost.spark) or torch processes "
        "(TorchDistributor); default 0: in this process",
    )
    tr.set_defaults(func=train)

    bt = sub.add_parser(
        "backtest",
        help="how well would churn prediction work on your data? (fresh workspace)",
        description="Ingest your transactions (and customers) file into a fresh workspace, run the "
        "gate, build features at the cutoffs, a point-in-time training set, Optuna HPO and evaluate on "
        "the test cutoff. The last train cutoff is the validation set; every train cutoff's label "
        "window must close by the test cutoff.",
    )
    bt.add_argument("--transactions", type=Path, required=True, help="a file or a folder of files (CSV or Parquet)")
    bt.add_argument("--customers", type=Path, default=None, help="optional customers file (for the fairness report)")
    bt.add_argument(
        "--train-cutoffs",
        type=cutoffs,
        required=True,
        help="comma-separated dates, >= 2; the last one is the validation cutoff",
    )
    bt.add_argument("--test-cutoff", type=iso_date, required=True, help="the date the model is evaluated at")
    _search_flags(bt)
    bt.add_argument(
        "--workspace",
        type=Path,
        default=None,
        help="an empty or new folder for the run (default <home>/backtests/<time>)",
    )
    bt.add_argument("--format", choices=("csv", "parquet"), default=None, help="default: from the file extension")
    bt.add_argument("--delimiter", default=",", help="CSV field separator")
    bt.add_argument("--timestamp-format", default=None, help="Spark datetime pattern of transaction_ts, if not ISO")
    bt.add_argument("--json", action="store_true", help="print the metrics as JSON (includes test_auc)")
    bt.set_defaults(func=backtest)
