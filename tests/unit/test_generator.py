from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from ml_platform.data.generator import GeneratorSpec, generate_days, make_customers, write_landing

pytestmark = pytest.mark.unit
SPEC = GeneratorSpec(customers=1500, start=date(2025, 1, 1), end=date(2025, 6, 30), seed=7)


def _all(spec: GeneratorSpec) -> pd.DataFrame:
    customers = make_customers(spec)
    return pd.concat([df.assign(landed=d) for d, df in generate_days(spec, customers)], ignore_index=True)


def test_same_seed_same_data_other_seed_other_data():
    small = GeneratorSpec(customers=200, start=date(2025, 1, 1), end=date(2025, 1, 20), seed=3)
    a, b = _all(small), _all(small)
    pd.testing.assert_frame_equal(a, b)
    c = _all(GeneratorSpec(customers=200, start=date(2025, 1, 1), end=date(2025, 1, 20), seed=4))
    assert not a["amount"].equals(c["amount"])


def test_dirty_rows_of_every_kind_are_present():
    df = _all(SPEC)
    assert (df["amount"] < 0).sum() > 0
    assert df["customer_id"].isna().sum() > 0
    assert df.duplicated().sum() > 0
    future = df["transaction_ts"] >= pd.to_datetime(df["landed"]) + pd.Timedelta(days=1)
    assert future.sum() > 0
    assert (df["amount"] < 0).mean() < 0.01  # dirty, not garbage


def test_churners_slow_down_before_they_stop():
    customers = make_customers(SPEC)
    df = _all(SPEC).dropna(subset=["customer_id"])
    df["day"] = (pd.to_datetime(df["transaction_ts"]).dt.tz_localize(None) - pd.Timestamp(SPEC.start)).dt.days
    churn = customers.set_index("customer_id")["_churn"]
    df["to_churn"] = churn.reindex(df["customer_id"]).to_numpy() - df["day"]
    churners = customers[(customers["_churn"] > 90) & (customers["_churn"] < 170)]["customer_id"]
    sub = df[df["customer_id"].isin(churners)]
    late = (sub["to_churn"].between(0, 29)).sum() / 30
    early = (sub["to_churn"].between(60, 89)).sum() / 30
    assert late < 0.7 * early
    assert (sub["to_churn"] <= 0).sum() == 0  # nobody buys after churning


def test_drift_shifts_amounts_after_the_date():
    spec = GeneratorSpec(
        customers=800, start=date(2025, 1, 1), end=date(2025, 2, 28), seed=5, drift_at=date(2025, 2, 1)
    )
    df = _all(spec)
    df = df[df["amount"] > 0]
    before = df[df["landed"] < date(2025, 2, 1)]["amount"].median()
    after = df[df["landed"] >= date(2025, 2, 1)]["amount"].median()
    assert after > 1.3 * before


def test_write_landing_layout(tmp_path):
    counts = write_landing(
        GeneratorSpec(customers=50, start=date(2025, 1, 1), end=date(2025, 1, 3), seed=1), tmp_path, "csv"
    )
    assert counts["files"] == len(list((tmp_path / "transactions").glob("*/transactions.csv")))
    assert (tmp_path / "customers" / "2025-01-01" / "customers.csv").is_file()
    assert not list(tmp_path.rglob("*.tmp"))
    assert np.isclose(
        counts["transactions"], sum(len(pd.read_csv(p)) for p in (tmp_path / "transactions").glob("*/*.csv"))
    )
