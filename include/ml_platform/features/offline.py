"""The offline store: feature tables and training sets as Delta tables under the lake root.

Spark reads and writes the data (MERGE into a feature table, the point-in-time join, one
`ml.training_sets` partition per training set); delta-rs reads the metadata (`describe`,
`latest_keys`, no Spark). Specs live in the registry (`registry.py`); `store.FeatureStore` is the
facade users call, which validates the frames and keeps the training sets' metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ml_platform.config import Settings
from ml_platform.errors import MlPlatformError
from ml_platform.features.pit import pit_join
from ml_platform.features.registry import FeatureTable, Registry
from ml_platform.lake.delta_sql import history, is_delta, merge_into
from ml_platform.lake.paths import FEATURE_TABLE_PROPERTIES, check_id, table_path
from ml_platform.lake.reader import (
    add_actions,
    delta_table,
    read_newest_partition,
    table_summary,
)

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from ml_platform.features.store import FeatureLookup

TRAINING_SETS = "ml.training_sets"


class FeatureStoreError(MlPlatformError):
    """A feature-store request that cannot be served as asked (bad frame, unknown id, ...)."""


def lookup_columns(lookup: FeatureLookup, spec: FeatureTable) -> tuple[list[str], list[str]]:
    """The entity columns matching the table's primary keys, and the features to join."""
    keys = [lookup.lookup_key] if isinstance(lookup.lookup_key, str) else list(lookup.lookup_key or spec.primary_keys)
    names = list(lookup.feature_names or spec.feature_names)
    unknown = sorted(set(names) - set(spec.feature_names))
    if unknown:
        raise FeatureStoreError(f"{spec.name} has no feature(s) {unknown}; it has {spec.feature_names}")
    return keys, names


