"""The quick demo on the production topology, as processes on 127.0.0.1 (`make demo QUICK=1
LAKE=azurite TOPOLOGY=cluster`): a Spark standalone master with 2 workers running every Spark job,
Airflow's CeleryExecutor with 2 Celery workers (Redis broker, PostgreSQL results and metadata), an
MLflow tracking server on PostgreSQL that every client reaches over HTTP, Optuna on its own
database, the online store in Redis, the BentoML service with 2 workers, and the lake, landing zone
and MLflow artifacts in Azure Storage (Azurite). The loop must close: drift -> the policy's retrain
decision -> exactly one asset-triggered training run -> the gate decides on it. Each service ran
the command line docker-compose.yaml gives it."""

from __future__ import annotations

import json
import os
import shutil
import socket
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from tests.helpers import demo_home, run_quick_demo, stop_demo_stack

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]

#: local process (scripts/*.sh record `<home>/run/<name>.argv`) -> its docker-compose.yaml service
SERVICES = {
    "spark-master": "spark-master",
    "spark-worker-1": "spark-worker",
    "spark-worker-2": "spark-worker",
    "mlflow-ui": "mlflow",
    "api-server": "airflow-api-server",
    "scheduler": "airflow-scheduler",
    "dag-processor": "airflow-dag-processor",
    "triggerer": "airflow-triggerer",
    "celery-worker-1": "airflow-worker",
    "celery-worker-2": "airflow-worker",
    "serve": "serving",
}
#: options whose values are network addresses or store locations: containers listen on 0.0.0.0 at
#: fixed ports and name each other; processes on one machine listen on 127.0.0.1 at free ports
ADDRESS = {"--host", "-H", "--port", "-p", "--webui-port", "--backend-store-uri", "--artifacts-destination"}
#: what only processes sharing one machine need: a work folder and a name per worker, no log server
#: per Celery worker (the api-server reads the shared log folder)
LOCAL_ONLY = {"--work-dir", "--celery-hostname", "--skip-serve-logs"}
FLAGS = {"--skip-serve-logs", "--serve-artifacts"}


