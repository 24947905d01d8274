#!/usr/bin/env bash
# The developer's loop (`make check`): the unit tier (ruff lint and format, the import contracts,
# mypy on the public API and every pure test) and then the spark and dags tests of what changed
# since CHECK_BASE (default: the upstream branch if there is one, else HEAD; uncommitted and
# untracked files always count):
#   - a changed test file of those tiers runs;
#   - a changed module of the library (include/ml_platform/...), a DAG, a plugin or a Spark job
#     runs every spark and dags test file that names it (import path or file name).
# A few minutes on 2 cores. It needs no server: the tiers that start PostgreSQL, Redis, Airflow,
# Azurite or the demo (integration, e2e, cluster, ui, azure, faults) are `make test`'s, which CI runs.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
cd "$ROOT"
t0=$(date +%s)

base="${CHECK_BASE:-$(git rev-parse --abbrev-ref --symbolic-full-name '@{upstream}' 2>/dev/null || echo HEAD)}"
changed="$( { git diff --name-only "$base" 2>/dev/null; git ls-files --others --exclude-standard; } | sort -u)"

echo "=== unit tier"
python -m pytest -m unit tests/unit -q --timeout=600 || exit 1

selected=()
add() { [[ " ${selected[*]} " == *" $1 "* ]] || selected+=("$1"); }
for f in $changed; do
  [ -f "$f" ] || continue
  case "$f" in
    tests/spark/test_*.py|tests/dags/test_*.py) add "$f"; continue ;;
    include/ml_platform/*.py) name="$(sed 's#^include/##; s#\.py$##; s#/__init__$##; s#/#.#g' <<<"$f")" ;;
    dags/*.py|plugins/*.py|spark_jobs/*.py) name="$(basename "$f" .py)" ;;
    *) continue ;;
  esac
  for t in $(grep -lwF "$name" tests/spark/test_*.py tests/dags/test_*.py 2>/dev/null); do add "$t"; done
done

if [ ${#selected[@]} -eq 0 ]; then
  echo "=== no spark or dags test touches what changed since $base"
else
  echo "=== spark and dags tests of what changed since $base: ${selected[*]}"
  python -m pytest -m "spark or dags" "${selected[@]}" -q --timeout=900 || exit 1
fi
echo "make check took $(( $(date +%s) - t0 ))s (make test runs every tier: CI's command)"
