"""Feature definitions and the offline feature tables (issue 3 adds the store facade)."""

from ml_platform.features.customer_features import FEATURE_COLUMNS, compute_customer_features, snapshot_dates

__all__ = ["FEATURE_COLUMNS", "compute_customer_features", "snapshot_dates"]
