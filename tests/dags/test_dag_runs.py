"""`dag.test()` runs of the real DAGs (spark-submit against local Spark, real Delta tables)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ml_platform.data.generator import GeneratorSpec, write_landing
from ml_platform.lake.paths import landing_dir

pytestmark = pytest.mark.dags
START = date(2025, 1, 1)


@pytest.fixture(scope="module")
def bag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    from ml_platform.config import get_settings

    get_settings.cache_clear()
    write_landing(GeneratorSpec(customers=1000, start=START, end=START + timedelta(days=3), seed=11), landing_dir())
    return DagBag()


def _states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def _table(name: str):
    from ml_platform.lake.paths import table_path
    from ml_platform.lake.reader import read_pandas, table_summary

    df = read_pandas(table_path(name))
    return df.sort_values(list(df.columns[:2])).reset_index(drop=True), table_summary(table_path(name))["version"]


class _JavaWatch:
    """Every `java` process that appears among this process's descendants while the block runs
    (sampled every 50 ms: a JVM lives seconds); one already running before it, such as another
    tier's Spark session in the same pytest process, is not the block's."""

    def __enter__(self):
        import threading

        import psutil

        self.seen: set[str] = set()
        self._stop = threading.Event()
        me = psutil.Process()
        before = {c.pid for c in me.children(recursive=True)}

        def watch():
            while not self._stop.wait(0.05):
                for child in me.children(recursive=True):
                    try:
                        if child.pid not in before and child.name() == "java":
                            self.seen.add(" ".join(child.cmdline()[-3:]))
                    except psutil.Error:
                        pass

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def test_features_build_several_days_then_rerun_changes_nothing(bag, monkeypatch):
    """On one machine a default run is the whole data plane on the embedded engine: never spark-submit,
    no JVM anywhere in the run's process tree; reruns change nothing, old dates never republish."""
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    def no_spark_submit(*args, **kwargs):
        raise AssertionError("spark-submit ran on one machine, where the embedded engine runs the data plane")

    monkeypatch.setattr(SparkSubmitHook, "submit", no_spark_submit)
    dag = bag.get_dag("features_build")
    with _JavaWatch() as java:
        _features_build_runs(dag)
    assert not java.seen, java.seen


def _features_build_runs(dag) -> None:
    for i in range(2):
        run = dag.test(logical_date=datetime(2025, 1, 1 + i, tzinfo=timezone.utc))
        assert str(run.state) == "success", _states(run)
        assert _states(run)["publish_features"] == "success"  # newest snapshot each time: published
    feats, _ = _table("features.customer_features")
    assert sorted(feats["snapshot_date"].astype(str).unique()) == ["2025-01-01", "2025-01-02"]
    silver, _ = _table("silver.transactions")

    rerun = dag.test(logical_date=datetime(2025, 1, 1, tzinfo=timezone.utc))
    assert str(rerun.state) == "success"
    assert _states(rerun)["publish_features"] == "skipped"  # an old date never republishes
    feats2, _ = _table("features.customer_features")
    silver2, _ = _table("silver.transactions")
    assert feats2.equals(feats) and silver2.equals(silver)

    # a features-only run (the trigger form's `steps`): same rows, a new version, published as the newest
    import json

    from ml_platform.features import FeatureStore
    from ml_platform.lake.paths import table_path

    only = dag.test(logical_date=datetime(2025, 1, 2, tzinfo=timezone.utc), run_conf={"steps": "features"})
    assert str(only.state) == "success", _states(only)
    assert _states(only)["publish_features"] == "success"
    feats3, version = _table("features.customer_features")
    assert feats3.equals(feats)
    log = Path(table_path("features.customer_features")) / "_delta_log" / f"{version:020d}.json"
    info = json.loads(log.read_text().splitlines()[0])["commitInfo"]
    assert info["engineInfo"].startswith("ml-platform embedded")
    assert FeatureStore().online.current("features.customer_features")["tag"] == f"v{version}"

    # registered by the DAG, and the online store holds the newest snapshot (not the rerun's)
    store = FeatureStore()
    assert [t.name for t in store.list_tables()] == ["features.customer_features"]
    newest = feats[feats["snapshot_date"].astype(str) == "2025-01-02"].iloc[0]
    row = store.get_online_features("features.customer_features", [newest["customer_id"]])[0]
    assert row.found and row.feature_timestamp == datetime(2025, 1, 3, tzinfo=timezone.utc)
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
    run = bag.get_dag("lake_maintenance").test(run_conf={"tables": "silver.transactions"})
    assert str(run.state) == "success", _states(run)
    after = table_summary(table_path("silver.transactions"))
    assert after["rows"] == before["rows"] and after["files"] <= before["files"]


