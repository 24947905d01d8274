"""HPO -> final fit -> test metrics -> MLflow registration as `@challenger`, on a training frame.

The frame is a materialised training set (`ml.training_sets`, pandas): one row per customer per
cutoff with the features, `churned` and `cutoff_date`. Splits are by cutoff (`splits.py`).
Every Optuna trial is logged as an MLflow run nested under the study's parent run (params,
intermediate values as steps, final validation AUC). The registered model is the family's
`ChurnModel` pyfunc with signature and input example; its version carries the lineage as tags
(training_set_id, Delta version of every table read, study, best trial, cutoffs, git commit,
library versions) and gets the alias `challenger`; it carries a background sample of training
rows so a served prediction can be explained (`ChurnModel.explain`). The search runs in one
process or in K worker processes on the same study (`workers`; the DAG maps tasks instead); the
final fit is local or distributed (`distributed_workers`, see `distributed.py`), then Platt-scaled
on the validation cutoff (`families.calibrate`).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ml_platform.config import REPO_ROOT, Settings, get_settings
from ml_platform.contracts import SENSITIVE
from ml_platform.errors import MlPlatformError
from ml_platform.evaluation.metrics import best_threshold, classification_metrics, expected_calibration_error
from ml_platform.evaluation.report import evaluation_plots, fairness_report, html_report, shap_plots
from ml_platform.features import FeatureLookup, FeatureStore
from ml_platform.features.training_frame import load_training_frame, with_sensitive_attributes
from ml_platform.lake import get_spark
from ml_platform.lake.paths import table_path
from ml_platform.lake.reader import partition_values
from ml_platform.model.artifacts import TEST_ROWS_FILE
from ml_platform.training.distributed import DISTRIBUTED_FAMILIES, fit_distributed
from ml_platform.training.families import Calibrated, calibrate, fit_family, suggest_params
from ml_platform.training.hpo import TrialData, open_study, run_worker, split_trials, storage_for
from ml_platform.training.labels import build_churn_labels
from ml_platform.training.splits import split_by_cutoff

#: The challenger's held-out rows (features, label, sensitive attributes), logged under evaluation/.


@dataclass
class TrainResult:
    model_name: str
    version: str
    run_id: str
    family: str
    best_params: dict[str, Any]
    test_metrics: dict[str, Any]
    validation_auc: float
    tags: dict[str, str] = field(default_factory=dict)
    report: str = ""  # the HTML evaluation report (also an MLflow artifact)


def mlflow_setup(settings: Settings) -> str:
    """Point MLflow at the configured store; the experiment id (created if missing)."""
    import os

    import mlflow

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if settings.mlflow_tracking_uri.startswith("sqlite:///"):
        Path(settings.mlflow_tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)  # one store for runs and models, always together
    exp = mlflow.get_experiment_by_name(settings.mlflow_experiment)
    if exp is not None:
        return str(exp.experiment_id)
    if settings.mlflow_tracking_uri.startswith(("http://", "https://")):  # a server: its artifact root
        return str(mlflow.create_experiment(settings.mlflow_experiment))
    return str(
        mlflow.create_experiment(
            settings.mlflow_experiment, artifact_location=str(settings.home / "mlflow" / "artifacts")
        )
    )


class TrialLogger:
    """An Optuna callback that records each finished trial as a nested MLflow run.

    The three MLflow calls per trial (create, log, terminate: about 55 ms against the embedded
    SQLite store, mostly commit waits) run on a background thread, so they overlap the next
    trial's fit instead of delaying it; `flush()` waits for the queue and re-raises a logging
    error. `hpo_worker` flushes before it returns."""

    def __init__(self, experiment_id: str, parent_run_id: str) -> None:
        import queue
        import threading

        from mlflow import MlflowClient

        self._client, self._experiment_id, self._parent = MlflowClient(), experiment_id, parent_run_id
        self._queue: queue.Queue[Any] = queue.Queue()
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._drain, name="mlflow-trial-logger", daemon=True)
        self._thread.start()

    def __call__(self, study: Any, trial: Any) -> None:
        self._queue.put((study.study_name, trial))  # a FrozenTrial: an immutable snapshot

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._log(*item)
            except Exception as exc:  # surfaced by flush(), not lost in the thread
                self._errors.append(exc)

    def _log(self, study_name: str, trial: Any) -> None:
        from mlflow.entities import Metric, Param

        done = trial.datetime_complete or trial.datetime_start
        ts = int(done.timestamp() * 1000) if done else 0
        run = self._client.create_run(
            self._experiment_id,
            run_name=f"trial-{trial.number}",
            start_time=ts,
            tags={
                "mlflow.parentRunId": self._parent,
                "optuna.study": study_name,
                "optuna.trial": str(trial.number),
                "optuna.state": trial.state.name,
            },
        )
        metrics = [
            Metric("val_auc_intermediate", float(v), ts, int(step))
            for step, v in sorted(trial.intermediate_values.items())
        ]
        if trial.value is not None:
            metrics.append(Metric("val_auc", float(trial.value), ts, 0))
        self._client.log_batch(
            run.info.run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in trial.params.items()]
        )
        self._client.set_terminated(
            run.info.run_id, "FINISHED" if trial.state.name == "COMPLETE" else "KILLED", end_time=ts
        )

    def flush(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._errors:
            raise self._errors[0]


def trial_logger(experiment_id: str, parent_run_id: str) -> TrialLogger:
    return TrialLogger(experiment_id, parent_run_id)


def _git_commit() -> str:
    try:
        return (
            subprocess.run(
                ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or "unknown"
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("mlflow", "optuna", "xgboost", "scikit-learn", "torch", "numpy", "pandas")}


def start_study_run(
    study_name: str, training_set_id: str, params: dict[str, Any], settings: Settings | None = None
) -> str:
    """The study's parent MLflow run (reused when it exists, so a retried task makes no second one)."""
    import mlflow
    from mlflow import MlflowClient

    s = settings or get_settings()
    experiment_id = mlflow_setup(s)
    client = MlflowClient()
    found = client.search_runs(
        [experiment_id], filter_string=f"tags.`optuna.study` = '{study_name}' and tags.role = 'study'", max_results=1
    )
    if found:
        return str(found[0].info.run_id)
    run = client.create_run(
        experiment_id,
        run_name=study_name,
        tags={"optuna.study": study_name, "training_set_id": training_set_id, "role": "study"},
    )
    client.log_batch(run.info.run_id, params=[mlflow.entities.Param(k, str(v)) for k, v in params.items()])
    return str(run.info.run_id)


