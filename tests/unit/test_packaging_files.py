"""Static checks of docker-compose.yaml and Dockerfile (no Docker engine on this machine)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def test_services_present(compose):
    expected = {
        "postgres",
        "redis",
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "mlflow",
        "spark-master",
        "spark-worker",
        "serving",
    }
    assert expected <= set(compose["services"])


def test_no_port_published_on_all_interfaces(compose):
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            spec = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port.get('published')}"
            assert spec.startswith("127.0.0.1:"), f"{name} publishes {spec} beyond loopback"


def test_healthchecks_and_dependencies(compose):
    services = compose["services"]
    for name in ("postgres", "redis", "airflow-api-server", "airflow-scheduler", "mlflow", "spark-master", "serving"):
        assert "healthcheck" in services[name], name
    for name, svc in services.items():
        for dep in svc.get("depends_on") or {}:
            assert dep in services, f"{name} depends on unknown {dep}"
    assert services["airflow-scheduler"]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert services["postgres"]["healthcheck"]["test"][1] == "pg_isready"


def test_spark_worker_runs_the_project_image_and_lake_is_a_named_volume(compose):
    services = compose["services"]
    assert services["spark-worker"]["image"] == services["airflow-scheduler"]["image"] == "ml-platform:latest"
    assert "lake" in compose["volumes"]
    assert "lake:/lake" in services["spark-worker"]["volumes"]


def test_spark_connect_service_is_opt_in_and_runs_the_servers_module(compose):
    import json

    svc = compose["services"]["spark-connect"]
    assert svc["profiles"] == ["connect"] and "ports" not in svc  # the compose network only
    module = svc["command"][svc["command"].index("-m") + 1]
    assert (ROOT / "include" / Path(*module.split("."))).with_suffix(".py").is_file()
    env = svc["environment"]
    assert env["ML_PLATFORM_SPARK_MASTER"] == json.loads(env["AIRFLOW_CONN_SPARK_DEFAULT"])["host"]
    assert env["ML_PLATFORM_SPARK_REMOTE"] == "${ML_PLATFORM_SPARK_REMOTE:-}"  # empty unless opted in
    assert compose["services"]["airflow-scheduler"]["environment"] is env  # one environment for all


def test_dockerfile_base_java_requirements_and_jars():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert all(s.startswith("apache/airflow:3.3.2-python3.11") for s in stages)  # one release tag, no floating one
    runtime = stages[-1]
    assert "maven" not in runtime.lower() and "mvn " not in runtime  # Maven only in the jars stage
    assert "openjdk-17-jre-headless" in runtime and "pytest" not in text
    assert "pip install --no-cache-dir --require-hashes -r /opt/ml-platform/requirements.txt" in runtime
    assert "requirements-drift.txt" in runtime and "ML_PLATFORM_DRIFT_PYTHON=/opt/ml-platform/venv-drift" in runtime
    assert "ml-platform setup --jars-from" in runtime and "ML_PLATFORM_SPARK_JARS_DIR" in runtime
    assert re.findall(r"^USER (\w+)", runtime, re.M)[-1] == "airflow"  # not root
    assert "dependency:copy-dependencies" in stages[0]


def test_services_that_are_not_airflow_commands_bypass_the_airflow_entrypoint(compose):
    """The Airflow image runs `airflow <command>` unless told otherwise: mlflow, ml-platform,
    spark-class and python must bypass that entrypoint; every Airflow service must not."""
    for name, svc in compose["services"].items():
        if svc.get("image") != "ml-platform:latest":
            continue
        airflow = name.startswith("airflow-")
        assert ("entrypoint" in svc) is not airflow, name
        if not airflow:
            assert svc["entrypoint"] == ["/usr/bin/dumb-init", "--"] and isinstance(svc["command"], list), name


def test_compose_takes_every_secret_from_the_environment(compose):
    text = (ROOT / "docker-compose.yaml").read_text()
    assert "platform:platform@" not in text and "POSTGRES_PASSWORD: platform" not in text
    assert (
        compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
        == "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
    )
    # the service listens on 0.0.0.0 in compose: its token is required like the other secrets
    assert compose["x-platform-env"]["ML_PLATFORM_API_TOKEN"].startswith("${ML_PLATFORM_API_TOKEN:?")


def test_the_package_never_reaches_for_its_checkout():
    """An installed wheel has no repository around it: no module may derive paths from one, and
    the files it ships (package data) are the checkout's own (symlinks, copied into the wheel)."""
    import tomllib

    package = ROOT / "include" / "ml_platform"
    offenders = [p for p in package.rglob("*.py") if re.search(r"REPO_ROOT|parents\[2\]", p.read_text())]
    assert not offenders, offenders
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["ml_platform"]
    for rel in data:
        assert (package / rel).is_file(), rel
    assert (package / "serving" / "requirements.txt").resolve() == (ROOT / "requirements-serving.txt").resolve()
    assert (package / "serving" / "bentofile.yaml").resolve() == (ROOT / "bentofile.yaml").resolve()


