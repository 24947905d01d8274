"""`dag.test()` runs of the real DAGs (spark-submit against local Spark, real Delta tables)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from ml_platform.data.generator import GeneratorSpec, write_landing

pytestmark = pytest.mark.dags
START = date(2025, 1, 1)


@pytest.fixture(scope="module")
def bag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    from ml_platform.config import get_settings

    get_settings.cache_clear()
    write_landing(GeneratorSpec(customers=1000, start=START, end=START + timedelta(days=3), seed=11),
                  get_settings().landing_dir)
    return DagBag()


def _states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def _table(name: str):
    from ml_platform.lake.paths import table_path
    from ml_platform.lake.reader import read_pandas, table_summary

    df = read_pandas(table_path(name))
    return df.sort_values(list(df.columns[:2])).reset_index(drop=True), table_summary(table_path(name))["version"]


def test_features_build_several_days_then_rerun_changes_nothing(bag):
    dag = bag.get_dag("features_build")
    for i in range(3):
        run = dag.test(logical_date=datetime(2025, 1, 1 + i, tzinfo=timezone.utc))
        assert str(run.state) == "success", _states(run)
        assert _states(run)["publish_features"] == "success"  # newest snapshot each time: published
    feats, _ = _table("features.customer_features")
    assert sorted(feats["snapshot_date"].astype(str).unique()) == ["2025-01-01", "2025-01-02", "2025-01-03"]
    silver, _ = _table("silver.transactions")

    rerun = dag.test(logical_date=datetime(2025, 1, 2, tzinfo=timezone.utc))
    assert str(rerun.state) == "success"
    assert _states(rerun)["publish_features"] == "skipped"  # an old date never republishes
    feats2, _ = _table("features.customer_features")
    silver2, _ = _table("silver.transactions")
    assert feats2.equals(feats) and silver2.equals(silver)

    # registered by the DAG, and the online store holds the newest snapshot (not the rerun's)
    from ml_platform.features import FeatureStore

    store = FeatureStore()
    assert [t.name for t in store.list_tables()] == ["features.customer_features"]
    newest = feats[feats["snapshot_date"].astype(str) == "2025-01-03"].iloc[0]
    row = store.get_online_features("features.customer_features", [newest["customer_id"]])[0]
    assert row.found and row.feature_timestamp == datetime(2025, 1, 4, tzinfo=timezone.utc)
    assert row.values["monetary_lifetime"] == pytest.approx(newest["monetary_lifetime"])
    assert list(row.values) == store.get_table("features.customer_features").feature_names


def test_a_day_without_files_is_a_clear_skip(bag):
    dag = bag.get_dag("features_build")
    run = dag.test(logical_date=datetime(2025, 1, 20, tzinfo=timezone.utc))
    states = _states(run)
    assert states["find_landed_files"] == "skipped"
    assert str(run.state) == "success"


def test_drift_environment_task_runs_and_exits_cleanly(bag):
    run = bag.get_dag("platform_check").test()
    assert str(run.state) == "success", _states(run)
    ti = run.get_task_instances()[0]
    versions = ti.xcom_pull(task_ids="drift_env_versions")
    assert versions["alibi_detect"] == "0.13.0" and versions["numpy"].startswith("1.")


def test_lake_maintenance_compacts_and_keeps_tables_readable(bag):
    from ml_platform.lake.paths import table_path
    from ml_platform.lake.reader import table_summary

    if not table_summary(table_path("silver.transactions"))["exists"]:  # when run on its own
        bag.get_dag("features_build").test(logical_date=datetime(2025, 1, 1, tzinfo=timezone.utc))
    before = table_summary(table_path("silver.transactions"))
    run = bag.get_dag("lake_maintenance").test()
    assert str(run.state) == "success", _states(run)
    after = table_summary(table_path("silver.transactions"))
    assert after["rows"] == before["rows"] and after["files"] <= before["files"]
