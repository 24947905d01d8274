"""Small, Spark-free reads of Delta metadata with delta-rs (for Airflow tasks and the CLI).

Reads go through `DeltaTable.get_add_actions` / `file_uris`, never `to_pyarrow_table`, which
can abort the process at exit (SIGABRT, exit 134) with deltalake 1.6. Reading a table's live
Parquet files is only correct when the files hold the rows and the columns as the log describes
them: `read_pandas` refuses tables with deletion vectors (deleted rows still sit in the files) or
column mapping (the files' column names are ids), naming the table and the feature; Spark reads
those.
"""

from __future__ import annotations

from typing import Any

from ml_platform.errors import MlPlatformError
from ml_platform.lake.storage import arrow_filesystem, delta_options
from ml_platform.locations import is_remote, parse


class UnsupportedTable(MlPlatformError):
    """A Delta table whose files this reader cannot read as they are (deletion vectors, column mapping)."""


def delta_table(path: str, version: int | None = None) -> Any:
    """delta-rs `DeltaTable` of `path` (local or Azure: credentials from `lake.storage`)."""
    from deltalake import DeltaTable

    return DeltaTable(path, version=version, storage_options=delta_options(path) if is_remote(path) else None)


def write_delta(path: str, data: Any, **kwargs: Any) -> None:
    """delta-rs `write_deltalake` to `path` with the location's storage options. A table created here
    gets `delta.checkpointInterval=10` (Spark's default; delta-rs's own is 100), so readers replay at
    most ten commits after the newest checkpoint, which delta-rs writes after its commits."""
    from deltalake import write_deltalake

    if not table_exists(path):
        kwargs["configuration"] = {"delta.checkpointInterval": "10", **(kwargs.get("configuration") or {})}
    write_deltalake(path, data, storage_options=delta_options(path) if is_remote(path) else None, **kwargs)


def add_actions(dt: Any) -> dict[str, list[Any]]:
    """The live files of a DeltaTable with their stats and partition values, as python lists."""
    import pyarrow as pa

    return pa.table(dt.get_add_actions(flatten=True)).to_pydict()


def check_plain_files(dt: Any, path: str) -> None:
    """Refuse a table whose live Parquet files do not hold its rows and columns as they are: with
    deletion vectors (rows deleted by a DV are still in the files; `num_records` counts them) or
    column mapping (physical column names differ from the schema's)."""
    features = set(dt.protocol().reader_features or [])
    mapping = (dt.metadata().configuration or {}).get("delta.columnMapping.mode", "none")
    if "deletionVectors" in features:
        raise UnsupportedTable(
            f"Delta table {path} uses deletion vectors: its files still hold deleted rows. Read it with Spark, or "
            f"purge them first (REORG TABLE delta.`{path}` APPLY (PURGE)) and disable "
            f"delta.enableDeletionVectors"
        )
    if "columnMapping" in features or mapping not in ("none", None):
        raise UnsupportedTable(
            f"Delta table {path} uses column mapping (mode {mapping}): its files name columns by id. Read it with Spark"
        )


def table_exists(path: str) -> bool:
    """Whether `path` holds a Delta table (its `_delta_log` has a commit)."""
    from deltalake import DeltaTable

    return bool(DeltaTable.is_deltatable(str(path), storage_options=delta_options(path) if is_remote(path) else None))


def partition_values(path: str, column: str) -> list[str]:
    """Distinct values of partition `column` among the table's live files (sorted)."""
    if not table_exists(path):
        return []
    values = add_actions(delta_table(path))[f"partition.{column}"]
    return sorted({str(v) for v in values if v is not None})


def table_summary(path: str) -> dict[str, Any]:
    """Version, live file count and row count (from file statistics) of a Delta table."""
    if not table_exists(path):
        return {"path": path, "exists": False}
    dt = delta_table(path)
    rows = add_actions(dt)["num_records"]
    try:
        check_plain_files(dt, path)
    except UnsupportedTable as e:  # file statistics count rows that deletion vectors removed
        return {
            "path": path,
            "exists": True,
            "version": dt.version(),
            "files": len(rows),
            "rows": None,
            "unsupported": str(e),
        }
    return {
        "path": path,
        "exists": True,
        "version": dt.version(),
        "files": len(rows),
        "rows": int(sum(r or 0 for r in rows)),
    }


def read_pandas(
    path: str, version: int | None = None, columns: list[str] | None = None, partition: tuple[str, str] | None = None
) -> Any:
    """A (small) Delta table as pandas, via the live file list and pyarrow (no delta-rs scan).

    Partition values missing from the data files are added back from the Delta log.
    `partition=(column, value)` reads only the files of that partition.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    dt = delta_table(path, version=version)
    check_plain_files(dt, path)
    fs = arrow_filesystem(path)[0] if is_remote(path) else None  # pyarrow's Azure client, the lake's credentials
    actions = add_actions(dt)
    part_cols = [k.removeprefix("partition.") for k in actions if k.startswith("partition.")]
    schema = pa.schema(dt.schema().to_arrow())
    tables = []
    for i, rel in enumerate(actions["path"]):
        if partition and str(actions[f"partition.{partition[0]}"][i]) != partition[1]:
            continue
        uri = rel if "://" in rel else f"{path.rstrip('/')}/{rel}"
        if fs is not None:
            loc = parse(uri)
            uri = f"{loc.container}/{loc.path}"  # type: ignore[union-attr]
        t = pq.read_table(uri.removeprefix("file://"), filesystem=fs)
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


def read_newest_partition(path: str, column: str, columns: list[str] | None = None) -> tuple[str, Any] | None:
    """The newest value of partition `column` and that partition's rows as pandas (only `columns`
    when given); None when the table has no partition yet (or does not exist)."""
    values = partition_values(path, column)
    if not values:
        return None
    return values[-1], read_pandas(path, columns=columns, partition=(column, values[-1]))
