"""Online feature store: the latest feature row per key, for low-latency lookups at serving time.

Two implementations of one small interface: SQLite (embedded default, one file under the
platform home) and Redis (production). Both publish a table as a new *version* and then switch a
pointer to it, so a reader sees either the previous publish or the new one, never half of one;
publishing the same tag twice is a no-op. Each row keeps its feature_timestamp, so callers can
judge freshness, and `status` reports staleness against the table's TTL.

Values travel as a JSON array in the registered feature order; dates and timestamps are ISO
strings restored to `date` / `datetime` on read.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from ml_platform.features.registry import FeatureTable

KEY_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class OnlineRow:
    """One key's answer: `found` False (and empty values) for a key the store does not hold."""

    key: Any
    found: bool
    feature_timestamp: datetime | None
    values: dict[str, Any]


def key_string(key: Any) -> str:
    if isinstance(key, (tuple, list)):
        return KEY_SEPARATOR.join(str(k) for k in key)
    return str(key)


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=timezone.utc)).isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


def encode(feature_ts: datetime, values: Sequence[Any]) -> str:
    return json.dumps([_jsonable(feature_ts), [_jsonable(v) for v in values]], separators=(",", ":"))


def decode(table: FeatureTable, key: Any, payload: str | bytes | None) -> OnlineRow:
    if payload is None:
        return OnlineRow(key, False, None, {})
    ts, values = json.loads(payload)
    out: dict[str, Any] = {}
    for spec, v in zip(table.features, values):
        if v is not None and spec.dtype.startswith("timestamp"):
            v = datetime.fromisoformat(v)
        elif v is not None and spec.dtype == "date":
            v = date.fromisoformat(v)
        out[spec.name] = v
    return OnlineRow(key, True, datetime.fromisoformat(ts), out)


@dataclass(frozen=True)
class PublishResult:
    table: str
    tag: str
    rows: int
    skipped: bool


class OnlineStore(Protocol):
    def publish(
        self, table: FeatureTable, rows: Iterable[tuple[str, datetime, Sequence[Any]]], tag: str
    ) -> PublishResult:
        """Write a new version of `table` from (key string, feature_ts, values) rows, then switch to it."""

    def current(self, table_name: str) -> dict[str, Any] | None:
        """The live publish: tag, rows, published_at, min/max feature timestamp; None if never published."""

    def upsert(self, table: FeatureTable, rows: Sequence[tuple[str, datetime, Sequence[Any]]]) -> int:
        """Write `rows` into the live version of `table` (created, tag `stream`, when there is none),
        replacing those keys' values: a table a stream updates in place. The rows written."""

    def get(self, table: FeatureTable, keys: Sequence[Any]) -> list[OnlineRow]:
        """Rows for `keys`, in order; unknown keys come back with found=False."""


def status(store: OnlineStore, table: FeatureTable, now: datetime) -> dict[str, Any]:
    """The live publish plus staleness: age of the newest/oldest feature_timestamp vs the TTL."""
    cur = store.current(table.name)
    if cur is None:
        return {"table": table.name, "published": False}
    newest = datetime.fromisoformat(cur["max_feature_ts"]) if cur.get("max_feature_ts") else None
    oldest = datetime.fromisoformat(cur["min_feature_ts"]) if cur.get("min_feature_ts") else None
    out = {"table": table.name, "published": True, **cur}
    if newest is not None:
        out["newest_age_hours"] = round((now - newest).total_seconds() / 3600, 2)
        out["oldest_age_hours"] = round((now - oldest).total_seconds() / 3600, 2) if oldest else None
        if table.ttl is not None:
            out["stale"] = now - newest > table.ttl
    return out


