"""Pure serving rules: request/response models, risk bands, the sticky A/B split."""

from __future__ import annotations

import hashlib
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BANDS = ("High", "Medium", "Low")


def parse_bands(text: str) -> tuple[float, float, float]:
    """ "0.75,0.50,0.25" -> (0.75, 0.5, 0.25); three descending thresholds in (0, 1)."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"risk_bands must be three numbers, got {text!r}") from None
    if len(values) != 3 or not 1 > values[0] > values[1] > values[2] > 0:
        raise ValueError(f"risk_bands must be three descending thresholds in (0, 1), got {text!r}")
    return values  # type: ignore[return-value]


def risk_band(p: float, bands: tuple[float, float, float]) -> str:
    for name, threshold in zip(BANDS, bands):
        if p >= threshold:
            return name
    return "Very Low"


def in_challenger_bucket(customer_id: str, share: float) -> bool:
    """Sticky split: the same customer always lands on the same side for a given share."""
    if share <= 0:
        return False
    bucket = int.from_bytes(hashlib.sha256(customer_id.encode()).digest()[:8], "big") % 10_000
    return bucket < round(share * 10_000)


FeatureValue = float | int | str | bool | None
#: bounds of a request beyond its schema: keys per row; characters per customer id, per key and per text value
MAX_ROW_KEYS, MAX_ID_CHARS, MAX_KEY_CHARS, MAX_TEXT_CHARS = 512, 128, 128, 1024


def text_problem(value: str, what: str, limit: int, *, controls: bool = True) -> str | None:
    """What is wrong with a text of a request (`what` names it), or None: longer than `limit`
    characters, not valid Unicode (a lone surrogate, which JSON's \\u escapes allow and UTF-8
    cannot encode), or, with `controls=False`, holding a control character. The value itself is never
    repeated: it may be huge or unprintable."""
    if len(value) > limit:
        return f"{what} has {len(value)} characters: at most {limit}"
    for at, ch in enumerate(value):
        if "\ud800" <= ch <= "\udfff":
            return f"{what} is not valid Unicode text (a lone surrogate U+{ord(ch):04X} at character {at})"
        if not controls and (ch < " " or "\x7f" <= ch <= "\x9f"):
            return f"{what} holds a control character (U+{ord(ch):04X} at character {at})"
    return None


class PredictRequest(BaseModel):
    """Either `customer_ids` (features from the online store) or `rows` (feature values given)."""

    model_config = ConfigDict(extra="forbid")

    customer_ids: list[str] | None = Field(default=None, description="Customers to score from the online store.")
    rows: list[dict[str, FeatureValue]] | None = Field(
        default=None, description="Feature rows to score; an optional `customer_id` key names the row."
    )

    @field_validator("customer_ids")
    @classmethod
    def _ids(cls, v: list[str] | None) -> list[str] | None:
        """Non-blank, at most MAX_ID_CHARS characters of valid Unicode without control characters."""
        for i, cid in enumerate(v or []):
            if not cid.strip():
                raise ValueError(f"customer id {i} is blank: customer ids must not be blank")
            if problem := text_problem(cid, f"customer id {i}", MAX_ID_CHARS, controls=False):
                raise ValueError(problem)
        return v

    @field_validator("rows")
    @classmethod
    def _values(cls, v: list[dict[str, FeatureValue]] | None) -> list[dict[str, FeatureValue]] | None:
        """Every number a finite float64 (null is the missing value: NaN and infinities are refused, as
        is an integer beyond the float range), keys and texts bounded."""
        for i, row in enumerate(v or []):
            if len(row) > MAX_ROW_KEYS:
                raise ValueError(f"row {i} has {len(row)} keys: at most {MAX_ROW_KEYS}")
            for key, x in row.items():
                if problem := text_problem(key, f"row {i}: a key", MAX_KEY_CHARS, controls=False):
                    raise ValueError(problem)
                if isinstance(x, str):
                    if key == "customer_id":
                        problem = text_problem(x, f"row {i}, customer_id", MAX_ID_CHARS, controls=False)
                    else:
                        problem = text_problem(x, f"row {i}, {key}: a text", MAX_TEXT_CHARS)
                    if problem:
                        raise ValueError(problem)
                if isinstance(x, (int, float)) and not isinstance(x, bool):
                    try:
                        finite = math.isfinite(float(x))
                    except OverflowError:
                        finite = False
                    if not finite:
                        shown = f"an integer of {x.bit_length()} bits" if isinstance(x, int) else repr(x)
                        raise ValueError(
                            f"row {i}, {key}: {shown} is not a finite float64 number (send null for a missing value)"
                        )
        return v

    @model_validator(mode="after")
    def _one_of(self) -> PredictRequest:
        if (self.customer_ids is None) == (self.rows is None):
            raise ValueError("give exactly one of `customer_ids` or `rows`")
        items = self.customer_ids if self.customer_ids is not None else self.rows
        if not items:
            raise ValueError("the list is empty: send at least one customer id or row")
        return self

    @property
    def size(self) -> int:
        return len(self.customer_ids or self.rows or [])


class Contribution(BaseModel):
    feature: str
    value: float | None
    contribution: float


class Prediction(BaseModel):
    customer_id: str | None
    found: bool = Field(description="False when the online store has no features for this customer.")
    churn_probability: float | None = None
    risk_band: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    variant: str | None = Field(default=None, description="champion or challenger")
    feature_timestamp: str | None = Field(default=None, description="When the served features were computed.")
    explanation: list[Contribution] | None = None
    detail: str | None = None


class PredictResponse(BaseModel):
    request_id: str
    predictions: list[Prediction]


class ErrorResponse(BaseModel):
    error: str


def errors_text(errors: list[dict[str, Any]]) -> str:
    """A pydantic error list as one line naming each problem and where it is."""
    parts = []
    for e in errors:
        where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body",))
        msg = e.get("msg", "invalid").removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)
