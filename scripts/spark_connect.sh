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
PORT="${ML_PLATFORM_SPARK_CONNECT_PORT:-15002}"
RUN="$ML_PLATFORM_HOME/run"; LOGS="$ML_PLATFORM_HOME/logs"; PID="$RUN/spark-connect.pid"
mkdir -p "$RUN" "$LOGS"
up() { python - "$PORT" <<'PY'
import socket, sys
with socket.socket() as s:
    s.settimeout(1)
    sys.exit(s.connect_ex(("127.0.0.1", int(sys.argv[1]))))
PY
}
if ! { [ -f "$PID" ] && kill -0 "$(cat "$PID")" 2>/dev/null && up; }; then
  # the server's configuration is the in-process sessions' one (ml_platform.lake.spark.spark_conf)
  mapfile -t CONF < <(ML_PLATFORM_SPARK_REMOTE= python -c '
from ml_platform.lake.spark import spark_conf
for k, v in spark_conf().items():
    print(f"{k}={v}")')
  ARGS=()
  for kv in "${CONF[@]}"; do ARGS+=(--conf "$kv"); done
  SPARK_HOME="$(python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
  setsid nohup "$SPARK_HOME/bin/spark-submit" --master "${ML_PLATFORM_SPARK_MASTER:-local[*]}" \
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
