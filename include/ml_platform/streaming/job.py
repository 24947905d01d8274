"""The streaming job: Spark Structured Streaming reads the events topic (offsets in a checkpoint
under the lake) and, per micro-batch, in this order:

1. parses and validates every message (`events.parse_events`, then the gate's row rules); a bad
   one goes to `quarantine.events` with its reasons and never stops the stream;
2. recomputes the streaming features of the batch's customers (spend and count over the last
   1 h / 24 h / 7 d before their newest event, and that event's time) from silver plus the batch,
   and writes them to the online store (`features.customer_stream`): first, for freshness;
3. appends the good events to `bronze.transactions` and MERGEs them into `silver.transactions`;
4. scores each good event's customer with the `@champion` model (its online batch features) into
   `gold.stream_scores` and the scores topic;
5. writes the job's heartbeat (`<home>/streaming/status.json`) for the supervisor.

Exactly once: each Delta append carries Spark's batch id as its idempotent transaction version
(`txnAppId` = the query's id and the table, `txnVersion` = the batch id), so a batch re-run after a
crash writes nothing twice; the MERGE is insert-only on transaction_id; the online values are
recomputed from the lake, so a re-run writes the same values. The scores topic is at least once
(a re-run re-sends; `transaction_id` is the message key).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_platform.config import Settings, get_settings
from ml_platform.contracts import TRANSACTIONS
from ml_platform.features.online import key_string
from ml_platform.features.registry import FeatureSpec, FeatureTable
from ml_platform.lake.delta_sql import is_delta, merge_into
from ml_platform.lake.paths import table_path
from ml_platform.streaming.connection import EventStream
from ml_platform.streaming.events import parse_events
from ml_platform.validation.rules import ROW_RULES, RuleContext

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

WINDOWS = (("1h", 3600), ("24h", 86400), ("7d", 7 * 86400))
STREAM_FEATURES = FeatureTable(
    name="features.customer_stream",
    primary_keys=("customer_id",),
    timestamp_key="last_event_ts",
    features=tuple(
        spec
        for label, _ in WINDOWS
        for spec in (
            FeatureSpec(f"spend_{label}", "double", f"amount spent in the {label} up to the customer's newest event"),
            FeatureSpec(f"count_{label}", "bigint", f"transactions in the {label} up to the customer's newest event"),
        )
    ),
    description="Streaming features, updated per micro-batch from the events topic (streaming job)",
    owner="streaming",
)
#: the gate's row rules a single event can break (uniqueness is settled per batch and by silver's MERGE)
EVENT_RULES = [r for r in ROW_RULES if r.name in ("amount_in_range", "channel_allowed")]


@dataclass
class BatchReport:
    batch_id: int
    events: int
    valid: int
    quarantined: int
    reasons: dict[str, int]
    customers: int
    scored: int
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class StreamContext:
    """What every micro-batch needs: the settings, the endpoint and the query's id (from its checkpoint)."""

    settings: Settings
    stream: EventStream
    checkpoint: str
    _query_id: str | None = None
    _model: tuple[float, str | None, Any] | None = None  # (resolved at, version, pyfunc)
    _store: Any = None
    _producer: Any = None

    @property
    def store(self) -> Any:
        """The feature store (its online store's connection opened once, kept for every batch)."""
        if self._store is None:
            from ml_platform.features import FeatureStore

            self._store = FeatureStore(settings=self.settings)
        return self._store

    @property
    def producer(self) -> Any:
        """The scores topic's producer, logged in once for the job (not per batch)."""
        if self._producer is None:
            from confluent_kafka import Producer

            self._producer = Producer({**self.stream.client_config(), "enable.idempotence": True})
        return self._producer

    @property
    def query_id(self) -> str:
        if self._query_id is None:
            from ml_platform.lake.storage import upath

            self._query_id = json.loads((upath(self.checkpoint) / "metadata").read_text())["id"]
        return self._query_id


def stream_features(transactions: DataFrame) -> DataFrame:
    """Per customer of `transactions` (customer_id, transaction_ts, amount): the newest event time and
    spend/count in each window ending at it. The batch job and the stream compute it the same way."""
    from pyspark.sql import functions as F

    last = transactions.groupBy("customer_id").agg(F.max("transaction_ts").alias("last_event_ts"))
    joined = transactions.join(last, "customer_id")
    age = F.col("last_event_ts").cast("double") - F.col("transaction_ts").cast("double")
    aggs = []
    for label, seconds in WINDOWS:
        inside = age < seconds
        aggs += [
            F.sum(F.when(inside, F.col("amount")).otherwise(0.0)).cast("double").alias(f"spend_{label}"),
            F.sum(F.when(inside, 1).otherwise(0)).cast("bigint").alias(f"count_{label}"),
        ]
    return joined.groupBy("customer_id", "last_event_ts").agg(*aggs)


