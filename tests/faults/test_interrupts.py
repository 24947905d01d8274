"""Interrupts: a SIGTERM (or Ctrl-C) to `make demo` or to a test run stops what it started, also
the processes it started in sessions of their own (Airflow, the Spark Connect server, the
service), which a signal to its process group does not reach."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers import free_port_block

pytestmark = pytest.mark.faults
ROOT = Path(__file__).resolve().parents[2]


def _processes_of(marker: str) -> dict[int, str]:
    """Live processes whose environment holds `marker` (e.g. `ML_PLATFORM_HOME=<home>`): pid -> command."""
    found = {}
    needle = marker.encode() + b"\0"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes() + b"\0":
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except ProcessLookupError:
        return None


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in (path.read_text(errors="replace") if path.exists() else ""):
        assert proc.poll() is None, f"ended (rc {proc.returncode}) before {text!r}: {path.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {text!r} within {timeout:.0f} s: {path.read_text()[-3000:]}"
        time.sleep(0.5)


def _wait_gone(marker: str, timeout: float) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while (left := _processes_of(marker)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


@pytest.mark.timeout(420)
def test_a_sigterm_to_a_running_demo_stops_everything_it_started(tmp_path):
    from ml_platform.serving.bento import free_port

    home = tmp_path / "platform"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ML_PLATFORM_", "AZURE_"))}
    env |= {
        "QUICK": "1",
        "DEMO_WEEKS": "1",
        "ML_PLATFORM_HOME": str(home),
        "ML_PLATFORM_AIRFLOW_PORT": str(free_port_block()),
        "ML_PLATFORM_SERVING_PORT": str(free_port()),
        "ML_PLATFORM_MLFLOW_PORT": str(free_port()),
        "ML_PLATFORM_SPARK_CONNECT_PORT": str(free_port()),
    }
    log = tmp_path / "demo.log"
    marker = f"ML_PLATFORM_HOME={home}"
    with log.open("w") as out:
        # its own session, as a terminal runs it: Ctrl-C and `kill -- -PGID` signal this group
        demo = subprocess.Popen(
            ["bash", "scripts/demo.sh"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_for(log, "Airflow is up on", demo, 300)
        started = {p.stem for p in (home / "run").glob("*.pid")}
        # what runs outside the demo's process group, and which the signal itself does not reach
        assert {"spark-connect", "api-server", "scheduler", "dag-processor", "triggerer"} <= started, started
        outside = {pid for pid in _processes_of(marker) if _session(pid) not in (demo.pid, None)}
        assert outside, "nothing of the demo runs in a session of its own: the test would prove nothing"

        os.killpg(demo.pid, signal.SIGTERM)
        assert demo.wait(timeout=90) == 130, log.read_text()[-3000:]
        assert "interrupted: stopping what the demo started" in log.read_text()
        left = _wait_gone(marker, 15)
        assert not left, f"still running after the interrupted demo: {left}"
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
        subprocess.run(["bash", "scripts/stop.sh"], cwd=ROOT, env=env, capture_output=True, timeout=120)


def test_a_sigterm_to_pytest_tears_the_fixtures_down(tmp_path):
    """Without tests/interrupt.py pytest dies at once and the fixture's process in its own session
    lives on (the control run); with it, the fixture's tear-down stops it."""
    pid_file = tmp_path / "child.pid"
    (tmp_path / "test_long.py").write_text(
        textwrap.dedent(f"""
        import subprocess, time
        from pathlib import Path
        import pytest

        @pytest.fixture()
        def stack():
            p = subprocess.Popen(["sleep", "300"], start_new_session=True)
            Path({str(pid_file)!r}).write_text(str(p.pid))
            yield
            p.terminate()
            p.wait()

        def test_long(stack):
            time.sleep(300)
        """)
    )

    def run(*plugin: str) -> tuple[int, int]:
        pid_file.unlink(missing_ok=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin, str(tmp_path / "test_long.py")],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not pid_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the fixture did not start"
            time.sleep(0.1)
        child = int(pid_file.read_text())
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=60), child

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"

    rc, child = run()
    try:
        assert rc == -signal.SIGTERM and alive(child)  # the default: killed, the fixture's process left
    finally:
        os.kill(child, signal.SIGKILL)

    rc, child = run("-p", "tests.interrupt")
    assert rc == pytest.ExitCode.INTERRUPTED, rc
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(child), "the fixture's process outlived the interrupted session"
