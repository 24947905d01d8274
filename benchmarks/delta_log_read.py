"""Reading the state of a Delta table with many commits: with the checkpoints the platform's writer
now leaves every `delta.checkpointInterval` commits (10), and without them (as it wrote before),
measured in the same run on the same table.

    .venv/bin/python benchmarks/delta_log_read.py --commits 1000 [--azurite]    # --smoke: 30 commits

It commits N single-day partitions to a row-tracking feature table with the embedded writer
(`lake.delta_log.replace_partitions`, checkpoints included), copies the table without its
checkpoints, and times `lake.delta_log.snapshot` on both (best of 5), counting the log files each
read opens. With `--azurite` it also uploads both logs to Azurite (started here with a debug log)
and reads each once through the platform's ABFS settings, counting the HTTP requests Azurite served
for the read: one request per log file read, plus the listing. Both must give the same state,
locally and from Azurite (the script exits 1 otherwise).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # azurite_server


def _rows(day: date):
    import pyarrow as pa

    return pa.table({"customer_id": ["C1", "C2"], "snapshot_date": pa.array([day, day], pa.date32()), "x": [1.0, 2.0]})


def _timed_read(path: Path, repeat: int = 5) -> tuple[float, int]:
    """Best wall time of `snapshot(path)` and how many log files one read opens."""
    from ml_platform.lake import delta_log

    opened = 0
    real = delta_log._read_texts

    def counting(files, missing_ok=False):
        nonlocal opened
        opened += len(files)
        return real(files, missing_ok)

    best = float("inf")
    for _ in range(repeat):
        opened = 0
        delta_log._read_texts = counting
        try:
            t = time.perf_counter()
            delta_log.snapshot(str(path))
            best = min(best, time.perf_counter() - t)
        finally:
            delta_log._read_texts = real
    checkpoint_files = 1 if any(path.glob("_delta_log/*.checkpoint.parquet")) else 0
    return best, opened + checkpoint_files


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--commits", type=int, default=1000, help="commits to the table (default 1000)")
    p.add_argument("--smoke", action="store_true", help="30 commits (CI)")
    p.add_argument("--azurite", action="store_true", help="also read both logs from Azurite, counting its requests")
    a = p.parse_args(argv)
    n = 30 if a.smoke else a.commits
    if n < 11:
        p.error("--commits must be at least 11 (one checkpoint)")

    from ml_platform.lake.delta_log import replace_partitions, snapshot
    from ml_platform.lake.paths import FEATURE_TABLE_PROPERTIES

    with tempfile.TemporaryDirectory(prefix="delta-log-bench-") as tmp:
        table = Path(tmp) / "features"
        t = time.perf_counter()
        for i in range(n):
            replace_partitions(
                str(table), _rows(date(2020, 1, 1) + timedelta(days=i)), ["snapshot_date"],
                properties=FEATURE_TABLE_PROPERTIES,
            )  # fmt: skip
            if (i + 1) % 100 == 0:
                print(f"  {i + 1} commits ({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
        bare = Path(tmp) / "without-checkpoints"
        shutil.copytree(table, bare)
        for f in (bare / "_delta_log").iterdir():
            if ".checkpoint." in f.name or f.name == "_last_checkpoint":
                f.unlink()
        with_s, with_files = _timed_read(table)
        without_s, without_files = _timed_read(bare)

        def state(path: Path) -> dict:  # a checkpoint's add actions also carry its empty columns as None
            return {k: {f: v for f, v in a.items() if v is not None} for k, a in snapshot(str(path)).files.items()}

        same = state(table) == state(bare)
        print(f"{n} commits, local disk, best of 5 reads of the newest state:")
        print(f"  with checkpoints (every 10)   {with_s * 1000:8.1f} ms  {with_files:5d} log files read")
        print(f"  without checkpoints           {without_s * 1000:8.1f} ms  {without_files:5d} log files read")
        print(f"  ratio {without_s / with_s:.1f}x; same state: {same}")
        if a.azurite:
            same = _on_azurite(Path(tmp), {"with checkpoints": table, "without checkpoints": bare}, state) and same
    return 0 if same else 1


def _on_azurite(work: Path, tables: dict[str, Path], state) -> bool:
    """Upload each table's log to Azurite and read it once from there; True when each read gives
    the local state."""
    import os

    from azure.storage.blob import BlobServiceClient
    from azurite_server import ACCOUNT, azurite

    from ml_platform.config import get_settings
    from ml_platform.lake.delta_log import snapshot

    with azurite(work) as server:
        blobs = BlobServiceClient.from_connection_string(server.connection_string)
        blobs.create_container("lake")
        for name, local in tables.items():
            folder = name.replace(" ", "-")
            for f in sorted((local / "_delta_log").iterdir()):
                blobs.get_blob_client("lake", f"{folder}/_delta_log/{f.name}").upload_blob(f.read_bytes())
        os.environ |= {
            "ML_PLATFORM_AZURE_EMULATOR_ENDPOINT": server.endpoint,
            "ML_PLATFORM_AZURE_STORAGE_ACCOUNT_KEY": server.key,
            "ML_PLATFORM_LAKE_URI": f"abfs://lake@{ACCOUNT}.dfs.core.windows.net/",
        }
        get_settings.cache_clear()
        print("the same logs in Azurite (loopback), one read each:")
        same = True
        for name, local in tables.items():
            uri = f"abfs://lake@{ACCOUNT}.dfs.core.windows.net/{name.replace(' ', '-')}"
            before, t = server.requests_served(), time.perf_counter()
            remote = snapshot(uri)
            took, requests = time.perf_counter() - t, server.requests_served() - before
            local_state = state(local)
            ok = (
                remote is not None
                and {k: {f: v for f, v in act.items() if v is not None} for k, act in remote.files.items()}
                == local_state
            )
            same = same and ok
            print(f"  {name:28} {took * 1000:8.1f} ms  {requests:5d} requests to Azurite  same state: {ok}")
        return same


if __name__ == "__main__":
    sys.exit(main())