def _batches(rows: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for r in rows:
        batch.append(r)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class SQLiteOnlineStore:
    """One SQLite file (WAL). `publications` points each feature table at its live data table."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as c:
            c.execute(
                "CREATE TABLE IF NOT EXISTS publications (table_name TEXT PRIMARY KEY, tag TEXT NOT NULL, "
                "data_table TEXT NOT NULL, meta TEXT NOT NULL)"
            )

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def current(self, table_name: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT tag, meta FROM publications WHERE table_name = ?", (table_name,)).fetchone()
        return None if row is None else {"tag": row[0], **json.loads(row[1])}

    def publish(
        self, table: FeatureTable, rows: Iterable[tuple[str, datetime, Sequence[Any]]], tag: str
    ) -> PublishResult:
        conn = self._conn()
        cur = self.current(table.name)
        if cur is not None and cur["tag"] == tag:
            return PublishResult(table.name, tag, int(cur["rows"]), skipped=True)
        data_table = f"fs_{uuid.uuid4().hex}"
        count, lo, hi = 0, None, None
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f'CREATE TABLE "{data_table}" (key TEXT PRIMARY KEY, payload TEXT NOT NULL) WITHOUT ROWID')
            for batch in _batches(rows, 5000):
                conn.executemany(
                    f'INSERT OR REPLACE INTO "{data_table}" VALUES (?, ?)',
                    [(k, encode(ts, vals)) for k, ts, vals in batch],
                )
                count += len(batch)
                tss = [ts for _, ts, _ in batch if ts is not None]
                if tss:
                    lo = min([lo, *tss]) if lo else min(tss)
                    hi = max([hi, *tss]) if hi else max(tss)
            old = conn.execute("SELECT data_table FROM publications WHERE table_name = ?", (table.name,)).fetchone()
            meta = {
                "rows": count,
                "published_at": datetime.now(timezone.utc).isoformat(),
                "min_feature_ts": _jsonable(lo),
                "max_feature_ts": _jsonable(hi),
            }
            conn.execute(
                "INSERT OR REPLACE INTO publications VALUES (?, ?, ?, ?)",
                (table.name, tag, data_table, json.dumps(meta)),
            )
            if old is not None:
                conn.execute(f'DROP TABLE IF EXISTS "{old[0]}"')
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return PublishResult(table.name, tag, count, skipped=False)

    def upsert(self, table: FeatureTable, rows: Sequence[tuple[str, datetime, Sequence[Any]]]) -> int:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            live = conn.execute(
                "SELECT data_table, meta FROM publications WHERE table_name = ?", (table.name,)
            ).fetchone()
            if live is None:
                data_table = f"fs_{uuid.uuid4().hex}"
                conn.execute(f'CREATE TABLE "{data_table}" (key TEXT PRIMARY KEY, payload TEXT NOT NULL) WITHOUT ROWID')
                meta: dict[str, Any] = {}
            else:
                data_table, meta = live[0], json.loads(live[1])
            conn.executemany(
                f'INSERT OR REPLACE INTO "{data_table}" VALUES (?, ?)', [(k, encode(ts, vals)) for k, ts, vals in rows]
            )
            count = conn.execute(f'SELECT count(*) FROM "{data_table}"').fetchone()[0]
            tss = [_jsonable(ts) for _, ts, _ in rows if ts is not None]
            meta = {
                **meta,
                "rows": count,
                "published_at": datetime.now(timezone.utc).isoformat(),
                "max_feature_ts": max(
                    [*tss, *([meta["max_feature_ts"]] if meta.get("max_feature_ts") else [])], default=None
                ),
            }
            conn.execute(
                "INSERT OR REPLACE INTO publications VALUES (?, ?, ?, ?)",
                (table.name, "stream", data_table, json.dumps(meta)),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(rows)

    def get(self, table: FeatureTable, keys: Sequence[Any]) -> list[OnlineRow]:
        conn = self._conn()
        conn.execute("BEGIN")  # one snapshot: the pointer and the data it points at
        try:
            row = conn.execute("SELECT data_table FROM publications WHERE table_name = ?", (table.name,)).fetchone()
            if row is None:
                return [OnlineRow(k, False, None, {}) for k in keys]
            strs = [key_string(k) for k in keys]
            found: dict[str, str] = {}
            for i in range(0, len(strs), 500):
                chunk = strs[i : i + 500]
                q = f'SELECT key, payload FROM "{row[0]}" WHERE key IN ({",".join("?" * len(chunk))})'
                found.update(conn.execute(q, chunk).fetchall())
        finally:
            conn.execute("COMMIT")
        return [decode(table, k, found.get(s)) for k, s in zip(keys, strs)]


# Atomic lookup: read the pointer and the values of the version it names in one round trip.
_LOOKUP = """
local h = redis.call('GET', KEYS[1])
if not h then return false end
return redis.call('HMGET', h, unpack(ARGV))
"""


class RedisOnlineStore:
    """Each publish is a new hash `<prefix>:<table>:<tag>`; `<prefix>:<table>:current` names the live one.

    The previous hash expires after `grace_seconds` rather than being deleted at once, and
    lookups read pointer and values in one Lua script, so no reader sees a half-switched table.
    """

    def __init__(self, url: str, prefix: str = "mlp:online", grace_seconds: int = 300, timeout: float = 5.0) -> None:
        import redis

        # bounded calls: a Redis that accepts and never answers (SIGSTOPped, a dead peer behind a
        # proxy) raises redis.TimeoutError after `timeout` s instead of holding the caller forever
        self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self.prefix, self.grace = prefix, grace_seconds
        self._lookup = self.client.register_script(_LOOKUP)

    def _k(self, table_name: str, suffix: str) -> str:
        return f"{self.prefix}:{table_name}:{suffix}"

    def current(self, table_name: str) -> dict[str, Any] | None:
        raw = self.client.get(self._k(table_name, "meta"))
        return None if raw is None else json.loads(raw)

    def publish(
        self, table: FeatureTable, rows: Iterable[tuple[str, datetime, Sequence[Any]]], tag: str
    ) -> PublishResult:
        cur = self.current(table.name)
        if cur is not None and cur["tag"] == tag:
            return PublishResult(table.name, tag, int(cur["rows"]), skipped=True)
        data = self._k(table.name, f"v:{tag}")
        self.client.delete(data)  # leftovers of an interrupted publish of the same tag
        count, lo, hi = 0, None, None
        for batch in _batches(rows, 5000):
            self.client.hset(data, mapping={k: encode(ts, vals) for k, ts, vals in batch})
            count += len(batch)
            tss = [ts for _, ts, _ in batch if ts is not None]
            if tss:
                lo = min([lo, *tss]) if lo else min(tss)
                hi = max([hi, *tss]) if hi else max(tss)
        meta = {
            "tag": tag,
            "rows": count,
            "published_at": datetime.now(timezone.utc).isoformat(),
            "min_feature_ts": _jsonable(lo),
            "max_feature_ts": _jsonable(hi),
            "data": data,
        }
        old = self.client.get(self._k(table.name, "current"))
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self._k(table.name, "current"), data)
        pipe.set(self._k(table.name, "meta"), json.dumps(meta))
        if old is not None and (old.decode() if isinstance(old, bytes) else old) != data:
            pipe.expire(old, self.grace)
        pipe.execute()
        return PublishResult(table.name, tag, count, skipped=False)

    def upsert(self, table: FeatureTable, rows: Sequence[tuple[str, datetime, Sequence[Any]]]) -> int:
        current = self._k(table.name, "current")
        self.client.setnx(current, self._k(table.name, "v:stream"))  # a stream's table: one hash, updated in place
        raw = self.client.get(current)
        data = raw.decode() if isinstance(raw, bytes) else str(raw)
        if rows:
            self.client.hset(data, mapping={k: encode(ts, vals) for k, ts, vals in rows})
        meta = {
            "tag": "stream",
            "rows": int(self.client.hlen(data)),
            "published_at": datetime.now(timezone.utc).isoformat(),
            "data": data,
        }
        self.client.set(self._k(table.name, "meta"), json.dumps(meta))
        return len(rows)

    def get(self, table: FeatureTable, keys: Sequence[Any]) -> list[OnlineRow]:
        if not keys:
            return []
        strs = [key_string(k) for k in keys]
        values = self._lookup(keys=[self._k(table.name, "current")], args=strs)
        if not values:
            return [OnlineRow(k, False, None, {}) for k in keys]
        return [decode(table, k, v) for k, v in zip(keys, values)]


def open_online_store(settings: Any) -> OnlineStore:
    """The backend chosen by `ML_PLATFORM_ONLINE_STORE` (sqlite | redis)."""
    if settings.online_store == "redis":
        return RedisOnlineStore(settings.redis_url, timeout=settings.redis_timeout_seconds)
    return SQLiteOnlineStore(settings.online_sqlite_path)


__all__ = [
    "OnlineRow",
    "OnlineStore",
    "PublishResult",
    "RedisOnlineStore",
    "SQLiteOnlineStore",
    "key_string",
    "open_online_store",
    "status",
]
