"""Point-in-time join benchmark: the feature store's Spark join, its embedded join and DuckDB's bare
ASOF LEFT JOIN (the floor).

    python benchmarks/pit_join.py [--entities 100000 --features 1000000] [--big] [--smoke]
                                  [--feast-python PATH]

Generates a feature table of M rows (keys x weekly timestamps, 10 feature columns, a row id as
the tie-break, as the store passes row tracking's) and N entity
rows (random keys, 5 % unknown, random event times, duplicates allowed) as Parquet, then joins:
- Spark: `ml_platform.features.pit.pit_join` (union-and-window), written to Parquet; session
  start timed separately;
- the platform's default path: `FeatureStore.create_training_set` with the engine `auto` picks
  (the embedded one here: DuckDB over the feature table's Delta files at its version, row
  tracking's tie-break, the training set committed to `ml.training_sets`); the feature rows are
  first written as the platform keeps a feature table (not timed);
- DuckDB: `ASOF LEFT JOIN ... ON k = k AND event_ts >= feature_ts`, written to Parquet;
- Feast's file offline store (`get_historical_features(...).to_df()`, no TTL), when a side
  environment with Feast is given (`--feast-python`, default `$FEAST_PYTHON`; `feast_pit.py` runs
  there): its wall time and the entity rows it kept and dropped.
Checks that the first three give the same rows (every entity row once, same feature values) and
prints wall time, peak memory (RSS of the process tree) and the ratio. `--big` is 1 M x 10 M.
A side environment: `uv venv -p 3.11 .venv-feast && uv pip install -p .venv-feast feast==0.67.0`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feature_snapshot import PeakRss, print_comparison  # noqa: E402

FEATURES = [f"f{i}" for i in range(10)]


def make_data(n_entities: int, n_features: int, out: Path) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    weeks = 52
    keys = max(1, n_features // weeks)
    base = np.datetime64("2025-01-01T00:00:00", "us")
    week = np.timedelta64(7 * 86_400_000_000, "us")
    k = np.repeat(np.arange(keys), weeks)
    fts = base + np.tile(np.arange(weeks), keys) * week
    feats = pd.DataFrame(
        {
            "customer_id": pd.array([f"C{x:08d}" for x in k]),
            "feature_timestamp": fts,
            **{f: rng.random(len(k)) for f in FEATURES},
            "row_id": np.arange(len(k), dtype="int64"),  # the tie-break the store passes (row tracking's)
        }
    )
    feats.to_parquet(out / "features.parquet", index=False, row_group_size=1_000_000)
    ek = rng.integers(0, int(keys * 1.05), n_entities)  # ~5 % of keys have no features
    ets = base + (rng.random(n_entities) * weeks * 7 * 86_400_000_000).astype("int64").astype("timedelta64[us]")
    ets = ets - np.timedelta64(3 * 86_400_000_000, "us")  # some events before the first feature row
    ent = pd.DataFrame(
        {"customer_id": pd.array([f"C{x:08d}" for x in ek]), "event_timestamp": ets, "row": np.arange(n_entities)}
    )
    ent.to_parquet(out / "entities.parquet", index=False, row_group_size=1_000_000)


def duckdb_join(out: Path) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 2")
    cols = ", ".join(f"f.{f}" for f in FEATURES)
    con.execute(f"""COPY (SELECT e.customer_id, e.event_timestamp, e.row, {cols}
        FROM read_parquet('{out / "entities.parquet"}') e
        ASOF LEFT JOIN read_parquet('{out / "features.parquet"}') f
        ON e.customer_id = f.customer_id AND e.event_timestamp >= f.feature_timestamp)
        TO '{out / "duck.parquet"}' (FORMAT parquet)""")


def embedded_store(out: Path) -> Any:
    """A feature store whose lake holds the feature rows as the platform keeps a feature table: a
    registered Delta table partitioned by snapshot_date with row tracking and in-commit timestamps,
    committed by the embedded writer (set-up, not timed). Returns (store, entity rows as Arrow)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from ml_platform.config import Settings
    from ml_platform.features import FeatureStore
    from ml_platform.features.registry import FeatureSpec, FeatureTable
    from ml_platform.lake.delta_log import replace_partitions
    from ml_platform.lake.paths import FEATURE_TABLE_PROPERTIES, table_path

    s = Settings(  # its own local lake and defaults, whatever the environment sets
        home=out / "home",
        lake_uri=str(out / "home" / "lake"),
        spark_master="local[2]",
        spark_remote="",
        engine_features="auto",
        engine_training_sets="auto",
        embedded_max_bytes=2**30,
    )
    feats = pq.read_table(out / "features.parquet").drop_columns(["row_id"])
    utc = pc.cast(feats.column("feature_timestamp"), pa.timestamp("us", tz="UTC"))
    feats = feats.set_column(feats.column_names.index("feature_timestamp"), "feature_timestamp", utc)
    feats = feats.append_column("snapshot_date", pc.cast(utc, pa.date32()))
    replace_partitions(table_path("features.bench", s), feats, ["snapshot_date"], properties=FEATURE_TABLE_PROPERTIES)
    store = FeatureStore(settings=s)
    store.register_spec(
        FeatureTable(
            name="features.bench",
            primary_keys=("customer_id",),
            timestamp_key="feature_timestamp",
            features=tuple(FeatureSpec(f, "double", "") for f in FEATURES),
            partition_by=("snapshot_date",),
        )
    )
    return store, pq.read_table(out / "entities.parquet")


