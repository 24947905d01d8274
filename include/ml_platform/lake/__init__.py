"""Lake layout (Delta table paths) and the one SparkSession factory.

Names are resolved on first use, so `ml_platform.lake.reader` (pyarrow + delta-rs only) is
importable in the drift environment, which has no pydantic-settings.

Layer 2 of the package layers in docs/ARCHITECTURE.md (held by import-linter).
"""

from __future__ import annotations

from typing import Any

__all__ = ["TABLES", "delta_jars", "get_spark", "spark_conf", "table_path"]


def __getattr__(name: str) -> Any:
    if name in ("TABLES", "table_path"):
        from ml_platform.lake import paths

        return getattr(paths, name)
    if name in ("delta_jars", "get_spark", "spark_conf"):
        from ml_platform.lake import spark

        return getattr(spark, name)
    raise AttributeError(f"module 'ml_platform.lake' has no attribute {name!r}")
