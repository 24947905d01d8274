"""The SQLite online store (embedded default) against the shared online-store contract."""

from __future__ import annotations

import pytest

from ml_platform.features.online import SQLiteOnlineStore
from tests.helpers import online_store_contract

pytestmark = pytest.mark.unit


def test_sqlite_online_store_contract(tmp_path):
    online_store_contract(SQLiteOnlineStore(tmp_path / "online.db"))