def hpo_worker(
    df: Any,
    feature_names: Sequence[str],
    *,
    study_name: str,
    parent_run_id: str,
    n_trials: int,
    families: Sequence[str],
    seed: int = 0,
    threads: int = 1,
    timeout: float | None = None,
    settings: Settings | None = None,
    progress: Any = None,
    progress_total: int | None = None,
) -> int:
    """Run `n_trials` trials of the shared study here, each logged as a nested MLflow run."""
    s = settings or get_settings()
    parts = split_by_cutoff(df, list(feature_names))
    data = TrialData(parts["train"].x, parts["train"].y, parts["validation"].x, parts["validation"].y)
    experiment_id = mlflow_setup(s)
    storage = storage_for(s.optuna_storage)
    first = len(open_study(study_name, storage, seed).trials)
    logger = trial_logger(experiment_id, parent_run_id)
    callbacks: list[Any] = [logger]
    if progress:  # trial numbers are study-wide, so this counts the trials of every worker
        total = progress_total or n_trials
        callbacks.append(lambda st, tr: progress(min(total, tr.number + 1 - first), total))
    try:
        return run_worker(
            study_name,
            storage,
            data,
            n_trials,
            families,
            seed=seed,
            threads=threads,
            timeout=timeout,
            callbacks=callbacks,
        )
    finally:
        logger.flush()


