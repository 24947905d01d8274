"""The lake, the landing zone and MLflow artifacts on Azure Storage, against Azurite.

One Azurite Blob service for the module (scripts/azurite.sh, the same script `make` uses). The
platform runs as a user runs it: `ml-platform` processes whose environment points the lake and
the landing zone at `abfss://` URIs. The same generated files are landed in a Blob container
(through the Azure provider's WasbHook) and in a local folder, and the two lakes must hold the
same features and the same point-in-time training set, row for row. Ingest and the gate run on
Spark; `auto` computes the feature snapshots and the training set with the embedded engine on
both lakes (the spark tier proves that engine equal to Spark), and Spark's maintenance and delta-rs
go on reading and writing the tables it committed in the Blob container.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port_block

pytestmark = pytest.mark.azure

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "devstoreaccount1"
LAKE = f"abfss://lake@{ACCOUNT}.dfs.core.windows.net/platform"
LANDING = f"abfss://landing@{ACCOUNT}.dfs.core.windows.net/incoming"
START, END = date(2025, 1, 1), date(2025, 1, 24)
CUTOFF = "2025-01-14"
OUTPUTS: list[str] = []  # every CLI output of the module, scanned for secrets at the end


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Azurite on a free loopback port, its data outside every platform home."""
    port = free_port_block(1)
    home = tmp_path_factory.mktemp("azurite-home")
    env = {
        **os.environ,
        "ML_PLATFORM_HOME": str(home),
        "ML_PLATFORM_AZURITE_PORT": str(port),
        "ML_PLATFORM_AZURITE_DIR": str(tmp_path_factory.mktemp("azurite-data")),
    }
    started = subprocess.run(
        ["bash", str(ROOT / "scripts" / "azurite.sh"), "start"], env=env, capture_output=True, text=True, timeout=120
    )
    assert started.returncode == 0, started.stderr
    exports = dict(re.findall(r"export (\w+)='?([^'\n]*?)'?$", started.stdout, re.M))
    endpoint, key = exports["ML_PLATFORM_AZURE_EMULATOR_ENDPOINT"], exports["ML_PLATFORM_AZURE_STORAGE_ACCOUNT_KEY"]
    conn = f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};BlobEndpoint={endpoint};"
    os.environ["AIRFLOW_CONN_AZURE_LAKE"] = json.dumps({"conn_type": "wasb", "extra": {"connection_string": conn}})
    from airflow.providers.microsoft.azure.hooks.wasb import WasbHook

    hook = WasbHook(wasb_conn_id="azure_lake")
    for container in ("lake", "landing", "mlflow"):
        hook.create_container(container)
    yield {"endpoint": endpoint, "key": key, "connection_string": conn, "hook": hook}
    subprocess.run(["bash", str(ROOT / "scripts" / "azurite.sh"), "stop"], env=env, timeout=60)


def _env(home: Path, azure: dict[str, Any] | None, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ML_PLATFORM_AZURE", "ML_PLATFORM_LAKE_URI", "ML_PLATFORM_LANDING_URI"))
    }
    env |= {"ML_PLATFORM_HOME": str(home), "ML_PLATFORM_SNAPSHOT_CADENCE": "daily"}
    if azure:
        env |= {
            "ML_PLATFORM_LAKE_URI": LAKE,
            "ML_PLATFORM_LANDING_URI": LANDING,
            "ML_PLATFORM_AZURE_EMULATOR_ENDPOINT": azure["endpoint"],
            "ML_PLATFORM_AZURE_STORAGE_ACCOUNT_KEY": azure["key"],
        }
    return env | extra


def cli(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        [str(Path(sys.executable).parent / "ml-platform"), *args], env=env, capture_output=True, text=True, timeout=900
    )
    OUTPUTS.append(run.stdout + run.stderr)
    if ok:
        assert run.returncode == 0, run.stderr[-3000:]
    return run


@contextlib.contextmanager
def _settings_from(env: dict[str, str]) -> Iterator[None]:
    """This process's settings from `env` for the block (the platform reads them from the environment)."""
    from ml_platform.config import get_settings

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


def _read(env: dict[str, str], table: str, version: int | None = None) -> Any:
    """A lake table as pandas, read with the settings `env` describes (delta-rs + pyarrow)."""
    from ml_platform.config import Settings
    from ml_platform.lake.paths import table_path
    from ml_platform.lake.reader import read_pandas

    with _settings_from(env):
        return read_pandas(table_path(table, Settings()), version=version)


