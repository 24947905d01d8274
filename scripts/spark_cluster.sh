#!/usr/bin/env bash
# A Spark standalone cluster on 127.0.0.1: one master and ML_PLATFORM_SPARK_WORKERS workers (2), each
# offering 1 core and ML_PLATFORM_SPARK_WORKER_MEMORY (2g), started with the pyspark distribution's
# own launcher (spark-class with the standalone Master and Worker classes), the command lines of
# docker-compose.yaml's spark-master and spark-worker services.
#   eval "$(bash scripts/spark_cluster.sh start)"  -> ML_PLATFORM_SPARK_MASTER and AIRFLOW_CONN_SPARK_DEFAULT
#   bash scripts/spark_cluster.sh stop | status
# Each worker runs in its own folder under $ML_PLATFORM_HOME/spark/ with PYTHONPATH cleared: executors
# import the platform only from the zip each job ships (ml_platform.lake.spark.code_archive), as on
# a real cluster. Pids are recorded under $ML_PLATFORM_HOME/run/ (scripts/stop.sh stops them too).
# Ports: ML_PLATFORM_SPARK_MASTER_PORT (27077); the master's web UI on the next port.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
PORT="${ML_PLATFORM_SPARK_MASTER_PORT:-27077}"
UI_PORT=$((PORT + 1))
WORKERS="${ML_PLATFORM_SPARK_WORKERS:-2}"
MEMORY="${ML_PLATFORM_SPARK_WORKER_MEMORY:-2g}"
RUN="$ML_PLATFORM_HOME/run"; LOGS="$ML_PLATFORM_HOME/logs"; BASE="$ML_PLATFORM_HOME/spark"
SPARK_HOME="$(python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
export SPARK_HOME SPARK_LOCAL_IP=127.0.0.1 SPARK_NO_DAEMONIZE=1
MASTER="spark://127.0.0.1:$PORT"

alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }
launch() {  # name, folder, command... (spark-class execs the JVM: the recorded pid is the JVM's)
  local name="$1" dir="$2"; shift 2
  alive "$name" && return 0
  mkdir -p "$dir"
  printf '%s\0' "$@" >"$RUN/$name.argv"  # the command line, for the test that holds compose equal to it
  (cd "$dir" && exec env -u PYTHONPATH setsid nohup "$@" >"$LOGS/$name.log" 2>&1 </dev/null) &
  echo $! >"$RUN/$name.pid"
}
workers_alive() {  # ALIVE workers the master reports in its web UI's JSON
  curl -sf "http://127.0.0.1:$UI_PORT/json/" | python -c 'import json, sys; print(sum(w["state"] == "ALIVE" for w in json.load(sys.stdin)["workers"]))' 2>/dev/null || echo 0
}

start() {
  mkdir -p "$RUN" "$LOGS" "$BASE"
  launch spark-master "$BASE/master" spark-class org.apache.spark.deploy.master.Master \
    --host 127.0.0.1 --port "$PORT" --webui-port "$UI_PORT"
  for i in $(seq 1 "$WORKERS"); do
    launch "spark-worker-$i" "$BASE/worker-$i" spark-class org.apache.spark.deploy.worker.Worker \
      "$MASTER" --cores 1 --memory "$MEMORY" --host 127.0.0.1 --webui-port 0 --work-dir "$BASE/worker-$i/work"
  done
  for _ in $(seq 1 90); do
    [ "$(workers_alive)" -ge "$WORKERS" ] && break
    for name in spark-master $(seq -f 'spark-worker-%g' 1 "$WORKERS"); do
      alive "$name" || { echo "Spark $name died: $LOGS/$name.log" >&2; tail -20 "$LOGS/$name.log" >&2; exit 1; }
    done
    sleep 1
  done
  [ "$(workers_alive)" -ge "$WORKERS" ] || { echo "the Spark master at $MASTER did not see $WORKERS workers in 90 s: $LOGS/" >&2; exit 1; }
  echo "export ML_PLATFORM_SPARK_MASTER=$MASTER"
  echo "export AIRFLOW_CONN_SPARK_DEFAULT='{\"conn_type\": \"spark\", \"host\": \"$MASTER\"}'"
  echo "# Spark master web UI: http://127.0.0.1:$UI_PORT ($WORKERS workers, 1 core and $MEMORY each)" >&2
}

stop() {
  for f in "$RUN"/spark-worker-*.pid "$RUN"/spark-master.pid; do
    [ -e "$f" ] || continue
    pid="$(cat "$f")"
    kill -TERM "$pid" 2>/dev/null && for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$f"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) echo "master $MASTER: $(workers_alive) ALIVE workers (web UI http://127.0.0.1:$UI_PORT)" ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