def test_training_dag_fans_out_hpo_and_registers_a_challenger(bag):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import mlflow
    from mlflow import MlflowClient

    from ml_platform.config import get_settings
    from ml_platform.training.hpo import open_study, storage_for

    s = get_settings()
    write_landing(GeneratorSpec(customers=1000, start=date(2025, 1, 5), end=date(2025, 1, 10), seed=12), landing_dir(s))
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "ml-platform"),
            "run",
            "--start",
            "2025-01-05",
            "--end",
            "2025-01-10",
            "--batch-days",
            "6",
        ],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    dag = bag.get_dag("training")
    result = dag.test(
        run_conf={
            "cutoffs": "2025-01-05,2025-01-06,2025-01-07,2025-01-08",
            "horizon_days": 2,
            "n_trials": 4,
            "n_workers": 2,
            "families": "logreg,xgboost",
        }
    )
    assert str(result.state) == "success", _states(result)
    tis = {ti.task_id: ti for ti in result.get_task_instances()}
    assert sum(1 for ti in result.get_task_instances() if ti.task_id == "hpo") == 2  # two mapped workers
    out = tis["register"].xcom_pull(task_ids="register")
    assert out["model_name"] == "churn_model"
    # the report is written after registration, by its own task, into the version's MLflow run
    report = Path(tis["evaluation_report"].xcom_pull(task_ids="evaluation_report"))
    assert report.is_file() and "data:image/png;base64," in report.read_text()
    mv_report = MlflowClient(s.mlflow_tracking_uri).get_model_version("churn_model", out["version"])
    assert mv_report.tags["evaluation_report"] == str(report)
    logged = {f.path for f in MlflowClient(s.mlflow_tracking_uri).list_artifacts(mv_report.run_id, "evaluation")}
    assert {"evaluation/evaluation.html", "evaluation/test_rows.parquet", "evaluation/shap_summary.png"} <= logged
    mlflow.set_tracking_uri(s.mlflow_tracking_uri)
    mv = MlflowClient().get_model_version_by_alias("churn_model", "challenger")
    assert str(mv.version) == out["version"] and mv.tags["training_set_id"] == out["training_set_id"]
    assert json.loads(mv.tags["lineage"])["features.customer_features"] >= 0
    study = open_study(f"churn-{out['training_set_id']}", storage_for(s.optuna_storage))
    assert len(study.trials) == 4 and out["trials"] == 4  # 2 workers x 2 trials on one study
    probs = mlflow.pyfunc.load_model("models:/churn_model@challenger").predict(
        __import__("pandas").DataFrame([{n: None for n in mv.tags["features"].split(",")}]).astype("float64")
    )
    assert 0.0 <= float(probs.iloc[0]) <= 1.0  # a row of NULLs still scores
    arts = {a.path.rsplit("/", 1)[-1] for a in MlflowClient().list_artifacts(mv.run_id, "evaluation")}
    assert {
        "evaluation.html",
        "roc.png",
        "precision_recall.png",
        "confusion_matrix.png",
        "calibration.png",
        "shap_summary.png",
        "shap_bar.png",
        "test_metrics.json",
        "shap_importance.json",
    } <= arts
    assert mv.tags["cutoff_date_range"] == "2025-01-05..2025-01-08" and mv.tags["git_commit"]


