#!/usr/bin/env bash
# Stop every process the demo started (pids recorded under $ML_PLATFORM_HOME/run/).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
RUN="$ML_PLATFORM_HOME/run"
[ -d "$RUN" ] || { echo "nothing to stop ($RUN does not exist)"; exit 0; }
for f in "$RUN"/*.pid; do
  [ -e "$f" ] || continue
  pid="$(cat "$f")"; name="$(basename "$f" .pid)"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null
    echo "stopped $name ($pid)"
  fi
  rm -f "$f"
done
