#!/usr/bin/env bash
# Start/stop a Kafka broker on 127.0.0.1 that logs in the way Azure Event Hubs does (SASL PLAIN, user
# `$ConnectionString`, the connection string as password; no TLS here): the stand-in for Event Hubs
# of the streaming tier and the streaming demo. KRaft, broker and controller in one JVM; data under
# <home>/kafka, pid under <home>/run/ (scripts/stop.sh stops it with the rest).
#   scripts/kafka.sh start|stop|status
# The port is ML_PLATFORM_EVENT_HUBS_BOOTSTRAP's (default 127.0.0.1:19092; the controller takes the
# next one); the login is ML_PLATFORM_EVENT_HUBS_CONNECTION_STRING's, else the local default
# (`ml-platform stream broker-config` writes the broker's configuration from the settings, so the
# broker and its clients cannot disagree). `start` waits for the broker and creates the topics.
# The jars come from Maven Central through scripts/bootstrap.sh (scripts/kafka/pom.xml).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
BOOT="${ML_PLATFORM_EVENT_HUBS_BOOTSTRAP:-127.0.0.1:19092}"
PORT="${BOOT##*:}"
DATA="$ML_PLATFORM_HOME/kafka"
RUN="$ML_PLATFORM_HOME/run"; PIDF="$RUN/kafka.pid"

running() { [ -f "$PIDF" ] && kill -0 "$(cat "$PIDF")" 2>/dev/null; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

start() {
  [ -d "$ROOT/.kafka/jars" ] || { echo "the Kafka broker is not installed: run make setup" >&2; exit 1; }
  mkdir -p "$DATA" "$RUN"
  if ! running; then
    ml-platform stream broker-config --data "$DATA/log" --out "$DATA/server.properties" >/dev/null
    if [ ! -f "$DATA/log/meta.properties" ]; then  # a new broker: format its storage once
      local id
      id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
      JAVA_TOOL_OPTIONS="" java -cp "$ROOT/.kafka/jars/*" kafka.tools.StorageTool format -t "$id" \
        -c "$DATA/server.properties" >"$DATA/format.log" 2>&1 || { cat "$DATA/format.log" >&2; exit 1; }
    fi
    # one small JVM: the C1 compiler and the serial collector of env.sh, a 512 MB heap
    setsid nohup java -Xmx512m -Xms128m -cp "$ROOT/.kafka/jars/*" kafka.Kafka "$DATA/server.properties" \
      >"$DATA/kafka.log" 2>&1 </dev/null &
    echo $! >"$PIDF"
  fi
  for _ in $(seq 1 120); do
    if listening; then
      ml-platform stream topics >/dev/null || { echo "could not create the topics" >&2; exit 1; }
      echo "export ML_PLATFORM_EVENT_HUBS_BOOTSTRAP=127.0.0.1:$PORT"
      return 0
    fi
    running || { echo "the Kafka broker died: $DATA/kafka.log" >&2; tail -20 "$DATA/kafka.log" >&2; exit 1; }
    sleep 0.5
  done
  echo "the Kafka broker did not listen on $PORT in 60 s: $DATA/kafka.log" >&2; exit 1
}

stop() {
  if running; then
    kill -TERM "$(cat "$PIDF")"
    for _ in $(seq 1 120); do running || break; sleep 0.25; done  # a controlled shutdown takes seconds
    running && kill -KILL "$(cat "$PIDF")"
  fi
  rm -f "$PIDF"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "Kafka: 127.0.0.1:$PORT (pid $(cat "$PIDF"))"; else echo "Kafka: not running"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
