"""Batch scoring: one feature snapshot -> `gold.churn_scores`, on Spark or the embedded engine.

The model is the same MLflow pyfunc that BentoML serves, pinned by version: the caller resolves
`@champion` once, so a retry scores with the same model even if the alias moved meanwhile. On
Spark it runs as a UDF (`mlflow.pyfunc.spark_udf`, `result_type="double"`, `env_manager="local"`);
on the embedded engine (`ML_PLATFORM_ENGINE_SCORING`, `engines.choice`) the snapshot's rows are read
from the feature table's files at its current version and scored in this process (`model.scoring.
rescore`), with the same column casts. Either way a rerun for the same date replaces that date's
partition with identical rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from ml_platform.config import Settings, get_settings
from ml_platform.engines import EmbeddedEngine, Engine, SparkEngine, choose_engine, operation
from ml_platform.errors import MlPlatformError
from ml_platform.lake.endpoints import use_mlflow
from ml_platform.lake.paths import table_path
from ml_platform.lake.reader import partition_values, read_newest_partition
from ml_platform.model.scoring import rescore, schema_types, spark_scorer
from ml_platform.serving.routing import BANDS, parse_bands, risk_band

SCORES_TABLE = "gold.churn_scores"
FEATURES_TABLE = "features.customer_features"


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


def scoring_engine(settings: Settings | None = None) -> Engine:
    """The engine of batch scoring (`engines.choose_engine`; its input is the feature table)."""
    s = settings or get_settings()
    return choose_engine("scoring", [table_path(FEATURES_TABLE, s)], s)


def _model_inputs(uri: str, tracking_uri: str) -> tuple[list[str], dict[str, str]]:
    import mlflow

    try:
        schema = mlflow.models.get_model_info(uri).signature.inputs
    except mlflow.exceptions.MlflowException as e:
        raise MlPlatformError(f"cannot load {uri} from {tracking_uri}: {e.message}") from None
    return schema.input_names(), schema_types(schema)


def score_snapshot(
    engine: Engine, snapshot_date: date, model_version: str, settings: Settings | None = None
) -> dict[str, Any]:
    """Score the feature snapshot of `snapshot_date` with version `model_version` of the model on
    `engine` (`scoring_engine()` chooses it) and replace that date's partition of
    `gold.churn_scores`. The result names the engine."""
    s = settings or get_settings()
    use_mlflow(s.mlflow_tracking_uri)
    uri = f"models:/{s.model_name}/{model_version}"
    names, types = _model_inputs(uri, s.mlflow_tracking_uri)
    counts, path = score_partition(engine, snapshot_date, ModelInput(str(model_version), uri, names, types), s)
    return {
        "score_date": snapshot_date.isoformat(),
        "model_version": str(model_version),
        "table": path,
        "rows": int(sum(counts.values())),
        "risk_bands": counts,
        "engine": engine.to_json(),
    }


@dataclass(frozen=True)
class ModelInput:
    """The model version that scores, its URI and its input columns with their types."""

    version: str
    uri: str
    names: list[str]
    types: dict[str, str]


@operation
def score_partition(engine: Engine, snapshot_date: date, model: ModelInput, s: Settings) -> tuple[dict[str, int], str]:
    """Score the snapshot of `snapshot_date` with `model` and replace that date's partition of
    `gold.churn_scores`: the rows per risk band written, and the table's path."""


@score_partition.register(SparkEngine)
def _score_spark(
    engine: SparkEngine, snapshot_date: date, model: ModelInput, s: Settings
) -> tuple[dict[str, int], str]:
    from pyspark.sql import functions as F

    spark = engine.spark
    model_version, uri, names, types = model.version, model.uri, model.names, model.types

    feats = (
        spark.read.format("delta")
        .load(table_path(FEATURES_TABLE, s))
        .where(F.col("snapshot_date") == F.lit(snapshot_date))
    )
    missing = [c for c in names if c not in feats.columns]
    if missing:
        raise MlPlatformError(f"{s.model_name} v{model_version} needs feature(s) {missing} that the snapshot lacks")
    if feats.isEmpty():
        raise MlPlatformError(f"the snapshot of {snapshot_date} has no rows to score")
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
    return {r["risk_band"]: r["count"] for r in written.groupBy("risk_band").count().collect()}, path


@score_partition.register(EmbeddedEngine)
def _score_embedded(
    engine: EmbeddedEngine, snapshot_date: date, model: ModelInput, s: Settings
) -> tuple[dict[str, int], str]:
    import mlflow.pyfunc
    import pyarrow as pa

    model_version, uri, names = model.version, model.uri, model.names

    from ml_platform.lake.delta_log import read_table, snapshot
    from ml_platform.lake.rows import replace_where

    snap = snapshot(table_path(FEATURES_TABLE, s))
    if snap is None:
        raise MlPlatformError(f"{FEATURES_TABLE} has no snapshot yet: run features_build first")
    have = {f["name"] for f in snap.schema_fields()}
    missing = [c for c in names if c not in have]
    if missing:
        raise MlPlatformError(f"{s.model_name} v{model_version} needs feature(s) {missing} that the snapshot lacks")
    rows = read_table(
        snap, where={"snapshot_date": {snapshot_date.isoformat()}}, columns=["customer_id", *names]
    ).to_pandas()
    if rows.empty:
        raise MlPlatformError(f"the snapshot of {snapshot_date} has no rows to score")
    probability = rescore(mlflow.pyfunc.load_model(uri), rows)
    bands = parse_bands(s.risk_bands)
    n = len(rows)
    out = pa.table(
        {
            "customer_id": pa.array(rows["customer_id"]),
            "churn_probability": pa.array(probability, pa.float64()),
            "risk_band": pa.array([risk_band(float(p), bands) for p in probability], pa.string()),
            "model_name": pa.array([s.model_name] * n, pa.string()),
            "model_version": pa.array([str(model_version)] * n, pa.string()),
            "score_date": pa.array([snapshot_date] * n, pa.date32()),
        }
    )
    path = table_path(SCORES_TABLE, s)
    # delta-rs writes it (the table needs no feature delta-rs lacks), as Spark's replaceWhere
    replace_where(path, out, f"score_date = '{snapshot_date.isoformat()}'", partition_by=["score_date"])
    written = read_table(snapshot(path), where={"score_date": {snapshot_date.isoformat()}}, columns=["risk_band"])
    counts: dict[str, int] = {}
    for band in written.column("risk_band").to_pylist():
        counts[band] = counts.get(band, 0) + 1
    return counts, path


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
