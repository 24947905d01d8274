"""The production Optuna storage: a PostgreSQL database of its own (never MLflow's), shared by
two worker processes as the mapped `hpo` tasks share it: exactly 20 trials, none failed."""

from __future__ import annotations

import multiprocessing as mp
import os
import uuid

import pytest

from ml_platform.training.hpo import TrialData, open_study, run_worker, storage_for
from tests.helpers import small_trial_data

pytestmark = pytest.mark.integration


def _data() -> TrialData:
    return small_trial_data(4)


def _worker(url: str, seed: int) -> None:
    run_worker("churn-pg", storage_for(url), _data(), 10, ["logreg", "xgboost"], seed=seed)


@pytest.fixture()
def optuna_db_url():
    import sqlalchemy as sa

    pg = os.environ.get("ML_PLATFORM_TEST_PG_URL")
    assert pg, "ML_PLATFORM_TEST_PG_URL is not set: run through `make test` (it starts PostgreSQL)"
    db = f"optuna_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{pg}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{db}"'))
    yield f"{pg}/{db}"
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))


def test_two_workers_share_one_study_on_postgres(optuna_db_url):
    open_study("churn-pg", storage_for(optuna_db_url))  # create the schema once, before the race
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(optuna_db_url, s)) for s in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=600)
    assert [p.exitcode for p in procs] == [0, 0]
    study = open_study("churn-pg", storage_for(optuna_db_url))
    assert len(study.trials) == 20
    assert {t.state.name for t in study.trials} <= {"COMPLETE", "PRUNED"} and study.best_value > 0.7
    import sqlalchemy as sa

    with sa.create_engine(optuna_db_url).connect() as c:  # Optuna's own schema, alone in its database
        tables = set(sa.inspect(c).get_table_names())
    assert {"studies", "trials", "alembic_version"} <= tables and "registered_models" not in tables
