"""A training run end to end, on a training frame: HPO workers on one shared Optuna study
(`hpo_worker`), then the final fit and registration (`finalize.finalize_and_register`);
`train_and_register` chains them in one process (or K worker processes, `workers`), and
`train_from_lake` first builds the labels and the point-in-time training set.

The frame is a materialised training set (`ml.training_sets`, pandas): one row per customer per
cutoff with the features, `churned` and `cutoff_date`. Splits are by cutoff (`splits.py`).
Every Optuna trial is logged as an MLflow run nested under the study's parent run
(`tracking.py`). The registered model is the family's `ChurnModel` pyfunc; its version carries
the lineage as tags and gets the alias `challenger` (`finalize.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ml_platform.config import Settings, get_settings
from ml_platform.engines import Engine
from ml_platform.errors import MlPlatformError
from ml_platform.features.training_frame import with_sensitive_attributes
from ml_platform.lake.paths import table_path
from ml_platform.lake.reader import partition_values
from ml_platform.training.finalize import TrainResult, finalize_and_register
from ml_platform.training.hpo import Study, TrialData, open_study, run_worker, split_trials, storage_for
from ml_platform.training.labels import churn_training_set
from ml_platform.training.splits import split_by_cutoff
from ml_platform.training.tracking import mlflow_setup, start_study_run, trial_logger


def hpo_worker(
    df: Any,
    feature_names: Sequence[str],
    study: Study,
    *,
    study_name: str,
    parent_run_id: str,
    settings: Settings | None = None,
    progress: Any = None,
    progress_total: int | None = None,
) -> int:
    """Run `study.n_trials` trials of the shared study here (this worker's share), each logged as a
    nested MLflow run."""
    s = settings or get_settings()
    parts = split_by_cutoff(df, list(feature_names))
    data = TrialData(parts["train"].x, parts["train"].y, parts["validation"].x, parts["validation"].y)
    experiment_id = mlflow_setup(s)
    storage = storage_for(s.optuna_storage)
    first = len(open_study(study_name, storage, study.seed).trials)
    logger = trial_logger(experiment_id, parent_run_id)
    callbacks: list[Any] = [logger]
    if progress:  # trial numbers are study-wide, so this counts the trials of every worker
        total = progress_total or study.n_trials
        callbacks.append(lambda st, tr: progress(min(total, tr.number + 1 - first), total))
    try:
        return run_worker(
            study_name,
            storage,
            data,
            study.n_trials,
            study.families,
            seed=study.seed,
            threads=study.threads,
            timeout=study.timeout,
            callbacks=callbacks,
        )
    finally:
        logger.flush()


def train_and_register(
    df: Any,
    feature_names: Sequence[str],
    study: Study,
    *,
    training_set_id: str,
    lineage: dict[str, int],
    study_name: str,
    spark: Any = None,
    settings: Settings | None = None,
    progress: Any = None,
) -> TrainResult:
    """All steps without Airflow (the CLI): study run -> HPO -> final fit -> register.

    `study.workers` > 1 runs that many HPO processes on the one study (this process is worker 0 and
    reports progress, `progress(done, total)` after every trial); like mapped DAG tasks, they
    are not reproducible run to run, one worker with a fixed seed is."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from contextlib import nullcontext

    s = settings or get_settings()
    parent = start_study_run(
        study_name,
        training_set_id,
        {
            "n_trials": study.n_trials,
            "families": ",".join(study.families),
            "seed": study.seed,
            "workers": study.workers,
        },
        s,
    )
    shares = split_trials(study.n_trials, study.workers)
    common = dict(study_name=study_name, parent_run_id=parent, settings=s)
    with (
        ProcessPoolExecutor(len(shares) - 1, mp_context=multiprocessing.get_context("spawn"))
        if len(shares) > 1
        else nullcontext() as pool
    ):
        others = [
            pool.submit(hpo_worker, df, feature_names, replace(study, n_trials=n, seed=study.seed + i), **common)
            for i, n in enumerate(shares[1:], start=1)
        ]
        hpo_worker(
            df,
            feature_names,
            replace(study, n_trials=shares[0]),
            progress=progress,
            progress_total=study.n_trials,
            **common,
        )
        for f in others:
            f.result()
    return finalize_and_register(
        df,
        feature_names,
        study,
        study_name=study_name,
        parent_run_id=parent,
        training_set_id=training_set_id,
        lineage=lineage,
        spark=spark,
        settings=s,
    )


def usable_cutoffs(horizon_days: int, last_k: int, settings: Settings | None = None) -> list[Any]:
    """The last `last_k` feature snapshot dates whose label window is fully observed in silver."""
    from datetime import date, timedelta

    s = settings or get_settings()
    days = partition_values(table_path("silver.transactions", s), "txn_date")
    snaps = [
        date.fromisoformat(d) for d in partition_values(table_path("features.customer_features", s), "snapshot_date")
    ]
    if not days or not snaps:
        raise MlPlatformError("no silver transactions or feature snapshots yet: run the data plane first")
    last = date.fromisoformat(days[-1])
    ok = [d for d in snaps if d + timedelta(days=horizon_days) <= last]
    if len(ok) < 3:
        raise MlPlatformError(
            f"only {len(ok)} snapshot date(s) have a fully observed {horizon_days}-day label window "
            f"(data ends {last}); need 3 (train, validation, test): shorten --horizon-days "
            f"or add data"
        )
    return ok[-last_k:]


def train_from_lake(
    cutoffs: Sequence[Any],
    horizon_days: int,
    study: Study,
    *,
    training_set_id: str | None = None,
    engine: Engine | None = None,
    settings: Settings | None = None,
    progress: Any = None,
) -> TrainResult:
    """Labels for `cutoffs` -> point-in-time training set (lineage, on `engine`, default: the
    training set's choice) -> `train_and_register`."""
    s = settings or get_settings()
    ts = churn_training_set(cutoffs, horizon_days, training_set_id, engine=engine, settings=s)
    df = with_sensitive_attributes(ts.to_pandas(), s)  # for the fairness report, not as features
    return train_and_register(
        df,
        ts.feature_names,
        study,
        training_set_id=ts.training_set_id,
        lineage=ts.lineage,
        study_name=f"churn-{ts.training_set_id}",
        settings=s,
        progress=progress,
    )
