"""Build a versioned Bento of the churn service and smoke-test it as a real server.

`build_bento` stages the service code (`ml_platform/`), the serving lock the package ships
(`requirements-serving.txt` as `requirements.txt`, `lock_packages: false`) and `bentofile.yaml` in a
temporary folder and runs `bentoml build` there, labelled with the model version it was built for.
`smoke_test` serves that Bento on a free local port pinned to one model version and checks
readiness, a sample of customers and the p99 latency, then stops it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ml_platform
from ml_platform.config import Settings, get_settings
from ml_platform.errors import ConfigError, MlPlatformError
from ml_platform.lake.paths import table_path
from ml_platform.lake.reader import read_newest_partition


def sibling_executable(name: str) -> str:
    """`name` from this interpreter's environment (`.venv/bin/ml-platform` works without the venv's
    bin on PATH), else from PATH."""
    here = Path(sys.executable).parent / name  # not resolved: a venv's python is a symlink to the base one
    found = str(here) if here.is_file() and os.access(here, os.X_OK) else shutil.which(name)
    if not found:
        raise ConfigError(f"`{name}` is neither beside {sys.executable} nor on PATH; run `make setup`")
    return found


def build_bento(model_version: str, version: str, settings: Settings | None = None) -> str:
    """`bentoml build` -> the Bento tag `churn_service:<version>` (rebuilt if it exists: idempotent)."""
    s = settings or get_settings()
    env = dict(os.environ, BENTOML_DO_NOT_TRACK="true")
    env.setdefault("BENTOML_HOME", str(s.home / "bentoml"))
    tag = f"churn_service:{version}"
    subprocess.run(
        [sibling_executable("bentoml"), "delete", "-y", tag], env=env, capture_output=True
    )  # a retry rebuilds
    with tempfile.TemporaryDirectory(prefix="bento-build-") as tmp:
        ctx = Path(tmp)
        # the installed package is the build context: its code, its bentofile and the serving lock it ships
        package = Path(ml_platform.__file__).resolve().parent
        shutil.copytree(package, ctx / "ml_platform", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(package / "serving" / "requirements.txt", ctx / "requirements.txt")
        shutil.copy(package / "serving" / "bentofile.yaml", ctx / "bentofile.yaml")
        run = subprocess.run(
            [
                sibling_executable("bentoml"),
                "build",
                str(ctx),
                "-f",
                str(ctx / "bentofile.yaml"),
                "--version",
                version,
                "--label",
                f"model_version={model_version}",
                "--label",
                f"model_name={s.model_name}",
                "-o",
                "tag",
            ],
            env=env,
            capture_output=True,
            text=True,
            cwd=ctx,
            timeout=600,
        )
    if run.returncode != 0:
        raise MlPlatformError(f"bentoml build failed: {(run.stderr or run.stdout)[-2000:]}")
    return tag


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process_group(proc: subprocess.Popen, wait: float = 30) -> None:
    """SIGTERM a server started with `start_new_session=True` (arbiter and workers), SIGKILL if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def sample_customers(n: int, settings: Settings | None = None) -> list[str]:
    s = settings or get_settings()
    newest = read_newest_partition(table_path("features.customer_features", s), "snapshot_date", ["customer_id"])
    if newest is None:
        return []
    return sorted(newest[1]["customer_id"].astype(str))[:n]


