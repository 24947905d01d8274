"""Where each Delta table lives under the lake root, and how it is partitioned; where the catalog
and the landing zone are."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from ml_platform.config import Settings, get_settings
from ml_platform.errors import InvalidName
from ml_platform.lake.storage import upath

if TYPE_CHECKING:
    from upath import UPath

#: table name -> partition columns (docs/ARCHITECTURE.md, "Storage").
TABLES: dict[str, list[str]] = {
    "bronze.transactions": ["ingest_date"],
    "bronze.customers": ["ingest_date"],
    "quarantine.transactions": ["ingest_date"],
    "silver.transactions": ["txn_date"],
    "silver.customers": [],
    "features.customer_features": ["snapshot_date"],
    "ml.training_sets": ["training_set_id"],
    "registry.alias_history": [],
    "gold.churn_scores": ["score_date"],
    "monitoring.prediction_log": ["date"],
    "monitoring.labels": [],
    "monitoring.drift_reports": [],
    "monitoring.performance_estimates": [],
    "monitoring.performance": [],
    "monitoring.retrain_decisions": [],
    "monitoring.retrain_handled": [],
}

#: Table properties of feature tables and training sets, set when they are created:
#: in-commit timestamps (time travel by commit time survives copying the lake), row tracking
#: (each row's commit version breaks timestamp ties: latest commit wins), and a long log
#: retention so versions pinned by training-set lineage stay readable.
FEATURE_TABLE_PROPERTIES: dict[str, str] = {
    "delta.enableInCommitTimestamps": "true",
    "delta.enableRowTracking": "true",
    "delta.logRetentionDuration": "interval 3650 days",
}

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}\.[a-z_][a-z0-9_]{0,62}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def check_table_name(name: str) -> str:
    """`name` if it is a lowercase `schema.table` name; else `InvalidName`. The one rule for every
    table name that becomes a folder, a catalog file or a Redis key prefix."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidName(f"bad table name {name!r}: use lowercase `schema.table`, e.g. features.customer_features")
    return name


def check_id(value: str, what: str = "id") -> str:
    """`value` if it is 1-64 letters, digits, `_` or `-` starting with a letter or digit; else
    `InvalidName` naming `what`. The one rule for ids that become a file name, a partition value or
    a literal in a Delta predicate (training-set ids): nothing in it can leave a folder or a quote."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidName(
            f"bad {what} {value!r}: use 1-64 letters, digits, '_' or '-', starting with a letter or digit"
        )
    return value


def table_path(name: str, settings: Settings | None = None) -> str:
    """Path (or URI) of Delta table `schema.table` under the lake root (any lowercase `schema.table` name)."""
    schema, table = check_table_name(name).split(".", 1)
    root = (settings or get_settings()).lake_uri.rstrip("/")
    return f"{root}/{schema}/{table}"


def catalog_dir(settings: Settings | None = None) -> Path | UPath:
    """The small JSON catalog kept with the lake: feature-table specs, training-set metadata
    (a `pathlib.Path`, or a `UPath` when the lake is on Azure Storage)."""
    s = settings or get_settings()
    return upath(s.lake_uri, s) / "_catalog"


def landing_dir(settings: Settings | None = None) -> Path | UPath:
    """The landing zone (a `Path`, or a `UPath` when it is a Blob container)."""
    s = settings or get_settings()
    return upath(s.landing_uri, s)