def _normalised(argv: list[str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """(positional words, {option: value}): the program by its name, a Spark master URL as `<master>`,
    the address and local-only options dropped."""
    words: list[str] = [Path(argv[0]).name]
    options: dict[str, str] = {}
    i = 1
    while i < len(argv):
        a = argv[i]
        if a.startswith("-"):
            value = "" if a in FLAGS else argv[i + 1]
            i += 1 if a in FLAGS else 2
            if a not in LOCAL_ONLY | ADDRESS:
                options[a] = value
        else:
            words.append("<master>" if a.startswith("spark://") else a)
            i += 1
    return tuple(words), options


def _compose_argv(service: dict) -> list[str]:
    cmd = list(service["command"])
    # Airflow's image runs `airflow <command>` unless the service bypasses its entrypoint
    return cmd if "entrypoint" in service else ["airflow", *cmd]


#: loop weeks of the tier's run: the second closes the loop (drift -> retrain -> gate); QUICK's four
#: on this topology (a JVM and executors per Spark job, one core per job) take 20 minutes, two 13
WEEKS = 2


@pytest.fixture(scope="module", autouse=True)
def _stop_the_demo_stack():
    """The demo leaves its stack up for the Celery worker test after it; whatever runs at the end of
    the module is stopped (the ui tier starts the stack again on the demo's home)."""
    yield
    if (home := demo_home()) is not None:
        stop_demo_stack(home)


@pytest.mark.timeout(2700)  # about 13 minutes on 2 cores (README "Production topology")
def test_quick_demo_on_the_production_topology_closes_the_loop(tmp_path):
    # in the folder the tiers share, the ui tier then opens what this demo produced
    home = demo_home() or tmp_path / "platform"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    port = int(os.environ["ML_PLATFORM_SERVING_PORT"])
    rc, out = run_quick_demo(home, home.parent / "demo.log", port, weeks=WEEKS, keep_running=demo_home() is not None)
    assert rc == 0, out[-6000:]
    check_closed_loop(home, out, WEEKS)


def check_closed_loop(home: Path, out: str, n_weeks: int) -> None:
    """What a finished quick demo on the cluster topology in `home` (its output `out`) must show."""
    assert f"8/8 monitoring loop: {n_weeks} weeks" in out and "Demo took" in out
    weeks = json.loads((home / "reports" / "monitoring_weeks.json").read_text())
    ends = ["2025-03-29", "2025-04-05", "2025-04-12", "2025-04-19"][:n_weeks]
    assert [w["week_end"] for w in weeks] == ends
    assert (home / "reports" / "monitoring_weeks.png").stat().st_size > 10_000
    assert all(w["served_drifted"] is not None for w in weeks)  # every week compared served features
    retrains = [w for w in weeks if w["retrain"]]
    assert retrains, [w["decision"] for w in weeks]
    for w in retrains:  # each decision ran exactly one training, and the gate decided on its challenger
        assert w["training"] == "success" and w["gate"].split()[0] in ("promote", "reject"), w
    # the service answers with the champion the gate left: the last promoted retrain, else v1
    promoted = [w["gate"].split()[1].rstrip(":") for w in retrains if w["gate"].startswith("promote")]
    answer = next((line for line in out.splitlines() if line.startswith("  the service now answers: ")), "")
    expected = (promoted[-1] if promoted else "v1").removeprefix("v")
    assert f'"model_version":"{expected}"' in answer and '"found":true' in answer, out[-3000:]

    settings = dict(line.split("=", 1) for line in (home / "run" / "demo.env").read_text().splitlines())
    assert settings["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert settings["ML_PLATFORM_SPARK_MASTER"].startswith("spark://127.0.0.1:")
    assert json.loads(settings["AIRFLOW_CONN_SPARK_DEFAULT"])["host"] == settings["ML_PLATFORM_SPARK_MASTER"]
    assert settings["ML_PLATFORM_MLFLOW_TRACKING_URI"].startswith("http://127.0.0.1:")
    assert settings["ML_PLATFORM_OPTUNA_STORAGE"].startswith("postgresql")
    assert settings["ML_PLATFORM_OPTUNA_STORAGE"] != settings["ML_PLATFORM_MLFLOW_BACKEND_STORE"]

    # Airflow's metadata in PostgreSQL: one training run per decision, started by the retrain_requested
    # asset; the tasks ran on both Celery workers (ti.hostname names the worker: platform_dags.worker_hostname)
    import sqlalchemy

    engine = sqlalchemy.create_engine(settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    with engine.connect() as db:
        q = "select run_type, count(*) from dag_run where dag_id = 'training' group by run_type"
        runs = dict(db.exec_driver_sql(q).all())
        weekly = db.exec_driver_sql(
            "select run_type, state, logical_date, data_interval_start, data_interval_end, start_date, end_date "
            "from dag_run where dag_id = 'monitoring' order by logical_date"
        ).all()
        hosts = dict(db.exec_driver_sql("select hostname, count(*) from task_instance group by hostname").all())
        hpo = {h for (h,) in db.exec_driver_sql("select distinct hostname from task_instance where task_id = 'hpo'")}
    engine.dispose()
    assert runs == {"scheduled": 1, "asset_triggered": len(retrains)}, runs
    # the weekly monitoring ran in the scheduler, one run per simulated week with that week's data
    # interval (the run the weekly schedule makes), started when the demo reached the week: its start
    # and duration are real (dag.test() of a 2025 date showed runs of 600 days); no run for today's week
    firsts = [date(2025, 3, 23) + timedelta(days=7 * k) for k in range(n_weeks)]
    assert [(r.run_type, r.state, r.logical_date.date()) for r in weekly] == [
        ("manual", "success", d) for d in firsts
    ], weekly
    for r in weekly:
        assert r.data_interval_start == r.logical_date and r.data_interval_end - r.logical_date == timedelta(days=7)
        assert r.start_date > datetime.now(timezone.utc) - timedelta(hours=1), r  # during this demo
        assert timedelta(0) < r.end_date - r.start_date < timedelta(minutes=15), r
    workers = {f"{socket.getfqdn()}-celery-{i}" for i in (1, 2)}
    assert workers <= set(hosts), hosts
    assert min(hosts[w] for w in workers) >= 5, hosts  # both took a share, not one task each
    assert hpo and hpo <= workers, hpo  # the mapped HPO ran on the Celery workers

    # every Spark job was an application of the standalone master (one core each: an executor on
    # one of the workers), spread over both; each executor got the platform as the zip the job shipped
    apps = {i: sorted((home / "spark" / f"worker-{i}" / "work").glob("app-*")) for i in (1, 2)}
    counts = {i: len(a) for i, a in apps.items()}
    assert min(counts.values()) >= 2 and sum(counts.values()) >= 6, counts
    shipped = {p.name for a in apps.values() for app in a for p in app.glob("*/ml_platform-*.zip")}
    assert len(shipped) == 1, shipped  # one code version, shipped to the executors

    # the decision reached the registry: the retrained version carries its decision_id
    from mlflow import MlflowClient

    client = MlflowClient(settings["ML_PLATFORM_MLFLOW_BACKEND_STORE"])  # the server is stopped: its store
    versions = client.search_model_versions("name='churn_model'")
    tagged = [v for v in versions if v.tags.get("decision_id")]
    assert sorted(v.tags["decision_id"] for v in tagged) == sorted(w["decision_id"] for w in retrains)
    # nothing of the lake, the landing zone or the artifacts on local disk: all of it went to Azurite
    assert not any((home / p).exists() for p in ("lake", "landing", "mlflow/artifacts"))
    assert sum(f.stat().st_size for f in (home / "azurite").rglob("*") if f.is_file()) > 5_000_000
    artifacts = {client.get_run(v.run_id).info.artifact_uri.split(":")[0] for v in versions}
    assert artifacts == {"mlflow-artifacts"}, artifacts  # served by the tracking server from wasbs://

    # each service ran the command line docker-compose.yaml gives it (addresses aside)
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    ran = {p.stem: p.read_bytes().decode().split("\0")[:-1] for p in (home / "run").glob("*.argv")}
    assert set(SERVICES) <= set(ran), sorted(ran)
    for name, service in SERVICES.items():
        assert _normalised(ran[name]) == _normalised(_compose_argv(compose["services"][service])), name
    # and the environment compose gives every service names only settings this run had
    env = compose["x-platform-env"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == settings["AIRFLOW__CORE__EXECUTOR"]
    assert env["ML_PLATFORM_ONLINE_STORE"] == settings["ML_PLATFORM_ONLINE_STORE"] == "redis"
    assert env["ML_PLATFORM_SERVING_WORKERS"] == settings["ML_PLATFORM_SERVING_WORKERS"] == "2"
    scripts_env = (ROOT / "scripts" / "env.sh").read_text() + (ROOT / "scripts" / "airflow_up.sh").read_text()
    # empty unless the operator sets it, or a secret the operator must give (compose refuses to start without)
    opt_in = {k for k, v in env.items() if v == f"${{{k}:-}}" or str(v).startswith(f"${{{k}:?")}
    unknown = {k for k in env if k not in settings | dict.fromkeys(opt_in) and f"export {k}=" not in scripts_env}
    assert not unknown, unknown


_SCORES = """
import hashlib, json
from ml_platform.lake.paths import table_path
from ml_platform.lake.reader import read_newest_partition
day, rows = read_newest_partition(table_path("gold.churn_scores"), "score_date")
keys = sorted(zip(rows["customer_id"], rows["churn_probability"].round(12), rows["model_version"]))
print(json.dumps({"score_date": day, "rows": len(rows), "customers": rows["customer_id"].nunique(),
                  "digest": hashlib.sha256(repr(keys).encode()).hexdigest()}))
"""


@pytest.mark.timeout(1200)
def _wait_retry_delay(engine, dag_id: str, task_id: str, seconds: float, timeout: float = 120) -> None:
    """Until the newest serialized `dag_id` (what the scheduler schedules by) gives `task_id` a retry
    delay of `seconds`: the restarted dag-processor has parsed it with the test's settings."""
    import time

    def delays(node, found: list) -> list:
        if isinstance(node, dict):
            if node.get("task_id") == task_id and "retry_delay" in node:
                found.append(float(node["retry_delay"]))
            for v in node.values():
                delays(v, found)
        elif isinstance(node, list):
            for v in node:
                delays(v, found)
        return found

    q = "select data from serialized_dag where dag_id = %(dag)s order by created_at desc limit 1"
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        with engine.connect() as db:
            row = db.exec_driver_sql(q, {"dag": dag_id}).first()
        data = row[0] if row else None
        seen = delays(json.loads(data) if isinstance(data, str) else data, []) if data is not None else None
        if seen and seen[0] == seconds:
            return
        time.sleep(1)
    raise AssertionError(f"{dag_id}.{task_id}'s serialized retry delay is {seen}, not {seconds} s, after {timeout} s")


def test_a_task_killed_with_its_celery_worker_is_retried_on_the_other_without_duplicates():
    """SIGKILL the Celery worker running batch_scoring's Spark task (the worker, the task and its
    spark-submit driver): the scheduler sees the heartbeat stop, the retry runs on the other
    worker, the run succeeds, and its scored partition has one row per customer and equals, row
    for row, what a clean run of the same snapshot writes."""
    import subprocess
    import sys
    import time

    import psutil

    from tests.helpers import restart_demo_stack

    home = demo_home()
    assert home is not None and (home / "DONE").exists(), "the quick demo of this tier did not finish"
    # the demo's stack is still up (Azurite, the Spark cluster, the MLflow server, the api-server, the
    # dag-processor, the triggerer); started again: the scheduler, with a task whose heartbeat stopped
    # 10 s ago failed (and retried 5 s later instead of batch_scoring's minute), and the Celery workers
    # without the demo's Spark Connect server, so that the Spark task is a spark-submit whose driver
    # dies with its worker
    stop_demo_stack(
        home, "scheduler", "dag-processor", "celery-worker-1", "celery-worker-2", "spark-connect", "serve"
    )  # the dag-processor too: the retry delay is in the DAG it serializes
    quick = {"AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "10", "ML_PLATFORM_TASK_RETRY_DELAY_SECONDS": "5"}
    env = restart_demo_stack(home, quick, fresh_ports=False)
    env["AIRFLOW_HOME"] = str(home / "airflow")  # scripts/airflow_api.py reads the admin password there
    py = str(Path(sys.executable))
    try:

        def scores() -> dict:
            r = subprocess.run([py, "-c", _SCORES], env=env, capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, r.stderr[-2000:]
            return json.loads(r.stdout.strip().splitlines()[-1])

        def api(*args: str) -> str:
            r = subprocess.run(
                [py, str(ROOT / "scripts" / "airflow_api.py"), *args], env=env, capture_output=True, text=True
            )
            assert r.returncode == 0, r.stderr[-2000:]
            return r.stdout.strip()

        import sqlalchemy

        engine = sqlalchemy.create_engine(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        _wait_retry_delay(engine, "batch_scoring", "score_snapshot", 5.0)
        run_id = api("trigger", "batch_scoring")
        q = (
            "select state, hostname, try_number from task_instance where dag_id = 'batch_scoring' "
            "and task_id = 'score_snapshot' and run_id = %(run)s"
        )
        deadline = time.monotonic() + 300
        while True:
            with engine.connect() as db:
                row = db.exec_driver_sql(q, {"run": run_id}).first()
            if row and row[0] == "running" and row[1]:
                break
            assert time.monotonic() < deadline, f"score_snapshot never ran: {row}"
            time.sleep(1)
        victim = row[1].rsplit("-", 1)[-1]  # <host>-celery-<i>
        time.sleep(8)  # mid-task: its Spark job is running on the cluster
        pid = int((home / "run" / f"celery-worker-{victim}.pid").read_text())
        worker = psutil.Process(pid)
        tree = [worker, *worker.children(recursive=True)]
        for p in tree:
            p.kill()
        psutil.wait_procs(tree, timeout=30)
        api("wait", "batch_scoring", "--min-runs", "1")  # exit 0: every run succeeded
        with engine.connect() as db:
            state, host, tries = db.exec_driver_sql(q, {"run": run_id}).first()
        engine.dispose()
        assert state == "success" and tries >= 2, (state, host, tries)
        assert host.endswith("-celery-" + ("2" if victim == "1" else "1")), host
        after = scores()
        assert after["rows"] == after["customers"] > 0  # one row per customer: the retry left no duplicate
        api("trigger", "batch_scoring")  # a clean run of the same snapshot, no kill
        api("wait", "batch_scoring", "--min-runs", "1")
        assert scores() == after  # row-level diff 0: the same rows and scores as the interrupted run
    finally:
        subprocess.run(["bash", str(ROOT / "scripts" / "stop.sh")], env=env, capture_output=True, timeout=120)
