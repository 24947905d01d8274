"""Every Airflow Asset of the platform, defined once; producers and consumers import these.

Only DAG files import this module (it needs the Airflow SDK); the rest of ml_platform does not.
An event's `extra` carries what the consumer needs (snapshot_date, model version, decision_id).
"""

from __future__ import annotations

from airflow.sdk import Asset

#: A new newest feature snapshot is in features.customer_features; extra: {"snapshot_date"}.
FEATURES = Asset(
    name="features.customer_features", uri="ml-platform://lake/features/customer_features", group="features"
)

#: Monitoring asks for a retrain; extra: {"decision_id", "reason"}.
RETRAIN_REQUESTED = Asset(
    name="training.retrain_requested", uri="ml-platform://training/retrain_requested", group="training"
)

#: A model version was registered with alias `challenger`; extra: {"model_name", "version", "training_set_id",
#: "decision_id" (when a retrain request caused it)}.
CHALLENGER = Asset(name="registry.challenger", uri="ml-platform://registry/challenger", group="registry")

__all__ = ["CHALLENGER", "FEATURES", "RETRAIN_REQUESTED"]
