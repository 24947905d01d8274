"""Small, Spark-free reads of Delta metadata with delta-rs (for Airflow tasks and the CLI).

Reads go through `DeltaTable.get_add_actions` / `file_uris`, never `to_pyarrow_table`, which
can abort the process at exit (SIGABRT, exit 134) with deltalake 1.6.
"""

from __future__ import annotations

from typing import Any


def add_actions(dt: Any) -> dict[str, list[Any]]:
    """The live files of a DeltaTable with their stats and partition values, as python lists."""
    import pyarrow as pa

    return pa.table(dt.get_add_actions(flatten=True)).to_pydict()


def table_exists(path: str) -> bool:
    from deltalake import DeltaTable

    return DeltaTable.is_deltatable(path)


def partition_values(path: str, column: str) -> list[str]:
    """Distinct values of partition `column` among the table's live files (sorted)."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(path):
        return []
    values = add_actions(DeltaTable(path))[f"partition.{column}"]
    return sorted({str(v) for v in values if v is not None})


def table_summary(path: str) -> dict[str, Any]:
    """Version, live file count and row count (from file statistics) of a Delta table."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(path):
        return {"path": path, "exists": False}
    dt = DeltaTable(path)
    rows = add_actions(dt)["num_records"]
    return {"path": path, "exists": True, "version": dt.version(), "files": len(rows),
            "rows": int(sum(r or 0 for r in rows))}


def read_pandas(path: str, version: int | None = None, columns: list[str] | None = None,
                partition: tuple[str, str] | None = None) -> Any:
    """A (small) Delta table as pandas, via the live file list and pyarrow (no delta-rs scan).

    Partition values missing from the data files are added back from the Delta log.
    `partition=(column, value)` reads only the files of that partition.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    dt = DeltaTable(path, version=version)
    actions = add_actions(dt)
    part_cols = [k.removeprefix("partition.") for k in actions if k.startswith("partition.")]
    schema = pa.schema(dt.schema().to_arrow())
    tables = []
    for i, rel in enumerate(actions["path"]):
        if partition and str(actions[f"partition.{partition[0]}"][i]) != partition[1]:
            continue
        uri = rel if "://" in rel else f"{path.rstrip('/')}/{rel}"
        t = pq.read_table(uri.removeprefix("file://"))
        for col in part_cols:
            if col not in t.column_names:
                value = actions[f"partition.{col}"][i]
                t = t.append_column(col, pa.array([value] * t.num_rows, type=schema.field(col).type))
        for field in schema:  # columns added to the table after this file was written
            if field.name not in t.column_names:
                t = t.append_column(field.name, pa.nulls(t.num_rows, type=field.type))
        tables.append(t.select(schema.names).cast(schema))
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    df = table.to_pandas()
    return df[columns] if columns else df
