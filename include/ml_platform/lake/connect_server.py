"""The Spark Connect server's command line, built from the settings in one place.

Two callers: `scripts/spark_connect.sh` (the demo's server, on 127.0.0.1, in the background) and
the `spark-connect` service of docker-compose.yaml (in the foreground, on the compose network,
against the standalone master). The server gets the lake's configuration (`spark_conf`: Delta
jars from the set-up cache, the Delta extension, UTC) and runs Python UDFs
(`mlflow.pyfunc.spark_udf`) with this interpreter. With the lake on Azure Storage, the account's
credential goes to the server in a properties file readable only by its user
(`<home>/run/spark-connect-secrets.conf`), not on its command line.

    python -m ml_platform.lake.connect_server [--bind 127.0.0.1] [--port 15002] [--print]

The master is `ML_PLATFORM_SPARK_MASTER`, the port `ML_PLATFORM_SPARK_CONNECT_PORT`. Without
`--print` the process becomes the server (exec); `--print` shows the command instead.
"""

from __future__ import annotations

import argparse
import os
import sys

from ml_platform.config import Settings, get_settings
from ml_platform.errors import MlPlatformError
from ml_platform.lake import storage
from ml_platform.lake.spark import spark_conf

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


def server_command(bind: str, port: int | None = None, settings: Settings | None = None) -> list[str]:
    """spark-submit of the Spark Connect server with the lake's configuration."""
    import pyspark

    s = settings or get_settings()
    cmd = [
        os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit"),
        "--master",
        s.spark_master,
        "--class",
        SERVER_CLASS,
        "--name",
        "spark-connect",
    ]
    conf = {
        **spark_conf(s),
        "spark.connect.grpc.binding.address": bind,
        "spark.connect.grpc.binding.port": str(port or s.spark_connect_port),
        "spark.pyspark.python": sys.executable,
        "spark.scheduler.mode": "FAIR",  # jobs of concurrent clients share the executors
        "spark.log.level": "WARN",
    }
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    if secrets := storage.spark_conf(s, secrets=True):
        # the lake's storage credential: in a file only this user reads, never on the command line
        path = s.home / "run" / "spark-connect-secrets.conf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text("".join(f"{k} {v}\n" for k, v in secrets.items()))
        cmd += ["--properties-file", str(path)]
    return [*cmd, "spark-internal"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ml_platform.lake.connect_server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--bind", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="default: ML_PLATFORM_SPARK_CONNECT_PORT (15002)")
    p.add_argument("--print", action="store_true", help="print the command, one argument per line, and exit")
    a = p.parse_args(argv)
    try:
        cmd = server_command(a.bind, a.port)
    except MlPlatformError as e:  # e.g. set-up has not fetched the Delta jars
        print(f"spark connect server: {e}", file=sys.stderr)
        return 2
    if a.print:
        print("\n".join(cmd))
        return 0
    os.execv(cmd[0], cmd)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
