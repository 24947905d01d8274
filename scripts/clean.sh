#!/usr/bin/env bash
# `make clean`: stop everything the demo started (scripts/stop.sh), then remove the platform home
# ($ML_PLATFORM_HOME, default ./.platform), the per-user caches ($ML_PLATFORM_CACHE, default
# ~/.cache/ml-platform: the Python environments, uv and its package cache, the jars, the JVM archive)
# and the checkout's links to them (.venv, .venv-drift, .jars, .spark-cds.jsa). It lists what it will
# remove with sizes and asks first; YES=1 does not ask. The next `make demo` or `make test` sets up again.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
HOME_DIR="${ML_PLATFORM_HOME:-$ROOT/.platform}"
CACHE="${ML_PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ml-platform}"
targets=()
for t in "$HOME_DIR" "$CACHE"; do [ -e "$t" ] && targets+=("$t"); done
links=()
for l in .venv .venv-drift .jars .spark-cds.jsa; do [ -L "$l" ] && links+=("$ROOT/$l"); done
if [ ${#targets[@]} -eq 0 ] && [ ${#links[@]} -eq 0 ]; then echo "nothing to remove"; exit 0; fi
echo "make clean removes:"
for t in "${targets[@]}"; do echo "  $(du -sh "$t" 2>/dev/null | cut -f1)  $t"; done
for l in "${links[@]}"; do echo "  link   $l"; done
if [ "${YES:-0}" != 1 ]; then
  read -r -p "Remove them? [y/N] " answer || answer=""
  [[ "$answer" =~ ^[yY] ]] || { echo "nothing removed"; exit 1; }
fi
[ -d "$HOME_DIR/run" ] && ML_PLATFORM_HOME="$HOME_DIR" bash scripts/stop.sh
rm -rf "${targets[@]}" "${links[@]}"
echo "removed ${#targets[@]} folder(s) and ${#links[@]} link(s)"
