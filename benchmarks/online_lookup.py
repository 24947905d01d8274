"""Online lookup latency: SQLite and Redis online stores next to a raw redis-py GET (the floor).

    python benchmarks/online_lookup.py [--redis-url redis://127.0.0.1:26379/0] [--keys 100000] [--smoke]

Publishes N keys with the 20 customer features into each backend, then times (p50 / p99 over
many calls, after a warm-up) a single-key lookup and a 100-key lookup through the same
`get` the serving path uses, and a raw `GET` of one pre-encoded value with redis-py.
Goal: single-key p99 <= 2 ms on Redis and <= 1 ms on SQLite. Without --redis-url the Redis
rows are skipped (the SQLite figures still print).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path


def _pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000.0


def _time(fn, calls: int) -> list[float]:
    for _ in range(min(200, calls)):
        fn()
    out = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> int:
    from ml_platform.features.customer_features import customer_features_table
    from ml_platform.features.online import RedisOnlineStore, SQLiteOnlineStore, encode

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis-url", default=None, help="Redis to test against (e.g. the one `make test` starts)")
    p.add_argument("--keys", type=int, default=100_000, help="keys to publish (default 100,000)")
    p.add_argument("--calls", type=int, default=5000, help="timed calls per case (default 5000)")
    p.add_argument("--smoke", action="store_true", help="tiny run for CI (2,000 keys, 300 calls)")
    args = p.parse_args(argv)
    n, calls = (2000, 300) if args.smoke else (args.keys, args.calls)
    table = customer_features_table("weekly")
    ts = datetime(2025, 3, 23, tzinfo=timezone.utc)
    rng = random.Random(0)
    values = [
        [rng.random() * 100 if f.dtype == "double" else rng.randint(0, 50) for f in table.features]
        for _ in range(min(n, 1000))
    ]

    def rows():
        for i in range(n):
            yield f"C{i:07d}", ts, values[i % len(values)]

    stores = {"sqlite": SQLiteOnlineStore(Path(tempfile.mkdtemp(prefix="bench-online-")) / "online.db")}
    if args.redis_url:
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()
        stores["redis"] = RedisOnlineStore(args.redis_url)
    results: list[tuple[str, str, list[float]]] = []
    for name, store in stores.items():
        t = time.perf_counter()
        store.publish(table, rows(), "bench")
        print(f"{name}: published {n:,} keys in {time.perf_counter() - t:.1f}s", flush=True)
        one = lambda: store.get(table, [f"C{rng.randrange(n):07d}"])  # noqa: E731
        batch = lambda: store.get(table, [f"C{rng.randrange(n):07d}" for _ in range(100)])  # noqa: E731
        results.append((name, "1 key", _time(one, calls)))
        results.append((name, "100 keys", _time(batch, max(50, calls // 10))))
    if args.redis_url:
        import redis

        raw = redis.Redis.from_url(args.redis_url)
        raw.set("bench:raw", encode(ts, values[0]))
        results.append(("redis-py GET (floor)", "1 key", _time(lambda: raw.get("bench:raw"), calls)))
    print(f"{'backend':<22}{'lookup':<10}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    for name, case, samples in results:
        print(
            f"{name:<22}{case:<10}{_pct(samples, 0.5):>9.3f}{_pct(samples, 0.99):>9.3f}"
            f"{statistics.fmean(samples) * 1000:>9.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
