"""Bring-your-own files: contract errors are clear and write nothing; odd formats work."""

from __future__ import annotations

from datetime import date

import pytest

from ml_platform import cli
from ml_platform.contracts import TRANSACTIONS
from ml_platform.data.ingest import ingest
from ml_platform.engines import SparkEngine
from ml_platform.errors import DataContractError
from ml_platform.lake.paths import table_path

pytestmark = pytest.mark.spark
DAY = date(2025, 5, 1)


def _bronze(spark, settings):
    return spark.read.format("delta").load(table_path("bronze.transactions", settings))


def test_csv_without_optional_columns_is_ingested_once(spark, settings, tmp_path):
    f = tmp_path / "t.csv"
    f.write_text(
        "customer_id,transaction_id,transaction_ts,amount\nc1,t1,2025-04-30 10:00:00,12.5\nc2,t2,2025-04-30T11:00:00Z,3\n"
    )
    r = ingest(SparkEngine(spark=spark), f, TRANSACTIONS, DAY, settings=settings)
    assert (r.new_files, r.rows) == (1, 2)
    rows = {x["transaction_id"]: x for x in _bronze(spark, settings).collect()}
    assert rows["t1"]["amount"] == 12.5 and rows["t1"]["channel"] is None and rows["t1"]["quantity"] is None
    assert rows["t2"]["transaction_ts"] is not None
    again = ingest(SparkEngine(spark=spark), f, TRANSACTIONS, DAY, settings=settings)
    assert (again.new_files, again.rows) == (0, 0)
    assert _bronze(spark, settings).count() == 2


def test_missing_required_column_names_it_and_writes_nothing(spark, settings, tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("customer_id,transaction_ts,amount\nc1,2025-04-30 10:00:00,1\n")
    with pytest.raises(DataContractError, match="missing required column\\(s\\) transaction_id"):
        ingest(SparkEngine(spark=spark), f, TRANSACTIONS, DAY, settings=settings)
    from delta.tables import DeltaTable

    assert not DeltaTable.isDeltaTable(spark, table_path("bronze.transactions", settings))


def test_unreadable_timestamps_need_a_format(spark, settings, tmp_path):
    f = tmp_path / "t.csv"
    f.write_text(
        "customer_id,transaction_id,transaction_ts,amount\nc1,t1,30/04/2025 10:00,1\nc1,t2,29/04/2025 09:30,2\n"
    )
    with pytest.raises(DataContractError, match="column transaction_ts cannot be read as timestamp.*30/04/2025 10:00"):
        ingest(SparkEngine(spark=spark), f, TRANSACTIONS, DAY, settings=settings)
    r = ingest(SparkEngine(spark=spark), f, TRANSACTIONS, DAY, timestamp_format="dd/MM/yyyy HH:mm", settings=settings)
    assert r.rows == 2
    ts = sorted(x["transaction_ts"].isoformat() for x in _bronze(spark, settings).collect())
    assert ts == ["2025-04-29T09:30:00", "2025-04-30T10:00:00"]


def test_whitespace_separated_text(spark, settings, tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("customer_id transaction_id transaction_ts amount channel\nc1 t1 2025-04-30T10:00:00 4.5 store\n")
    r = ingest(SparkEngine(spark=spark), f, TRANSACTIONS, DAY, delimiter=" ", settings=settings)
    row = _bronze(spark, settings).first()
    assert r.rows == 1 and row["amount"] == 4.5 and row["channel"] == "store"


def test_cli_missing_required_column_exits_non_zero_with_its_name(spark, tmp_path, capsys):
    f = tmp_path / "t.csv"
    f.write_text("transaction_id,transaction_ts,amount\nt1,2025-04-30 10:00:00,1\n")
    rc = cli.main(["ingest", "--transactions", str(f), "--ingest-date", "2025-05-01"])
    err = capsys.readouterr().err
    assert rc == 2 and "customer_id" in err and "Traceback" not in err


_CSV = "customer_id,transaction_id,transaction_ts,amount\nc1,t1,2025-04-30 10:00:00,12.5\nc2,t2,2025-04-30 11:00:00,3\n"


def test_a_csv_with_a_byte_order_mark_is_read_as_written(spark, settings, tmp_path):
    """Excel's "CSV UTF-8" starts with a BOM: it must not become part of the first column's name
    (Spark's CSV reader drops it; this holds it to that)."""
    f = tmp_path / "bom.csv"
    f.write_bytes(b"\xef\xbb\xbf" + _CSV.encode())
    r = ingest(SparkEngine(spark=spark), f, TRANSACTIONS, DAY, settings=settings)
    assert (r.new_files, r.rows) == (1, 2)
    assert sorted(x["customer_id"] for x in _bronze(spark, settings).collect()) == ["c1", "c2"]


def test_a_csv_that_is_not_utf8_is_named_with_its_line_and_nothing_is_written(spark, settings, tmp_path):
    """A Latin-1 export: Spark would read each invalid byte as U+FFFD, silently."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a-good.csv").write_bytes(_CSV.encode())
    (folder / "b-latin1.csv").write_bytes((_CSV + "t9,caf\u00e9,2025-04-30 10:00:00,1.0\n").encode("latin-1"))
    line = _CSV.count("\n") + 1
    with pytest.raises(DataContractError, match=rf"b-latin1.csv is not UTF-8: byte 0xe9 .*\(line {line}\)"):
        ingest(SparkEngine(spark=spark), folder, TRANSACTIONS, DAY, settings=settings)
    assert not (tmp_path / "home" / "lake" / "bronze" / "transactions").exists()


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("empty.parquet", b"", "is not a readable Parquet file"),
        ("cut.parquet", None, "is not a readable Parquet file"),
        ("text.parquet", b"customer_id,amount\nc1,2\n", "is not a readable Parquet file"),
    ],
)
def test_a_broken_parquet_file_is_named_and_nothing_is_written(spark, settings, tmp_path, name, content, problem):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "in"
    folder.mkdir()
    good = pa.table({"customer_id": ["c1"], "transaction_id": ["t1"], "transaction_ts": ["2025-04-30 10:00:00"],
                     "amount": [1.0]})  # fmt: skip
    pq.write_table(good, folder / "good.parquet")
    if content is None:  # a copy cut short, as an interrupted upload leaves it
        content = (folder / "good.parquet").read_bytes()[:-40]
    (folder / name).write_bytes(content)
    with pytest.raises(DataContractError, match=f"{name} {problem}"):
        ingest(SparkEngine(spark=spark), folder, TRANSACTIONS, DAY, settings=settings)
    assert not (tmp_path / "home" / "lake" / "bronze" / "transactions").exists()


def test_parquet_files_whose_column_types_disagree_are_named_and_nothing_is_written(spark, settings, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "in"
    folder.mkdir()
    base = {"customer_id": ["c1"], "transaction_id": ["t1"], "transaction_ts": ["2025-04-30 10:00:00"]}
    pq.write_table(pa.table({**base, "amount": [1.5]}), folder / "a.parquet")
    pq.write_table(pa.table({**base, "transaction_id": ["t2"], "amount": ["1,5"]}), folder / "b.parquet")
    with pytest.raises(DataContractError, match=r"column amount is double in .*a\.parquet but string in .*b\.parquet"):
        ingest(SparkEngine(spark=spark), folder, TRANSACTIONS, DAY, settings=settings)
    assert not (tmp_path / "home" / "lake" / "bronze" / "transactions").exists()
