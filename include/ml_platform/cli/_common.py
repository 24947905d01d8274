"""What every sub-command shares: argument types, the stderr log line, progress bars, the Spark session."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from tqdm import tqdm

from ml_platform.config import get_settings
from ml_platform.engines import Engine
from ml_platform.errors import ConfigError, InvalidName, MlPlatformError
from ml_platform.lake import get_spark
from ml_platform.lake.paths import check_id, check_table_name
from ml_platform.lake.storage import check_location
from ml_platform.locations import normalize
from ml_platform.registry.promotion import Policy
from ml_platform.training.labels import parse_cutoffs, parse_date

SubParsers = Any  # argparse's _SubParsersAction (private type)


def iso_date(value: str) -> date:
    """A YYYY-MM-DD date from 1900-01-01 to 2199-12-31 (argparse type)."""
    try:
        return parse_date(value)
    except MlPlatformError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def positive(value: str) -> int:
    """An integer >= 1 (argparse type)."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {value}")
    return n


def location(value: str) -> str:
    """A local path, an abfss:// URI or a Blob https:// URL (argparse type)."""
    try:
        return normalize(value)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def cutoffs(value: str) -> list[date]:
    """Comma-separated cutoff dates (argparse type)."""
    try:
        return parse_cutoffs(value)
    except MlPlatformError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def policy(value: str) -> dict[str, Any]:
    """JSON overrides of the promotion policy (argparse type), checked against `Policy`."""
    try:
        overrides = json.loads(value)
        Policy.from_mapping(overrides)
    except (ValueError, TypeError) as e:  # JSONDecodeError is a ValueError
        raise argparse.ArgumentTypeError(f"bad --policy {value!r}: {e}") from None
    return dict(overrides)


def model_version(value: str) -> str:
    """A registered model version: a positive integer, as MLflow numbers them."""
    if not value.isdecimal() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"not a model version (a positive integer): {value!r}")
    return str(int(value))


def bento_version(value: str) -> str:
    """A Bento version: letters, digits, `_`, `.`, `-`, starting with a letter or digit, at most 63."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}", value):
        raise argparse.ArgumentTypeError(f"not a Bento version (letters, digits, _ . -): {value!r}")
    return value


def training_set_id(value: str) -> str:
    try:
        return check_id(value, "--id")
    except InvalidName as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def table_name(value: str) -> str:
    try:
        return check_table_name(value)
    except InvalidName as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def say(msg: str) -> None:
    """One timestamped line on stderr (stdout carries only the result)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def progress(label: str) -> Callable[[int, int], None]:
    """A `progress(done, total)` callback drawing a tqdm bar on stderr (closed when done == total)."""
    bar: dict[str, Any] = {}

    def report(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(
                total=total,
                desc=label,
                file=sys.stderr,
                mininterval=1.0,
                dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]",
            )
        b = bar["bar"]
        b.update(done - b.n)
        if done >= total:
            b.close()

    return report


def on_engine(engine: Engine, app: str, what: str = "") -> Engine:
    """`engine`, said on stderr with its reason, started for `app` after checking the lake's location:
    a Spark session (local, or the Spark Connect server of ML_PLATFORM_SPARK_REMOTE); nothing to
    start for the embedded engine, which runs in this process without a JVM."""
    settings = get_settings()
    check_location(settings.lake_uri, what="lake (ML_PLATFORM_LAKE_URI)")
    say(f"{what}{engine.name} engine ({engine.reason})")
    if engine.starts_jvm:
        remote = settings.spark_remote
        say(
            f"connecting to the Spark Connect server {remote}"
            if remote
            else "starting Spark (Delta jars from the set-up cache)"
        )
    engine.start(app)
    return engine


def spark(app: str) -> Any:
    """A Spark session for `app` (local, or the Spark Connect server of ML_PLATFORM_SPARK_REMOTE), after
    checking the lake's location: a bad URI fails before a JVM starts and before any write."""
    settings = get_settings()
    check_location(settings.lake_uri, what="lake (ML_PLATFORM_LAKE_URI)")
    remote = settings.spark_remote
    say(
        f"connecting to the Spark Connect server {remote}"
        if remote
        else "starting Spark (Delta jars from the set-up cache)"
    )
    return get_spark(app)
