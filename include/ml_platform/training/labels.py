"""Churn labels with the time semantics of docs/ARCHITECTURE.md ("Time").

For a cutoff c (a date standing for the instant end(c) = c + 1 day 00:00 UTC):
- the population is every customer with at least one purchase before end(c);
- churned = 1 when the customer makes no purchase in [end(c), end(c) + horizon), else 0.

A cutoff is accepted only when its label window is fully observed: end(c) + horizon must not
be later than the end of the last day present in silver.transactions. The entity frame is
(customer_id, event_timestamp = end(c), cutoff_date, churned); joined point-in-time with
`features.customer_features` (feature_timestamp = end(snapshot_date)) it picks snapshot c.

Split training data by cutoff (train on earlier cutoffs, validate and test on later ones),
never by random rows across cutoffs: the same customer appears at every cutoff, and rows of
one cutoff share the future that defines their labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from ml_platform.config import Settings, get_settings
from ml_platform.engines import EmbeddedEngine, Engine, SparkEngine, operation
from ml_platform.errors import MlPlatformError
from ml_platform.lake.paths import table_path

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from ml_platform.features.store import TrainingSet


class LabelWindowNotObserved(MlPlatformError):
    """A cutoff's label window reaches past the data."""


#: the dates a flag or a param may name: pandas' nanosecond timestamps end in 2262, and date
#: arithmetic near year 1 or 9999 overflows; nothing this platform models lies outside
DATE_MIN, DATE_MAX = date(1900, 1, 1), date(2199, 12, 31)


def parse_date(text: str) -> date:
    """A `YYYY-MM-DD` date within DATE_MIN..DATE_MAX, or an error naming the text."""
    try:
        d = date.fromisoformat(text)
    except ValueError:
        raise MlPlatformError(f"not a date (YYYY-MM-DD): {text!r}") from None
    if not DATE_MIN <= d <= DATE_MAX:
        raise MlPlatformError(f"{text!r} is outside {DATE_MIN}..{DATE_MAX}")
    return d


def parse_cutoffs(text: str) -> list[date]:
    """Dates from a comma-separated `YYYY-MM-DD,...` string (empty: none), or an error naming the bad one."""
    return [parse_date(part) for part in (p.strip() for p in text.split(",")) if part]


def check_cutoffs(cutoffs: Sequence[date], horizon_days: int, last_day: date | None) -> list[date]:
    """Sorted distinct cutoffs, or a clear error naming those whose window is not fully observed."""
    if horizon_days <= 0:
        raise MlPlatformError(f"horizon_days must be positive, got {horizon_days}")
    if not cutoffs:
        raise MlPlatformError("no cutoffs given")
    if last_day is None:
        raise LabelWindowNotObserved("silver.transactions is empty: no label can be observed")
    observed_end = last_day + timedelta(days=1)  # end(last_day), as a date boundary
    bad = [c for c in sorted(set(cutoffs)) if c + timedelta(days=1 + horizon_days) > observed_end]
    if bad:
        latest_ok = last_day - timedelta(days=horizon_days)
        raise LabelWindowNotObserved(
            f"cutoff(s) {', '.join(map(str, bad))}: the {horizon_days}-day label window is not fully observed "
            f"(data ends {observed_end} 00:00 UTC); the latest usable cutoff is {latest_ok}"
        )
    return sorted(set(cutoffs))


@operation
def build_churn_labels(
    engine: Engine,
    cutoffs: Sequence[date],
    horizon_days: int,
    *,
    silver: Any = None,
    settings: Settings | None = None,
) -> Any:
    """Entity frame (customer_id string, event_timestamp UTC, cutoff_date date, churned int) for
    `cutoffs`, from silver.transactions or from `silver` (a Spark frame on Spark; an Arrow table or
    Parquet files on the embedded engine): a Spark DataFrame on Spark, Arrow on the embedded engine."""


@build_churn_labels.register(SparkEngine)
def _labels_spark(
    engine: SparkEngine,
    cutoffs: Sequence[date],
    horizon_days: int,
    *,
    silver: DataFrame | None = None,
    settings: Settings | None = None,
) -> DataFrame:
    from pyspark.sql import functions as F

    if silver is None:
        silver = engine.spark.read.format("delta").load(table_path("silver.transactions", settings or get_settings()))
    spark = silver.sparkSession
    last = silver.select(F.max(F.to_date("transaction_ts")).alias("d")).collect()[0]["d"]
    cuts = check_cutoffs(cutoffs, horizon_days, last)
    c = spark.createDataFrame([(d,) for d in cuts], "cutoff_date date").withColumn(
        "event_timestamp", F.to_timestamp(F.date_add("cutoff_date", 1))
    )
    tx = silver.where(F.col("customer_id").isNotNull()).select("customer_id", "transaction_ts")
    horizon = F.expr(f"INTERVAL {int(horizon_days)} DAYS")
    joined = tx.join(F.broadcast(c), tx["transaction_ts"] < c["event_timestamp"] + horizon)
    per = joined.groupBy("customer_id", "cutoff_date", "event_timestamp").agg(
        F.max(F.when(F.col("transaction_ts") < F.col("event_timestamp"), 1).otherwise(0)).alias("_before"),
        F.max(F.when(F.col("transaction_ts") >= F.col("event_timestamp"), 1).otherwise(0)).alias("_after"),
    )
    return per.where(F.col("_before") == 1).select(
        "customer_id", "event_timestamp", "cutoff_date", (1 - F.col("_after")).cast("int").alias("churned")
    )


