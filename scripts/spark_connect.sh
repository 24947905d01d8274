#!/usr/bin/env bash
# Start a long-lived Spark Connect server on 127.0.0.1 (local master, the lake's configuration:
# Delta jars from the set-up cache, UTC) and print the line that points jobs at it:
#   eval "$(bash scripts/spark_connect.sh)"   ->   ML_PLATFORM_SPARK_REMOTE=sc://127.0.0.1:<port>
# Every job (the CLI, the Airflow tasks' spark_jobs/) is then a client of that server: no JVM
# start per task and a JIT that stays warm. The port is ML_PLATFORM_SPARK_CONNECT_PORT (15002).
# The pid is recorded under $ML_PLATFORM_HOME/run/ for scripts/stop.sh; rerunning reuses it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
# port, master and the server's configuration come from the settings (ml_platform.config),
# the configuration being the in-process sessions' one (ml_platform.lake.spark.spark_conf)
mapfile -t CONF < <(ML_PLATFORM_SPARK_REMOTE= python -c '
from ml_platform.config import get_settings
from ml_platform.lake.spark import spark_conf
s = get_settings()
print(s.spark_connect_port)
print(s.spark_master)
for k, v in spark_conf(s).items():
    print(f"{k}={v}")')
[ "${#CONF[@]}" -gt 2 ] || { echo "could not read the settings (see the error above)" >&2; exit 1; }
PORT="${CONF[0]}"; MASTER="${CONF[1]}"
RUN="$ML_PLATFORM_HOME/run"; LOGS="$ML_PLATFORM_HOME/logs"; PID="$RUN/spark-connect.pid"
mkdir -p "$RUN" "$LOGS"
up() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
if ! { [ -f "$PID" ] && kill -0 "$(cat "$PID")" 2>/dev/null && up; }; then
  ARGS=()
  for kv in "${CONF[@]:2}"; do ARGS+=(--conf "$kv"); done
  SPARK_HOME="$(python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
  setsid nohup "$SPARK_HOME/bin/spark-submit" --master "$MASTER" \
    --class org.apache.spark.sql.connect.service.SparkConnectServer --name spark-connect "${ARGS[@]}" \
    --conf spark.connect.grpc.binding.address=127.0.0.1 --conf "spark.connect.grpc.binding.port=$PORT" \
    --conf "spark.pyspark.python=$(command -v python)" --conf spark.scheduler.mode=FAIR --conf spark.log.level=WARN \
    spark-internal >"$LOGS/spark-connect.log" 2>&1 < /dev/null &
  echo $! >"$PID"
  for _ in $(seq 1 120); do
    up && break
    kill -0 "$(cat "$PID")" 2>/dev/null || { echo "the Spark Connect server died: $LOGS/spark-connect.log" >&2;
                                            tail -20 "$LOGS/spark-connect.log" >&2; exit 1; }
    sleep 1
  done
  up || { echo "the Spark Connect server did not listen on 127.0.0.1:$PORT in 120 s: $LOGS/spark-connect.log" >&2; exit 1; }
fi
echo "export ML_PLATFORM_SPARK_REMOTE=sc://127.0.0.1:$PORT"
