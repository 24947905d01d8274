"""Feature functions on hand-made data with known answers (UTC day boundaries, windows)."""

from __future__ import annotations

from datetime import date

import pytest

from ml_platform.features.customer_features import FEATURE_COLUMNS, compute_customer_features
from tests.helpers import txn, utc

pytestmark = pytest.mark.spark
D = date(2025, 3, 31)  # end(D) = 2025-04-01 00:00 UTC


def _silver(spark, rows):
    import pandas as pd

    df = pd.DataFrame(rows)
    return spark.createDataFrame(
        df,
        "customer_id string, transaction_id string, transaction_ts timestamp, "
        "amount double, quantity int, product_category string, channel string",
    )


def _row(spark, rows, d=D):
    out = compute_customer_features(_silver(spark, rows), [d]).collect()
    return {r["customer_id"]: r.asDict() for r in out}


def test_purchase_at_end_of_day_counts_one_second_later_does_not(spark):
    rows = [
        txn("a", "1", utc(2025, 3, 31, 23, 59, 59), 10.0),
        txn("a", "2", utc(2025, 4, 1, 0, 0, 0), 1000.0),
        txn("b", "3", utc(2025, 4, 1, 0, 0, 0), 5.0),
    ]
    got = _row(spark, rows)
    assert set(got) == {"a"}  # b's only purchase is after end(D)
    assert got["a"]["frequency_lifetime"] == 1
    assert got["a"]["monetary_lifetime"] == 10.0
    assert got["a"]["recency_days"] == pytest.approx(1 / 86400)
    # the same purchase falls on the next snapshot
    nxt = _row(spark, rows, date(2025, 4, 1))
    assert nxt["a"]["frequency_lifetime"] == 2 and nxt["b"]["frequency_lifetime"] == 1


def test_window_boundaries(spark):
    # 30-day window of D covers [2025-03-02 00:00, 2025-04-01 00:00)
    rows = [
        txn("a", "1", utc(2025, 3, 2, 0, 0, 0), 1.0),  # first instant inside 30d
        txn("a", "2", utc(2025, 3, 1, 23, 59, 59), 2.0),  # last instant outside 30d, inside 90d
        txn("a", "3", utc(2024, 10, 3, 0, 0, 0), 4.0),  # inside 180d (starts 2024-10-03)
        txn("a", "4", utc(2024, 10, 2, 23, 59, 59), 8.0),
    ]  # outside 180d, lifetime only
    a = _row(spark, rows)["a"]
    assert (a["frequency_30d"], a["frequency_90d"], a["frequency_180d"], a["frequency_lifetime"]) == (1, 2, 3, 4)
    assert (a["monetary_30d"], a["monetary_90d"], a["monetary_180d"], a["monetary_lifetime"]) == (1.0, 3.0, 7.0, 15.0)
    assert a["amount_trend"] == pytest.approx((1.0 / 30) / (3.0 / 90))
    assert a["active_months"] == 2  # 2024-10 and 2025-03
    assert a["max_amount"] == 8.0 and a["avg_amount"] == pytest.approx(15.0 / 4)


def test_channels_categories_and_gaps(spark):
    rows = [
        txn("a", "1", utc(2025, 3, 1), 1.0, channel="online", category="x"),
        txn("a", "2", utc(2025, 3, 11), 1.0, channel="mobile", category="y"),
        txn("a", "3", utc(2025, 3, 21), 1.0, channel="online", category="x"),
        txn("a", "4", utc(2025, 3, 31), 1.0, channel=None, category=None),
    ]
    a = _row(spark, rows)["a"]
    assert (a["online_count"], a["mobile_count"], a["store_count"]) == (2, 1, 0)
    assert a["online_share"] == pytest.approx(0.5)
    assert a["distinct_categories"] == 2
    assert a["avg_days_between_purchases"] == pytest.approx(10.0)
    assert a["tenure_days"] == pytest.approx(31.0)
    assert list(a)[3:] == list(FEATURE_COLUMNS)
    assert a["feature_timestamp"] == utc(2025, 4, 1).replace(tzinfo=None)  # end(D), the PIT timestamp


def test_one_row_per_customer_per_snapshot_in_one_pass(spark):
    rows = [txn("a", "1", utc(2025, 3, 1), 1.0), txn("b", "2", utc(2025, 3, 20), 2.0)]
    out = compute_customer_features(_silver(spark, rows), [date(2025, 3, 10), date(2025, 3, 31)]).collect()
    keys = sorted((r["customer_id"], r["snapshot_date"].isoformat()) for r in out)
    assert keys == [("a", "2025-03-10"), ("a", "2025-03-31"), ("b", "2025-03-31")]
