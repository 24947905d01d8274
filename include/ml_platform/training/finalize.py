"""The end of a search: refit the study's best configuration (here or distributed), Platt-scale it on
the validation cutoff, evaluate it on the test cutoff, register it as `@challenger` with its lineage
(`finalize_and_register`), and the HTML evaluation report (`evaluation_report`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ml_platform.config import Settings, get_settings
from ml_platform.contracts import SENSITIVE
from ml_platform.errors import MlPlatformError
from ml_platform.evaluation.metrics import best_threshold, classification_metrics, expected_calibration_error
from ml_platform.evaluation.report import evaluation_plots, fairness_report, html_report, shap_plots
from ml_platform.features.store import FeatureStore
from ml_platform.features.training_frame import load_training_frame
from ml_platform.lake import get_spark
from ml_platform.lake.paths import table_path
from ml_platform.model.artifacts import TEST_ROWS_FILE
from ml_platform.training.distributed import DISTRIBUTED_FAMILIES, delta_training_frame, fit_distributed
from ml_platform.training.families import Calibrated, calibrate, fit_family, suggest_params
from ml_platform.training.hpo import Study, open_study, storage_for
from ml_platform.training.splits import split_by_cutoff
from ml_platform.training.tracking import _git_commit, _versions, mlflow_setup


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


def finalize_and_register(  # noqa: PLR0913  (the study, its MLflow run, its training set, and how to report)
    df: Any,
    feature_names: Sequence[str],
    study: Study,
    *,
    study_name: str,
    parent_run_id: str,
    training_set_id: str,
    lineage: dict[str, int],
    spark: Any = None,
    extra_tags: dict[str, str] | None = None,
    settings: Settings | None = None,
    report: bool = True,
) -> TrainResult:
    """Refit the study's best configuration, evaluate on the test cutoff, register as @challenger.

    `study.distributed_workers` > 0 refits an xgboost or mlp winner over that many Spark tasks / torch
    processes (`training.distributed`); other families, and 0, fit in this process.
    `report=False` leaves the evaluation report (plots, SHAP, fairness) to `evaluation_report`
    later, off the path to the promotion gate (the training DAG's last task)."""
    import mlflow

    s = settings or get_settings()
    names = list(feature_names)
    parts = split_by_cutoff(df, names)
    train, val, test = parts["train"], parts["validation"], parts["test"]
    mlflow_setup(s)
    seed = study.seed
    optuna_study, best = _best_trial(study_name, seed, s)
    family = best.params["family"]
    with mlflow.start_run(run_id=parent_run_id):
        fitted, threshold = _fit_and_calibrate(best, train, val, study, spark, training_set_id, s)
        test_p = fitted.predict_proba(test.x)
        metrics = classification_metrics(test.y, test_p, threshold)
        _log_search(best, optuna_study, train, val, test, metrics)
        info = _log_model(fitted, names, train, test, seed, s)
        report_dir = s.reports_dir / "training" / parent_run_id
        _save_test_rows(test, report_dir)
        facts = {
            "family": family,
            "best trial": best.number,
            "validation AUC": float(best.value),
            "training_set_id": training_set_id,
            "lineage": lineage,
            "train cutoffs": ",".join(map(str, train.cutoffs)),
            "test cutoff": str(test.cutoffs[0]),
        }
        title = f"{s.model_name}: {study_name}"
        html = (
            _write_report(fitted, train, test, test_p, threshold, metrics, title, facts, report_dir, seed)
            if report
            else None
        )
    tags = _model_tags(best, study_name, training_set_id, lineage, train, test, names, parent_run_id, threshold)
    tags |= {k: str(v) for k, v in (extra_tags or {}).items() if v not in (None, "")}
    version = _register(str(info.registered_model_version), tags, s)
    return TrainResult(
        s.model_name,
        version,
        parent_run_id,
        family,
        dict(best.params),
        metrics,
        float(best.value),
        tags,
        report=str(html) if html else "",
    )


def _best_trial(study_name: str, seed: int, s: Settings) -> tuple[Any, Any]:
    """The study and its best completed trial; a clear error when no trial completed."""
    study = open_study(study_name, storage_for(s.optuna_storage), seed)
    if not any(t.state.name == "COMPLETE" for t in study.trials):
        raise MlPlatformError(f"study {study_name} has no completed trial: nothing to register")
    return study, study.best_trial


def _fit_and_calibrate(
    best: Any, train: Any, val: Any, study: Study, spark: Any, training_set_id: str, s: Settings
) -> tuple[Any, float]:
    """Refit the best trial's configuration, Platt-calibrate it on the validation rows and choose the
    decision threshold there (F1); both logged to the active MLflow run."""
    import mlflow
    import optuna

    family = best.params["family"]
    params = suggest_params(optuna.trial.FixedTrial(best.params), family)
    fitted, how = _final_fit(
        family,
        params,
        train,
        val,
        study.seed + best.number,
        study.threads,
        study.distributed_workers,
        spark,
        training_set_id,
        s,
    )
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
    return fitted, best_threshold(val.y, val_p)


def _log_search(best: Any, study: Any, train: Any, val: Any, test: Any, metrics: dict[str, Any]) -> None:
    """The winning parameters, the cutoffs and the test metrics, on the active MLflow run."""
    import mlflow

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
    mlflow.log_dict(metrics, "evaluation/test_metrics.json")


def _log_model(fitted: Any, names: list[str], train: Any, test: Any, seed: int, s: Settings) -> Any:
    """The pyfunc (the fitted model, its encoder, a SHAP background of 100 training rows) with its
    signature and an input example, registered as a new version of the model; MLflow's model info."""
    import mlflow
    from mlflow.models import infer_signature

    from ml_platform.model.pyfunc import ChurnModel

    bg_rows = np.random.default_rng(seed).choice(len(train.x), size=min(100, len(train.x)), replace=False)
    model = ChurnModel(fitted, names, background=train.x[np.sort(bg_rows)], encoder=train.encoder)
    example = train.encoder.example(test.frame.head(5))
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=model,
        signature=infer_signature(example, model.predict(None, example)),
        input_example=example,
        registered_model_name=s.model_name,
    )


