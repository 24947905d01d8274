#!/usr/bin/env bash
# Build (or reuse) the project's Python environments, fetch the Spark jars and install Azurite.
#
# Environments are cached outside the clone, keyed by the hash of their lock file and the
# Python version; each is built in a temporary folder and renamed into place only when the
# install succeeded, so a broken install is never reused. `.venv` and `.venv-drift` in the
# repo root are symlinks into that cache. Idempotent: a second run takes about a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3.11}"
CACHE="${ML_PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ml-platform}"
UV_VERSION="0.13.9"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

command -v "$PYTHON" >/dev/null || { log "need $PYTHON on PATH (set PYTHON=...)"; exit 1; }
mkdir -p "$CACHE"

# 1. uv, pinned, in its own small venv.
UV_HOME="$CACHE/uv-$UV_VERSION"
if [ ! -x "$UV_HOME/bin/uv" ]; then
  log "installing uv $UV_VERSION"
  rm -rf "$UV_HOME.tmp"
  "$PYTHON" -m venv "$UV_HOME.tmp"
  "$UV_HOME.tmp/bin/pip" install -q "uv==$UV_VERSION"
  mv "$UV_HOME.tmp" "$UV_HOME"
fi
UV="$UV_HOME/bin/uv"
export UV_CACHE_DIR="$CACHE/uv-cache"
export UV_LINK_MODE="${UV_LINK_MODE:-hardlink}"

# 2. One venv per lock file, linked into the repo.
build_env() {  # name lockfile link
  local name="$1" lock="$2" link="$3"
  local pyver key dir
  pyver="$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
  key="$( (cat "$lock"; echo "$pyver") | sha256sum | cut -c1-16)"
  dir="$CACHE/venvs/$name-$key"
  if [ ! -f "$dir/.complete" ]; then
    log "building the $name environment from $(basename "$lock") (first time only; several minutes)"
    rm -rf "$dir.tmp"
    mkdir -p "$CACHE/venvs"
    "$UV" venv -q --relocatable --python "$PYTHON" "$dir.tmp"
    "$UV" pip sync -q --python "$dir.tmp/bin/python" "$lock"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
    touch "$dir/.complete"
  fi
  # Bytecode once, at set-up: with PYTHONDONTWRITEBYTECODE set (as on CI machines) every process
  # would otherwise compile Airflow, torch, MLflow... from source on each import.
  if [ ! -f "$dir/.bytecode" ]; then
    log "compiling the $name environment's bytecode (first time only)"
    "$dir/bin/python" -m compileall -q -j 0 "$dir/lib" >/dev/null 2>&1 || true
    touch "$dir/.bytecode"
  fi
  ln -sfn "$dir" "$link"
}

# the runtime lock plus the test tools (requirements-test.txt holds both, the same pins as requirements.txt)
build_env main "$ROOT/requirements-test.txt" "$ROOT/.venv"
build_env drift "$ROOT/requirements-drift.txt" "$ROOT/.venv-drift"

# The project itself: editable into main (the venv is shared by clones with the same lock, so
# point it at this checkout every time; it takes a second), without dependencies into drift.
"$UV" pip install -q --python "$ROOT/.venv/bin/python" --no-deps -e "$ROOT"
"$UV" pip install -q --python "$ROOT/.venv-drift/bin/python" --no-deps -e "$ROOT"
# `bentoml build` looks for `uv` on PATH (else it tries `pip install uv`, and uv venvs have no
# pip): the pinned one, beside the environment's python.
ln -sfn "$UV" "$ROOT/.venv/bin/uv"

# 3. The lake's Spark jars (Delta, ABFS), once, through Maven, minus the artifacts pyspark already
#    ships: `ml-platform setup`, the installed package's own set-up command, fills the per-user
#    cache folder ML_PLATFORM_SPARK_JARS_DIR defaults to (jars/delta-<hash of the package's POM>).
JDIR="$(env -u ML_PLATFORM_SPARK_JARS_DIR ML_PLATFORM_CACHE="$CACHE" "$ROOT/.venv/bin/ml-platform" setup \
  | sed -n 's/^  "spark_jars_dir": "\(.*\)",$/\1/p')"
[ -n "$JDIR" ] && [ -f "$JDIR/.complete" ] || { log "ml-platform setup did not fill the jar cache"; exit 1; }
ln -sfn "$JDIR" "$ROOT/.jars"  # for people: the same folder Spark sessions use by default
log "jars: $(ls "$ROOT/.jars" | tr '\n' ' ')"

# 4. A class-data sharing archive of the classes a Spark job loads, once per JDK and jar set
#    (scripts/spark_cds.py): every Spark JVM maps it (scripts/env.sh), a quarter less CPU per job.
CDS="$(env -u JAVA_TOOL_OPTIONS ML_PLATFORM_CACHE="$CACHE" PYTHONPATH="$ROOT/include" \
  "$ROOT/.venv/bin/python" "$ROOT/scripts/spark_cds.py" --out "$CACHE/cds")" \
  && ln -sfn "$CDS" "$ROOT/.spark-cds.jsa" \
  || { log "no class-data archive for Spark (jobs run, a quarter slower to start)"; rm -f "$ROOT/.spark-cds.jsa"; }

# 5. Azurite (the Azure Storage emulator of the azure tier and the Azurite demo), from the npm
#    registry at the versions of its lock file (integrity hashes checked by npm ci).
AKEY="$(cat "$ROOT/scripts/azurite/package-lock.json" | sha256sum | cut -c1-16)"
ADIR="$CACHE/azurite-$AKEY"
#    Only the azure test tier and the Azurite demo need it: without npm, set-up says so and goes on.
if [ ! -f "$ADIR/.complete" ] && ! command -v npm >/dev/null; then
  log "no npm on PATH: Azurite (the azure tier's storage emulator) is not installed; install Node.js + npm and rerun"
elif [ ! -f "$ADIR/.complete" ]; then
  log "installing Azurite through npm (first time only)"
  rm -rf "$ADIR.tmp"; mkdir -p "$ADIR.tmp"
  cp "$ROOT/scripts/azurite/package.json" "$ROOT/scripts/azurite/package-lock.json" "$ADIR.tmp/"
  (cd "$ADIR.tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  rm -rf "$ADIR"; mv "$ADIR.tmp" "$ADIR"; touch "$ADIR/.complete"
fi
if [ -f "$ADIR/.complete" ]; then ln -sfn "$ADIR" "$ROOT/.azurite"; fi

# 6. A Kafka broker (the streaming tier's and the streaming demo's stand-in for Event Hubs' Kafka
#    endpoint, scripts/kafka.sh), its jars from Maven Central at the versions of scripts/kafka/pom.xml.
KKEY="$(sha256sum <"$ROOT/scripts/kafka/pom.xml" | cut -c1-16)"
KDIR="$CACHE/kafka-$KKEY"
if [ ! -f "$KDIR/.complete" ]; then
  log "fetching the Kafka broker's jars through Maven (first time only)"
  rm -rf "$KDIR.tmp"; mkdir -p "$KDIR.tmp"
  mvn -q -B -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$KDIR.tmp/jars" >&2 || { log "Maven could not fetch the Kafka broker's jars"; exit 1; }
  rm -rf "$KDIR"; mv "$KDIR.tmp" "$KDIR"; touch "$KDIR/.complete"
fi
ln -sfn "$KDIR" "$ROOT/.kafka"
