"""Which engine runs a job: the embedded one (DuckDB over the lake's files, in the calling
process, no JVM) or Spark, per job kind (`ML_PLATFORM_ENGINE_<KIND>`: auto | embedded | spark).

`auto` picks the embedded engine when no Spark cluster is configured (`ML_PLATFORM_SPARK_MASTER`
is `local[...]`), every input table is one it can read (no deletion vectors, no column mapping)
and the inputs' live files add up to less than `ML_PLATFORM_EMBEDDED_MAX_BYTES`; Spark otherwise.
The lake may be a local folder or in Azure Storage (`lake.delta_log` reads and commits both).
The choice comes with its reason, which callers print and keep with the run's result.
"""

from __future__ import annotations

from ml_platform.config import Settings, get_settings
from ml_platform.engines.base import EmbeddedEngine, Engine, SparkEngine
from ml_platform.errors import ConfigError
from ml_platform.locations import is_remote

KINDS = ("data_plane", "features", "training_sets", "scoring")


def input_bytes(paths: list[str]) -> int:
    """Bytes of the live files of the Delta tables at `paths` (absent tables count 0)."""
    from ml_platform.lake.delta_log import snapshot

    total = 0
    for p in paths:
        snap = snapshot(p)
        if snap is not None:
            total += sum(int(a.get("size") or 0) for a in snap.files.values())
    return total


def choose_engine(
    kind: str, inputs: list[str], settings: Settings | None = None, *, measured: int | None = None
) -> Engine:
    """The engine for a job of `kind` reading the Delta tables `inputs` (see the module doc).
    `measured`: the inputs' `input_bytes` when the caller has read them already (a run choosing for
    two steps over the same table reads its log once). `ConfigError` when the embedded engine is
    asked for where it cannot run."""
    from ml_platform.lake.reader import UnsupportedTable

    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}; one of {KINDS}")
    s = settings or get_settings()
    wanted = getattr(s, f"engine_{kind}")
    variable = f"ML_PLATFORM_ENGINE_{kind.upper()}"
    if wanted == "spark":
        return SparkEngine(f"{variable}=spark")
    where = "lake in Azure Storage" if is_remote(s.lake_uri) else "local lake"
    if wanted == "embedded":
        try:
            size = input_bytes(inputs) if measured is None else measured
        except UnsupportedTable as e:
            raise ConfigError(f"{variable}=embedded cannot run here: {e}") from None
        return EmbeddedEngine(f"{variable}=embedded ({size / 2**20:.1f} MiB of input files)")
    if not s.spark_master.startswith("local"):
        return SparkEngine(f"auto: a Spark cluster is configured ({s.spark_master})")
    try:
        size = input_bytes(inputs) if measured is None else measured
    except UnsupportedTable as e:
        return SparkEngine(f"auto: {e}")
    mib, limit = size / 2**20, s.embedded_max_bytes / 2**20
    if size > s.embedded_max_bytes:
        return SparkEngine(f"auto: {mib:.1f} MiB of input files > ML_PLATFORM_EMBEDDED_MAX_BYTES ({limit:.0f} MiB)")
    return EmbeddedEngine(f"auto: {where}, {mib:.1f} MiB of input files <= {limit:.0f} MiB, no cluster")
