"""Input the request schema allows but the code may not (issue 20, finding 10): numbers beyond
float64, NaN and infinities, oversized keys and texts, non-UTF-8 header bytes. Each is a 4xx naming
the problem, never a 500."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import ValidationError

from ml_platform.serving.routing import MAX_ROW_KEYS, MAX_TEXT_CHARS, PredictRequest

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (10**400, "an integer of 1329 bits"),
        (-(10**309), "an integer of 1027 bits"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (float("-inf"), "-inf"),
    ],
)
def test_numbers_that_are_not_finite_float64_are_refused_naming_row_and_key(value, shown):
    with pytest.raises(ValidationError) as e:
        PredictRequest(rows=[{"recency_days": 1.0}, {"recency_days": value}])
    assert f"row 1, recency_days: {shown} is not a finite float64 number (send null" in str(e.value)


def test_the_json_body_a_client_sends_with_a_huge_integer_is_refused_not_overflowed():
    body = json.loads('{"rows": [{"monetary_30d": ' + "9" * 400 + "}]}")
    with pytest.raises(ValidationError, match="is not a finite float64 number"):
        PredictRequest.model_validate(body)


def test_null_is_the_missing_value_and_bounds_hold_beyond_the_schema():
    ok = PredictRequest(rows=[{"a": None, "b": 2**53, "c": "x" * MAX_TEXT_CHARS, "d": True, "e": -1e308}])
    assert ok.rows[0]["a"] is None
    with pytest.raises(ValidationError, match=f"at most {MAX_ROW_KEYS}"):
        PredictRequest(rows=[{f"k{i}": 1.0 for i in range(MAX_ROW_KEYS + 1)}])
    with pytest.raises(ValidationError, match="a key of 129 characters"):
        PredictRequest(rows=[{"k" * 129: 1.0}])
    with pytest.raises(ValidationError, match=f"a text of {MAX_TEXT_CHARS + 1} characters"):
        PredictRequest(rows=[{"segment": "x" * (MAX_TEXT_CHARS + 1)}])


def _call_gate(headers: list[tuple[bytes, bytes]], token: str = "t0ken") -> tuple[int, dict]:
    """The service's ASGI gate in front of an app that answers 200: the status and JSON it sends."""
    from ml_platform.serving.service import Gate

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[dict] = []

    async def send(msg):
        sent.append(msg)

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    scope = {"type": "http", "path": "/predict", "headers": headers}
    asyncio.run(Gate(app, token=token)(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


def test_non_utf8_header_bytes_are_a_wrong_value_never_a_500():
    status, body = _call_gate([(b"authorization", b"Bearer \xff\xfe\x80"), (b"x-trace", b"\xc3\x28")])
    assert status == 401 and "bearer token" in body["error"]
    status, _ = _call_gate([(b"authorization", b"Bearer t0ken"), (b"x-trace", b"caf\xe9"), (b"content-length", b"2")])
    assert status == 200
    status, body = _call_gate([(b"authorization", b"Bearer t0ken"), (b"content-length", b"\xff9")])
    assert status == 200  # not a number: no 413 from the gate (the HTTP server refuses such a length itself)
