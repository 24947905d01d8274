"""The embedded engine's Delta writer (`lake.delta_log`) on feature tables that Spark also writes
(issue 22): Spark reads what it commits, with row ids unique across both writers, commit versions
and in-commit timestamps in order; Spark commits after it; its log replay agrees with Spark's
view after a checkpoint; a lost race changes nothing."""

from __future__ import annotations

from datetime import date

import pytest

from ml_platform.lake.delta_log import CommitConflict, live_files, replace_partitions, snapshot
from ml_platform.lake.paths import FEATURE_TABLE_PROPERTIES
from ml_platform.lake.reader import UnsupportedTable

pytestmark = pytest.mark.spark


def _rows(day: date, ids: range, value: float):
    import pyarrow as pa

    return pa.table(
        {
            "customer_id": pa.array([f"C{i:04d}" for i in ids]),
            "snapshot_date": pa.array([day] * len(ids), pa.date32()),
            "x": pa.array([value + i for i in ids], pa.float64()),
            "n": pa.array(list(ids), pa.int64()),
        }
    )


def _spark_write(spark, path: str, rows, replace: str | None) -> None:
    df = spark.createDataFrame(rows.combine_chunks().to_pandas())
    writer = df.write.format("delta").mode("overwrite")
    if replace:
        writer.option("replaceWhere", replace).save(path)
    else:
        writer.partitionBy("snapshot_date").options(**FEATURE_TABLE_PROPERTIES).save(path)


def _tracked(spark, path: str):
    df = spark.read.format("delta").load(path)
    return df.select(
        "customer_id", "snapshot_date", "x", "n", df["_metadata.row_id"].alias("rid"),
        df["_metadata.row_commit_version"].alias("rcv"),
    ).toPandas()  # fmt: skip


def test_spark_reads_and_continues_a_table_the_embedded_writer_committed_to(spark, tmp_path):
    import pyarrow as pa
    from deltalake import DeltaTable

    path = str(tmp_path / "features")
    d1, d2, d3 = date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 3)
    _spark_write(spark, path, pa.concat_tables([_rows(d1, range(5), 0.0), _rows(d2, range(4), 0.0)]), None)

    v = replace_partitions(
        path, pa.concat_tables([_rows(d2, range(6), 10.0), _rows(d3, range(3), 20.0)]), ["snapshot_date"]
    )
    assert v == 1
    t = _tracked(spark, path)
    assert sorted(t.groupby("snapshot_date").size().tolist()) == [3, 5, 6]  # d2 replaced, not appended
    assert t.loc[t["snapshot_date"] == d2, "x"].tolist() == [10.0 + i for i in range(6)]
    assert t["rid"].is_unique and t.loc[t["snapshot_date"] != d1, "rcv"].eq(1).all()
    assert t.loc[t["snapshot_date"] == d1, "rcv"].eq(0).all()

    _spark_write(spark, path, _rows(d3, range(2), 30.0), "snapshot_date = '2025-01-03'")  # Spark after it
    t = _tracked(spark, path)
    assert len(t) == 5 + 6 + 2 and t["rid"].is_unique and t["rid"].min() >= 0
    assert t.loc[t["snapshot_date"] == d3, "rcv"].eq(2).all()
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").orderBy("version").toPandas()
    assert history["version"].tolist() == [0, 1, 2]
    assert history["timestamp"].is_monotonic_increasing  # in-commit timestamps, strictly increasing

    dt = DeltaTable(path, version=1)  # delta-rs reads it too
    assert dt.version() == 1
    assert sorted(dt.file_uris()) == sorted(f"{path}/{a['path']}" for a in live_files(snapshot(path, 1)))


def test_a_table_created_by_the_embedded_writer_has_the_feature_table_features(spark, tmp_path):
    import pyarrow as pa

    path = str(tmp_path / "new")
    rows = pa.concat_tables([_rows(date(2025, 1, 1), range(3), 0.0), _rows(date(2025, 1, 2), range(2), 0.0)])
    assert replace_partitions(path, rows, ["snapshot_date"], properties=FEATURE_TABLE_PROPERTIES) == 0
    props = dict(spark.sql(f"SHOW TBLPROPERTIES delta.`{path}`").toPandas().values.tolist())
    assert props["delta.enableRowTracking"] == "true" and props["delta.enableInCommitTimestamps"] == "true"
    _spark_write(spark, path, _rows(date(2025, 1, 2), range(4), 5.0), "snapshot_date = '2025-01-02'")
    t = _tracked(spark, path)
    assert len(t) == 7 and t["rid"].is_unique
    assert t.sort_values("rid")["rid"].tolist()[:3] == [0, 1, 2]  # the first file's ids start at 0


