"""Small, Spark-free reads of Delta metadata with delta-rs (for Airflow tasks and the CLI).

Reads go through `DeltaTable.get_add_actions` / `file_uris`, never `to_pyarrow_table`, which
can abort the process at exit (SIGABRT, exit 134) with deltalake 1.6.
"""

from __future__ import annotations

from typing import Any


def table_exists(path: str) -> bool:
    from deltalake import DeltaTable

    return DeltaTable.is_deltatable(path)


def partition_values(path: str, column: str) -> list[str]:
    """Distinct values of partition `column` among the table's live files (sorted)."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(path):
        return []
    actions = DeltaTable(path).get_add_actions(flatten=True)
    values = actions.column(f"partition.{column}").to_pylist()
    return sorted({str(v) for v in values if v is not None})


def table_summary(path: str) -> dict[str, Any]:
    """Version, live file count and row count (from file statistics) of a Delta table."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(path):
        return {"path": path, "exists": False}
    dt = DeltaTable(path)
    actions = dt.get_add_actions(flatten=True)
    rows = actions.column("num_records").to_pylist()
    return {"path": path, "exists": True, "version": dt.version(), "files": len(rows),
            "rows": int(sum(r or 0 for r in rows))}
