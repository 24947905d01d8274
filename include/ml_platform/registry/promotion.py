"""The promotion gate: a pure decision over two evaluations made on the same held-out rows.

`decide_promotion` never does I/O; `registry.evaluate` produces its inputs (both models re-scored
on the challenger's test rows) and `registry.aliases` applies its result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Policy:
    """What a challenger must show. Gains and tolerances are absolute differences."""

    min_auc_gain: float = field(
        default=0.005,
        metadata={"minimum": -1, "maximum": 1, "description": "Challenger AUC minus champion AUC, at least."},
    )
    calibration_tolerance: float = field(
        default=0.02, metadata={"minimum": 0, "maximum": 1, "description": "ECE may worsen by at most this."}
    )
    fairness_tolerance: float = field(
        default=0.05,
        metadata={
            "minimum": 0,
            "maximum": 1,
            "description": "Equalized odds / demographic parity gaps may grow by at most this.",
        },
    )
    # a 300-tree forest takes ~50 ms on one core
    latency_p99_ms: float = field(
        default=100.0, metadata={"exclusiveMinimum": 0, "description": "Single-row predict p99 budget (model)."}
    )
    # absolute floors, also the only bar for the first model
    floor_auc: float = field(
        default=0.70, metadata={"minimum": 0, "maximum": 1, "description": "Any champion: minimum AUC."}
    )
    floor_max_ece: float = field(
        default=0.15, metadata={"minimum": 0, "maximum": 1, "description": "First model: largest calibration error."}
    )
    floor_max_fairness_gap: float = field(
        default=1.0,
        metadata={
            "minimum": 0,
            "maximum": 1,
            "description": "First model: largest fairness gap (1 = off; small groups are noisy).",
        },
    )

    @classmethod
    def param_specs(cls, **defaults: float) -> dict[str, dict[str, Any]]:
        """Per field: its default (or the one given here, e.g. from settings), JSON-schema bounds and a
        description; what a DAG's `Param`s and a form need, so they never copy the numbers."""
        out = {}
        for name, f in cls.__dataclass_fields__.items():
            out[name] = {"default": defaults.get(name, f.default), "type": "number", **f.metadata}
        unknown = sorted(set(defaults) - set(out))
        if unknown:
            raise ValueError(f"unknown promotion policy key(s) {unknown}")
        return out

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None) -> Policy:
        values = dict(values or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown promotion policy key(s) {unknown}; known: {sorted(known)}")
        out = {}
        for k, v in values.items():
            try:
                out[k] = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"promotion policy {k} must be a number, got {v!r}") from None
            if out[k] < 0 and k != "min_auc_gain":
                raise ValueError(f"promotion policy {k} must be >= 0, got {v!r}")
        return cls(**out)


@dataclass(frozen=True)
class ModelEval:
    """One model's numbers on the evaluation rows."""

    version: str
    rows: int
    roc_auc: float
    ece: float
    equalized_odds_difference: float | None  # worst over the sensitive attributes; None without any
    demographic_parity_difference: float | None
    latency_p99_ms: float
    rows_digest: str = ""  # fingerprint of the rows scored: both evaluations must share it


@dataclass(frozen=True)
class Decision:
    model_name: str
    promote: bool
    reason: str
    challenger: ModelEval
    champion: ModelEval | None
    policy: Policy
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def decision_key(self) -> str:
        """Same inputs -> same key: applying a decision twice is recognised by it."""
        body = json.dumps(
            {
                "model": self.model_name,
                "challenger": self.challenger.version,
                "champion": self.champion.version if self.champion else None,
                "promote": self.promote,
            },
            sort_keys=True,
        )
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"decision_key": self.decision_key}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Decision:
        """Inverse of `to_dict` (a decision crosses task boundaries as this small dict)."""
        return cls(
            d["model_name"],
            bool(d["promote"]),
            d["reason"],
            ModelEval(**d["challenger"]),
            ModelEval(**d["champion"]) if d.get("champion") else None,
            Policy(**d["policy"]),
            dict(d.get("checks") or {}),
        )


def _gap(e: ModelEval) -> float:
    return max(
        [g for g in (e.equalized_odds_difference, e.demographic_parity_difference) if g is not None], default=0.0
    )


def decide_promotion(
    challenger: ModelEval, champion: ModelEval | None, policy: Policy, model_name: str = "churn_model"
) -> Decision:
    """Promote or keep the champion; the reason names every check that failed, with its numbers."""
    if champion is not None and champion.rows_digest != challenger.rows_digest:
        raise ValueError(
            "the champion and the challenger were evaluated on different rows; "
            "re-score both on the challenger's test set"
        )
    checks: dict[str, bool] = {}
    why: list[str] = []

    def check(name: str, ok: bool, text: str) -> None:
        checks[name] = ok
        if not ok:
            why.append(text)

    c = challenger
    check(
        "latency",
        c.latency_p99_ms <= policy.latency_p99_ms,
        f"p99 latency {c.latency_p99_ms:.1f} ms > budget {policy.latency_p99_ms:.1f} ms",
    )
    if champion is None:
        check("floor_auc", c.roc_auc >= policy.floor_auc, f"AUC {c.roc_auc:.4f} < floor {policy.floor_auc:.4f}")
        check("floor_ece", c.ece <= policy.floor_max_ece, f"ECE {c.ece:.4f} > floor {policy.floor_max_ece:.4f}")
        check(
            "floor_fairness",
            _gap(c) <= policy.floor_max_fairness_gap,
            f"fairness gap {_gap(c):.4f} > floor {policy.floor_max_fairness_gap:.4f}",
        )
        promote = all(checks.values())
        reason = (
            f"first model: AUC {c.roc_auc:.4f}, ECE {c.ece:.4f}, fairness gap {_gap(c):.4f} clear the floors"
            if promote
            else "first model does not clear the floors: " + "; ".join(why)
        )
        return Decision(model_name, promote, reason, c, None, policy, checks)
    h = champion
    gain = c.roc_auc - h.roc_auc
    check(
        "auc_gain",
        gain >= policy.min_auc_gain,
        f"AUC {c.roc_auc:.4f} vs champion {h.roc_auc:.4f}: gain {gain:+.4f} < required {policy.min_auc_gain:+.4f}",
    )
    check(
        "calibration",
        c.ece <= h.ece + policy.calibration_tolerance,
        f"ECE {c.ece:.4f} worse than champion {h.ece:.4f} by more than {policy.calibration_tolerance:.4f}",
    )
    for name, cv, hv in (
        ("equalized_odds", c.equalized_odds_difference, h.equalized_odds_difference),
        ("demographic_parity", c.demographic_parity_difference, h.demographic_parity_difference),
    ):
        if cv is not None and hv is not None:
            check(
                name,
                cv <= hv + policy.fairness_tolerance,
                f"{name.replace('_', ' ')} difference {cv:.4f} exceeds champion {hv:.4f} "
                f"by more than {policy.fairness_tolerance:.4f}",
            )
    promote = all(checks.values())
    reason = (
        f"challenger v{c.version} beats champion v{h.version}: AUC {c.roc_auc:.4f} vs {h.roc_auc:.4f} "
        f"({gain:+.4f}), ECE {c.ece:.4f} vs {h.ece:.4f}, fairness gap {_gap(c):.4f} vs {_gap(h):.4f}, "
        f"p99 {c.latency_p99_ms:.1f} ms on the same {c.rows} rows"
        if promote
        else f"champion v{h.version} kept: " + "; ".join(why)
    )
    return Decision(model_name, promote, reason, c, h, policy, checks)
