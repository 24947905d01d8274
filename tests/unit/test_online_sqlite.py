"""The SQLite online store (embedded default) against the shared online-store contract."""

from __future__ import annotations

import pytest

from ml_platform.features.online import SQLiteOnlineStore
from tests.helpers import online_store_contract

pytestmark = pytest.mark.unit


def test_sqlite_online_store_contract(tmp_path):
    online_store_contract(SQLiteOnlineStore(tmp_path / "online.db"))


def test_a_redis_that_accepts_and_never_answers_fails_a_lookup_within_its_timeout():
    """A hung Redis (SIGSTOPped, or a dead peer behind a proxy) accepts connections and never answers:
    each call is bounded by ML_PLATFORM_REDIS_TIMEOUT_SECONDS instead of holding its thread forever."""
    import socket
    import time

    import redis

    from ml_platform.config import Settings
    from ml_platform.features.online import open_online_store

    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)  # the kernel completes the handshake; nothing ever reads or writes
        port = hung.getsockname()[1]
        s = Settings(online_store="redis", redis_url=f"redis://127.0.0.1:{port}/0", redis_timeout_seconds=0.5)
        store = open_online_store(s)
        t0 = time.monotonic()
        with pytest.raises(redis.exceptions.TimeoutError):
            store.current("features.customer_features")
        assert time.monotonic() - t0 < 5
