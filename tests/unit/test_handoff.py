"""The decision -> training hand-off is exactly once: a claim belongs to the first run that makes it."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from ml_platform.monitoring.handoff import claim, pending_decisions

pytestmark = pytest.mark.unit


def _decisions(path: str, rows: list[tuple[str, bool, str]]) -> None:
    write_deltalake(
        path,
        pa.Table.from_pylist(
            [
                {
                    "decision_id": d,
                    "retrain": r,
                    "decided_at": at,
                    "reason": f"why {d}",
                    "trigger": "drift" if r else None,
                }
                for d, r, at in rows
            ]
        ),
        mode="append",
    )


def test_pending_lists_unhandled_retrains_oldest_first_and_a_claim_is_final(tmp_path):
    decisions, handled = str(tmp_path / "decisions"), str(tmp_path / "handled")
    assert pending_decisions(decisions, handled) == []  # no table yet
    _decisions(
        decisions,
        [
            ("rd-b", True, "2025-02-10T00:00:00+00:00"),
            ("rd-n", False, "2025-02-03T00:00:00+00:00"),
            ("rd-a", True, "2025-02-03T00:00:00+00:00"),
        ],
    )
    assert [d["decision_id"] for d in pending_decisions(decisions, handled)] == ["rd-a", "rd-b"]  # no-retrains never

    assert claim("rd-a", "run-1", handled) is True
    assert claim("rd-a", "run-1", handled) is True  # a retry of the claiming run goes on
    assert claim("rd-a", "run-2", handled) is False  # another run emits nothing
    assert [d["decision_id"] for d in pending_decisions(decisions, handled)] == ["rd-b"]
    assert claim("rd-b", "run-2", handled) is True
    assert pending_decisions(decisions, handled) == []
