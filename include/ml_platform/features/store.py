"""`FeatureStore`: the one facade over feature tables, training sets and the online store.

    from ml_platform.features import FeatureStore, FeatureLookup
    store = FeatureStore()
    store.register_table("features.demo", df, primary_keys=["customer_id"], timestamp_key="ts")
    ts = store.create_training_set(entity_df, [FeatureLookup("features.customer_features")],
                                   timestamp_key="event_timestamp", label="churned")
    ts.load_df(); ts.to_pandas(); ts.lineage          # {table: Delta version read}
    store.rebuild_training_set(ts.training_set_id)    # the same rows, from the pinned versions
    store.publish_online("features.customer_features")
    store.get_online_features("features.customer_features", ["C000001"])

The facade validates frames and requests and keeps the training sets' metadata; the Delta work is
the offline store's (`offline.py`), the key-value serving copy the online store's (`online.py`).
Feature tables are Delta tables under the lake root, created with in-commit timestamps and row
tracking (see `lake.paths.FEATURE_TABLE_PROPERTIES`); their specs live in the registry
(`registry.py`). Training sets are materialised to `ml.training_sets` (one partition per
training_set_id) with their metadata and lineage in the catalog, so they never change after a
backfill and can be rebuilt exactly. Registry reads and online lookups need no Spark; everything
else builds (or reuses) the platform's SparkSession.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_platform.config import Settings, get_settings
from ml_platform.engines import Engine, SparkEngine, choose_engine
from ml_platform.features.offline import (
    TRAINING_SETS,
    FeatureStoreError,
    MaterializedTrainingSet,
    OfflineStore,
    latest_rows,
    lookups_of,
    materialize_training_set,
    rebuild_training_frame,
    skew_sample,
)
from ml_platform.features.online import OnlineRow, OnlineStore, open_online_store, status
from ml_platform.features.registry import FEATURE_TYPES, FeatureSpec, FeatureTable, Registry, write_json_atomic
from ml_platform.lake.paths import catalog_dir, check_id
from ml_platform.lake.reader import UnsupportedTable
from ml_platform.lake.spark import get_spark
from ml_platform.locations import normalize

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession
    from upath import UPath


@dataclass(frozen=True)
class FeatureLookup:
    """Which features of which table to join, and the entity columns that match its primary keys."""

    table_name: str
    lookup_key: Sequence[str] | str | None = None  # default: the table's primary key names
    feature_names: Sequence[str] | None = None  # default: every registered feature


@dataclass
class TrainingSet:
    """A materialised training set: rows in `ml.training_sets`, metadata and lineage in the catalog."""

    store: FeatureStore
    training_set_id: str
    metadata: dict[str, Any] = field(repr=False)

    @property
    def lineage(self) -> dict[str, int]:
        """Feature table -> the Delta version this training set read."""
        return dict(self.metadata["lineage"])

    @property
    def feature_names(self) -> list[str]:
        return list(self.metadata["feature_names"])

    @property
    def label(self) -> str | None:
        return self.metadata["label"]

    def load_df(self) -> DataFrame:
        from pyspark.sql import functions as F

        df = (
            self.store.spark.read.format("delta")
            .option("versionAsOf", self.metadata["table_version"])
            .load(self.store.path(TRAINING_SETS))
            .where(F.col("training_set_id") == self.training_set_id)
        )
        return df.select(*self.metadata["columns"])

    def to_arrow(self, columns: Sequence[str] | None = None) -> pa.Table:
        """The stored rows as Arrow, read from the lake's files without a JVM."""
        from ml_platform.lake.delta_log import read_table, snapshot

        snap = snapshot(self.store.path(TRAINING_SETS), int(self.metadata["table_version"]))
        if snap is None:
            raise FeatureStoreError(f"training set {self.training_set_id}: {TRAINING_SETS} does not exist")
        return read_table(
            snap, where={"training_set_id": {self.training_set_id}}, columns=list(columns or self.metadata["columns"])
        )

    def to_pandas(self) -> Any:
        """The stored rows as pandas, from the lake's files (timestamps as naive UTC, as Spark's
        `toPandas` gives them)."""
        df = self.to_arrow().to_pandas()
        for col in df.columns:
            if isinstance(df[col].dtype, pd_datetime_tz()):
                df[col] = df[col].dt.tz_convert("UTC").dt.tz_localize(None)
        return df