class OfflineStore:
    """Feature tables and training sets on Delta; `spark` builds (or reuses) the session when needed."""

    def __init__(self, settings: Settings, registry: Registry, spark: Callable[[], SparkSession]) -> None:
        self.settings = settings
        self.registry = registry
        self._spark = spark

    @property
    def spark(self) -> SparkSession:
        return self._spark()

    def path(self, name: str) -> str:
        return table_path(name, self.settings)

    def table_version(self, name: str) -> int:
        """The table's newest Delta version, from its log's file names (no JVM)."""
        from ml_platform.lake.delta_log import latest_version

        version = latest_version(self.path(name))
        if version is None:
            raise FeatureStoreError(f"{name} has no Delta table at {self.path(name)}")
        return version

    def write_table(self, spec: FeatureTable, sdf: DataFrame) -> None:
        """Create the table from `sdf`, or MERGE `sdf` into it on its primary keys + timestamp key."""
        name, partition_by = spec.name, spec.partition_by
        key = [*spec.primary_keys, spec.timestamp_key]
        path = self.path(name)
        if is_delta(path):
            try:
                old = self.registry.get(name)
            except MlPlatformError:
                old = None
            if old is not None and (old.primary_keys, old.timestamp_key) != (spec.primary_keys, spec.timestamp_key):
                raise FeatureStoreError(
                    f"{name} is registered with keys {list(old.primary_keys)} + "
                    f"{old.timestamp_key!r}; cannot change them to {key}"
                )
            cond = " AND ".join(f"t.`{c}` = s.`{c}`" for c in key)
            merge_into(self.spark, path, sdf, cond, update=True)
        else:
            writer = sdf.write.format("delta").options(**FEATURE_TABLE_PROPERTIES)
            if partition_by:
                writer = writer.partitionBy(*partition_by)
            writer.save(path)

    def write_training_set(self, out: DataFrame, tsid: str) -> int:
        """Replace training set `tsid`'s partition of `ml.training_sets` with `out`; the table version written."""
        from pyspark.sql import functions as F

        path = self.path(TRAINING_SETS)
        tsid = check_id(tsid, "training_set_id")  # it goes into the replaceWhere literal below
        writer = (
            out.withColumn("training_set_id", F.lit(tsid))
            .write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", f"training_set_id = '{tsid}'")
            .option("mergeSchema", "true")
        )

        if not is_delta(path):
            writer = writer.partitionBy("training_set_id").options(**FEATURE_TABLE_PROPERTIES)
        writer.save(path)
        return self.table_version(TRAINING_SETS)

    def training_set_rows(self, tsid: str, version: int) -> int:
        from pyspark.sql import functions as F

        path = self.path(TRAINING_SETS)
        return (
            self.spark.read.format("delta")
            .option("versionAsOf", version)
            .load(path)
            .where(F.col("training_set_id") == tsid)
            .count()
        )

    def read_table(self, name: str, as_of_version: int | None = None) -> DataFrame:
        self.registry.get(name)
        reader = self.spark.read.format("delta")
        if as_of_version is not None:
            reader = reader.option("versionAsOf", as_of_version)
        return reader.load(self.path(name))

    def describe(self, name: str, now: datetime | None = None) -> dict[str, Any]:
        """Spec, Delta version, rows, latest snapshot and freshness, from the Delta log (no Spark)."""
        spec = self.registry.get(name)
        path = self.path(name)
        summary = table_summary(path)
        out: dict[str, Any] = {"spec": spec.to_json(), **summary}
        if summary.get("exists"):
            actions = add_actions(delta_table(path))
            maxes = [v for v in actions.get(f"max.{spec.timestamp_key}", []) if v is not None]
            if maxes:
                latest = max(maxes)
                latest = latest if latest.tzinfo else latest.replace(tzinfo=timezone.utc)
                now = now or datetime.now(timezone.utc)
                out["latest_feature_timestamp"] = latest.isoformat()
                out["freshness_hours"] = round((now - latest).total_seconds() / 3600, 2)
                if spec.ttl is not None:
                    out["stale"] = now - latest > spec.ttl
            for p in spec.partition_by:
                vals = sorted({str(v) for v in actions.get(f"partition.{p}", []) if v is not None})
                if vals:
                    out[f"latest_{p}"] = vals[-1]
        return out

    def latest_keys(self, name: str, limit: int = 10) -> list[str]:
        """The first `limit` primary keys (sorted) of the table's newest partition, from the lake (no Spark)."""
        spec = self.registry.get(name)
        path = self.path(name)
        part = spec.partition_by[0] if spec.partition_by else None
        if part is None:
            raise MlPlatformError(f"{name} has no partition column to find its newest rows by")
        newest = read_newest_partition(path, part, list(spec.primary_keys))
        if newest is None:
            return []
        keys = newest[1]
        return sorted("|".join(map(str, row)) for row in keys.itertuples(index=False))[:limit]

    def feature_frame(self, spec: FeatureTable, version: int) -> tuple[DataFrame, list[str]]:
        """The table at `version` plus the tie-break columns it offers (row tracking)."""
        df = self.spark.read.format("delta").option("versionAsOf", version).load(self.path(spec.name))
        try:
            df = df.select(
                "*",
                df["_metadata.row_commit_version"].alias("_row_commit_version"),
                df["_metadata.row_id"].alias("_row_id"),
            )
            return df, ["_row_commit_version", "_row_id"]
        except Exception:  # a table created without row tracking: ties broken by value
            return df, []

    def commit_times(self, name: str, max_version: int) -> list[tuple[int, datetime]]:
        rows = history(self.spark, self.path(name))
        return sorted((int(r["version"]), r["timestamp"]) for r in rows if int(r["version"]) <= max_version)

    def join_lookup(
        self,
        entity: DataFrame,
        lookup: FeatureLookup,
        spec: FeatureTable,
        version: int,
        timestamp_key: str,
        as_of_known_time: bool,
    ) -> DataFrame:
        from pyspark.sql import functions as F

        keys, names = lookup_columns(lookup, spec)

        def join(ent: DataFrame, v: int) -> DataFrame:
            feats, tb = self.feature_frame(spec, v)
            return pit_join(
                ent,
                feats,
                entity_keys=keys,
                feature_keys=list(spec.primary_keys),
                event_ts=timestamp_key,
                feature_ts=spec.timestamp_key,
                feature_names=names,
                ttl=spec.ttl,
                tiebreak=tb,
            )

        if not as_of_known_time:
            return join(entity, version)
        # Each distinct event time reads the latest version committed at or before it (in-commit
        # timestamps), capped at `version` so that a rebuild from lineage sees the same history.
        commits = self.commit_times(spec.name, version)
        bounds = [(v, t, commits[i + 1][1] if i + 1 < len(commits) else None) for i, (v, t) in enumerate(commits)]
        hist = self.spark.createDataFrame(bounds, "_v long, _from timestamp, _to timestamp")
        ev = F.col(timestamp_key).cast("timestamp")
        tagged = entity.join(
            F.broadcast(hist), (ev >= hist["_from"]) & (hist["_to"].isNull() | (ev < hist["_to"])), "left"
        )
        parts = [
            tagged.where(F.col("_v").isNull())
            .drop("_v", "_from", "_to")
            .select("*", *[F.lit(None).cast(spec.features[spec.feature_names.index(n)].dtype).alias(n) for n in names])
        ]
        used = [r["_v"] for r in tagged.where(F.col("_v").isNotNull()).select("_v").distinct().collect()]
        for v in sorted(used):
            parts.append(join(tagged.where(F.col("_v") == v).drop("_v", "_from", "_to"), int(v)))
        out = parts[0]
        for p in parts[1:]:
            out = out.unionByName(p)
        return out

    def build(
        self,
        entity: DataFrame,
        lookups: list[FeatureLookup],
        timestamp_key: str,
        as_of_known_time: bool,
        lineage: dict[str, int] | None,
    ) -> tuple[DataFrame, dict[str, int], list[str]]:
        pinned = dict(lineage or {})
        names: list[str] = []
        out = entity
        for lookup in lookups:
            spec = self.registry.get(lookup.table_name)
            version = pinned.get(spec.name)
            if version is None:
                version = self.table_version(spec.name)
                pinned[spec.name] = version
            out = self.join_lookup(out, lookup, spec, version, timestamp_key, as_of_known_time)
            names += list(lookup.feature_names or spec.feature_names)
        return out, pinned, names

    # ------------------------------------------------------------ the embedded engine (no JVM)
    def build_embedded(
        self,
        entity: pa.Table,
        lookups: list[FeatureLookup],
        timestamp_key: str,
        as_of_known_time: bool,
        lineage: dict[str, int] | None,
    ) -> tuple[pa.Table, dict[str, int], list[str]]:
        """`build` in the embedded engine: the same rows, columns and lineage, as Arrow."""
        from ml_platform.lake.delta_log import snapshot

        pinned = dict(lineage or {})
        names: list[str] = []
        out = entity
        for lookup in lookups:
            spec = self.registry.get(lookup.table_name)
            version = pinned.get(spec.name)
            if version is None:
                snap = snapshot(self.path(spec.name))
                if snap is None:
                    raise FeatureStoreError(
                        f"{spec.name} is registered but has no Delta table at {self.path(spec.name)}"
                    )
                version = pinned[spec.name] = snap.version
            out = self._join_embedded(out, lookup, spec, int(version), timestamp_key, as_of_known_time)
            names += list(lookup.feature_names or spec.feature_names)
        return out, pinned, names

    def _join_embedded(
        self,
        entity: pa.Table,
        lookup: FeatureLookup,
        spec: FeatureTable,
        version: int,
        timestamp_key: str,
        as_of_known_time: bool,
    ) -> pa.Table:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from ml_platform.features.pit_embedded import pit_join_embedded
        from ml_platform.lake.delta_log import DeltaView, commit_times, snapshot

        keys, names = lookup_columns(lookup, spec)
        path = self.path(spec.name)

        def join(ent: pa.Table, v: int) -> pa.Table:
            snap = snapshot(path, v)
            tracked = snap.row_tracking  # type: ignore[union-attr]
            feats = DeltaView(snap, None, [*spec.primary_keys, spec.timestamp_key, *names], tracked)  # type: ignore[arg-type]
            return pit_join_embedded(
                ent,
                feats,
                entity_keys=keys,
                feature_keys=list(spec.primary_keys),
                event_ts=timestamp_key,
                feature_ts=spec.timestamp_key,
                feature_names=names,
                ttl=spec.ttl,
                tiebreak=["_row_commit_version", "_row_id"] if tracked else None,
            )

        if not as_of_known_time:
            return join(entity, version)
        # each event time reads the latest version committed at or before it, capped at `version`
        commits = commit_times(snapshot(path, version))  # type: ignore[arg-type]
        times = np.array([t * 1000 for _, t in commits], dtype="int64")  # microseconds
        ev = pc.cast(pc.cast(entity.column(timestamp_key), pa.timestamp("us", tz="UTC")), pa.int64())
        ev_np = ev.to_numpy(zero_copy_only=False)
        valid = ~np.asarray(pc.is_null(ev).to_numpy(zero_copy_only=False), dtype=bool)
        slot = np.where(valid, np.searchsorted(times, np.where(valid, ev_np, 0), side="right") - 1, -1)
        types = {f.name: f.dtype for f in spec.features}
        none = entity.filter(pa.array(slot < 0))
        for n in names:
            none = none.append_column(n, pa.nulls(none.num_rows, _arrow_type_of(types[n])))
        parts = [none]
        for i in sorted(set(slot[slot >= 0].tolist())):
            parts.append(join(entity.filter(pa.array(slot == i)), commits[i][0]))
        return pa.concat_tables([p.cast(parts[-1].schema) for p in parts]) if len(parts) > 1 else parts[0]

    def write_training_set_embedded(self, out: pa.Table, tsid: str, engine_info: str) -> int:
        """`write_training_set` in the embedded engine; the table version written."""
        import pyarrow as pa

        from ml_platform.lake.delta_log import replace_partitions

        tsid = check_id(tsid, "training_set_id")
        rows = out.append_column("training_set_id", pa.array([tsid] * out.num_rows, pa.string()))
        return replace_partitions(
            self.path(TRAINING_SETS),
            rows,
            ["training_set_id"],
            replace={"training_set_id": [tsid]},
            properties=FEATURE_TABLE_PROPERTIES,
            engine_info=engine_info,
        )


def _arrow_type_of(dtype: str) -> pa.DataType:
    """The Arrow type of a registered feature type (registry.FEATURE_TYPES)."""
    import pyarrow as pa

    return {
        "double": pa.float64(),
        "float": pa.float32(),
        "bigint": pa.int64(),
        "int": pa.int32(),
        "smallint": pa.int16(),
        "tinyint": pa.int8(),
        "boolean": pa.bool_(),
        "string": pa.string(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }.get(dtype) or _unsupported(dtype)


def _unsupported(dtype: str) -> pa.DataType:
    from ml_platform.lake.reader import UnsupportedTable

    raise UnsupportedTable(f"feature type {dtype} is not joined by the embedded engine: use Spark")
