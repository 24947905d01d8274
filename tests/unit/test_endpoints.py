"""A service the job needs is down (the Spark master, the MLflow tracking server): one clear error
naming it, before a JVM starts or an MLflow client retries for minutes; exit 2 from the CLI and from
a `spark_jobs/` entry point (what Airflow retries), never a traceback."""

from __future__ import annotations

import socket
import time

import pytest

from ml_platform import cli
from ml_platform.config import Settings, get_settings
from ml_platform.errors import ConfigError
from ml_platform.lake.endpoints import Unreachable, require_reachable

pytestmark = pytest.mark.unit


@pytest.fixture()
def closed_port() -> int:
    """A port nothing listens on (bound and released: the kernel refuses connections to it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_service_is_named_with_its_address_and_what_to_do(closed_port):
    t0 = time.monotonic()
    with pytest.raises(Unreachable) as e:
        require_reachable(f"spark://127.0.0.1:{closed_port}", "the Spark master", "start it")
    assert time.monotonic() - t0 < 6
    assert str(e.value).startswith(f"the Spark master spark://127.0.0.1:{closed_port} is not reachable (127.0.0.1:")
    assert str(e.value).endswith(": start it")


def test_one_live_address_of_several_is_enough(closed_port):
    with socket.socket() as live:
        live.bind(("127.0.0.1", 0))
        live.listen()
        port = live.getsockname()[1]
        require_reachable(f"spark://127.0.0.1:{closed_port},127.0.0.1:{port}", "the Spark master", "")
        require_reachable(f"http://user:pw@127.0.0.1:{port}/path", "a server", "")


@pytest.mark.parametrize("url", ["spark://", "spark://host:port", "http://:5000"])
def test_a_url_without_a_usable_address_is_a_config_error(url):
    with pytest.raises(ConfigError):
        require_reachable(url, "x", "")


def test_get_spark_fails_before_starting_a_jvm_when_the_master_is_down(closed_port, tmp_path):
    from ml_platform.lake.spark import get_spark

    master = f"spark://127.0.0.1:{closed_port}"
    t0 = time.monotonic()
    with pytest.raises(Unreachable, match="ML_PLATFORM_SPARK_MASTER"):
        get_spark("t", Settings(home=tmp_path, spark_master=master, spark_remote=""))
    assert time.monotonic() - t0 < 6


def test_a_spark_job_entry_point_exits_2_naming_the_master(closed_port, tmp_path, monkeypatch, capsys):
    from ml_platform.engines.jobs import run_job

    monkeypatch.setenv("ML_PLATFORM_HOME", str(tmp_path))
    monkeypatch.setenv("ML_PLATFORM_SPARK_MASTER", f"spark://127.0.0.1:{closed_port}")
    monkeypatch.delenv("ML_PLATFORM_SPARK_REMOTE", raising=False)
    get_settings.cache_clear()
    try:
        assert run_job("features_build", lambda engine, out: None) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert f"features_build failed: the Spark master spark://127.0.0.1:{closed_port} is not reachable" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["registry", "show"], ["registry", "init"], ["registry", "promote"]])
def test_the_cli_names_a_tracking_server_that_is_down(argv, closed_port, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ML_PLATFORM_HOME", str(tmp_path))
    monkeypatch.setenv("ML_PLATFORM_MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed_port}")
    get_settings.cache_clear()
    try:
        t0 = time.monotonic()
        rc = cli.main(argv)
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert rc == 2, err
    assert time.monotonic() - t0 < 30  # not MLflow's minutes of retries
    assert f"the MLflow tracking server http://127.0.0.1:{closed_port} is not reachable" in err
    assert "Traceback" not in err


def test_a_spark_connect_client_dies_with_the_task_that_started_it(tmp_path):
    """Issue 20, finding 6: a task killed (its execution_timeout, or with its worker) left its Spark
    Connect client child running. The child now gets SIGTERM from the kernel when its parent dies."""
    import os
    import signal
    import subprocess
    import sys

    job = tmp_path / "job.py"
    job.write_text("import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(120)\n")
    task = (
        "import sys\nfrom ml_platform.lake.spark import run_python_job\n"
        f"run_python_job({str(job)!r}, [], log=lambda line: print(line, flush=True))\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", task], stdout=subprocess.PIPE, text=True)
    parent.stdout.readline()  # the command line it logs
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while True:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        # a zombie (dead, not yet reaped by init) counts as gone
        with open(f"/proc/{child}/stat") as f:
            if f.read().split(")")[-1].split()[0] == "Z":
                break
        assert time.monotonic() < deadline, "the client outlived its task"
        time.sleep(0.2)
