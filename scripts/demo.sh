#!/usr/bin/env bash
# The end-to-end demo on embedded defaults (SQLite for Airflow, local Spark, a local Delta lake):
#   1. synthetic transaction files land under $ML_PLATFORM_HOME/landing/ (one file per day)
#   2. a Spark Connect server starts (scripts/spark_connect.sh): every Spark job below, the CLI's
#      and the DAG tasks', is its client (no JVM per job); on one machine the data plane, the
#      snapshots, training sets and batch scores run on the embedded engine and need none.
#      history: `ml-platform run` ingests, gates and snapshots the first weeks in ONE job
#   3. Airflow (api-server, scheduler, dag-processor, triggerer on 127.0.0.1) runs
#      features_build for the last weeks on its schedule, then a backfill reprocesses one week
#   4. prints the tables, runs, reports and how to open the UI. `make stop` stops Airflow.
#   5. feature store: a point-in-time training set with churn labels for several cutoffs through
#      the CLI and the Python API (rebuilt from lineage), online lookups, a skew check
#   6. training: the `training` DAG, triggered with params as from the UI: point-in-time training
#      set, Optuna search across model families on 2 mapped workers tracked in MLflow, the best
#      model registered as churn_model@challenger, then its HTML report (SHAP, fairness)
#   7. serving: `ml-platform serve` (BentoML) runs from step 6 on; each new challenger goes through
#      the serving_deploy DAG (gate on the same rows -> Bento build + smoke test -> @champion),
#      the running service picks the champion up, batch_scoring writes gold.churn_scores, and the
#      demo shows a curl command that returns a prediction
#   8. the monitoring loop: DEMO_WEEKS more weeks land one by one (a distribution shift from
#      DEMO_SHIFT_DAY), live traffic each week, the monitoring DAG (labels, drift, performance,
#      the retrain policy) each week; a retrain decision goes through the retrain_on_drift sensor to
#      the training DAG and the gate (scripts/demo_weeks.py); a week table and a PNG at the end
# The history is one delivery: one gate run over it (HISTORY_BATCH_DAYS=7 gates it week by week).
# QUICK=1 (`make demo QUICK=1`, the e2e tier's run): 1000 customers, the history up to the loop in
# the one CLI job (no features_build runs, no backfill), no step 5, one training
# run (the weekly slot; 4 trials), 4 loop weeks with the shift from the first.
# LAKE=azurite (`make demo QUICK=1 LAKE=azurite`): the lake, the landing zone and the MLflow
# artifacts in Azure Storage, emulated by Azurite (scripts/azurite.sh; needs Node.js + npm at
# set-up): abfss:// URIs for Spark and delta-rs, an MLflow tracking server (its store: SQLite
# under the home, or ML_PLATFORM_MLFLOW_BACKEND_STORE, e.g. PostgreSQL) that every client reaches
# over HTTP and that keeps artifacts under wasbs://; the Airflow tasks take the storage
# credential from the Airflow connection `azure_lake` only.
# TOPOLOGY=cluster (`make demo QUICK=1 LAKE=azurite TOPOLOGY=cluster`, the cluster tier's run): the
# production topology of docker-compose.yaml as processes on 127.0.0.1 (scripts/cluster.sh):
# PostgreSQL + Redis, a Spark standalone master with 2 workers that every Spark job runs on (a JVM
# per job, no Spark Connect server), an MLflow tracking server on PostgreSQL, Optuna on its own
# PostgreSQL database, Airflow with the CeleryExecutor and 2 Celery workers, the online store in
# Redis and the BentoML service with 2 workers.
# STREAMING=1 (`make demo STREAMING=1`): after step 8, a Kafka broker with the Event Hubs login
# (scripts/kafka.sh), 1,000 generated events and a few poison ones, the streaming job once (quarantine,
# bronze/silver, the online streaming features, the champion's scores) and its status.
# Settings: the ML_PLATFORM_* variables in README.md. Rerunning the demo is safe (idempotent).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QUICK="${QUICK:-0}"
LAKE="${LAKE:-local}"
case "$LAKE" in local|azurite) ;; *) echo "LAKE=$LAKE: use local (the default) or azurite" >&2; exit 2 ;; esac
TOPOLOGY="${TOPOLOGY:-local}"
case "$TOPOLOGY" in local|cluster) ;; *) echo "TOPOLOGY=$TOPOLOGY: use local (the default) or cluster" >&2; exit 2 ;; esac
if [ "$QUICK" = 1 ]; then
  DEMO_WEEKS="${DEMO_WEEKS:-4}" DEMO_CUSTOMERS="${DEMO_CUSTOMERS:-1000}" DEMO_TRIALS="${DEMO_TRIALS:-4}"
  DEMO_SHIFT_DAY="${DEMO_SHIFT_DAY:-2025-03-23}"
  export ML_PLATFORM_RETRAIN_POLICY="${ML_PLATFORM_RETRAIN_POLICY:-{\}}"  # the defaults: 2 retrains per 28 days
