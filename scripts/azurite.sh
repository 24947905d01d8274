#!/usr/bin/env bash
# Start/stop Azurite's Blob service (the Azure Storage emulator) on 127.0.0.1 for the azure test
# tier and the Azurite demo: data under $ML_PLATFORM_AZURITE_DIR (default <home>/azurite), pid
# under <home>/run/ (scripts/stop.sh stops it with the rest).
#   scripts/azurite.sh start [container ...]|stop|status
# `start` waits until the service answers, creates the containers it is given (if missing), and
# prints the variables that point the platform at it: the emulator endpoint and key, and for
# clients of their own the connection string (AZURE_STORAGE_CONNECTION_STRING, what MLflow's
# wasbs:// artifact store reads) and an Airflow connection `azure_lake` of the provider's type.
# Azurite is installed by scripts/bootstrap.sh from the npm registry at the version pinned in
# scripts/azurite/package-lock.json.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
PORT="${ML_PLATFORM_AZURITE_PORT:-20000}"
DATA="${ML_PLATFORM_AZURITE_DIR:-$ML_PLATFORM_HOME/azurite}"
RUN="$ML_PLATFORM_HOME/run"; PIDF="$RUN/azurite.pid"
# Azurite's published development account (the same for every Azurite; not a secret)
ACCOUNT=devstoreaccount1
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

running() { [ -f "$PIDF" ] && kill -0 "$(cat "$PIDF")" 2>/dev/null; }
# the node process serving $PORT (setsid may fork, so $! is not always it)
server_pid() { pgrep -f -- "azurite-blob --blobHost 127.0.0.1 --blobPort $PORT " | head -n1; }

start() {
  [ -x "$ROOT/.azurite/node_modules/.bin/azurite-blob" ] || { echo "Azurite is not installed: install Node.js + npm, then run make setup" >&2; exit 1; }
  mkdir -p "$DATA" "$RUN"
  local launcher=""
  if ! running; then
    setsid nohup "$ROOT/.azurite/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$PORT" \
      --location "$DATA" --loose --skipApiVersionCheck >"$DATA/azurite.log" 2>&1 </dev/null &
    launcher=$!
    echo "$launcher" >"$PIDF"
  fi
  for _ in $(seq 1 60); do
    # any HTTP answer (403 without credentials) means the service listens
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/$ACCOUNT?comp=list")" != 000 ]; then
      server_pid >"$PIDF"
      local endpoint="http://127.0.0.1:$PORT/$ACCOUNT"
      local conn="DefaultEndpointsProtocol=http;AccountName=$ACCOUNT;AccountKey=$KEY;BlobEndpoint=$endpoint;"
      if [ $# -gt 0 ]; then
        AZURE_STORAGE_CONNECTION_STRING="$conn" python -m ml_platform.lake.containers "$@" \
          || { echo "could not create the containers $*" >&2; exit 1; }
      fi
      echo "export ML_PLATFORM_AZURE_EMULATOR_ENDPOINT=$endpoint"
      echo "export ML_PLATFORM_AZURE_STORAGE_ACCOUNT_KEY='$KEY'"
      echo "export AZURE_STORAGE_CONNECTION_STRING='$conn'"
      echo "export AIRFLOW_CONN_AZURE_LAKE='{\"conn_type\": \"wasb\", \"extra\": {\"connection_string\": \"$conn\"}}'"
      return 0
    fi
    # dead only when neither the process started above (not yet node until it execs) nor a server is left
    { [ -n "$launcher" ] && kill -0 "$launcher" 2>/dev/null; } || [ -n "$(server_pid)" ] \
      || { echo "Azurite died: $DATA/azurite.log" >&2; tail -20 "$DATA/azurite.log" >&2; exit 1; }
    sleep 0.5
  done
  echo "Azurite did not answer in 30 s: $DATA/azurite.log" >&2; exit 1
}

stop() {
  running && { kill -TERM "$(cat "$PIDF")"; for _ in $(seq 1 20); do running || break; sleep 0.25; done; }
  rm -f "$PIDF"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  status) if running; then echo "Azurite: http://127.0.0.1:$PORT/$ACCOUNT (pid $(cat "$PIDF"))"; else echo "Azurite: not running"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