@build_churn_labels.register(EmbeddedEngine)
def _labels_embedded(
    engine: EmbeddedEngine,
    cutoffs: Sequence[date],
    horizon_days: int,
    *,
    silver: Any = None,
    settings: Settings | None = None,
) -> pa.Table:
    """DuckDB over silver's live files (or `silver`), no JVM."""
    import duckdb

    from ml_platform.features.pit_embedded import duck_source
    from ml_platform.lake.delta_log import live_files, readable_files, snapshot

    if silver is None:
        snap = snapshot(table_path("silver.transactions", settings or get_settings()))
        silver = readable_files(snap, live_files(snap)) if snap is not None else []
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        last = None
        if not isinstance(silver, list) or silver:
            duck_source(con, "silver_in", silver)
            last = con.sql("SELECT max(CAST(CAST(transaction_ts AS TIMESTAMPTZ) AS DATE)) FROM silver_in").fetchall()[
                0
            ][0]
        cuts = check_cutoffs(cutoffs, horizon_days, last)
        return con.sql(
            f"""
            WITH c AS (
                SELECT d AS cutoff_date, CAST(d + INTERVAL 1 DAY AS TIMESTAMPTZ) AS event_timestamp
                FROM (SELECT unnest($cuts::DATE[]) AS d)
            ),
            tx AS (SELECT customer_id, CAST(transaction_ts AS TIMESTAMPTZ) AS ts FROM silver_in
                   WHERE customer_id IS NOT NULL)
            SELECT tx.customer_id, c.event_timestamp, c.cutoff_date,
                   CAST(1 - max(CASE WHEN tx.ts >= c.event_timestamp THEN 1 ELSE 0 END) AS INTEGER) AS churned
            FROM tx JOIN c ON tx.ts < c.event_timestamp + INTERVAL {int(horizon_days)} DAY
            GROUP BY tx.customer_id, c.cutoff_date, c.event_timestamp
            HAVING max(CASE WHEN tx.ts < c.event_timestamp THEN 1 ELSE 0 END) = 1
            """,
            params={"cuts": [d.isoformat() for d in cuts]},
        ).to_arrow_table()
    finally:
        con.close()


def churn_training_set_engine(settings: Settings | None = None) -> Engine:
    """The engine of the churn training set (`FeatureStore.training_set_engine` over its lookups)."""
    from ml_platform.features import FeatureStore

    return FeatureStore(settings=settings).training_set_engine(_churn_lookups())


def _churn_lookups() -> list[Any]:
    from ml_platform.features import FeatureLookup

    return [FeatureLookup("features.customer_features")]


def churn_training_set(
    cutoffs: Sequence[date],
    horizon_days: int,
    training_set_id: str | None = None,
    *,
    settings: Settings | None = None,
    engine: Engine | None = None,
) -> TrainingSet:
    """Churn labels for `cutoffs` joined point-in-time with `features.customer_features` into the
    training set `training_set_id` (replaced when it exists), both on `engine` (default:
    `churn_training_set_engine()`)."""
    from ml_platform.features import FeatureStore

    s = settings or get_settings()
    store = FeatureStore(settings=s)
    lookups = _churn_lookups()
    engine = engine or store.training_set_engine(lookups)
    entity = build_churn_labels(engine, list(cutoffs), horizon_days, settings=s)
    return store.create_training_set(
        entity,
        lookups,
        timestamp_key="event_timestamp",
        label="churned",
        training_set_id=training_set_id,
        engine=engine,
    )


def per_cutoff_summary(df: Any, feature: str, label: str = "churned") -> dict[str, dict[str, float | int]]:
    """Rows, churn rate and rows without features (`feature` null: no snapshot in the TTL) per cutoff
    of a training set's rows (pandas)."""
    out: dict[str, dict[str, float | int]] = {}
    for cutoff, g in df.groupby("cutoff_date", sort=True):
        out[str(cutoff)] = {
            "rows": int(len(g)),
            "churn_rate": round(float(g[label].mean()), 4),
            "without_features": int(g[feature].isna().sum()),
        }
    return out
