# Environment shared by the Makefile targets, the demo and CI (source it; no side effects).
# Every value can be overridden by exporting it first.
ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
export TZ=UTC  # docs/ARCHITECTURE.md "Time": Spark, pandas, DuckDB and Airflow all in UTC
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore:PySpark does not yet fully support pandas:FutureWarning}"  # pyspark 4.2 + pandas 3: noise on every session
export ML_PLATFORM_HOME="${ML_PLATFORM_HOME:-$ROOT/.platform}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ML_PLATFORM_HOME/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES="False"
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:-True}"
export AIRFLOW__LOGGING__LOGGING_LEVEL="${AIRFLOW__LOGGING__LOGGING_LEVEL:-INFO}"  # task logs in the UI show what ran
_spark_conn='{"conn_type": "spark", "host": "local[2]"}'
export AIRFLOW_CONN_SPARK_DEFAULT="${AIRFLOW_CONN_SPARK_DEFAULT:-$_spark_conn}"
export MLFLOW_DISABLE_TELEMETRY=true
export SCARF_NO_ANALYTICS=true DO_NOT_TRACK=true GX_ANALYTICS_ENABLED=false BENTOML_DO_NOT_TRACK=true
export BENTOML_HOME="${BENTOML_HOME:-$ML_PLATFORM_HOME/bentoml}"  # built Bentos stay in the platform home
# this checkout's code first: the cached venv is shared by clones with the same lock file
export PYTHONPATH="$ROOT/include:$ROOT/plugins${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$ROOT/.venv/bin:$PATH"
# uv (the e2e tier builds the wheel and fresh environments with it) shares set-up's cache: pyspark's
# sdist is built once there, not once per run into ~/.cache/uv (about 1 GB a run)
export UV_CACHE_DIR="${UV_CACHE_DIR:-${ML_PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ml-platform}/uv-cache}"
export ML_PLATFORM_DRIFT_PYTHON="${ML_PLATFORM_DRIFT_PYTHON:-$ROOT/.venv-drift/bin/python}"  # a checkout's drift environment
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"  # Spark's own services on loopback (and no warning per JVM)
# every JVM here (Spark drivers, executors, the standalone master and workers) runs short jobs on
# small data: the C1 compiler alone costs 38 % less CPU and half the wall time per spark-submit
# (a 100k-row Delta write: 27.3 s -> 17.2 s of CPU, 2026-12-07), the serial collector a few % more
# on 2 cores, and the class-data archive set-up built (scripts/spark_cds.py: the classes of a Delta
# job, mapped instead of parsed and verified) another quarter (11.9 s -> 8.2 s of CPU for a small
# Delta job, 2026-12-07). A JVM the archive does not fit runs without it, silently. C1 alone
# would reserve 48 MB for compiled code, which a long job fills (the JVM then stops compiling and
# says so): the 240 MB of the default. The JVM's own warnings go to stderr, never into the JSON a
# CLI prints on stdout. JAVA_TOOL_OPTIONS="" for long jobs.
_jvm="-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m -XX:+UseSerialGC -Xlog:disable -Xlog:all=warning:stderr"
_cds="$(readlink -f "$ROOT/.spark-cds.jsa" 2>/dev/null || true)"
[ -f "$_cds" ] && _jvm+=" -XX:SharedArchiveFile=$_cds -Xlog:cds=off:stderr -Xlog:cds+dynamic=off:stderr"
export JAVA_TOOL_OPTIONS="${JAVA_TOOL_OPTIONS-$_jvm}"
unset _jvm _cds
# the tracking server's job runners (two huey consumers per server) serve MLflow's GenAI jobs, which
# the platform does not use: off, they are two processes and their polling less per server
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"
export JAVA_HOME="${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}"
export ML_PLATFORM_AIRFLOW_PORT="${ML_PLATFORM_AIRFLOW_PORT:-28080}"
export AIRFLOW__API__HOST="127.0.0.1"
export AIRFLOW__API__PORT="$ML_PLATFORM_AIRFLOW_PORT"
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$ML_PLATFORM_AIRFLOW_PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$ML_PLATFORM_AIRFLOW_PORT/execution/"
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK="False"
# a task's downstream starts within a quarter second of it, not up to Airflow's default 1 s (an idle
# scheduler then takes about 4 % of one core instead of 2 %: docs/performance.md)
export AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME="${AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME:-0.25}"
export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="${AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT:-$((ML_PLATFORM_AIRFLOW_PORT + 1))}"
export AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT="${AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT:-$((ML_PLATFORM_AIRFLOW_PORT + 2))}"
