"""Moving MLflow aliases, with every move appended to `registry.alias_history` (Delta).

The history is append-only: a row is never updated or deleted. Each row has a `record_id`; for
a promotion decision it is the decision's key, so applying the same decision twice finds its row
and changes nothing. Rollbacks are rows too.

Moves of one model's aliases are serialised: a promotion and a rollback (from a DAG, the CLI, or
both at once) each hold an exclusive `flock` on `<home>/locks/aliases-<model>.lock` while they
read, move and record; a promotion that finds the champion moved under it refuses. The lock is
shared by every process that shares the platform home (the compose file mounts it into the
Airflow and serving containers); a process elsewhere is not serialised with them.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from ml_platform.config import Settings, get_settings
from ml_platform.errors import MlPlatformError
from ml_platform.lake.paths import table_path
from ml_platform.lake.reader import read_pandas, table_exists, write_delta
from ml_platform.registry.evaluate import alias_version, client, comparison_rows, evaluate_version, held_out_rows
from ml_platform.registry.promotion import Decision, Policy, decide_promotion

HISTORY_TABLE = "registry.alias_history"
COLUMNS = (
    "record_id",
    "event_time",
    "model_name",
    "action",
    "champion_version",
    "previous_champion_version",
    "challenger_version",
    "metrics_json",
    "reason",
    "dag_run_id",
    "decision_id",
)


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema([(c, pa.timestamp("us", tz="UTC") if c == "event_time" else pa.string()) for c in COLUMNS])


def history(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Every alias move, oldest first."""
    s = settings or get_settings()
    path = table_path(HISTORY_TABLE, s)
    if not table_exists(path):
        return []
    df = read_pandas(path).sort_values(["event_time", "record_id"])
    return [
        {k: (v.isoformat() if k == "event_time" else v) for k, v in row.items()}
        for row in df.astype("object").where(df.notna(), None).to_dict("records")
    ]


def _append(row: dict[str, Any], settings: Settings) -> None:
    import pyarrow as pa

    write_delta(table_path(HISTORY_TABLE, settings), pa.Table.from_pylist([row], schema=_schema()), mode="append")


@contextmanager
def serialised(settings: Settings, wait_seconds: float = 120.0) -> Iterator[None]:
    """Hold this model's alias lock (see the module doc); refuse after `wait_seconds`."""
    folder = settings.home / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"aliases-{settings.model_name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise MlPlatformError(
                        f"another alias move of {settings.model_name} has held {path} for over {wait_seconds:.0f} s"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # drops the lock


def apply_decision(
    decision: Decision, *, dag_run_id: str = "", decision_id: str = "", settings: Settings | None = None
) -> dict[str, Any]:
    """Move the aliases as decided (or leave them) and record it; a no-op if already recorded.

    Promotion: `previous_champion` <- the old champion, `champion` <- the challenger, and the
    `challenger` alias is removed (it is the champion now). Rejection moves nothing."""
    s = settings or get_settings()
    with serialised(s):
        return _apply(decision, dag_run_id, decision_id, s)


def _apply(decision: Decision, dag_run_id: str, decision_id: str, s: Settings) -> dict[str, Any]:
    key = decision.decision_key
    done = [r for r in history(s) if r["record_id"] == key]
    if done:
        return done[0] | {"applied": False}
    c = client(s)
    old = alias_version("champion", s)
    expected = decision.champion.version if decision.champion else None
    # a try killed after moving the aliases and before recording them: the moves are this decision's
    # (champion = its challenger, previous_champion = the champion it was decided against), so the
    # retry finishes the job (drops `challenger`, writes the row) instead of failing for ever
    interrupted = (
        decision.promote
        and old == decision.challenger.version
        and (expected is None or alias_version("previous_champion", s) == expected)
    )
    if old != expected and not interrupted:
        raise MlPlatformError(
            f"the champion moved since the decision (v{old}, decided against v{expected}); evaluate again"
        )
    if decision.promote:
        if expected is not None:
            c.set_registered_model_alias(s.model_name, "previous_champion", expected)
        c.set_registered_model_alias(s.model_name, "champion", decision.challenger.version)
        if alias_version("challenger", s) == decision.challenger.version:
            c.delete_registered_model_alias(s.model_name, "challenger")
    old = expected
    row: dict[str, Any] = {
        "record_id": key,
        "event_time": datetime.now(timezone.utc),
        "model_name": s.model_name,
        "action": "promote" if decision.promote else "reject",
        "champion_version": decision.challenger.version if decision.promote else old,
        "previous_champion_version": old,
        "challenger_version": decision.challenger.version,
        "metrics_json": json.dumps(decision.to_dict(), sort_keys=True, default=str),
        "reason": decision.reason,
        "dag_run_id": dag_run_id or None,
        "decision_id": decision_id or None,
    }
    _append(row, s)
    return row | {"event_time": row["event_time"].isoformat(), "applied": True}