def finalize_and_register(
    df: Any,
    feature_names: Sequence[str],
    *,
    study_name: str,
    parent_run_id: str,
    training_set_id: str,
    lineage: dict[str, int],
    seed: int = 0,
    threads: int = 1,
    distributed_workers: int = 0,
    spark: Any = None,
    extra_tags: dict[str, str] | None = None,
    settings: Settings | None = None,
    report: bool = True,
) -> TrainResult:
    """Refit the study's best configuration, evaluate on the test cutoff, register as @challenger.

    `distributed_workers` > 0 refits an xgboost or mlp winner over that many Spark tasks / torch
    processes (`training.distributed`); other families, and 0, fit in this process.
    `report=False` leaves the evaluation report (plots, SHAP, fairness) to `evaluation_report`
    later, off the path to the promotion gate (the training DAG's last task)."""
    import mlflow
    import optuna
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    from ml_platform.model.pyfunc import ChurnModel

    s = settings or get_settings()
    names = list(feature_names)
    parts = split_by_cutoff(df, names)
    train, val, test = parts["train"], parts["validation"], parts["test"]
    mlflow_setup(s)
    study = open_study(study_name, storage_for(s.optuna_storage), seed)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    if not done:
        raise MlPlatformError(f"study {study_name} has no completed trial: nothing to register")
    best = study.best_trial
    run_id = parent_run_id
    with mlflow.start_run(run_id=parent_run_id):
        family = best.params["family"]
        params = suggest_params(optuna.trial.FixedTrial(best.params), family)
        fitted, how = _final_fit(family, params, train, val, seed + best.number, threads, distributed_workers, spark)
        mlflow.set_tag("final_fit", how)
        val_ece_raw = expected_calibration_error(val.y, fitted.predict_proba(val.x))
        fitted = calibrate(fitted, val.x, val.y)
        mlflow.set_tag(
            "calibration",
            f"platt slope={fitted.slope:.4f} intercept={fitted.intercept:.4f}"
            if isinstance(fitted, Calibrated)
            else "none (the validation rows could not support it)",
        )
        val_p = fitted.predict_proba(val.x)
        mlflow.log_metrics({"val_ece_uncalibrated": val_ece_raw, "val_ece": expected_calibration_error(val.y, val_p)})
        threshold = best_threshold(val.y, val_p)
        test_p = fitted.predict_proba(test.x)
        metrics = classification_metrics(test.y, test_p, threshold)
        mlflow.log_params(
            {f"best_{k}": v for k, v in best.params.items()}
            | {
                "train_cutoffs": ",".join(map(str, train.cutoffs)),
                "validation_cutoff": str(val.cutoffs[0]),
                "test_cutoff": str(test.cutoffs[0]),
                "trials": len(study.trials),
            }
        )
        mlflow.log_metrics({f"test_{k}": float(v) for k, v in metrics.items() if isinstance(v, (int, float))})
        mlflow.log_metric("val_auc", float(best.value))
        bg_rows = np.random.default_rng(seed).choice(len(train.x), size=min(100, len(train.x)), replace=False)
        model = ChurnModel(fitted, names, background=train.x[np.sort(bg_rows)], encoder=train.encoder)
        example = train.encoder.example(test.frame.head(5))
        signature = infer_signature(example, model.predict(None, example))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            signature=signature,
            input_example=example,
            registered_model_name=s.model_name,
        )
        mlflow.log_dict(metrics, "evaluation/test_metrics.json")
        report_dir = s.reports_dir / "training" / run_id
        report_dir.mkdir(parents=True, exist_ok=True)
        # the held-out rows, for promotion to re-score the champion on exactly these
        test.frame.to_parquet(report_dir / TEST_ROWS_FILE, index=False)
        mlflow.log_artifact(str(report_dir / TEST_ROWS_FILE), "evaluation")
        facts = {
            "family": family,
            "best trial": best.number,
            "validation AUC": float(best.value),
            "training_set_id": training_set_id,
            "lineage": lineage,
            "train cutoffs": ",".join(map(str, train.cutoffs)),
            "test cutoff": str(test.cutoffs[0]),
        }
        html = (
            _write_report(
                fitted,
                train,
                test,
                test_p,
                threshold,
                metrics,
                f"{s.model_name}: {study_name}",
                facts,
                report_dir,
                seed,
            )
            if report
            else None
        )
    tags = {
        "training_set_id": training_set_id,
        "lineage": json.dumps(lineage, sort_keys=True),
        "optuna.study": study_name,
        "optuna.best_trial": str(best.number),
        "family": family,
        "train_cutoffs": ",".join(map(str, train.cutoffs)),
        "test_cutoff": str(test.cutoffs[0]),
        "cutoff_date_range": f"{train.cutoffs[0]}..{test.cutoffs[0]}",
        "git_commit": _git_commit(),
        "library_versions": json.dumps(_versions(), sort_keys=True),
        "features": ",".join(names),
        "run_id": run_id,
        "threshold": repr(float(threshold)),
        **{k: str(v) for k, v in (extra_tags or {}).items() if v not in (None, "")},
    }
    client = MlflowClient()
    version = str(info.registered_model_version)
    for k, v in tags.items():
        client.set_model_version_tag(s.model_name, version, k, v)
    client.set_registered_model_alias(s.model_name, "challenger", version)
    return TrainResult(
        s.model_name,
        version,
        run_id,
        family,
        dict(best.params),
        metrics,
        float(best.value),
        tags,
        report=str(html) if html else "",
    )


