"""Bring-your-own files: contract errors are clear and write nothing; odd formats work."""

from __future__ import annotations

from datetime import date

import pytest

from ml_platform import cli
from ml_platform.contracts import TRANSACTIONS
from ml_platform.data.ingest import ingest
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
    r = ingest(spark, f, TRANSACTIONS, DAY, settings=settings)
    assert (r.new_files, r.rows) == (1, 2)
    rows = {x["transaction_id"]: x for x in _bronze(spark, settings).collect()}
    assert rows["t1"]["amount"] == 12.5 and rows["t1"]["channel"] is None and rows["t1"]["quantity"] is None
    assert rows["t2"]["transaction_ts"] is not None
    again = ingest(spark, f, TRANSACTIONS, DAY, settings=settings)
    assert (again.new_files, again.rows) == (0, 0)
    assert _bronze(spark, settings).count() == 2


def test_missing_required_column_names_it_and_writes_nothing(spark, settings, tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("customer_id,transaction_ts,amount\nc1,2025-04-30 10:00:00,1\n")
    with pytest.raises(DataContractError, match="missing required column\\(s\\) transaction_id"):
        ingest(spark, f, TRANSACTIONS, DAY, settings=settings)
    from delta.tables import DeltaTable

    assert not DeltaTable.isDeltaTable(spark, table_path("bronze.transactions", settings))


def test_unreadable_timestamps_need_a_format(spark, settings, tmp_path):
    f = tmp_path / "t.csv"
    f.write_text(
        "customer_id,transaction_id,transaction_ts,amount\nc1,t1,30/04/2025 10:00,1\nc1,t2,29/04/2025 09:30,2\n"
    )
    with pytest.raises(DataContractError, match="column transaction_ts cannot be read as timestamp.*30/04/2025 10:00"):
        ingest(spark, f, TRANSACTIONS, DAY, settings=settings)
    r = ingest(spark, f, TRANSACTIONS, DAY, timestamp_format="dd/MM/yyyy HH:mm", settings=settings)
    assert r.rows == 2
    ts = sorted(x["transaction_ts"].isoformat() for x in _bronze(spark, settings).collect())
    assert ts == ["2025-04-29T09:30:00", "2025-04-30T10:00:00"]


def test_whitespace_separated_text(spark, settings, tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("customer_id transaction_id transaction_ts amount channel\nc1 t1 2025-04-30T10:00:00 4.5 store\n")
    r = ingest(spark, f, TRANSACTIONS, DAY, delimiter=" ", settings=settings)
    row = _bronze(spark, settings).first()
    assert r.rows == 1 and row["amount"] == 4.5 and row["channel"] == "store"


def test_cli_missing_required_column_exits_non_zero_with_its_name(spark, tmp_path, capsys):
    f = tmp_path / "t.csv"
    f.write_text("transaction_id,transaction_ts,amount\nt1,2025-04-30 10:00:00,1\n")
    rc = cli.main(["ingest", "--transactions", str(f), "--ingest-date", "2025-05-01"])
    err = capsys.readouterr().err
    assert rc == 2 and "customer_id" in err and "Traceback" not in err
