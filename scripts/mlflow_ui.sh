#!/usr/bin/env bash
# Start the MLflow UI over the platform's own tracking store on 127.0.0.1:$ML_PLATFORM_MLFLOW_PORT
# (the target of the Airflow tasks' "MLflow run" and "Model version" links). Records its pid under
# $ML_PLATFORM_HOME/run/ for scripts/stop.sh and waits until it answers. With an HTTP tracking URI
# (a tracking server of your own) there is nothing to start: the links point at that server.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
PORT="${ML_PLATFORM_MLFLOW_PORT:-25000}"
STORE="${ML_PLATFORM_MLFLOW_TRACKING_URI:-sqlite:///$ML_PLATFORM_HOME/mlflow/mlflow.db}"
case "$STORE" in http://*|https://*) echo "MLflow tracking server: $STORE"; exit 0 ;; esac
RUN="$ML_PLATFORM_HOME/run"; LOGS="$ML_PLATFORM_HOME/logs"
mkdir -p "$RUN" "$LOGS" "$ML_PLATFORM_HOME/mlflow"
if ! { [ -f "$RUN/mlflow-ui.pid" ] && kill -0 "$(cat "$RUN/mlflow-ui.pid")" 2>/dev/null; }; then
  setsid nohup mlflow server --backend-store-uri "$STORE" --host 127.0.0.1 --port "$PORT" --workers 1 \
    >"$LOGS/mlflow-ui.log" 2>&1 </dev/null &
  echo $! >"$RUN/mlflow-ui.pid"
fi
for _ in $(seq 1 90); do
  if curl -sf "http://127.0.0.1:$PORT/health" >/dev/null; then echo "MLflow UI: http://127.0.0.1:$PORT"; exit 0; fi
  kill -0 "$(cat "$RUN/mlflow-ui.pid")" 2>/dev/null || { echo "mlflow server died: $LOGS/mlflow-ui.log" >&2; tail -20 "$LOGS/mlflow-ui.log" >&2; exit 1; }
  sleep 1
done
echo "MLflow UI did not answer in 90 s: $LOGS/mlflow-ui.log" >&2; exit 1
