"""The lake's Spark jars (Delta Lake, Hadoop's ABFS connector), fetched once through Maven.

`spark-jars.pom.xml` (shipped with the package) names them; `fetch_jars` resolves it with Maven and
keeps the jars pyspark does not ship already (Spark's own jackson, hadoop, parquet... must win) in
the per-user cache folder `ML_PLATFORM_SPARK_JARS_DIR` defaults to. `ml-platform setup` runs it for
an installed package and `scripts/bootstrap.sh` for a checkout: both fill the same folder, and no
Spark job downloads anything at run time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ml_platform.config import Settings, default_jars_dir, spark_jars_pom
from ml_platform.errors import ConfigError

__all__ = ["fetch_jars", "jars_dir"]


def jars_dir(settings: Settings) -> Path:
    """The jar folder of these settings: `ML_PLATFORM_SPARK_JARS_DIR`, else the per-user cache's."""
    return settings.spark_jars_dir or default_jars_dir()


def _artifact(jar: str) -> str:
    """`delta-spark_4.2_2.13-4.4.0.jar` -> `delta-spark_4.2_2.13`."""
    return re.sub(r"-[0-9][^-]*\.jar$", "", jar)


def fetch_jars(target: Path, from_dir: Path | None = None, log: Callable[[str], Any] = print) -> list[Path]:
    """Fill `target` with the POM's jars minus pyspark's own (from Maven, or from `from_dir`, a
    folder of already resolved jars, e.g. an image's build stage). Idempotent: a complete folder
    (marker `.complete`) is kept as it is; a new one is built beside it and renamed into place."""
    import pyspark

    if (target / ".complete").is_file():
        return sorted(target.glob("*.jar"))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
        staging = Path(tmp) / "jars"
        staging.mkdir()
        if from_dir is None:
            mvn = shutil.which("mvn")
            if mvn is None:
                raise ConfigError(
                    "Maven (mvn) is needed once to fetch the Delta jars: install it, then rerun `ml-platform setup`"
                )
            from_dir = Path(tmp) / "all"
            pom = Path(tmp) / "pom.xml"
            pom.write_bytes(spark_jars_pom())
            log("fetching the Delta Lake and ABFS jars through Maven")
            run = subprocess.run(
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(pom),
                    "dependency:copy-dependencies",
                    "-DincludeScope=runtime",
                    f"-DoutputDirectory={from_dir}",
                ],
                capture_output=True,
                text=True,
            )
            if run.returncode != 0:
                raise ConfigError(f"Maven could not resolve the Delta jars: {(run.stdout + run.stderr)[-1500:]}")
        shipped = {_artifact(j.name) for j in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}
        jars = sorted(from_dir.glob("*.jar"))
        if not any(j.name.startswith("delta-spark_") for j in jars):
            raise ConfigError(f"no delta-spark jar in {from_dir}")
        for jar in jars:
            if _artifact(jar.name) not in shipped:
                shutil.copy2(jar, staging / jar.name)
        (staging / ".complete").touch()
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    return sorted(target.glob("*.jar"))
