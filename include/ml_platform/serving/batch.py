"""Batch scoring: one feature snapshot -> `gold.churn_scores`, with the champion as a Spark UDF.

The model is the same MLflow pyfunc that BentoML serves (`mlflow.pyfunc.spark_udf`,
`result_type="double"`, `env_manager="local"`), pinned by version: the caller resolves
`@champion` once, so a retry scores with the same model even if the alias moved meanwhile.
A rerun for the same date replaces that date's partition (`replaceWhere`) with identical rows.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ml_platform.config import Settings, get_settings
from ml_platform.errors import MlPlatformError
from ml_platform.lake.endpoints import use_mlflow
from ml_platform.lake.paths import table_path
from ml_platform.lake.reader import partition_values, read_newest_partition
from ml_platform.model.scoring import schema_types, spark_scorer
from ml_platform.serving.routing import BANDS, parse_bands

SCORES_TABLE = "gold.churn_scores"


def resolve_snapshot(requested: str | None, settings: Settings | None = None) -> date:
    """The snapshot to score: the requested date (it must exist) or the newest one."""
    dates = partition_values(table_path("features.customer_features", settings or get_settings()), "snapshot_date")
    if not dates:
        raise MlPlatformError("features.customer_features has no snapshot yet: run features_build first")
    if not requested:
        return date.fromisoformat(dates[-1])
    try:
        d = date.fromisoformat(requested)
    except ValueError:
        raise MlPlatformError(f"snapshot_date must be YYYY-MM-DD, got {requested!r}") from None
    if d.isoformat() not in dates:
        raise MlPlatformError(f"no feature snapshot for {d} (newest: {dates[-1]})")
    return d


def score_snapshot(
    spark: Any, snapshot_date: date, model_version: str, settings: Settings | None = None
) -> dict[str, Any]:
    import mlflow
    from pyspark.sql import functions as F

    s = settings or get_settings()
    use_mlflow(s.mlflow_tracking_uri)
    uri = f"models:/{s.model_name}/{model_version}"
    try:
        schema = mlflow.models.get_model_info(uri).signature.inputs
    except mlflow.exceptions.MlflowException as e:
        raise MlPlatformError(f"cannot load {uri} from {s.mlflow_tracking_uri}: {e.message}") from None
    names = schema.input_names()
    types = schema_types(schema)
    feats = (
        spark.read.format("delta")
        .load(table_path("features.customer_features", s))
        .where(F.col("snapshot_date") == F.lit(snapshot_date))
    )
    missing = [c for c in names if c not in feats.columns]
    if missing:
        raise MlPlatformError(f"{s.model_name} v{model_version} needs feature(s) {missing} that the snapshot lacks")
    cols = [F.col(c).cast("double" if "double" in types[c] else "string").alias(c) for c in names]
    scored = feats.select("customer_id", *cols).select(
        "customer_id", spark_scorer(spark, uri)(*names).alias("churn_probability")
    )
    hi, mid, lo = parse_bands(s.risk_bands)
    p = F.col("churn_probability")
    band = F.when(p >= hi, BANDS[0]).when(p >= mid, BANDS[1]).when(p >= lo, BANDS[2]).otherwise("Very Low")
    out = scored.select(
        "customer_id",
        "churn_probability",
        band.alias("risk_band"),
        F.lit(s.model_name).alias("model_name"),
        F.lit(str(model_version)).alias("model_version"),
        F.lit(snapshot_date).alias("score_date"),
    )
    path = table_path(SCORES_TABLE, s)
    (
        out.write.format("delta")
        .mode("overwrite")
        .partitionBy("score_date")
        .option("replaceWhere", f"score_date = '{snapshot_date.isoformat()}'")
        .save(path)
    )
    written = spark.read.format("delta").load(path).where(F.col("score_date") == F.lit(snapshot_date))
    counts = {r["risk_band"]: r["count"] for r in written.groupBy("risk_band").count().collect()}
    if not counts:
        raise MlPlatformError(f"the snapshot of {snapshot_date} has no rows to score")
    return {
        "score_date": snapshot_date.isoformat(),
        "model_version": str(model_version),
        "table": path,
        "rows": int(sum(counts.values())),
        "risk_bands": counts,
    }


def latest_scores_summary(settings: Settings | None = None) -> dict[str, Any]:
    """The newest score date of `gold.churn_scores`: customers scored, by which version, risk bands."""
    newest = read_newest_partition(table_path("gold.churn_scores", settings or get_settings()), "score_date")
    if newest is None:
        raise MlPlatformError("gold.churn_scores has no scores yet: run the batch_scoring DAG")
    score_date, last = newest
    return {
        "score_date": score_date,
        "customers": len(last),
        "model_version": str(last["model_version"].iloc[0]),
        "risk_bands": {str(k): int(v) for k, v in last["risk_band"].value_counts().items()},
    }
