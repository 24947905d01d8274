"""The one SparkSession factory: Delta extensions and catalog, jars from the set-up cache.

Spark never downloads anything at run time: `spark.jars` points at the files that
`ml-platform setup` (run by `scripts/bootstrap.sh`) fetched through Maven (no `spark.jars.packages`). Every session runs
in UTC so that "end of day d" means the same instant in Spark, pandas and DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_platform.config import Settings, get_settings
from ml_platform.errors import ConfigError
from ml_platform.lake import storage
from ml_platform.lake.endpoints import require_reachable
from ml_platform.lake.jars import jars_dir

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def delta_jars(settings: Settings | None = None) -> list[Path]:
    """The Delta jar files fetched at set-up; a clear error if set-up has not run."""
    jar_dir = jars_dir(settings or get_settings())
    jars = sorted(jar_dir.glob("*.jar")) if jar_dir.is_dir() else []
    if not any(j.name.startswith("delta-spark_") for j in jars):
        raise ConfigError(f"no Delta jars in {jar_dir} (ML_PLATFORM_SPARK_JARS_DIR); run `make setup` to fetch them")
    return jars


def code_archive(settings: Settings | None = None) -> Path:
    """The platform's code as one zip for a cluster's executors (`spark.submit.pyFiles`), the way
    a cluster gets code: built from the imported `ml_platform` package wherever it is installed
    (a wheel's site-packages or a checkout), never read from a shared path by the executors.
    Content-addressed under `<home>/spark/code/`: jobs of one package version share one file, a
    changed package gets a new one, and a reader never sees a half-written zip."""
    import hashlib
    import os
    import zipfile

    import ml_platform

    package = Path(ml_platform.__file__).resolve().parent
    files = sorted(f for f in package.rglob("*") if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc")
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(package).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    out = (settings or get_settings()).home / "spark" / "code" / f"ml_platform-{digest.hexdigest()[:16]}.zip"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            z.write(f, (Path("ml_platform") / f.relative_to(package)).as_posix())
    os.replace(tmp, out)
    return out


def driver_on_loopback(master: str) -> bool:
    """`local[...]`, or a standalone master on this machine's loopback (the cluster of
    `scripts/spark_cluster.sh`): its executors reach a driver that listens on 127.0.0.1 only."""
    return master.startswith("local") or master.startswith(("spark://127.0.0.1:", "spark://localhost:"))


def spark_conf(settings: Settings | None = None) -> dict[str, str]:
    """Spark configuration shared by in-process sessions and spark-submit (`--conf`). On this
    machine (a `local` master, or a standalone one on 127.0.0.1) the driver listens on 127.0.0.1
    only; with a remote cluster's it keeps Spark's defaults, so that executors can reach it. With
    a cluster master, executors run this Python (`spark.pyspark.python`: the same environment,
    as in the platform's image) and import the platform from `code_archive()`, shipped with the job."""
    import sys

    s = settings or get_settings()
    cluster = not s.spark_master.startswith("local")
    return (
        storage.spark_conf(s)
        | {
            "spark.jars": ",".join(str(j) for j in delta_jars(s)),
            "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
            "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
            "spark.sql.session.timeZone": "UTC",
            "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
            "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
            "spark.sql.shuffle.partitions": str(s.spark_shuffle_partitions),
            # Delta's default of 50 partitions for reading its log is sized for big tables
            "spark.databricks.delta.snapshotPartitions": str(s.spark_shuffle_partitions),
            "spark.driver.memory": s.spark_driver_memory,
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.warehouse.dir": str(s.home / "spark-warehouse"),
            "spark.databricks.delta.schema.autoMerge.enabled": "false",
            # spark-submit exits when the job's main returns, even if a library left non-daemon threads
            # behind (hadoop-azure's ABFS clients do: without it the driver JVM of a finished job hangs)
            "spark.submit.callSystemExitOnMainExit": "true",
        }
        | (
            {
                "spark.driver.host": "127.0.0.1",
                "spark.driver.bindAddress": "127.0.0.1",
            }  # nothing listens beyond loopback
            if driver_on_loopback(s.spark_master)
            else {}
        )  # a remote cluster's executors must reach the driver
        | (
            {
                "spark.submit.pyFiles": str(code_archive(s)),
                "spark.pyspark.python": sys.executable,
                "spark.executor.memory": s.spark_executor_memory,
            }
            if cluster
            else {}
        )
        | ({"spark.cores.max": str(s.spark_cores_max)} if cluster and s.spark_cores_max else {})
    )


def get_spark(
    app_name: str = "ml-platform",
    settings: Settings | None = None,
    extra_conf: dict[str, str] | None = None,
    *,
    classic: bool = False,
) -> SparkSession:
    """Build (or return the running) SparkSession with Delta configured.

    With `ML_PLATFORM_SPARK_REMOTE` set (and not `classic`, which the RDD-based distributed fit
    asks for), the session is a Spark Connect client of that server (`scripts/spark_connect.sh`
    starts one with this module's configuration): no JVM starts, the server's JIT stays warm.
    `extra_conf` is then set as runtime SQL configuration of the client's own server session."""
    from pyspark.sql import SparkSession

    s = settings or get_settings()
    if s.spark_remote and not classic:
        spark = SparkSession.builder.remote(s.spark_remote).getOrCreate()
        for key, value in (extra_conf or {}).items():
            spark.conf.set(key, value)
        return spark

    if s.spark_master.startswith("spark://"):  # a standalone cluster: fail now, not after the JVM waited for it
        require_reachable(
            s.spark_master,
            "the Spark master",
            "start it (scripts/spark_cluster.sh start) or fix ML_PLATFORM_SPARK_MASTER",
        )
    builder = SparkSession.builder.appName(app_name).master(s.spark_master)
    # credentials of the lake's storage account: set in-process only, never on a command line
    for key, value in {**spark_conf(s), **storage.spark_conf(s, secrets=True), **(extra_conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def _die_with_parent() -> Callable[[], None]:
    """A `preexec_fn` after which the kernel sends the child SIGTERM when the process that started it
    dies (a task killed for its execution_timeout, or with its worker), so no client outlives its
    task. libc's `prctl` is resolved here, in the parent: the child only calls it (no dlopen between
    fork and exec, where another thread's lock could be held)."""
    import ctypes
    import signal

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run_python_job(
    application: str,
    args: list[str],
    env: dict[str, str] | None = None,
    log: Callable[[str], Any] = print,
    why: str = "a Spark Connect client (ML_PLATFORM_SPARK_REMOTE)",
) -> int:
    """Run a `spark_jobs/` entry point with this Python instead of spark-submit (as a Spark Connect
    client, or a job on the embedded engine): the job's arguments, the environment plus `env`;
    every output line goes to `log`, after one line naming the command and `why`. Returns the exit
    code (what spark-submit would run for a Python application, minus its launcher JVM)."""
    import os
    import subprocess
    import sys

    cmd = [sys.executable, application, *[str(a) for a in args]]
    log(f"{' '.join(cmd)}: {why}, no spark-submit")
    with subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        preexec_fn=_die_with_parent(),
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log(line.rstrip("\n"))
    return proc.returncode