def _write_report(
    fitted: Any,
    train: Any,
    test: Any,
    test_p: np.ndarray,
    threshold: float,
    metrics: dict[str, Any],
    title: str,
    facts: dict[str, Any],
    report_dir: Path,
    seed: int,
) -> Path:
    """Plots, SHAP, fairness and the HTML page into `report_dir`, logged under evaluation/ of the
    active MLflow run; the HTML path."""
    import mlflow

    plots = evaluation_plots(test.y, test_p, threshold, report_dir)
    shap_paths, shap_means = shap_plots(fitted, test.x, train.x, train.encoder.output_names, report_dir, seed=seed)
    plots.update(shap_paths)
    present = [c for c in SENSITIVE if c in test.frame.columns]
    fairness, fair_plot = fairness_report(test.y, test_p, threshold, test.frame[present], report_dir)
    if fair_plot is not None:
        plots["fairness"] = fair_plot
    else:
        mlflow.set_tag("fairness", "skipped: no sensitive attribute (gender, age_band, region) in the training set")
    mlflow.log_dict({"mean_abs_shap": shap_means}, "evaluation/shap_importance.json")
    html = html_report(title, {**metrics, "fairness": fairness}, plots, facts, report_dir / "evaluation.html")
    mlflow.log_artifacts(str(report_dir), "evaluation")
    return html


def evaluation_report(version: str, seed: int = 0, settings: Settings | None = None) -> str:
    """The evaluation report of registered `version`, written after registration (the training
    DAG's last task, beside the promotion gate): the version's own pyfunc re-scores the test
    cutoff of its training set, split as at registration; the report goes where
    `finalize_and_register(report=True)` puts it, and into the same MLflow run. The HTML path."""
    import mlflow
    from mlflow import MlflowClient

    s = settings or get_settings()
    mlflow_setup(s)
    client = MlflowClient()
    mv = client.get_model_version(s.model_name, version)
    tags = mv.tags
    model = mlflow.pyfunc.load_model(f"models:/{s.model_name}/{version}").unwrap_python_model()
    df, names, lineage = load_training_frame(tags["training_set_id"], s)
    parts = split_by_cutoff(df, names)
    train, test = parts["train"], parts["test"]
    threshold = float(tags["threshold"])
    test_p = model.fitted.predict_proba(test.x)
    metrics = classification_metrics(test.y, test_p, threshold)
    run_id = tags["run_id"]
    logged = client.get_run(run_id).data.metrics
    if abs(float(metrics["roc_auc"]) - logged.get("test_roc_auc", float("nan"))) > 1e-9:
        raise MlPlatformError(
            f"v{version}: its test cutoff re-scored gives ROC AUC {metrics['roc_auc']:.6f}, "
            f"registration logged {logged.get('test_roc_auc')}: the report would describe other rows"
        )
    facts = {
        "family": tags["family"],
        "best trial": int(tags["optuna.best_trial"]),
        "validation AUC": logged.get("val_auc"),
        "training_set_id": tags["training_set_id"],
        "lineage": lineage,
        "train cutoffs": tags["train_cutoffs"],
        "test cutoff": tags["test_cutoff"],
    }
    report_dir = s.reports_dir / "training" / run_id
    report_dir.mkdir(parents=True, exist_ok=True)
    with mlflow.start_run(run_id=run_id):
        html = _write_report(
            model.fitted,
            train,
            test,
            test_p,
            threshold,
            metrics,
            f"{s.model_name}: {tags['optuna.study']}",
            facts,
            report_dir,
            seed,
        )
    client.set_model_version_tag(s.model_name, version, "evaluation_report", str(html))
    return str(html)


