"""The Spark-free reader (`lake.reader.read_pandas`, delta-rs log + pyarrow files) on tables Spark wrote:
the live rows of a plain table, and a clear refusal of tables whose files do not hold the rows or
the columns as they are (deletion vectors, column mapping), where a raw file read would be wrong."""

from __future__ import annotations

import pytest

from ml_platform.lake.reader import UnsupportedTable, read_pandas, table_summary

pytestmark = pytest.mark.spark


def _table(spark, path: str, properties: str) -> None:
    spark.sql(f"CREATE TABLE delta.`{path}` (id INT, v STRING) USING delta TBLPROPERTIES ({properties})")
    spark.sql(f"INSERT INTO delta.`{path}` VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id = 2")


def test_plain_table_reads_its_live_rows(spark, tmp_path):
    path = str(tmp_path / "plain")
    _table(spark, path, "'delta.enableDeletionVectors' = 'false'")
    assert sorted(read_pandas(path)["id"]) == [1, 3]  # the DELETE rewrote the file
    assert table_summary(path)["rows"] == 2


def test_deletion_vectors_are_refused_not_read_as_raw_files(spark, tmp_path):
    path = str(tmp_path / "dv")
    _table(spark, path, "'delta.enableDeletionVectors' = 'true'")
    assert spark.read.format("delta").load(path).count() == 2
    with pytest.raises(UnsupportedTable, match="deletion vectors"):
        read_pandas(path)  # the file still holds id 2: a raw read would return 3 rows
    summary = table_summary(path)
    assert summary["rows"] is None and "deletion vectors" in summary["unsupported"]


def test_column_mapping_is_refused(spark, tmp_path):
    path = str(tmp_path / "cm")
    _table(spark, path, "'delta.columnMapping.mode' = 'name', 'delta.enableDeletionVectors' = 'false'")
    with pytest.raises(UnsupportedTable, match="column mapping"):
        read_pandas(path)
