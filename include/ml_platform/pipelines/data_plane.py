"""The data plane as transactions over a date interval: landing -> bronze -> gate -> silver -> features.

Every function here is keyed by an explicit interval [start, end) of UTC dates (the Airflow data
interval, or CLI flags), never by the wall clock, and is safe to rerun:
- bronze appends only files whose content hash is new;
- quarantine replaces the partitions of the interval (replaceWhere);
- silver MERGEs on transaction_id (insert-only), and is never touched by a failed gate;
- features replace exactly the snapshot_date partitions they compute, and (re)register the table's spec.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_platform.config import Settings, get_settings
from ml_platform.contracts import CUSTOMERS, TRANSACTIONS
from ml_platform.data.ingest import ingest_files, list_files
from ml_platform.engines import EmbeddedEngine, Engine, SparkEngine, choose_engine, input_bytes, operation
from ml_platform.errors import MlPlatformError, ValidationFailed
from ml_platform.features.customer_features import (
    TABLE_NAME,
    compute_customer_features,
    customer_features_table,
    snapshot_dates,
)
from ml_platform.features.publish import newest_snapshot_check
from ml_platform.features.registry import Registry
from ml_platform.features.store import FeatureStore
from ml_platform.lake.delta_sql import is_delta, merge_into
from ml_platform.lake.paths import FEATURE_TABLE_PROPERTIES, catalog_dir, table_path
from ml_platform.lake.reader import UnsupportedTable
from ml_platform.validation.gate import GateOutcome, GateResult, run_gate, run_gate_arrow, save_result
from ml_platform.validation.rules import RuleContext

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


def end_of(d: date) -> datetime:
    """The instant a date stands for: d + 1 day, 00:00 UTC."""
    return datetime.combine(d + timedelta(days=1), time(0), tzinfo=timezone.utc)


def run_interval(start: datetime, end: datetime, cadence: str) -> tuple[date, date]:
    """The [start, end) dates a DAG run owns.

    Scheduled and backfill runs carry a real data interval. Manual runs in Airflow 3 may carry
    an empty one (start == end == the chosen logical date): they then own one cadence period
    starting at that date, as a scheduled run for that date would.
    """
    s, e = start.date(), end.date()
    if e <= s:
        e = s + timedelta(days=7 if cadence == "weekly" else 1)
    return s, e


def days_in(start: date, end: date) -> list[date]:
    """Dates in the half-open interval [start, end)."""
    return [start + timedelta(days=i) for i in range((end - start).days)]


def landed_days(
    table: str, start: date, end: date, settings: Settings | None = None, names: list[str] | None = None
) -> list[tuple[date, str]]:
    """Landing folders `<landing>/<table>/<YYYY-MM-DD>/` with files, for days in [start, end).

    The landing zone is a local folder or a Blob container (`ML_PLATFORM_LANDING_URI`); one
    listing of the table's folder finds every day. `names` is that listing when the caller made
    it (the DAG lists a Blob container with the Azure provider's hook): paths relative to the
    table's folder (`<day>/<file>`)."""
    from ml_platform.lake.storage import list_files

    s = settings or get_settings()
    root = f"{s.landing_uri.rstrip('/')}/{table}"
    if names is None:
        names = [f[len(root) + 1 :] for f in list_files(root, s)]
    wanted = {d.isoformat(): d for d in days_in(start, end)}
    days: set[str] = set()
    for relative in names:
        day, _, name = relative.partition("/")
        if day in wanted and name and not name.split("/")[-1].startswith((".", "_")) and not name.endswith(".tmp"):
            days.add(day)
    return [(wanted[d], f"{root}/{d}") for d in sorted(days)]


def ingest_landed(engine: Engine, start: date, end: date, settings: Settings | None = None) -> dict[str, Any]:
    """Ingest every landed transactions/customers file of [start, end) into bronze on `engine`
    (`data_plane_engine` chooses it)."""
    s = settings or get_settings()
    report: dict[str, Any] = {"transactions": [], "customers": []}
    for contract in (TRANSACTIONS, CUSTOMERS):
        by_format: dict[str, dict[str, date]] = {}
        for d, folder in landed_days(contract.name, start, end, s):
            files, fmt = list_files(folder, None)
            by_format.setdefault(fmt, {}).update({f: d for f in files})
        for fmt, files in by_format.items():  # one read and one Delta commit per format
            r = ingest_files(engine, files, contract, fmt=fmt, settings=s)
            report[contract.name].append(
                {"days": len(set(files.values())), "files": r.files, "new_files": r.new_files, "rows": r.rows}
            )
    return report


def _replace_partitions(
    df: DataFrame, path: str, column: str, values: list[date], properties: dict[str, str] | None = None
) -> None:
    predicate = f"{column} IN ({', '.join(repr(v.isoformat()) for v in values)})"
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", predicate)
    if not is_delta(path):
        writer = df.write.format("delta").mode("overwrite").partitionBy(column).options(**(properties or {}))
    writer.save(path)


def _expected_rows(spark: SparkSession, bronze: str, start: date, ndays: int, s: Settings) -> tuple[int, int] | None:
    """Row-count band for the batch from the last landed day before it, or None on the first batch."""
    from pyspark.sql import functions as F

    prev = (
        spark.read.format("delta")
        .load(bronze)
        .where(F.col("ingest_date") < F.lit(start))
        .groupBy("ingest_date")
        .count()
        .orderBy(F.col("ingest_date").desc())
        .limit(1)
        .collect()
    )
    return _row_band(prev[0]["count"], ndays, s) if prev else None


def _row_band(per_day: int, ndays: int, s: Settings) -> tuple[int, int]:
    """The rows a batch of `ndays` may hold, from the previous landed day's `per_day`."""
    return int(per_day * s.row_count_min_ratio * ndays), int(per_day * s.row_count_max_ratio * ndays) + 1


def _record_gate(outcome: GateOutcome, start: date, end: date, s: Settings) -> GateResult:
    """The gate's result with its interval, saved as JSON (either engine's run)."""
    result = outcome.result
    result.interval = [start.isoformat(), end.isoformat()]
    result.result_path = str(gate_result_path(start, end, s))
    save_result(result.to_json(), Path(result.result_path))
    return result


def _fail_unless_passed(outcome: GateOutcome, start: date, end: date) -> None:
    """`ValidationFailed` (the result attached) when the gate failed: silver stays untouched."""
    if not outcome.success:
        result = outcome.result
        raise ValidationFailed(
            f"gate failed for [{start}, {end}): {'; '.join(result.failures)} (result: {result.result_path})",
            result.to_json(),
        )


def gate_run_name(start: date, end: date) -> str:
    """The gate run of the bronze rows ingested in [start, end): names its JSON result and GE run."""
    return f"transactions_{start}_{end}"


def gate_result_path(start: date, end: date, settings: Settings | None = None) -> Path:
    """The gate's JSON result for the bronze rows ingested in [start, end)."""
    return (settings or get_settings()).reports_dir / "validation" / f"{gate_run_name(start, end)}.json"


def data_docs_page(start: date, end: date, settings: Settings | None = None) -> Path:
    """The Great Expectations data docs page of the newest gate run for [start, end), else the site's
    index (GE's file-context layout: validations/<suite>/<run name>/<run time>/<batch>.html)."""
    site = (settings or get_settings()).reports_dir / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site"
    pages = sorted(site.glob(f"validations/*/{gate_run_name(start, end)}/*/*.html"), key=lambda p: p.parent.name)
    return pages[-1] if pages else site / "index.html"


@operation
def validate_to_silver(engine: Engine, start: date, end: date, settings: Settings | None = None) -> GateResult:
    """Gate the bronze rows ingested in [start, end); write quarantine, and silver if the gate passes
    (the same suite, rules and writes on either engine). Raises ValidationFailed (result attached,
    also saved as JSON) when the gate fails."""


@validate_to_silver.register(SparkEngine)
def _validate_spark(engine: SparkEngine, start: date, end: date, settings: Settings | None = None) -> GateResult:
    """Spark reads bronze, GE validates the Spark frame, Delta's MERGE writes silver."""
    from pyspark.sql import functions as F

    spark = engine.spark
    s = settings or get_settings()
    bronze = table_path("bronze.transactions", s)
    if not is_delta(bronze):
        return GateResult(skipped="bronze.transactions does not exist yet")
    interval_days = days_in(start, end)
    batch = (
        spark.read.format("delta").load(bronze).where(F.col("ingest_date").isin([d.isoformat() for d in interval_days]))
    )
    if batch.isEmpty():  # whether landed by a producer or brought with `ml-platform ingest`
        return GateResult(skipped=f"no transactions ingested for [{start}, {end})")
    outcome = run_gate(
        batch,
        RuleContext(interval_end=end_of(end - timedelta(days=1)), amount_max=s.amount_max),
        quarantine_max_share=s.quarantine_max_share,
        rows_expected=_expected_rows(spark, bronze, start, len(interval_days), s),
        docs_root=s.reports_dir / "gx",
        run_name=gate_run_name(start, end),
    )
    result = _record_gate(outcome, start, end, s)
    _replace_partitions(
        outcome.quarantine.withColumn("failed_rules", F.array_join("failed_rules", ",")),
        table_path("quarantine.transactions", s),
        "ingest_date",
        interval_days,
    )
    _fail_unless_passed(outcome, start, end)
    silver = table_path("silver.transactions", s)
    rows = outcome.valid.select(*TRANSACTIONS.names, "load_id").withColumn("txn_date", F.to_date("transaction_ts"))
    if not is_delta(silver):
        rows.limit(0).write.format("delta").partitionBy("txn_date").save(silver)
    merge_into(spark, silver, rows, "t.transaction_id = s.transaction_id", update=False)
    _customers_to_silver(spark, start, end, s)
    return result


@validate_to_silver.register(EmbeddedEngine)
def _validate_embedded(engine: EmbeddedEngine, start: date, end: date, settings: Settings | None = None) -> GateResult:
    """DuckDB over bronze's files, GE on pandas, delta-rs writes (quarantine replaces the interval's
    partitions, silver MERGEs insert-only on transaction_id)."""
    import duckdb

    from ml_platform.lake.delta_log import DeltaView, read_table, snapshot
    from ml_platform.lake.rows import insert_new, replace_where, upsert

    s = settings or get_settings()
    bronze = table_path("bronze.transactions", s)
    snap = snapshot(bronze)
    if snap is None:
        return GateResult(skipped="bronze.transactions does not exist yet")
    interval_days = days_in(start, end)
    wanted = {d.isoformat() for d in interval_days}
    batch = read_table(snap, where={"ingest_date": wanted})
    if batch.num_rows == 0:
        return GateResult(skipped=f"no transactions ingested for [{start}, {end})")
    before = sorted(
        {
            v
            for a in snap.files.values()
            if (v := (a.get("partitionValues") or {}).get("ingest_date")) and v < str(start)
        }
    )
    expected = None
    if before:
        per_day = read_table(snap, where={"ingest_date": {before[-1]}}, columns=["load_id"]).num_rows
        expected = _row_band(per_day, len(interval_days), s)
    outcome = run_gate_arrow(
        batch,
        RuleContext(interval_end=end_of(end - timedelta(days=1)), amount_max=s.amount_max),
        quarantine_max_share=s.quarantine_max_share,
        rows_expected=expected,
        docs_root=s.reports_dir / "gx",
        run_name=gate_run_name(start, end),
    )
    result = _record_gate(outcome, start, end, s)
    days_sql = ", ".join(f"'{d}'" for d in sorted(wanted))
    replace_where(
        table_path("quarantine.transactions", s),
        outcome.quarantine,
        f"ingest_date IN ({days_sql})",
        partition_by=["ingest_date"],
    )
    _fail_unless_passed(outcome, start, end)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("valid", outcome.valid)
        cols = ", ".join(f'"{c}"' for c in [*TRANSACTIONS.names, "load_id"])
        rows = con.sql(f"SELECT {cols}, CAST(transaction_ts AS DATE) AS txn_date FROM valid").to_arrow_table()
        insert_new(table_path("silver.transactions", s), rows, "transaction_id", partition_by=["txn_date"])
        customers = snapshot(table_path("bronze.customers", s))
        if customers is not None:
            DeltaView(customers).register_in(con, "bronze_customers")
            names = ", ".join(f'"{c}"' for c in CUSTOMERS.names)
            latest = con.sql(
                f"SELECT {names} FROM bronze_customers WHERE customer_id IS NOT NULL AND ingest_date < DATE '{end}' "
                "QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY ingest_date DESC, load_id DESC) = 1"
            ).to_arrow_table()
            upsert(table_path("silver.customers", s), latest, "customer_id")
    finally:
        con.close()
    return result


def _customers_to_silver(spark: SparkSession, start: date, end: date, s: Settings) -> None:
    """Latest record per customer from bronze.customers into silver.customers (MERGE)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    bronze = table_path("bronze.customers", s)
    if not is_delta(bronze):
        return
    w = Window.partitionBy("customer_id").orderBy(F.col("ingest_date").desc(), F.col("load_id").desc())
    latest = (
        spark.read.format("delta")
        .load(bronze)
        .where(F.col("customer_id").isNotNull() & (F.col("ingest_date") < F.lit(end)))
        .withColumn("_rn", F.row_number().over(w))
        .where("_rn = 1")
        .select(*CUSTOMERS.names)
    )
    silver = table_path("silver.customers", s)
    if not is_delta(silver):
        latest.limit(0).write.format("delta").save(silver)
    merge_into(spark, silver, latest, "t.customer_id = s.customer_id", update=True)


def build_features(
    engine: Engine, start: date, end: date, cadence: str | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """Compute and write feature snapshots for the snapshot dates in [start, end] (inclusive) on `engine`."""
    s = settings or get_settings()
    return build_feature_snapshots(engine, snapshot_dates(start, end, cadence or s.snapshot_cadence), cadence, s)


def features_engine(settings: Settings | None = None, *, measured: int | None = None) -> Engine:
    """The engine of the feature snapshot job (`engines.choose_engine`; its input is silver,
    `measured` its size when the caller read it already)."""
    s = settings or get_settings()
    return choose_engine("features", [table_path("silver.transactions", s)], s, measured=measured)


DATA_PLANE_STEPS = ("ingest", "validate", "features")


def parse_steps(steps: str) -> list[str]:
    """The data plane's steps from a comma-separated list; `MlPlatformError` names unknown ones."""
    wanted = [x.strip() for x in steps.split(",") if x.strip()]
    unknown = sorted(set(wanted) - set(DATA_PLANE_STEPS))
    if unknown or not wanted:
        raise MlPlatformError(
            f"unknown data-plane steps {unknown or [steps]}; a comma-separated subset of {','.join(DATA_PLANE_STEPS)}"
        )
    return wanted


def data_plane_engine(steps: str = ",".join(DATA_PLANE_STEPS), settings: Settings | None = None) -> Engine:
    """The one engine of a data-plane run of `steps`: when it ingests or validates,
    `ML_PLATFORM_ENGINE_DATA_PLANE`'s choice on silver.transactions, Spark when the snapshots of
    the same run need Spark; else the feature snapshot's engine. On the embedded engine the job
    starts no JVM."""
    s = settings or get_settings()
    wanted = set(parse_steps(steps))
    silver = [table_path("silver.transactions", s)]
    try:  # both choices read silver's size: its log once
        measured: int | None = input_bytes(silver)
    except UnsupportedTable:
        measured = None  # each choice says why on its own
    features = features_engine(s, measured=measured) if "features" in wanted else None
    if not wanted - {"features"}:
        return features  # type: ignore[return-value]
    plane = choose_engine("data_plane", silver, s, measured=measured)
    if features is not None and plane.starts_jvm < features.starts_jvm:
        return SparkEngine(f"the feature snapshots need Spark ({features.reason})")
    return plane


def build_feature_snapshots(
    engine: Engine, dates: list[date], cadence: str | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """Compute and write the feature snapshots of `dates` on `engine` (replacing those partitions);
    register the table. The result names the engine and why it was chosen."""
    s = settings or get_settings()
    dates = sorted(set(dates))
    if not dates:
        return {"snapshot_dates": [], "rows": 0}
    silver_path = table_path("silver.transactions", s)
    if not is_delta(silver_path):
        raise MlPlatformError(
            f"no silver.transactions at {silver_path} yet: ingest and validate landed "
            f"transaction files first (ml-platform run, or the features_build DAG)"
        )
    log.info("feature snapshots of %d date(s): %s engine (%s)", len(dates), engine.name, engine.reason)
    rows = write_snapshots(engine, silver_path, dates, s)
    Registry(catalog_dir(s)).put(customer_features_table(cadence or s.snapshot_cadence))
    return {"snapshot_dates": [d.isoformat() for d in dates], "rows": rows, "engine": engine.to_json()}


@operation
def write_snapshots(engine: Engine, silver_path: str, dates: list[date], settings: Settings) -> int:
    """Compute the customer snapshots of `dates` from silver at `silver_path` and replace those
    snapshot_date partitions of the feature table; the rows written."""


@write_snapshots.register(SparkEngine)
def _snapshots_spark(engine: SparkEngine, silver_path: str, dates: list[date], settings: Settings) -> int:
    silver = engine.spark.read.format("delta").load(silver_path)
    # one file per snapshot_date partition (instead of one per shuffle partition)
    feats = compute_customer_features(silver, dates).repartition("snapshot_date").persist()
    rows = feats.count()
    _replace_partitions(feats, table_path(TABLE_NAME, settings), "snapshot_date", dates, FEATURE_TABLE_PROPERTIES)
    feats.unpersist()
    return int(rows)


@write_snapshots.register(EmbeddedEngine)
def _snapshots_embedded(engine: EmbeddedEngine, silver_path: str, dates: list[date], settings: Settings) -> int:
    """From silver's live files (only the txn_date partitions the dates use), computed by DuckDB and
    committed with the embedded Delta writer."""
    from ml_platform.features.customer_features import arrow_schema, compute_customer_features_embedded
    from ml_platform.lake.delta_log import live_files, readable_files, replace_partitions, snapshot

    snap = snapshot(silver_path)
    last = max(dates).isoformat()
    files = readable_files(
        snap,  # type: ignore[arg-type]
        [
            a
            for a in live_files(snap)  # type: ignore[arg-type]
            if (a.get("partitionValues") or {}).get("txn_date") is None or a["partitionValues"]["txn_date"] <= last
        ],
    )
    feats = compute_customer_features_embedded(files, dates) if files else arrow_schema().empty_table()
    replace_partitions(
        table_path(TABLE_NAME, settings),
        feats,
        ["snapshot_date"],
        replace={"snapshot_date": dates},
        properties=FEATURE_TABLE_PROPERTIES,
        engine_info=f"ml-platform embedded (DuckDB), silver version {snap.version}",  # type: ignore[union-attr]
    )
    return feats.num_rows


def publish_if_newest(engine: Engine, snapshot: date, settings: Settings | None = None) -> dict[str, Any]:
    """Publish `features.customer_features` online when `snapshot` is its newest snapshot_date (read
    on the publish's engine choice, sharing `engine`'s Spark session if it has one).

    A backfill of an older date therefore never replaces fresher online values. Idempotent:
    the online store skips a Delta version it already holds.
    """
    s = settings or get_settings()
    ok, newest = newest_snapshot_check(snapshot, s)
    if not ok:
        return {"skipped": f"snapshot {snapshot} is not the newest ({newest})"}
    store = FeatureStore(settings=s)
    return store.publish_online(TABLE_NAME, engine=store.publish_engine(TABLE_NAME).using(engine))


def run_days(
    engine: Engine,
    start: date,
    end: date,
    *,
    cadence: str | None = None,
    batch_days: int = 7,
    publish: bool = False,
    settings: Settings | None = None,
    progress: Callable[[int, int], None] | None = None,
    say: Callable[[str], None] = lambda msg: None,
) -> dict[str, Any]:
    """Landed files of [start, end] (inclusive) -> bronze -> gate -> silver in batches of `batch_days`,
    then the feature snapshots of the range in one pass and, with `publish`, the newest snapshot to
    the online store (only when it is the lake's newest). What `ml-platform run` does, on `engine`
    for ingest and the gate (at most one JVM)."""
    s = settings or get_settings()
    cadence = cadence or s.snapshot_cadence
    days = days_in(start, end + timedelta(days=1))
    batches = [days[i : i + batch_days] for i in range(0, len(days), batch_days)]
    gates = []
    for i, batch in enumerate(batches):
        lo, hi = batch[0], batch[-1] + timedelta(days=1)
        ingest_landed(engine, lo, hi, s)
        gate = validate_to_silver(engine, lo, hi, s)
        gates.append(
            {
                "interval": [lo.isoformat(), hi.isoformat()],
                "quarantined": None if gate.skipped else gate.quarantined,
                "rows": None if gate.skipped else gate.rows_validated,
                "skipped": gate.skipped,
            }
        )
        if progress:
            progress(i + 1, len(batches))
    dates = snapshot_dates(start, end, cadence)
    features = features_engine(s).using(engine)
    say(f"features for {len(dates)} snapshot dates in one pass: {features.name} engine ({features.reason})")
    out: dict[str, Any] = {"gates": gates, "features": build_features(features, start, end, cadence, s)}
    if publish:
        say("online store: the newest snapshot, if it is the one just built")
        out["online"] = (
            publish_if_newest(features, dates[-1], s) if dates else {"skipped": f"no snapshot date in [{start}, {end}]"}
        )
    return out
