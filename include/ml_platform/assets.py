"""Every Airflow Asset of the platform, defined once; producers and consumers import these.

Only DAG files import this module (it needs the Airflow SDK); the rest of ml_platform does not.
An event's `extra` carries what the consumer needs (snapshot_date, model version, decision_id).
"""

from __future__ import annotations

from airflow.sdk import Asset

#: A new newest feature snapshot is in features.customer_features; extra: {"snapshot_date"}.
FEATURES = Asset(name="features.customer_features", uri="ml-platform://lake/features/customer_features",
                 group="features")

__all__ = ["FEATURES"]
