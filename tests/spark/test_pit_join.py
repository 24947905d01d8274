"""Point-in-time join: hand cases and a property test against a brute-force reference."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ml_platform.features.pit import pit_join
from tests.helpers import brute_force_pit

pytestmark = pytest.mark.spark
T0 = datetime(2025, 1, 1)


def _h(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def _frames(spark, entity, feats):
    e = spark.createDataFrame(entity, "k string, ts timestamp, tag int")
    f = spark.createDataFrame(feats, "k string, fts timestamp, tb long, v double")
    return e, f


def _join(e, f, ttl=None):
    return pit_join(
        e,
        f,
        entity_keys=["k"],
        feature_keys=["k"],
        event_ts="ts",
        feature_ts="fts",
        feature_names=["v"],
        ttl=ttl,
        tiebreak=["tb"],
    )


def test_exact_timestamp_included_ttl_and_ties(spark):
    entity = [
        ("a", _h(10), 1),  # feature row exactly at 10h counts
        ("a", _h(9), 2),  # only the 5h row is visible
        ("b", _h(100), 3),  # newest b row is 90h old: outside a 48h TTL
        ("c", _h(10), 4),  # tie at 10h: the row with the larger commit order wins
        ("z", _h(10), 5),
    ]  # no feature rows at all
    feats = [
        ("a", _h(5), 0, 5.0),
        ("a", _h(10), 0, 10.0),
        ("a", _h(11), 0, 11.0),
        ("b", _h(10), 0, 1.0),
        ("c", _h(10), 1, 100.0),
        ("c", _h(10), 2, 200.0),
        ("c", _h(10), 0, 0.0),
        ("c", _h(10), None, 300.0),  # a NULL tie-break sorts first: it never wins a tie
    ]
    e, f = _frames(spark, entity, feats)
    got = {r["tag"]: r["v"] for r in _join(e, f, ttl=timedelta(hours=48)).collect()}
    assert got == {1: 10.0, 2: 5.0, 3: None, 4: 200.0, 5: None}
    # without a TTL the old b row is used
    assert {r["tag"]: r["v"] for r in _join(e, f).collect()}[3] == 1.0


def test_one_row_per_entity_row_duplicates_and_null_keys_kept(spark):
    entity = [("a", _h(10), 1), ("a", _h(10), 1), ("a", _h(10), 2), (None, _h(10), 3), ("a", None, 4)]
    e, f = _frames(spark, entity, [("a", _h(1), 0, 1.0), (None, _h(1), 0, 9.0)])
    out = _join(e, f)
    assert out.columns == ["k", "ts", "tag", "v"]
    rows = sorted((r["tag"], r["v"]) for r in out.collect())
    assert rows == [(1, 1.0), (1, 1.0), (2, 1.0), (3, None), (4, None)]


def test_rejects_a_lookup_that_would_overwrite_an_entity_column(spark):
    e = spark.createDataFrame([("a", T0, 1.0)], "k string, ts timestamp, v double")
    f = spark.createDataFrame([("a", T0, 0, 1.0)], "k string, fts timestamp, tb long, v double")
    with pytest.raises(ValueError, match="already has column"):
        _join(e, f)


keys = st.sampled_from(["a", "b", "c", "d"])
hours = st.integers(min_value=0, max_value=12)


@hsettings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    entity=st.lists(st.tuples(st.one_of(keys, st.none()), hours), min_size=1, max_size=12),
    feats=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), hours), max_size=15),
    ttl_hours=st.one_of(st.none(), st.integers(min_value=0, max_value=6)),
)
def test_matches_brute_force_reference(spark, entity, feats, ttl_hours):
    ent = [(k, _h(h), i) for i, (k, h) in enumerate(entity)]
    # duplicate (key, time) feature rows are likely with 3 keys x 13 hours; tb orders them uniquely
    fr = [(k, _h(h), i, float(i)) for i, (k, h) in enumerate(feats)]
    ttl = None if ttl_hours is None else timedelta(hours=ttl_hours)
    e, f = _frames(spark, ent, fr)
    got = sorted(
        ((r["tag"], r["v"]) for r in _join(e, f, ttl).collect()), key=lambda r: (r[0], -1 if r[1] is None else r[1])
    )
    assert got == brute_force_pit(ent, fr, ttl)
