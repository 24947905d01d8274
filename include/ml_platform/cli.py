"""`ml-platform`: one command line over every stage of the platform.

    ml-platform data generate   synthetic transaction files in the landing layout
    ml-platform ingest          bring your own transactions/customers file(s) into bronze
    ml-platform validate        run the GE gate for an interval: quarantine + silver
    ml-platform features build  feature snapshots for a date range, in one Spark session
    ml-platform features list | describe NAME | training-set | publish NAME | get NAME KEY... | skew NAME
                                the feature store: registry, point-in-time training sets, online store
    ml-platform run             ingest -> gate -> silver -> features over a range of days
    ml-platform train           labels + PIT training set -> Optuna HPO -> MLflow model @challenger
    ml-platform backtest        your transaction file in a fresh workspace: gate -> features -> HPO -> test metrics
    ml-platform registry promote | history | rollback
                                champion/challenger gate on the same rows, audited alias moves
    ml-platform serve           the BentoML service: POST /predict by customer id or feature rows
    ml-platform prediction-log load
                                the serving spool -> monitoring.prediction_log (MERGE, idempotent)
    ml-platform tables          the lake's Delta tables with version, files and rows

Errors in the input (missing columns, unreadable values, bad flags, a failed gate) print one
line naming the problem and exit with status 2; nothing is half-written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ml_platform.errors import MlPlatformError


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {value}")
    return n


def _say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _progress(label: str) -> Callable[[int, int], None]:
    state = {"last": 0.0}

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - state["last"] > 2:
            state["last"] = now
            width = 30
            filled = int(width * done / total)
            print(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="" if done < total else "\n",
                  file=sys.stderr, flush=True)

    return report


def _location(value: str) -> str:
    """A local path, an abfss:// URI or a Blob https:// URL (argparse type)."""
    from ml_platform.errors import ConfigError
    from ml_platform.lake.storage import normalize

    try:
        return normalize(value)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _spark(app: str) -> Any:
    from ml_platform.config import get_settings
    from ml_platform.lake import get_spark
    from ml_platform.lake.storage import check_location

    check_location(get_settings().lake_uri, what="lake (ML_PLATFORM_LAKE_URI)")  # before a JVM, before any write
    remote = get_settings().spark_remote
    _say(f"connecting to the Spark Connect server {remote}" if remote
         else "starting Spark (Delta jars from the set-up cache)")
    return get_spark(app)


def cmd_generate(a: argparse.Namespace) -> dict[str, Any]:
    from ml_platform.config import get_settings
    from ml_platform.data.generator import GeneratorSpec, write_landing
    from ml_platform.lake.storage import upath

    if a.out:
        from ml_platform.lake.storage import check_location

        check_location(a.out, what="--out")
    out = upath(a.out) if a.out else get_settings().landing_dir
    spec = GeneratorSpec(customers=a.customers, start=a.start, end=a.end, seed=a.seed, drift_at=a.drift_at)
    counts = write_landing(spec, out, a.format, progress=_progress("generating days"))
    return {"out": a.out or get_settings().landing_uri, **counts}


def cmd_ingest(a: argparse.Namespace) -> dict[str, Any]:
    from ml_platform.contracts import CUSTOMERS, TRANSACTIONS
    from ml_platform.data.ingest import ingest, list_files

    # check the paths before paying for a JVM
    list_files(a.transactions, a.format)
    if a.customers:
        list_files(a.customers, a.format)
    spark = _spark("ingest")
    day = a.ingest_date or datetime.now(timezone.utc).date()
    out = {}
    for contract, src in ((TRANSACTIONS, a.transactions), (CUSTOMERS, a.customers)):
        if src is None:
            continue
        _say(f"ingesting {src} into bronze.{contract.name} (ingest_date {day})")
        r = ingest(spark, src, contract, day, fmt=a.format, delimiter=a.delimiter, timestamp_format=a.timestamp_format)
        out[contract.name] = {"files": r.files, "new_files": r.new_files, "rows": r.rows, "ingest_date": day.isoformat()}
    out["next"] = f"ml-platform validate --start {day} --end {day}"
    return out


def cmd_validate(a: argparse.Namespace) -> dict[str, Any]:
    from ml_platform.pipelines import data_plane as plane

    spark = _spark("validate")
    _say(f"running the gate on bronze rows ingested {a.start}..{a.end}")
    return plane.validate_to_silver(spark, a.start, a.end + timedelta(days=1))


