"""Faults injected into the platform's state changes, each in real processes: the prediction spool
loaded from another PID namespace and written onto a full disk, a promotion killed between its
steps and retried, a promotion racing a rollback, MLflow down when a task starts, Redis killed
during an online publish, and a Spark job killed in the middle of a Delta write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers import record_outcome
from tests.serving_helpers import BIN, RedisServer, serving_home, with_env

pytestmark = pytest.mark.faults

PY = sys.executable
RECORD = {
    "request_id": "r",
    "event_time": "2025-03-01T10:00:00+00:00",
    "customer_id": "C1",
    "model_name": "churn_model",
    "model_version": "1",
    "variant": "champion",
    "returned": True,
    "churn_probability": 0.5,
    "feature_timestamp": None,
}


def _script(tmp: Path, name: str, body: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(body))
    return path


def _run(args: list, env: dict[str, str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], env=with_env(env), capture_output=True, text=True, timeout=timeout, **kw
    )


def _until(cond, timeout: float) -> None:
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "timed out"
        time.sleep(0.02)


def _logged_ids(home: Path) -> list[str]:
    from ml_platform.config import Settings
    from ml_platform.lake.paths import table_path
    from ml_platform.lake.reader import read_pandas

    return list(read_pandas(table_path("monitoring.prediction_log", Settings(home=home)))["prediction_id"])


WRITER = """
import json, sys, time
from pathlib import Path
from ml_platform.serving.spool import PredictionSpool
record = json.loads(sys.argv[3])
spool = PredictionSpool(Path(sys.argv[1]))
print(spool.path, flush=True)
for i in range(int(sys.argv[2])):
    spool.append([record | {"prediction_id": f"p{i}"}])
    time.sleep(0.01)
spool.close()
"""


def test_a_loader_in_another_pid_namespace_never_deletes_a_live_segment(tmp_path):
    """The loader runs under `unshare --pid --fork --mount-proc`: the writer's pid does not exist
    there. Every record the writer appended is in the log exactly once."""
    home, folder, n = tmp_path / "home", tmp_path / "home" / "serving" / "spool", 600
    writer = subprocess.Popen(
        [PY, _script(tmp_path, "writer.py", WRITER), folder, str(n), json.dumps(RECORD)],
        env=with_env({"ML_PLATFORM_HOME": str(home)}),
        stdout=subprocess.PIPE,
        text=True,
    )
    segment = Path(writer.stdout.readline().strip())
    loader = (
        f"from pathlib import Path; from ml_platform.serving.spool import load_spool; load_spool(Path({str(folder)!r}))"
    )
    loads = 0
    while writer.poll() is None:
        out = _run(["unshare", "--pid", "--fork", "--mount-proc", PY, "-c", loader], {"ML_PLATFORM_HOME": str(home)})
        assert out.returncode == 0, out.stderr[-2000:]
        loads += 1
        if writer.poll() is None:
            assert segment.exists(), "a loader in another PID namespace deleted the live segment"
    assert writer.wait() == 0 and loads >= 2
    _run([PY, "-c", loader], {"ML_PLATFORM_HOME": str(home)}).check_returncode()
    ids = _logged_ids(home)
    assert sorted(ids) == sorted(f"p{i}" for i in range(n)) and not segment.exists()
    record_outcome("spool_loader_other_pid_namespace", records=n, loads_while_writing=loads, logged=len(ids), lost=0)


FULL_DISK = """
import json, os, sys
from pathlib import Path
from ml_platform.config import Settings
from ml_platform.serving.spool import PredictionSpool, SpoolUnavailable, load_spool
folder, home = Path(sys.argv[1]), Path(sys.argv[2])
record = json.loads(sys.argv[3]) | {"features_json": json.dumps({"pad": "x" * 900})}
filler = folder / "filler.bin"
filler.write_bytes(b"\\0" * 160 * 1024)
spool = PredictionSpool(folder)
accepted, refused = [], []
def write(i):
    try:
        spool.append([record | {"prediction_id": f"p{i}"}])
        accepted.append(f"p{i}")
    except SpoolUnavailable as e:
        refused.append((f"p{i}", str(e)))
i = 0
while len(refused) < 5:
    write(i); i += 1
filler.unlink()  # space comes back
for _ in range(30):
    write(i); i += 1