fi
export ML_PLATFORM_SNAPSHOT_CADENCE="${ML_PLATFORM_SNAPSHOT_CADENCE:-weekly}"
export ML_PLATFORM_RETRAIN_POLL_SECONDS="${ML_PLATFORM_RETRAIN_POLL_SECONDS:-2}"  # a decision reaches training in seconds
export ML_PLATFORM_SERVING_POLL_SECONDS="${ML_PLATFORM_SERVING_POLL_SECONDS:-2}"  # and a new champion the service
DATA_START="${DEMO_START:-2025-01-01}"   # a Wednesday
HISTORY_END="2025-03-08"                 # Saturday: last snapshot made by the CLI
[ "$QUICK" = 1 ] && HISTORY_END="2025-03-22"
export ML_PLATFORM_DAG_START_DATE="${ML_PLATFORM_DAG_START_DATE:-2025-03-09}"  # Sundays: @weekly intervals
export ML_PLATFORM_DAG_END_DATE="${ML_PLATFORM_DAG_END_DATE:-2025-03-16}"
DATA_END="2025-03-22"                    # last day of the last interval
DEMO_WEEKS="${DEMO_WEEKS:-5}"            # step 8: weeks simulated after DATA_END, one at a time
LOOP_START="2025-03-23"                  # a Sunday
LOOP_END="$(date -u -d "2025-03-22 + $((7 * DEMO_WEEKS)) days" +%F)"
# the monitoring DAG's weekly schedule ends at the loop's last week (its first day: the run's logical
# date), so unpausing it runs only the simulated weeks, not the real current one
export ML_PLATFORM_MONITORING_END_DATE="$(date -u -d "$LOOP_START + $((7 * (DEMO_WEEKS - 1))) days" +%F)"
DEMO_SHIFT_DAY="${DEMO_SHIFT_DAY:-2025-03-30}"  # the generator shifts amounts, channels and rates from here
DEMO_CUTOFFS="2025-02-01,2025-02-08,2025-02-15"   # weekly snapshots whose label window is observed
DEMO_HORIZON=14
export ML_PLATFORM_LABEL_HORIZON_DAYS="${ML_PLATFORM_LABEL_HORIZON_DAYS:-$DEMO_HORIZON}"  # 12 weeks of data: 90 days cannot be observed
export ML_PLATFORM_TRAINING_TRIALS="${ML_PLATFORM_TRAINING_TRIALS:-${DEMO_TRIALS:-8}}"  # retrains on a laptop
# every model input is watched: the synthetic business starts on DATA_START, so tenure, lifetime
# counts and the 90/180-day windows grow with its age every week; each feature's threshold is
# calibrated on that natural movement (ML_PLATFORM_DRIFT_LAG_WEEKS / _CALIBRATION_WEEKS / _MARGIN)
# the two step-6 versions count toward the retrain budget: allow one drift retrain on top
export ML_PLATFORM_RETRAIN_POLICY="${ML_PLATFORM_RETRAIN_POLICY:-{\"max_retrains\": 3\}}"
# the deployment gate times predictions while the next training run's HPO holds both cores of a
# laptop: the demo's latency budgets allow for that (defaults: 100 ms model / 250 ms HTTP)
export ML_PLATFORM_PROMOTION_LATENCY_P99_MS="${ML_PLATFORM_PROMOTION_LATENCY_P99_MS:-1000}"
export ML_PLATFORM_SMOKE_LATENCY_P99_MS="${ML_PLATFORM_SMOKE_LATENCY_P99_MS:-2000}"
source "$ROOT/scripts/env.sh"
cd "$ROOT"
t0=$(date +%s)
mkdir -p "$ML_PLATFORM_HOME/run" "$ML_PLATFORM_HOME/logs"
say() { printf '\n\033[1m== %s\033[0m  [%ss]\n' "$*" "$(( $(date +%s) - t0 ))"; }
# Ctrl-C or SIGTERM: stop what this demo started (every process it records under run/, and
# PostgreSQL and Redis when the cluster topology started them), then exit; a finished demo keeps running
interrupted() {
  trap - INT TERM
  echo "interrupted: stopping what the demo started" >&2
  bash "$ROOT/scripts/stop.sh" >&2
  exit 130
}
trap interrupted INT TERM
if [ "$TOPOLOGY" = cluster ]; then
  eval "$(bash scripts/cluster.sh start)"
  SPARK_CONNECT=0  # every Spark job is its own application on the standalone cluster
  echo "cluster: Spark $ML_PLATFORM_SPARK_MASTER (2 workers), Airflow CeleryExecutor (2 workers), MLflow on PostgreSQL, Redis online store"
