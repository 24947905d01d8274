"""VACUUM retention: never shorter than the floor, the as-of horizon, or the oldest pin's age."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ml_platform.features.registry import write_json_atomic
from ml_platform.lake.paths import catalog_dir
from ml_platform.pipelines.lake_maintenance import MARGIN_HOURS, pinned_versions, retention_hours

pytestmark = pytest.mark.unit
NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)


def test_retention_covers_floor_horizon_and_oldest_pin():
    assert retention_hours(NOW, None, 168.0, 0) == 168.0
    assert retention_hours(NOW, None, 0.0, 30) == 720.0
    assert retention_hours(NOW, NOW - timedelta(days=100), 168.0, 30) == 2400.0 + MARGIN_HOURS


def test_pins_are_the_oldest_version_per_table(settings):
    root = catalog_dir(settings) / "training_sets"
    write_json_atomic(root / "a.json", {"lineage": {"features.x": 5}, "table_version": 3})
    write_json_atomic(root / "b.json", {"lineage": {"features.x": 2, "features.y": 9}, "table_version": 4})
    assert pinned_versions(settings) == {"features.x": 2, "features.y": 9, "ml.training_sets": 3}
