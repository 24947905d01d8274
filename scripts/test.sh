#!/usr/bin/env bash
# Run the test suite tier by tier, printing the host's speed first, each tier's wall time and the
# whole run's time projected onto the slowest known host last (scripts/host_speed.py).
#
# Tiers run in two lanes at once (TEST_LANES): the cluster tier's quick demo, the ui tier that
# opens what it produced and the faults tier in one, every other tier one after another in the
# other (the two lanes take about as long). Most tiers wait on subprocesses, servers and JVM starts
# more than they compute, so two lanes keep both cores busy; the lanes share no ports (free ports
# everywhere), no database (fresh ones per test) and no Redis database number. TEST_LANES=1 runs
# the tiers one after another in TIERS' order.
#
# Starts the PostgreSQL and Redis servers the integration, e2e, cluster and ui tiers need unless
# ML_PLATFORM_TEST_PG_URL / ML_PLATFORM_TEST_REDIS_URL already point at running ones, and stops
# the ones it started when it ends or is interrupted. Figures go to test-results/: host.json,
# tiers.json and each tier's output in tiers/<tier>.log.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
cd "$ROOT"
TIERS="${TIERS:-unit spark dags integration e2e cluster ui azure faults streaming}"
TEST_LANES="${TEST_LANES:-cluster ui faults streaming|unit spark dags integration e2e azure}"
OUT="$ROOT/test-results"
mkdir -p "$OUT/tiers"
t0=$(date +%s)

HOST_JSON="$(python scripts/host_speed.py)"
echo "$HOST_JSON" >"$OUT/host.json"
LOOP="$(python -c 'import json,sys; print(json.loads(sys.argv[1])["loop_seconds"])' "$HOST_JSON")"
READINGS="$(python -c 'import json,sys; print(", ".join(map(str, json.loads(sys.argv[1])["readings"])))' "$HOST_JSON")"
echo "=== host: a 20-million-step Python loop takes ${LOOP}s here (median of ${READINGS}; slowest known host of this kind: 3.3s)"

if [[ " $TIERS " =~ " "(integration|e2e|cluster|ui)" " && -z "${ML_PLATFORM_TEST_PG_URL:-}" ]]; then
  bash scripts/services.sh running || STOP_SERVICES=1
  eval "$(bash scripts/services.sh start)" || { echo "could not start PostgreSQL/Redis (see scripts/services.sh)" >&2; exit 1; }
fi

# the ui tier's screenshots (and outcomes.json), a folder a person can open after the run
export ML_PLATFORM_UI_SCREENSHOTS="${ML_PLATFORM_UI_SCREENSHOTS:-$OUT/ui}"
# tiers share one trained model (tests/conftest.py::trained_model): built by the first tier that needs it
export ML_PLATFORM_TEST_SHARED="${ML_PLATFORM_TEST_SHARED:-$(mktemp -d -t ml-platform-shared-XXXX)}"

# the lanes: each a list of tiers from TIERS; a tier of TIERS that no lane names joins the last lane
lanes=()
if [ "$TEST_LANES" = 1 ]; then
  lanes=("$TIERS")
else
  IFS='|' read -r -a spec <<<"$TEST_LANES"
  placed=" "
  for lane in "${spec[@]}"; do
    picked=""
    for tier in $lane; do [[ " $TIERS " == *" $tier "* ]] && picked+="$tier " && placed+="$tier "; done
    lanes+=("$picked")
  done
  for tier in $TIERS; do [[ "$placed" == *" $tier "* ]] || lanes[-1]+="$tier "; done
fi

run_tier() {  # tier: its output to tiers/<tier>.log, printed whole when it ends; wall time and exit code beside it
  local tier="$1" start rc
  start=$(date +%s)
  echo "=== tier $tier started  [$(( start - t0 ))s]"
  python -m pytest -m "$tier" "tests/$tier" --durations=20 --timeout="${PYTEST_TIMEOUT:-900}" -q >"$OUT/tiers/$tier.log" 2>&1
  rc=$?
  [ $rc -eq 5 ] && { echo "tier $tier collected no tests" >>"$OUT/tiers/$tier.log"; rc=1; }
  echo "$(( $(date +%s) - start ))" >"$OUT/tiers/$tier.wall"
  echo "$rc" >"$OUT/tiers/$tier.rc"
  {
    flock 9
    echo "=== tier: $tier ($(cat "$OUT/tiers/$tier.wall")s, $([ $rc = 0 ] && echo ok || echo "FAILED rc=$rc"))"
    cat "$OUT/tiers/$tier.log"
  } 9>"$OUT/tiers/.print.lock"
}

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
  # pytest takes the TERM as Ctrl-C and tears its fixtures down, and they stop the stacks they
  # started in sessions of their own (tests/interrupt.py): up to 2 minutes for that, then KILL
  for _ in $(seq 1 240); do
    live=0
    for pid in "${pids[@]}"; do kill -0 -- "-$pid" 2>/dev/null && live=1; done
    [ "$live" = 0 ] && break
    sleep 0.5
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null; done
  # the shared demo's stack runs in sessions of its own: an interrupted run must not leave its Celery
  # workers behind, listening on the next run's broker
  [ -d "$ML_PLATFORM_TEST_SHARED/demo/platform/run" ] \
    && ML_PLATFORM_HOME="$ML_PLATFORM_TEST_SHARED/demo/platform" bash scripts/stop.sh >/dev/null 2>&1
  [ -n "${STOP_SERVICES:-}" ] && bash scripts/services.sh stop
  # the e2e tier's fresh environments leave superseded builds (pyspark's sdist, ~0.5-1.4 GB each) in
  # uv's cache: drop what nothing refers to any more
  [ -x .venv/bin/uv ] && .venv/bin/uv cache prune --quiet >/dev/null 2>&1
  return 0
}
trap cleanup EXIT
trap 'echo "interrupted: stopping the tiers" >&2; exit 130' INT TERM

rm -f "$OUT"/tiers/*.wall "$OUT"/tiers/*.rc
export OUT t0
export -f run_tier
for lane in "${lanes[@]}"; do
  [ -n "${lane// /}" ] || continue
  # each lane in its own process group, so an interrupt stops its pytest and what that started
  setsid bash -c 'for tier in $1; do run_tier "$tier"; done' lane "$lane" &
  pids+=($!)
done
wait
pids=()

total=$(( $(date +%s) - t0 ))
failed=0
echo "=== wall time per tier (lanes: $(printf '[%s] ' "${lanes[@]}" | sed 's/ \]/]/g'))"
rows=""
for tier in $TIERS; do
  wall="$(cat "$OUT/tiers/$tier.wall" 2>/dev/null || echo -1)"; rc="$(cat "$OUT/tiers/$tier.rc" 2>/dev/null || echo 1)"
  [ "$rc" = 0 ] || failed=1
  printf '%-12s %5ss  %s\n' "$tier" "$wall" "$([ "$rc" = 0 ] && echo ok || echo FAILED)"
  rows+="${rows:+,}\"$tier\": {\"seconds\": $wall, \"rc\": $rc}"
done
printf '%-12s %5ss\n' "all" "$total"
echo "{\"host\": $HOST_JSON, \"lanes\": \"$TEST_LANES\", \"total_seconds\": $total, \"tiers\": {$rows}}" >"$OUT/tiers.json"
python scripts/host_speed.py --project "$total" "$LOOP"
exit $failed
