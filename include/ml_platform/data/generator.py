"""Synthetic customer transaction logs with a learnable churn signal.

Each customer has a base purchase rate; churners slow down over the 60 days before they stop.
Rates follow a yearly season and a weekend bump; age band shifts channel mix and rate a little
(so fairness checks have something to look at). A small share of dirty rows (negative amounts,
null ids, exact duplicates, timestamps in the future of the landing day) exercises the gate.
`drift_at` shifts amounts, channel mix and rates from that date on. Deterministic for a seed.

Files land the way a producer would drop them: one file per day under
`<out>/transactions/<YYYY-MM-DD>/`, plus `<out>/customers/<start>/customers.<ext>`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from ml_platform.contracts import CHANNELS

CATEGORIES = ("grocery", "electronics", "fashion", "home", "beauty", "sports", "toys", "books")
AGE_BANDS = ("18-25", "26-35", "36-50", "51-65", "65+")
REGIONS = ("north", "south", "east", "west")
GENDERS = ("female", "male", "other")


@dataclass(frozen=True)
class GeneratorSpec:
    customers: int
    start: date
    end: date  # inclusive
    seed: int = 42
    drift_at: date | None = None
    churn_share: float = 0.35
    dirty_share: float = 0.004

    def __post_init__(self) -> None:
        if self.customers < 1:
            raise ValueError("customers must be >= 1")
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")


def make_customers(spec: GeneratorSpec) -> pd.DataFrame:
    """One row per customer with demographics and the hidden behaviour parameters."""
    rng = np.random.default_rng([spec.seed, 1])
    n = spec.customers
    days = (spec.end - spec.start).days + 1
    age = rng.choice(len(AGE_BANDS), size=n, p=[0.18, 0.27, 0.28, 0.18, 0.09])
    signup_offset = rng.integers(-365, max(days - 30, 1), size=n)
    rate = rng.gamma(2.0, 0.06, size=n) * np.array([1.25, 1.1, 1.0, 0.9, 0.8])[age]
    churner = rng.random(n) < spec.churn_share * np.array([1.2, 1.0, 0.95, 0.9, 1.0])[age]
    churn_offset = np.where(churner, rng.integers(30, days + 120, size=n), 10**6)
    churn_offset = np.maximum(churn_offset, signup_offset + 45)
    return pd.DataFrame(
        {
            "customer_id": [f"C{spec.seed}-{i:07d}" for i in range(n)],
            "signup_date": [spec.start + timedelta(days=int(o)) for o in signup_offset],
            "region": np.array(REGIONS)[rng.integers(0, len(REGIONS), size=n)],
            "age_band": np.array(AGE_BANDS)[age],
            "gender": np.array(GENDERS)[rng.choice(3, size=n, p=[0.49, 0.49, 0.02])],
            "_age": age,
            "_rate": rate,
            "_signup": signup_offset,
            "_churn": churn_offset,
            "_spend": rng.lognormal(3.2, 0.5, size=n),
            "_cat": rng.integers(0, len(CATEGORIES), size=n),
        }
    )


def _daily_multiplier(spec: GeneratorSpec, day_offsets: np.ndarray) -> np.ndarray:
    dates = pd.to_datetime(spec.start) + pd.to_timedelta(day_offsets, unit="D")
    season = 1.0 + 0.25 * np.sin(2 * np.pi * (dates.dayofyear.to_numpy() - 80) / 365.25)
    weekend = np.where(dates.dayofweek.to_numpy() >= 5, 1.2, 1.0)
    return season * weekend


def generate_days(
    spec: GeneratorSpec, customers: pd.DataFrame, progress: Callable[[int, int], None] | None = None
) -> Iterator[tuple[date, pd.DataFrame]]:
    """Yield (landing date, that day's transaction file) in date order."""
    rng = np.random.default_rng([spec.seed, 2])
    days = (spec.end - spec.start).days + 1
    mult = _daily_multiplier(spec, np.arange(days))
    drift_offset = (spec.drift_at - spec.start).days if spec.drift_at else None
    rate, signup, churn = customers["_rate"].to_numpy(), customers["_signup"].to_numpy(), customers["_churn"].to_numpy()
    age, spend, fav = customers["_age"].to_numpy(), customers["_spend"].to_numpy(), customers["_cat"].to_numpy()
    ids = customers["customer_id"].to_numpy()
    channel_p = np.array(
        [[0.35, 0.55, 0.10], [0.40, 0.45, 0.15], [0.40, 0.30, 0.30], [0.35, 0.15, 0.50], [0.25, 0.05, 0.70]]
    )
    counter = 0
    for d in range(days):
        drifted = drift_offset is not None and d >= drift_offset
        # churners slow down linearly over the 60 days before their churn day, then stop
        to_churn = churn - d
        slow = np.clip(to_churn / 60.0, 0.15, 1.0)
        lam = rate * mult[d] * slow * (d >= signup) * (to_churn > 0) * (0.8 if drifted else 1.0)
        counts = rng.poisson(lam)
        who = np.repeat(np.arange(len(ids)), counts)
        n = len(who)
        day = spec.start + timedelta(days=d)
        if n == 0:
            if progress:
                progress(d + 1, days)
            continue
        secs = rng.integers(0, 86_400, size=n)
        ts = pd.Timestamp(day) + pd.to_timedelta(secs, unit="s")
        amount = np.round(spend[who] * rng.lognormal(0.0, 0.4, size=n) * (1.5 if drifted else 1.0), 2)
        cat = np.where(rng.random(n) < 0.6, fav[who], rng.integers(0, len(CATEGORIES), size=n))
        cp = channel_p[age[who]]
        if drifted:
            cp = cp * np.array([0.8, 1.6, 0.6])
            cp = cp / cp.sum(axis=1, keepdims=True)
        channel = (rng.random(n)[:, None] > np.cumsum(cp, axis=1)).sum(axis=1)
        df = pd.DataFrame(
            {
                "customer_id": ids[who].astype(object),
                "transaction_id": [f"T{spec.seed}-{counter + i:09d}" for i in range(n)],
                "transaction_ts": ts,
                "amount": amount,
                "quantity": 1 + rng.poisson(0.6, size=n),
                "product_category": np.array(CATEGORIES)[cat],
                "channel": np.array(CHANNELS)[np.minimum(channel, 2)],
            }
        )
        counter += n
        yield day, _add_dirty_rows(df, day, spec.dirty_share, rng)
        if progress:
            progress(d + 1, days)


def _add_dirty_rows(df: pd.DataFrame, day: date, share: float, rng: np.random.Generator) -> pd.DataFrame:
    """Corrupt a few rows the way real feeds do; the gate must catch every one of them."""
    n = len(df)
    k = int(rng.binomial(n, share)) if share > 0 else 0
    if k == 0:
        return df
    picks = rng.choice(n, size=min(4 * k, n), replace=True)
    kinds = rng.integers(0, 4, size=len(picks))
    df = df.copy()
    for idx, kind in zip(picks[:k], kinds[:k], strict=True):
        if kind == 0:
            df.loc[idx, "amount"] = -abs(df.loc[idx, "amount"]) - 1.0
        elif kind == 1:
            df.loc[idx, "customer_id"] = None
        elif kind == 2:
            df.loc[idx, "transaction_ts"] = pd.Timestamp(day) + pd.Timedelta(days=int(rng.integers(2, 30)))
    dups = [i for i, kind in zip(picks[:k], kinds[:k], strict=True) if kind == 3]
    if dups:
        df = pd.concat([df, df.iloc[dups]], ignore_index=True)
    return df


def write_landing(
    spec: GeneratorSpec, out: Path, fmt: str = "parquet", progress: Callable[[int, int], None] | None = None
) -> dict[str, int]:
    """Write the generated files under `out` (a `Path`, or a `UPath` of a Blob container) in the
    landing layout; returns counts."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"unknown format {fmt!r}: use parquet or csv")
    customers = make_customers(spec)
    cdir = out / "customers" / spec.start.isoformat()
    cdir.mkdir(parents=True, exist_ok=True)
    public = customers[[c for c in customers.columns if not c.startswith("_")]]
    _write(public, cdir / f"customers.{fmt}", fmt)
    rows = files = 0
    for day, df in generate_days(spec, customers, progress):
        ddir = out / "transactions" / day.isoformat()
        ddir.mkdir(parents=True, exist_ok=True)
        _write(df, ddir / f"transactions.{fmt}", fmt)
        rows += len(df)
        files += 1
    return {"customers": len(customers), "transactions": rows, "files": files}


def _write(df: pd.DataFrame, path: Path, fmt: str) -> None:
    if "transaction_ts" in df and fmt == "parquet":
        df = df.assign(transaction_ts=df["transaction_ts"].astype("datetime64[us]").dt.tz_localize("UTC"))
    if not type(path).__module__.startswith("pathlib"):  # a Blob (UPath): one upload, never half-written
        import io

        buf = io.BytesIO()
        df.to_parquet(buf, index=False) if fmt == "parquet" else buf.write(df.to_csv(index=False).encode())
        path.write_bytes(buf.getvalue())
        return
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "parquet":
        df.to_parquet(tmp, index=False)
    else:
        df.to_csv(tmp, index=False)
    tmp.replace(path)  # a reader never sees a half-written file
