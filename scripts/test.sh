#!/usr/bin/env bash
# Run the test suite tier by tier (unit, spark, dags, integration, e2e, cluster, ui, azure, faults), printing each tier's
# wall time. Starts the PostgreSQL and Redis servers the integration, e2e, cluster and ui tiers need unless
# ML_PLATFORM_TEST_PG_URL / ML_PLATFORM_TEST_REDIS_URL already point at running ones, and stops the
# ones it started when it ends.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
cd "$ROOT"
TIERS="${TIERS:-unit spark dags integration e2e cluster ui azure faults}"

if [[ " $TIERS " =~ " "(integration|e2e|cluster|ui)" " && -z "${ML_PLATFORM_TEST_PG_URL:-}" ]]; then
  bash scripts/services.sh running || trap 'bash scripts/services.sh stop' EXIT
  eval "$(bash scripts/services.sh start)" || { echo "could not start PostgreSQL/Redis (see scripts/services.sh)" >&2; exit 1; }
fi

# the ui tier's screenshots (and outcomes.json), a folder a person can open after the run
export ML_PLATFORM_UI_SCREENSHOTS="${ML_PLATFORM_UI_SCREENSHOTS:-$ROOT/test-results/ui}"
# tiers share one trained model (tests/conftest.py::trained_model): built by the first tier that needs it
export ML_PLATFORM_TEST_SHARED="${ML_PLATFORM_TEST_SHARED:-$(mktemp -d -t ml-platform-shared-XXXX)}"

declare -A WALL RC
failed=0
for tier in $TIERS; do
  echo "=== tier: $tier"
  start=$(date +%s)
  python -m pytest -m "$tier" "tests/$tier" --durations=20 --timeout="${PYTEST_TIMEOUT:-900}" -q
  rc=$?
  [ $rc -eq 5 ] && { echo "tier $tier collected no tests" >&2; rc=1; }
  WALL[$tier]=$(( $(date +%s) - start )); RC[$tier]=$rc
  [ $rc -ne 0 ] && failed=1
done
echo "=== wall time per tier"
for tier in $TIERS; do printf '%-12s %5ss  %s\n' "$tier" "${WALL[$tier]}" "$([ "${RC[$tier]}" = 0 ] && echo ok || echo FAILED)"; done
exit $failed
