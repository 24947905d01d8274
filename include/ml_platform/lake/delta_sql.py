"""Delta operations through Spark SQL, the same on a classic session and on Spark Connect.

The `delta.tables.DeltaTable` Python API needs the Delta Connect server plugin on a Spark
Connect server, and Delta publishes none for the Spark 4.2 line; `MERGE INTO`, `DESCRIBE
HISTORY` and `OPTIMIZE` are SQL the Delta session extension understands on either kind of
session. Whether a path holds a Delta table is read from its log with delta-rs (no Spark job).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from ml_platform.lake.reader import table_exists

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession


def ident(path: str) -> str:
    """`delta.`<path>`` with backticks in the path escaped."""
    return "delta.`" + str(path).replace("`", "``") + "`"


def is_delta(path: str) -> bool:
    """Whether `path` holds a Delta table (its `_delta_log` has a commit)."""
    return table_exists(str(path))


def merge_into(spark: SparkSession, path: str, source: DataFrame, on: str, *, update: bool) -> None:
    """MERGE `source` (alias `s`) into the Delta table at `path` (alias `t`) on condition `on`:
    insert unmatched rows, and with `update` overwrite matched rows with the source's columns."""
    view = f"merge_source_{uuid.uuid4().hex}"
    source.createOrReplaceTempView(view)
    try:
        spark.sql(
            f"MERGE INTO {ident(path)} AS t USING {view} AS s ON {on} "
            + ("WHEN MATCHED THEN UPDATE SET * " if update else "")
            + "WHEN NOT MATCHED THEN INSERT *"
        ).collect()
    finally:
        spark.catalog.dropTempView(view)


def history(spark: SparkSession, path: str, limit: int | None = None) -> list[Row]:
    """The table's commits, newest first (`DESCRIBE HISTORY`)."""
    sql = f"DESCRIBE HISTORY {ident(path)}" + (f" LIMIT {int(limit)}" if limit else "")
    return spark.sql(sql).collect()


def optimize(spark: SparkSession, path: str) -> dict[str, Any]:
    """Compact the table's small files; OPTIMIZE's metrics as a dict."""
    metrics = spark.sql(f"OPTIMIZE {ident(path)}").collect()[0]["metrics"]
    return metrics.asDict() if hasattr(metrics, "asDict") else dict(metrics)
