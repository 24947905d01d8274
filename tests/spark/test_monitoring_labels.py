"""Late labels from silver.transactions for logged predictions: windows, idempotence, late arrival."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

pytestmark = pytest.mark.spark


def _record(i: int, customer: str | None, feature_ts: str | None) -> dict:
    return {
        "prediction_id": f"r{i}:0:champion",
        "request_id": f"r{i}",
        "event_time": "2026-11-26T10:00:00+00:00",
        "customer_id": customer,
        "model_name": "churn_model",
        "model_version": "1",
        "variant": "champion",
        "returned": True,
        "churn_probability": 0.5,
        "feature_timestamp": feature_ts,
        "features_json": "{}",
    }


def _silver(spark, path: str, rows: list[tuple[str, str]], mode: str) -> None:
    df = spark.createDataFrame(
        [(c, datetime.fromisoformat(t).replace(tzinfo=timezone.utc)) for c, t in rows],
        "customer_id string, transaction_ts timestamp",
    )
    df.write.format("delta").mode(mode).save(path)


def test_labels_need_an_observed_window_and_are_written_once(spark, tmp_path):
    from ml_platform.config import Settings
    from ml_platform.lake.paths import table_path
    from ml_platform.monitoring.labels import derive_labels
    from ml_platform.serving.spool import PredictionSpool, load_spool

    s = Settings(home=tmp_path)
    assert derive_labels(spark, 7, s)["skipped"] == "monitoring.prediction_log does not exist yet"
    spool = PredictionSpool(tmp_path / "spool")
    jan2 = "2025-01-02T00:00:00+00:00"  # end of the 2025-01-01 snapshot: the label window starts here
    spool.append(
        [
            _record(1, "A", jan2),
            _record(2, "B", jan2),
            _record(3, "C", jan2),
            _record(4, "D", "2025-01-08T00:00:00+00:00"),
            _record(5, None, None),
        ]
    )
    spool.close()
    load_spool(tmp_path / "spool", s)
    silver = table_path("silver.transactions", s)
    _silver(
        spark,
        silver,
        [
            ("A", "2025-01-01T10:00:00"),
            ("A", "2025-01-05T09:00:00"),  # bought within 7 days
            ("B", "2025-01-01T11:00:00"),  # nothing after: churned
            ("C", "2025-01-09T00:00:00"),  # the first instant after the window: churned
            ("D", "2025-01-10T12:00:00"),
        ],
        "overwrite",
    )  # data ends 2025-01-10

    first = derive_labels(spark, 7, s)
    labels = {
        r["customer_id"]: r for r in spark.read.format("delta").load(table_path("monitoring.labels", s)).collect()
    }
    assert first["labelled"] == 3 and first["observed_until"] == "2025-01-10"
    assert {c: r["churned"] for c, r in labels.items()} == {"A": 0, "B": 1, "C": 1}  # D's window ends 01-15
    assert labels["A"]["label_known_at"] == datetime(2025, 1, 9) and labels["A"]["model_version"] == "1"

    assert derive_labels(spark, 7, s)["labelled"] == 0  # a rerun adds and changes nothing
    _silver(spark, silver, [("E", "2025-01-16T08:00:00")], "append")  # more data arrives: D is observable
    assert derive_labels(spark, 7, s)["labelled"] == 1
    after = {
        r["customer_id"]: r["churned"]
        for r in spark.read.format("delta").load(table_path("monitoring.labels", s)).collect()
    }
    assert after == {"A": 0, "B": 1, "C": 1, "D": 0}  # D bought on 01-10, inside [01-08, 01-15)
