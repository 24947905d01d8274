"""Serving rules without a server: payload validation, risk bands, the sticky split, the spool."""

from __future__ import annotations

import json
import os

import pytest
from pydantic import ValidationError

from ml_platform.serving.routing import PredictRequest, in_challenger_bucket, parse_bands, risk_band

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("payload, words", [
    ({}, "exactly one of"), ({"customer_ids": []}, "empty"), ({"rows": []}, "empty"),
    ({"customer_ids": ["a"], "rows": [{}]}, "exactly one of"), ({"customer_ids": ["a"], "x": 1}, "Extra inputs"),
    ({"customer_ids": [""]}, "blank"), ({"customer_ids": [3]}, "valid string"),
])
def test_bad_payloads_are_named(payload, words):
    with pytest.raises(ValidationError, match=words):
        PredictRequest.model_validate(payload)


def test_risk_bands_and_their_configuration():
    bands = parse_bands("0.75,0.50,0.25")
    assert [risk_band(p, bands) for p in (0.9, 0.75, 0.6, 0.3, 0.1)] == ["High", "High", "Medium", "Low", "Very Low"]
    for bad in ("0.5,0.75,0.25", "1,0.5", "a,b,c", "0.9,0.5,0"):
        with pytest.raises(ValueError, match="risk_bands"):
            parse_bands(bad)


def test_the_split_is_sticky_and_close_to_the_share():
    ids = [f"C{i:06d}" for i in range(20_000)]
    picked = [in_challenger_bucket(c, 0.1) for c in ids]
    assert abs(sum(picked) / len(ids) - 0.1) < 0.01
    assert picked == [in_challenger_bucket(c, 0.1) for c in ids]  # same customer, same side
    assert not any(in_challenger_bucket(c, 0.0) for c in ids[:100]) and all(in_challenger_bucket(c, 1.0) for c in ids[:100])
    # growing the share only moves customers towards the challenger
    assert all(in_challenger_bucket(c, 0.2) for c, p in zip(ids, picked) if p)


def test_the_spool_loader_takes_whole_lines_once_and_drops_dead_segments(tmp_path):
    from ml_platform.config import Settings
    from ml_platform.lake.reader import read_pandas
    from ml_platform.serving.spool import PredictionSpool, load_spool

    s = Settings(home=tmp_path)
    folder = tmp_path / "spool"
    spool = PredictionSpool(folder)
    rec = {"request_id": "r1", "event_time": "2025-03-01T10:00:00+00:00", "customer_id": "C1", "model_name": "m",
           "model_version": "1", "variant": "champion", "returned": True, "churn_probability": 0.3,
           "feature_timestamp": None, "features_json": "{}"}
    spool.append([rec | {"prediction_id": "r1:0:champion"}, rec | {"prediction_id": "r1:1:champion"}])
    first = load_spool(folder, s)
    assert first["records"] == 2 and first["inserted"] == 2 and first["segments_removed"] == 0  # writer alive
    # a worker killed mid-write: its segment ends in a line without a newline, and its pid is gone
    dead = folder / "999999-1-x.jsonl"
    dead.write_text(json.dumps(rec | {"prediction_id": "r9:0:champion", "request_id": "r9"}) + "\n"
                    + '{"prediction_id": "r10:0:cham')
    second = load_spool(folder, s)
    assert second["records"] == 3 and second["inserted"] == 1 and not dead.exists()
    assert load_spool(folder, s)["inserted"] == 0  # loading again adds nothing
    log = read_pandas(f"{s.lake_uri}/monitoring/prediction_log")
    assert sorted(log["prediction_id"]) == ["r1:0:champion", "r1:1:champion", "r9:0:champion"]
    assert str(log["date"].iloc[0]) == "2025-03-01"
    spool.close()
    assert os.path.exists(spool.path)
