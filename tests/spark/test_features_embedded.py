"""The customer feature snapshot in the embedded engine (DuckDB) against the Spark job, every value
bit for bit (issue 22): generator data over UTC day and month boundaries, several snapshot dates,
sub-second timestamps, a customer with one purchase, and customers whose ratios fall exactly
half-way between two 6-decimal values (where DuckDB's own `round` and Spark's disagree)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from ml_platform.features.customer_features import (
    FEATURE_COLUMNS,
    compute_customer_features,
    compute_customer_features_embedded,
)

pytestmark = pytest.mark.spark


def _silver():
    import pandas as pd

    from ml_platform.data.generator import GeneratorSpec, generate_days, make_customers

    spec = GeneratorSpec(customers=120, start=date(2024, 11, 1), end=date(2025, 2, 28), seed=3, dirty_share=0.0)
    df = pd.concat([d for _, d in generate_days(spec, make_customers(spec))], ignore_index=True)
    df["transaction_ts"] = pd.to_datetime(df["transaction_ts"], utc=True).astype("datetime64[us, UTC]")
    df.loc[df.index[:50], "transaction_ts"] += pd.Timedelta(microseconds=654_321)  # sub-second parts
    t0 = pd.Timestamp("2025-01-03 10:00:00", tz="UTC")
    ties = pd.DataFrame(
        [  # avg_days_between_purchases = 652671 s / 86400 / 1 = 7.5540625
            ("TIE-GAP", t0, 12.5, "books", "online"),
            ("TIE-GAP", t0 + pd.Timedelta(seconds=652_671), 3.25, "books", "store"),
        ]
        # avg_amount = 32.01 / 32 = 1.0003125; amounts whose float sum depends on the order
        + [("TIE-AVG", t0 + pd.Timedelta(hours=i), 1.01 if i == 7 else 1.0, "toys", "mobile") for i in range(32)]
        + [("SUM-ORDER", t0 + pd.Timedelta(hours=i), a, "toys", "online") for i, a in enumerate([0.1, 0.2, 0.3] * 11)],
        columns=["customer_id", "transaction_ts", "amount", "product_category", "channel"],
    )
    ties["transaction_ts"] = ties["transaction_ts"].astype("datetime64[us, UTC]")
    df = pd.concat([df, ties], ignore_index=True)
    return df[["customer_id", "transaction_ts", "amount", "product_category", "channel"]]


def test_the_embedded_snapshot_equals_the_spark_one_value_by_value(spark):
    import pyarrow as pa

    silver = _silver()
    dates = [date(2024, 12, 31), date(2025, 1, 31), date(2025, 2, 1), date(2025, 2, 28)]
    s = compute_customer_features(spark.createDataFrame(silver), dates).toPandas()
    e = compute_customer_features_embedded(pa.Table.from_pandas(silver, preserve_index=False), dates)
    assert e.column_names == ["customer_id", "snapshot_date", "feature_timestamp", *FEATURE_COLUMNS]
    e = e.to_pandas()
    key = ["snapshot_date", "customer_id"]
    s = s.sort_values(key).reset_index(drop=True)
    e = e.sort_values(key).reset_index(drop=True)
    assert len(e) == len(s) > 300 and (e[key].to_numpy() == s[key].to_numpy()).all()
    assert (pd_utc(e["feature_timestamp"]) == pd_utc(s["feature_timestamp"])).all()
    assert (e["feature_timestamp"] == pd_utc(e["snapshot_date"]) + timedelta(days=1)).all()
    for col in FEATURE_COLUMNS:
        a, b = e[col].to_numpy(dtype="float64"), s[col].to_numpy(dtype="float64")
        assert np.array_equal(a, b, equal_nan=True), (col, a[a != b][:5], b[a != b][:5])
    by_customer = e.set_index("customer_id")
    assert set(by_customer.loc["TIE-GAP", "avg_days_between_purchases"]) == {7.554063}  # half-up, as Spark rounds
    assert set(by_customer.loc["TIE-AVG", "avg_amount"]) == {1.000313}
    assert set(by_customer.loc["SUM-ORDER", "monetary_lifetime"]) == {6.6}  # the exact sum


def pd_utc(col):
    import pandas as pd

    return pd.to_datetime(col).dt.tz_localize("UTC") if pd.to_datetime(col).dt.tz is None else pd.to_datetime(col)


def test_the_embedded_snapshot_names_missing_columns_and_empty_dates():
    import pyarrow as pa

    with pytest.raises(ValueError, match=r"lack column\(s\) \['channel'\]"):
        compute_customer_features_embedded(
            pa.table({"customer_id": ["a"], "transaction_ts": [1], "amount": [1.0], "product_category": ["x"]}),
            [date(2025, 1, 1)],
        )
    with pytest.raises(ValueError, match="no snapshot dates"):
        compute_customer_features_embedded(pa.table({"customer_id": ["a"]}), [])


@pytest.mark.parity("pipelines.data_plane.write_snapshots")
def test_both_engines_write_the_same_snapshot_table_and_auto_picks_the_embedded_one(spark, settings):
    """The data plane's feature job with each engine over one silver table: the embedded engine
    replaces the partitions Spark wrote with the same values, Spark reads its commit, and `auto`
    picks it on a local lake without a cluster (the choice and its reason are in the result)."""
    from ml_platform.engines import SparkEngine
    from ml_platform.lake.delta_log import snapshot
    from ml_platform.lake.paths import table_path
    from ml_platform.pipelines import data_plane as plane

    silver = _silver()
    silver["txn_date"] = silver["transaction_ts"].dt.date
    silver["transaction_id"] = [f"t{i}" for i in range(len(silver))]
    silver_path = table_path("silver.transactions", settings)
    spark.createDataFrame(silver).write.format("delta").partitionBy("txn_date").save(silver_path)
    dates = [date(2024, 12, 31), date(2025, 1, 31), date(2025, 2, 28)]
    features = table_path("features.customer_features", settings)

    by_spark = plane.build_feature_snapshots(SparkEngine("test", spark), dates, "daily", settings)
    spark_rows = spark.read.format("delta").load(features).toPandas()
    auto = plane.build_feature_snapshots(plane.features_engine(settings), dates, "daily", settings)
    assert by_spark["engine"]["engine"] == "spark"
    assert auto["engine"]["engine"] == "embedded" and "local lake" in auto["engine"]["reason"]
    assert auto["rows"] == by_spark["rows"] == len(spark_rows) > 100
    assert snapshot(features).version == 1 and len(snapshot(features).files) == len(dates)  # replaced, not added
    embedded_rows = spark.read.format("delta").load(features).toPandas()
    key = ["snapshot_date", "customer_id"]
    a = embedded_rows.sort_values(key).reset_index(drop=True)
    b = spark_rows.sort_values(key).reset_index(drop=True)
    assert list(a.columns) == list(b.columns) and (a[key].to_numpy() == b[key].to_numpy()).all()
    assert (a["feature_timestamp"] == b["feature_timestamp"]).all()
    for col in FEATURE_COLUMNS:
        x, y = a[col].to_numpy(dtype="float64"), b[col].to_numpy(dtype="float64")
        assert np.array_equal(x, y, equal_nan=True), col


@pytest.mark.parity("training.labels.build_churn_labels")
def test_the_embedded_churn_labels_equal_the_spark_ones(spark):
    """Labels for several cutoffs over generated silver: the same rows and types from both engines."""
    import pyarrow as pa

    from ml_platform.engines import EmbeddedEngine, SparkEngine
    from ml_platform.training.labels import build_churn_labels

    silver = _silver()
    cutoffs = [date(2024, 11, 30), date(2024, 12, 31), date(2025, 1, 15)]
    s = build_churn_labels(SparkEngine(spark=spark), cutoffs, 30, silver=spark.createDataFrame(silver)).toArrow()
    e = build_churn_labels(
        EmbeddedEngine("test"), cutoffs, 30, silver=pa.Table.from_pandas(silver, preserve_index=False)
    )
    assert e.schema == s.schema
    order = [("cutoff_date", "ascending"), ("customer_id", "ascending")]
    assert e.num_rows == s.num_rows > 200 and e.sort_by(order).equals(s.sort_by(order))
    assert 0 < pa.compute.sum(e.column("churned")).as_py() < e.num_rows
