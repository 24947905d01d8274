"""`ml-platform`: one command line over every stage of the platform.

    ml-platform data generate   synthetic transaction files in the landing layout
    ml-platform ingest          bring your own transactions/customers file(s) into bronze
    ml-platform validate        run the GE gate for an interval: quarantine + silver
    ml-platform features build  feature snapshots for a date range (Spark or the embedded engine)
    ml-platform features list | describe NAME | training-set | publish NAME | get NAME KEY... | skew NAME
                                the feature store: registry, point-in-time training sets, online store
    ml-platform run             ingest -> gate -> silver -> features over a range of days
    ml-platform train           labels + PIT training set -> Optuna HPO -> MLflow model @challenger
    ml-platform backtest        your transaction file in a fresh workspace: gate -> features -> HPO -> test metrics
    ml-platform registry promote | history | rollback
                                champion/challenger gate on the same rows, audited alias moves
    ml-platform setup           fetch the lake's Spark jars through Maven into the per-user cache, once
    ml-platform serve           the BentoML service: POST /predict by customer id or feature rows
    ml-platform bento build     a Bento of the service for a registered model version (`bentoml containerize`)
    ml-platform prediction-log load
                                the serving spool -> monitoring.prediction_log (MERGE, idempotent)
    ml-platform tables          the lake's Delta tables with version, files and rows
    ml-platform stream run | send | status | topics
                                events from Event Hubs / Kafka into the lake, online features and scores

Errors in the input (missing columns, unreadable values, bad flags, a failed gate) print one
line naming the problem and exit with status 2; nothing is half-written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from ml_platform.cli import data, features, registry, serving, setup, streaming, training
from ml_platform.errors import MlPlatformError

__all__ = ["build_parser", "main"]

STAGES = (setup, data, features, training, registry, serving, streaming)  # each registers its own sub-commands


def build_parser() -> argparse.ArgumentParser:
    """The `ml-platform` parser: every stage module's sub-commands."""
    p = argparse.ArgumentParser(
        prog="ml-platform", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    for stage in STAGES:
        stage.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command: its result on stdout (JSON or a report); exit 2 with one line on bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "start", None) and getattr(args, "end", None) and args.end < args.start:
        parser.error(f"--end {args.end} is before --start {args.start}")
    try:
        # stdout carries only the result (JSON or a report); libraries' prints go to stderr
        with contextlib.redirect_stdout(sys.stderr):
            result = args.func(args)
    except MlPlatformError as e:
        print(f"ml-platform: error: {e}", file=sys.stderr)
        return 2
    try:
        print(result if isinstance(result, str) else json.dumps(result, indent=2, default=str))
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
    return 0
