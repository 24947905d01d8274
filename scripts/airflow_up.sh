#!/usr/bin/env bash
# Start Airflow's components one by one, every listener on 127.0.0.1 (not `airflow standalone`,
# whose log servers bind 0.0.0.0): api-server, scheduler, dag-processor, triggerer. Records pids
# under $ML_PLATFORM_HOME/run/ for scripts/stop.sh and waits until the api-server answers.
# With AIRFLOW__CORE__EXECUTOR=CeleryExecutor (the cluster topology, scripts/cluster.sh) it also starts
# ML_PLATFORM_CELERY_WORKERS (2) `airflow celery worker` processes, each naming the task instances it
# runs `<host>-celery-<i>` (ti.hostname: platform_dags.worker_hostname), as separate hosts would.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
RUN="$ML_PLATFORM_HOME/run"; LOGS="$ML_PLATFORM_HOME/logs"
mkdir -p "$RUN" "$LOGS" "$AIRFLOW_HOME"
# one JWT secret shared by the components (each would otherwise make its own)
SECRET_FILE="$AIRFLOW_HOME/.jwt_secret"
[ -s "$SECRET_FILE" ] || (umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > "$SECRET_FILE")
export AIRFLOW__API_AUTH__JWT_SECRET="$(cat "$SECRET_FILE")"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin}"
# write the admin password ourselves (mode 600) so Airflow never prints a generated one to a log
PASSWORDS="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
[ -s "$PASSWORDS" ] || (umask 077; printf '{"admin": "%s"}\n' "$(head -c 12 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')" > "$PASSWORDS")

airflow db migrate >"$LOGS/db-migrate.log" 2>&1 || { echo "airflow db migrate failed: $LOGS/db-migrate.log" >&2; exit 1; }
# the spark_default connection comes from the environment (AIRFLOW_CONN_SPARK_DEFAULT, scripts/env.sh):
# Airflow reads it before the metadata database, so a copy there would only be a shadow

start() {  # name, command...
  local name="$1"; shift
  if [ -f "$RUN/$name.pid" ] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then return; fi
  printf '%s\0' "$@" >"$RUN/$name.argv"  # the command line, for the test that holds compose equal to it
  setsid nohup "$@" >"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN/$name.pid"
}
start api-server airflow api-server -H 127.0.0.1 -p "$ML_PLATFORM_AIRFLOW_PORT"
start scheduler airflow scheduler --skip-serve-logs
start dag-processor airflow dag-processor
start triggerer airflow triggerer --skip-serve-logs
WORKERS=()
if [ "${AIRFLOW__CORE__EXECUTOR:-}" = CeleryExecutor ]; then
  # the workers share this machine's log folder, which the api-server reads: no log server each
  for i in $(seq 1 "${ML_PLATFORM_CELERY_WORKERS:-2}"); do
    AIRFLOW_WORKER_NAME="celery-$i" AIRFLOW__CORE__HOSTNAME_CALLABLE=platform_dags.worker_hostname \
      start "celery-worker-$i" airflow celery worker --celery-hostname "celery-$i@%h" --skip-serve-logs
    WORKERS+=("celery-worker-$i")
  done
fi

for _ in $(seq 1 120); do
  if curl -sf "http://127.0.0.1:$ML_PLATFORM_AIRFLOW_PORT/api/v2/monitor/health" >/dev/null; then
    echo "Airflow is up on http://127.0.0.1:$ML_PLATFORM_AIRFLOW_PORT"; exit 0
  fi
  for name in api-server scheduler dag-processor triggerer "${WORKERS[@]}"; do
    kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null || { echo "airflow $name died: $LOGS/$name.log" >&2; tail -20 "$LOGS/$name.log" >&2; exit 1; }
  done
  sleep 1
done
echo "Airflow api-server did not answer in 120 s: $LOGS/api-server.log" >&2; exit 1
