"""Small delta-rs writes of monitoring rows, usable in both Python environments (no Spark)."""

from __future__ import annotations

from typing import Any

from ml_platform.lake.reader import delta_table, table_exists, write_delta


def replace_rows(path: str, data: Any, column: str, value: str, *, add_columns: bool = False) -> None:
    """Replace the rows whose `column` equals `value` by `data` in one commit (creates the table);
    `add_columns`: columns of `data` the table lacks are added (older rows read them as null)."""
    if table_exists(path):
        extra = {"schema_mode": "merge"} if add_columns else {}
        write_delta(path, data, mode="overwrite", predicate=f"{column} = '{value}'", **extra)
    else:
        write_delta(path, data, mode="append")


def insert_new(path: str, data: Any, key: str) -> int:
    """Insert the rows of `data` whose `key` is not in the table yet (MERGE); how many were inserted."""
    if not table_exists(path):
        write_delta(path, data, mode="append")
        return data.num_rows
    m = (
        delta_table(path)
        .merge(data, predicate=f"t.{key} = s.{key}", source_alias="s", target_alias="t")
        .when_not_matched_insert_all()
        .execute()
    )
    return int(m.get("num_target_rows_inserted", 0))