fi
if [ "$LAKE" = azurite ]; then
  AZ_ACCOUNT=devstoreaccount1
  export ML_PLATFORM_AZURITE_PORT="${ML_PLATFORM_AZURITE_PORT:-20000}"
  eval "$(bash scripts/azurite.sh start lake landing mlflow)"
  AZ_CONNECTION_STRING="$AZURE_STORAGE_CONNECTION_STRING"; unset AZURE_STORAGE_CONNECTION_STRING  # the MLflow server's only
  export ML_PLATFORM_LAKE_URI="abfss://lake@$AZ_ACCOUNT.dfs.core.windows.net/platform"
  export ML_PLATFORM_LANDING_URI="abfss://landing@$AZ_ACCOUNT.dfs.core.windows.net/incoming"
  export ML_PLATFORM_AZURE_CONN_ID=azure_lake   # AIRFLOW_CONN_AZURE_LAKE, from azurite.sh
  export ML_PLATFORM_MLFLOW_ARTIFACTS="wasbs://mlflow@$AZ_ACCOUNT.blob.core.windows.net/artifacts"
  echo "Azure Storage (Azurite at $ML_PLATFORM_AZURE_EMULATOR_ENDPOINT): lake $ML_PLATFORM_LAKE_URI, landing $ML_PLATFORM_LANDING_URI, MLflow artifacts $ML_PLATFORM_MLFLOW_ARTIFACTS"
fi
# an MLflow tracking server that every client reaches over HTTP (LAKE=azurite, TOPOLOGY=cluster)
MLFLOW_SERVER=0
if [ "$LAKE" = azurite ] || [ "$TOPOLOGY" = cluster ]; then
  MLFLOW_SERVER=1
  export ML_PLATFORM_MLFLOW_BACKEND_STORE="${ML_PLATFORM_MLFLOW_BACKEND_STORE:-sqlite:///$ML_PLATFORM_HOME/mlflow/mlflow.db}"
  export ML_PLATFORM_MLFLOW_ARTIFACTS="${ML_PLATFORM_MLFLOW_ARTIFACTS:-$ML_PLATFORM_HOME/mlflow/artifacts}"
  export ML_PLATFORM_MLFLOW_TRACKING_URI="http://127.0.0.1:${ML_PLATFORM_MLFLOW_PORT:-25000}"
  # the server's admin (the account every client of this demo sends) and its form key: given, or
  # generated once for this home and kept in a file only its owner reads
  AUTH_ENV="$ML_PLATFORM_HOME/run/mlflow-auth.env"
  if [ -z "${MLFLOW_TRACKING_PASSWORD:-}" ] && [ ! -f "$AUTH_ENV" ]; then
    mkdir -p "$ML_PLATFORM_HOME/run"
    (umask 077; python -c 'import secrets; print(f"MLFLOW_TRACKING_USERNAME=platform\nMLFLOW_TRACKING_PASSWORD={secrets.token_urlsafe(24)}\nMLFLOW_FLASK_SERVER_SECRET_KEY={secrets.token_urlsafe(32)}")' >"$AUTH_ENV")
  fi
  if [ -z "${MLFLOW_TRACKING_PASSWORD:-}" ]; then set -a; source "$AUTH_ENV"; set +a; fi
