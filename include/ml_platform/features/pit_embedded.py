"""Point-in-time join in an embedded engine (DuckDB over Arrow): the semantics of
`features.pit.pit_join` for one machine, without a JVM.

For each entity row (key, event_ts) the result carries the latest feature row with the same key
and feature_ts <= event_ts (a row exactly at event_ts counts), or NULLs when there is none, when
that row is older than the TTL, or when the entity row's key or time is NULL. Ties on feature_ts go
to the row with the largest `tiebreak` columns (the store passes the Delta commit order); without
them to the row whose feature values sort last. Every entity row comes out exactly once with all
its columns, duplicates and NULL keys included.

Plan: feature rows are first reduced to one per (key, feature_ts), the tie-break's winner; then
DuckDB's ASOF LEFT JOIN (equality on the keys, `event_ts >= feature_ts`) picks the latest of them
for each entity row. Timestamps are compared as UTC instants.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


def _q(name: str) -> str:
    """A DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def pit_join_embedded(
    entity: pa.Table,
    features: pa.Table,
    *,
    entity_keys: list[str],
    feature_keys: list[str],
    event_ts: str,
    feature_ts: str,
    feature_names: list[str],
    ttl: timedelta | None = None,
    tiebreak: list[str] | None = None,
    threads: int | None = None,
) -> pa.Table:
    """Entity rows with `feature_names` as of each row's `event_ts` (see module doc); the entity
    table's columns first, in their order, then the features. `threads`: DuckDB's (default: all)."""
    import duckdb

    if len(entity_keys) != len(feature_keys):
        raise ValueError(f"lookup keys {entity_keys} do not match the table's primary keys {feature_keys}")
    missing = [c for c in [*entity_keys, event_ts] if c not in entity.column_names]
    if missing:
        raise ValueError(f"entity frame lacks column(s) {missing}; it has {entity.column_names}")
    absent = [
        c for c in [*feature_keys, feature_ts, *feature_names, *(tiebreak or [])] if c not in features.column_names
    ]
    if absent:
        raise ValueError(f"feature frame lacks column(s) {absent}; it has {features.column_names}")
    clash = sorted(set(feature_names) & set(entity.column_names))
    if clash:
        raise ValueError(f"entity frame already has column(s) {clash} that the lookup would add")

    keys = [f"__pit_k{i}" for i in range(len(entity_keys))]
    # the row that sorts last wins, as in Spark's ascending window where NULL sorts first
    order = [f"{_q(c)} DESC NULLS LAST" for c in (tiebreak or feature_names)]
    stale = "p.__pit_fts IS NULL"
    if ttl is not None:
        stale += f" OR e.__pit_ts - p.__pit_fts > INTERVAL {int(ttl.total_seconds())} SECOND"
    sql = f"""
        WITH f AS (
            SELECT {", ".join(f"{_q(c)} AS {k}" for c, k in zip(feature_keys, keys))},
                   CAST({_q(feature_ts)} AS TIMESTAMP) AS __pit_fts,
                   {", ".join(_q(n) for n in feature_names)}
            FROM features_in
            WHERE {_q(feature_ts)} IS NOT NULL
              AND {" AND ".join(f"{_q(c)} IS NOT NULL" for c in feature_keys)}
            QUALIFY row_number() OVER (
                PARTITION BY {", ".join(_q(c) for c in feature_keys)}, CAST({_q(feature_ts)} AS TIMESTAMP)
                ORDER BY {", ".join(order)}) = 1
        ),
        e AS (
            SELECT *, {", ".join(f"{_q(c)} AS {k}" for c, k in zip(entity_keys, keys))},
                   CAST({_q(event_ts)} AS TIMESTAMP) AS __pit_ts
            FROM entity_in
        )
        SELECT {", ".join(f"e.{_q(c)}" for c in entity.column_names)},
               {", ".join(f"CASE WHEN {stale} THEN NULL ELSE p.{_q(n)} END AS {_q(n)}" for n in feature_names)}
        FROM e ASOF LEFT JOIN f AS p
          ON {" AND ".join(f"e.{k} = p.{k}" for k in keys)} AND e.__pit_ts >= p.__pit_fts
    """
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        con.register("entity_in", entity)
        con.register("features_in", features)
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()
