"""One Optuna study across model families, shared by parallel workers (Airflow mapped tasks).

Storage (docs/ARCHITECTURE.md): never the MLflow database (both keep an `alembic_version` table) and
never SQLite for parallel workers (it locks). Embedded default: `JournalStorage` on a file under
the platform home (`<home>/optuna/journal.log`, file-open lock, safe across processes);
production: its own PostgreSQL database, given as an SQLAlchemy URL.

The family is a categorical parameter of the study; each family adds its own conditional
parameters (`families.suggest_params`). Objective: validation ROC AUC, maximised; intermediate
values (xgboost rounds, MLP epochs) feed a median pruner. With one worker and a fixed seed the
study is reproducible (TPE sampler seeded); parallel workers are not, since trial order depends
on timing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml_platform.training.families import check_families, fit_family, suggest_params, val_auc


@dataclass(frozen=True)
class TrialData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


@dataclass(frozen=True)
class Study:
    """How a training run searches: `n_trials` Optuna trials over the model `families`, from
    `seed`, `threads` per fit, an optional `timeout` (s) for the search, `workers` HPO processes on
    the one study, and the final fit of the MLP on `distributed_workers` Spark workers (0: here)."""

    n_trials: int
    families: Sequence[str]
    seed: int = 0
    threads: int = 1
    timeout: float | None = None
    workers: int = 1
    distributed_workers: int = 0


def split_trials(n_trials: int, n_workers: int) -> list[int]:
    """Trials per worker: as even as possible, no empty worker (fewer workers than trials if need be)."""
    k = max(1, min(n_workers, n_trials))
    return [n_trials // k + (1 if i < n_trials % k else 0) for i in range(k)]


def storage_for(url_or_path: str | Path) -> Any:
    """An Optuna storage: a PostgreSQL (SQLAlchemy) URL, or a journal file path."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    text = str(url_or_path)
    if "://" in text:
        if text.startswith("sqlite"):
            raise ValueError("SQLite locks under parallel Optuna workers: use a journal file or PostgreSQL")
        return optuna.storages.RDBStorage(text)
    path = Path(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def open_study(name: str, storage: Any, seed: int = 0) -> Any:
    """Create or load study `name` (maximise validation AUC, seeded TPE, median pruner)."""
    import optuna

    return optuna.create_study(
        study_name=name,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    )


def objective(data: TrialData, families: Sequence[str], seed: int, threads: int) -> Any:
    families = check_families(families)

    def run(trial: Any) -> float:
        import optuna

        family = trial.suggest_categorical("family", list(families))
        params = suggest_params(trial, family)

        def report(step: int, value: float) -> None:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step} (validation AUC {value:.4f})")

        fitted = fit_family(
            family,
            params,
            data.x_train,
            data.y_train,
            data.x_val,
            data.y_val,
            seed=seed + trial.number,
            threads=threads,
            report=report,
        )
        return val_auc(data.y_val, fitted.predict_proba(data.x_val))

    return run


def run_worker(
    study_name: str,
    storage: Any,
    data: TrialData,
    n_trials: int,
    families: Sequence[str],
    seed: int = 0,
    threads: int = 1,
    timeout: float | None = None,
    callbacks: Sequence[Any] = (),
) -> int:
    """Run `n_trials` trials of the shared study in this process; the number of trials it ran.

    `callbacks` are Optuna trial callbacks (e.g. MLflow logging, a progress bar)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(study_name, storage, seed)
    before = len(study.trials)
    study.optimize(
        objective(data, families, seed, threads),
        n_trials=n_trials,
        timeout=timeout,
        callbacks=list(callbacks),
        catch=(ValueError, FloatingPointError),
    )
    return len(study.trials) - before
