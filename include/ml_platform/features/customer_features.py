"""`features.customer_features`: one row per customer per snapshot date.

Time semantics (docs/ARCHITECTURE.md, "Time"): snapshot date d stands for the instant
end(d) = d + 1 day 00:00 UTC; only silver rows with transaction_ts < end(d) are used.
Windows of N days cover [end(d) - N days, end(d)). No wall clock is read anywhere: the
dates come from the caller (the Airflow data interval or the CLI).

A range of snapshot dates costs one pass over silver (see `compute_customer_features`).

Both engines (Spark, and DuckDB in `compute_customer_features_embedded`) give the same bits:
amounts are summed as DECIMAL(38, 6), exactly and in any order (a float sum depends on the
order a plan adds in), and ratios are rounded to 6 decimals half-up from the shortest decimal
form of the double, which is what Spark's `round` does on a DOUBLE.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_platform.features.registry import FeatureSpec, FeatureTable

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

WINDOWS = (30, 90, 180)
#: the exact type amounts are summed in: a micro-unit of any currency, 32 integer digits
MONEY = "decimal(38,6)"

#: name -> description; the order is the table's column order after the keys.
FEATURE_COLUMNS: dict[str, str] = {
    "recency_days": "days from the last purchase to end(d)",
    "tenure_days": "days from the first purchase to end(d)",
    **{f"frequency_{w}d": f"purchases in the last {w} days" for w in WINDOWS},
    "frequency_lifetime": "purchases before end(d)",
    **{f"monetary_{w}d": f"amount spent in the last {w} days" for w in WINDOWS},
    "monetary_lifetime": "amount spent before end(d)",
    "avg_amount": "mean purchase amount, lifetime",
    "max_amount": "largest purchase amount, lifetime",
    "active_months": "distinct calendar months with a purchase, lifetime",
    "amount_trend": "daily spend over 30 days / daily spend over 90 days (NULL if nothing in 90 days)",
    "distinct_categories": "distinct product categories bought, lifetime",
    "online_count": "purchases through the online channel, lifetime",
    "mobile_count": "purchases through the mobile channel, lifetime",
    "store_count": "purchases in store, lifetime",
    "online_share": "share of purchases made through the online channel, lifetime",
    "avg_days_between_purchases": "(last - first purchase) / (purchases - 1), NULL below 2 purchases",
}


TABLE_NAME = "features.customer_features"
_LONG = ("frequency_", "active_months", "distinct_categories", "_count")


def feature_type(name: str) -> str:
    """Spark type of a customer feature column."""
    return "bigint" if any(k in name for k in _LONG) else "double"


def customer_features_table(cadence: str) -> FeatureTable:
    """The registry entry of `features.customer_features`.

    feature_timestamp = end(snapshot_date). TTL: one cadence period plus a day of grace, so a
    value is never served (or joined) more than one missed snapshot late.
    """
    period = 7 if cadence == "weekly" else 1
    return FeatureTable(
        name=TABLE_NAME,
        primary_keys=("customer_id",),
        timestamp_key="feature_timestamp",
        features=tuple(FeatureSpec(n, feature_type(n), d) for n, d in FEATURE_COLUMNS.items()),
        description="RFM, window, channel and category features per customer per snapshot date, "
        "computed only from transactions before end(snapshot_date).",
        owner="data-platform",
        ttl_seconds=float((period + 1) * 86_400),
        partition_by=("snapshot_date",),
    )


def snapshot_dates(start: date, end: date, cadence: str) -> list[date]:
    """Snapshot dates in [start, end]: every day, or every Saturday (end of an @weekly interval)."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    if cadence == "daily":
        return days
    if cadence == "weekly":
        return [d for d in days if d.weekday() == 5]
    raise ValueError(f"unknown cadence {cadence!r}: use daily or weekly")