def _append_once(df: DataFrame, path: str, app: str, batch_id: int, partition: str) -> None:
    writer = df.write.format("delta").mode("append").option("txnAppId", app).option("txnVersion", batch_id)
    if not is_delta(path):
        writer = writer.partitionBy(partition)
    writer.save(path)


def _classify(spark: SparkSession, batch: DataFrame, ctx: StreamContext) -> DataFrame:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    s = ctx.settings
    parsed = parse_events(batch, s.stream_max_event_bytes, s.stream_late_hours)
    rule_ctx = RuleContext(interval_end=datetime.max.replace(tzinfo=timezone.utc), amount_max=s.amount_max)
    extra = [F.when(r.violates(rule_ctx), F.lit(r.name)) for r in EVENT_RULES]
    customers = table_path("silver.customers", s)
    if is_delta(customers):
        known = spark.read.format("delta").load(customers).select(F.col("customer_id").alias("_known"))
        parsed = parsed.join(F.broadcast(known), parsed["customer_id"] == known["_known"], "left")
        extra.append(F.when(F.col("customer_id").isNotNull() & F.col("_known").isNull(), F.lit("unknown_customer")))
    else:
        parsed = parsed.withColumn("_known", F.lit(None))
    # the same id twice in one batch: a redelivery (same values) is one event, different values a conflict
    variants = F.size(F.collect_set(F.struct(*TRANSACTIONS.names)).over(Window.partitionBy("transaction_id")))
    extra.append(F.when(F.col("transaction_id").isNotNull() & (variants > 1), F.lit("transaction_id_conflict")))
    reasons = F.concat(F.col("_reasons"), F.filter(F.array(*extra), lambda x: x.isNotNull()))
    return parsed.withColumn("_reasons", reasons).drop("_known")


def process_batch(spark: SparkSession, batch: DataFrame, batch_id: int, ctx: StreamContext) -> BatchReport:
    """One micro-batch, as the module doc describes; safe to re-run with the same `batch_id`."""
    from pyspark.sql import functions as F

    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    rows = _classify(spark, batch, ctx).persist()
    try:
        counts = rows.select(
            F.count(F.lit(1)).alias("n"), F.sum((F.size("_reasons") > 0).cast("int")).alias("bad")
        ).first()
        n, bad = int(counts["n"] or 0), int(counts["bad"] or 0)
        reasons = {
            r["reason"]: int(r["count"])
            for r in rows.select(F.explode("_reasons").alias("reason")).groupBy("reason").count().collect()
        }
        good = (
            rows.where(F.size("_reasons") == 0)
            .dropDuplicates(["transaction_id"])  # a redelivered event, once
            .select(*TRANSACTIONS.names, "_topic", "_partition", "_offset", "_broker_ts")
        )
        seconds["parse"], t = round(time.perf_counter() - t0, 3), time.perf_counter()
        customers = _update_online(spark, good, ctx)
        seconds["online"], t = round(time.perf_counter() - t, 3), time.perf_counter()
        _write_lake(spark, rows, good, batch_id, ctx, bad)
        seconds["lake"], t = round(time.perf_counter() - t, 3), time.perf_counter()
        scored = _score(spark, good, batch_id, ctx)
        seconds["score"] = round(time.perf_counter() - t, 3)
        report = BatchReport(batch_id, n, n - bad, bad, reasons, customers, scored, seconds)
        _heartbeat(rows, report, ctx)
        return report
    finally:
        rows.unpersist()


def _update_online(spark: SparkSession, good: DataFrame, ctx: StreamContext) -> int:
    """The streaming features of `good`'s customers, from silver and the batch, into the online store."""
    from pyspark.sql import functions as F

    seen = good.agg(F.collect_set("customer_id").alias("ids"), F.min("transaction_ts").alias("oldest")).first()
    ids, oldest = list(seen["ids"] or []), seen["oldest"]  # one Spark job for both
    if not ids:
        return 0
    batch_tx = good.select("transaction_id", "customer_id", "transaction_ts", "amount")
    silver = table_path("silver.transactions", ctx.settings)
    tx = batch_tx
    if is_delta(silver):
        known = (
            spark.read.format("delta")
            .load(silver)
            .where(
                F.col("customer_id").isin(ids)
                & (F.col("txn_date") >= F.to_date(F.lit(oldest) - F.expr("INTERVAL 8 DAYS")))
            )
            .select("transaction_id", "customer_id", "transaction_ts", "amount")
        )
        tx = known.unionByName(batch_tx).dropDuplicates(["transaction_id"])
    feats = stream_features(tx).collect()
    names = STREAM_FEATURES.feature_names
    ctx.store.online.upsert(
        STREAM_FEATURES, [(key_string(r["customer_id"]), r["last_event_ts"], [r[n] for n in names]) for r in feats]
    )
    return len(feats)


