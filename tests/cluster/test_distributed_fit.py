"""The distributed final fits on a Spark standalone cluster of two 1-core workers
(scripts/spark_cluster.sh): xgboost.spark reads its training set from Delta on the executors, and
TorchDistributor runs its ranks on the executors (`local_mode=False`)."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]
CUTOFFS = [date(2025, 1, 5) + timedelta(days=7 * i) for i in range(4)]


@pytest.fixture(scope="module")
def cluster_spark(tmp_path_factory):
    from ml_platform.config import Settings
    from ml_platform.lake import get_spark
    from tests.helpers import free_port_block

    home = tmp_path_factory.mktemp("cluster")
    env = dict(os.environ, ML_PLATFORM_HOME=str(home), ML_PLATFORM_SPARK_MASTER_PORT=str(free_port_block(2)))
    up = subprocess.run(
        ["bash", str(ROOT / "scripts" / "spark_cluster.sh"), "start"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert up.returncode == 0, up.stderr[-3000:]
    master = re.search(r"^export ML_PLATFORM_SPARK_MASTER=(\S+)$", up.stdout, re.M).group(1)
    spark = get_spark("distributed-fit", settings=Settings(home=home, spark_master=master))
    try:
        yield spark, home
    finally:
        spark.stop()
        subprocess.run(["bash", str(ROOT / "scripts" / "spark_cluster.sh"), "stop"], env=env, timeout=120)


def _rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    x[rng.random(n) < 0.3, 3] = np.nan  # NULL-heavy, as from the PIT join
    p = 1 / (1 + np.exp(-(1.5 * x[:, 0] - x[:, 1] - 0.5)))
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in range(n)],
            "recency_days": x[:, 0],
            "frequency_30d": x[:, 1],
            "monetary_30d": x[:, 2],
            "amount_trend": x[:, 3],
            "churned": (rng.random(n) < p).astype("int32"),
        }
    )


def test_xgboost_trains_from_the_delta_training_set_on_the_executors(cluster_spark):
    from sklearn.metrics import roc_auc_score

    from ml_platform.model.encoding import FeatureEncoder
    from ml_platform.training.distributed import delta_training_frame, fit_xgboost_spark

    spark, home = cluster_spark
    assert spark.sparkContext.master.startswith("spark://") and spark.sparkContext.defaultParallelism == 2
    frames = [_rows(1500, i).assign(cutoff_date=c, training_set_id="ts1") for i, c in enumerate(CUTOFFS)]
    table = pd.concat(frames, ignore_index=True)
    path = str(home / "lake" / "ml" / "training_sets")
    spark.createDataFrame(table).write.format("delta").partitionBy("training_set_id").save(path)
    names = ["recency_days", "frequency_30d", "monetary_30d", "amount_trend"]
    encoder = FeatureEncoder.fit(table[table.cutoff_date.isin(CUTOFFS[:2])], names)

    frame = delta_training_frame(spark, path, 0, "ts1", encoder, CUTOFFS[:2], [CUTOFFS[2]])
    assert frame.inputFiles() and all(
        f.startswith(f"file:{path}") for f in frame.inputFiles()
    )  # a scan, not rows from here
    params = {
        "max_depth": 3,
        "learning_rate": 0.1,
        "min_child_weight": 1.0,
        "subsample": 0.9,
        "colsample_bytree": 0.9,
        "reg_lambda": 1.0,
        "n_rounds": 80,
        "balanced": False,
    }
    fitted = fit_xgboost_spark(spark, params, frame, 1.0, num_workers=2, seed=0)
    test = table[table.cutoff_date == CUTOFFS[3]]
    p = fitted.predict_proba(encoder.transform(test))
    assert p.shape == (len(test),) and roc_auc_score(test["churned"], p) > 0.75


def test_torch_distributor_runs_its_ranks_on_the_executors(cluster_spark):
    from sklearn.metrics import roc_auc_score

    from ml_platform.training.distributed import fit_mlp_torch_distributor

    spark, _ = cluster_spark
    status = spark.sparkContext.statusTracker()
    known = set(status.getJobIdsForGroup())
    train, val = _rows(3000, 7), _rows(800, 8)
    cols = ["recency_days", "frequency_30d", "monetary_30d", "amount_trend"]
    params = {"lr": 3e-3, "weight_decay": 1e-5, "batch_size": 128, "max_epochs": 6, "patience": 3, "balanced": False}
    fitted = fit_mlp_torch_distributor(
        spark,
        params,
        train[cols].to_numpy(),
        train["churned"].to_numpy(float),
        val[cols].to_numpy(),
        val["churned"].to_numpy(float),
        num_processes=2,
    )
    p = fitted.predict_proba(val[cols].to_numpy())
    assert roc_auc_score(val["churned"], p) > 0.75
    # the ranks ran as a stage of two Spark tasks (local_mode=False); a standalone driver runs no
    # task itself, so they ran on the cluster's executors
    stages = [
        status.getStageInfo(sid)
        for job in set(status.getJobIdsForGroup()) - known
        for sid in status.getJobInfo(job).stageIds
    ]
    assert any(st and st.numTasks == 2 and st.numCompletedTasks == 2 for st in stages), stages


def test_a_spark_worker_lost_mid_job_the_write_completes_on_the_other_without_duplicates(cluster_spark):
    """SIGKILL of a worker's process group (the Worker JVM, its executor and Python workers) while a
    Delta write runs: Spark reruns the lost tasks on the other worker, the commit has each row once.
    Last in the module: the cluster has one worker after it."""
    import signal
    import threading
    import time

    def slow(batches):  # defined here: pickled by value (executors cannot import the tests package)
        import time

        for batch in batches:
            time.sleep(1.5)  # long enough for a worker to die while its tasks run
            yield batch

    spark, home = cluster_spark
    executors = lambda: spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1  # noqa: E731 (minus the driver)
    deadline = time.monotonic() + 60
    while executors() < 2:  # registered with the driver (at once when the tests above ran first)
        assert time.monotonic() < deadline, "the two executors never registered"
        time.sleep(1)
    worker = int((home / "run" / "spark-worker-2.pid").read_text())
    killed: list[float] = []

    def kill_mid_stage() -> None:  # once the write's tasks run on both executors
        tracker = spark.sparkContext.statusTracker()
        while not killed:
            stages = [tracker.getStageInfo(i) for i in tracker.getActiveStageIds()]
            if any(st and st.numActiveTasks >= 2 for st in stages):
                time.sleep(1.0)
                os.killpg(worker, signal.SIGKILL)
                killed.append(time.monotonic())
            time.sleep(0.2)

    killer = threading.Thread(target=kill_mid_stage, daemon=True)
    path = str(home / "lake" / "worker_loss")
    frame = spark.range(0, 40_000, numPartitions=12).selectExpr("id", "id % 97 AS k")
    killer.start()
    try:
        frame.mapInPandas(slow, schema=frame.schema).write.format("delta").save(path)
    finally:
        killed.append(0.0)  # stops the thread if the write ended first
    assert killed[0] > 0 and executors() == 1  # the worker died while its tasks ran
    got = spark.read.format("delta").load(path).selectExpr("count(*) n", "count(DISTINCT id) d", "sum(k) s").first()
    want = frame.selectExpr("count(*) n", "count(DISTINCT id) d", "sum(k) s").first()
    assert got == want and got["n"] == 40_000
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()
    assert len(history) == 1  # one commit: no half-written first attempt left behind