def compute_customer_features(silver: DataFrame, dates: list[date]) -> DataFrame:
    """Features for every customer with a purchase before end(d), for each d in `dates`.

    Columns: customer_id, snapshot_date, feature_timestamp (= end(snapshot_date)), then
    FEATURE_COLUMNS in order.

    One pass: each transaction is paired with the snapshot dates it counts for (a broadcast
    join on `day <= d`; for one date the time filter alone does it), then one aggregation per
    (customer_id, snapshot_date) computes every column. Distinct counts use the size of a
    small per-customer set rather than COUNT(DISTINCT), which Spark plans as an expand.
    """
    from pyspark.sql import functions as F

    if not dates:
        raise ValueError("no snapshot dates to compute")
    spark = silver.sparkSession
    last = max(dates) + timedelta(days=1)  # end(max d): nothing at or after it is read
    rows = silver.where(F.col("transaction_ts") < F.to_timestamp(F.lit(last.isoformat()))).select(
        "customer_id",
        "transaction_ts",
        "amount",
        "product_category",
        "channel",
        F.to_date("transaction_ts").alias("day"),
    )
    if len(set(dates)) == 1:  # the filter above already is the pairing
        joined = rows.withColumn("snapshot_date", F.lit(dates[0]))
    else:
        snaps = spark.createDataFrame([(d,) for d in sorted(set(dates))], "snapshot_date date")
        # day <= d  <=>  the transaction is before end(d) (UTC days)
        joined = rows.join(F.broadcast(snaps), rows["day"] <= snaps["snapshot_date"])
    end_ts = F.to_timestamp(F.date_add("snapshot_date", 1))
    age = F.datediff(F.col("snapshot_date"), F.col("day"))  # 0 for a purchase on d itself
    money = F.col("amount").cast(MONEY)  # exact sums, whatever order the plan adds in

    agg = joined.groupBy("customer_id", "snapshot_date").agg(
        F.max("transaction_ts").alias("_last"),
        F.min("transaction_ts").alias("_first"),
        *[F.count(F.when(age < w, 1)).alias(f"frequency_{w}d") for w in WINDOWS],
        F.count(F.lit(1)).alias("frequency_lifetime"),
        *[F.sum(F.when(age < w, money).otherwise(F.lit(0).cast(MONEY))).alias(f"monetary_{w}d") for w in WINDOWS],
        F.sum(money).alias("monetary_lifetime"),
        F.max("amount").alias("max_amount"),
        F.size(F.collect_set(F.year("day") * 12 + F.month("day"))).alias("active_months"),
        F.size(F.collect_set("product_category")).alias("distinct_categories"),
        *[F.count(F.when(F.col("channel") == c, 1)).alias(f"{c}_count") for c in ("online", "mobile", "store")],
    )
    agg = agg.withColumns(
        {c: F.col(c).cast("double") for c in (*(f"monetary_{w}d" for w in WINDOWS), "monetary_lifetime")}
    )
    seconds_per_day = 86_400.0
    out = agg.select(
        "customer_id",
        "snapshot_date",
        end_ts.alias("feature_timestamp"),
        ((F.unix_timestamp(end_ts) - F.unix_timestamp("_last")) / seconds_per_day).alias("recency_days"),
        ((F.unix_timestamp(end_ts) - F.unix_timestamp("_first")) / seconds_per_day).alias("tenure_days"),
        *[F.col(f"frequency_{w}d").cast("long") for w in WINDOWS],
        F.col("frequency_lifetime").cast("long"),
        *[F.round(F.col(f"monetary_{w}d"), 6).alias(f"monetary_{w}d") for w in WINDOWS],
        F.round("monetary_lifetime", 6).alias("monetary_lifetime"),
        F.round(F.col("monetary_lifetime") / F.col("frequency_lifetime"), 6).alias("avg_amount"),
        "max_amount",
        F.col("active_months").cast("long"),
        F.when(
            F.col("monetary_90d") > 0, F.round((F.col("monetary_30d") / 30.0) / (F.col("monetary_90d") / 90.0), 6)
        ).alias("amount_trend"),
        F.col("distinct_categories").cast("long"),
        *[F.col(f"{c}_count").cast("long") for c in ("online", "mobile", "store")],
        F.round(F.col("online_count") / F.col("frequency_lifetime"), 6).alias("online_share"),
        F.when(
            F.col("frequency_lifetime") > 1,
            F.round(
                (F.unix_timestamp("_last") - F.unix_timestamp("_first"))
                / seconds_per_day
                / (F.col("frequency_lifetime") - 1),
                6,
            ),
        ).alias("avg_days_between_purchases"),
    )
    return out


