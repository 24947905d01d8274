"""Decide whether a feature snapshot may be published downstream (no Spark needed)."""

from __future__ import annotations

from datetime import date

from ml_platform.config import Settings, get_settings
from ml_platform.lake.paths import table_path
from ml_platform.lake.reader import partition_values


def newest_snapshot_check(snapshot: date, settings: Settings | None = None) -> tuple[bool, str | None]:
    """(is `snapshot` present and the newest snapshot_date in the table, the newest one)."""
    values = partition_values(table_path("features.customer_features", settings or get_settings()), "snapshot_date")
    newest = values[-1] if values else None
    return (newest == snapshot.isoformat(), newest)