def test_log_replay_agrees_with_spark_after_a_checkpoint(spark, tmp_path):
    path = str(tmp_path / "cp")
    _spark_write(spark, path, _rows(date(2025, 1, 1), range(3), 0.0), None)
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.checkpointInterval' = '2')")
    for i in range(2, 6):
        day = date(2025, 1, i)
        _spark_write(spark, path, _rows(day, range(i), 0.0), f"snapshot_date = '{day}'")
    assert list((tmp_path / "cp" / "_delta_log").glob("*.checkpoint.parquet"))
    snap = snapshot(path)
    spark_files = {f.rsplit("/", 1)[-1] for f in spark.read.format("delta").load(path).inputFiles()}
    assert {a["path"].rsplit("/", 1)[-1] for a in live_files(snap)} == spark_files
    assert snap.row_id_high_water_mark == _tracked(spark, path)["rid"].max()
    replace_partitions(path, _rows(date(2025, 1, 9), range(2), 0.0), ["snapshot_date"])
    t = _tracked(spark, path)
    assert len(t) == 3 + 2 + 3 + 4 + 5 + 2 and t["rid"].is_unique
    assert snapshot(path, version=1).version == 1 and len(live_files(snapshot(path, version=1))) == 2


def test_a_lost_race_commits_nothing(spark, tmp_path, monkeypatch):
    from ml_platform.lake import delta_log

    path = tmp_path / "race"
    replace_partitions(path, _rows(date(2025, 1, 1), range(3), 0.0), ["snapshot_date"])
    read = delta_log.snapshot

    def read_then_lose(p, version=None):  # another writer commits version 1 right after this read
        snap = read(p, version)
        (path / "_delta_log" / f"{1:020d}.json").write_text('{"commitInfo":{}}\n')
        return snap

    monkeypatch.setattr(delta_log, "snapshot", read_then_lose)
    with pytest.raises(CommitConflict, match="version 1"):
        replace_partitions(path, _rows(date(2025, 1, 1), range(3), 1.0), ["snapshot_date"])
    log = sorted(p.name for p in (path / "_delta_log").iterdir())
    assert log == [f"{0:020d}.json", f"{1:020d}.json"]  # no temp file left, version 1 is theirs
    assert (path / "_delta_log" / f"{1:020d}.json").read_text() == '{"commitInfo":{}}\n'


def test_tables_it_cannot_write_correctly_are_refused(spark, tmp_path):
    path = str(tmp_path / "dv")
    spark.sql(
        f"CREATE TABLE delta.`{path}` (customer_id STRING, snapshot_date DATE, x DOUBLE, n BIGINT) USING delta "
        f"PARTITIONED BY (snapshot_date) TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')"
    )
    with pytest.raises(UnsupportedTable, match="deletion vectors"):
        replace_partitions(path, _rows(date(2025, 1, 1), range(3), 0.0), ["snapshot_date"])


def test_every_tenth_commit_leaves_a_checkpoint_that_spark_delta_rs_and_the_reader_start_from(spark, tmp_path):
    """Twelve commits of the embedded writer to a row-tracking table: a checkpoint at version 10 (the
    default `delta.checkpointInterval`); with commits 0-9 deleted, as log clean-up does, the reader
    (which must then start from the checkpoint), Spark and delta-rs see the same rows, row ids and
    high-water mark as before; the writer continues after it."""
    import shutil

    from deltalake import DeltaTable

    path = str(tmp_path / "features")
    for i in range(12):
        replace_partitions(
            path,
            _rows(date(2025, 1, 1 + i), range(3), float(i)),
            ["snapshot_date"],
            properties=FEATURE_TABLE_PROPERTIES,
        )
    log = tmp_path / "features" / "_delta_log"
    assert (log / f"{10:020d}.checkpoint.parquet").is_file() and (log / "_last_checkpoint").is_file()
    before = snapshot(path)
    tracked = _tracked(spark, path).sort_values(["snapshot_date", "customer_id"]).reset_index(drop=True)

    pruned = tmp_path / "pruned"
    shutil.copytree(tmp_path / "features", pruned)
    for v in range(10):
        (pruned / "_delta_log" / f"{v:020d}.json").unlink()
    after = snapshot(str(pruned))
    assert after.version == 11 and after.files == before.files
    assert after.row_id_high_water_mark == before.row_id_high_water_mark == 35
    assert after.in_commit_timestamp == before.in_commit_timestamp
    again = _tracked(spark, str(pruned)).sort_values(["snapshot_date", "customer_id"]).reset_index(drop=True)
    assert again.equals(tracked) and again["rid"].is_unique
    assert DeltaTable(str(pruned)).version() == 11 and len(DeltaTable(str(pruned)).file_uris()) == 12

    v = replace_partitions(str(pruned), _rows(date(2025, 2, 1), range(2), 99.0), ["snapshot_date"])
    assert v == 12 and snapshot(str(pruned)).row_id_high_water_mark == 37
    assert len(_tracked(spark, str(pruned))) == 38
