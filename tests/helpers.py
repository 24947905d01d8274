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