def _write_lake(
    spark: SparkSession, rows: DataFrame, good: DataFrame, batch_id: int, ctx: StreamContext, bad: int
) -> None:
    from pyspark.sql import functions as F

    s, app = ctx.settings, f"stream-{ctx.query_id}"
    quarantine = rows.where(F.size("_reasons") > 0).select(
        F.col("_raw").alias("message"),
        F.array_join("_reasons", ",").alias("reasons"),
        F.col("_topic").alias("topic"),
        F.col("_partition").alias("partition"),
        F.col("_offset").alias("offset"),
        F.col("_broker_ts").alias("broker_ts"),
        F.lit(batch_id).cast("long").alias("batch_id"),
        F.to_date("_broker_ts").alias("ingest_date"),
    )
    if bad:  # an empty append is a commit too (a second of a micro-batch): none
        _append_once(quarantine, table_path("quarantine.events", s), f"{app}-quarantine", batch_id, "ingest_date")
    source = F.concat(F.lit("kafka://"), F.col("_topic"), F.lit("/"), F.col("_partition"), F.lit("/"), F.col("_offset"))
    bronze = good.select(
        *TRANSACTIONS.names,
        source.alias("source_file"),
        F.lit(f"{app}-{batch_id}").alias("load_id"),
        F.to_date("_broker_ts").alias("ingest_date"),
    )
    _append_once(bronze, table_path("bronze.transactions", s), f"{app}-bronze", batch_id, "ingest_date")
    silver = table_path("silver.transactions", s)
    rows_in = bronze.select(*TRANSACTIONS.names, "load_id").withColumn("txn_date", F.to_date("transaction_ts"))
    if not is_delta(silver):
        rows_in.limit(0).write.format("delta").partitionBy("txn_date").save(silver)
    merge_into(spark, silver, rows_in, "t.transaction_id = s.transaction_id", update=False)


def _champion(ctx: StreamContext) -> tuple[str | None, Any]:
    """The `@champion` version and its pyfunc, resolved at most every 30 s (a promotion is picked
    up within that); (None, None) when there is no champion yet."""
    now = time.monotonic()
    if ctx._model is not None and now - ctx._model[0] < 30:
        return ctx._model[1], ctx._model[2]
    import mlflow

    from ml_platform.lake.endpoints import use_mlflow

    s = ctx.settings
    use_mlflow(s.mlflow_tracking_uri)
    try:
        version = str(mlflow.MlflowClient().get_model_version_by_alias(s.model_name, "champion").version)
    except mlflow.exceptions.MlflowException:
        ctx._model = (now, None, None)
        return None, None
    model = ctx._model[2] if ctx._model is not None and ctx._model[1] == version else None
    if model is None:
        model = mlflow.pyfunc.load_model(f"models:/{s.model_name}/{version}")
    ctx._model = (now, version, model)
    return version, model


def _score(spark: SparkSession, good: DataFrame, batch_id: int, ctx: StreamContext) -> int:
    """Score each good event's customer with the champion on the customer's online batch features."""
    import pandas as pd

    from ml_platform.model.scoring import rescore
    from ml_platform.serving.routing import parse_bands, risk_band

    s = ctx.settings
    events = good.select("transaction_id", "customer_id", "transaction_ts").toPandas()
    version, model = _champion(ctx) if len(events) else (None, None)
    if model is None:
        return 0
    online = ctx.store.get_online_features("features.customer_features", sorted(set(events["customer_id"])))
    values = {r.key: r.values for r in online if r.found}
    events = events[events["customer_id"].isin(list(values))]
    if events.empty:
        return 0
    features = pd.DataFrame([values[c] for c in events["customer_id"]])
    probability = rescore(model, features)
    bands = parse_bands(s.risk_bands)
    scored_at = datetime.now(timezone.utc)
    out = events.assign(
        churn_probability=[float(p) for p in probability],
        risk_band=[risk_band(float(p), bands) for p in probability],
        model_name=s.model_name,
        model_version=version,
        batch_id=batch_id,
        scored_at=scored_at,
        score_date=scored_at.date(),
    )
    _send_scores(out, ctx)
    frame = spark.createDataFrame(out.reset_index(drop=True))
    _append_once(frame, table_path("gold.stream_scores", s), f"stream-{ctx.query_id}-scores", batch_id, "score_date")
    return len(out)