def rollback(
    to_version: str | None = None, *, reason: str = "", dag_run_id: str = "", settings: Settings | None = None
) -> dict[str, Any]:
    """Point `champion` back at `to_version` (default: `previous_champion`) and record it."""
    s = settings or get_settings()
    with serialised(s):
        return _rollback(to_version, reason, dag_run_id, s)


def _rollback(to_version: str | None, reason: str, dag_run_id: str, s: Settings) -> dict[str, Any]:
    from mlflow.exceptions import MlflowException

    c = client(s)
    current = alias_version("champion", s)
    if current is None:
        raise MlPlatformError(f"{s.model_name} has no champion: nothing to roll back")
    target = to_version or alias_version("previous_champion", s)
    if target is None:
        raise MlPlatformError(f"{s.model_name} has no previous_champion; name a version with --to")
    try:
        c.get_model_version(s.model_name, str(target))
    except MlflowException:
        raise MlPlatformError(f"{s.model_name} has no version {target}") from None
    if str(target) == current:
        raise MlPlatformError(f"v{target} is already the champion")
    # previous_champion first: a try killed between the two moves leaves the old champion named
    c.set_registered_model_alias(s.model_name, "previous_champion", current)
    c.set_registered_model_alias(s.model_name, "champion", str(target))
    row: dict[str, Any] = {
        "record_id": uuid.uuid4().hex[:16],
        "event_time": datetime.now(timezone.utc),
        "model_name": s.model_name,
        "action": "rollback",
        "champion_version": str(target),
        "previous_champion_version": current,
        "challenger_version": alias_version("challenger", s),
        "metrics_json": None,
        "reason": reason or f"rollback from v{current} to v{target}",
        "dag_run_id": dag_run_id or None,
        "decision_id": None,
    }
    _append(row, s)
    return row | {"event_time": row["event_time"].isoformat()}


def evaluate_and_decide(policy: Any = None, settings: Settings | None = None) -> Decision:
    """Re-score @champion and @challenger on the challenger's held-out rows and decide."""
    s = settings or get_settings()
    challenger = alias_version("challenger", s)
    if challenger is None:
        raise MlPlatformError(f"{s.model_name} has no @challenger to evaluate: train one first")
    champion = alias_version("champion", s)
    if champion == challenger:
        champion = None
    policy = policy or Policy(latency_p99_ms=s.promotion_latency_p99_ms)
    rows, source = comparison_rows(challenger, champion, s)
    if rows is None:  # e.g. a challenger trained on older cutoffs than the champion's validation
        own = held_out_rows(challenger, s)
        c_eval = evaluate_version(challenger, own, s, policy.latency_p99_ms)
        h_eval = evaluate_version(champion, own, s, policy.latency_p99_ms) if champion else None
        return Decision(
            s.model_name,
            False,
            f"champion v{champion} kept: not comparable: {source}",
            c_eval,
            h_eval,
            policy,
            {"unseen_rows": False},
        )
    c_eval = evaluate_version(challenger, rows, s, policy.latency_p99_ms)
    h_eval = evaluate_version(champion, rows, s, policy.latency_p99_ms) if champion else None
    decision = decide_promotion(c_eval, h_eval, policy, s.model_name)
    return replace(decision, reason=f"{decision.reason} [evaluated on {source}]")
