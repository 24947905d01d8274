"""The embedded Delta writer and reader without Spark (issue 22): partitions (a NULL one included)
round-trip, a replace touches only its partitions, row ids stay unique across commits, and the
table's column types win over the rows' (a pandas int64 into an int column)."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from ml_platform.lake.delta_log import latest_version, read_table, replace_partitions, snapshot
from ml_platform.lake.paths import FEATURE_TABLE_PROPERTIES
from ml_platform.lake.reader import UnsupportedTable

pytestmark = pytest.mark.unit


def _rows(days: list[date | None], value: int) -> pa.Table:
    return pa.table(
        {
            "k": [f"c{i}" for i in range(len(days))],
            "d": pa.array(days, pa.date32()),
            "v": pa.array([value + i for i in range(len(days))], pa.int32()),
        }
    )


def _sorted(t: pa.Table) -> list[dict]:
    return sorted(t.to_pylist(), key=lambda r: (str(r["d"]), r["k"]))


def test_partitions_round_trip_and_a_replace_touches_only_its_own(tmp_path):
    d1, d2 = date(2025, 1, 1), date(2025, 1, 2)
    first = _rows([d1, d1, d2, None], 0)
    assert replace_partitions(tmp_path, first, ["d"], properties=FEATURE_TABLE_PROPERTIES) == 0
    assert _sorted(read_table(snapshot(tmp_path))) == _sorted(first)
    second = _rows([d2, d2, d2], 100).cast(pa.schema([("k", pa.string()), ("d", pa.date32()), ("v", pa.int64())]))
    assert replace_partitions(tmp_path, second, ["d"]) == 1
    now = read_table(snapshot(tmp_path), row_tracking=True)
    by_day = {}
    for r in now.to_pylist():
        by_day.setdefault(r["d"], []).append(r["v"])
    assert sorted(by_day[d2]) == [100, 101, 102] and sorted(by_day[d1]) == [0, 1] and by_day[None] == [3]
    assert now.schema.field("v").type == pa.int32()  # the table's type, not the rows'
    assert len(set(now.column("_row_id").to_pylist())) == now.num_rows == 6
    assert sorted(set(now.column("_row_commit_version").to_pylist())) == [0, 1]
    assert read_table(snapshot(tmp_path, 0)).num_rows == 4  # time travel
    assert latest_version(tmp_path) == snapshot(tmp_path).version == 1
    assert latest_version(tmp_path / "absent") is None


def test_values_that_do_not_fit_the_table_are_refused_and_nothing_is_committed(tmp_path):
    replace_partitions(tmp_path, _rows([date(2025, 1, 1)], 0), ["d"])
    too_big = pa.table({"k": ["x"], "d": pa.array([date(2025, 1, 1)], pa.date32()), "v": pa.array([2**40])})
    with pytest.raises(UnsupportedTable, match="column v does not fit"):
        replace_partitions(tmp_path, too_big, ["d"])
    assert snapshot(tmp_path).version == 0
    with pytest.raises(UnsupportedTable, match="partitioned by"):
        replace_partitions(tmp_path, _rows([date(2025, 1, 1)], 0), ["k"])


def test_the_delta_rs_writers_leave_checkpoints_the_reader_starts_from(tmp_path):
    """Tables delta-rs writes (`lake.rows`: the embedded plane's bronze, quarantine and silver, the
    scores, the monitoring tables) get `delta.checkpointInterval` 10 and a checkpoint after ten
    commits; with the commits before it deleted, as log clean-up does, the reader starts from the
    checkpoint and sees every row."""
    from ml_platform.lake.rows import append, upsert

    for name, write in (
        ("appended", lambda p, i: append(p, pa.table({"k": [f"a{i}"], "v": [i]}))),
        ("merged", lambda p, i: upsert(p, pa.table({"k": [f"a{i % 4}"], "v": [i]}), "k")),
    ):
        path = str(tmp_path / name)
        for i in range(12):
            write(path, i)
        log = tmp_path / name / "_delta_log"
        checkpoints = sorted(log.glob("*.checkpoint.parquet"))
        assert checkpoints and snapshot(path).configuration["delta.checkpointInterval"] == "10", name
        first = int(checkpoints[-1].name.split(".")[0])
        for v in range(first):  # what a log clean-up leaves
            (log / f"{v:020d}.json").unlink()
        rows = sorted(read_table(snapshot(path)).to_pylist(), key=lambda r: r["k"])
        expected = [{"k": f"a{i}", "v": i} for i in range(12)] if name == "appended" else None
        if expected is None:  # the last write per key wins
            expected = [{"k": f"a{k}", "v": max(i for i in range(12) if i % 4 == k)} for k in range(4)]
        assert rows == sorted(expected, key=lambda r: r["k"]), name
