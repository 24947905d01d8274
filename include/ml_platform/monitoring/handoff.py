"""The hand-off from a retrain decision to the training DAG, exactly once.

`pending_decisions` lists retrain decisions not yet in `monitoring.retrain_handled`;
`claim` MERGEs one there with the claiming DAG run's id. A decision belongs to the first run that
claims it: a retry of that run sees its own claim and goes on (so the asset event is still
emitted when the first try failed after the MERGE); any other run sees someone else's claim and
emits nothing.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ml_platform.lake.reader import read_pandas, table_exists
from ml_platform.lake.rows import insert_new

HANDLED_TABLE = "monitoring.retrain_handled"


def pending_decisions(decisions_path: str, handled_path: str) -> list[dict[str, Any]]:
    if not table_exists(decisions_path):
        return []
    d = read_pandas(decisions_path)
    d = d[d["retrain"].astype(bool)]
    if table_exists(handled_path):
        d = d[~d["decision_id"].isin(set(read_pandas(handled_path)["decision_id"]))]
    d = d.sort_values("decided_at")
    return [{"decision_id": r.decision_id, "reason": r.reason, "trigger": r.trigger} for r in d.itertuples()]


def claim(decision_id: str, run_id: str, handled_path: str) -> bool:
    """True when this run owns the decision (claimed now, or by an earlier try of the same run)."""
    import pyarrow as pa

    insert_new(
        handled_path,
        pa.Table.from_pylist(
            [{"decision_id": decision_id, "run_id": run_id, "handled_at": datetime.now(timezone.utc)}]
        ),
        "decision_id",
    )
    owners = read_pandas(handled_path)
    return set(owners.loc[owners["decision_id"] == decision_id, "run_id"]) == {run_id}
