"""A transaction event: one JSON object per Kafka message, with the fields and types of a landed
transaction row (`contracts.TRANSACTIONS`): `docs/schemas/transaction-event.json` is its JSON Schema,
generated from the contract (`json_schema`) and held equal to it by the unit tier
(docs/schemas/transaction-event.json).

Parsing never fails a micro-batch: each message gets the list of reasons it cannot be a silver row
(`REASONS` names the structural ones; the gate's row rules, `validation.rules.ROW_RULES`, add
theirs), and a message with any reason goes to `quarantine.events` with them.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ml_platform.contracts import TRANSACTIONS

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

_JSON_TYPES = {
    "string": {"type": "string"},
    "double": {"type": "number"},
    "int": {"type": "integer"},
    "timestamp": {"type": "string", "format": "date-time"},
}

#: Reasons a message is not a transaction before any row rule is applied.
REASONS = {
    "oversized": "the message is larger than ML_PLATFORM_STREAM_MAX_EVENT_BYTES",
    "malformed_json": "the message is not one JSON object (UTF-8)",
    "missing_<field>": "a required field is absent or null",
    "wrong_type_<field>": "a field's value cannot be read as its type",
    "unknown_customer": "silver.customers exists and does not know the customer",
    "too_late": "event time earlier than the message's broker time minus ML_PLATFORM_STREAM_LATE_HOURS",
    "far_future": "event time more than 5 minutes after the message's broker time",
    "transaction_id_conflict": "another message of the batch has the same id and different values",
}
FUTURE_SKEW_SECONDS = 300


def json_schema() -> dict[str, Any]:
    """The event's JSON Schema, from the contract."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://ml-platform.dev/schemas/transaction-event.json",
        "title": "Transaction event",
        "description": "One transaction, as a landed transactions row: the message value of the events topic.",
        "type": "object",
        "properties": {
            c.name: {**_JSON_TYPES[c.spark_type], "description": c.description} for c in TRANSACTIONS.columns
        },
        "required": list(TRANSACTIONS.required),
        "additionalProperties": True,
    }


def encode_event(row: dict[str, Any]) -> bytes:
    """`row` as an event's JSON bytes (timestamps as ISO 8601 in UTC)."""

    def value(v: Any) -> Any:
        if isinstance(v, datetime):
            return (v if v.tzinfo else v.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).isoformat()
        return v

    return json.dumps({k: value(v) for k, v in row.items()}, separators=(",", ":")).encode()


def parse_events(batch: DataFrame, max_bytes: int, late_hours: float) -> DataFrame:
    """Kafka records (`value`, `topic`, `partition`, `offset`, `timestamp`) -> the contract's typed
    columns plus `_reasons` (array of reason names, empty for a good event), `_raw` (the message,
    cut at `max_bytes`), `_topic`, `_partition`, `_offset`, `_broker_ts`."""
    from pyspark.sql import functions as F

    size = F.octet_length(F.col("value"))
    text = F.when(size <= max_bytes, F.col("value").cast("string"))
    fields = F.from_json(text, "map<string,string>")  # NULL: not a JSON object
    df = batch.select(
        F.substring(F.col("value").cast("string"), 1, max_bytes).alias("_raw"),
        size.alias("_size"),
        fields.alias("_fields"),
        F.col("topic").alias("_topic"),
        F.col("partition").alias("_partition"),
        F.col("offset").alias("_offset"),
        F.col("timestamp").alias("_broker_ts"),
    )
    from ml_platform.data.ingest import typed_column

    typed = [typed_column(F.col("_fields")[c.name], c.spark_type, None).alias(c.name) for c in TRANSACTIONS.columns]
    df = df.select("*", *typed)
    reasons: list[Column] = [
        F.when(F.col("_size") > max_bytes, F.lit("oversized")),
        F.when((F.col("_size") <= max_bytes) & F.col("_fields").isNull(), F.lit("malformed_json")),
    ]
    ok = F.col("_fields").isNotNull()
    for c in TRANSACTIONS.columns:
        raw = F.col("_fields")[c.name]
        if c.required:
            reasons.append(F.when(ok & raw.isNull(), F.lit(f"missing_{c.name}")))
        reasons.append(F.when(ok & raw.isNotNull() & F.col(c.name).isNull(), F.lit(f"wrong_type_{c.name}")))
    ts = F.col("transaction_ts")
    reasons += [
        F.when(ts < F.col("_broker_ts") - F.expr(f"make_interval(0, 0, 0, 0, 0, 0, {float(late_hours) * 3600})"),
               F.lit("too_late")),
        F.when(ts > F.col("_broker_ts") + F.expr(f"INTERVAL {FUTURE_SKEW_SECONDS} SECONDS"), F.lit("far_future")),
    ]  # fmt: skip
    return df.withColumn("_reasons", F.filter(F.array(*reasons), lambda x: x.isNotNull())).drop("_fields", "_size")