class FeatureStore:
    def __init__(
        self, lake_uri: str | None = None, *, settings: Settings | None = None, spark: SparkSession | None = None
    ) -> None:
        s = settings or get_settings()
        if lake_uri is not None:
            s = s.model_copy(update={"lake_uri": normalize(lake_uri, bool(s.azure_emulator_endpoint))})
        self.settings = s
        self.registry = Registry(catalog_dir(s))
        self._spark = spark
        self._online: OnlineStore | None = None
        self.offline = OfflineStore(s, self.registry, lambda: self.spark)

    # ---------------------------------------------------------------- plumbing
    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            self._spark = get_spark("feature-store", self.settings)
        return self._spark

    @property
    def online(self) -> OnlineStore:
        if self._online is None:
            self._online = open_online_store(self.settings)
        return self._online

    def path(self, name: str) -> str:
        return self.offline.path(name)

    def _to_spark(self, df: Any) -> DataFrame:
        from pyspark.sql import DataFrame as SparkDataFrame

        return df if isinstance(df, SparkDataFrame) else self.spark.createDataFrame(df)

    def table_version(self, name: str) -> int:
        return self.offline.table_version(name)

    # ---------------------------------------------------------------- registry
    def get_table(self, name: str) -> FeatureTable:
        return self.registry.get(name)

    def list_tables(self) -> list[FeatureTable]:
        return self.registry.list()

    def register_spec(self, table: FeatureTable) -> bool:
        """Record (or update) a table's spec without writing data; the data-plane job uses this."""
        return self.registry.put(table)

    def register_table(
        self,
        name: str,
        df: Any,
        primary_keys: Sequence[str],
        timestamp_key: str,
        ttl: timedelta | None = None,
        description: str = "",
        owner: str = "",
        feature_descriptions: dict[str, str] | None = None,
        partition_by: Sequence[str] = (),
    ) -> FeatureTable:
        """Create feature table `name` from `df`, or MERGE `df` into it on primary keys + timestamp key."""
        from pyspark.sql import functions as F

        sdf = self._to_spark(df)
        needed = [*primary_keys, timestamp_key, *partition_by]
        missing = [c for c in needed if c not in sdf.columns]
        if missing:
            raise FeatureStoreError(f"{name}: column(s) {missing} not in the frame (columns: {sdf.columns})")
        ts_type = sdf.schema[timestamp_key].dataType.simpleString()
        if ts_type not in ("timestamp", "date", "timestamp_ntz"):
            raise FeatureStoreError(f"{name}: timestamp_key {timestamp_key!r} is {ts_type}, not a timestamp")
        sdf = sdf.withColumn(timestamp_key, F.col(timestamp_key).cast("timestamp"))
        specs = []
        for f in sdf.schema.fields:
            if f.name in needed:
                continue
            dtype = f.dataType.simpleString().split("(")[0]
            if dtype not in FEATURE_TYPES:
                raise FeatureStoreError(
                    f"{name}: feature {f.name!r} has type {dtype}; supported: {sorted(FEATURE_TYPES)}"
                )
            specs.append(FeatureSpec(f.name, dtype, (feature_descriptions or {}).get(f.name, "")))
        spec = FeatureTable(
            name=name,
            primary_keys=tuple(primary_keys),
            timestamp_key=timestamp_key,
            features=tuple(specs),
            description=description,
            owner=owner,
            ttl_seconds=ttl.total_seconds() if ttl else None,
            partition_by=tuple(partition_by),
        )
        key = [*primary_keys, timestamp_key]
        dup = sdf.groupBy(*key).count().where("count > 1").limit(1).collect()
        if dup:
            raise FeatureStoreError(
                f"{name}: the frame has several rows for {dict(zip(key, dup[0][:-1]))}; rows must be unique on {key}"
            )
        self.offline.write_table(spec, sdf)
        self.registry.put(spec)
        return spec

    def read_table(self, name: str, as_of_version: int | None = None) -> DataFrame:
        return self.offline.read_table(name, as_of_version)

    def describe(self, name: str, now: datetime | None = None) -> dict[str, Any]:
        """Spec, Delta version, rows, latest snapshot and freshness, from the Delta log (no Spark)."""
        return self.offline.describe(name, now)

    def latest_keys(self, name: str, limit: int = 10) -> list[str]:
        """The first `limit` primary keys (sorted) of the table's newest partition, from the lake (no Spark)."""
        return self.offline.latest_keys(name, limit)

    # ---------------------------------------------------------------- training sets

    def create_training_set(
        self,
        entity_df: Any,
        feature_lookups: Sequence[FeatureLookup],
        timestamp_key: str = "event_timestamp",
        label: str | None = None,
        as_of_known_time: bool = False,
        training_set_id: str | None = None,
        engine: Engine | None = None,
    ) -> TrainingSet:
        """Point-in-time join of `entity_df` with the lookups, materialised under a training_set_id.

        One output row per entity row (duplicates included), every entity column kept, then the
        features. Re-using a training_set_id replaces that training set (idempotent task retries).
        `entity_df`: a Spark, pandas or Arrow frame. `engine` (default: `training_set_engine`) runs
        the join and the write: Spark, or the embedded engine (DuckDB, no JVM; with `auto` it
        falls back to Spark for a table it cannot read). The metadata records the engine.
        """
        if not feature_lookups:
            raise FeatureStoreError("no feature lookups given")
        lookups = list(feature_lookups)
        chosen = engine or self.training_set_engine(feature_lookups)
        args = (self.offline, entity_df, lookups, timestamp_key, label, as_of_known_time, training_set_id)
        try:
            made = materialize_training_set(chosen.using(SparkEngine(spark=self._spark)), *args)
        except UnsupportedTable as e:  # a table the embedded engine cannot read
            if not chosen.reason.startswith("auto"):
                raise
            chosen = SparkEngine(f"auto: {e}", self._spark)
            made = materialize_training_set(chosen, *args)
        meta = self._ts_metadata(made, timestamp_key, label, as_of_known_time, feature_lookups)
        meta.update(table_version=made.table_version, engine=chosen.to_json(), rows=made.rows)
        write_json_atomic(self._ts_meta_path(made.training_set_id), meta)
        return TrainingSet(self, made.training_set_id, meta)

    def training_set_engine(self, feature_lookups: Sequence[FeatureLookup]) -> Engine:
        """The engine of a training set over `feature_lookups` (`engines.choose_engine`)."""
        tables = [self.path(lk.table_name) for lk in feature_lookups]
        return choose_engine("training_sets", tables, self.settings)

    def _ts_metadata(
        self,
        made: MaterializedTrainingSet,
        timestamp_key: str,
        label: str | None,
        as_of_known_time: bool,
        feature_lookups: Sequence[FeatureLookup],
    ) -> dict[str, Any]:
        return {
            "training_set_id": made.training_set_id,
            "created_at": datetime.now(timezone.utc).isoformat(),
            "entity_columns": list(made.entity_columns),
            "columns": list(made.columns),
            "timestamp_key": timestamp_key,
            "label": label,
            "feature_names": list(made.feature_names),
            "as_of_known_time": as_of_known_time,
            "lookups": [
                {
                    "table_name": lk.table_name,
                    "lookup_key": [lk.lookup_key]
                    if isinstance(lk.lookup_key, str)
                    else (list(lk.lookup_key) if lk.lookup_key else None),
                    "feature_names": list(lk.feature_names) if lk.feature_names else None,
                }
                for lk in feature_lookups
            ],
            "lineage": made.lineage,
        }

    def _ts_meta_path(self, training_set_id: str) -> Path | UPath:
        return catalog_dir(self.settings) / "training_sets" / f"{check_id(training_set_id, 'training_set_id')}.json"

    def get_training_set(self, training_set_id: str) -> TrainingSet:
        import json

        p = self._ts_meta_path(training_set_id)
        if not p.exists():
            raise FeatureStoreError(f"no training set {training_set_id!r} in {p.parent}")
        return TrainingSet(self, training_set_id, json.loads(p.read_text()))

    def list_training_sets(self) -> list[dict[str, Any]]:
        import json

        root = catalog_dir(self.settings) / "training_sets"
        files: list[Any] = sorted(root.glob("*.json"), key=str) if root.is_dir() else []
        return [json.loads(p.read_text()) for p in files]

    def rebuild_training_set(self, training_set_id: str, engine: Engine | None = None) -> pa.Table:
        """Recompute a training set from its stored entity rows and the Delta versions in its lineage,
        as Arrow, on `engine` (default: the training set's engine choice over its lookups)."""
        ts = self.get_training_set(training_set_id)
        chosen = engine or self.training_set_engine(lookups_of(ts.metadata))
        return rebuild_training_frame(chosen.using(SparkEngine(spark=self._spark)), self.offline, ts.metadata)

    # ---------------------------------------------------------------- online store
    def publish_online(self, name: str, version: int | None = None, engine: Engine | None = None) -> dict[str, Any]:
        """Latest row per key of `name` (at `version`, default current) into the online store.

        Idempotent: the publish is tagged with the Delta version; the same version is not
        written twice. Readers switch from the old to the new version at once. Ties on the
        timestamp go to the row written last (row tracking's commit version, then row id).
        `engine` (default: `choose_engine("features", ...)` over the table) reads the rows with
        Spark or with the embedded engine (DuckDB over the version's files, no JVM); both
        publish the same rows.
        """
        spec = self.registry.get(name)
        v = self.table_version(name) if version is None else version
        tag = f"v{v}"
        cur = self.online.current(name)
        if cur is not None and cur.get("tag") == tag:
            return {"table": name, "tag": tag, "rows": cur["rows"], "skipped": True}
        chosen = (engine or self.publish_engine(name)).using(SparkEngine(spark=self._spark))
        res = self.online.publish(spec, latest_rows(chosen, self.offline, spec, v), tag)
        return {"table": name, "tag": res.tag, "rows": res.rows, "skipped": res.skipped, "engine": chosen.to_json()}

    def publish_engine(self, name: str) -> Engine:
        """The engine that reads `name` for `publish_online` (kind `features`, `engines.choose_engine`)."""
        self.registry.get(name)  # an unknown table is named before any engine is chosen
        return choose_engine("features", [self.path(name)], self.settings)

    def get_online_features(self, name: str, keys: Sequence[Any]) -> list[OnlineRow]:
        """Values (registered order) and feature_timestamp per key; unknown keys have found=False."""
        return self.online.get(self.registry.get(name), list(keys))

    def online_status(self, name: str, now: datetime | None = None) -> dict[str, Any]:
        return status(self.online, self.registry.get(name), now or datetime.now(timezone.utc))

    def check_skew(self, name: str, sample: int = 100, seed: int = 0, engine: Engine | None = None) -> dict[str, Any]:
        """Compare online values with the offline rows they came from, for a sample of keys.

        The offline side is the table at the Delta version the live publish was made from, row
        (key, feature_timestamp) as stored online. `engine` (default: as `publish_engine`) reads
        it with Spark or with the embedded engine (no JVM); the sample is the `sample` keys first
        in the engine's hash of (key, `seed`), so it is stable for one engine and seed. Returns
        counts, the first mismatches and the engine.
        """
        spec = self.registry.get(name)
        cur = self.online.current(name)
        if cur is None:
            raise FeatureStoreError(
                f"{name} has never been published online; run `ml-platform features publish {name}`"
            )
        version = int(str(cur["tag"]).removeprefix("v"))
        chosen = (engine or self.publish_engine(name)).using(SparkEngine(spark=self._spark))
        keys, candidates = skew_sample(chosen, self.offline, spec, version, sample, seed)
        lookup = [k[0] if len(k) == 1 else k for k in keys]
        online = self.get_online_features(name, lookup)
        nk = len(spec.primary_keys)
        by_key = {
            (tuple(r[:nk]), _utc_naive(r[nk])): dict(zip(spec.feature_names, map(_utc_naive, r[nk + 1 :])))
            for r in candidates
        }
        mismatches: list[dict[str, Any]] = []
        for key, got in zip(keys, online):
            if not got.found or got.feature_timestamp is None:
                mismatches.append({"key": key, "problem": "missing online"})
                continue
            off = by_key.get((key, _utc_naive(got.feature_timestamp)))
            if off is None:
                mismatches.append({"key": key, "problem": f"no offline row at {got.feature_timestamp}"})
                continue
            diff = {n: (off[n], got.values[n]) for n in spec.feature_names if not _same(off[n], got.values[n])}
            if diff:
                mismatches.append({"key": key, "problem": "values differ", "columns": diff})
        return {
            "table": name,
            "version": version,
            "checked": len(lookup),
            "mismatches": len(mismatches),
            "examples": mismatches[:5],
            "engine": chosen.to_json(),
        }


def _utc_naive(t: Any) -> Any:
    """A timestamp as naive UTC (Spark collects naive UTC here; DuckDB and the online store give aware)."""
    if isinstance(t, datetime) and t.tzinfo is not None:
        return t.astimezone(timezone.utc).replace(tzinfo=None)
    return t


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a.replace(tzinfo=None) == b.astimezone(timezone.utc).replace(tzinfo=None) if b.tzinfo else a == b
    return a == b


def pd_datetime_tz() -> type:
    import pandas as pd

    return pd.DatetimeTZDtype