def cmd_features(a: argparse.Namespace) -> dict[str, Any]:
    from ml_platform.pipelines import data_plane as plane

    spark = _spark("features")
    _say(f"building feature snapshots {a.start}..{a.end} ({a.cadence or 'configured'} cadence)")
    return plane.build_features(spark, a.start, a.end, a.cadence)


def _cutoffs(value: str) -> list[date]:
    from ml_platform.training.labels import parse_cutoffs

    try:
        return parse_cutoffs(value)
    except MlPlatformError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _store(spark: bool = False) -> Any:
    from ml_platform.features import FeatureStore

    return FeatureStore(spark=_spark("feature-store") if spark else None)


def cmd_features_list(a: argparse.Namespace) -> list[dict[str, Any]]:
    return [{"name": t.name, "primary_keys": list(t.primary_keys), "timestamp_key": t.timestamp_key,
             "features": len(t.features), "ttl_hours": None if t.ttl is None else t.ttl.total_seconds() / 3600,
             "owner": t.owner, "description": t.description} for t in _store().list_tables()]


def cmd_features_describe(a: argparse.Namespace) -> dict[str, Any]:
    store = _store()
    out = store.describe(a.name)
    out["online"] = store.online_status(a.name)
    return out


def cmd_training_set(a: argparse.Namespace) -> dict[str, Any]:
    from pyspark.sql import functions as F

    from ml_platform.features import FeatureLookup
    from ml_platform.lake.paths import table_path
    from ml_platform.lake.reader import partition_values
    from ml_platform.training.labels import build_churn_labels, check_cutoffs

    store = _store()
    store.get_table(a.table)  # fail fast, before a JVM, on an unregistered table or unobservable cutoffs
    days = partition_values(table_path("silver.transactions", store.settings), "txn_date")
    check_cutoffs(a.cutoffs, a.horizon_days, date.fromisoformat(days[-1]) if days else None)
    store = _store(spark=True)
    _say(f"labels for cutoffs {', '.join(map(str, a.cutoffs))} (horizon {a.horizon_days} days)")
    entity = build_churn_labels(a.cutoffs, a.horizon_days, spark=store.spark)
    _say(f"point-in-time join with {a.table}{' as of known time' if a.as_of_known_time else ''}")
    ts = store.create_training_set(entity, [FeatureLookup(a.table)], timestamp_key="event_timestamp",
                                   label="churned", as_of_known_time=a.as_of_known_time, training_set_id=a.id)
    df = ts.load_df()
    per_cutoff = {str(r["cutoff_date"]): {"rows": r["rows"], "churn_rate": round(r["rate"], 4),
                                          "without_features": r["missing"]}
                  for r in df.groupBy("cutoff_date").agg(
                      F.count(F.lit(1)).alias("rows"), F.avg("churned").alias("rate"),
                      F.sum(F.when(F.col(ts.feature_names[0]).isNull(), 1).otherwise(0)).alias("missing"))
                  .orderBy("cutoff_date").collect()}
    return {"training_set_id": ts.training_set_id, "rows": ts.metadata["rows"], "lineage": ts.lineage,
            "per_cutoff": per_cutoff, "table": store.path("ml.training_sets")}


def cmd_publish(a: argparse.Namespace) -> dict[str, Any]:
    store = _store(spark=True)
    _say(f"publishing the latest row per key of {a.name} to the {store.settings.online_store} online store")
    return store.publish_online(a.name)


def cmd_get(a: argparse.Namespace) -> list[dict[str, Any]]:
    rows = _store().get_online_features(a.name, a.keys)
    return [{"key": r.key, "found": r.found, "feature_timestamp": r.feature_timestamp, "values": r.values} for r in rows]


def cmd_skew(a: argparse.Namespace) -> dict[str, Any]:
    store = _store(spark=True)
    out = store.check_skew(a.name, sample=a.sample)
    if out["mismatches"]:
        raise MlPlatformError(f"training/serving skew in {a.name}: {out['mismatches']} of {out['checked']} keys differ; "
                              f"e.g. {json.dumps(out['examples'][:2], default=str)}")
    return out