def test_serving_deploy_promotes_the_challenger_then_batch_scoring_scores_the_newest_snapshot(bag):
    """After the training DAG above: the deployment DAG gates, builds and smoke-tests a Bento
    (SQLite online store), moves the aliases; no service is running, which confirm_serving says.
    Then batch_scoring writes gold.churn_scores for the newest snapshot with the champion."""
    from ml_platform.config import get_settings
    from ml_platform.lake.paths import table_path
    from ml_platform.lake.reader import partition_values, read_pandas
    from ml_platform.registry.aliases import history
    from ml_platform.registry.evaluate import alias_version

    s = get_settings()
    challenger = alias_version("challenger", s)
    if challenger is None:
        pytest.fail("needs the @challenger registered by test_training_dag_fans_out_hpo_and_registers_a_challenger")
    # the training test loaded days with `ml-platform run`, which does not publish: bring the online store up to date
    import os
    import subprocess
    import sys
    from pathlib import Path

    pub = subprocess.run(
        [str(Path(sys.executable).parent / "ml-platform"), "features", "publish", "features.customer_features"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pub.returncode == 0, pub.stderr[-2000:]
    # tiny data (1000 customers, a 2-day window): judge it against a zero floor, the gate's logic is unit-tested
    run = bag.get_dag("serving_deploy").test(
        run_conf={
            "floor_auc": 0.0,
            "floor_max_ece": 1.0,
            "floor_max_fairness_gap": 1.0,
            "latency_p99_ms": 1000.0,
            "smoke_p99_ms": 1000.0,
        }
    )
    states = _states(run)
    assert str(run.state) == "success", states
    assert states["build_bento"] == states["smoke_test"] == states["apply_decision"] == "success"
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    smoke = tis["smoke_test"].xcom_pull(task_ids="smoke_test")
    assert smoke["model_version"] == challenger and smoke["found"] > 0 and smoke["p99_ms"] > 0
    assert tis["confirm_serving"].xcom_pull(task_ids="confirm_serving")["running"] is False
    assert alias_version("champion", s) == challenger and alias_version("challenger", s) is None
    rows = history(s)
    assert rows[-1]["action"] == "promote" and rows[-1]["dag_run_id"] == run.run_id

    run = bag.get_dag("batch_scoring").test()
    assert str(run.state) == "success", _states(run)
    newest = partition_values(table_path("features.customer_features", s), "snapshot_date")[-1]
    scores = read_pandas(table_path("gold.churn_scores", s))
    assert sorted(scores["score_date"].astype(str).unique()) == [newest]
    assert set(scores["model_version"]) == {challenger} and scores["churn_probability"].between(0, 1).all()


def test_monitoring_twice_over_one_week_hands_exactly_one_retrain_to_training(bag):
    """After the deployment test above (a champion exists). Thresholds that make every feature of the
    newest snapshot count as drifted and a one-window policy force a retrain decision; the detector
    and the policy are unit-tested, this checks the wiring and the exactly-once hand-off."""
    import asyncio
    from pathlib import Path

    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.sdk.exceptions import TaskDeferred
    from airflow.utils.session import create_session

    from ml_platform.config import get_settings
    from ml_platform.lake.paths import table_path
    from ml_platform.lake.reader import partition_values, read_pandas
    from ml_platform.registry.evaluate import alias_version, client
    from retrain_sensor import RetrainDecisionSensor, RetrainDecisionTrigger

    s = get_settings()
    champion = alias_version("champion", s)
    if champion is None:
        pytest.fail("needs the @champion promoted by the serving_deploy test")
    conf = {
        "q_value": 1.0,
        "effect_threshold": 0.0,
        "lag_weeks": 0,  # against the training set, at no threshold: any difference drifts
        "policy": {"persist_windows": 1, "of_windows": 1, "cooldown_days": 0, "max_retrains": 9},
    }
    # the week must end after the champion's data_as_of (the newest snapshot when it was trained):
    # windows up to a retrain never cause another one
    newest = date.fromisoformat(partition_values(table_path("features.customer_features", s), "snapshot_date")[-1])
    week_end = newest + timedelta(days=1)
    dag = bag.get_dag("monitoring")
    decided = []
    for _ in range(2):  # the same week twice (dag.test replaces the run of that logical date: read it now)
        run = dag.test(
            logical_date=datetime.combine(week_end + timedelta(days=1), datetime.min.time(), timezone.utc),
            run_conf=conf,
        )
        assert str(run.state) == "success", _states(run)
        decided.append({ti.task_id: ti for ti in run.get_task_instances()}["decide"].xcom_pull(task_ids="decide"))
    first, second = decided
    assert first["retrain"] and first["trigger"] == "drift" and first["new"]
    # the rerun sees its own retrain in the history: the same windows cannot cause a second one
    assert not second["retrain"] and "already caused a retrain" in second["reason"]
    decisions = read_pandas(table_path("monitoring.retrain_decisions", s))
    assert list(decisions.loc[decisions["retrain"].astype(bool), "decision_id"]) == [first["decision_id"]]
    drift = read_pandas(table_path("monitoring.drift_reports", s))
    assert set(drift["window_end"].astype(str)) == {week_end.isoformat()}  # the week before the run's date, once
    assert "batch" in set(drift["source"]) and drift["drifted"].any()
    report = drift["report"].iloc[0]
    assert Path(report).exists()
    champion_run = client(s).get_model_version(s.model_name, champion).run_id
    assert [a.path for a in client(s).list_artifacts(champion_run, "monitoring/drift")] == [
        f"monitoring/drift/{Path(report).name}"
    ]

    from airflow.models.dag import DagModel

    with create_session() as session:  # as a user would: training unpaused, so the event queues a run
        session.query(DagModel).filter_by(dag_id="training").update({"is_paused": False})
    handoff = bag.get_dag("retrain_on_drift").test()
    assert str(handoff.state) == "success", _states(handoff)
    with create_session() as session:
        asset = session.query(AssetModel).filter_by(name="training.retrain_requested").one()
        events = session.query(AssetEvent).filter_by(asset_id=asset.id).all()
        queued = session.query(AssetDagRunQueue).filter_by(asset_id=asset.id, target_dag_id="training").count()
    assert [e.extra["decision_id"] for e in events] == [first["decision_id"]] and queued == 1

    # nothing is pending now: the sensor defers (no worker slot) and its trigger stays silent
    with pytest.raises(TaskDeferred):
        RetrainDecisionSensor(task_id="wait").execute({})
    trig = RetrainDecisionTrigger(
        table_path("monitoring.retrain_decisions", s), table_path("monitoring.retrain_handled", s), poke_interval=0.2
    )

    async def first_event():
        async for ev in trig.run():
            return ev

    with pytest.raises(TimeoutError):
        asyncio.run(asyncio.wait_for(first_event(), timeout=2))
