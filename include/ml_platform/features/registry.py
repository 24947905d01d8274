"""Feature-table registry: what each feature table is, stored as a small JSON catalog with the lake.

One file per table under `<lake>/_catalog/feature_tables/<name>.json`, written to a temporary
file and renamed, so a reader sees the old or the new spec, never half of one. No Spark here:
the CLI and Airflow tasks read the registry without a JVM.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_platform.errors import MlPlatformError
from ml_platform.lake.paths import check_table_name
from ml_platform.lake.storage import write_text_atomic

if TYPE_CHECKING:
    from upath import UPath

#: Spark simple type names we accept for features (what `DataFrame.schema` reports).
FEATURE_TYPES = frozenset(
    {
        "string",
        "double",
        "float",
        "bigint",
        "int",
        "smallint",
        "boolean",
        "date",
        "timestamp",
        "timestamp_ntz",
        "decimal",
    }
)


class FeatureTableNotFound(MlPlatformError):
    """No feature table of that name is registered."""


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    dtype: str
    description: str = ""


@dataclass(frozen=True)
class FeatureTable:
    """A registered feature table: a Delta table under the lake root with keys and a timestamp."""

    name: str
    primary_keys: tuple[str, ...]
    timestamp_key: str
    features: tuple[FeatureSpec, ...]
    description: str = ""
    owner: str = ""
    ttl_seconds: float | None = None
    partition_by: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.primary_keys:
            raise ValueError(f"feature table {self.name}: at least one primary key is needed")
        names = [f.name for f in self.features]
        clash = set(names) & {*self.primary_keys, self.timestamp_key}
        if clash:
            raise ValueError(f"feature table {self.name}: {sorted(clash)} are keys, not features")
        if self.ttl_seconds is not None and self.ttl_seconds <= 0:
            raise ValueError(f"feature table {self.name}: ttl must be positive")

    @property
    def ttl(self) -> timedelta | None:
        return None if self.ttl_seconds is None else timedelta(seconds=self.ttl_seconds)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureTable:
        return cls(
            name=data["name"],
            primary_keys=tuple(data["primary_keys"]),
            timestamp_key=data["timestamp_key"],
            features=tuple(FeatureSpec(**f) for f in data["features"]),
            description=data.get("description", ""),
            owner=data.get("owner", ""),
            ttl_seconds=data.get("ttl_seconds"),
            partition_by=tuple(data.get("partition_by", ())),
        )


def write_json_atomic(path: Path | UPath, payload: dict[str, Any]) -> None:
    """Write JSON so that readers see the old file or the new one, never a partial one
    (locally or on Azure Storage: `lake.storage.write_text_atomic`)."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=str))


class Registry:
    """The feature-table catalog under `<catalog_dir>/feature_tables/`."""

    def __init__(self, catalog_dir: Path | UPath) -> None:
        self.root = catalog_dir / "feature_tables"

    def _path(self, name: str) -> Path | UPath:
        return self.root / f"{check_table_name(name)}.json"

    def put(self, table: FeatureTable) -> bool:
        """Store `table`'s spec; False when the same spec was already stored (no write)."""
        current = self._path(table.name)
        if current.exists() and json.loads(current.read_text()) == json.loads(json.dumps(table.to_json())):
            return False
        write_json_atomic(current, table.to_json())
        return True

    def get(self, name: str) -> FeatureTable:
        path = self._path(name)
        if not path.exists():
            known = ", ".join(self.names()) or "none"
            raise FeatureTableNotFound(f"feature table {name!r} is not registered (registered: {known})")
        return FeatureTable.from_json(json.loads(path.read_text()))

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.json")) if self.root.is_dir() else []

    def list(self) -> list[FeatureTable]:
        return [self.get(n) for n in self.names()]
