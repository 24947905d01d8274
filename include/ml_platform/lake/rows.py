"""Small delta-rs writes of monitoring rows, usable in both Python environments (no Spark)."""

from __future__ import annotations

from typing import Any


def replace_rows(path: str, data: Any, column: str, value: str) -> None:
    """Replace the rows whose `column` equals `value` by `data` in one commit (creates the table)."""
    from deltalake import DeltaTable, write_deltalake

    if DeltaTable.is_deltatable(path):
        write_deltalake(path, data, mode="overwrite", predicate=f"{column} = '{value}'")
    else:
        write_deltalake(path, data, mode="append")


def insert_new(path: str, data: Any, key: str) -> int:
    """Insert the rows of `data` whose `key` is not in the table yet (MERGE); how many were inserted."""
    from deltalake import DeltaTable, write_deltalake

    if not DeltaTable.is_deltatable(path):
        write_deltalake(path, data, mode="append")
        return data.num_rows
    m = DeltaTable(path).merge(data, predicate=f"t.{key} = s.{key}", source_alias="s",
                               target_alias="t").when_not_matched_insert_all().execute()
    return int(m.get("num_target_rows_inserted", 0))