def _final_fit(
    family: str,
    params: dict[str, Any],
    train: Any,
    val: Any,
    seed: int,
    threads: int,
    distributed_workers: int,
    spark: Any,
) -> tuple[Any, str]:
    if distributed_workers > 0 and family in DISTRIBUTED_FAMILIES:
        if spark is None or type(spark).__module__.startswith("pyspark.sql.connect"):
            spark = get_spark("final-fit", classic=True)  # barrier stages are RDD API, not in Spark Connect
        slots = spark.sparkContext.defaultParallelism
        if distributed_workers > slots:
            raise MlPlatformError(
                f"distributed_workers={distributed_workers} but Spark has {slots} task slots "
                f"({spark.sparkContext.master}); the barrier stage needs one slot per worker"
            )
        fitted = fit_distributed(
            spark, family, params, train.x, train.y, val.x, val.y, num_workers=distributed_workers, seed=seed
        )
        how = "xgboost.spark" if family == "xgboost" else "TorchDistributor"
        return fitted, f"{how} x{distributed_workers}"
    return fit_family(family, params, train.x, train.y, val.x, val.y, seed=seed, threads=threads), "local"


def train_and_register(
    df: Any,
    feature_names: Sequence[str],
    *,
    training_set_id: str,
    lineage: dict[str, int],
    study_name: str,
    n_trials: int,
    families: Sequence[str],
    seed: int = 0,
    threads: int = 1,
    timeout: float | None = None,
    workers: int = 1,
    distributed_workers: int = 0,
    spark: Any = None,
    settings: Settings | None = None,
    progress: Any = None,
) -> TrainResult:
    """All steps without Airflow (the CLI): study run -> HPO -> final fit -> register.

    `workers` > 1 runs that many HPO processes on the one study (this process is worker 0 and
    reports progress, `progress(done, total)` after every trial); like mapped DAG tasks, they
    are not reproducible run to run, one worker with a fixed seed is."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from contextlib import nullcontext

    s = settings or get_settings()
    parent = start_study_run(
        study_name,
        training_set_id,
        {"n_trials": n_trials, "families": ",".join(families), "seed": seed, "workers": workers},
        s,
    )
    shares = split_trials(n_trials, workers)
    common = dict(
        study_name=study_name, parent_run_id=parent, families=families, threads=threads, timeout=timeout, settings=s
    )
    with (
        ProcessPoolExecutor(len(shares) - 1, mp_context=multiprocessing.get_context("spawn"))
        if len(shares) > 1
        else nullcontext() as pool
    ):
        others = [
            pool.submit(hpo_worker, df, feature_names, n_trials=n, seed=seed + i, **common)
            for i, n in enumerate(shares[1:], start=1)
        ]
        hpo_worker(
            df, feature_names, n_trials=shares[0], seed=seed, progress=progress, progress_total=n_trials, **common
        )
        for f in others:
            f.result()
    return finalize_and_register(
        df,
        feature_names,
        study_name=study_name,
        parent_run_id=parent,
        training_set_id=training_set_id,
        lineage=lineage,
        seed=seed,
        threads=threads,
        distributed_workers=distributed_workers,
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
    *,
    n_trials: int,
    families: Sequence[str],
    seed: int = 0,
    threads: int = 1,
    timeout: float | None = None,
    training_set_id: str | None = None,
    workers: int = 1,
    distributed_workers: int = 0,
    spark: Any = None,
    settings: Settings | None = None,
    progress: Any = None,
) -> TrainResult:
    """Labels for `cutoffs` -> point-in-time training set (lineage) -> `train_and_register`."""
    s = settings or get_settings()
    store = FeatureStore(settings=s, spark=spark)
    entity = build_churn_labels(list(cutoffs), horizon_days, spark=store.spark, settings=s)
    ts = store.create_training_set(
        entity,
        [FeatureLookup("features.customer_features")],
        timestamp_key="event_timestamp",
        label="churned",
        training_set_id=training_set_id,
    )
    df = with_sensitive_attributes(ts.to_pandas(), s)  # for the fairness report, not as features
    return train_and_register(
        df,
        ts.feature_names,
        training_set_id=ts.training_set_id,
        lineage=ts.lineage,
        study_name=f"churn-{ts.training_set_id}",
        n_trials=n_trials,
        families=families,
        seed=seed,
        threads=threads,
        timeout=timeout,
        workers=workers,
        distributed_workers=distributed_workers,
        spark=store.spark,
        settings=s,
        progress=progress,
    )
