"""Lake storage benchmark: the same data-plane job and PIT training set on local disk and on Azurite.

    python benchmarks/lake_storage.py [--customers 2000] [--days 28] [--smoke]

Generates the same landed files once, lands them in a local folder and in an Azurite Blob
container, then runs, as a user does, `ml-platform run` (ingest -> gate -> silver -> daily feature
snapshots) and `ml-platform features training-set` (labels + point-in-time join) against a local
lake and against an `abfss://` lake on Azurite (loopback), each with the default engine choice
(`auto`), and on Azurite once more with Spark for the snapshots and the training set (the peer,
`ML_PLATFORM_ENGINE_*=spark`). Prints the wall time of each step in each setting, the Azurite/local
ratio, the HTTP requests Azurite served during each step (from its debug log) and the engine each
step ran. Each step is one process, as in the CLI (ingest and the gate always start a JVM; the
embedded engine none).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from azurite_server import ACCOUNT, Azurite, azurite


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--customers", type=int, default=2000)
    p.add_argument("--days", type=int, default=28)
    p.add_argument("--smoke", action="store_true", help="tiny data: checks the script runs")
    a = p.parse_args()
    customers, days = (200, 10) if a.smoke else (a.customers, a.days)
    start = date(2025, 1, 1)
    end = start + timedelta(days=days - 1)
    cutoff = end - timedelta(days=8)  # its 7-day label window is observed
    work = Path(tempfile.mkdtemp(prefix="lake-storage-bench-"))
    with azurite(work) as server:
        return _run(server, work, customers, days, start, end, cutoff)


def _run(server: Azurite, work: Path, customers: int, days: int, start: date, end: date, cutoff: date) -> int:
    endpoint, key = server.endpoint, server.key
    from azure.storage.blob import BlobServiceClient

    from ml_platform.data.generator import GeneratorSpec, write_landing

    blobs = BlobServiceClient.from_connection_string(server.connection_string)
    for c in ("lake", "landing"):
        blobs.create_container(c)
    files = work / "landed"
    print(f"generating {customers} customers x {days} days", file=sys.stderr)
    write_landing(GeneratorSpec(customers=customers, start=start, end=end, seed=3), files)
    for f in sorted(files.rglob("*.parquet")):
        blobs.get_blob_client("landing", f"in/{f.relative_to(files).as_posix()}").upload_blob(f.read_bytes())
    base = {k: v for k, v in os.environ.items() if not k.startswith("ML_PLATFORM_AZURE")}
    base["ML_PLATFORM_SNAPSHOT_CADENCE"] = "daily"
    envs = {
        "local disk": base | {"ML_PLATFORM_HOME": str(work / "local"), "ML_PLATFORM_LANDING_URI": str(files)},
    }
    for where, extra, folder in (
        ("Azurite", {}, "bench"),
        (
            "Azurite, Spark",
            {"ML_PLATFORM_ENGINE_FEATURES": "spark", "ML_PLATFORM_ENGINE_TRAINING_SETS": "spark"},
            "spark",
        ),
    ):
        envs[where] = (
            base
            | {
                "ML_PLATFORM_HOME": str(work / folder),
                "ML_PLATFORM_LAKE_URI": f"abfss://lake@{ACCOUNT}.dfs.core.windows.net/{folder}",
                "ML_PLATFORM_LANDING_URI": f"abfss://landing@{ACCOUNT}.dfs.core.windows.net/in",
                "ML_PLATFORM_AZURE_EMULATOR_ENDPOINT": endpoint,
                "ML_PLATFORM_AZURE_STORAGE_ACCOUNT_KEY": key,
            }
            | extra
        )
    steps = {
        "data plane (ml-platform run)": ["run", "--start", str(start), "--end", str(end)],
        "PIT training set": [
            "features",
            "training-set",
            "--cutoffs",
            str(cutoff),
            "--horizon-days",
            "7",
            "--id",
            "bench",
        ],
    }
    exe = str(Path(sys.executable).parent / "ml-platform")
    results: dict[str, dict[str, tuple[float, int, str]]] = {}
    for step, args in steps.items():
        for where, env in envs.items():
            before = server.requests_served()
            t0 = time.perf_counter()
            run = subprocess.run([exe, *args], env=env, capture_output=True, text=True)
            took = time.perf_counter() - t0
            if run.returncode != 0:
                print(run.stderr[-2000:], file=sys.stderr)
                return 1
            out = json.loads(run.stdout)
            engine = (out.get("features") or out)["engine"]["engine"]  # the snapshots' or the training set's
            results.setdefault(step, {})[where] = (took, server.requests_served() - before, engine)
            print(f"  {step} on {where}: {took:.1f} s ({engine} engine)", file=sys.stderr)
    print(f"{customers} customers x {days} days ({sum(1 for _ in files.rglob('*.parquet'))} files), 2 cores")
    print(
        f"{'step':30} {'local disk':>11} {'Azurite':>9} {'ratio':>6} {'requests':>9} {'Azurite, Spark':>15} {'requests':>9}"
    )
    for step, r in results.items():
        (lt, _, le), (at, n, ae), (st, sn, _) = r["local disk"], r["Azurite"], r["Azurite, Spark"]
        print(f"{step:30} {lt:10.1f}s {at:8.1f}s {at / lt:6.2f} {n:9d} {st:14.1f}s {sn:9d}   engine: {le}/{ae}")
    print(
        json.dumps(
            {
                s: {w: {"seconds": round(t, 1), "requests": n, "engine": e} for w, (t, n, e) in r.items()}
                for s, r in results.items()
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