def test_requirements_are_exact_pins():
    for name in ("requirements.txt", "requirements-test.txt", "requirements-drift.txt", "requirements-serving.txt"):
        text = (ROOT / name).read_text()
        entries = [e.strip() for e in re.split(r"\n(?=[A-Za-z0-9])", re.sub(r"(?m)^\s*#.*\n", "", text)) if e.strip()]
        assert entries, name
        for entry in entries:  # `name==version \` then one or more `--hash=sha256:...` lines
            pin, *hashes = [part.strip() for part in entry.split("\\\n")]
            assert re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[^=\s]+", pin), (name, pin)
            assert hashes and all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for h in hashes), (name, pin)


def _pins(name: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", (ROOT / name).read_text(), re.M))


def _declared_by_the_project(name: str) -> set[str]:
    """Packages of a lock whose `# via` names the project's own pyproject.toml."""
    blocks = re.split(r"^(?=[A-Za-z0-9_.\-]+==)", (ROOT / name).read_text(), flags=re.M)
    return {b.split("==", 1)[0].lower() for b in blocks if "==" in b and "ml-platform (pyproject.toml)" in b}


def test_runtime_lock_has_no_test_tools_and_the_test_lock_agrees_with_it():
    """The image and the Bento install requirements.txt: no test runner or linter in it (a package of
    the test group is there only when a runtime dependency needs it, never for the platform itself:
    psutil and PyYAML come with Airflow); .venv's lock (requirements-test.txt) is the runtime lock
    plus the test group, never a different version."""
    import tomllib

    runtime, test = _pins("requirements.txt"), _pins("requirements-test.txt")
    group = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["test"]
    tools = {re.split(r"[=<>\[ ]", g)[0].lower() for g in group}
    declared = _declared_by_the_project("requirements.txt")
    assert tools and not tools & declared
    assert tools & {k.lower() for k in runtime} <= {"psutil", "pyyaml"}  # brought by Airflow, not declared
    assert {k: v for k, v in test.items() if k in runtime} == runtime
    assert tools <= {k.lower() for k in test}


def test_the_serving_lock_is_slim_and_agrees_with_the_runtime_lock():
    """The Bento installs requirements-serving.txt: nothing of the batch side (Airflow, Spark, torch,
    CUDA, Optuna, GE), no JDK in its image, and the versions it shares with the runtime lock are the
    runtime lock's (a model trained by the platform loads with the libraries it was pickled with)."""
    import yaml

    serving, runtime = _pins("requirements-serving.txt"), _pins("requirements.txt")
    heavy = re.compile(r"^(apache-airflow|pyspark|delta-spark|torch|triton|optuna|great-expectations|nvidia-(?!ml-py))")
    assert not [k for k in serving if heavy.match(k.lower())], serving.keys()
    assert {k: v for k, v in serving.items() if k in runtime} == {k: runtime[k] for k in serving if k in runtime}
    assert serving["xgboost-cpu"] == runtime["xgboost"]  # the same module and version, without NCCL
    bento = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    assert not any("jdk" in p or "jre" in p for p in bento.get("docker", {}).get("system_packages", []))


def test_every_runtime_pin_has_a_licence_in_the_inventory():
    """docs/LICENSES.md (scripts/license_inventory.py) lists each pin of the runtime and drift locks, with
    its version and a licence read from the package; the project itself carries a LICENSE."""
    text = (ROOT / "docs" / "LICENSES.md").read_text()
    for lock in ("requirements.txt", "requirements-drift.txt", "requirements-serving.txt"):
        section = text.split(f"## {lock}\n", 1)[1].split("\n## ", 1)[0]
        listed = {n: v for n, v, _ in re.findall(r"^\| ([A-Za-z0-9_.\-]+) \| (\S+) \| (.+) \|$", section, re.M)}
        missing = {k: v for k, v in _pins(lock).items() if listed.get(k) != v}
        assert not missing, (lock, missing)
    assert "not installed here" not in text
    assert re.search(r"^\| alibi-detect \| [^|]+ \| Business Source License 1\.1 \|$", text, re.M)
    assert "Apache License" in (ROOT / "LICENSE").read_text()


def test_spark_is_on_a_private_network_only_the_drivers_join(compose):
    """Spark's master, workers and Connect server run any job they are given, unauthenticated:
    they are on an internal network with no published port; the Airflow containers (the drivers)
    join it, the serving container and MLflow do not."""
    assert compose["networks"]["spark"] == {"internal": True}
    for name in ("spark-master", "spark-worker", "spark-connect"):
        assert compose["services"][name]["networks"] == ["spark"], name
        assert "ports" not in compose["services"][name], name
    assert "spark" in compose["services"]["airflow-worker"]["networks"]
    for name in ("serving", "mlflow", "postgres", "redis"):
        assert "spark" not in compose["services"][name].get("networks", []), name


def test_the_tracking_server_requires_its_admin_from_the_environment(compose):
    """MLflow's basic-auth app on; the admin's name and password only from the environment
    (compose refuses to start without them), the same account every platform client sends."""
    mlflow = compose["services"]["mlflow"]
    assert mlflow["command"][-2:] == ["--app-name", "basic-auth"]
    env = mlflow["environment"]
    for key in ("MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert str(env[key]).startswith("${") and ":?" in env[key], key
    platform = compose["x-platform-env"]
    assert platform["MLFLOW_TRACKING_PASSWORD"].startswith("${MLFLOW_TRACKING_PASSWORD:?")
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"].startswith("${MLFLOW_TRACKING_PASSWORD:?")
    assert "./mlflow-auth.ini:/etc/mlflow-auth.ini:ro" in mlflow["volumes"]
    ini = (ROOT / "mlflow-auth.ini").read_text()
    assert "admin_password" not in ini.replace("# ", "")  # no secret in the file
    # a verified credential is remembered briefly (the password hash cost every request ~190 ms of
    # the server's CPU), and not for long: a revoked password stops working within minutes
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read_string(ini)
    assert 0 < cfg.getint("mlflow", "auth_cache_ttl_seconds") <= 300


def test_the_jvms_env_sh_configures_keep_compiling_and_keep_stdout_clean():
    """env.sh's JVM options (C1 alone, which reserves 48 MB for compiled code unless told otherwise):
    the code cache a long job needs, and nothing of the JVM's own logging on stdout, where CLIs
    print their JSON (a full code cache once put a warning at the top of `ml-platform run --json`)."""
    import subprocess

    script = f'source "{ROOT}/scripts/env.sh" && java -XX:+PrintFlagsFinal -version'
    run = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    flags = dict(re.findall(r"^\s*\S+\s+(\w+)\s+=\s+(\S+)", run.stdout, re.M))
    assert flags["TieredStopAtLevel"] == "1"
    assert int(flags["ReservedCodeCacheSize"]) >= 240 * 2**20
    # a JVM warning (large pages asked for, none configured on this machine) goes to stderr
    script = f'source "{ROOT}/scripts/env.sh" && java -XX:+UseLargePages -version'
    quiet = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert quiet.returncode == 0 and quiet.stdout == "", quiet.stdout
    assert "[warning]" in quiet.stderr
