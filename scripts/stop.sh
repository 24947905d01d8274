#!/usr/bin/env bash
# Stop every process the demo started (pids recorded under $ML_PLATFORM_HOME/run/): SIGTERM to every
# process group at once, then up to 10 s for all of them together before a SIGKILL to what is left
# (one after another, each waiting its own 10 s, a stack of ten took up to 30 s to stop).
#   scripts/stop.sh [NAME...]   only the named ones (run/<NAME>.pid: scheduler, celery-worker-1, serve, ...)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
RUN="$ML_PLATFORM_HOME/run"
[ -d "$RUN" ] || { echo "nothing to stop ($RUN does not exist)"; exit 0; }
ALL=$(( $# == 0 ))
stop_services() {  # PostgreSQL and Redis, when a TOPOLOGY=cluster demo started them (scripts/cluster.sh)
  [ "$ALL" = 1 ] && [ -f "$RUN/services.owned" ] || return 0
  bash "$ROOT/scripts/services.sh" stop >/dev/null 2>&1 && echo "stopped PostgreSQL and Redis (scripts/services.sh)"
  rm -f "$RUN/services.owned"
}
trap stop_services EXIT
declare -A live=()
for f in "$RUN"/*.pid; do
  [ -e "$f" ] || continue
  [ $# -eq 0 ] || [[ " $* " == *" $(basename "$f" .pid) "* ]] || continue
  pid="$(cat "$f")"; name="$(basename "$f" .pid)"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    live[$name]=$pid
  fi
  rm -f "$f"
done
[ ${#live[@]} -eq 0 ] && [ ! -f "$RUN/services.owned" ] && echo "nothing was running under $ML_PLATFORM_HOME"
for _ in $(seq 1 40); do
  for name in "${!live[@]}"; do kill -0 "${live[$name]}" 2>/dev/null || { echo "stopped $name (${live[$name]})"; unset "live[$name]"; }; done
  [ ${#live[@]} -eq 0 ] && exit 0
  sleep 0.25
done
for name in "${!live[@]}"; do
  kill -KILL -- "-${live[$name]}" 2>/dev/null || kill -KILL "${live[$name]}" 2>/dev/null
  echo "stopped $name (${live[$name]}, killed after 10 s)"
done
