"""delta-rs writes without Spark, usable in both Python environments: monitoring rows, and the
embedded engine's bronze, quarantine and silver commits (delta-rs also writes the checkpoints)."""

from __future__ import annotations

from typing import Any

from ml_platform.lake.reader import delta_table, table_exists, write_delta


def replace_rows(path: str, data: Any, column: str, value: str, *, add_columns: bool = False) -> None:
    """Replace the rows whose `column` equals `value` by `data` in one commit (creates the table);
    `add_columns`: columns of `data` the table lacks are added (older rows read them as null)."""
    replace_where(path, data, f"{column} = '{value}'", add_columns=add_columns)


def append(path: str, data: Any, *, partition_by: list[str] | None = None) -> None:
    """Append `data` in one commit (creates the table, partitioned by `partition_by`)."""
    write_delta(path, data, mode="append", partition_by=partition_by)


def replace_where(
    path: str, data: Any, predicate: str, *, partition_by: list[str] | None = None, add_columns: bool = False
) -> None:
    """Replace the rows matching `predicate` (SQL) by `data` in one commit, as Spark's `replaceWhere`
    (creates the table, partitioned by `partition_by`); `add_columns` as in `replace_rows`."""
    if table_exists(path):
        extra = {"schema_mode": "merge"} if add_columns else {}
        write_delta(path, data, mode="overwrite", predicate=predicate, **extra)
    else:
        write_delta(path, data, mode="append", partition_by=partition_by)


def upsert(path: str, data: Any, key: str) -> dict[str, int]:
    """MERGE `data` into the table on `key`: matched rows take `data`'s values, the others are
    inserted (creates the table); delta-rs's counts of what changed."""
    if not table_exists(path):
        write_delta(path, data, mode="append")
        return {"inserted": data.num_rows, "updated": 0}
    m = (
        delta_table(path)
        .merge(data, predicate=f"t.{key} = s.{key}", source_alias="s", target_alias="t")
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )
    return {"inserted": int(m.get("num_target_rows_inserted", 0)), "updated": int(m.get("num_target_rows_updated", 0))}


def insert_new(path: str, data: Any, key: str, *, partition_by: list[str] | None = None) -> int:
    """Insert the rows of `data` whose `key` is not in the table yet (MERGE); how many were inserted."""
    if not table_exists(path):
        write_delta(path, data, mode="append", partition_by=partition_by)
        return data.num_rows
    m = (
        delta_table(path)
        .merge(data, predicate=f"t.{key} = s.{key}", source_alias="s", target_alias="t")
        .when_not_matched_insert_all()
        .execute()
    )
    return int(m.get("num_target_rows_inserted", 0))
