"""`ml-platform features build | list | describe | training-set | publish | get | keys | skew`: the feature store."""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import Any

from ml_platform.cli._common import SubParsers, cutoffs, iso_date, on_engine, positive, say, table_name, training_set_id
from ml_platform.config import get_settings
from ml_platform.errors import MlPlatformError
from ml_platform.features import FeatureLookup, FeatureStore
from ml_platform.lake.paths import table_path
from ml_platform.lake.reader import partition_values
from ml_platform.lake.storage import check_location
from ml_platform.pipelines import data_plane
from ml_platform.training.labels import build_churn_labels, check_cutoffs, per_cutoff_summary


def _store() -> Any:
    return FeatureStore()


def build(a: argparse.Namespace) -> dict[str, Any]:
    check_location(get_settings().lake_uri, what="lake (ML_PLATFORM_LAKE_URI)")
    engine = on_engine(data_plane.features_engine(), "features", "feature snapshots: ")
    say(f"building feature snapshots {a.start}..{a.end} ({a.cadence or 'configured'} cadence)")
    return data_plane.build_features(engine, a.start, a.end, a.cadence)


def list_tables(a: argparse.Namespace) -> list[dict[str, Any]]:
    return [
        {
            "name": t.name,
            "primary_keys": list(t.primary_keys),
            "timestamp_key": t.timestamp_key,
            "features": len(t.features),
            "ttl_hours": None if t.ttl is None else t.ttl.total_seconds() / 3600,
            "owner": t.owner,
            "description": t.description,
        }
        for t in _store().list_tables()
    ]


def describe(a: argparse.Namespace) -> dict[str, Any]:
    store = _store()
    out = store.describe(a.name)
    out["online"] = store.online_status(a.name)
    return out


def training_set(a: argparse.Namespace) -> dict[str, Any]:
    horizon = a.horizon_days or get_settings().label_horizon_days
    store = _store()
    store.get_table(a.table)  # fail fast, before a JVM, on an unregistered table or unobservable cutoffs
    days = partition_values(table_path("silver.transactions", store.settings), "txn_date")
    check_cutoffs(a.cutoffs, horizon, date.fromisoformat(days[-1]) if days else None)
    lookups = [FeatureLookup(a.table)]
    engine = on_engine(store.training_set_engine(lookups), "feature-store", "training set: ")
    say(f"labels for cutoffs {', '.join(map(str, a.cutoffs))} (horizon {horizon} days)")
    entity = build_churn_labels(engine, a.cutoffs, horizon, settings=store.settings)
    say(f"point-in-time join with {a.table}{' as of known time' if a.as_of_known_time else ''}")
    ts = store.create_training_set(
        entity,
        lookups,
        timestamp_key="event_timestamp",
        label="churned",
        as_of_known_time=a.as_of_known_time,
        training_set_id=a.id,
        engine=engine,
    )
    say(f"training set {ts.training_set_id}: {ts.metadata['rows']:,} rows, lineage {ts.lineage}")
    return {
        "training_set_id": ts.training_set_id,
        "rows": ts.metadata["rows"],
        "lineage": ts.lineage,
        "engine": ts.metadata["engine"],
        "per_cutoff": per_cutoff_summary(ts.to_pandas(), ts.feature_names[0]),
        "table": store.path("ml.training_sets"),
    }


def publish(a: argparse.Namespace) -> dict[str, Any]:
    store = _store()
    engine = on_engine(store.publish_engine(a.name), "feature-store", "publishing: ")
    say(f"publishing the latest row per key of {a.name} to the {store.settings.online_store} online store")
    return store.publish_online(a.name, engine=engine)


def get(a: argparse.Namespace) -> list[dict[str, Any]]:
    rows = _store().get_online_features(a.name, a.keys)
    return [
        {"key": r.key, "found": r.found, "feature_timestamp": r.feature_timestamp, "values": r.values} for r in rows
    ]


def keys(a: argparse.Namespace) -> str:
    return "\n".join(_store().latest_keys(a.name, a.limit))


def skew(a: argparse.Namespace) -> dict[str, Any]:
    store = _store()
    engine = on_engine(store.publish_engine(a.name), "feature-store", "skew check: ")
    out = store.check_skew(a.name, sample=a.sample, engine=engine)
    if out["mismatches"]:
        raise MlPlatformError(
            f"training/serving skew in {a.name}: {out['mismatches']} of {out['checked']} keys "
            f"differ; e.g. {json.dumps(out['examples'][:2], default=str)}"
        )
    return out


def register(sub: SubParsers) -> None:
    f = sub.add_parser("features", help="feature snapshots").add_subparsers(dest="features_command", required=True)
    fb = f.add_parser("build", help="compute feature snapshots for [start, end] in one Spark session")
    fb.add_argument("--start", type=iso_date, required=True)
    fb.add_argument("--end", type=iso_date, required=True, help="inclusive")
    fb.add_argument(
        "--cadence", choices=("daily", "weekly"), default=None, help="default: ML_PLATFORM_SNAPSHOT_CADENCE"
    )
    fb.set_defaults(func=build)
    f.add_parser("list", help="registered feature tables").set_defaults(func=list_tables)
    fd = f.add_parser("describe", help="a feature table: spec, Delta version, rows, latest snapshot, freshness")
    fd.add_argument("name", type=table_name)
    fd.set_defaults(func=describe)
    ft = f.add_parser("training-set", help="churn labels for cutoffs + point-in-time features -> ml.training_sets")
    ft.add_argument("--cutoffs", type=cutoffs, required=True, help="comma-separated dates, e.g. 2025-01-04,2025-01-11")
    ft.add_argument(
        "--horizon-days",
        type=positive,
        default=None,
        help="label window after each cutoff (default: ML_PLATFORM_LABEL_HORIZON_DAYS, 90)",
    )
    ft.add_argument("--table", default="features.customer_features", help="feature table to join")
    ft.add_argument(
        "--as-of-known-time",
        action="store_true",
        help="use only feature values committed before each event time (what serving knew)",
    )
    ft.add_argument(
        "--id", type=training_set_id, default=None, help="training_set_id (default: random); reusing one replaces it"
    )
    ft.set_defaults(func=training_set)
    fp = f.add_parser("publish", help="latest row per key into the online store (idempotent)")
    fp.add_argument("name", type=table_name)
    fp.set_defaults(func=publish)
    fg = f.add_parser("get", help="online feature values for keys (no Spark)")
    fg.add_argument("name", type=table_name)
    fg.add_argument("keys", nargs="+")
    fg.set_defaults(func=get)
    fk = f.add_parser("keys", help="primary keys of the newest snapshot, one per line (no Spark)")
    fk.add_argument("name", type=table_name)
    fk.add_argument("--limit", type=positive, default=10, help="how many, in key order (default 10)")
    fk.set_defaults(func=keys)
    fs = f.add_parser("skew", help="training/serving skew check: online values vs the offline rows (exit 2 on skew)")
    fs.add_argument("name", type=table_name)
    fs.add_argument("--sample", type=positive, default=100, help="keys to compare (default 100)")
    fs.set_defaults(func=skew)