def _save_test_rows(test: Any, report_dir: Path) -> None:
    """The held-out rows, for the promotion gate to re-score the champion on exactly these."""
    import mlflow

    report_dir.mkdir(parents=True, exist_ok=True)
    test.frame.to_parquet(report_dir / TEST_ROWS_FILE, index=False)
    mlflow.log_artifact(str(report_dir / TEST_ROWS_FILE), "evaluation")


def _model_tags(
    best: Any,
    study_name: str,
    training_set_id: str,
    lineage: dict[str, int],
    train: Any,
    test: Any,
    names: list[str],
    run_id: str,
    threshold: float,
) -> dict[str, str]:
    """What the model version carries: its data (training set, lineage, cutoffs), its search, its code
    and libraries, its features and its decision threshold."""
    return {
        "training_set_id": training_set_id,
        "lineage": json.dumps(lineage, sort_keys=True),
        "optuna.study": study_name,
        "optuna.best_trial": str(best.number),
        "family": best.params["family"],
        "train_cutoffs": ",".join(map(str, train.cutoffs)),
        "test_cutoff": str(test.cutoffs[0]),
        "cutoff_date_range": f"{train.cutoffs[0]}..{test.cutoffs[0]}",
        "git_commit": _git_commit(),
        "library_versions": json.dumps(_versions(), sort_keys=True),
        "features": ",".join(names),
        "run_id": run_id,
        "threshold": repr(float(threshold)),
    }


def _register(version: str, tags: dict[str, str], s: Settings) -> str:
    """Tag the registered version and move @challenger to it."""
    from mlflow import MlflowClient

    client = MlflowClient()
    for k, v in tags.items():
        client.set_model_version_tag(s.model_name, version, k, v)
    client.set_registered_model_alias(s.model_name, "challenger", version)
    return version


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
    html = html_report(title, metrics, plots, facts, report_dir / "evaluation.html", fairness=fairness)
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
    training_set_id: str,
    settings: Settings,
) -> tuple[Any, str]:
    if distributed_workers > 0 and family in DISTRIBUTED_FAMILIES:
        if spark is None or type(spark).__module__.startswith("pyspark.sql.connect"):
            # barrier stages are RDD API, not in Spark Connect; one slot per worker at once
            spark = get_spark("final-fit", classic=True, extra_conf={"spark.cores.max": str(distributed_workers)})
        cap = spark.sparkContext.getConf().get("spark.cores.max")
        if cap and int(cap) < distributed_workers:
            raise MlPlatformError(
                f"distributed_workers={distributed_workers} but this Spark application may hold {cap} core(s) "
                "(spark.cores.max, ML_PLATFORM_SPARK_CORES_MAX); the barrier stage needs one per worker"
            )
        slots = spark.sparkContext.defaultParallelism
        if distributed_workers > slots:
            raise MlPlatformError(
                f"distributed_workers={distributed_workers} but Spark has {slots} task slots "
                f"({spark.sparkContext.master}); the barrier stage needs one slot per worker"
            )
        frame = None
        if family == "xgboost":  # the executors read the training set from Delta and encode it
            meta = FeatureStore(settings=settings).get_training_set(training_set_id).metadata
            frame = delta_training_frame(
                spark,
                table_path("ml.training_sets", settings),
                meta["table_version"],
                training_set_id,
                train.encoder,
                train.cutoffs,
                val.cutoffs,
            )
        fitted = fit_distributed(
            spark,
            family,
            params,
            train.x,
            train.y,
            val.x,
            val.y,
            num_workers=distributed_workers,
            seed=seed,
            frame=frame,
        )
        how = "xgboost.spark (from Delta)" if family == "xgboost" else "TorchDistributor"
        return fitted, f"{how} x{distributed_workers}"
    return fit_family(family, params, train.x, train.y, val.x, val.y, seed=seed, threads=threads), "local"
