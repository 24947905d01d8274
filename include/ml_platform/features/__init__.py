"""Feature definitions, the offline feature tables, the point-in-time join and the online store.

Importing this package is cheap (no Spark, no Delta): heavy imports happen inside the calls.

Layer 4 of the package layers in docs/ARCHITECTURE.md (held by import-linter).
"""

from ml_platform.features.customer_features import FEATURE_COLUMNS, compute_customer_features, snapshot_dates
from ml_platform.features.registry import FeatureSpec, FeatureTable
from ml_platform.features.store import FeatureLookup, FeatureStore, TrainingSet

__all__ = [
    "FEATURE_COLUMNS",
    "FeatureLookup",
    "FeatureSpec",
    "FeatureStore",
    "FeatureTable",
    "TrainingSet",
    "compute_customer_features",
    "snapshot_dates",
]
