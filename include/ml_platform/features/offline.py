"""The offline store: feature tables and training sets as Delta tables under the lake root.

Spark MERGEs frames into feature tables; the point-in-time training set, its rebuild, the rows an
online publish reads and the skew check's sample are engine operations (`materialize_training_set`,
`rebuild_training_frame`, `latest_rows`, `skew_sample`), on Spark or on the embedded engine (DuckDB
over the version's files, no JVM), one `ml.training_sets` partition per training set. The Delta log
reader gives the metadata (`describe`, `latest_keys`, no Spark). Specs live in the registry
(`registry.py`); `store.FeatureStore` is the facade users call, which validates the requests and
keeps the training sets' metadata.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ml_platform.config import Settings
from ml_platform.engines import EmbeddedEngine, Engine, SparkEngine, operation
from ml_platform.errors import MlPlatformError
from ml_platform.features.online import key_string
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
    from ml_platform.lake.delta_log import Snapshot

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

    def on(self, engine: SparkEngine) -> OfflineStore:
        """This store on the Spark engine's session."""
        return OfflineStore(self.settings, self.registry, lambda: engine.spark)

    def to_spark(self, frame: Any) -> DataFrame:
        """A Spark, pandas or Arrow frame as a Spark DataFrame of this store's session."""
        from pyspark.sql import DataFrame as SparkDataFrame

        return frame if isinstance(frame, SparkDataFrame) else self.spark.createDataFrame(frame)

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
    def build_arrow(
        self,
        entity: pa.Table,
        lookups: list[FeatureLookup],
        timestamp_key: str,
        as_of_known_time: bool,
        lineage: dict[str, int] | None,
    ) -> tuple[pa.Table, dict[str, int], list[str]]:
        """`build` on the embedded engine: the same rows, columns and lineage, as Arrow."""
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
            out = self._join_arrow(out, lookup, spec, int(version), timestamp_key, as_of_known_time)
            names += list(lookup.feature_names or spec.feature_names)
        return out, pinned, names

    def _join_arrow(
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

    def write_training_set_arrow(self, out: pa.Table, tsid: str, engine_info: str) -> int:
        """`write_training_set` on the embedded engine (the platform's Delta writer); the table version written."""
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


@dataclass(frozen=True)
class MaterializedTrainingSet:
    """What `materialize_training_set` wrote: the id, the columns, the lineage and the Delta version."""

    training_set_id: str
    entity_columns: list[str]
    columns: list[str]
    feature_names: list[str]
    lineage: dict[str, int]
    table_version: int
    rows: int


def check_entity(columns: Sequence[str], timestamp_key: str, label: str | None, tsid: str | None) -> str:
    """The training set's id (`tsid`, checked, or a new one) once the entity columns are usable."""
    for col, what in ((timestamp_key, "timestamp_key"), (label, "label")):
        if col is not None and col not in columns:
            raise FeatureStoreError(f"entity frame has no {what} column {col!r} (columns: {list(columns)})")
    if "training_set_id" in columns:
        raise FeatureStoreError("entity frame must not have a column named training_set_id")
    return check_id(tsid, "training_set_id") if tsid else uuid.uuid4().hex[:16]


@operation
def materialize_training_set(
    engine: Engine,
    offline: OfflineStore,
    entity: Any,
    lookups: list[FeatureLookup],
    timestamp_key: str,
    label: str | None,
    as_of_known_time: bool,
    training_set_id: str | None,
) -> MaterializedTrainingSet:
    """Point-in-time join of `entity` (a Spark, pandas or Arrow frame) with `lookups` at each table's
    newest version, written as training set `training_set_id` (replaced when it exists) of
    `ml.training_sets`. One output row per entity row, every entity column kept, then the features."""


@materialize_training_set.register(SparkEngine)
def _materialize_spark(
    engine: SparkEngine,
    offline: OfflineStore,
    entity: Any,
    lookups: list[FeatureLookup],
    timestamp_key: str,
    label: str | None,
    as_of_known_time: bool,
    training_set_id: str | None,
) -> MaterializedTrainingSet:
    store = offline.on(engine)
    frame = store.to_spark(entity)
    tsid = check_entity(frame.columns, timestamp_key, label, training_set_id)
    out, lineage, names = store.build(frame, lookups, timestamp_key, as_of_known_time, None)
    version = store.write_training_set(out, tsid)
    rows = store.training_set_rows(tsid, version)
    return MaterializedTrainingSet(tsid, list(frame.columns), list(out.columns), names, lineage, version, rows)


@materialize_training_set.register(EmbeddedEngine)
def _materialize_embedded(
    engine: EmbeddedEngine,
    offline: OfflineStore,
    entity: Any,
    lookups: list[FeatureLookup],
    timestamp_key: str,
    label: str | None,
    as_of_known_time: bool,
    training_set_id: str | None,
) -> MaterializedTrainingSet:
    frame = to_arrow(entity)
    tsid = check_entity(frame.column_names, timestamp_key, label, training_set_id)
    out, lineage, names = offline.build_arrow(frame, lookups, timestamp_key, as_of_known_time, None)
    version = offline.write_training_set_arrow(out, tsid, f"ml-platform embedded (DuckDB): {lineage}")
    return MaterializedTrainingSet(tsid, frame.column_names, out.column_names, names, lineage, version, out.num_rows)


@operation
def rebuild_training_frame(engine: Engine, offline: OfflineStore, metadata: dict[str, Any]) -> pa.Table:
    """A stored training set (its `metadata`) recomputed from its entity rows and the Delta versions of
    its lineage, as Arrow (timestamps UTC): the rows it was written with."""


def lookups_of(metadata: dict[str, Any]) -> list[FeatureLookup]:
    from ml_platform.features.store import FeatureLookup

    return [FeatureLookup(lk["table_name"], lk["lookup_key"], lk["feature_names"]) for lk in metadata["lookups"]]


@rebuild_training_frame.register(SparkEngine)
def _rebuild_spark(engine: SparkEngine, offline: OfflineStore, metadata: dict[str, Any]) -> pa.Table:
    from pyspark.sql import functions as F

    store = offline.on(engine)
    entity = (
        store.spark.read.format("delta")
        .option("versionAsOf", metadata["table_version"])
        .load(store.path(TRAINING_SETS))
        .where(F.col("training_set_id") == metadata["training_set_id"])
        .select(*metadata["entity_columns"])
    )
    out, _, _ = store.build(
        entity, lookups_of(metadata), metadata["timestamp_key"], metadata["as_of_known_time"], metadata["lineage"]
    )
    return to_arrow(out.select(*metadata["columns"]))


@rebuild_training_frame.register(EmbeddedEngine)
def _rebuild_embedded(engine: EmbeddedEngine, offline: OfflineStore, metadata: dict[str, Any]) -> pa.Table:
    from ml_platform.lake.delta_log import read_table

    snap = _snapshot_at(offline, TRAINING_SETS, int(metadata["table_version"]))
    entity = read_table(
        snap, where={"training_set_id": {metadata["training_set_id"]}}, columns=list(metadata["entity_columns"])
    )
    out, _, _ = offline.build_arrow(
        entity, lookups_of(metadata), metadata["timestamp_key"], metadata["as_of_known_time"], metadata["lineage"]
    )
    return out.select(metadata["columns"])


OnlineRowIn = tuple[str, Any, list[Any]]  # (key string, feature timestamp, feature values)


@operation
def latest_rows(engine: Engine, offline: OfflineStore, spec: FeatureTable, version: int) -> Iterator[OnlineRowIn]:
    """The newest row per primary key of `spec`'s table at `version`, as the online store takes them.
    Ties on the timestamp go to the row written last (row tracking's commit version, then row id)."""


def _online_row(row: Sequence[Any], nk: int) -> OnlineRowIn:
    """(keys..., timestamp, features...) -> the online store's (key string, timestamp, values)."""
    return key_string(row[0] if nk == 1 else tuple(row[:nk])), row[nk], list(row[nk + 1 :])


@latest_rows.register(SparkEngine)
def _latest_rows_spark(
    engine: SparkEngine, offline: OfflineStore, spec: FeatureTable, version: int
) -> Iterator[OnlineRowIn]:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    feats, tb = offline.on(engine).feature_frame(spec, version)
    order = [F.col(spec.timestamp_key).desc(), *[F.col(c).desc() for c in tb]]
    w = Window.partitionBy(*spec.primary_keys).orderBy(*order)
    latest = (
        feats.withColumn("_rn", F.row_number().over(w))
        .where("_rn = 1")
        .select(*spec.primary_keys, spec.timestamp_key, *spec.feature_names)
    )
    nk = len(spec.primary_keys)
    for r in latest.toLocalIterator(prefetchPartitions=True):
        yield _online_row(r, nk)


@latest_rows.register(EmbeddedEngine)
def _latest_rows_embedded(
    engine: EmbeddedEngine, offline: OfflineStore, spec: FeatureTable, version: int
) -> Iterator[OnlineRowIn]:
    import duckdb

    from ml_platform.lake.delta_log import DeltaView

    snap = _snapshot_at(offline, spec.name, version)
    columns = [*spec.primary_keys, spec.timestamp_key, *spec.feature_names]
    tb = ["_row_commit_version", "_row_id"] if snap.row_tracking else []
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        DeltaView(snap, columns=columns, row_tracking=bool(tb)).register_in(con, "feats")
        order = ", ".join(f"{_quote(c)} DESC NULLS LAST" for c in [spec.timestamp_key, *tb])  # as Spark's desc()
        cur = con.execute(
            f"SELECT {', '.join(map(_quote, columns))} FROM feats QUALIFY row_number() OVER "
            f"(PARTITION BY {', '.join(map(_quote, spec.primary_keys))} ORDER BY {order}) = 1"
        )
        nk = len(spec.primary_keys)
        while batch := cur.fetchmany(5000):
            for r in batch:
                yield _online_row(r, nk)
    finally:
        con.close()


@operation
def skew_sample(
    engine: Engine, offline: OfflineStore, spec: FeatureTable, version: int, sample: int, seed: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The `sample` primary keys first in the engine's hash of (key, `seed`) at `version` (stable for
    one engine and seed), and their offline rows (keys, timestamp, features)."""


@skew_sample.register(SparkEngine)
def _skew_sample_spark(
    engine: SparkEngine, offline: OfflineStore, spec: FeatureTable, version: int, sample: int, seed: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    from pyspark.sql import functions as F

    table = engine.spark.read.format("delta").option("versionAsOf", version).load(offline.path(spec.name))
    keys = [
        tuple(r)
        for r in table.select(*spec.primary_keys)
        .distinct()
        .orderBy(F.xxhash64(*spec.primary_keys, F.lit(seed)))
        .limit(sample)
        .collect()
    ]
    first = spec.primary_keys[0]
    rows = (
        table.where(F.col(first).isin(sorted({k[0] for k in keys})))
        .select(*spec.primary_keys, spec.timestamp_key, *spec.feature_names)
        .collect()
    )
    return keys, [tuple(r) for r in rows]


@skew_sample.register(EmbeddedEngine)
def _skew_sample_embedded(
    engine: EmbeddedEngine, offline: OfflineStore, spec: FeatureTable, version: int, sample: int, seed: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    import duckdb

    from ml_platform.lake.delta_log import DeltaView

    snap = _snapshot_at(offline, spec.name, version)
    columns = [*spec.primary_keys, spec.timestamp_key, *spec.feature_names]
    pks = ", ".join(map(_quote, spec.primary_keys))
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        DeltaView(snap, columns=columns).register_in(con, "feats")
        con.execute(
            f"CREATE TEMP TABLE sampled AS SELECT {pks} FROM (SELECT DISTINCT {pks} FROM feats) "
            f"ORDER BY hash({pks}, $seed::BIGINT), {pks} LIMIT $n",
            {"seed": seed, "n": sample},
        )
        keys = [tuple(r) for r in con.execute("SELECT * FROM sampled").fetchall()]
        rows = con.execute(
            f"SELECT {', '.join(map(_quote, columns))} FROM feats SEMI JOIN sampled USING ({pks})"
        ).fetchall()
    finally:
        con.close()
    return keys, [tuple(r) for r in rows]


def _snapshot_at(offline: OfflineStore, name: str, version: int) -> Snapshot:
    """Table `name` at `version`, for the embedded engine; `FeatureStoreError` when it does not exist."""
    from ml_platform.lake.delta_log import snapshot

    snap = snapshot(offline.path(name), version)
    if snap is None:
        raise FeatureStoreError(f"{name} has no Delta table at {offline.path(name)}")
    return snap


def _quote(name: str) -> str:
    """`name` as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def to_arrow(frame: Any) -> pa.Table:
    """A Spark, pandas or Arrow frame as Arrow, naive timestamps read as UTC (Spark's session time
    zone here) in microseconds."""
    import pyarrow as pa

    if isinstance(frame, pa.Table):
        table = frame
    elif hasattr(frame, "toArrow"):  # a Spark DataFrame
        table = frame.toArrow()
    else:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type) and (f.type.tz is None or f.type.unit != "us"):
            table = table.set_column(i, f.name, table.column(i).cast(pa.timestamp("us", tz=f.type.tz or "UTC")))
            if f.type.tz not in (None, "UTC"):
                table = table.set_column(i, f.name, table.column(i).cast(pa.timestamp("us", tz="UTC")))
    return table


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
