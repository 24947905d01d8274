#!/usr/bin/env bash
# The production topology of docker-compose.yaml as processes on 127.0.0.1 (no Docker engine needed):
#   PostgreSQL (Airflow's metadata and Celery results, MLflow's store, Optuna's own database) and
#   Redis (Celery's broker, the online store): scripts/services.sh;
#   a Spark standalone master + 2 workers: scripts/spark_cluster.sh;
# and the settings that put the rest on them, printed as `export` lines:
#   eval "$(bash scripts/cluster.sh start)"
# scripts/demo.sh (TOPOLOGY=cluster) then starts the MLflow tracking server on PostgreSQL
# (scripts/mlflow_ui.sh), Airflow with the CeleryExecutor and 2 Celery workers (scripts/airflow_up.sh)
# and the BentoML service with 2 workers. `bash scripts/cluster.sh stop` stops the Spark cluster,
# PostgreSQL and Redis; `make stop` stops everything, PostgreSQL and Redis too when `start` started them. A setting exported before `start` is kept,
# e.g. fresh databases: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN, ML_PLATFORM_MLFLOW_BACKEND_STORE,
# ML_PLATFORM_OPTUNA_STORAGE.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"

start() {
  local services spark pg redis owned=""
  # servers already running (make test's) are someone else's: only ones started here are `make stop`'s
  bash "$ROOT/scripts/services.sh" running >/dev/null 2>&1 || owned=1
  services="$(bash "$ROOT/scripts/services.sh" start)" || { echo "could not start PostgreSQL/Redis (scripts/services.sh)" >&2; exit 1; }
  pg="$(sed -n 's/^export ML_PLATFORM_TEST_PG_URL=//p' <<<"$services")"
  redis="$(sed -n 's/^export ML_PLATFORM_TEST_REDIS_URL=//p' <<<"$services")"; redis="${redis%/0}"
  if [ -n "$owned" ]; then mkdir -p "$ML_PLATFORM_HOME/run"; : >"$ML_PLATFORM_HOME/run/services.owned"; fi
  spark="$(bash "$ROOT/scripts/spark_cluster.sh" start)" || { echo "could not start the Spark cluster (scripts/spark_cluster.sh)" >&2; exit 1; }
  local airflow_db="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-$pg/airflow}"
  cat <<EOF
export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN='$airflow_db'
export AIRFLOW__CELERY__BROKER_URL='${AIRFLOW__CELERY__BROKER_URL:-$redis/1}'
export AIRFLOW__CELERY__RESULT_BACKEND='${AIRFLOW__CELERY__RESULT_BACKEND:-db+$airflow_db}'
export AIRFLOW__CELERY__WORKER_CONCURRENCY='${AIRFLOW__CELERY__WORKER_CONCURRENCY:-2}'
export ML_PLATFORM_MLFLOW_BACKEND_STORE='${ML_PLATFORM_MLFLOW_BACKEND_STORE:-$pg/mlflow}'
export ML_PLATFORM_MLFLOW_TRACKING_URI='http://127.0.0.1:${ML_PLATFORM_MLFLOW_PORT:-25000}'
export ML_PLATFORM_OPTUNA_STORAGE='${ML_PLATFORM_OPTUNA_STORAGE:-$pg/optuna}'
export ML_PLATFORM_ONLINE_STORE=redis
export ML_PLATFORM_REDIS_URL='${ML_PLATFORM_REDIS_URL:-$redis/0}'
export ML_PLATFORM_SERVING_WORKERS='${ML_PLATFORM_SERVING_WORKERS:-2}'
export ML_PLATFORM_SPARK_CORES_MAX='${ML_PLATFORM_SPARK_CORES_MAX:-1}'
$spark
EOF
}

case "${1:-}" in
  start) start ;;
  stop) bash "$ROOT/scripts/spark_cluster.sh" stop; bash "$ROOT/scripts/services.sh" stop; rm -f "$ML_PLATFORM_HOME/run/services.owned" ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