def embedded_join(store: Any, entity: Any, out: Path) -> dict[str, Any]:
    """The platform's default path: `create_training_set` with the engine `auto` picks, from the
    feature table's Delta files at its current version to a `ml.training_sets` commit."""
    import pyarrow.parquet as pq

    from ml_platform.features import FeatureLookup

    ts = store.create_training_set(entity, [FeatureLookup("features.bench")], timestamp_key="event_timestamp")
    pq.write_table(ts.to_arrow(), out / "embedded.parquet")  # read back for the comparison (timed: a user would)
    return ts.metadata["engine"]


def spark_join(spark, out: Path) -> None:
    from ml_platform.features.pit import pit_join

    ent = spark.read.parquet(str(out / "entities.parquet"))
    feats = spark.read.parquet(str(out / "features.parquet"))
    res = pit_join(
        ent,
        feats,
        entity_keys=["customer_id"],
        feature_keys=["customer_id"],
        event_ts="event_timestamp",
        feature_ts="feature_timestamp",
        feature_names=FEATURES,
        tiebreak=["row_id"],
    )
    res.write.mode("overwrite").parquet(str(out / "spark.parquet"))


def compare(out: Path, n: int) -> None:
    import numpy as np
    import pandas as pd

    s = pd.read_parquet(out / "spark.parquet").sort_values("row").reset_index(drop=True)
    for other in ("duck", "embedded"):
        d = pd.read_parquet(out / f"{other}.parquet").sort_values("row").reset_index(drop=True)
        if len(s) != n or len(d) != n or not (s["row"].to_numpy() == d["row"].to_numpy()).all():
            raise SystemExit(f"row sets differ: spark {len(s)}, {other} {len(d)}, entities {n}")
        for f in FEATURES:
            a, b = s[f].to_numpy(dtype="float64"), d[f].to_numpy(dtype="float64")
            if not np.array_equal(np.isnan(a), np.isnan(b)) or not np.allclose(np.nan_to_num(a), np.nan_to_num(b)):
                raise SystemExit(f"values differ in {f} ({other} vs spark)")


