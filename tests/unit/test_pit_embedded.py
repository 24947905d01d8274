"""The embedded point-in-time join (DuckDB over Arrow, issue 22): the Spark join's hand cases and
its property test against the brute-force reference, without a JVM."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ml_platform.features.pit_embedded import pit_join_embedded
from tests.helpers import brute_force_pit

pytestmark = pytest.mark.unit
T0 = datetime(2025, 1, 1)


def _h(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def _frames(entity, feats):
    e = pa.table(
        {
            "k": pa.array([r[0] for r in entity], pa.string()),
            "ts": pa.array([r[1] for r in entity], pa.timestamp("us")),
            "tag": pa.array([r[2] for r in entity], pa.int32()),
        }
    )
    f = pa.table(
        {
            "k": pa.array([r[0] for r in feats], pa.string()),
            "fts": pa.array([r[1] for r in feats], pa.timestamp("us")),
            "tb": pa.array([r[2] for r in feats], pa.int64()),
            "v": pa.array([r[3] for r in feats], pa.float64()),
        }
    )
    return e, f


def _join(e, f, ttl=None, tiebreak=("tb",)):
    return pit_join_embedded(
        e,
        f,
        entity_keys=["k"],
        feature_keys=["k"],
        event_ts="ts",
        feature_ts="fts",
        feature_names=["v"],
        ttl=ttl,
        tiebreak=list(tiebreak) or None,
    )


def test_exact_timestamp_included_ttl_and_ties():
    entity = [("a", _h(10), 1), ("a", _h(9), 2), ("b", _h(100), 3), ("c", _h(10), 4), ("z", _h(10), 5)]
    feats = [
        ("a", _h(5), 0, 5.0),
        ("a", _h(10), 0, 10.0),
        ("a", _h(11), 0, 11.0),
        ("b", _h(10), 0, 1.0),
        ("c", _h(10), 1, 100.0),
        ("c", _h(10), 2, 200.0),  # the largest tie-break (the latest commit) wins
        ("c", _h(10), 0, 0.0),
        ("c", _h(10), None, 300.0),  # a NULL tie-break sorts first, as in Spark: it never wins a tie
    ]
    e, f = _frames(entity, feats)
    got = dict(zip(*_join(e, f, ttl=timedelta(hours=48)).select(["tag", "v"]).to_pydict().values()))
    assert got == {1: 10.0, 2: 5.0, 3: None, 4: 200.0, 5: None}
    assert dict(zip(*_join(e, f).select(["tag", "v"]).to_pydict().values()))[3] == 1.0  # no TTL: the old row


def test_one_row_per_entity_row_duplicates_and_null_keys_kept():
    entity = [("a", _h(10), 1), ("a", _h(10), 1), ("a", _h(10), 2), (None, _h(10), 3), ("a", None, 4)]
    e, f = _frames(entity, [("a", _h(1), 0, 1.0), (None, _h(1), 0, 9.0)])
    out = _join(e, f)
    assert out.column_names == ["k", "ts", "tag", "v"]
    assert out.schema.field("ts").type == pa.timestamp("us")  # the entity's columns as they came
    assert sorted(zip(*out.select(["tag", "v"]).to_pydict().values()), key=str) == sorted(
        [(1, 1.0), (1, 1.0), (2, 1.0), (3, None), (4, None)], key=str
    )


def test_without_a_tiebreak_the_values_decide_as_in_spark():
    e, f = _frames([("c", _h(10), 1)], [("c", _h(10), 0, 3.0), ("c", _h(10), 0, None), ("c", _h(10), 0, 7.0)])
    assert _join(e, f, tiebreak=()).column("v").to_pylist() == [7.0]


def test_utc_instants_compare_whatever_the_zone_of_either_side():
    e = pa.table(
        {"k": ["a"], "ts": pa.array([datetime(2025, 1, 1, 12, tzinfo=timezone.utc)], pa.timestamp("us", "UTC"))}
    )
    f = pa.table(
        {
            "k": ["a", "a"],
            "fts": pa.array([_h(12), _h(13)], pa.timestamp("us")),  # naive: UTC
            "v": [1.0, 2.0],
        }
    )
    out = pit_join_embedded(
        e, f, entity_keys=["k"], feature_keys=["k"], event_ts="ts", feature_ts="fts", feature_names=["v"]
    )
    assert out.column("v").to_pylist() == [1.0]


def test_parquet_files_give_what_arrow_tables_give(tmp_path):
    import pyarrow.parquet as pq

    entity = [("a", _h(10), 1), ("a", _h(9), 2), (None, _h(10), 3), ("c", _h(10), 4)]
    feats = [("a", _h(5), 0, 5.0), ("a", _h(10), 0, 10.0), ("c", _h(10), 2, 200.0), ("c", _h(10), 1, 100.0)]
    e, f = _frames(entity, feats)
    pq.write_table(e, tmp_path / "e.parquet")
    pq.write_table(f.slice(0, 2), tmp_path / "f-0.parquet")  # a table's rows over several files
    pq.write_table(f.slice(2), tmp_path / "f-1.parquet")
    files = [tmp_path / "f-0.parquet", str(tmp_path / "f-1.parquet")]
    from_files = _join(tmp_path / "e.parquet", files)
    assert from_files.sort_by("tag").to_pydict() == _join(e, f).sort_by("tag").to_pydict()
    assert from_files.sort_by("tag").column("v").to_pylist() == [10.0, 5.0, None, 200.0]
    with pytest.raises(ValueError, match="no Parquet files"):
        _join(e, [])


def test_names_a_missing_or_clashing_column():
    e, f = _frames([("a", _h(1), 1)], [("a", _h(1), 0, 1.0)])
    with pytest.raises(ValueError, match="already has column"):
        _join(e.append_column("v", pa.array([1.0])), f)
    with pytest.raises(ValueError, match=r"feature frame lacks column\(s\) \['nope'\]"):
        pit_join_embedded(
            e, f, entity_keys=["k"], feature_keys=["k"], event_ts="ts", feature_ts="fts", feature_names=["nope"]
        )


keys = st.sampled_from(["a", "b", "c", "d"])
hours = st.integers(min_value=0, max_value=12)


@hsettings(max_examples=200, deadline=None)
@given(
    entity=st.lists(st.tuples(st.one_of(keys, st.none()), st.one_of(hours, st.none())), min_size=1, max_size=12),
    feats=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), hours), max_size=15),
    ttl_hours=st.one_of(st.none(), st.integers(min_value=0, max_value=6)),
)
def test_matches_brute_force_reference(entity, feats, ttl_hours):
    ent = [(k, None if h is None else _h(h), i) for i, (k, h) in enumerate(entity)]
    fr = [(k, _h(h), i, float(i)) for i, (k, h) in enumerate(feats)]  # tb orders equal (key, time) rows
    ttl = None if ttl_hours is None else timedelta(hours=ttl_hours)
    e, f = _frames(ent, fr)
    out = _join(e, f, ttl).to_pydict()
    got = sorted(zip(out["tag"], out["v"]), key=lambda r: (r[0], -1 if r[1] is None else r[1]))
    assert got == brute_force_pit(ent, fr, ttl)