def cmd_train(a: argparse.Namespace) -> dict[str, Any]:
    from ml_platform.training.families import check_families
    from ml_platform.training.train import train_from_lake, usable_cutoffs

    families = check_families(a.families.split(","))
    cutoffs = a.cutoffs or usable_cutoffs(a.horizon_days, a.last_k)
    spark = _spark("train")
    _say(f"training on cutoffs {', '.join(map(str, cutoffs))} ({a.trials} trials over {', '.join(families)})")
    res = train_from_lake(cutoffs, a.horizon_days, n_trials=a.trials, families=families, seed=a.seed,
                          timeout=a.timeout, workers=a.workers, distributed_workers=a.distributed_workers,
                          spark=spark, progress=_progress("HPO trials"))
    return {"model": f"{res.model_name}@challenger", "version": res.version, "family": res.family,
            "validation_auc": round(res.validation_auc, 4),
            "test": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.test_metrics.items()},
            "best_params": res.best_params, "run_id": res.run_id, "training_set_id": res.tags["training_set_id"],
            "report": res.report}


def cmd_backtest(a: argparse.Namespace) -> dict[str, Any] | str:
    from ml_platform.config import get_settings
    from ml_platform.data.ingest import list_files
    from ml_platform.pipelines.backtest import check_plan, prepare_workspace, run_backtest, use_workspace
    from ml_platform.training.families import check_families

    plan = check_plan(a.train_cutoffs, a.test_cutoff, a.horizon_days)
    families = check_families(a.families.split(","))
    list_files(a.transactions, a.format)  # check the inputs before making a workspace or paying for a JVM
    if a.customers:
        list_files(a.customers, a.format)
    workspace = prepare_workspace(a.workspace, get_settings().home)
    use_workspace(workspace)
    _say(f"workspace {workspace}")
    out = run_backtest(plan, a.transactions, a.customers, spark=_spark("backtest"), n_trials=a.trials,
                       families=families, seed=a.seed, fmt=a.format, delimiter=a.delimiter,
                       timestamp_format=a.timestamp_format, say=_say, progress=_progress("HPO trials"))
    if a.json:
        return out
    t = {k: ("n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else v) for k, v in out["test"].items()}
    return (f"backtest on {out['data']['first_day']}..{out['data']['last_day']}: trained on "
            f"{', '.join(out['train_cutoffs'])}, validated on {out['validation_cutoff']}, tested on "
            f"{out['test_cutoff']} ({out['horizon_days']}-day churn window)\n"
            f"best model: {out['family']} (validation AUC {out['validation_auc']:.3f})\n"
            f"test: ROC AUC {t['roc_auc']}  average precision {t['average_precision']}  F1 {t['f1']} at threshold "
            f"{t['threshold']}  Brier {t['brier']}  ECE {t['ece']}  rows {t['rows']} "
            f"(churn rate {out['churn_rate_test']})\n"
            f"report: {out['report']}\nworkspace: {out['workspace']}")


def cmd_run(a: argparse.Namespace) -> dict[str, Any]:
    from ml_platform.config import get_settings
    from ml_platform.features.customer_features import snapshot_dates
    from ml_platform.pipelines import data_plane as plane

    spark = _spark("run")
    cadence = a.cadence or get_settings().snapshot_cadence
    days = plane.days_in(a.start, a.end + timedelta(days=1))
    batches = [days[i:i + a.batch_days] for i in range(0, len(days), a.batch_days)]
    report = _progress("ingest + gate")
    gates = []
    for i, batch in enumerate(batches):
        lo, hi = batch[0], batch[-1] + timedelta(days=1)
        plane.ingest_landed(spark, lo, hi)
        gate = plane.validate_to_silver(spark, lo, hi)
        gates.append({"interval": [lo.isoformat(), hi.isoformat()], "quarantined": gate.get("quarantined"),
                      "rows": gate.get("rows_validated"), "skipped": gate.get("skipped")})
        report(i + 1, len(batches))
    dates = snapshot_dates(a.start, a.end, cadence)
    _say(f"features for {len(dates)} snapshot dates in one pass")
    out = {"gates": gates, "features": plane.build_features(spark, a.start, a.end, cadence)}
    if a.publish:
        _say("online store: the newest snapshot, if it is the one just built")
        out["online"] = (plane.publish_if_newest(spark, dates[-1]) if dates
                         else {"skipped": f"no snapshot date in [{a.start}, {a.end}]"})
    return out


def cmd_tables(a: argparse.Namespace) -> dict[str, Any]:
    from ml_platform.lake.paths import TABLES, table_path
    from ml_platform.lake.reader import table_summary

    return {name: table_summary(table_path(name)) for name in TABLES}


def _policy(value: str) -> dict[str, Any]:
    from ml_platform.registry.promotion import Policy

    try:
        Policy.from_mapping(json.loads(value))
    except (ValueError, TypeError) as e:  # JSONDecodeError is a ValueError
        raise argparse.ArgumentTypeError(f"bad --policy {value!r}: {e}") from None
    return dict(json.loads(value))


def cmd_registry_promote(a: argparse.Namespace) -> dict[str, Any] | str:
    from ml_platform.registry.aliases import apply_decision, evaluate_and_decide
    from ml_platform.registry.promotion import Policy

    _say("re-scoring @champion and @challenger on the challenger's held-out rows")
    from ml_platform.config import get_settings

    decision = evaluate_and_decide(Policy.from_mapping(
        {"latency_p99_ms": get_settings().promotion_latency_p99_ms} | a.policy))
    record = decision.to_dict() if a.dry_run else apply_decision(decision)
    if a.json:
        return record if a.dry_run else {"decision": decision.to_dict(), "record": record}
    verb = "PROMOTED" if decision.promote else "REJECTED"
    return f"{verb} {decision.model_name} v{decision.challenger.version}: {decision.reason}" + (
        " (dry run: aliases not moved)" if a.dry_run else "")


def cmd_registry_history(a: argparse.Namespace) -> list[dict[str, Any]] | str:
    from ml_platform.registry.aliases import history

    rows = history()
    if a.json:
        return rows
    if not rows:
        return "no alias moves recorded yet"
    return "\n".join(f"{r['event_time'][:19]}  {r['action']:<8} champion v{r['champion_version'] or '-'} "
                     f"(was v{r['previous_champion_version'] or '-'}, challenger v{r['challenger_version'] or '-'})"
                     f"  {r['reason']}" for r in rows)


def cmd_registry_rollback(a: argparse.Namespace) -> dict[str, Any]:
    from ml_platform.registry.aliases import rollback

    return rollback(a.to, reason=a.reason)


def cmd_serve(a: argparse.Namespace) -> dict[str, Any]:
    import os

    from ml_platform.config import REPO_ROOT, get_settings

    s = get_settings()
    port = a.port or s.serving_port
    env = dict(os.environ, BENTOML_DO_NOT_TRACK="true")
    if a.workers:
        env["ML_PLATFORM_SERVING_WORKERS"] = str(a.workers)
    target = a.bento or "ml_platform.serving.service:ChurnService"
    cmd = ["bentoml", "serve", target, "--host", a.host, "--port", str(port)]
    if not a.bento and (REPO_ROOT / "include" / "ml_platform").is_dir():  # a checkout; installed: importable as is
        cmd += ["--working-dir", str(REPO_ROOT / "include")]
    _say(f"serving {s.model_name}@champion on http://{a.host}:{port} (POST /predict, GET /readyz, /metrics, /docs)")
    sys.stdout.flush()
    os.execvpe(cmd[0], cmd, env)  # BentoML owns the process from here; Ctrl-C stops it
    return {}


def cmd_prediction_log_load(a: argparse.Namespace) -> dict[str, Any]:
    from ml_platform.config import get_settings
    from ml_platform.serving.spool import load_spool

    return load_spool(a.spool or get_settings().home / "serving" / "spool")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ml-platform", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="synthetic data").add_subparsers(dest="data_command", required=True)
    g = data.add_parser("generate", help="write synthetic transaction files in the landing layout")
    g.add_argument("--customers", type=_positive, default=2000, help="number of customers (default 2000)")
    g.add_argument("--start", type=_date, required=True, help="first day (YYYY-MM-DD)")
    g.add_argument("--end", type=_date, required=True, help="last day, inclusive")
    g.add_argument("--seed", type=int, default=42, help="random seed; same seed, same files")
    g.add_argument("--drift-at", type=_date, default=None, help="shift amounts, channels and rates from this day")
    g.add_argument("--out", type=_location, default=None,
                   help="output root: a folder or an abfss:// URI (default: the landing zone, ML_PLATFORM_LANDING_URI)")
    g.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    g.set_defaults(func=cmd_generate)

    i = sub.add_parser("ingest", help="load your own transactions (and customers) file(s) into bronze")
    i.add_argument("--transactions", type=_location, required=True,
                   help="a file or a folder of files: a local path, an abfss:// URI or a Blob https:// URL")
    i.add_argument("--customers", type=_location, default=None, help="optional customers file or folder (same forms)")
    i.add_argument("--format", choices=("csv", "parquet"), default=None, help="default: from the file extension")
    i.add_argument("--delimiter", default=",", help="CSV field separator; ' ' for whitespace-separated text")
    i.add_argument("--timestamp-format", default=None,
                   help="Spark datetime pattern for transaction_ts/signup_date, e.g. 'dd/MM/yyyy HH:mm'")
    i.add_argument("--ingest-date", type=_date, default=None, help="bronze partition (default: today, UTC)")
    i.set_defaults(func=cmd_ingest)

    v = sub.add_parser("validate", help="GE gate for bronze rows ingested in [start, end]: quarantine + silver")
    v.add_argument("--start", type=_date, required=True)
    v.add_argument("--end", type=_date, required=True, help="inclusive")
    v.set_defaults(func=cmd_validate)

    f = sub.add_parser("features", help="feature snapshots").add_subparsers(dest="features_command", required=True)
    fb = f.add_parser("build", help="compute feature snapshots for [start, end] in one Spark session")
    fb.add_argument("--start", type=_date, required=True)
    fb.add_argument("--end", type=_date, required=True, help="inclusive")
    fb.add_argument("--cadence", choices=("daily", "weekly"), default=None, help="default: ML_PLATFORM_SNAPSHOT_CADENCE")
    fb.set_defaults(func=cmd_features)
    f.add_parser("list", help="registered feature tables").set_defaults(func=cmd_features_list)
    fd = f.add_parser("describe", help="a feature table: spec, Delta version, rows, latest snapshot, freshness")
    fd.add_argument("name")
    fd.set_defaults(func=cmd_features_describe)
    ft = f.add_parser("training-set", help="churn labels for cutoffs + point-in-time features -> ml.training_sets")
    ft.add_argument("--cutoffs", type=_cutoffs, required=True, help="comma-separated dates, e.g. 2025-01-04,2025-01-11")
    ft.add_argument("--horizon-days", type=_positive, default=90, help="label window after each cutoff (default 90)")
    ft.add_argument("--table", default="features.customer_features", help="feature table to join")
    ft.add_argument("--as-of-known-time", action="store_true",
                    help="use only feature values committed before each event time (what serving knew)")
    ft.add_argument("--id", default=None, help="training_set_id (default: random); reusing one replaces it")
    ft.set_defaults(func=cmd_training_set)
    fp = f.add_parser("publish", help="latest row per key into the online store (idempotent)")
    fp.add_argument("name")
    fp.set_defaults(func=cmd_publish)
    fg = f.add_parser("get", help="online feature values for keys (no Spark)")
    fg.add_argument("name")
    fg.add_argument("keys", nargs="+")
    fg.set_defaults(func=cmd_get)
    fs = f.add_parser("skew", help="training/serving skew check: online values vs the offline rows (exit 2 on skew)")
    fs.add_argument("name")
    fs.add_argument("--sample", type=_positive, default=100, help="keys to compare (default 100)")
    fs.set_defaults(func=cmd_skew)

    r = sub.add_parser("run", help="ingest landed files, gate and build features for [start, end], one JVM")
    r.add_argument("--start", type=_date, required=True)
    r.add_argument("--end", type=_date, required=True, help="inclusive")
    r.add_argument("--cadence", choices=("daily", "weekly"), default=None)
    r.add_argument("--batch-days", type=_positive, default=7,
                   help="days gated together (default 7); the future-timestamp rule uses the batch's end")
    r.add_argument("--publish", action="store_true",
                   help="then publish the newest snapshot to the online store in the same JVM (skipped when an "
                        "older date than the lake's newest)")
    r.set_defaults(func=cmd_run)

    tr = sub.add_parser("train", help="labels + PIT training set -> Optuna HPO -> register the model as @challenger")
    tr.add_argument("--cutoffs", type=_cutoffs, default=None,
                    help="comma-separated snapshot dates (default: the last --last-k with an observed label window)")
    tr.add_argument("--last-k", type=_positive, default=4, help="cutoffs to use when --cutoffs is not given (default 4)")
    tr.add_argument("--horizon-days", type=_positive, default=90, help="churn label window (default 90)")
    tr.add_argument("--trials", type=_positive, default=20, help="Optuna trials (default 20)")
    tr.add_argument("--families", default="xgboost,logreg,random_forest,extra_trees,mlp",
                    help="model families to search (comma-separated)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--timeout", type=float, default=None, help="stop the search after this many seconds")
    tr.add_argument("--workers", type=_positive, default=1,
                    help="HPO processes on the one Optuna study (default 1: reproducible for a seed)")
    tr.add_argument("--distributed-workers", type=int, choices=range(0, 65), default=0, metavar="N",
                    help="refit an xgboost/mlp winner over N Spark tasks (xgboost.spark) or torch processes "
                         "(TorchDistributor); default 0: in this process")
    tr.set_defaults(func=cmd_train)

    bt = sub.add_parser("backtest", help="how well would churn prediction work on your data? (fresh workspace)",
                        description="Ingest your transactions (and customers) file into a fresh workspace, run the "
                        "gate, build features at the cutoffs, a point-in-time training set, Optuna HPO and evaluate on "
                        "the test cutoff. The last train cutoff is the validation set; every train cutoff's label "
                        "window must close by the test cutoff.")
    bt.add_argument("--transactions", type=Path, required=True, help="a file or a folder of files (CSV or Parquet)")
    bt.add_argument("--customers", type=Path, default=None, help="optional customers file (for the fairness report)")
    bt.add_argument("--train-cutoffs", type=_cutoffs, required=True,
                    help="comma-separated dates, >= 2; the last one is the validation cutoff")
    bt.add_argument("--test-cutoff", type=_date, required=True, help="the date the model is evaluated at")
    bt.add_argument("--horizon-days", type=_positive, default=90, help="churn label window (default 90)")
    bt.add_argument("--trials", type=_positive, default=20, help="Optuna trials (default 20)")
    bt.add_argument("--families", default="xgboost,logreg,random_forest,extra_trees,mlp",
                    help="model families to search (comma-separated)")
    bt.add_argument("--seed", type=int, default=0)
    bt.add_argument("--workspace", type=Path, default=None,
                    help="an empty or new folder for the run (default <home>/backtests/<time>)")
    bt.add_argument("--format", choices=("csv", "parquet"), default=None, help="default: from the file extension")
    bt.add_argument("--delimiter", default=",", help="CSV field separator")
    bt.add_argument("--timestamp-format", default=None, help="Spark datetime pattern of transaction_ts, if not ISO")
    bt.add_argument("--json", action="store_true", help="print the metrics as JSON (includes test_auc)")
    bt.set_defaults(func=cmd_backtest)

    reg = sub.add_parser("registry", help="champion/challenger: promote, history, rollback").add_subparsers(
        dest="registry_command", required=True)
    rp = reg.add_parser("promote", help="re-score @champion and @challenger on the same rows; promote if the gate passes")
    rp.add_argument("--policy", type=_policy, default={},
                    help='JSON overrides of the gate, e.g. \'{"min_auc_gain": 0.01, "latency_p99_ms": 20}\'')
    rp.add_argument("--dry-run", action="store_true", help="decide and print, move no alias")
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(func=cmd_registry_promote)
    rh = reg.add_parser("history", help="every alias move (registry.alias_history), oldest first")
    rh.add_argument("--json", action="store_true")
    rh.set_defaults(func=cmd_registry_history)
    rr = reg.add_parser("rollback", help="move @champion back (default: to @previous_champion); recorded")
    rr.add_argument("--to", default=None, help="the version to make champion")
    rr.add_argument("--reason", default="", help="why, for the history")
    rr.set_defaults(func=cmd_registry_rollback)

    sv = sub.add_parser("serve", help="start the BentoML churn service (champion, online features, A/B, shadow)")
    sv.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    sv.add_argument("--port", type=_positive, default=None, help="default: ML_PLATFORM_SERVING_PORT (23000)")
    sv.add_argument("--workers", type=_positive, default=None, help="worker processes (default: ML_PLATFORM_SERVING_WORKERS)")
    sv.add_argument("--bento", default=None, help="serve a built Bento (tag) instead of the source tree")
    sv.set_defaults(func=cmd_serve)
    pl = sub.add_parser("prediction-log", help="the served predictions").add_subparsers(
        dest="prediction_log_command", required=True)
    pll = pl.add_parser("load", help="MERGE the serving spool into monitoring.prediction_log (idempotent)")
    pll.add_argument("--spool", type=Path, default=None, help="spool folder (default <home>/serving/spool)")
    pll.set_defaults(func=cmd_prediction_log_load)

    t = sub.add_parser("tables", help="list the lake's Delta tables (version, files, rows)")
    t.set_defaults(func=cmd_tables)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "start", None) and getattr(args, "end", None) and args.end < args.start:
        parser.error(f"--end {args.end} is before --start {args.start}")
    try:
        # stdout carries only the result (JSON or a report); libraries' prints go to stderr
        with contextlib.redirect_stdout(sys.stderr):
            result = args.func(args)
    except MlPlatformError as e:
        print(f"ml-platform: error: {e}", file=sys.stderr)
        return 2
    try:
        print(result if isinstance(result, str) else json.dumps(result, indent=2, default=str))
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
