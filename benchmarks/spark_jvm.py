"""CPU of one small Delta job through spark-submit under the JVM options `scripts/env.sh` sets,
next to the JVM's defaults and to the C1 compiler alone, measured in the same run.

    .venv/bin/python benchmarks/spark_jvm.py [--rows 100000] [--repeat 3] [--smoke]

The job (write a Delta table of N rows, MERGE a quarter of them again, read and aggregate) runs
`--repeat` times per configuration; the figure is the median of the CPU seconds (user + system)
of spark-submit and everything it started, and of the wall time. Configurations:
`defaults` (no JAVA_TOOL_OPTIONS: tiered compilation, G1, no archive), `C1` (TieredStopAtLevel=1,
the previous setting) and `env.sh` (what every JVM of the platform runs with: C1, the serial
collector, the class-data archive of `scripts/spark_cds.py` when set-up built one).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JOB = """
import sys
from delta.tables import DeltaTable
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
path, rows = sys.argv[1], int(sys.argv[2])
spark.range(rows).selectExpr("id", "cast(id % 97 as int) as k", "cast(id as double) as v") \\
    .write.format("delta").save(path)
upd = spark.range(0, rows, 4).selectExpr("id", "cast(id % 97 as int) as k", "cast(id as double) * 2 as v")
DeltaTable.forPath(spark, path).alias("t").merge(upd.alias("u"), "t.id = u.id") \\
    .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()
n = spark.read.format("delta").load(path).groupBy("k").count().count()
assert n == 97, n
spark.stop()
"""


def env_sh_options() -> str:
    out = subprocess.run(
        ["bash", "-c", f'source "{ROOT}/scripts/env.sh" >/dev/null && printf %s "$JAVA_TOOL_OPTIONS"'],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "JAVA_TOOL_OPTIONS"},
    )
    return out.stdout


def run_once(options: str | None, rows: int, workdir: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one spark-submit of the job."""
    import pyspark

    from ml_platform.config import Settings
    from ml_platform.lake.spark import spark_conf

    settings = Settings(home=workdir / "home", spark_master="local[2]", lake_uri=str(workdir / "lake"))
    cmd = [str(Path(pyspark.__file__).parent / "bin" / "spark-submit"), "--master", "local[2]"]
    for key, value in spark_conf(settings).items():
        cmd += ["--conf", f"{key}={value}"]
    job = workdir / "job.py"
    job.write_text(JOB)
    table = workdir / f"t-{time.monotonic_ns()}"
    env = {k: v for k, v in os.environ.items() if k != "JAVA_TOOL_OPTIONS"}
    env |= {"PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    if options is not None:
        env["JAVA_TOOL_OPTIONS"] = options
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run = subprocess.run([*cmd, str(job), str(table), str(rows)], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0:
        raise SystemExit(f"the job failed ({run.returncode}):\n{run.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--smoke", action="store_true", help="1,000 rows, once per configuration")
    a = p.parse_args(argv)
    rows, repeat = (1_000, 1) if a.smoke else (a.rows, a.repeat)
    if rows < 1 or repeat < 1:
        p.error("--rows and --repeat must be positive")
    configs = {"defaults": None, "C1": "-XX:TieredStopAtLevel=1", "env.sh": env_sh_options()}
    print(f"env.sh: JAVA_TOOL_OPTIONS={configs['env.sh']}", file=sys.stderr)
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="spark-jvm-") as tmp:
        for name, options in configs.items():
            runs = []
            for i in range(repeat):
                print(f"{name}: run {i + 1}/{repeat}", file=sys.stderr)
                runs.append(run_once(options, rows, Path(tmp)))
            results[name] = (statistics.median(c for c, _ in runs), statistics.median(w for _, w in runs))
    base = results["defaults"][0]
    print(f"{'JVM options':<10} {'CPU s':>7} {'wall s':>7} {'CPU vs defaults':>16}")
    for name, (cpu, wall) in results.items():
        print(f"{name:<10} {cpu:7.1f} {wall:7.1f} {cpu / base:15.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
