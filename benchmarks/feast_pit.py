"""The Feast leg of `pit_join.py`, run by a side environment's Python with Feast installed (never
the platform's environment: Feast pins its own versions).

    <feast-python> benchmarks/feast_pit.py WORK_DIR

Reads WORK_DIR/features.parquet and WORK_DIR/entities.parquet (as `pit_join.py` writes them),
registers them with Feast's file offline store (a local repo in WORK_DIR/feast, no TTL), runs
`get_historical_features(...).to_df()` and writes the result to WORK_DIR/feast.parquet. Prints one
JSON line: the Feast version, the seconds of `apply` (set-up) and of the join.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta
from pathlib import Path

FEATURES = [f"f{i}" for i in range(10)]


def main(work: Path) -> int:
    import feast
    import pandas as pd
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource
    from feast.types import Float64

    repo = work / "feast"
    repo.mkdir(exist_ok=True)
    (repo / "feature_store.yaml").write_text(
        "project: bench\nprovider: local\n"
        f"registry: {repo / 'registry.db'}\n"
        "offline_store:\n  type: file\n"
        f"online_store:\n  type: sqlite\n  path: {repo / 'online.db'}\n"
        "entity_key_serialization_version: 3\n"
    )
    t = time.perf_counter()
    customer = Entity(name="customer", join_keys=["customer_id"])
    view = FeatureView(
        name="bench",
        entities=[customer],
        ttl=timedelta(0),  # Feast: 0 = no TTL, as the other legs
        schema=[Field(name=f, dtype=Float64) for f in FEATURES],
        source=FileSource(path=str(work / "features.parquet"), timestamp_field="feature_timestamp"),
    )
    store = FeatureStore(repo_path=str(repo))
    store.apply([customer, view])
    apply_s = time.perf_counter() - t
    t = time.perf_counter()
    entity = pd.read_parquet(work / "entities.parquet")
    out = store.get_historical_features(entity_df=entity, features=[f"bench:{f}" for f in FEATURES]).to_df()
    out[["row", *FEATURES]].to_parquet(work / "feast.parquet", index=False)
    join_s = time.perf_counter() - t
    print(json.dumps({"feast": feast.__version__, "apply_s": round(apply_s, 2), "join_s": round(join_s, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
