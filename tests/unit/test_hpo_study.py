"""One shared Optuna study on the embedded journal storage: parallel workers, no lost trials."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from ml_platform.training.hpo import TrialData, open_study, run_worker, storage_for
from tests.helpers import small_trial_data

pytestmark = pytest.mark.unit


def _data() -> TrialData:
    return small_trial_data(3)


def _worker(path: str, seed: int) -> None:
    run_worker("churn", storage_for(path), _data(), 10, ["logreg", "extra_trees"], seed=seed)


def test_two_workers_ten_trials_each_make_exactly_twenty(tmp_path):
    path = str(tmp_path / "optuna" / "journal.log")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(path, s)) for s in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    study = open_study("churn", storage_for(path))
    assert len(study.trials) == 20
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    assert {t.params["family"] for t in study.trials} <= {"logreg", "extra_trees"}
    assert 0.7 < study.best_value <= 1.0


def test_one_worker_same_seed_same_best(tmp_path):
    best = []
    for run in ("a", "b"):
        storage = storage_for(tmp_path / run / "journal.log")
        run_worker("s", storage, _data(), 6, ["logreg", "random_forest"], seed=5)
        study = open_study("s", storage, seed=5)
        best.append((study.best_params, study.best_value))
    assert best[0] == best[1]


def test_sqlite_storage_is_refused(tmp_path):
    with pytest.raises(ValueError, match="SQLite locks"):
        storage_for(f"sqlite:///{tmp_path}/optuna.db")