fi
# the settings this demo runs with, credentials left out (the ui and cluster test tiers restart the stack on them)
env | grep -E '^(ML_PLATFORM_|AIRFLOW__(CORE__EXECUTOR|DATABASE__SQL_ALCHEMY_CONN|CELERY__)|AIRFLOW_CONN_SPARK_DEFAULT)' \
  | grep -v '^ML_PLATFORM_AZURE_STORAGE_' | grep -vE '://[^/@]*:[^/@]*@' | sort >"$ML_PLATFORM_HOME/run/demo.env"

# one long-lived Spark Connect server runs every Spark job of the demo (the CLI's and the DAG
# tasks'): no JVM start per job. SPARK_CONNECT=0 keeps a JVM per job; a URL already in
# ML_PLATFORM_SPARK_REMOTE (a server of your own) is used as it is. It starts while step 1 runs.
CONNECT_OUT="$ML_PLATFORM_HOME/run/spark-connect.env"
if [ -z "${ML_PLATFORM_SPARK_REMOTE:-}" ] && [ "${SPARK_CONNECT:-1}" = 1 ]; then
  mkdir -p "$ML_PLATFORM_HOME/run"
  bash scripts/spark_connect.sh >"$CONNECT_OUT" &
  CONNECT_PID=$!
fi

say "1/8 synthetic data: ${DEMO_CUSTOMERS:-2000} customers, $DATA_START .. $LOOP_END (shift from $DEMO_SHIFT_DAY) -> $ML_PLATFORM_HOME/incoming; days up to $DATA_END land now"
mkdir -p "$ML_PLATFORM_HOME/reports"
ml-platform data generate --customers "${DEMO_CUSTOMERS:-2000}" --start "$DATA_START" --end "$LOOP_END" \
  --drift-at "$DEMO_SHIFT_DAY" --seed 42 --out "$ML_PLATFORM_HOME/incoming" > "$ML_PLATFORM_HOME/reports/generate.json"
# the landing zone: a local folder, or a Blob container (LAKE=azurite)
ml-platform data land --source "$ML_PLATFORM_HOME/incoming" --end "$DATA_END" > "$ML_PLATFORM_HOME/reports/land.json"

if [ -n "${CONNECT_PID:-}" ]; then
  wait "$CONNECT_PID" || { echo "could not start the Spark Connect server (scripts/spark_connect.sh)" >&2; exit 1; }
  eval "$(cat "$CONNECT_OUT")"
fi
say "2/8 history $DATA_START .. $HISTORY_END: ingest -> GE gate -> silver -> weekly snapshots, one job (its engine below)"
ml-platform run --start "$DATA_START" --end "$HISTORY_END" --batch-days "${HISTORY_BATCH_DAYS:-90}" --publish \
  > "$ML_PLATFORM_HOME/reports/history.json"

mkdir -p "$ML_PLATFORM_HOME/mlflow"
if [ "$MLFLOW_SERVER" = 1 ]; then
  echo "  MLflow tracking server $ML_PLATFORM_MLFLOW_TRACKING_URI: store ${ML_PLATFORM_MLFLOW_BACKEND_STORE%%://*}, artifacts $ML_PLATFORM_MLFLOW_ARTIFACTS"
  AZURE_STORAGE_CONNECTION_STRING="${AZ_CONNECTION_STRING:-}" bash scripts/mlflow_ui.sh >/dev/null
else
  echo "  MLflow tracking store (SQLite): $ML_PLATFORM_HOME/mlflow/mlflow.db"
fi
ml-platform registry init >/dev/null 2>&1 || { echo "could not initialise the MLflow store" >&2; exit 1; }

say "3/8 Airflow on 127.0.0.1:$ML_PLATFORM_AIRFLOW_PORT (metadata: ${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-SQLite under $AIRFLOW_HOME})"
# LAKE=azurite: Airflow's tasks sign in with the `azure_lake` connection, not the environment's key
env -u ML_PLATFORM_AZURE_STORAGE_ACCOUNT_KEY bash scripts/airflow_up.sh
# the MLflow UI over the demo's store: the target of the tasks' "MLflow run" / "Model version" links
[ "$MLFLOW_SERVER" = 1 ] || bash scripts/mlflow_ui.sh >"$ML_PLATFORM_HOME/logs/mlflow-ui-start.log" 2>&1 &
# Airflow's REST API from here on (scripts/airflow_api.py): an `airflow` CLI call costs 3 s of start-up
api() { python scripts/airflow_api.py "$@"; }
api parsed features_build training serving_deploy batch_scoring monitoring retrain_on_drift
wait_runs() {  # wait until DAG $1 has at least $2 runs (default 1) and none is queued or running
  api wait "$1" --min-runs "${2:-1}"
}
if [ "$QUICK" = 1 ]; then
  echo "  QUICK: the history job covered every week up to $HISTORY_END; features_build stays paused"
