"""Demo step: the feature store through its Python API, on the demo's lake.

Builds a point-in-time training set with churn labels for several cutoffs, rebuilds it from its
lineage and checks it is identical, then reads online features for a few customers.
Run by `make demo`; also a worked example of the API (see README, "Feature store").
"""

from __future__ import annotations

import sys
from datetime import date

from ml_platform.features import FeatureLookup, FeatureStore
from ml_platform.training.labels import build_churn_labels


def main(cutoffs: list[date], horizon_days: int, customers: list[str]) -> int:
    store = FeatureStore()
    lookups = [FeatureLookup("features.customer_features")]
    engine = store.training_set_engine(lookups)  # chosen once, for the labels, the join and the rebuild
    entity = build_churn_labels(engine, cutoffs, horizon_days)
    ts = store.create_training_set(
        entity, lookups, timestamp_key="event_timestamp", label="churned", training_set_id="demo-api", engine=engine
    )
    df = ts.to_pandas()
    order = [("customer_id", "ascending"), ("cutoff_date", "ascending")]
    same = store.rebuild_training_set(ts.training_set_id, engine).sort_by(order).equals(ts.to_arrow().sort_by(order))
    print(
        f"  API training set {ts.training_set_id} ({engine.name} engine): {len(df):,} rows, "
        f"{len(ts.feature_names)} features, lineage {ts.lineage}, rebuilt identically: {same}"
    )
    for cutoff, g in df.groupby("cutoff_date"):
        print(f"    cutoff {cutoff}: {len(g):5,d} customers, churn rate {g['churned'].mean():.3f}")
    for row in store.get_online_features("features.customer_features", customers):
        if row.found:
            v = row.values
            print(
                f"  online {row.key}: as of {row.feature_timestamp:%Y-%m-%d %H:%M} UTC  recency {v['recency_days']:.1f} d  "
                f"frequency_90d {v['frequency_90d']}  monetary_90d {v['monetary_90d']:.2f}"
            )
        else:
            print(f"  online {row.key}: not found")
    store.spark.stop()
    return 0 if same else 1


if __name__ == "__main__":
    cut = [date.fromisoformat(c) for c in sys.argv[1].split(",")]
    sys.exit(main(cut, int(sys.argv[2]), sys.argv[3].split(",")))