def compute_customer_features_embedded(
    silver: pa.Table | Sequence[str | Path], dates: list[date], *, threads: int | None = None
) -> pa.Table:
    """`compute_customer_features` in an embedded engine (DuckDB over Arrow or Parquet files), no
    JVM: the same rows, columns, types and values, bit for bit (the module's docstring says how).
    `silver`: an Arrow table or local Parquet files with at least customer_id, transaction_ts,
    amount, product_category, channel."""
    import duckdb

    if not dates:
        raise ValueError("no snapshot dates to compute")
    con = duckdb.connect()
    try:
        return _features_query(con, silver, dates, threads)
    finally:
        con.close()


def _features_query(con: Any, silver: Any, dates: list[date], threads: int | None) -> pa.Table:
    from ml_platform.features.pit_embedded import duck_source

    columns = duck_source(con, "silver_in", silver)
    missing = [
        c for c in ("customer_id", "transaction_ts", "amount", "product_category", "channel") if c not in columns
    ]
    if missing:
        raise ValueError(f"silver rows lack column(s) {missing}")
    unix = "(epoch_us({}) // 1000000)"  # whole seconds, floored: Spark's unix_timestamp
    windows_agg = ", ".join(
        f"count(*) FILTER (WHERE age < {w}) AS frequency_{w}d, "
        f"CAST(coalesce(sum(money) FILTER (WHERE age < {w}), 0) AS DOUBLE) AS monetary_{w}d"
        for w in WINDOWS
    )
    r6 = _round6
    span = f"({unix.format('_last')} - {unix.format('_first')})"  # first to last purchase, seconds
    sql = f"""
        WITH rows AS (
            SELECT customer_id, CAST(transaction_ts AS TIMESTAMPTZ) AS ts, amount, {_money("amount")} AS money,
                   product_category, channel,
                   CAST(CAST(transaction_ts AS TIMESTAMPTZ) AS DATE) AS day
            FROM silver_in
            WHERE CAST(transaction_ts AS TIMESTAMPTZ) < CAST($last AS TIMESTAMPTZ)
        ),
        paired AS (
            SELECT r.*, s.snapshot_date, datediff('day', r.day, s.snapshot_date) AS age
            FROM rows r JOIN (SELECT unnest($dates::DATE[]) AS snapshot_date) s ON r.day <= s.snapshot_date
        ),
        a AS (
            SELECT customer_id, snapshot_date, max(ts) AS _last, min(ts) AS _first, {windows_agg},
                   count(*) AS frequency_lifetime, CAST(sum(money) AS DOUBLE) AS monetary_lifetime,
                   max(amount) AS max_amount,
                   count(DISTINCT year(day) * 12 + month(day)) AS active_months,
                   count(DISTINCT product_category) AS distinct_categories,
                   count(*) FILTER (WHERE channel = 'online') AS online_count,
                   count(*) FILTER (WHERE channel = 'mobile') AS mobile_count,
                   count(*) FILTER (WHERE channel = 'store') AS store_count
            FROM paired GROUP BY customer_id, snapshot_date
        ),
        e AS (SELECT *, CAST(snapshot_date + INTERVAL 1 DAY AS TIMESTAMPTZ) AS _end FROM a)
        SELECT customer_id, snapshot_date, _end AS feature_timestamp,
            ({unix.format("_end")} - {unix.format("_last")}) / 86400.0 AS recency_days,
            ({unix.format("_end")} - {unix.format("_first")}) / 86400.0 AS tenure_days,
            {", ".join(f"CAST(frequency_{w}d AS BIGINT) AS frequency_{w}d" for w in WINDOWS)},
            CAST(frequency_lifetime AS BIGINT) AS frequency_lifetime,
            {", ".join(f"{r6(f'monetary_{w}d')} AS monetary_{w}d" for w in WINDOWS)},
            {r6("monetary_lifetime")} AS monetary_lifetime,
            {r6("monetary_lifetime / frequency_lifetime")} AS avg_amount,
            max_amount,
            CAST(active_months AS BIGINT) AS active_months,
            CASE WHEN monetary_90d > 0 THEN {r6("(monetary_30d / 30.0) / (monetary_90d / 90.0)")} END AS amount_trend,
            CAST(distinct_categories AS BIGINT) AS distinct_categories,
            CAST(online_count AS BIGINT) AS online_count,
            CAST(mobile_count AS BIGINT) AS mobile_count,
            CAST(store_count AS BIGINT) AS store_count,
            {r6("online_count / frequency_lifetime")} AS online_share,
            CASE WHEN frequency_lifetime > 1 THEN
                {r6(f"{span} / 86400.0 / (frequency_lifetime - 1)")}
            END AS avg_days_between_purchases
        FROM e
    """
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    last = f"{max(dates) + timedelta(days=1)} 00:00:00+00"
    out = con.sql(sql, params={"last": last, "dates": sorted({d.isoformat() for d in dates})}).to_arrow_table()
    return out.cast(arrow_schema())