def smoke_test(
    tag: str,
    model_version: str,
    customers: list[str],
    *,
    p99_budget_ms: float = 100.0,
    requests: int = 100,
    settings: Settings | None = None,
    log_dir: Path | None = None,
) -> dict[str, Any]:
    """Serve Bento `tag` pinned to `model_version`; readiness, predictions, p99; always stopped."""
    import httpx
    import numpy as np

    s = settings or get_settings()
    port = free_port()
    env = dict(
        os.environ,
        BENTOML_DO_NOT_TRACK="true",
        ML_PLATFORM_SERVING_PINNED_VERSION=str(model_version),
        ML_PLATFORM_SERVING_WORKERS="1",
        ML_PLATFORM_SERVING_CHALLENGER_SHARE="0",
        ML_PLATFORM_SERVING_SHADOW="false",
    )
    env.setdefault("BENTOML_HOME", str(s.home / "bentoml"))
    log_dir = log_dir or s.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"smoke-{tag.replace(':', '-')}.log"
    headers = {"Authorization": f"Bearer {s.api_token}"} if s.api_token else {}
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sibling_executable("bentoml"), "serve", tag, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            deadline, ready = time.time() + 180, None
            while time.time() < deadline:
                if proc.poll() is not None:
                    raise MlPlatformError(f"the Bento exited during start-up: {log_path.read_text()[-1500:]}")
                try:
                    r = c.get("/readyz", headers=headers)
                    ready = r.json()
                    if r.status_code == 200:
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                time.sleep(0.5)
            else:
                raise MlPlatformError(f"the Bento did not become ready in 180 s: {ready}")
            if str(ready.get("champion")) != str(model_version):
                raise MlPlatformError(f"the Bento serves v{ready.get('champion')}, expected v{model_version}")
            if not customers:
                raise MlPlatformError("no customers to smoke-test with (no feature snapshot)")
            r = c.post("/predict", json={"customer_ids": customers}, headers=headers)
            if r.status_code != 200:
                raise MlPlatformError(f"/predict answered {r.status_code}: {r.text[:500]}")
            preds = r.json()["predictions"]
            found = [p for p in preds if p["found"]]
            if not found or any(p["model_version"] != str(model_version) for p in found):
                raise MlPlatformError(f"unexpected predictions: {preds[:3]}")
            times = []
            for i in range(requests):
                t0 = time.perf_counter()
                r = c.post("/predict", json={"customer_ids": [customers[i % len(customers)]]}, headers=headers)
                times.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    raise MlPlatformError(f"/predict answered {r.status_code} during the latency check: {r.text[:300]}")
            p50, p99 = float(np.percentile(times, 50)), float(np.percentile(times, 99))
            if p99 > p99_budget_ms:
                raise MlPlatformError(f"p99 latency {p99:.1f} ms over the budget of {p99_budget_ms:.1f} ms")
            return {
                "tag": tag,
                "model_version": str(model_version),
                "customers": len(customers),
                "found": len(found),
                "p50_ms": round(p50, 2),
                "p99_ms": round(p99, 2),
                "log": str(log_path),
            }
    finally:
        stop_process_group(proc)


def confirm_serving(version: str, url: str, timeout: float, token: str = "") -> dict[str, Any]:
    """Wait until every worker of the service at `url` reports `version` as champion.

    Each `/readyz` goes over a new connection (a kept-alive one stays with one worker) and names
    its worker's pid and the service's worker count (with the service's bearer `token`, when it has
    one: without it `/readyz` says only whether it is ready); confirmed once that many distinct
    workers have answered and the newest answer of each is `version`.
    """
    import httpx

    deadline = time.time() + timeout
    latest: dict[Any, str] = {}  # pid -> the champion its newest answer named, least recently heard first
    workers = 1
    try:
        while time.time() < deadline:
            auth = {"Authorization": f"Bearer {token}"} if token else {}
            r = httpx.get(f"{url}/readyz", headers={"Connection": "close", **auth}, timeout=5)
            body = r.json()
            workers, pid = int(body.get("workers") or 1), body.get("pid")
            latest.pop(pid, None)
            latest[pid] = str(body.get("champion"))
            while len(latest) > workers:  # a worker that was replaced: forget the one heard from longest ago
                latest.pop(next(iter(latest)))
            if len(latest) >= workers and all(v == str(version) for v in latest.values()):
                return {"running": True, "confirmed": True, "url": url, "version": str(version), "workers": len(latest)}
            if latest[pid] != str(version):
                time.sleep(0.2)
    except httpx.ConnectError:
        return {
            "running": False,
            "confirmed": False,
            "url": url,
            "note": f"no service running at {url}: nothing to confirm",
        }
    raise MlPlatformError(
        f"the service at {url} still reports champion {sorted(set(latest.values()))} over "
        f"{len(latest)} of {workers} workers after {timeout:.0f} s, expected v{version}"
    )
