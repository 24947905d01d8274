#!/usr/bin/env bash
# Start the MLflow server on 127.0.0.1:$ML_PLATFORM_MLFLOW_PORT (the target of the Airflow tasks'
# "MLflow run" and "Model version" links). Records its pid under $ML_PLATFORM_HOME/run/ for
# scripts/stop.sh and waits until it answers. Two roles:
# - the UI over the embedded store (default): the tasks write the SQLite file themselves;
# - the tracking server every client reaches over HTTP: ML_PLATFORM_MLFLOW_BACKEND_STORE names its
#   store (e.g. postgresql+psycopg2://user@host:5432/mlflow) and ML_PLATFORM_MLFLOW_ARTIFACTS its
#   artifact root (e.g. wasbs://<container>@<account>.blob.core.windows.net/<path>), which it
#   proxies: only the server holds the storage credential (AZURE_STORAGE_CONNECTION_STRING or
#   AZURE_STORAGE_ACCESS_KEY, else the Azure identity). Clients then set
#   ML_PLATFORM_MLFLOW_TRACKING_URI=http://127.0.0.1:$ML_PLATFORM_MLFLOW_PORT.
# With an HTTP tracking URI and no backend store (a tracking server of your own) there is nothing
# to start: the links point at that server.
# The tracking server (not the UI over the embedded store, whose file the local user owns anyway)
# runs MLflow's basic-auth app (mlflow-auth.ini; users in
# <home>/mlflow/basic_auth.db): MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD name its admin,
# the account every platform client sends, and MLFLOW_FLASK_SERVER_SECRET_KEY signs its forms. All
# three are required; scripts/demo.sh generates them once per home (<home>/run/mlflow-auth.env).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
PORT="${ML_PLATFORM_MLFLOW_PORT:-25000}"
STORE="${ML_PLATFORM_MLFLOW_BACKEND_STORE:-${ML_PLATFORM_MLFLOW_TRACKING_URI:-sqlite:///$ML_PLATFORM_HOME/mlflow/mlflow.db}}"
case "$STORE" in http://*|https://*) echo "MLflow tracking server: $STORE"; exit 0 ;; esac
ARGS=(--backend-store-uri "$STORE" --host 127.0.0.1 --port "$PORT" --workers 1)
if [ -n "${ML_PLATFORM_MLFLOW_BACKEND_STORE:-}" ]; then  # the tracking server: clients write through it
  : "${MLFLOW_TRACKING_USERNAME:?set MLFLOW_TRACKING_USERNAME (the tracking server's admin)}"
  : "${MLFLOW_TRACKING_PASSWORD:?set MLFLOW_TRACKING_PASSWORD (the tracking server's admin password)}"
  : "${MLFLOW_FLASK_SERVER_SECRET_KEY:?set MLFLOW_FLASK_SERVER_SECRET_KEY}"
  export MLFLOW_AUTH_CONFIG_PATH="$ROOT/mlflow-auth.ini"
  export MLFLOW_AUTH_ADMIN_USERNAME="$MLFLOW_TRACKING_USERNAME" MLFLOW_AUTH_ADMIN_PASSWORD="$MLFLOW_TRACKING_PASSWORD"
  ARGS+=(--app-name basic-auth)
fi
[ -n "${ML_PLATFORM_MLFLOW_ARTIFACTS:-}" ] && ARGS+=(--serve-artifacts --artifacts-destination "$ML_PLATFORM_MLFLOW_ARTIFACTS")
RUN="$ML_PLATFORM_HOME/run"; LOGS="$ML_PLATFORM_HOME/logs"
mkdir -p "$RUN" "$LOGS" "$ML_PLATFORM_HOME/mlflow"
if ! { [ -f "$RUN/mlflow-ui.pid" ] && kill -0 "$(cat "$RUN/mlflow-ui.pid")" 2>/dev/null; }; then
  printf '%s\0' mlflow server "${ARGS[@]}" >"$RUN/mlflow-ui.argv"  # for the test that holds compose equal to it
  (cd "$ML_PLATFORM_HOME/mlflow" && exec setsid nohup mlflow server "${ARGS[@]}" >"$LOGS/mlflow-ui.log" 2>&1 </dev/null) &
  echo $! >"$RUN/mlflow-ui.pid"
fi
for _ in $(seq 1 90); do
  if curl -sf "http://127.0.0.1:$PORT/health" >/dev/null; then echo "MLflow server: http://127.0.0.1:$PORT"; exit 0; fi
  kill -0 "$(cat "$RUN/mlflow-ui.pid")" 2>/dev/null || { echo "mlflow server died: $LOGS/mlflow-ui.log" >&2; tail -20 "$LOGS/mlflow-ui.log" >&2; exit 1; }
  sleep 1
done
echo "MLflow UI did not answer in 90 s: $LOGS/mlflow-ui.log" >&2; exit 1
