"""No future data reaches training features: scrambling every silver row after the last cutoff
leaves the point-in-time training features bit-identical."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ml_platform.engines import SparkEngine

pytestmark = pytest.mark.spark


def test_scrambling_silver_after_the_last_cutoff_leaves_training_features_identical(spark, settings):
    from pyspark.sql import functions as F

    from ml_platform.data.generator import GeneratorSpec, write_landing
    from ml_platform.features import FeatureLookup, FeatureStore
    from ml_platform.lake.paths import landing_dir, table_path
    from ml_platform.pipelines import data_plane as plane
    from ml_platform.training.labels import build_churn_labels

    s = settings
    write_landing(GeneratorSpec(customers=300, start=date(2025, 1, 1), end=date(2025, 2, 28), seed=3), landing_dir(s))
    plane.ingest_landed(SparkEngine(spark=spark), date(2025, 1, 1), date(2025, 3, 1), s)
    plane.validate_to_silver(SparkEngine(spark=spark), date(2025, 1, 1), date(2025, 3, 1), s)
    cutoffs = [date(2025, 1, 19), date(2025, 1, 26), date(2025, 2, 2)]
    entity = build_churn_labels(SparkEngine(spark=spark), cutoffs, 14, settings=s).toPandas()
    store = FeatureStore(settings=s, spark=spark)

    def training_features():
        plane.build_feature_snapshots(SparkEngine(spark=spark), cutoffs, settings=s)
        ts = store.create_training_set(
            entity, [FeatureLookup("features.customer_features")], timestamp_key="event_timestamp", label="churned"
        )
        return ts.load_df().select("customer_id", "cutoff_date", *ts.feature_names).persist()

    before = training_features()
    silver_path = table_path("silver.transactions", s)
    silver = spark.read.format("delta").load(silver_path)
    last = cutoffs[-1]
    after = silver.where(F.col("txn_date") > F.lit(last))
    scrambled = (
        after.where(F.xxhash64("transaction_id") % 2 == 0)  # drop about half of the future rows
        .withColumn("amount", F.col("amount") * 7 + 3)
        .withColumn("channel", F.lit("store"))
        .withColumn("transaction_ts", F.col("transaction_ts") - F.expr("INTERVAL 1 HOUR"))
    )
    scrambled = scrambled.where(F.to_date("transaction_ts") > F.lit(last)).persist()
    n_after, n_scrambled = after.count(), scrambled.count()
    (scrambled.write.format("delta").mode("overwrite").option("replaceWhere", f"txn_date > '{last}'").save(silver_path))
    assert n_after > 100 and 0 < n_scrambled < n_after  # the future really changed
    assert spark.read.format("delta").load(silver_path).where(F.col("txn_date") > F.lit(last)).count() == n_scrambled

    again = training_features()
    assert before.count() == again.count() > 0
    assert before.exceptAll(again).count() == 0 and again.exceptAll(before).count() == 0
    # and the features are not all NULL (the comparison would be empty-handed otherwise)
    assert before.where(F.col("monetary_90d").isNotNull()).count() > 0
    assert max(entity["event_timestamp"]).date() == last + timedelta(days=1)