else
  api unpause features_build
  echo "  scheduled runs: @weekly from $ML_PLATFORM_DAG_START_DATE to $ML_PLATFORM_DAG_END_DATE (catch-up)"
  wait_runs features_build 2
  echo "  backfill: reprocess the week of $ML_PLATFORM_DAG_START_DATE (idempotent; an old week publishes nothing)"
  airflow backfill create --dag-id features_build --from-date "$ML_PLATFORM_DAG_START_DATE" \
    --to-date "$ML_PLATFORM_DAG_START_DATE" --reprocess-behavior completed --max-active-runs 1 >/dev/null
  wait_runs features_build 2
fi

say "4/8 what it produced"
ml-platform tables --text | sed 's/^/  /'
echo "  gate results (JSON):  $ML_PLATFORM_HOME/reports/validation"
echo "  GE data docs:         $ML_PLATFORM_HOME/reports/gx/gx/uncommitted/data_docs/local_site/index.html"
if [ "$QUICK" = 1 ]; then
say "5/8 feature store: skipped (QUICK)"
else
say "5/8 feature store: training sets (cutoffs $DEMO_CUTOFFS, ${DEMO_HORIZON} day horizon), online store"
ml-platform features training-set --cutoffs "$DEMO_CUTOFFS" --horizon-days "$DEMO_HORIZON" --id demo-cli \
  > "$ML_PLATFORM_HOME/reports/training_set_cli.json"
python scripts/demo_feature_store.py "$DEMO_CUTOFFS" "$DEMO_HORIZON" "C42-0000001,C42-0000002,C42-9999999"
ml-platform features skew features.customer_features --sample 50 > "$ML_PLATFORM_HOME/reports/skew.json"
echo "  skew check: online values equal their offline rows for 50 sampled customers ($ML_PLATFORM_HOME/reports/skew.json)"
fi

if [ "$QUICK" = 1 ]; then
  say "6/8 training DAG in Airflow: its weekly slot (${DEMO_TRIALS} Optuna trials on 2 mapped workers) -> churn_model@challenger"
else
  say "6/8 training DAG in Airflow: its weekly slot, and a run triggered with params as from the UI (${DEMO_TRIALS:-8} Optuna trials on 2 mapped workers) -> churn_model@challenger"
fi
# unpausing also starts the latest weekly slot (Monday 04:00 UTC) with the default params: both
# the schedule and the trigger run, one at a time (the demo's data observes a 28-day label window)
# the service starts now (no champion yet: /readyz says so); serving_deploy reacts to every new challenger
SERVE_URL="http://127.0.0.1:${ML_PLATFORM_SERVING_PORT:-23000}"
if ! curl -sf "$SERVE_URL/healthz" >/dev/null 2>&1; then
  mkdir -p "$ML_PLATFORM_HOME/run" "$ML_PLATFORM_HOME/logs"
  SERVE=(ml-platform serve --workers "${ML_PLATFORM_SERVING_WORKERS:-1}")
  printf '%s\0' "${SERVE[@]}" >"$ML_PLATFORM_HOME/run/serve.argv"  # compose's serving command, addresses aside
  setsid nohup "${SERVE[@]}" >"$ML_PLATFORM_HOME/logs/serve.log" 2>&1 < /dev/null &
  echo $! >"$ML_PLATFORM_HOME/run/serve.pid"
fi
api unpause serving_deploy batch_scoring training
TRAINING_RUNS=1
if [ "$QUICK" != 1 ]; then
  api trigger training --conf "{\"cutoffs\": \"$DEMO_CUTOFFS\", \"horizon_days\": $DEMO_HORIZON, \"n_trials\": ${DEMO_TRIALS:-8}, \"n_workers\": 2}" >/dev/null
  TRAINING_RUNS=2