def _same(a: Any, b: Any, drop: tuple[str, ...] = ()) -> None:
    cols = sorted(c for c in a.columns if c not in drop)
    assert sorted(b.columns) == sorted([*cols, *[c for c in drop if c in b.columns]])
    left = a[cols].sort_values(cols).reset_index(drop=True)
    right = b[cols].sort_values(cols).reset_index(drop=True)
    assert len(left) > 0
    assert left.equals(right), left.compare(right).head() if len(left) == len(right) else (len(left), len(right))


@pytest.fixture(scope="module")
def lakes(azurite: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same generated files landed twice (a local folder; Blobs uploaded with the provider's
    hook), then ingest -> gate -> silver -> features and a PIT training set on each lake."""
    from ml_platform.data.generator import GeneratorSpec, write_landing

    files = tmp_path_factory.mktemp("landed")
    write_landing(GeneratorSpec(customers=400, start=START, end=END, seed=11), files)
    for f in sorted(p for p in files.rglob("*.parquet")):
        azurite["hook"].load_file(
            str(f), container_name="landing", blob_name=f"incoming/{f.relative_to(files).as_posix()}"
        )
    local = _env(tmp_path_factory.mktemp("local-home"), None, ML_PLATFORM_LANDING_URI=str(files))
    remote = _env(tmp_path_factory.mktemp("azure-home"), azurite)
    engines = {}
    for name, env in (("local", local), ("remote", remote)):
        built = json.loads(cli(env, "run", "--start", str(START), "--end", str(END)).stdout)
        tset = cli(
            env, "features", "training-set", "--cutoffs", CUTOFF, "--horizon-days", "7", "--id", "ts_azure_check"
        )
        engines[name] = (built["features"]["engine"], json.loads(tset.stdout)["engine"])
    return {"local": local, "remote": remote, "files": files, "engines": engines}


def test_landed_blobs_are_found_by_the_providers_deferrable_prefix_sensor(azurite):
    import asyncio

    from airflow.providers.common.compat.sdk import TaskDeferred
    from airflow.providers.microsoft.azure.sensors.wasb import WasbPrefixSensor

    hook = azurite["hook"]
    hook.load_string("x", container_name="landing", blob_name="sensor/transactions/2025-01-03/t.csv")

    def sensor(prefix: str) -> WasbPrefixSensor:
        return WasbPrefixSensor(
            task_id="landed",
            container_name="landing",
            prefix=prefix,
            wasb_conn_id="azure_lake",
            deferrable=True,
            poke_interval=0.2,
        )

    sensor("sensor/transactions/2025-01-03/").execute({})  # landed: its first poke succeeds, no deferral
    with pytest.raises(TaskDeferred) as deferred:  # not landed: the sensor hands over to the triggerer
        sensor("sensor/transactions/2025-01-04/").execute({})
    trigger = deferred.value.trigger

    async def first_event() -> Any:
        return await asyncio.wait_for(anext(trigger.run()), timeout=5)

    with pytest.raises(TimeoutError):  # nothing under the prefix yet: the trigger keeps waiting
        asyncio.run(first_event())
    hook.load_string("y", container_name="landing", blob_name="sensor/transactions/2025-01-04/t.csv")
    assert asyncio.run(first_event()).payload["status"] == "success"


def test_features_built_on_azurite_equal_those_built_on_local_disk(lakes):
    for table in ("silver.transactions", "silver.customers"):
        _same(_read(lakes["local"], table), _read(lakes["remote"], table))
    for table in ("bronze.transactions", "quarantine.transactions"):  # where each row came from: a path vs a Blob URI
        _same(_read(lakes["local"], table), _read(lakes["remote"], table), drop=("source_file",))
    local, remote = (
        _read(lakes["local"], "features.customer_features"),
        _read(lakes["remote"], "features.customer_features"),
    )
    assert local["snapshot_date"].nunique() == (END - START).days + 1
    _same(local, remote)
    listed = json.loads(cli(lakes["remote"], "features", "list").stdout)
    assert "features.customer_features" in json.dumps(listed)  # the catalog lives in the Blob container


def test_auto_runs_the_embedded_engine_on_the_lake_in_azure_storage(lakes):
    for features, training_set in lakes["engines"].values():
        assert features["engine"] == training_set["engine"] == "embedded", lakes["engines"]
    assert "lake in Azure Storage" in lakes["engines"]["remote"][0]["reason"]
    assert "local lake" in lakes["engines"]["local"][0]["reason"]


def test_the_embedded_writer_never_overwrites_a_commit_in_a_blob_container(azurite, tmp_path, monkeypatch):
    """Another writer commits the version this one prepared, right after this one read the log:
    the service refuses the second upload (`If-None-Match: *`), and the table reads as the other
    writer left it."""
    import pyarrow as pa

    from ml_platform.lake import delta_log

    env = _env(tmp_path, azurite)
    path = f"{LAKE}/probe/conflict"
    rows = pa.table({"k": ["a", "b"], "v": [1.0, 2.0], "day": pa.array([START, START], pa.date32())})
    theirs = '{"commitInfo":{"by":"the other writer"}}\n'
    with _settings_from(env):
        assert delta_log.replace_partitions(path, rows, ["day"]) == 0
        first = delta_log.table_root(path) / "_delta_log" / f"{1:020d}.json"
        read = delta_log.snapshot

        def read_then_lose(p: Any, version: int | None = None) -> Any:
            snap = read(p, version)
            delta_log._put_if_absent(first, theirs)
            return snap

        monkeypatch.setattr(delta_log, "snapshot", read_then_lose)
        with pytest.raises(delta_log.CommitConflict, match="version 1"):
            delta_log.replace_partitions(path, rows.set_column(1, "v", pa.array([9.0, 9.0])), ["day"])
        monkeypatch.setattr(delta_log, "snapshot", read)
        with first.open("r") as fh:
            assert fh.read() == theirs
        snap = delta_log.snapshot(path)
        assert snap.version == 1 and sorted(delta_log.read_table(snap).column("v").to_pylist()) == [1.0, 2.0]
    assert sorted(_read(env, "probe.conflict")["v"]) == [1.0, 2.0]  # delta-rs agrees


def test_remote_data_files_are_read_from_local_copies_downloaded_once(azurite, tmp_path, monkeypatch):
    """The embedded engine reads a Blob container's data files from whole copies under
    `<home>/cache/lake`: a second read downloads nothing, a copy unused for a day is pruned and
    fetched again when needed."""
    import os
    import time

    import pyarrow as pa

    from ml_platform.lake import delta_log

    env = _env(tmp_path, azurite)
    path = f"{LAKE}/probe/copies"
    days = [START, START, date(2025, 1, 2)]
    rows = pa.table({"k": ["a", "b", "c"], "v": [1.0, 2.0, 3.0], "day": pa.array(days, pa.date32())})
    with _settings_from(env):
        delta_log.replace_partitions(path, rows, ["day"])
        snap = delta_log.snapshot(path)
        fs, fetched = snap.path.fs, []
        real_get = fs.get

        def get(remote: list[str], local: list[str], **kw: Any) -> Any:  # the real download, recorded
            fetched.append(sorted(remote))
            return real_get(remote, local, **kw)

        monkeypatch.setattr(fs, "get", get)
        first = delta_log.readable_files(snap, delta_log.live_files(snap))
        assert len(first) == 2 and all(Path(f).parent == tmp_path / "cache" / "lake" for f in first)
        assert len(fetched) == 1 and len(fetched[0]) == 2  # both files in one concurrent download
        assert delta_log.readable_files(snap, delta_log.live_files(snap)) == first
        assert len(fetched) == 1  # nothing downloaded again
        stale = time.time() - delta_log.COPY_TTL_SECONDS - 60
        os.utime(first[0], (stale, stale))
        monkeypatch.setattr(delta_log, "_PRUNED", [])  # a new process prunes its folder once
        assert delta_log.readable_files(snap, delta_log.live_files(snap)) == first
        assert len(fetched) == 2 and len(fetched[1]) == 1  # only the pruned copy came back
        assert sorted(delta_log.read_table(snap).column("v").to_pylist()) == [1.0, 2.0, 3.0]
        assert not [f for f in (tmp_path / "cache" / "lake").iterdir() if f.suffix == ".part"]


def test_point_in_time_training_set_on_azurite_equals_local(lakes):
    local, remote = _read(lakes["local"], "ml.training_sets"), _read(lakes["remote"], "ml.training_sets")
    assert set(remote["training_set_id"]) == {"ts_azure_check"}
    _same(local, remote)


def test_relanding_the_same_blob_is_a_no_op_and_ingest_takes_blob_uris(lakes):
    day = "2025-01-05"
    for source in (
        f"{LANDING}/transactions/{day}",
        f"https://{ACCOUNT}.blob.core.windows.net/landing/incoming/transactions/{day}/transactions.parquet",
    ):
        out = json.loads(cli(lakes["remote"], "ingest", "--transactions", source, "--ingest-date", day).stdout)
        assert out["transactions"]["files"] == 1 and out["transactions"]["new_files"] == 0


def test_vacuum_on_azurite_keeps_the_version_a_training_set_pins(lakes):
    env = lakes["remote"] | {"ML_PLATFORM_VACUUM_MIN_RETENTION_HOURS": "0", "ML_PLATFORM_AS_OF_HORIZON_DAYS": "0"}
    meta = json.loads(
        cli(
            env, "features", "training-set", "--cutoffs", CUTOFF, "--horizon-days", "7", "--id", "ts_azure_check"
        ).stdout
    )
    pinned = meta["lineage"]["features.customer_features"]
    before = _read(env, "features.customer_features", version=pinned)
    cli(env, "features", "build", "--start", "2025-01-10", "--end", "2025-01-12")  # a new version replaces files
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "spark_jobs" / "lake_maintenance.py"),
            "--tables",
            "features.customer_features,quarantine.transactions",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    OUTPUTS.append(run.stdout + run.stderr)
    assert run.returncode == 0, run.stderr[-3000:]
    line = next(ln for ln in run.stdout.splitlines() if ln.startswith("LAKE_MAINTENANCE_RESULT "))
    report = {r["table"]: r for r in json.loads(line.split(" ", 1)[1])["tables"]}
    assert report["features.customer_features"]["pinned_version"] == pinned
    assert report["features.customer_features"]["retention_hours"] >= 1.0
    assert report["quarantine.transactions"]["retention_hours"] == 0.0
    _same(before, _read(env, "features.customer_features", version=pinned))  # still readable after VACUUM


_DAG_RUNS = """
import json
from datetime import datetime, timezone
from airflow.dag_processing.dagbag import DagBag
dag = DagBag().get_dag("features_build")
out = {}
# dag.test() runs a deferred trigger inline with no timeout: the day that never lands marks the
# sensor done and checks what the hook's listing decides
for day, kw in (("2025-01-03", {}), ("2025-02-10", {"mark_success_pattern": "wait_for_landing|ingest_validate_features"})):
    run = dag.test(logical_date=datetime.fromisoformat(day).replace(tzinfo=timezone.utc), **kw)
    out[day] = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
print("STATES " + json.dumps(out))
"""


def test_features_build_waits_for_blobs_and_takes_credentials_from_the_airflow_connection(
    azurite, airflow_db, tmp_path
):
    """features_build as deployed on Azure: the Blob landing zone found by the provider's
    deferrable sensor and hook, every task (and its Spark job) signed in with the `wasb`
    connection's credentials only; a day whose listing is empty is a skip."""
    from ml_platform.data.generator import GeneratorSpec, write_landing

    write_landing(GeneratorSpec(customers=300, start=date(2025, 1, 1), end=date(2025, 1, 3), seed=3), tmp_path / "gen")
    for f in sorted((tmp_path / "gen").rglob("*.parquet")):
        azurite["hook"].load_file(
            str(f), container_name="landing", blob_name=f"dagzone/{f.relative_to(tmp_path / 'gen').as_posix()}"
        )
    env = _env(
        tmp_path / "home",
        azurite,
        ML_PLATFORM_LAKE_URI=f"abfss://lake@{ACCOUNT}.dfs.core.windows.net/dagrun",
        ML_PLATFORM_LANDING_URI=f"abfss://landing@{ACCOUNT}.dfs.core.windows.net/dagzone",
        ML_PLATFORM_AZURE_CONN_ID="azure_lake",
        ML_PLATFORM_LANDING_WAIT_SECONDS="3",
    )
    del env["ML_PLATFORM_AZURE_STORAGE_ACCOUNT_KEY"]  # the connection is the only credential
    run = subprocess.run([sys.executable, "-c", _DAG_RUNS], env=env, capture_output=True, text=True, timeout=900)
    OUTPUTS.append(run.stdout + run.stderr)
    assert run.returncode == 0, run.stderr[-3000:]
    states = json.loads(next(ln for ln in run.stdout.splitlines() if ln.startswith("STATES ")).split(" ", 1)[1])
    assert set(states["2025-01-03"].values()) == {"success"}, states
    assert states["2025-02-10"]["find_landed_files"] == "skipped", states
    feats = _read(env | {"ML_PLATFORM_AZURE_STORAGE_ACCOUNT_KEY": azurite["key"]}, "features.customer_features")
    assert sorted(feats["snapshot_date"].astype(str).unique()) == ["2025-01-03"] and len(feats) > 0


def test_a_missing_connection_fails_the_task_naming_it(azurite, airflow_db, tmp_path):
    env = _env(tmp_path / "home", azurite, ML_PLATFORM_AZURE_CONN_ID="no_such_conn")
    script = (
        "from airflow.dag_processing.dagbag import DagBag\n"
        "run = DagBag().get_dag('platform_check').test()\n"
        "print('STATE', run.state)"
    )
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    OUTPUTS.append(run.stdout + run.stderr)
    assert "STATE failed" in run.stdout, run.stdout[-2000:]
    assert "ML_PLATFORM_AZURE_CONN_ID=no_such_conn: no such Airflow connection" in run.stdout + run.stderr


def test_mlflow_artifacts_round_trip_through_a_blob_container(azurite, tmp_path, monkeypatch):
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite["connection_string"])
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = mlflow.create_experiment(
        "azure", artifact_location=f"wasbs://mlflow@{ACCOUNT}.blob.core.windows.net/artifacts"
    )
    x = np.random.default_rng(0).normal(size=(200, 3))
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_text("hello", "notes/hello.txt")
        mlflow.sklearn.log_model(model, name="model")
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes/hello.txt") == "hello"
    blobs = list(azurite["hook"].get_blobs_list_recursive(container_name="mlflow", prefix="artifacts/"))
    assert any(b.endswith("notes/hello.txt") for b in blobs) and any("MLmodel" in b for b in blobs)


