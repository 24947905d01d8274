"""The customer feature snapshot in the embedded engine (DuckDB) against the Spark job, every value
(issue 22): generator data over UTC day and month boundaries, several snapshot dates, sub-second
timestamps, a customer with one purchase."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from ml_platform.features.customer_features import (
    FEATURE_COLUMNS,
    compute_customer_features,
    compute_customer_features_embedded,
    feature_type,
)

pytestmark = pytest.mark.spark


def _silver():
    import pandas as pd

    from ml_platform.data.generator import GeneratorSpec, generate_days, make_customers

    spec = GeneratorSpec(customers=120, start=date(2024, 11, 1), end=date(2025, 2, 28), seed=3, dirty_share=0.0)
    df = pd.concat([d for _, d in generate_days(spec, make_customers(spec))], ignore_index=True)
    df["transaction_ts"] = pd.to_datetime(df["transaction_ts"], utc=True).astype("datetime64[us, UTC]")
    df.loc[df.index[:50], "transaction_ts"] += pd.Timedelta(microseconds=654_321)  # sub-second parts
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
        assert (np.isnan(a) == np.isnan(b)).all(), col
        if feature_type(col) == "bigint" or col in ("recency_days", "tenure_days", "max_amount"):
            assert np.array_equal(np.nan_to_num(a), np.nan_to_num(b)), col  # counts, times, a max: exact
        else:  # rounded to 6 decimals after a sum, whose order differs between engines
            assert np.nanmax(np.abs(a - b), initial=0.0) <= 1.0000001e-6, col


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
