"""A materialised training set as pandas, without Spark, with the customers' sensitive attributes
beside it (for fairness reports and slices, never as features)."""

from __future__ import annotations

from typing import Any

from ml_platform.config import Settings, get_settings
from ml_platform.contracts import SENSITIVE
from ml_platform.features.store import FeatureStore
from ml_platform.lake.paths import table_path
from ml_platform.lake.reader import read_pandas, table_exists


def load_training_frame(
    training_set_id: str, settings: Settings | None = None
) -> tuple[Any, list[str], dict[str, int]]:
    """A materialised training set as pandas without Spark (delta-rs file list + pyarrow), with the
    customers' sensitive attributes beside it; (frame, feature names, lineage)."""
    s = settings or get_settings()
    meta = FeatureStore(settings=s).get_training_set(training_set_id).metadata
    df = read_pandas(
        table_path("ml.training_sets", s), version=meta["table_version"], partition=("training_set_id", training_set_id)
    )[meta["columns"]]
    return with_sensitive_attributes(df, s), list(meta["feature_names"]), dict(meta["lineage"])


def with_sensitive_attributes(df: Any, settings: Settings) -> Any:
    """Join gender / age band / region from silver.customers (for fairness, never as features)."""
    customers = table_path("silver.customers", settings)
    if not table_exists(customers) or "customer_id" not in df.columns:
        return df
    attrs = read_pandas(customers)
    keep = ["customer_id", *[c for c in SENSITIVE if c in attrs.columns and c not in df.columns]]
    return df.merge(attrs[keep], on="customer_id", how="left")
