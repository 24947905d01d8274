"""`ml-platform setup`: what an installed package needs once per user (the lake's Spark jars)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ml_platform.cli._common import SubParsers, say
from ml_platform.config import get_settings
from ml_platform.lake.jars import fetch_jars, jars_dir


def setup(a: argparse.Namespace) -> dict[str, Any]:
    s = get_settings()
    target = jars_dir(s)
    jars = fetch_jars(target, a.jars_from, log=say)
    drift = s.drift_python
    return {
        "spark_jars_dir": str(target),
        "jars": [j.name for j in jars],
        "drift_python": str(drift),
        "drift_python_found": drift.is_file(),
    }


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "setup",
        help="fetch the lake's Spark jars (Delta, ABFS) through Maven into the per-user cache, once",
        description="Fill ML_PLATFORM_SPARK_JARS_DIR (default: a folder of the per-user cache, "
        "~/.cache/ml-platform/jars/delta-<pom hash>) with the jars the package's POM names, minus "
        "those pyspark ships; `make setup` fills the same folder. Idempotent. Also reports where "
        "the drift environment's Python is expected (ML_PLATFORM_DRIFT_PYTHON).",
    )
    p.add_argument(
        "--jars-from", type=Path, default=None, help="a folder of already resolved jars to take them from (no Maven)"
    )
    p.set_defaults(func=setup)
