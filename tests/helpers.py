"""Small builders shared by tests (hand-made data with known answers)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def txn(customer: str | None, tid: str | None, ts: datetime | None, amount: float | None,
        channel: str | None = "online", category: str | None = "grocery", quantity: int | None = 1) -> dict[str, Any]:
    return {"customer_id": customer, "transaction_id": tid, "transaction_ts": ts, "amount": amount,
            "quantity": quantity, "product_category": category, "channel": channel}


def land(home: Path, day: str, rows: list[dict[str, Any]], fmt: str = "parquet") -> Path:
    """Write rows as a landed transactions file for `day` under `home`."""
    import pandas as pd

    folder = home / "landing" / "transactions" / day
    folder.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows, columns=["customer_id", "transaction_id", "transaction_ts", "amount", "quantity",
                                     "product_category", "channel"])
    df["transaction_ts"] = pd.to_datetime(df["transaction_ts"], utc=True).astype("datetime64[us, UTC]")
    df["quantity"] = df["quantity"].astype("Int64")
    path = folder / f"transactions.{fmt}"
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path


def online_store_contract(store: Any) -> None:
    """What every online-store backend must do: typed values in order, missing keys, idempotent
    publishes, and readers that never see half of a publish."""
    import threading
    from datetime import date, timedelta

    from ml_platform.features.registry import FeatureSpec, FeatureTable

    table = FeatureTable(name="features.contract", primary_keys=("k",), timestamp_key="ts", ttl_seconds=86_400.0,
                         features=(FeatureSpec("x", "double"), FeatureSpec("n", "bigint"), FeatureSpec("s", "string"),
                                   FeatureSpec("d", "date"), FeatureSpec("t", "timestamp")))
    t0 = datetime(2025, 1, 2, tzinfo=timezone.utc)

    def rows(version: int, n: int = 2000):
        for i in range(n):
            yield f"c{i}", t0 + timedelta(days=version), [float(version), i, f"s{i}", date(2025, 1, version), None]

    assert store.current(table.name) is None
    assert store.get(table, ["c1"])[0].found is False  # never published: missing, not an error
    first = store.publish(table, rows(1), "v1")
    assert (first.rows, first.skipped) == (2000, False)
    assert store.publish(table, rows(1), "v1").skipped is True
    one, unknown, two = store.get(table, ["c1", "nope", "c2"])
    assert one.found and one.values == {"x": 1.0, "n": 1, "s": "s1", "d": date(2025, 1, 1), "t": None}
    assert list(one.values) == ["x", "n", "s", "d", "t"] and one.feature_timestamp == t0 + timedelta(days=1)
    assert not unknown.found and two.values["n"] == 2
    assert store.current(table.name)["max_feature_ts"].startswith("2025-01-03")

    seen: set[float] = set()
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        keys = [f"c{i}" for i in range(0, 2000, 20)]
        while True:
            last = stop.is_set()  # one more read after the last publish, however the threads are scheduled
            got = {r.values.get("x") for r in store.get(table, keys)}
            if len(got) != 1 or None in got:
                errors.append(f"mixed or missing values during a publish: {got}")
            seen.update(got)
            if last:
                return

    th = threading.Thread(target=reader)
    th.start()
    try:
        for v in (2, 3, 4):
            store.publish(table, rows(v), f"v{v}")
    finally:
        stop.set()
        th.join()
    assert not errors, errors[:3]
    assert store.get(table, ["c5"])[0].values["x"] == 4.0 and 4.0 in seen
