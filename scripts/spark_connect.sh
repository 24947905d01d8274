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
# the server's command line from ml_platform.lake.connect_server (master, port and the lake's
# configuration from the settings), the same module the compose stack's spark-connect service runs;
# building it once here also reports bad settings or missing jars before anything starts
CMD="$(ML_PLATFORM_SPARK_REMOTE= python -m ml_platform.lake.connect_server --bind 127.0.0.1 --print)" \
  || { echo "could not build the Spark Connect server's command (see the error above)" >&2; exit 1; }
PORT="$(sed -n 's/^spark\.connect\.grpc\.binding\.port=//p' <<<"$CMD")"
RUN="$ML_PLATFORM_HOME/run"; LOGS="$ML_PLATFORM_HOME/logs"; PID="$RUN/spark-connect.pid"
mkdir -p "$RUN" "$LOGS"
up() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
if ! { [ -f "$PID" ] && kill -0 "$(cat "$PID")" 2>/dev/null && up; }; then
  # the Python process execs spark-submit, which execs the JVM: the pid stays the server's
  ML_PLATFORM_SPARK_REMOTE= setsid nohup python -m ml_platform.lake.connect_server --bind 127.0.0.1 --port "$PORT" \
    >"$LOGS/spark-connect.log" 2>&1 < /dev/null &
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