spool.close()
load_spool(folder, Settings(home=home))
print(json.dumps({"accepted": accepted, "refused": refused}))
"""


def test_a_full_disk_under_the_spool_refuses_requests_and_logs_every_accepted_one(tmp_path):
    """The spool on a 256 KiB tmpfs (a mount namespace of its own): writes past the end fail as
    `SpoolUnavailable` (the request is refused), the torn fragment never merges into a later
    record, and once space is back every accepted record is in the log exactly once."""
    home, folder = tmp_path / "home", tmp_path / "spool"
    folder.mkdir()
    script = _script(tmp_path, "full.py", FULL_DISK)
    cmd = f"mount -t tmpfs -o size=256k tmpfs {folder} && exec {PY} {script} {folder} {home} '{json.dumps(RECORD)}'"
    out = _run(["unshare", "--mount", "sh", "-c", cmd], {"ML_PLATFORM_HOME": str(home)})
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["refused"]) == 5 and all("No space left" in e for _, e in result["refused"]), result["refused"]
    assert len(result["accepted"]) > 60 and result["accepted"][-30:] == [
        f"p{i}" for i in range(len(result["accepted"]) + 5 - 30, len(result["accepted"]) + 5)
    ]
    logged = _logged_ids(home)
    assert sorted(logged) == sorted(result["accepted"])
    record_outcome(
        "spool_full_disk",
        tmpfs_kib=256,
        accepted=len(result["accepted"]),
        refused=len(result["refused"]),
        logged=len(logged),
        refusal=result["refused"][0][1],
    )


@pytest.fixture(scope="module")
def registry_home(trained_model, tmp_path_factory):
    """A home with a copy of the trained model's registry: @champion v1, @challenger v2 (the same
    model registered again), and a gate that lets an equal model through."""
    from ml_platform.config import Settings
    from ml_platform.registry.aliases import apply_decision, evaluate_and_decide
    from ml_platform.registry.promotion import Policy

    home = tmp_path_factory.mktemp("faults-registry") / "home"
    env = serving_home(trained_model, home, None)
    s = Settings(home=home)
    decision = evaluate_and_decide(Policy(latency_p99_ms=1000.0), settings=s)
    assert decision.promote, decision.reason
    apply_decision(decision, settings=s)
    return env, s


def _new_challenger(s) -> str:
    from ml_platform.registry.evaluate import alias_version, client

    mv = client(s).get_model_version("churn_model", alias_version("champion", s))
    v = str(client(s).create_model_version("churn_model", mv.source, run_id=mv.run_id).version)
    client(s).set_model_version_tag("churn_model", v, "threshold", mv.tags.get("threshold", "0.5"))
    client(s).set_registered_model_alias("churn_model", "challenger", v)
    return v


POLICY = {"min_auc_gain": -1.0, "latency_p99_ms": 1000.0}
APPLY = """
import json, os, signal, sys
from ml_platform.registry import aliases
from ml_platform.registry.promotion import Decision
decision = Decision.from_dict(json.loads(open(sys.argv[1]).read()))
if sys.argv[2] == "kill-before-record":
    aliases._append = lambda row, settings: os.kill(os.getpid(), signal.SIGKILL)
