#!/usr/bin/env bash
# Start/stop the local PostgreSQL and Redis servers the integration tests (and compose-like
# local runs) use: private data folders, loopback only, ports from the environment.
#   scripts/services.sh start|stop|status|running
# Prints the URLs to export on `start`; `running` exits 0 when both servers answer. PostgreSQL runs as the `postgres` system user
# (it refuses root); both come from Debian packages (.ci/run installs them).
set -euo pipefail
PG_PORT="${ML_PLATFORM_PG_PORT:-25432}"
REDIS_PORT="${ML_PLATFORM_REDIS_PORT:-26379}"
BASE="${ML_PLATFORM_SERVICES_DIR:-/tmp/ml-platform-services-$PG_PORT}"
PGDATA="$BASE/pg"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start() {
  [ -x "$PGBIN/initdb" ] || { echo "PostgreSQL server not installed (apt-get install postgresql)" >&2; exit 1; }
  command -v redis-server >/dev/null || { echo "Redis not installed (apt-get install redis-server)" >&2; exit 1; }
  mkdir -p "$BASE"; chmod 755 "$BASE"
  if [ "$(id -u)" = 0 ]; then mkdir -p "$PGDATA"; chown postgres "$PGDATA"; fi
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust >/dev/null
  fi
  if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PGDATA" start >/dev/null
  fi
  for db in airflow optuna mlflow; do
    as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" \
      | grep -q 1 || as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$db"
  done
  if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save "" --appendonly no \
      --dir "$BASE" --pidfile "$BASE/redis.pid" --logfile "$BASE/redis.log"
  fi
  echo "export ML_PLATFORM_TEST_PG_URL=postgresql+psycopg2://postgres@127.0.0.1:$PG_PORT"
  echo "export ML_PLATFORM_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
}

stop() {
  [ -f "$PGDATA/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast stop >/dev/null 2>&1 || true
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  running) as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1 && redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 ;;
  status) as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status || true; redis-cli -p "$REDIS_PORT" ping || true ;;
  *) echo "usage: $0 start|stop|status|running" >&2; exit 2 ;;
esac
