"""Real processes for the serving tests: a Redis server on a free port, `ml-platform serve`, and a
serving home built from the shared trained model (copied registry, published online features)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from ml_platform.lake.paths import catalog_dir
from ml_platform.serving.bento import free_port, stop_process_group

BIN = Path(sys.executable).parent


class RedisServer:
    """redis-server on a free port with an RDB file, so a stop (SHUTDOWN SAVE) and start keep the data."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.folder),
                "--dbfilename",
                "dump.rdb",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        import redis

        if self.proc and self.proc.poll() is None:
            try:
                redis.Redis(port=self.port).shutdown(save=True)
            except redis.ConnectionError:
                pass
            self.proc.wait(10)


def serving_home(
    trained_model: dict[str, Any], home: Path, redis_url: str | None, promote: bool = True
) -> dict[str, str]:
    """A platform home whose registry is a copy of the trained model's (aliases can move freely),
    whose catalog is the workspace's, and (with `redis_url`) whose Redis online store holds the
    latest snapshot. Returns the environment for `ml-platform serve` and in-process calls."""
    from ml_platform.config import Settings
    from ml_platform.features.online import RedisOnlineStore, key_string
    from ml_platform.features.registry import Registry
    from ml_platform.lake.paths import table_path
    from ml_platform.lake.reader import partition_values, read_pandas

    ws = Settings(home=trained_model["workspace"])
    src_db = Path(trained_model["registry"].removeprefix("sqlite:///"))
    (home / "mlflow").mkdir(parents=True, exist_ok=True)
    shutil.copy(src_db, home / "mlflow" / "mlflow.db")
    shutil.copytree(catalog_dir(ws), home / "lake" / "_catalog")
    (home / "lake" / "features").symlink_to(Path(ws.lake_uri) / "features")  # read-only use: customer samples
    if redis_url is None:
        return {"ML_PLATFORM_HOME": str(home)}
    env = {"ML_PLATFORM_HOME": str(home), "ML_PLATFORM_ONLINE_STORE": "redis", "ML_PLATFORM_REDIS_URL": redis_url}
    spec = Registry(catalog_dir(ws)).get("features.customer_features")
    path = table_path("features.customer_features", ws)
    last = partition_values(path, "snapshot_date")[-1]
    snap = read_pandas(path, partition=("snapshot_date", last))
    rows = [
        (
            key_string(r["customer_id"]),
            r[spec.timestamp_key].to_pydatetime(),
            [None if v != v else v for v in (r[f] for f in spec.feature_names)],
        )
        for _, r in snap.iterrows()
    ]
    RedisOnlineStore(redis_url).publish(spec, rows, tag=f"snap-{last}")
    return env


def with_env(env: dict[str, str]) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("ML_PLATFORM_") or k.startswith("ML_PLATFORM_TEST")}
    return out | env


class Server:
    """`ml-platform serve` as a real process group on a free port."""

    def __init__(self, env: dict[str, str], log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [str(BIN / "ml-platform"), "serve", "--port", str(self.port)],
            env=with_env(env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text()[-3000:]}")
            try:
                if self.client.get("/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"server did not come up: {log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the BentoML arbiter's process group and every worker. Workers run in process
        groups of their own, so they are collected first: killing the group alone orphaned them."""
        import psutil

        if self.proc.poll() is None:
            workers = psutil.Process(self.proc.pid).children(recursive=True)
            os.killpg(self.proc.pid, signal.SIGKILL)
            for w in workers:
                try:
                    w.kill()
                except psutil.NoSuchProcess:
                    pass
            psutil.wait_procs(workers, timeout=10)
            self.proc.wait(10)

    def stop(self) -> None:
        stop_process_group(self.proc, wait=20)
        self.client.close()
