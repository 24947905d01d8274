"""Serving image size: the Bento's Python environment from the serving lock (requirements-serving.txt,
what the Bento installs now) next to one from the runtime lock (requirements.txt, what it installed
before: Airflow, Spark, torch with the CUDA libraries), plus the JDK the old Bento's image carried.

    python benchmarks/serving_image.py [--smoke]

Each lock is installed with the pinned uv (hashes checked, from uv's cache) into a fresh virtual
environment in a temporary folder; the figure is the bytes of its files (each inode once), the
number of distributions, and whether `pyspark`, `torch` and `airflow` import there. No Docker
engine here: the image's base layers (python:3.11-slim, and a JRE for the old one) come on top of
both. `--smoke` installs the serving lock only and checks what is (not) in it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).parent / "uv"  # the pinned uv scripts/bootstrap.sh links beside python
PROBE = "import importlib.util as u; print(','.join(m for m in ('pyspark', 'torch', 'airflow') if u.find_spec(m)))"


def tree_bytes(folder: Path) -> int:
    seen, total = set(), 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_size
    return total


def install(lock: Path, where: Path) -> dict[str, object]:
    t = time.perf_counter()
    subprocess.run([UV, "venv", "-q", "--python", "3.11", where], check=True)
    py = where / "bin" / "python"
    subprocess.run([UV, "pip", "install", "-q", "--python", py, "--require-hashes", "-r", lock], check=True)
    dists = subprocess.run([UV, "pip", "list", "--python", py, "--format", "freeze"], check=True, capture_output=True)
    heavy = subprocess.run([py, "-c", PROBE], check=True, capture_output=True, text=True).stdout.strip()
    return {
        "bytes": tree_bytes(where),
        "dists": len(dists.stdout.splitlines()),
        "heavy": heavy or "none",
        "seconds": time.perf_counter() - t,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="the serving lock only (CI)")
    a = p.parse_args(argv)
    locks = {"serving lock (now)": ROOT / "requirements-serving.txt"}
    if not a.smoke:
        locks["runtime lock (before)"] = ROOT / "requirements.txt"
    rows = {}
    with tempfile.TemporaryDirectory(prefix="serving-image-") as tmp:
        for i, (label, lock) in enumerate(locks.items()):
            print(f"installing {lock.name} ...", file=sys.stderr, flush=True)
            rows[label] = install(lock, Path(tmp) / f"env{i}")
    print(f"{'environment':<24} {'size':>9} {'dists':>6}  imports of pyspark/torch/airflow")
    for label, r in rows.items():
        print(f"{label:<24} {r['bytes'] / 2**30:>7.2f} GB {r['dists']:>6}  {r['heavy']}")
    java = Path(os.environ.get("JAVA_HOME", "/usr/lib/jvm/default-java"))
    if java.is_dir():
        print(f"JDK the old Bento's image added (this machine's {java.name}): {tree_bytes(java) / 2**20:.0f} MiB")
    if len(rows) == 2:
        now, before = rows.values()
        print(f"serving / runtime environment size: {now['bytes'] / before['bytes']:.3f}")
    return 0 if rows["serving lock (now)"]["heavy"] == "none" else 1


if __name__ == "__main__":
    sys.exit(main())
