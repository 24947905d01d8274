"""Where each Delta table lives under the lake root, and how it is partitioned."""

from __future__ import annotations

from ml_platform.config import Settings, get_settings

#: table name -> partition columns (ARCHITECTURE.md, "Storage").
TABLES: dict[str, list[str]] = {
    "bronze.transactions": ["ingest_date"],
    "bronze.customers": ["ingest_date"],
    "quarantine.transactions": ["ingest_date"],
    "silver.transactions": ["txn_date"],
    "silver.customers": [],
    "features.customer_features": ["snapshot_date"],
}


def table_path(name: str, settings: Settings | None = None) -> str:
    """Path (or URI) of Delta table `schema.table` under the lake root."""
    if name not in TABLES:
        raise KeyError(f"unknown table {name!r}; known: {', '.join(sorted(TABLES))}")
    schema, table = name.split(".", 1)
    root = (settings or get_settings()).lake_uri.rstrip("/")
    return f"{root}/{schema}/{table}"
