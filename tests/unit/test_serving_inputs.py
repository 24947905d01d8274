"""Input the request schema allows but the code may not (issue 20, finding 10): numbers beyond
float64, NaN and infinities, oversized keys and texts, non-UTF-8 header bytes. Each is a 4xx naming
the problem, never a 500."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import ValidationError

from ml_platform.serving.routing import MAX_ID_CHARS, MAX_ROW_KEYS, MAX_TEXT_CHARS, PredictRequest, errors_text

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
    with pytest.raises(ValidationError, match="a key has 129 characters"):
        PredictRequest(rows=[{"k" * 129: 1.0}])
    with pytest.raises(ValidationError, match=f"a text has {MAX_TEXT_CHARS + 1} characters"):
        PredictRequest(rows=[{"segment": "x" * (MAX_TEXT_CHARS + 1)}])


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        (
            '{"customer_ids": ["c1", "' + "x" * (MAX_ID_CHARS + 1) + '"]}',
            f"customer_ids: customer id 1 has {MAX_ID_CHARS + 1} characters: at most {MAX_ID_CHARS}",
        ),
        (
            '{"customer_ids": ["' + "x" * 1_000_000 + '"]}',
            f"customer id 0 has 1000000 characters: at most {MAX_ID_CHARS}",
        ),
        (
            '{"customer_ids": ["c1", "c2", "ab\\ud800"]}',
            "customer id 2 is not valid Unicode text (a lone surrogate U+D800 at character 2)",
        ),
        (
            '{"customer_ids": ["\\udfff"]}',
            "customer id 0 is not valid Unicode text (a lone surrogate U+DFFF at character 0)",
        ),
        ('{"customer_ids": ["a\\u0000b"]}', "customer id 0 holds a control character (U+0000 at character 1)"),
        ('{"customer_ids": ["a\\nb"]}', "customer id 0 holds a control character (U+000A at character 1)"),
        (
            '{"customer_ids": ["\\u00a0 "]}',
            None,
        ),  # blank to str.strip (see below)
        (
            '{"rows": [{"customer_id": "' + "y" * (MAX_ID_CHARS + 1) + '"}]}',
            f"row 0, customer_id has {MAX_ID_CHARS + 1} characters",
        ),
        (
            '{"rows": [{"k\\ud800": 1.0}]}',
            "row 0: a key is not valid Unicode text (a lone surrogate U+D800 at character 1)",
        ),
        ('{"rows": [{"segment": "x\\udbff"}]}', "row 0, segment: a text is not valid Unicode text"),
    ],
)
def test_customer_ids_and_texts_are_bounded_valid_text_named_by_position_never_echoed(body, rule):
    """What a JSON string allows and an online-store key cannot be (issue 41): the error names the id's
    position and the rule, and never repeats the value (it may be a megabyte, or unprintable)."""
    payload = json.loads(body)
    if rule is None:  # U+00A0 then a space: blank to str.strip, so refused as blank, not as a control
        with pytest.raises(ValidationError, match="customer id 0 is blank"):
            PredictRequest.model_validate(payload)
        return
    with pytest.raises(ValidationError) as e:
        PredictRequest.model_validate(payload)
    text = errors_text(e.value.errors())
    assert rule in text, text
    assert len(text) < 300 and "xxxxxxxxxx" not in text and "yyyyyyyyyy" not in text


def test_the_longest_valid_id_of_any_script_is_accepted():
    ok = PredictRequest.model_validate({"customer_ids": ["c" * MAX_ID_CHARS, "顧客-42", "Müller_7", "🙂"]})
    assert ok.size == 4


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