def test_bad_lake_locations_fail_with_one_clear_error_before_any_write(azurite, tmp_path):
    cases = {
        "s3://bucket/lake": "unknown scheme 's3'",
        f"abfss://missing@{ACCOUNT}.dfs.core.windows.net/lake": "container 'missing' does not exist",
    }
    for uri, expected in cases.items():
        run = cli(
            _env(tmp_path / "h", azurite, ML_PLATFORM_LAKE_URI=uri),
            "run",
            "--start",
            "2025-01-01",
            "--end",
            "2025-01-02",
            ok=False,
        )
        assert run.returncode == 2 and expected in run.stderr and "Traceback" not in run.stderr, run.stderr
        assert uri.split("/lake")[0] in run.stderr
    fresh = f"abfss://lake@{ACCOUNT}.dfs.core.windows.net/fresh-bad"
    wrong = _env(
        tmp_path / "h",
        azurite,
        ML_PLATFORM_LAKE_URI=fresh,
        ML_PLATFORM_AZURE_STORAGE_ACCOUNT_KEY="d3Jvbmcga2V5IGZvciB0ZXN0cw==",
    )
    run = cli(wrong, "run", "--start", "2025-01-01", "--end", "2025-01-02", ok=False)
    assert run.returncode == 2 and "refused the credentials" in run.stderr and "d3Jvbmcga2V5" not in run.stderr
    gone = _env(
        tmp_path / "h",
        azurite,
        ML_PLATFORM_LAKE_URI=fresh,
        ML_PLATFORM_AZURE_EMULATOR_ENDPOINT=f"http://127.0.0.1:{free_port_block(1)}/{ACCOUNT}",
    )
    run = cli(gone, "run", "--start", "2025-01-01", "--end", "2025-01-02", ok=False)
    assert run.returncode == 2 and "not reachable" in run.stderr and "Traceback" not in run.stderr
    assert not list(azurite["hook"].get_blobs_list_recursive(container_name="lake", prefix="fresh-bad/"))
    assert not (tmp_path / "h" / "lake").exists()  # nothing fell back to local disk


def test_a_sas_token_reads_the_lake_and_no_secret_is_in_any_log_or_report(azurite, lakes):
    from datetime import datetime, timedelta, timezone

    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    sas = generate_account_sas(
        ACCOUNT,
        azurite["key"],
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, list=True),
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )
    env = {k: v for k, v in lakes["remote"].items() if k != "ML_PLATFORM_AZURE_STORAGE_ACCOUNT_KEY"}
    tables = json.loads(cli(env | {"ML_PLATFORM_AZURE_STORAGE_SAS_TOKEN": sas}, "tables").stdout)
    assert tables["features.customer_features"]["rows"] == len(_read(lakes["remote"], "features.customer_features"))
    secrets = [azurite["key"], sas.split("sig=")[1].split("&")[0]]
    home = Path(lakes["remote"]["ML_PLATFORM_HOME"])
    written = [p for p in home.rglob("*") if p.is_file()]
    assert written  # the pipeline's logs, gate results and GE pages
    for text, where in [
        *((o, "a CLI output") for o in OUTPUTS),
        *((p.read_bytes().decode("utf-8", "replace"), str(p)) for p in written),
    ]:
        for secret in secrets:
            assert secret not in text and secret.replace("%2F", "/") not in text, where