def _send_scores(scores: Any, ctx: StreamContext) -> None:
    producer = ctx.producer
    for r in scores.itertuples(index=False):
        value = {
            "transaction_id": r.transaction_id,
            "customer_id": r.customer_id,
            "churn_probability": r.churn_probability,
            "risk_band": r.risk_band,
            "model_version": r.model_version,
            "scored_at": r.scored_at.isoformat(),
        }
        producer.produce(ctx.stream.scores_topic, key=r.transaction_id.encode(), value=json.dumps(value).encode())
    if producer.flush(30) != 0:
        from ml_platform.errors import MlPlatformError

        raise MlPlatformError(f"the scores topic {ctx.stream.scores_topic!r} did not take every score in 30 s")


def status_path(settings: Settings | None = None) -> Path:
    """The streaming job's heartbeat: its last batch, when, and the offsets it reached."""
    return (settings or get_settings()).home / "streaming" / "status.json"


def _heartbeat(rows: DataFrame, report: BatchReport, ctx: StreamContext) -> None:
    from pyspark.sql import functions as F

    offsets = {
        f"{r['_topic']}/{r['_partition']}": int(r["o"])
        for r in rows.groupBy("_topic", "_partition").agg(F.max("_offset").alias("o")).collect()
    }
    path = status_path(ctx.settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(path.read_text()) if path.exists() else {}
    rerun = (old.get("last_batch") or {}).get("batch_id") == report.batch_id and old.get("query_id") == ctx.query_id
    status = {
        "query_id": ctx.query_id,
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "offsets": {**(old.get("offsets") or {}), **offsets},
        "last_batch": asdict(report),
        "totals": {
            k: int((old.get("totals") or {}).get(k, 0)) + (0 if rerun else getattr(report, k))
            for k in ("events", "valid", "quarantined", "scored")
        },
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status, indent=2))
    tmp.replace(path)


def checkpoint_path(settings: Settings | None = None) -> str:
    """The streaming query's checkpoint (offsets, batch ids) under the lake."""
    return f"{(settings or get_settings()).lake_uri.rstrip('/')}/_checkpoints/stream_transactions"


def start_stream(
    spark: SparkSession,
    settings: Settings | None = None,
    *,
    once: bool = False,
    replay_from: datetime | None = None,
    say: Any = print,
) -> Any:
    """Start the streaming query and return it. The first start reads the topic from its earliest
    offset; a restart resumes exactly after the last committed batch (the checkpoint); with
    `replay_from` the checkpoint is set aside (renamed, kept) and reading starts at the first
    offset at or after that time (already-written events are not written twice: silver's MERGE
    keeps one row per transaction_id). `once`: process what the topic holds now, then stop."""
    from ml_platform.lake.storage import upath
    from ml_platform.streaming.connection import check_login, event_stream

    s = settings or get_settings()
    stream = event_stream(s)
    partitions = check_login(stream)
    ckpt = checkpoint_path(s)
    options = {**stream.spark_options(), "subscribe": stream.topic, "maxOffsetsPerTrigger": "20000"}
    if replay_from is not None:
        old = upath(ckpt)
        if old.exists():
            old.rename(upath(f"{ckpt}.before-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"))
        options["startingTimestamp"] = str(int(replay_from.timestamp() * 1000))
    else:
        options["startingOffsets"] = "earliest"  # the first start only: afterwards the checkpoint decides
    say(f"events: {stream.topic} at {stream.bootstrap} ({len(partitions)} partition(s)), checkpoint {ckpt}")
    ctx = StreamContext(s, stream, ckpt)
    ctx.store.register_spec(STREAM_FEATURES)  # once: `features get` and the DAGs know the table

    def batch(df: DataFrame, batch_id: int) -> None:
        report = process_batch(df.sparkSession, df, batch_id, ctx)
        say(
            f"batch {report.batch_id}: {report.events} events, {report.valid} valid, {report.quarantined} "
            f"quarantined {report.reasons or ''}, {report.customers} customers' features, {report.scored} scored "
            f"{report.seconds}"
        )

    writer = (
        spark.readStream.format("kafka")
        .options(**options)
        .load()
        .writeStream.foreachBatch(batch)
        .option("checkpointLocation", ckpt)
        .queryName("stream_transactions")
    )
    trigger = {"availableNow": True} if once else {"processingTime": f"{s.stream_trigger_seconds} seconds"}
    return writer.trigger(**trigger).start()
