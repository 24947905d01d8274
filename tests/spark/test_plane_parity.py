"""The data plane on both engines: on the same landed files, Spark and the embedded engine (DuckDB,
delta-rs, GE on pandas) write the same bronze, quarantine and silver rows, bit for bit as Spark reads
them, reach the same gate result, and refuse the same bad files with the same reason, writing
nothing. Spark reads every table the embedded engine wrote (that is how they are compared)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from ml_platform.config import Settings
from ml_platform.contracts import CUSTOMERS, TRANSACTIONS
from ml_platform.data.ingest import ingest_files
from ml_platform.engines import EmbeddedEngine, Engine, SparkEngine
from ml_platform.errors import DataContractError, ValidationFailed
from ml_platform.lake.paths import table_path
from ml_platform.pipelines import data_plane as plane
from tests.helpers import land, txn, utc

pytestmark = pytest.mark.spark
DAY = date(2025, 1, 6)
TABLES = {
    "bronze.transactions": ["transaction_id", "source_file", "amount"],
    "quarantine.transactions": ["transaction_id", "failed_rules", "amount"],
    "silver.transactions": ["transaction_id"],
    "bronze.customers": ["customer_id", "source_file"],
    "silver.customers": ["customer_id"],
}


def _homes(tmp_path: Path) -> dict[str, Settings]:
    """A lake per engine over one landing zone (the same file paths, so the same `source_file`)."""
    landing = str(tmp_path / "landing")
    return {engine: Settings(home=tmp_path / engine, landing_uri=landing) for engine in ("spark", "embedded")}


def _on(spark, engine: str) -> Engine:
    return SparkEngine("test", spark) if engine == "spark" else EmbeddedEngine("test")


def _ingest(spark, engine: str, files: dict[str, date], contract=TRANSACTIONS, **kw):
    return ingest_files(_on(spark, engine), files, contract, **kw)


def _rows(spark, s: Settings, name: str) -> list[dict]:
    from delta.tables import DeltaTable

    path = table_path(name, s)
    if not DeltaTable.isDeltaTable(spark, path):
        return []
    df = spark.read.format("delta").load(path)
    return [r.asDict() for r in df.orderBy(*[c for c in TABLES[name] if c in df.columns]).collect()]


def _same_tables(spark, homes: dict[str, Settings]) -> None:
    def same(v):  # NaN equals NaN here: the two engines both wrote one
        return "NaN" if isinstance(v, float) and v != v else v

    for name in TABLES:
        a, b = ([{k: same(v) for k, v in r.items()} for r in _rows(spark, s, name)] for s in homes.values())
        assert a == b, f"{name} differs:\nspark    {a[:3]}\nembedded {b[:3]}"


def _gate(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("data_docs", "result_path")}


def _dirty_day() -> list[dict]:
    rows = [txn(f"c{i % 10}", f"{DAY}-{i}", utc(2025, 1, 6, i % 24, i % 60, i % 7), 10.0 + i) for i in range(200)]
    rows += [
        txn(None, "bad-1", utc(2025, 1, 6, 1), 5.0),
        txn("c1", None, utc(2025, 1, 6, 1), 5.0),
        txn("c1", "bad-3", None, 5.0),
        txn("c1", "bad-4", utc(2025, 1, 6, 1), -3.0),
        txn("c1", "bad-5", utc(2025, 1, 7), 5.0),
        txn("c1", "bad-6", utc(2025, 1, 6, 1), 5.0, channel="fax"),
        txn("c1", "dup-7", utc(2025, 1, 6, 1), 5.0),
        txn("c2", "dup-7", utc(2025, 1, 6, 2), 6.0),
        txn(None, "bad-9", utc(2025, 1, 6, 1), -1.0),
        txn("c3", "nulls", utc(2025, 1, 6, 3), 7.0, channel=None, category=None, quantity=None),
        txn("c4", "edge", utc(2025, 1, 6, 23, 59, 59), 100_000.0),  # the amount bound itself: valid
    ]
    return rows + [dict(rows[0]), dict(rows[0])]  # exact duplicates: dropped, not quarantined


@pytest.mark.parity("data.ingest.ingest_files", "pipelines.data_plane.validate_to_silver")
def test_the_gate_and_silver_agree_on_both_engines_over_two_batches(spark, tmp_path):
    homes = _homes(tmp_path)
    customers = tmp_path / "customers.csv"
    customers.write_text("customer_id,signup_date,region,age_band,gender\nc1,2024-01-02,north,25-34,f\n"
                         "c2,2024-2-3,south,,m\nc3,,east,35-44,\n,2024-01-01,west,18-24,f\n")  # fmt: skip
    later = tmp_path / "customers-later.csv"
    later.write_text("customer_id,signup_date,region\nc1,2024-01-02,west\nc9,2024-06-30,north\n")
    results = {}
    nxt = DAY + timedelta(days=1)
    land(tmp_path, DAY.isoformat(), _dirty_day())
    land(tmp_path, nxt.isoformat(), [txn(f"c{i}", f"{nxt}-{i}", utc(2025, 1, 7, i), 3.0) for i in range(20)]
         + [txn("c1", f"{DAY}-5", utc(2025, 1, 7, 5), 99.0)])  # fmt: skip  # an id silver already has
    for engine, s in homes.items():
        runner = _on(spark, engine)
        _ingest(spark, engine, {str(customers): DAY}, CUSTOMERS, fmt="csv", settings=s)
        plane.ingest_landed(runner, DAY, DAY + timedelta(days=1), s)
        first = plane.validate_to_silver(runner, DAY, DAY + timedelta(days=1), s)
        _ingest(spark, engine, {str(later): nxt}, CUSTOMERS, fmt="csv", settings=s)
        plane.ingest_landed(runner, nxt, nxt + timedelta(days=1), s)
        with pytest.raises(ValidationFailed, match="row_count_vs_previous_day") as failed:
            plane.validate_to_silver(runner, nxt, nxt + timedelta(days=1), s)  # 21 rows after 211: too few
        relaxed = s.model_copy(update={"row_count_min_ratio": 0.0})
        second = plane.validate_to_silver(runner, nxt, nxt + timedelta(days=1), relaxed)
        rerun = plane.validate_to_silver(runner, nxt, nxt + timedelta(days=1), relaxed)
        results[engine] = [
            _gate(first.to_json()),
            _gate(failed.value.result),
            _gate(second.to_json()),
            _gate(rerun.to_json()),
        ]
        assert Path(first.data_docs.removeprefix("file://")).is_file(), engine  # GE's data docs, both engines
    assert results["spark"] == results["embedded"], json.dumps(results, indent=1, default=str)[:4000]
    assert results["spark"][0]["quarantined"] == 9 and results["spark"][0]["exact_duplicates_dropped"] == 2
    _same_tables(spark, homes)
    silver = _rows(spark, homes["embedded"], "silver.transactions")
    assert len(silver) == 202 + 20 and [r["amount"] for r in silver if r["transaction_id"] == f"{DAY}-5"] == [15.0]
    names = {r["customer_id"]: r["region"] for r in _rows(spark, homes["embedded"], "silver.customers")}
    assert names == {"c1": "west", "c2": "south", "c3": "east", "c9": "north"}
    from ml_platform.lake.delta_log import snapshot

    for name in TABLES:  # delta-rs checkpoints them every 10 commits, as Spark's default
        assert snapshot(table_path(name, homes["embedded"])).configuration["delta.checkpointInterval"] == "10"


_ODD = (
    "customer_id,Transaction_ID,transaction_ts,amount,quantity,channel,extra\n"
    "c1,t1,2025-04-30 10:00:00,12.5,3,online,x\n"
    "c2,t2,2025-04-30T11:00:00Z, 3 ,3.0,mobile,\n"
    "c3,t3,2025-04-30T10:00:00+02:00,1e3,+4,store,\n"
    "c4,t4,2025-04-30,1_000,1e2,,\n"
    "c5,t5,2025-4-3 1:2:3,1d,07,fax,\n"
    "c6,t6,2025,NaN,2147483648,online,\n"
    "c7,t7,2025-04,-Infinity, 5 ,online,\n"
    "c8,t8,2025-04-30 24:00:00,.5,,online,\n"
    "c9,t9,2025-04-30 10:00:00.123456,5.,-2,online,\n"
    "c10,t10,2025-04-30 10:00:00 UTC,abc,x,online,\n"
    "c11,t11,,,,,\n"
    "c12,t12\n"
)


@pytest.mark.parity("data.ingest.ingest_files")
@pytest.mark.parametrize(
    ("name", "content", "options"),
    [
        ("odd.csv", _ODD.encode(), {}),
        ("bom.csv", b"\xef\xbb\xbf" + _ODD.encode(), {}),
        # columns named like the embedded engine's own (the file read, DuckDB's `filename`)
        (
            "clash.csv",
            b"customer_id,transaction_id,transaction_ts,amount,__file,filename\nc1,t1,2025-04-30,1,x,y\n",
            {},
        ),
        (
            "ws.txt",
            b"customer_id transaction_id transaction_ts amount channel\nc1 t1 2025-04-30T10:00:00 4.5 store\n"
            b"c2 t2 2025-04-30 -1\n",
            {"delimiter": " "},
        ),  # fmt: skip
        (
            "fmt.csv",
            b"customer_id,transaction_id,transaction_ts,amount\nc1,t1,30/04/2025 10:00,1\nc1,t2,29/04/2025 09:30,2\n"
            b"c1,t3,1/5/2025 07:05,2\n",
            {"timestamp_format": "dd/MM/yyyy HH:mm"},
        ),  # fmt: skip
    ],
)
def test_both_engines_read_a_file_into_the_same_bronze_rows(spark, tmp_path, name, content, options):
    homes = _homes(tmp_path)
    f = tmp_path / name
    f.write_bytes(content)
    counts = {}
    for engine, s in homes.items():
        r = _ingest(spark, engine, {str(f): DAY}, fmt="csv", settings=s, **options)
        again = _ingest(spark, engine, {str(f): DAY}, fmt="csv", settings=s, **options)
        counts[engine] = (r.files, r.new_files, r.rows, r.load_ids, again.new_files, again.rows)
    assert counts["spark"] == counts["embedded"]
    _same_tables(spark, homes)


def _parquet_inputs(folder: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir()
    pq.write_table(pa.table({"customer_id": ["c1", "c2"], "transaction_id": ["t1", "t2"],
                             "transaction_ts": pa.array([1746007200_000000, None], pa.timestamp("us", tz="UTC")),
                             "amount": pa.array([1, 2], pa.int32()), "quantity": pa.array([2.7, None])}),
                   folder / "a.parquet")  # fmt: skip
    pq.write_table(pa.table({"CUSTOMER_ID": ["c3"], "transaction_id": ["t3"],
                             "transaction_ts": pa.array([1746007200_000], pa.timestamp("ms")),
                             "amount": pa.array([2.5], pa.float32()), "channel": ["store"]}),
                   folder / "b.parquet")  # fmt: skip
    pq.write_table(pa.table({"customer_id": ["c4"], "transaction_id": ["t4"], "transaction_ts": ["2025-04-30 12:00:00"],
                             "amount": pa.array([7], pa.int64())}), folder / "c.parquet")  # fmt: skip
    pq.write_table(pa.table({"customer_id": ["c5"], "transaction_id": ["t5"], "transaction_ts": ["2025-04-30 13:00:00"],
                             "amount": [8.0], "filename": ["f"], "__file": ["g"]}), folder / "d.parquet")  # fmt: skip


@pytest.mark.parity("data.ingest.ingest_files")
def test_both_engines_read_parquet_files_of_several_types_into_the_same_rows(spark, tmp_path):
    _parquet_inputs(tmp_path / "in")
    homes = _homes(tmp_path)
    for engine, s in homes.items():
        for f in sorted((tmp_path / "in").glob("*.parquet")):  # each alone: their types differ
            _ingest(spark, engine, {str(f): DAY}, fmt="parquet", settings=s)
    _same_tables(spark, homes)
    assert len(_rows(spark, homes["embedded"], "bronze.transactions")) == 5


def _cut_parquet(folder: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"customer_id": ["c1"], "transaction_id": ["t1"], "amount": [1.0],
                             "transaction_ts": ["2025-04-30 10:00:00"]}), folder / "good.parquet")  # fmt: skip
    (folder / "cut.parquet").write_bytes((folder / "good.parquet").read_bytes()[:-40])


def _disagreeing_parquet(folder: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = {"customer_id": ["c1"], "transaction_id": ["t1"], "transaction_ts": ["2025-04-30 10:00:00"]}
    pq.write_table(pa.table({**base, "amount": [1.5]}), folder / "a.parquet")
    pq.write_table(pa.table({**base, "transaction_id": ["t2"], "amount": ["1,5"]}), folder / "b.parquet")


_HEAD = "customer_id,transaction_id,transaction_ts,amount\n"


@pytest.mark.parity("data.ingest.ingest_files")
@pytest.mark.parametrize(
    ("make", "fmt", "problem"),
    [
        (lambda d: (d / "t.csv").write_text("customer_id,transaction_ts,amount\nc1,2025-04-30 10:00:00,1\n"), "csv",
         r"missing required column\(s\) transaction_id for transactions; found columns: customer_id, transaction_ts, amount"),
        (lambda d: (d / "t.csv").write_text(_HEAD + "c1,t1,30/04/2025 10:00,1\nc1,t2,29/04/2025 09:30,2\n"), "csv",
         r"column transaction_ts cannot be read as timestamp: 2 of 2 values fail, e\.g\. \[.*30/04/2025 10:00.*\(use --timestamp-format\)"),
        (lambda d: (d / "t.csv").write_text(_HEAD + "c1,t1,2025-04-30,x1\nc1,t2,2025-04-30,x2\nc1,t3,2025-04-30,3\n"), "csv",
         r"column amount cannot be read as double: 2 of 3 values fail"),
        (lambda d: (d / "t.csv").write_bytes((_HEAD + "caf\u00e9,t1,2025-04-30,1\n").encode("latin-1")), "csv",
         r"t\.csv is not UTF-8: byte 0xe9 at offset 52 \(line 2\)"),
        (_cut_parquet, "parquet", r"cut\.parquet is not a readable Parquet file"),
        (_disagreeing_parquet, "parquet", r"column amount is double in .*a\.parquet but string in .*b\.parquet"),
        (lambda d: (d / "t.csv").write_text(_HEAD.replace("amount", "amount,amount") + "c1,t1,2025-04-30,1,2\n"), "csv",
         r"t\.csv: column 'amount' appears twice in the header \(columns 4 and 5\)"),
        (lambda d: (d / "t.csv").write_text(_HEAD.replace("amount", "Amount,amount") + "c1,t1,2025-04-30,1,2\n"), "csv",
         r"t\.csv: column 'amount' appears twice in the header \(columns 4 and 5\)"),
        (lambda d: (d / "t.csv").write_bytes(b""), "csv", r"t\.csv is empty: no header line with column names"),
    ],
    ids=["missing-column", "timestamps", "amounts", "latin1", "cut-parquet", "types-disagree", "twice", "twice-by-case",
         "empty"],
)  # fmt: skip
def test_both_engines_refuse_a_bad_file_with_the_same_reason_and_write_nothing(spark, tmp_path, make, fmt, problem):
    folder = tmp_path / "in"
    folder.mkdir()
    make(folder)
    files = {str(p): DAY for p in sorted(folder.iterdir())}
    for engine, s in _homes(tmp_path).items():
        with pytest.raises(DataContractError, match=problem):
            _ingest(spark, engine, files, fmt=fmt, settings=s)
        assert not (s.home / "lake").exists(), engine


def test_a_features_build_on_one_machine_runs_the_whole_plane_without_a_jvm(tmp_path, monkeypatch):
    """`spark_jobs/data_plane.py` as the features_build task runs it on one machine: `auto` picks
    the embedded engine for ingest, the gate and the snapshot, and the job never starts Spark."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "spark_jobs"))
    import data_plane as job

    from ml_platform.config import get_settings
    from ml_platform.lake import spark as lake_spark

    monkeypatch.setenv("ML_PLATFORM_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()

    def no_spark(*a, **k):
        raise AssertionError("the job started a Spark session")

    monkeypatch.setattr(lake_spark, "get_spark", no_spark)
    land(tmp_path / "home", DAY.isoformat(), _dirty_day())
    try:
        assert job.main(["--start", DAY.isoformat(), "--end", (DAY + timedelta(days=1)).isoformat()]) == 0
        s = get_settings()
        from ml_platform.lake.reader import read_pandas

        assert len(read_pandas(table_path("silver.transactions", s))) == 202
        assert len(read_pandas(table_path("features.customer_features", s))) == 10
    finally:
        get_settings.cache_clear()
