"""Azurite for the benchmarks that count storage requests: started with a debug log (one line per
HTTP request it serves), not through scripts/azurite.sh, which has no such flag."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "devstoreaccount1"


@dataclass(frozen=True)
class Azurite:
    endpoint: str  # http://127.0.0.1:<port>/devstoreaccount1
    key: str  # Azurite's published development key (not a secret)
    debug_log: Path

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={self.key};BlobEndpoint={self.endpoint};"
        )

    def requests_served(self) -> int:
        """HTTP requests Azurite has answered so far."""
        if not self.debug_log.exists():
            return 0
        with self.debug_log.open(errors="replace") as f:
            return sum(1 for line in f if "BlobStorageContextMiddleware: RequestMethod=" in line)


@contextmanager
def azurite(work: Path) -> Iterator[Azurite]:
    """Azurite's Blob service on a free loopback port with its data under `work`, until the block ends."""
    from ml_platform.serving.bento import free_port

    port = free_port()
    (work / "azurite-data").mkdir(parents=True, exist_ok=True)
    debug = work / "azurite-debug.log"
    server = subprocess.Popen(
        [
            str(ROOT / ".azurite/node_modules/.bin/azurite-blob"),
            *("--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(work / "azurite-data")),
            *("--loose", "--skipApiVersionCheck", "--debug", str(debug)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        key = re.search(r"KEY='([^']+)'", (ROOT / "scripts/azurite.sh").read_text()).group(1)  # type: ignore[union-attr]
        for _ in range(60):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        yield Azurite(f"http://127.0.0.1:{port}/{ACCOUNT}", key, debug)
    finally:  # after a busy run Azurite may take longer than 10 s to stop on its own (it saves its state)
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