def _off_tie(expr: str) -> str:
    """DuckDB: true where x * 1e6 is at least 1e-3 away from a rounding tie and |x| < 1e6, so
    that binary scaling (error below 3e-4 there) and Spark's decimal rounding pick the same
    integer. It holds for all but about 0.2 % of arbitrary doubles and for every amount with 6
    decimals or fewer; the rest take the exact (slower) path through the decimal string."""
    scaled = f"({expr}) * 1e6"
    return f"(abs({expr}) < 1e6 AND abs(abs({scaled} - trunc({scaled})) - 0.5) > 1e-3)"


def _money(expr: str) -> str:
    """DuckDB: a DOUBLE as MONEY the way Spark casts it: half-up (away from zero) from the
    double's shortest decimal form."""
    return (
        f"(CASE WHEN {_off_tie(expr)} THEN CAST({expr} AS DECIMAL(38, 6)) "
        f"ELSE CAST(CAST({expr} AS VARCHAR) AS DECIMAL(38, 6)) END)"
    )


def _round6(expr: str) -> str:
    """DuckDB: Spark's `round(x, 6)` on a DOUBLE, half-up from the shortest decimal form of x.
    DuckDB's own `round` scales in binary, so a tie such as 7.5540625 can go the other way; off
    ties the two agree. From 1e15 up a double has no digit left to round, and NaN and infinities
    stay as they are."""
    exact = f"CAST(CAST(CAST({expr} AS VARCHAR) AS DECIMAL(38, 6)) AS DOUBLE)"
    return f"(CASE WHEN {_off_tie(expr)} THEN round({expr}, 6) WHEN abs({expr}) < 1e15 THEN {exact} ELSE {expr} END)"


def arrow_schema() -> pa.Schema:
    """The Arrow schema of `features.customer_features` rows, as Spark writes them."""
    import pyarrow as pa

    return pa.schema(
        [
            ("customer_id", pa.string()),
            ("snapshot_date", pa.date32()),
            ("feature_timestamp", pa.timestamp("us", tz="UTC")),
            *[(n, pa.int64() if feature_type(n) == "bigint" else pa.float64()) for n in FEATURE_COLUMNS],
        ]
    )