print(json.dumps(aliases.apply_decision(decision), default=str))
"""


def _decide(s, tmp: Path) -> Path:
    from ml_platform.registry.aliases import evaluate_and_decide
    from ml_platform.registry.promotion import Policy

    decision = evaluate_and_decide(Policy.from_mapping(POLICY), settings=s)
    assert decision.promote, decision.reason
    path = tmp / f"decision-{time.time_ns()}.json"
    path.write_text(json.dumps(decision.to_dict(), default=str))
    return path


def test_a_promotion_killed_between_moving_and_recording_is_finished_by_its_retry(registry_home, tmp_path):
    from ml_platform.registry.aliases import history
    from ml_platform.registry.evaluate import alias_version

    env, s = registry_home
    old, new = alias_version("champion", s), _new_challenger(s)
    decision = _decide(s, tmp_path)
    rows = len(history(s))
    script = _script(tmp_path, "apply.py", APPLY)
    killed = _run([PY, script, decision, "kill-before-record"], env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert alias_version("champion", s) == new and len(history(s)) == rows  # moved, not recorded
    retry = _run([PY, script, decision, "-"], env)
    assert retry.returncode == 0, retry.stderr[-2000:]
    assert json.loads(retry.stdout.splitlines()[-1])["applied"] is True
    again = _run([PY, script, decision, "-"], env)
    assert json.loads(again.stdout.splitlines()[-1])["applied"] is False  # recorded once
    h = history(s)
    assert len(h) == rows + 1 and h[-1]["action"] == "promote" and h[-1]["champion_version"] == new
    assert h[-1]["previous_champion_version"] == old
    assert alias_version("previous_champion", s) == old and alias_version("challenger", s) is None
    record_outcome(
        "promotion_killed_between_steps",
        killed_exit=killed.returncode,
        history_rows_after_kill=rows,
        history_rows_after_retry=len(h),
        applied_again=False,
    )


def test_a_promotion_racing_a_rollback_leaves_aliases_and_history_agreeing(registry_home, tmp_path):
    """Three rounds of `apply_decision` and `ml-platform registry rollback` started together: each
    history row continues the one before it, and the aliases are what the last row says."""
    from ml_platform.registry.aliases import history
    from ml_platform.registry.evaluate import alias_version

    env, s = registry_home
    script = _script(tmp_path, "apply.py", APPLY)
    outcomes = []
    for stagger in (0.0, 2.0, 4.0):  # the rollback's CLI starts slower: later promotions let it go first
        _new_challenger(s)
        decision = _decide(s, tmp_path)
        back = subprocess.Popen(
            [str(BIN / "ml-platform"), "registry", "rollback", "--reason", "race"],
            env=with_env(env),
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(stagger)
        promote = subprocess.Popen(
            [PY, str(script), str(decision), "-"], env=with_env(env), stderr=subprocess.PIPE, text=True
        )
        p_err, b_err = promote.communicate(timeout=300)[1], back.communicate(timeout=300)[1]
        assert back.returncode == 0, b_err[-2000:]
        # the promotion either went first, or found the champion moved under it and refused
        assert promote.returncode == 0 or "champion moved" in p_err, p_err[-2000:]
        outcomes.append(promote.returncode)
    moves = [r for r in history(s) if r["action"] in ("promote", "rollback")]
    for before, after in zip(moves, moves[1:]):
        assert after["previous_champion_version"] == before["champion_version"], (before, after)
    assert alias_version("champion", s) == moves[-1]["champion_version"]
    assert alias_version("previous_champion", s) == moves[-1]["previous_champion_version"]
    record_outcome(
        "promotion_racing_rollback",
        rounds=3,
        promotion_first=sum(rc == 0 for rc in outcomes),
        promotion_refused_champion_moved=sum(rc != 0 for rc in outcomes),
        history_chain_consistent=True,
    )


def test_mlflow_down_when_a_task_starts_is_a_named_error_and_nothing_moves(registry_home):
    from ml_platform.registry.aliases import history
    from ml_platform.serving.bento import free_port

    env, s = registry_home
    rows = len(history(s))
    url = f"http://127.0.0.1:{free_port()}"
    t = time.time()
    out = _run(
        [BIN / "ml-platform", "registry", "promote"], env | {"ML_PLATFORM_MLFLOW_TRACKING_URI": url}, timeout=120
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    took = time.time() - t
    assert "MLflow tracking server" in out.stderr and url in out.stderr and took < 60
    assert len(history(s)) == rows
    record_outcome(
        "mlflow_down_at_task_start", exit_code=out.returncode, seconds=round(took, 2), message=out.stderr.strip()[-300:]
    )


PUBLISH = """
import sys
from datetime import datetime, timezone
from pathlib import Path
from ml_platform.features.online import RedisOnlineStore
from ml_platform.features.registry import Registry
spec = Registry(Path(sys.argv[1])).get("features.customer_features")
n = int(sys.argv[3])
ts = datetime(2025, 3, 1, tzinfo=timezone.utc)
rows = ((f"C{i:07d}", ts, [float(i % 97)] * len(spec.feature_names)) for i in range(n))
print(RedisOnlineStore(sys.argv[2], timeout=2).publish(spec, rows, tag=sys.argv[4]), flush=True)
"""


def test_redis_killed_during_an_online_publish_keeps_the_old_snapshot_live_and_the_rerun_completes(
    trained_model, tmp_path
):
    import redis as redis_client

    from ml_platform.config import Settings
    from ml_platform.features.online import RedisOnlineStore
    from ml_platform.features.registry import Registry
    from ml_platform.lake.paths import catalog_dir

    catalog = catalog_dir(Settings(home=trained_model["workspace"]))
    spec = Registry(catalog).get("features.customer_features")
    server = RedisServer(tmp_path / "redis")
    server.start()
    script = _script(tmp_path, "publish.py", PUBLISH)
    try:
        _run([PY, script, catalog, server.url, 1000, "small"], {}).check_returncode()
        rc = redis_client.Redis(port=server.port)
        rc.save()  # the last good state a restart comes back to
        # hung (SIGSTOP) during a publish: the publish fails within its timeout, it does not wait for ever
        hung = subprocess.Popen(
            [PY, str(script), str(catalog), server.url, "400000", "hung"],
            env=with_env({}),
            stderr=subprocess.PIPE,
            text=True,
        )
        _until(lambda: rc.exists("mlp:online:features.customer_features:v:hung"), 120)
        server.proc.send_signal(signal.SIGSTOP)
        t = time.time()
        try:
            hung_err = hung.communicate(timeout=60)[1]
        finally:
            server.proc.send_signal(signal.SIGCONT)
        hung_s = round(time.time() - t, 1)
        assert hung.returncode != 0 and "timeout" in hung_err.lower(), hung_err[-1500:]
        assert RedisOnlineStore(server.url).current(spec.name)["tag"] == "small"
        big = subprocess.Popen(
            [PY, str(script), str(catalog), server.url, "400000", "big"],
            env=with_env({}),
            stderr=subprocess.PIPE,
            text=True,
        )
        data = "mlp:online:features.customer_features:v:big"
        _until(lambda: rc.exists(data), 120)
        assert big.poll() is None, "the publish finished before the kill"
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        err = big.communicate(timeout=120)[1]
        assert big.returncode != 0 and "redis" in err.lower(), err[-1500:]
        server.start()
        store = RedisOnlineStore(server.url)
        assert store.current(spec.name)["tag"] == "small"  # never a half-written snapshot
        out = _run([PY, script, catalog, server.url, 400000, "big"], {}, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        cur = store.current(spec.name)
        assert cur["tag"] == "big" and cur["rows"] == 400000
        assert redis_client.Redis(port=server.port).hlen(data) == 400000
        got = store.get(spec, ["C0000000", "C0399999"])
        assert all(r.found for r in got) and got[1].values[spec.feature_names[0]] == float(399999 % 97)
        record_outcome(
            "redis_killed_during_publish",
            rows=400000,
            live_tag_after_restart="small",
            rerun_rows=cur["rows"],
            hung_publish_exit_s=hung_s,
        )
    finally:
        server.stop()


SPARK_WRITE = """
import sys
from ml_platform.lake.spark import get_spark
spark = get_spark("faults-write")
path, n = sys.argv[1], int(sys.argv[2])
df = spark.range(n).selectExpr("id", "id % 13 AS k", "sha2(CAST(id AS STRING), 256) AS h")
df.repartition(8).write.format("delta").mode("overwrite").save(path)
spark.stop()
"""


def test_a_spark_job_killed_mid_write_leaves_the_table_at_its_last_version_and_the_rerun_is_identical(tmp_path):
    import psutil
    from deltalake import DeltaTable

    from ml_platform.lake.reader import read_pandas

    env = {"ML_PLATFORM_HOME": str(tmp_path / "home"), "ML_PLATFORM_SPARK_SHUFFLE_PARTITIONS": "2"}
    path = str(tmp_path / "table")
    script = _script(tmp_path, "write.py", SPARK_WRITE)
    _run([PY, script, path, 1000], env).check_returncode()
    before = read_pandas(path).sort_values("id").reset_index(drop=True)
    job = subprocess.Popen([PY, str(script), path, "2000000"], env=with_env(env), start_new_session=True)
    known = {p.name for p in Path(path).glob("*.parquet")}
    deadline = time.time() + 300
    while time.time() < deadline and not ({p.name for p in Path(path).glob("*.parquet")} - known):
        assert job.poll() is None, "the job ended before writing a file"
        time.sleep(0.05)
    procs = psutil.Process(job.pid).children(recursive=True)
    os.killpg(job.pid, signal.SIGKILL)  # the driver, its JVM and Python workers
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    job.wait(30)
    assert DeltaTable(path).version() == 0  # no commit: readers see the table as it was
    assert read_pandas(path).sort_values("id").reset_index(drop=True).equals(before)
    _run([PY, script, path, 2000000], env, timeout=900).check_returncode()
    clean = str(tmp_path / "clean")
    _run([PY, script, clean, 2000000], env, timeout=900).check_returncode()
    assert DeltaTable(path).version() == 1
    a = read_pandas(path).sort_values("id").reset_index(drop=True)
    b = read_pandas(clean).sort_values("id").reset_index(drop=True)
    assert len(a) == 2000000 and a.equals(b)
    record_outcome(
        "spark_job_killed_mid_write",
        version_after_kill=0,
        rows_after_kill=len(before),
        rerun_rows=len(a),
        rerun_equals_clean_run=True,
    )
