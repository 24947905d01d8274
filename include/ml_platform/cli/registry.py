"""`ml-platform registry init | show | promote | history | rollback`: audited moves of the MLflow aliases."""

from __future__ import annotations

import argparse
from typing import Any

from ml_platform.cli._common import SubParsers, policy, say
from ml_platform.config import get_settings
from ml_platform.registry.aliases import apply_decision, evaluate_and_decide
from ml_platform.registry.evaluate import version_summary
from ml_platform.registry.promotion import Policy
from ml_platform.training.tracking import mlflow_setup


def promote(a: argparse.Namespace) -> dict[str, Any] | str:
    say("re-scoring @champion and @challenger on the challenger's held-out rows")
    decision = evaluate_and_decide(
        Policy.from_mapping({"latency_p99_ms": get_settings().promotion_latency_p99_ms} | a.policy)
    )
    record = decision.to_dict() if a.dry_run else apply_decision(decision)
    if a.json:
        return record if a.dry_run else {"decision": decision.to_dict(), "record": record}
    verb = "PROMOTED" if decision.promote else "REJECTED"
    return f"{verb} {decision.model_name} v{decision.challenger.version}: {decision.reason}" + (
        " (dry run: aliases not moved)" if a.dry_run else ""
    )


def history(a: argparse.Namespace) -> list[dict[str, Any]] | str:
    from ml_platform.registry.aliases import history

    rows = history()
    if a.json:
        return rows
    if not rows:
        return "no alias moves recorded yet"
    return "\n".join(
        f"{r['event_time'][:19]}  {r['action']:<8} champion v{r['champion_version'] or '-'} "
        f"(was v{r['previous_champion_version'] or '-'}, challenger v{r['challenger_version'] or '-'})"
        f"  {r['reason']}"
        for r in rows
    )


def init(a: argparse.Namespace) -> dict[str, Any]:
    s = get_settings()
    return {"tracking_uri": s.mlflow_tracking_uri, "experiment": s.mlflow_experiment, "experiment_id": mlflow_setup(s)}


def show(a: argparse.Namespace) -> dict[str, Any] | str:
    v = version_summary(a.version)
    if a.json:
        return v
    t = v["test"]

    def num(key: str) -> str:
        return "-" if t.get(key) is None else f"{t[key]:.3f}"

    auc = "-" if v["validation_auc"] is None else f"{v['validation_auc']:.3f}"
    return (
        f"{v['model_name']} version {v['version']} ({v['family']}), validation AUC {auc}, "
        f"training set {v['training_set_id']}, lineage {v['lineage']}\n"
        f"test cutoff {v['test_cutoff']}: ROC AUC {num('roc_auc')}, average precision {num('average_precision')}, "
        f"F1 {num('f1')} at threshold {num('threshold')}, ECE {num('ece')}\n"
        f"evaluation report: {v['report']}"
    )


def rollback(a: argparse.Namespace) -> dict[str, Any]:
    from ml_platform.registry.aliases import rollback

    return rollback(a.to, reason=a.reason)


def register(sub: SubParsers) -> None:
    reg = sub.add_parser("registry", help="champion/challenger: promote, history, rollback").add_subparsers(
        dest="registry_command", required=True
    )
    rp = reg.add_parser(
        "promote", help="re-score @champion and @challenger on the same rows; promote if the gate passes"
    )
    rp.add_argument(
        "--policy",
        type=policy,
        default={},
        help='JSON overrides of the gate, e.g. \'{"min_auc_gain": 0.01, "latency_p99_ms": 20}\'',
    )
    rp.add_argument("--dry-run", action="store_true", help="decide and print, move no alias")
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(func=promote)
    rh = reg.add_parser("history", help="every alias move (registry.alias_history), oldest first")
    rh.add_argument("--json", action="store_true")
    rh.set_defaults(func=history)
    ri = reg.add_parser("init", help="point MLflow at the configured store and create the experiment (idempotent)")
    ri.set_defaults(func=init)
    rs = reg.add_parser("show", help="a registered version (default: the newest): family, metrics, lineage, report")
    rs.add_argument("--version", default=None, help="the version to show (default: the newest)")
    rs.add_argument("--json", action="store_true")
    rs.set_defaults(func=show)
    rr = reg.add_parser("rollback", help="move @champion back (default: to @previous_champion); recorded")
    rr.add_argument("--to", default=None, help="the version to make champion")
    rr.add_argument("--reason", default="", help="why, for the history")
    rr.set_defaults(func=rollback)
