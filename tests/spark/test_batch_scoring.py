"""Batch scoring on local Spark and on the embedded engine with the shared trained model:
rerunning a date is identical, and either engine writes the same rows."""

from __future__ import annotations

import shutil

import pytest

pytestmark = pytest.mark.spark


@pytest.mark.parity("serving.batch.score_partition")
def test_batch_scoring_replaces_the_date_with_identical_rows(trained_model, spark, tmp_path):
    import mlflow
    from pyspark.sql import functions as F

    from ml_platform.config import Settings
    from ml_platform.engines import SparkEngine
    from ml_platform.errors import MlPlatformError
    from ml_platform.lake.reader import partition_values
    from ml_platform.serving.batch import resolve_snapshot, score_snapshot, scoring_engine

    ws = Settings(home=trained_model["workspace"])
    s = Settings(home=tmp_path, mlflow_tracking_uri=trained_model["registry"])
    shutil.copytree(f"{ws.lake_uri}/features", f"{s.lake_uri}/features")  # the workspace stays untouched
    version = str(
        mlflow.MlflowClient(trained_model["registry"]).get_model_version_by_alias("churn_model", "challenger").version
    )
    dates = partition_values(f"{s.lake_uri}/features/customer_features", "snapshot_date")
    newest, older = resolve_snapshot(None, s), resolve_snapshot(dates[0], s)
    assert newest.isoformat() == dates[-1]
    with pytest.raises(MlPlatformError, match="no feature snapshot for 1999-01-01"):
        resolve_snapshot("1999-01-01", s)

    on_spark = SparkEngine("test", spark)
    first = score_snapshot(on_spark, newest, version, s)
    table = f"{s.lake_uri}/gold/churn_scores"
    rows1 = sorted(spark.read.format("delta").load(table).collect())
    score_snapshot(on_spark, older, version, s)
    again = score_snapshot(on_spark, newest, version, s)
    df = spark.read.format("delta").load(table)
    rows2 = sorted(df.where(F.col("score_date") == F.lit(newest)).collect())
    assert (
        rows1 == rows2 and first == again and first["engine"]["engine"] == "spark"
    )  # the rerun replaced the partition with the same rows
    n = (
        spark.read.format("delta")
        .load(f"{s.lake_uri}/features/customer_features")
        .where(F.col("snapshot_date") == F.lit(newest))
        .count()
    )
    assert (
        first["rows"] == n == len(rows1)
        and df.count() == first["rows"] + df.where(F.col("score_date") == F.lit(older)).count()
    )
    assert set(df.columns) == {
        "customer_id",
        "churn_probability",
        "risk_band",
        "model_name",
        "model_version",
        "score_date",
    }
    # the bands follow the probabilities, and the scores are the pyfunc's
    for r in rows1[:50]:
        p = r["churn_probability"]
        assert 0 <= p <= 1 and r["risk_band"] == (
            "High" if p >= 0.75 else "Medium" if p >= 0.5 else "Low" if p >= 0.25 else "Very Low"
        )
    assert {r["model_version"] for r in rows1} == {version}

    # the embedded engine (auto's pick here: a local lake, no cluster) replaces the same partition in
    # the table Spark created with the same rows: the same pyfunc on the same casts of the same values
    assert scoring_engine(s).name == "embedded"
    embedded = score_snapshot(scoring_engine(s), newest, version, s)
    assert embedded["engine"]["engine"] == "embedded"
    assert {k: v for k, v in embedded.items() if k != "engine"} == {k: v for k, v in first.items() if k != "engine"}
    df = spark.read.format("delta").load(table)
    rows3 = sorted(df.where(F.col("score_date") == F.lit(newest)).collect())
    assert len(rows3) == len(rows1) and df.count() == len(rows1) + df.where(F.col("score_date") == F.lit(older)).count()
    for a, b in zip(rows1, rows3):
        assert (a["customer_id"], a["risk_band"], a["model_name"], a["model_version"], a["score_date"]) == (
            b["customer_id"],
            b["risk_band"],
            b["model_name"],
            b["model_version"],
            b["score_date"],
        )
        assert b["churn_probability"] == pytest.approx(a["churn_probability"], rel=0, abs=1e-12)