def feast_join(python: str, out: Path) -> dict[str, Any]:
    """Feast's leg in its own environment (`feast_pit.py`); its JSON line."""
    script = Path(__file__).resolve().parent / "feast_pit.py"
    done = subprocess.run([python, str(script), str(out)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the Feast leg failed ({python}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def feast_rows(out: Path, n: int) -> tuple[int, int]:
    """(entity rows Feast returned, of those how many differ from Spark's feature values)."""
    import numpy as np
    import pandas as pd

    s = pd.read_parquet(out / "spark.parquet").set_index("row")
    f = pd.read_parquet(out / "feast.parquet").drop_duplicates("row").set_index("row")
    s = s.loc[f.index]
    differ = np.zeros(len(f), dtype=bool)
    for c in FEATURES:
        a, b = s[c].to_numpy(dtype="float64"), f[c].to_numpy(dtype="float64")
        differ |= (np.isnan(a) != np.isnan(b)) | ~np.isclose(np.nan_to_num(a), np.nan_to_num(b))
    return len(f), int(differ.sum())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entities", type=int, default=100_000)
    p.add_argument("--features", type=int, default=1_000_000)
    p.add_argument("--big", action="store_true", help="1,000,000 entity rows x 10,000,000 feature rows")
    p.add_argument("--smoke", action="store_true", help="tiny run for CI (2,000 x 20,000)")
    p.add_argument(
        "--feast-python",
        default=os.environ.get("FEAST_PYTHON", ""),
        help="Python of a side environment with Feast installed (default: $FEAST_PYTHON; empty: no Feast leg)",
    )
    a = p.parse_args(argv)
    if a.feast_python and not os.access(a.feast_python, os.X_OK):
        p.error(f"--feast-python {a.feast_python!r} is not an executable")
    n, m = (2_000, 20_000) if a.smoke else (1_000_000, 10_000_000) if a.big else (a.entities, a.features)
    work = Path(tempfile.mkdtemp(prefix="bench-pit-"))
    try:
        t = time.perf_counter()
        make_data(n, m, work)
        print(f"data: {n:,} entity rows x {m:,} feature rows, generated in {time.perf_counter() - t:.1f}s", flush=True)
        with PeakRss() as duck_mem:
            t = time.perf_counter()
            duckdb_join(work)
            duck_s = time.perf_counter() - t
        store, entity = embedded_store(work)
        with PeakRss() as emb_mem:
            t = time.perf_counter()
            engine = embedded_join(store, entity, work)
            emb_s = time.perf_counter() - t
        print(f"default path: {engine['engine']} engine ({engine['reason']})", flush=True)
        from ml_platform.lake import get_spark

        with PeakRss() as spark_mem:
            t = time.perf_counter()
            spark = get_spark("bench-pit", extra_conf={"spark.master": "local[2]"})
            start_s = time.perf_counter() - t
            t = time.perf_counter()
            spark_join(spark, work)
            job_s = time.perf_counter() - t
        spark.stop()
        compare(work, n)
        print(f"outputs agree: {n:,} rows, one per entity row, same feature values (Spark, embedded, DuckDB)")
        if a.feast_python:
            with PeakRss() as feast_mem:
                t = time.perf_counter()
                feast = feast_join(a.feast_python, work)
                feast_s = time.perf_counter() - t
            kept, differ = feast_rows(work, n)
        print_comparison(start_s, job_s, spark_mem.peak, duck_s, duck_mem.peak, "join")
        print(
            f"platform default ({engine['engine']}: create_training_set, the feature table's Delta files in, a "
            f"training-set commit out): {emb_s:.2f} s, peak RSS "
            f"{emb_mem.peak / 2**20:,.0f} MiB; {emb_s / duck_s:.2f}x the DuckDB floor, "
            f"{(start_s + job_s) / emb_s:.1f}x faster than Spark with its start"
        )
        if a.feast_python:
            print(
                f"feast {feast['feast']} file offline store: join {feast['join_s']:.2f} s (process with imports "
                f"and apply: {feast_s:.2f} s), peak RSS {feast_mem.peak / 2**20:,.0f} MiB; kept {kept:,} of {n:,} "
                f"entity rows ({(n - kept) / n:.1%} dropped), {differ:,} kept rows with other values than Spark's; "
                f"the default path is {feast['join_s'] / emb_s:.1f}x faster and keeps every row"
            )
        else:
            print("feast: no side environment given (--feast-python or FEAST_PYTHON): not run")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
