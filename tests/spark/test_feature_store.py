"""FeatureStore on real Delta tables: registry, training sets with lineage, known-time joins,
labels, the SQLite online store and the skew check."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from ml_platform.engines import EmbeddedEngine, SparkEngine
from ml_platform.features import FeatureLookup, FeatureStore
from ml_platform.features.registry import FeatureTableNotFound
from ml_platform.features.store import FeatureStoreError
from ml_platform.training.labels import LabelWindowNotObserved, build_churn_labels

pytestmark = pytest.mark.spark


def _feats(values: dict[str, float], day: date) -> pd.DataFrame:
    ts = datetime.combine(day + timedelta(days=1), datetime.min.time())
    return pd.DataFrame(
        {
            "customer_id": list(values),
            "feature_timestamp": [ts] * len(values),
            "snapshot_date": [day] * len(values),
            "spend": list(values.values()),
            "visits": [int(v) for v in values.values()],
        }
    )


@pytest.fixture()
def store(spark, settings):
    return FeatureStore(settings=settings, spark=spark)


def test_register_describe_and_merge(store):
    spec = store.register_table(
        "features.demo",
        _feats({"a": 1.0, "b": 2.0}, date(2025, 1, 1)),
        primary_keys=["customer_id"],
        timestamp_key="feature_timestamp",
        ttl=timedelta(days=8),
        description="demo",
        partition_by=["snapshot_date"],
    )
    assert spec.feature_names == ["spend", "visits"]
    assert [t.name for t in store.list_tables()] == ["features.demo"]
    # MERGE on keys + timestamp: one row updated, one inserted
    store.register_table(
        "features.demo",
        _feats({"a": 5.0, "c": 3.0}, date(2025, 1, 1)),
        primary_keys=["customer_id"],
        timestamp_key="feature_timestamp",
        ttl=timedelta(days=8),
        partition_by=["snapshot_date"],
    )
    rows = {r["customer_id"]: r["spend"] for r in store.read_table("features.demo").collect()}
    assert rows == {"a": 5.0, "b": 2.0, "c": 3.0}
    assert store.read_table("features.demo", as_of_version=0).count() == 2
    d = store.describe("features.demo", now=datetime.fromisoformat("2025-01-03T00:00:00+00:00"))
    assert (d["version"], d["rows"], d["latest_snapshot_date"]) == (1, 3, "2025-01-01")
    assert d["freshness_hours"] == 24.0 and d["stale"] is False
    assert store.latest_keys("features.demo") == ["a", "b", "c"]  # the newest snapshot's keys, sorted
    assert store.latest_keys("features.demo", limit=1) == ["a"]
    with pytest.raises(FeatureTableNotFound, match="features.nope"):
        store.describe("features.nope")
    with pytest.raises(FeatureStoreError, match="several rows"):
        store.register_table(
            "features.demo",
            pd.concat([_feats({"a": 1.0}, date(2025, 1, 2))] * 2),
            primary_keys=["customer_id"],
            timestamp_key="feature_timestamp",
        )


def test_training_set_lineage_rebuild_and_known_time(store, spark):
    day = date(2025, 1, 1)
    store.register_table(
        "features.demo",
        _feats({"a": 1.0, "b": 2.0}, day),
        primary_keys=["customer_id"],
        timestamp_key="feature_timestamp",
        partition_by=["snapshot_date"],
    )
    time.sleep(1.5)
    between = datetime.now().replace(microsecond=0)  # after the first commit, before the backfill
    time.sleep(1.5)
    # a backfill replaces the same snapshot with different values
    (
        spark.createDataFrame(_feats({"a": 10.0, "b": 20.0}, day))
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", "snapshot_date = '2025-01-01'")
        .save(store.path("features.demo"))
    )
    entity = pd.DataFrame(
        {"customer_id": ["a", "a", "b", "x"], "event_timestamp": [between] * 4, "churned": [1, 1, 0, 0]}
    )
    lookups = [FeatureLookup("features.demo", feature_names=["spend"])]
    new = store.create_training_set(entity, lookups, label="churned")
    old = store.create_training_set(entity, lookups, label="churned", as_of_known_time=True)
    assert new.lineage == old.lineage == {"features.demo": 1}
    assert new.load_df().columns == ["customer_id", "event_timestamp", "churned", "spend"]
    assert sorted(new.to_pandas()["spend"].fillna(-1)) == [-1, 10.0, 10.0, 20.0]  # duplicates kept, x missing
    assert sorted(old.to_pandas()["spend"].fillna(-1)) == [-1, 1.0, 1.0, 2.0]
    # the lake moves on; the materialised set does not, and a rebuild from lineage matches it
    store.register_table(
        "features.demo", _feats({"a": 99.0}, day), primary_keys=["customer_id"], timestamp_key="feature_timestamp"
    )
    for ts in (new, old):
        stored = ts.to_arrow().sort_by([("customer_id", "ascending"), ("event_timestamp", "ascending")])
        for engine in (SparkEngine("test", spark), EmbeddedEngine("test")):
            rebuilt = store.rebuild_training_set(ts.training_set_id, engine)
            assert stored.num_rows == 4
            assert rebuilt.sort_by([("customer_id", "ascending"), ("event_timestamp", "ascending")]).equals(stored)
    assert sorted(new.to_pandas()["spend"].fillna(-1)) == [-1, 10.0, 10.0, 20.0]
    # delta-rs still reads tables with in-commit timestamps and row tracking
    from ml_platform.lake.reader import read_pandas

    assert sorted(read_pandas(store.path("features.demo"))["spend"]) == [20.0, 99.0]
    with pytest.raises(FeatureStoreError, match="no training set"):
        store.get_training_set("nope")


@pytest.mark.parity("training.labels.build_churn_labels")
def test_churn_labels_window_and_unobserved_cutoffs(spark):
    rows = [
        ("a", datetime(2025, 1, 1, 12)),
        ("a", datetime(2025, 1, 2, 0, 0, 0)),  # a buys right at end(c)
        ("b", datetime(2025, 1, 1, 23, 59, 59)),
        ("b", datetime(2025, 1, 12, 23, 59, 59)),  # after the window
        ("c", datetime(2025, 1, 2, 5)),  # not yet a customer at c
        ("d", datetime(2025, 1, 20)),
    ]  # data run to 2025-01-20
    silver = spark.createDataFrame(rows, "customer_id string, transaction_ts timestamp")
    got = {
        r["customer_id"]: (r["churned"], r["event_timestamp"])
        for r in build_churn_labels(SparkEngine("test", spark), [date(2025, 1, 1)], 10, silver=silver).collect()
    }
    assert got == {"a": (0, datetime(2025, 1, 2)), "b": (1, datetime(2025, 1, 2))}
    with pytest.raises(LabelWindowNotObserved, match="latest usable cutoff is 2025-01-10"):
        build_churn_labels(SparkEngine("test", spark), [date(2025, 1, 1), date(2025, 1, 11)], 10, silver=silver)
    # the embedded engine's labels: the same rows at the window's edges, the same refusal
    arrow = silver.toArrow()
    embedded = build_churn_labels(EmbeddedEngine("test"), [date(2025, 1, 1)], 10, silver=arrow).to_pylist()
    assert {r["customer_id"]: (r["churned"], r["event_timestamp"].replace(tzinfo=None)) for r in embedded} == got
    with pytest.raises(LabelWindowNotObserved, match="latest usable cutoff is 2025-01-10"):
        build_churn_labels(EmbeddedEngine("test"), [date(2025, 1, 1), date(2025, 1, 11)], 10, silver=arrow)


@pytest.mark.parity("features.offline.skew_sample")
def test_online_sqlite_publish_get_skew(store):
    store.register_table(
        "features.demo",
        _feats({"a": 1.5, "b": 2.0}, date(2025, 1, 1)),
        primary_keys=["customer_id"],
        timestamp_key="feature_timestamp",
        ttl=timedelta(days=2),
        partition_by=["snapshot_date"],
    )
    store.register_table(
        "features.demo",
        _feats({"a": 3.5}, date(2025, 1, 2)),
        primary_keys=["customer_id"],
        timestamp_key="feature_timestamp",
        ttl=timedelta(days=2),
        partition_by=["snapshot_date"],
    )
    first = store.publish_online("features.demo")
    assert {k: first[k] for k in ("table", "tag", "rows", "skipped")} == {
        "table": "features.demo",
        "tag": "v1",
        "rows": 2,
        "skipped": False,
    }
    assert first["engine"]["engine"] == "embedded"  # auto on a small local lake: no Spark read
    assert store.publish_online("features.demo")["skipped"] is True
    a, b, missing = store.get_online_features("features.demo", ["a", "b", "zz"])
    assert (
        a.found
        and a.values == {"spend": 3.5, "visits": 3}
        and a.feature_timestamp.isoformat() == "2025-01-03T00:00:00+00:00"
    )
    assert b.values["spend"] == 2.0 and not missing.found and missing.values == {}
    engines = [SparkEngine("test", store.spark), EmbeddedEngine("test")]
    assert store.check_skew("features.demo")["engine"]["engine"] == "embedded"  # auto, as the publish
    for engine in engines:
        skew = store.check_skew("features.demo", engine=engine)
        assert (skew["checked"], skew["mismatches"]) == (2, 0), engine
    # the check can fail: corrupt one online value behind the store's back
    import sqlite3

    with sqlite3.connect(store.settings.online_sqlite_path) as c:
        data = c.execute("SELECT data_table FROM publications").fetchone()[0]
        c.execute(f"UPDATE \"{data}\" SET payload = replace(payload, '3.5', '3.25') WHERE key = 'a'")
    for engine in engines:
        bad = store.check_skew("features.demo", engine=engine)
        assert bad["mismatches"] == 1 and bad["examples"][0]["columns"] == {"spend": (3.5, 3.25)}, engine
    st = store.online_status("features.demo", now=datetime.fromisoformat("2025-01-06T00:00:00+00:00"))
    assert st["rows"] == 2 and st["stale"] is True


@pytest.mark.parity("features.offline.latest_rows")
def test_both_engines_publish_the_same_online_rows_ties_to_the_last_write(store, spark, settings):
    """`publish_online` on Spark and on the embedded engine: the same latest row per key, a tie on
    the timestamp going to the row written last (a later commit, then a later row of one commit)."""

    store.register_table(
        "features.demo",
        _feats({"a": 1.0, "b": 2.0, "c": 4.0}, date(2025, 1, 1)),
        primary_keys=["customer_id"],
        timestamp_key="feature_timestamp",
        partition_by=["snapshot_date"],
    )
    store.register_table(
        "features.demo",
        _feats({"a": 3.0, "d": 0.5}, date(2025, 1, 2)),
        primary_keys=["customer_id"],
        timestamp_key="feature_timestamp",
        partition_by=["snapshot_date"],
    )
    path = store.path("features.demo")
    later = _feats({"b": 7.0}, date(2025, 1, 1))  # b at its timestamp again, one commit later
    spark.createDataFrame(later).write.format("delta").mode("append").save(path)
    same_commit = pd.concat([_feats({"c": 5.0}, date(2025, 1, 1)), _feats({"c": 6.0}, date(2025, 1, 1))])
    spark.createDataFrame(same_commit).coalesce(1).write.format("delta").mode("append").save(path)

    def published(engine: str) -> dict:
        s = settings.model_copy(update={"online_sqlite_path": settings.home / "online" / f"{engine}.db"})
        other = FeatureStore(settings=s, spark=spark)
        on = SparkEngine("test", spark) if engine == "spark" else EmbeddedEngine("test")
        res = other.publish_online("features.demo", engine=on)
        assert res["engine"]["engine"] == engine and res["rows"] == 4
        rows = other.get_online_features("features.demo", ["a", "b", "c", "d"])
        return {r.key: (r.feature_timestamp, r.values) for r in rows}

    embedded, on_spark = published("embedded"), published("spark")
    assert embedded == on_spark
    assert {k: v[1]["spend"] for k, v in embedded.items()} == {"a": 3.0, "b": 7.0, "c": 6.0, "d": 0.5}


def test_vacuum_keeps_versions_pinned_by_training_sets(store, spark, settings):
    from ml_platform.pipelines.lake_maintenance import maintain

    s = settings.model_copy(update={"vacuum_min_retention_hours": 0.0, "as_of_horizon_days": 0})
    for name in ("features.pinned", "features.unpinned"):
        store.register_table(
            name,
            _feats({"a": 1.0, "b": 2.0}, date(2025, 1, 1)),
            primary_keys=["customer_id"],
            timestamp_key="feature_timestamp",
        )
    entity = pd.DataFrame({"customer_id": ["a", "b"], "event_timestamp": [datetime(2025, 1, 5)] * 2})
    ts = store.create_training_set(entity, [FeatureLookup("features.pinned")])
    for name in ("features.pinned", "features.unpinned"):  # later versions replace every file
        spark.createDataFrame(_feats({"a": 7.0, "b": 8.0}, date(2025, 1, 1))).write.format("delta").mode(
            "overwrite"
        ).save(store.path(name))
    report = {r["table"]: r for r in maintain(spark, ["features.pinned", "features.unpinned", "ml.training_sets"], s)}
    assert report["features.pinned"]["pinned_version"] == 0 and report["features.pinned"]["retention_hours"] >= 1.0
    assert report["features.unpinned"]["retention_hours"] == 0.0
    rebuilt = store.rebuild_training_set(ts.training_set_id, SparkEngine("test", spark))
    assert sorted(rebuilt.column("spend").to_pylist()) == [1.0, 2.0]
    assert rebuilt.sort_by("customer_id").equals(ts.to_arrow().sort_by("customer_id"))
    with pytest.raises(Exception, match="(?i)file|path|exist"):  # unpinned: version 0's files are gone
        spark.read.format("delta").option("versionAsOf", 0).load(store.path("features.unpinned")).collect()


@pytest.mark.parity("features.offline.materialize_training_set", "features.offline.rebuild_training_frame")
def test_both_engines_build_the_same_training_sets_and_rebuild_each_others(store, spark):
    """Issue 22: the Spark and embedded engines on one feature table with a backfilled snapshot
    (a timestamp tie settled by the later commit), a TTL, duplicate, unknown and NULL keys, an event
    exactly at a feature time, and known-time reads: the same rows, lineage and types; each
    engine's training set rebuilt by the other, value for value."""

    d1, d2 = date(2025, 1, 1), date(2025, 1, 8)
    kw = dict(primary_keys=["customer_id"], timestamp_key="feature_timestamp", partition_by=["snapshot_date"])
    store.register_table("features.demo", _feats({"a": 1.0, "b": 2.0}, d1), ttl=timedelta(days=10), **kw)
    time.sleep(1.2)
    between = datetime.now(tz=None).replace(microsecond=0)
    time.sleep(1.2)
    (
        spark.createDataFrame(_feats({"a": 10.0, "b": 20.0}, d1))
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", "snapshot_date = '2025-01-01'")
        .save(store.path("features.demo"))
    )
    store.register_table("features.demo", _feats({"a": 3.0, "c": 4.0}, d2), ttl=timedelta(days=10), **kw)
    at = [
        between,
        datetime(2025, 1, 2),  # exactly d1's feature time
        datetime(2025, 1, 9, 12),
        datetime(2025, 1, 20),  # d2's rows are 11 days old: past the TTL
        datetime(2025, 1, 5),
        datetime(2025, 1, 9),
    ]
    entity = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "c", "x", None],
            "event_timestamp": at,
            "churned": [1, 1, 0, 0, 1, 0],
        }
    )
    lookups = [FeatureLookup("features.demo")]
    for known in (False, True):
        by = {
            e: store.create_training_set(entity, lookups, label="churned", as_of_known_time=known, engine=engine)
            for e, engine in (("spark", SparkEngine("test", spark)), ("embedded", EmbeddedEngine("test")))
        }
        s, e = by["spark"], by["embedded"]
        assert s.lineage == e.lineage == {"features.demo": 2}
        assert (s.metadata["engine"]["engine"], e.metadata["engine"]["engine"]) == ("spark", "embedded")
        assert s.metadata["columns"] == e.metadata["columns"] and s.metadata["rows"] == e.metadata["rows"] == 6
        order = ["event_timestamp", "customer_id"]
        a = s.to_arrow().sort_by([(c, "ascending") for c in order])
        b = e.to_arrow().sort_by([(c, "ascending") for c in order])
        assert a.schema == b.schema and a.equals(b), (a.to_pandas(), b.to_pandas())
        spend = dict(zip(b.column("event_timestamp").to_pylist(), b.column("spend").to_pylist()))
        assert spend[pd.Timestamp("2025-01-02", tz="UTC")] == (10.0 if not known else None)  # tie -> later commit
        # each engine rebuilds the other's set exactly
        embedded_rebuild = store.rebuild_training_set(s.training_set_id, EmbeddedEngine("test"))
        assert embedded_rebuild.sort_by([(c, "ascending") for c in order]).equals(a)
        spark_rebuild = store.rebuild_training_set(e.training_set_id, SparkEngine("test", spark))
        assert spark_rebuild.sort_by([(c, "ascending") for c in order]).equals(b)
