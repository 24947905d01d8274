"""`ml-platform data generate | data land | ingest | validate | run`: landing -> bronze -> gate -> silver."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ml_platform.cli._common import SubParsers, iso_date, location, on_engine, positive, progress, say
from ml_platform.config import get_settings
from ml_platform.contracts import CUSTOMERS, TRANSACTIONS
from ml_platform.data.landing import land_range
from ml_platform.engines import Engine
from ml_platform.lake.paths import landing_dir
from ml_platform.lake.storage import check_location, upath
from ml_platform.pipelines import data_plane


def generate(a: argparse.Namespace) -> dict[str, Any]:
    from ml_platform.data.generator import GeneratorSpec, write_landing

    if a.out:
        check_location(a.out, what="--out")
    out = upath(a.out) if a.out else landing_dir()
    spec = GeneratorSpec(customers=a.customers, start=a.start, end=a.end, seed=a.seed, drift_at=a.drift_at)
    counts = write_landing(spec, out, a.format, progress=progress("generating days"))
    return {"out": a.out or get_settings().landing_uri, **counts}


def land(a: argparse.Namespace) -> dict[str, Any]:
    landing = landing_dir()
    say(f"landing day folders {a.start or 'first'}..{a.end or 'last'} of {a.source} into {get_settings().landing_uri}")
    return {"landing": get_settings().landing_uri, "day_folders": land_range(a.source, landing, a.start, a.end)}


def _plane_engine(app: str, steps: str = "ingest,validate") -> Engine:
    """The data plane's engine for a CLI command running `steps` (`data_plane.data_plane_engine`),
    said and started. The lake's location is checked first: a bad URI fails before any engine reads
    or writes."""
    check_location(get_settings().lake_uri, what="lake (ML_PLATFORM_LAKE_URI)")
    return on_engine(data_plane.data_plane_engine(steps), app)


def ingest(a: argparse.Namespace) -> dict[str, Any]:
    from ml_platform.data.ingest import ingest_files, list_files

    sources = {TRANSACTIONS: list_files(a.transactions, a.format)}  # the paths checked before any engine starts
    if a.customers:
        sources[CUSTOMERS] = list_files(a.customers, a.format)
    engine = _plane_engine("ingest")
    day = a.ingest_date or datetime.now(timezone.utc).date()
    out: dict[str, Any] = {"engine": engine.to_json()}
    for contract, (files, fmt) in sources.items():
        src = a.transactions if contract is TRANSACTIONS else a.customers
        say(f"ingesting {src} into bronze.{contract.name} (ingest_date {day})")
        options = {"fmt": fmt, "delimiter": a.delimiter, "timestamp_format": a.timestamp_format}
        r = ingest_files(engine, {f: day for f in files}, contract, **options)
        out[contract.name] = {
            "files": r.files,
            "new_files": r.new_files,
            "rows": r.rows,
            "ingest_date": day.isoformat(),
        }
    out["next"] = f"ml-platform validate --start {day} --end {day}"
    return out


def validate(a: argparse.Namespace) -> dict[str, Any]:
    engine = _plane_engine("validate")
    say(f"running the gate on bronze rows ingested {a.start}..{a.end}")
    gate = data_plane.validate_to_silver(engine, a.start, a.end + timedelta(days=1))
    return {**gate.to_json(), "engine": engine.to_json()}


def run(a: argparse.Namespace) -> dict[str, Any]:
    # `run` also builds the snapshots: a Spark session when they need Spark, even if the plane does not
    engine = _plane_engine("run", ",".join(data_plane.DATA_PLANE_STEPS))
    return data_plane.run_days(
        engine,
        a.start,
        a.end,
        cadence=a.cadence,
        batch_days=a.batch_days,
        publish=a.publish,
        progress=progress("ingest + gate"),
        say=say,
    )


def register(sub: SubParsers) -> None:
    data = sub.add_parser("data", help="synthetic data").add_subparsers(dest="data_command", required=True)
    g = data.add_parser("generate", help="write synthetic transaction files in the landing layout")
    g.add_argument("--customers", type=positive, default=2000, help="number of customers (default 2000)")
    g.add_argument("--start", type=iso_date, required=True, help="first day (YYYY-MM-DD)")
    g.add_argument("--end", type=iso_date, required=True, help="last day, inclusive")
    g.add_argument("--seed", type=int, default=42, help="random seed; same seed, same files")
    g.add_argument("--drift-at", type=iso_date, default=None, help="shift amounts, channels and rates from this day")
    g.add_argument(
        "--out",
        type=location,
        default=None,
        help="output root: a folder or an abfss:// URI (default: the landing zone, ML_PLATFORM_LANDING_URI)",
    )
    g.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    g.set_defaults(func=generate)
    ld = data.add_parser("land", help="copy <table>/<YYYY-MM-DD>/ folders into the landing zone, a day range at a time")
    ld.add_argument("--source", type=Path, required=True, help="a folder in the landing layout (e.g. generate --out)")
    ld.add_argument("--start", type=iso_date, default=None, help="first day to land (default: the first there is)")
    ld.add_argument("--end", type=iso_date, default=None, help="last day to land, inclusive (default: the last)")
    ld.set_defaults(func=land)

    i = sub.add_parser("ingest", help="load your own transactions (and customers) file(s) into bronze")
    i.add_argument(
        "--transactions",
        type=location,
        required=True,
        help="a file or a folder of files: a local path, an abfss:// URI or a Blob https:// URL",
    )
    i.add_argument("--customers", type=location, default=None, help="optional customers file or folder (same forms)")
    i.add_argument("--format", choices=("csv", "parquet"), default=None, help="default: from the file extension")
    i.add_argument("--delimiter", default=",", help="CSV field separator; ' ' for whitespace-separated text")
    i.add_argument(
        "--timestamp-format",
        default=None,
        help="Spark datetime pattern for transaction_ts/signup_date, e.g. 'dd/MM/yyyy HH:mm'",
    )
    i.add_argument("--ingest-date", type=iso_date, default=None, help="bronze partition (default: today, UTC)")
    i.set_defaults(func=ingest)

    v = sub.add_parser("validate", help="GE gate for bronze rows ingested in [start, end]: quarantine + silver")
    v.add_argument("--start", type=iso_date, required=True)
    v.add_argument("--end", type=iso_date, required=True, help="inclusive")
    v.set_defaults(func=validate)

    r = sub.add_parser(
        "run", help="ingest landed files, gate and build features for [start, end] (one process; Spark: one JVM)"
    )
    r.add_argument("--start", type=iso_date, required=True)
    r.add_argument("--end", type=iso_date, required=True, help="inclusive")
    r.add_argument("--cadence", choices=("daily", "weekly"), default=None, help="default: ML_PLATFORM_SNAPSHOT_CADENCE")
    r.add_argument(
        "--batch-days",
        type=positive,
        default=7,
        help="days gated together (default 7); the future-timestamp rule uses the batch's end",
    )
    r.add_argument(
        "--publish",
        action="store_true",
        help="then publish the newest snapshot to the online store in the same process (skipped when an "
        "older date than the lake's newest)",
    )
    r.set_defaults(func=run)
