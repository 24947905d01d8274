"""The Redis online store against a real Redis server (started by `make test` / `.ci/run`)."""

from __future__ import annotations

import os
from datetime import date, timedelta

import pandas as pd
import pytest

from ml_platform.features.online import RedisOnlineStore
from tests.helpers import online_store_contract

pytestmark = pytest.mark.integration


@pytest.fixture()
def redis_url() -> str:
    import redis

    server = os.environ.get("ML_PLATFORM_TEST_REDIS_URL")
    assert server, "ML_PLATFORM_TEST_REDIS_URL is not set: run through `make test` (it starts Redis)"
    # a database of its own: the cluster tier's demo keeps its online store in 0 (and Celery's broker
    # in 1) on the same server, in a lane that runs at the same time (scripts/test.sh)
    url = server.rsplit("/", 1)[0] + "/6"
    redis.Redis.from_url(url).flushdb()
    return url


def test_redis_online_store_contract(redis_url):
    online_store_contract(RedisOnlineStore(redis_url, grace_seconds=5))


def test_feature_store_publishes_to_redis_without_skew(spark, tmp_path, redis_url):
    from ml_platform.config import Settings
    from ml_platform.engines import EmbeddedEngine, SparkEngine
    from ml_platform.features import FeatureStore

    store = FeatureStore(settings=Settings(home=tmp_path, online_store="redis", redis_url=redis_url), spark=spark)
    ts = pd.Timestamp("2025-01-02")
    df = pd.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in range(300)],
            "feature_timestamp": [ts] * 300,
            "spend": [i / 3 for i in range(300)],
            "channel": ["web", None, "store"] * 100,
            "last_seen": [ts - pd.Timedelta(hours=i) for i in range(300)],
        }
    )
    store.register_table(
        "features.redis_demo",
        df,
        primary_keys=["customer_id"],
        timestamp_key="feature_timestamp",
        ttl=timedelta(days=1),
    )
    published = store.publish_online("features.redis_demo")
    assert {k: published[k] for k in ("table", "tag", "rows", "skipped")} == {
        "table": "features.redis_demo",
        "tag": "v0",
        "rows": 300,
        "skipped": False,
    }
    row = store.get_online_features("features.redis_demo", ["C0003"])[0]
    assert (
        row.values["spend"] == 1.0
        and row.values["channel"] == "web"
        and row.feature_timestamp.date() == date(2025, 1, 2)
    )
    for engine in (SparkEngine("test", spark), EmbeddedEngine("test")):  # both read the offline side the same way
        skew = store.check_skew("features.redis_demo", sample=50, engine=engine)
        assert (skew["checked"], skew["mismatches"]) == (50, 0), skew
