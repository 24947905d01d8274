"""Ingest + gate + silver of N landed transactions: the platform's embedded engine next to a bare DuckDB
floor and Spark, measured in the same run.

    .venv/bin/python benchmarks/plane_ingest.py --rows 1000000            # the issue's size
    .venv/bin/python benchmarks/plane_ingest.py --smoke                   # seconds, for CI (no Spark)

The input is seven daily Parquet files in the landing layout with about 1 % of rows that break a
rule (NULL ids, amounts <= 0, future timestamps, unknown channels, conflicting duplicate ids) and
some exact duplicates. Three ways through the same files:

- embedded: `data_plane.ingest_landed(EmbeddedEngine(...), ...)` + `validate_to_silver(...)`, what a default
  `features_build` run does on one machine (content hashes, the contract casts, a bronze commit,
  the GE suite on pandas, the DuckDB predicates, quarantine and silver commits with delta-rs);
- floor: one DuckDB query over the same files applying the same casts and the same rule predicates
  (`validation.rules.ROW_RULES[*].sql`), writing the valid and the quarantined rows as Parquet: no
  hashing, no GE, no Delta;
- Spark: the same two calls with a `local[2]` session (session start shown apart).

All three must agree on the silver and quarantine row counts (the script exits 1 otherwise).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))
START = date(2025, 3, 3)
DAYS = 7


def write_landing(landing: Path, rows: int, seed: int = 7) -> int:
    """Seven daily Parquet files with about 1 % of rule-breaking rows; the rows written."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    per_day = rows // DAYS
    for d in range(DAYS):
        day = START + timedelta(days=d)
        base = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1e6)
        ts = base + rng.integers(0, 86_400 * 10**6, per_day)
        amount = np.round(rng.gamma(2.0, 30.0, per_day), 2) + 0.01
        channel = rng.choice(np.array(["online", "mobile", "store"], dtype=object), per_day)
        customer = np.char.add("c", rng.integers(0, max(per_day // 20, 10), per_day).astype(str)).astype(object)
        tid = np.char.add(f"{day}-", np.arange(per_day).astype(str)).astype(object)
        bad = rng.random(per_day) < 0.01
        kinds = rng.integers(0, 5, per_day)
        customer[bad & (kinds == 0)] = None
        amount[bad & (kinds == 1)] = -1.0
        ts[bad & (kinds == 2)] = base + 2 * 86_400 * 10**6  # after the batch's last day
        channel[bad & (kinds == 3)] = "fax"
        dup = np.flatnonzero(bad & (kinds == 4))
        tid[dup] = tid[(dup + 1) % per_day]  # the same id twice, different rows
        table = pa.table(
            {
                "customer_id": pa.array(customer, pa.string()),
                "transaction_id": pa.array(tid, pa.string()),
                "transaction_ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                "amount": amount,
                "quantity": pa.array(rng.integers(1, 5, per_day), pa.int32()),
                "product_category": pa.array(
                    rng.choice(np.array(["food", "home"], dtype=object), per_day), pa.string()
                ),
                "channel": pa.array(channel, pa.string()),
            }
        )
        table = pa.concat_tables([table, table.slice(0, per_day // 200)])  # exact duplicates
        folder = landing / "transactions" / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / "transactions.parquet")
    return (per_day + per_day // 200) * DAYS


def run_platform(engine, settings) -> dict:
    from ml_platform.pipelines import data_plane as plane

    end = START + timedelta(days=DAYS)
    t = time.perf_counter()
    plane.ingest_landed(engine, START, end, settings)
    gate = plane.validate_to_silver(engine, START, end, settings)
    return {"seconds": time.perf_counter() - t, "silver": gate.rows_validated - gate.quarantined,
            "quarantined": gate.quarantined}  # fmt: skip


def run_floor(landing: Path, out: Path, amount_max: float) -> dict:
    import duckdb

    from ml_platform.contracts import TRANSACTIONS
    from ml_platform.validation.rules import ROW_RULES, RuleContext

    end = START + timedelta(days=DAYS)
    ctx = RuleContext(interval_end=datetime(end.year, end.month, end.day, tzinfo=timezone.utc), amount_max=amount_max)
    t = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    names = ", ".join(TRANSACTIONS.names)
    con.execute(
        f"CREATE TABLE deduped AS SELECT DISTINCT {names} FROM read_parquet('{landing}/transactions/*/*.parquet')"
    )
    cases = ", ".join(f"CASE WHEN ({r.sql(ctx)}) THEN '{r.name}' END" for r in ROW_RULES)
    con.execute(f"CREATE TABLE flagged AS SELECT *, list_filter([{cases}], lambda x: x IS NOT NULL) AS f FROM deduped")
    con.execute(f"COPY (SELECT {names} FROM flagged WHERE len(f) = 0) TO '{out / 'silver.parquet'}'")
    con.execute(f"COPY (SELECT * FROM flagged WHERE len(f) > 0) TO '{out / 'quarantine.parquet'}'")
    seconds = time.perf_counter() - t
    silver = con.execute(f"SELECT count(*) FROM read_parquet('{out / 'silver.parquet'}')").fetchall()[0][0]
    quarantined = con.execute(f"SELECT count(*) FROM read_parquet('{out / 'quarantine.parquet'}')").fetchall()[0][0]
    con.close()
    return {"seconds": seconds, "silver": silver, "quarantined": quarantined}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="transactions landed (default 1,000,000)")
    p.add_argument("--smoke", action="store_true", help="20,000 rows and no Spark (CI)")
    p.add_argument("--no-spark", action="store_true", help="leave Spark out")
    a = p.parse_args(argv)
    rows = 20_000 if a.smoke else a.rows
    if rows < DAYS * 200:
        p.error(f"--rows must be at least {DAYS * 200}")

    from ml_platform.config import Settings
    from ml_platform.engines import EmbeddedEngine, SparkEngine

    with tempfile.TemporaryDirectory(prefix="plane-bench-") as tmp:
        root = Path(tmp)
        written = write_landing(root / "landing", rows)
        print(f"landed {written:,} rows in {DAYS} daily Parquet files", file=sys.stderr, flush=True)
        results = {}
        loose = {"quarantine_max_share": 0.5}  # one batch: no row-count band

        def settings(name: str) -> Settings:
            return Settings(home=root / name, landing_uri=str(root / "landing"), **loose)

        print("embedded engine ...", file=sys.stderr, flush=True)
        results["platform, embedded engine"] = run_platform(EmbeddedEngine("benchmark"), settings("embedded"))
        print("bare DuckDB floor ...", file=sys.stderr, flush=True)
        (root / "floor").mkdir()
        results["bare DuckDB (floor)"] = run_floor(root / "landing", root / "floor", settings("floor").amount_max)
        if not (a.smoke or a.no_spark):
            from ml_platform.lake import get_spark

            print("Spark local[2] ...", file=sys.stderr, flush=True)
            t = time.perf_counter()
            spark = get_spark("plane-bench", extra_conf={"spark.master": "local[2]"}, classic=True)
            start = time.perf_counter() - t
            r = run_platform(SparkEngine("benchmark", spark), settings("spark"))
            spark.stop()
            results["platform, Spark local[2]"] = {**r, "session_start": start}
    floor = results["bare DuckDB (floor)"]["seconds"]
    print(f"\n{'':28} {'wall s':>8} {'x floor':>8} {'silver':>10} {'quarantined':>12}")
    for name, r in results.items():
        extra = f"  (+ {r['session_start']:.1f} s session start)" if "session_start" in r else ""
        print(
            f"{name:28} {r['seconds']:8.2f} {r['seconds'] / floor:8.2f} {r['silver']:10,} {r['quarantined']:12,}{extra}"
        )
    print(json.dumps({"rows": written, **results}, default=float))
    counts = {(r["silver"], r["quarantined"]) for r in results.values()}
    if len(counts) != 1:
        print(f"the ways disagree on silver/quarantine rows: {counts}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
