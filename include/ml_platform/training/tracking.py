"""MLflow tracking of a training run: the store and experiment (`mlflow_setup`), the study's parent
run (`start_study_run`), every Optuna trial as a nested run (`TrialLogger`, written off the
search's thread), and the code and library versions a registered model records."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from ml_platform.config import Settings, get_settings
from ml_platform.lake.endpoints import use_mlflow
from ml_platform.training.hpo import open_study, storage_for


def mlflow_setup(settings: Settings) -> str:
    """Point MLflow at the configured store; the experiment id (created if missing)."""
    import os

    import mlflow

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if settings.mlflow_tracking_uri.startswith("sqlite:///"):
        Path(settings.mlflow_tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    use_mlflow(settings.mlflow_tracking_uri)
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
                ["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
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
    """The study's parent MLflow run (reused when it exists, so a retried task makes no second one).
    Opens the Optuna study too: its storage's tables and the study exist before parallel workers
    start (two workers creating a PostgreSQL schema at once collide)."""
    import mlflow
    from mlflow import MlflowClient

    s = settings or get_settings()
    open_study(study_name, storage_for(s.optuna_storage))
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
