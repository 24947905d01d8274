"""`ml-platform serve | prediction-log load | scores | tables`: the BentoML service, its prediction log, batch
scores, the lake's tables."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ml_platform.cli._common import SubParsers, bento_version, model_version, positive, say
from ml_platform.config import get_settings
from ml_platform.errors import ConfigError
from ml_platform.lake.paths import TABLES, table_path
from ml_platform.lake.reader import table_summary
from ml_platform.serving.batch import latest_scores_summary
from ml_platform.serving.bento import build_bento, sibling_executable
from ml_platform.serving.spool import load_spool


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def serve(a: argparse.Namespace) -> dict[str, Any]:
    s = get_settings()
    port = a.port or s.serving_port
    if not s.api_token and not _loopback(a.host):
        raise ConfigError(
            f"refusing to serve on {a.host} without a token: anyone who reaches it could score and read "
            "features. Set ML_PLATFORM_API_TOKEN (clients send `Authorization: Bearer <token>`) or bind 127.0.0.1"
        )
    env = dict(os.environ, BENTOML_DO_NOT_TRACK="true")
    if a.workers:
        env["ML_PLATFORM_SERVING_WORKERS"] = str(a.workers)
    target = a.bento or "ml_platform.serving.service:ChurnService"
    cmd = [sibling_executable("bentoml"), "serve", target, "--host", a.host, "--port", str(port)]
    say(f"serving {s.model_name}@champion on http://{a.host}:{port} (POST /predict, GET /readyz, /metrics, /docs)")
    sys.stdout.flush()
    os.execve(cmd[0], cmd, env)  # BentoML owns the process from here; Ctrl-C stops it
    return {}


def bento_build(a: argparse.Namespace) -> dict[str, Any]:
    say(f"building a Bento of the churn service for {get_settings().model_name} v{a.model_version}")
    return {"tag": build_bento(a.model_version, a.version or f"v{a.model_version}")}


def load_prediction_log(a: argparse.Namespace) -> dict[str, Any]:
    return load_spool(a.spool or get_settings().home / "serving" / "spool")


def tables(a: argparse.Namespace) -> dict[str, Any] | str:
    out = {name: table_summary(table_path(name)) for name in TABLES}
    if not a.text:
        return out
    return "\n".join(
        f"{name:26s} version {t['version']:3d}  files {t['files']:4d}  rows "
        f"{'?' if t['rows'] is None else format(t['rows'], ','):>9s}  {t['path']}"
        for name, t in out.items()
        if t["exists"]
    )


def scores(a: argparse.Namespace) -> dict[str, Any] | str:
    out = latest_scores_summary()
    if a.json:
        return out
    return (
        f"gold.churn_scores {out['score_date']}: {out['customers']:,} customers scored by "
        f"v{out['model_version']}, risk bands {out['risk_bands']}"
    )


def register(sub: SubParsers) -> None:
    sv = sub.add_parser("serve", help="start the BentoML churn service (champion, online features, A/B, shadow)")
    sv.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    sv.add_argument("--port", type=positive, default=None, help="default: ML_PLATFORM_SERVING_PORT (23000)")
    sv.add_argument(
        "--workers", type=positive, default=None, help="worker processes (default: ML_PLATFORM_SERVING_WORKERS)"
    )
    sv.add_argument("--bento", default=None, help="serve a built Bento (tag) instead of the source tree")
    sv.set_defaults(func=serve)
    b = sub.add_parser("bento", help="Bentos of the churn service").add_subparsers(dest="bento_command", required=True)
    bb = b.add_parser("build", help="build churn_service:<version> from the installed package (idempotent)")
    bb.add_argument("--model-version", required=True, type=model_version, help="the registered model version it serves")
    bb.add_argument(
        "--version", default=None, type=bento_version, help="the Bento's version (default v<model version>)"
    )
    bb.set_defaults(func=bento_build)
    pl = sub.add_parser("prediction-log", help="the served predictions").add_subparsers(
        dest="prediction_log_command", required=True
    )
    pll = pl.add_parser("load", help="MERGE the serving spool into monitoring.prediction_log (idempotent)")
    pll.add_argument("--spool", type=Path, default=None, help="spool folder (default <home>/serving/spool)")
    pll.set_defaults(func=load_prediction_log)

    t = sub.add_parser("tables", help="list the lake's Delta tables (version, files, rows)")
    t.add_argument("--text", action="store_true", help="one line per existing table instead of JSON")
    t.set_defaults(func=tables)
    sc = sub.add_parser("scores", help="the newest batch scores (gold.churn_scores): customers, version, risk bands")
    sc.add_argument("--json", action="store_true")
    sc.set_defaults(func=scores)