fi
wait_runs training "$TRAINING_RUNS"
ml-platform registry show | sed 's/^/  /'
echo "  MLflow UI: http://127.0.0.1:${ML_PLATFORM_MLFLOW_PORT:-25000} (also linked from the training DAG's register task)"

say "7/8 serving: serving_deploy gates each challenger (same rows), builds + smoke-tests a Bento, moves @champion"
wait_runs serving_deploy "$TRAINING_RUNS"  # one per challenger
ml-platform registry history | sed 's/^/  /'
for _ in $(seq 1 60); do curl -sf "$SERVE_URL/readyz" >/dev/null && break; sleep 1; done
echo "  service readiness: $(curl -s "$SERVE_URL/readyz")"
api trigger batch_scoring >/dev/null
wait_runs batch_scoring
ml-platform scores | sed 's/^/  /'
CUSTOMER="$(ml-platform features keys features.customer_features --limit 1)"
echo "  a prediction for $CUSTOMER (features from the online store, with SHAP contributions):"
echo "    curl -s -X POST '$SERVE_URL/predict?explain=true' -H 'Content-Type: application/json' -d '{\"customer_ids\": [\"$CUSTOMER\"]}'"
curl -s -X POST "$SERVE_URL/predict?explain=true" -H 'Content-Type: application/json' -d "{\"customer_ids\": [\"$CUSTOMER\"]}" \
  | cut -c1-400 | sed 's/^/    /'; echo
echo "  OpenAPI: $SERVE_URL/docs   metrics: $SERVE_URL/metrics   registry: ml-platform registry history | rollback"

say "8/8 monitoring loop: $DEMO_WEEKS weeks from $LOOP_START (shift from $DEMO_SHIFT_DAY): traffic, monitoring DAG, retrain_on_drift sensor -> training -> gate"
# retrain_on_drift's deferrable sensor waits in the triggerer; monitoring's schedule ends at the last simulated
# week (ML_PLATFORM_MONITORING_END_DATE): its runs are the ones demo_weeks.py creates, one per week
api unpause retrain_on_drift monitoring
python scripts/demo_weeks.py --first-day "$LOOP_START" --weeks "$DEMO_WEEKS" --shift-day "$DEMO_SHIFT_DAY" \
  --incoming "$ML_PLATFORM_HOME/incoming" --serve-url "$SERVE_URL"
ml-platform registry history | sed 's/^/  /'
curl -s -X POST "$SERVE_URL/predict" -H 'Content-Type: application/json' -d "{\"customer_ids\": [\"$CUSTOMER\"]}" \
  | cut -c1-400 | sed 's/^/  the service now answers: /'; echo

if [ "${STREAMING:-0}" = 1 ]; then
  say "stream: a Kafka broker with the Event Hubs login -> 1,000 events (poison among them) -> the streaming job -> online features, champion scores"
  eval "$(bash scripts/kafka.sh start)"
  mkdir -p "$ML_PLATFORM_HOME/logs"
  ml-platform stream send --generate 1000 --seed 7 >/dev/null 2>>"$ML_PLATFORM_HOME/logs/stream.log"
  ml-platform stream send --file scripts/kafka/poison.jsonl >/dev/null 2>>"$ML_PLATFORM_HOME/logs/stream.log"
  ml-platform stream run --once 2>>"$ML_PLATFORM_HOME/logs/stream.log" | sed -n '/"totals"/,/}/p' | sed 's/^/  /'
  { grep -h "batch [0-9]*:" "$ML_PLATFORM_HOME/logs/stream.log" || true; } | tail -3 | cut -c1-200 | sed 's/^/  /'
  ml-platform features get features.customer_stream "$CUSTOMER" | sed 's/^/  /'
  echo "  the job's lag: $(ml-platform stream status | grep '"total_lag"')"
fi

cat <<MSG

Airflow UI:  http://127.0.0.1:$ML_PLATFORM_AIRFLOW_PORT   (user admin; password in
             $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated); each task's result
             (MLflow run, evaluation and drift reports, GE data docs, the service's API docs)
             is a link on the task's page
MLflow UI:   http://127.0.0.1:${ML_PLATFORM_MLFLOW_PORT:-25000}
Logs:        $ML_PLATFORM_HOME/logs/   Stop everything: make stop
Demo took $(( $(date +%s) - t0 ))s.
MSG
