"""Late labels: the churn outcome of each logged prediction, once its horizon has passed.

A prediction scored features that describe a customer up to `feature_timestamp` (the end of a
snapshot day; for a `rows` request without one, the prediction's own `event_time`). Its label
window starts there, as in training (`training.labels`: the window starts at the cutoff whose
features were used): churned = 1 when the customer makes no purchase in
[anchor, anchor + horizon), else 0. A label is derived only once the window is fully observed in
`silver.transactions` (anchor + horizon <= the end of its last day), and carries
`label_known_at = anchor + horizon`, so the monitoring of a window only uses labels that were
knowable by then. Predictions without a customer id cannot be labelled and are left out.

`derive_labels` MERGEs on `prediction_id` into `monitoring.labels`: running it twice, or after
more data arrived, never duplicates or changes a label; newly observable ones are added.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ml_platform.config import Settings, get_settings
from ml_platform.lake.delta_sql import is_delta, merge_into
from ml_platform.lake.paths import table_path

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LABELS_TABLE = "monitoring.labels"


def derive_labels(spark: SparkSession, horizon_days: int, settings: Settings | None = None) -> dict[str, Any]:
    from pyspark.sql import functions as F

    s = settings or get_settings()
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be positive, got {horizon_days}")
    log_path, silver_path, out_path = (
        table_path(n, s) for n in ("monitoring.prediction_log", "silver.transactions", LABELS_TABLE)
    )
    for name, path in (("monitoring.prediction_log", log_path), ("silver.transactions", silver_path)):
        if not is_delta(path):
            return {"labelled": 0, "skipped": f"{name} does not exist yet", "table": out_path}
    silver = spark.read.format("delta").load(silver_path).where(F.col("customer_id").isNotNull())
    last_day = silver.select(F.max(F.to_date("transaction_ts")).alias("d")).collect()[0]["d"]
    if last_day is None:
        return {"labelled": 0, "skipped": "silver.transactions is empty", "table": out_path}
    observed_end = F.to_timestamp(F.date_add(F.lit(last_day), 1))
    horizon = F.expr(f"INTERVAL {int(horizon_days)} DAYS")
    preds = (
        spark.read.format("delta")
        .load(log_path)
        .where(F.col("customer_id").isNotNull())
        .select(
            "prediction_id",
            "request_id",
            "customer_id",
            "model_name",
            "model_version",
            "variant",
            "returned",
            "churn_probability",
            "event_time",
            F.coalesce(F.to_timestamp("feature_timestamp"), F.col("event_time")).alias("anchor_ts"),
        )
        .withColumn("label_known_at", F.col("anchor_ts") + horizon)
        .where(F.col("label_known_at") <= observed_end)
    )
    exists = is_delta(out_path)
    if exists:  # only predictions not labelled yet
        preds = preds.join(
            spark.read.format("delta").load(out_path).select("prediction_id"), "prediction_id", "left_anti"
        )
    tx = silver.select(F.col("customer_id").alias("_c"), "transaction_ts")
    bought = (
        preds.join(
            tx,
            (tx["_c"] == preds["customer_id"])
            & (tx["transaction_ts"] >= preds["anchor_ts"])
            & (tx["transaction_ts"] < preds["label_known_at"]),
        )
        .select("prediction_id")
        .distinct()
        .withColumn("_bought", F.lit(1))
    )
    labels = (
        preds.join(bought, "prediction_id", "left")
        .withColumn("churned", F.when(F.col("_bought").isNull(), 1).otherwise(0).cast("int"))
        .withColumn("horizon_days", F.lit(int(horizon_days)))
        .drop("_bought")
    )
    n = labels.count()
    if n == 0:
        return {"labelled": 0, "observed_until": str(last_day), "table": out_path}
    if not exists:
        labels.write.format("delta").mode("append").save(out_path)
    else:
        merge_into(spark, out_path, labels, "t.prediction_id = s.prediction_id", update=False)
    return {"labelled": n, "observed_until": str(last_day), "horizon_days": horizon_days, "table": out_path}
