"""Point-in-time join in an embedded engine (DuckDB over Arrow): the semantics of
`features.pit.pit_join` for one machine, without a JVM.

For each entity row (key, event_ts) the result carries the latest feature row with the same key
and feature_ts <= event_ts (a row exactly at event_ts counts), or NULLs when there is none, when
that row is older than the TTL, or when the entity row's key or time is NULL. Ties on feature_ts go
to the row with the largest `tiebreak` columns (the store passes the Delta commit order); without
them to the row whose feature values sort last. Every entity row comes out exactly once with all
its columns, duplicates and NULL keys included.

Plan: one DuckDB ASOF LEFT JOIN, equality on the keys and `>=` on (time, tie-break...) as a
struct, picks for each entity row the latest feature row and, among rows at that time, the
largest tie-break; without a tie-break, feature rows are first reduced to one per (key, time).
Timestamps are compared as UTC instants.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_platform.features.pit import check_lookup

if TYPE_CHECKING:
    import pyarrow as pa


def _q(name: str) -> str:
    """A DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def duck_source(con: Any, name: str, rows: Any) -> list[str]:
    """Make `rows` (an Arrow table, local Parquet files read by column name so that files written
    before a column was added still line up, or a `DeltaView`) the DuckDB relation `name`; its
    column names."""
    if isinstance(rows, (str, Path)):
        rows = [rows]
    if hasattr(rows, "register_in"):  # a Delta table's version (lake.delta_log.DeltaView)
        rows.register_in(con, name)
    elif not isinstance(rows, Sequence):
        con.register(name, rows)
    else:
        files = ", ".join("'" + str(f).replace("'", "''") + "'" for f in rows)
        if not files:
            raise ValueError(f"no Parquet files for {name}")
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{files}], union_by_name = true)")
    return list(con.sql(f"SELECT * FROM {name} LIMIT 0").columns)


def pit_join_embedded(
    entity: pa.Table | Sequence[str | Path] | Any,
    features: pa.Table | Sequence[str | Path] | Any,
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
    table's columns first, in their order, then the features. Either side is an Arrow table, a
    list of local Parquet files or a Delta version (`lake.delta_log.DeltaView`), whose files DuckDB
    scans itself (no copy into memory first).
    `threads`: DuckDB's (default: all)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        entity_cols = duck_source(con, "entity_in", entity)
        feature_cols = duck_source(con, "features_in", features)
        times = {
            "e": _micros(con, "entity_in", event_ts) if event_ts in entity_cols else "",
            "f": _micros(con, "features_in", feature_ts) if feature_ts in feature_cols else "",
        }
        return con.sql(
            _sql(
                entity_cols,
                feature_cols,
                entity_keys,
                feature_keys,
                event_ts,
                feature_ts,
                feature_names,
                ttl,
                tiebreak,
                times,
            )
        ).to_arrow_table()
    finally:
        con.close()


def _micros(con: Any, relation: str, column: str) -> str:
    """An expression of `column`'s instant as BIGINT microseconds since the epoch (UTC): epoch_us
    of a timestamp is exact and cheap (a cast of TIMESTAMPTZ to TIMESTAMP goes through the time
    zone library row by row); dates and text are cast to a timestamp first, read as UTC."""
    rel = con.sql(f"SELECT {_q(column)} FROM {relation} LIMIT 0")
    kind = str(rel.types[0]).upper()
    if kind.startswith("TIMESTAMP"):
        return f"epoch_us({_q(column)})"
    return f"epoch_us(CAST({_q(column)} AS TIMESTAMP))"


def _sql(
    entity_cols: list[str],
    feature_cols: list[str],
    entity_keys: list[str],
    feature_keys: list[str],
    event_ts: str,
    feature_ts: str,
    feature_names: list[str],
    ttl: timedelta | None,
    tiebreak: list[str] | None,
    times: dict[str, str],
) -> str:
    """The join's query over the relations `entity_in` and `features_in`, after checking the
    columns; `times`: the event and feature times as microsecond expressions (`_micros`)."""

    check_lookup(entity_cols, entity_keys, feature_keys, event_ts, feature_names)
    absent = [c for c in [*feature_keys, feature_ts, *feature_names, *(tiebreak or [])] if c not in feature_cols]
    if absent:
        raise ValueError(f"feature frame lacks column(s) {absent}; it has {feature_cols}")
    keys = [f"__pit_k{i}" for i in range(len(entity_keys))]
    fkeys = ", ".join(f"{_q(c)} AS {k}" for c, k in zip(feature_keys, keys))
    fts = times["f"]
    where = f"{_q(feature_ts)} IS NOT NULL AND " + " AND ".join(f"{_q(c)} IS NOT NULL" for c in feature_keys)
    values = ", ".join(_q(n) for n in feature_names)
    if tiebreak:
        # one ASOF join on (time, tie-break...) as a struct: the entity side's tie-break is the
        # largest BIGINT, so the latest time wins and, among its rows, the largest tie-break (a
        # NULL one is the smallest, as Spark sorts it first); no pass to reduce the ties
        tb = ", ".join(f"'b{i}': coalesce(CAST({_q(c)} AS BIGINT), {-(2**63)})" for i, c in enumerate(tiebreak))
        top = ", ".join(f"'b{i}': {2**63 - 1}" for i in range(len(tiebreak)))
        feature_rows = f"SELECT {fkeys}, {fts} AS __pit_fts, {{'t': {fts}, {tb}}} AS __pit_at, {values} FROM features_in WHERE {where}"
        entity_at = f"CASE WHEN __pit_ts IS NOT NULL THEN {{'t': __pit_ts, {top}}} END"
    else:
        # without a tie-break the values decide: the row that sorts last wins, as in Spark's
        # ascending window where NULL sorts first
        order = ", ".join(f"{_q(n)} DESC NULLS LAST" for n in feature_names)
        feature_rows = (
            f"SELECT {fkeys}, {fts} AS __pit_fts, {fts} AS __pit_at, {values} FROM features_in WHERE {where} "
            f"QUALIFY row_number() OVER (PARTITION BY {', '.join(_q(c) for c in feature_keys)}, {fts} ORDER BY {order}) = 1"
        )
        entity_at = "__pit_ts"
    stale = "p.__pit_fts IS NULL"
    if ttl is not None:
        stale += f" OR e.__pit_ts - p.__pit_fts > {int(ttl.total_seconds() * 1_000_000)}"
    return f"""
        WITH f AS ({feature_rows}),
        e0 AS (
            SELECT *, {", ".join(f"{_q(c)} AS {k}" for c, k in zip(entity_keys, keys))},
                   {times["e"]} AS __pit_ts
            FROM entity_in
        ),
        e AS (SELECT *, {entity_at} AS __pit_at FROM e0)
        SELECT {", ".join(f"e.{_q(c)}" for c in entity_cols)},
               {", ".join(f"CASE WHEN {stale} THEN NULL ELSE p.{_q(n)} END AS {_q(n)}" for n in feature_names)}
        FROM e ASOF LEFT JOIN f AS p
          ON {" AND ".join(f"e.{k} = p.{k}" for k in keys)} AND e.__pit_at >= p.__pit_at
    """
