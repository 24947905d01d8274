"""Point-in-time join in Spark: union-and-window, no cross join, nothing collected to the driver.

For each entity row (key, event_ts) the result carries the latest feature row with the same key
and feature_ts <= event_ts (a row exactly at event_ts counts), or NULLs when there is none or
when that row is older than the TTL. Ties on feature_ts go to the row of the latest Delta commit
(row tracking's `row_commit_version`, then `row_id`).

Plan: entity rows (all their columns packed in a struct) and feature rows (their values packed
in a struct) are unioned, partitioned by key and sorted by time, feature rows before entity rows
at the same instant; `last(features, ignorenulls)` over the running window gives each entity
row its answer. One shuffle and one sort, no join: every entity row, duplicates and NULL keys
included, comes out exactly once with all its columns.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def check_lookup(
    entity_columns: list[str], entity_keys: list[str], feature_keys: list[str], event_ts: str, feature_names: list[str]
) -> None:
    """A `ValueError` naming what is wrong with a lookup: keys that do not pair up, entity columns
    missing, or features that would overwrite an entity column (both engines check the same)."""
    if len(entity_keys) != len(feature_keys):
        raise ValueError(f"lookup keys {entity_keys} do not match the table's primary keys {feature_keys}")
    missing = [c for c in [*entity_keys, event_ts] if c not in entity_columns]
    if missing:
        raise ValueError(f"entity frame lacks column(s) {missing}; it has {entity_columns}")
    clash = sorted(set(feature_names) & set(entity_columns))
    if clash:
        raise ValueError(f"entity frame already has column(s) {clash} that the lookup would add")


def pit_join(
    entity: DataFrame,
    features: DataFrame,
    *,
    entity_keys: list[str],
    feature_keys: list[str],
    event_ts: str,
    feature_ts: str,
    feature_names: list[str],
    ttl: timedelta | None = None,
    tiebreak: list[str] | None = None,
) -> DataFrame:
    """Entity rows with `feature_names` as of each row's `event_ts` (see module doc).

    `tiebreak`: columns of `features` ordering rows with equal keys and feature_ts (the largest
    wins); without it, ties are broken by the feature values themselves (deterministic, but not
    by commit order).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    check_lookup(list(entity.columns), entity_keys, feature_keys, event_ts, feature_names)

    keys = [f"_k{i}" for i in range(len(entity_keys))]
    tb_cols = tiebreak or []
    no_tb = [F.lit(None).cast("long").alias(f"_tb{i}") for i in range(len(tb_cols))]
    # entity rows carry all their columns in `_e`; feature rows carry their values in `_f`
    events = entity.select(
        *[F.col(c).alias(k) for c, k in zip(entity_keys, keys)],
        F.col(event_ts).cast("timestamp").alias("_ts"),
        F.lit(1).alias("_kind"),
        F.struct(*[F.col(c) for c in entity.columns]).alias("_e"),
        F.lit(None).alias("_f"),
        *no_tb,
    )
    rows = (
        features.where(F.col(feature_ts).isNotNull())
        .where(F.expr(" AND ".join(f"`{c}` IS NOT NULL" for c in feature_keys)))
        .select(
            *[F.col(c).alias(k) for c, k in zip(feature_keys, keys)],
            F.col(feature_ts).cast("timestamp").alias("_ts"),
            F.lit(0).alias("_kind"),
            F.lit(None).alias("_e"),
            F.struct(F.col(feature_ts).cast("timestamp").alias("_fts"), *feature_names).alias("_f"),
            *[F.col(c).cast("long").alias(f"_tb{i}") for i, c in enumerate(tb_cols)],
        )
    )
    # at equal time, feature rows sort before events (a row exactly at event_ts counts), and
    # among feature rows the tie-break (or the values) orders them: the last one wins
    order = [F.col("_ts").asc_nulls_first(), F.col("_kind")]
    order += [F.col(f"_tb{i}") for i in range(len(tb_cols))] if tb_cols else [F.col("_f")]
    w = Window.partitionBy(*keys).orderBy(*order).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    picked = (
        events.unionByName(rows).withColumn("_pick", F.last("_f", ignorenulls=True).over(w)).where(F.col("_kind") == 1)
    )
    stale = F.col("_pick._fts").isNull()
    if ttl is not None:
        stale = stale | (F.col("_ts") - F.col("_pick._fts") > F.expr(f"INTERVAL {int(ttl.total_seconds())} SECONDS"))
    return picked.select(
        *[F.col(f"_e.`{c}`").alias(c) for c in entity.columns],
        *[F.when(~stale, F.col(f"_pick.`{n}`")).alias(n) for n in feature_names],
    )
