"""Which engine runs a job (`engines.choose_engine`, issue 22): auto takes the embedded engine
only without a cluster, below the size limit, on tables it can read (a lake in Azure Storage too:
tests/azure); an explicit choice is obeyed or, where it cannot run, refused with the setting named."""

from __future__ import annotations

from datetime import date

import pytest

from ml_platform.config import Settings
from ml_platform.engines import choose_engine, input_bytes
from ml_platform.errors import ConfigError
from ml_platform.lake.delta_log import replace_partitions
from ml_platform.lake.paths import table_path

pytestmark = pytest.mark.unit


def _silver(s: Settings, rows: int) -> str:
    import pyarrow as pa

    path = table_path("silver.transactions", s)
    table = pa.table(
        {
            "transaction_id": [f"t{i}" for i in range(rows)],
            "txn_date": pa.array([date(2025, 1, 1 + i % 3) for i in range(rows)], pa.date32()),
        }
    )
    replace_partitions(path, table, ["txn_date"])
    return path


def test_auto_takes_the_embedded_engine_on_a_small_local_lake(tmp_path):
    s = Settings(home=tmp_path)
    path = _silver(s, 300)
    size = input_bytes([path])
    assert size > 0
    choice = choose_engine("features", [path], s)
    assert choice.name == "embedded" and "local lake" in choice.reason
    over = s.model_copy(update={"embedded_max_bytes": size - 1})
    assert choose_engine("features", [path], over).name == "spark"
    assert "ML_PLATFORM_EMBEDDED_MAX_BYTES" in choose_engine("features", [path], over).reason
    assert choose_engine("features", [str(tmp_path / "absent")], s).name == "embedded"  # nothing to read yet


def _with_deletion_vectors(path: str) -> None:
    """A commit that turns deletion vectors on (what Spark's `delta.enableDeletionVectors` writes)."""
    import json
    from pathlib import Path

    log = Path(path) / "_delta_log"
    version = max(int(f.name[:20]) for f in log.glob("*.json")) + 1
    protocol = {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["deletionVectors"]}
    protocol["writerFeatures"] = ["deletionVectors"]
    (log / f"{version:020d}.json").write_text(json.dumps({"protocol": protocol}) + "\n")


def test_auto_takes_spark_on_a_cluster_or_a_table_it_cannot_read(tmp_path):
    s = Settings(home=tmp_path)
    path = _silver(s, 10)
    cluster = s.model_copy(update={"spark_master": "spark://127.0.0.1:7077"})
    choice = choose_engine("training_sets", [path], cluster)
    assert choice.name == "spark" and "cluster" in choice.reason
    _with_deletion_vectors(path)
    choice = choose_engine("features", [path], s)
    assert choice.name == "spark" and "deletion vectors" in choice.reason


def test_an_explicit_engine_is_obeyed_or_refused_by_name(tmp_path):
    s = Settings(home=tmp_path, engine_features="spark", engine_training_sets="embedded")
    path = _silver(s, 10)
    assert choose_engine("features", [path], s).reason == "ML_PLATFORM_ENGINE_FEATURES=spark"
    assert choose_engine("training_sets", [path], s).name == "embedded"
    _with_deletion_vectors(path)
    with pytest.raises(
        ConfigError, match="ML_PLATFORM_ENGINE_TRAINING_SETS=embedded cannot run here: .* deletion vectors"
    ):
        choose_engine("training_sets", [path], s)
    with pytest.raises(ValueError, match="unknown job kind"):
        choose_engine("ingest", [path], s)


def test_the_data_plane_takes_its_own_setting_when_it_ingests_and_the_features_engine_alone(tmp_path):
    """`features_build`'s job: with ingest or the gate, ML_PLATFORM_ENGINE_DATA_PLANE's choice (auto:
    embedded on one machine, no JVM); a features-only run takes the feature snapshot's engine;
    unknown steps are named."""
    from ml_platform.errors import MlPlatformError
    from ml_platform.pipelines.data_plane import data_plane_engine

    s = Settings(home=tmp_path)
    _silver(s, 10)
    for steps in ("ingest,validate,features", "validate,features", "ingest"):
        choice = data_plane_engine(steps, s)
        assert choice.name == "embedded" and choice.reason.startswith("auto: local lake"), choice
    spark = s.model_copy(update={"engine_data_plane": "spark"})
    assert data_plane_engine("ingest,validate,features", spark).reason == "ML_PLATFORM_ENGINE_DATA_PLANE=spark"
    assert data_plane_engine("features", spark).name == "embedded"  # the snapshot's own setting
    cluster = s.model_copy(update={"spark_master": "spark://127.0.0.1:7077"})
    assert data_plane_engine("ingest,validate,features", cluster).name == "spark"
    forced = s.model_copy(update={"engine_features": "spark"})
    assert data_plane_engine(" features ", forced).reason == "ML_PLATFORM_ENGINE_FEATURES=spark"
    for bad in ("feature", "features,score", ""):
        with pytest.raises(MlPlatformError, match="unknown data-plane steps"):
            data_plane_engine(bad, s)


def test_a_bad_engine_setting_names_the_choices(tmp_path, monkeypatch):
    monkeypatch.setenv("ML_PLATFORM_ENGINE_FEATURES", "duckdb")
    with pytest.raises(ValueError, match="engine_features"):
        Settings(home=tmp_path)


def test_a_job_on_the_embedded_engine_starts_no_spark_session_and_a_refused_engine_exits_2(monkeypatch, capsys):
    """`run_job(..., engine=)`: the choice comes before any session; on the embedded engine the body
    runs without one (get_spark is never called), the choice is in the printed result; a
    ConfigError -> exit 2."""
    import json

    from ml_platform.engines import EmbeddedEngine
    from ml_platform.engines.jobs import run_job
    from ml_platform.lake import spark as spark_module

    def no_spark(*args, **kwargs):
        raise AssertionError("a Spark session was started for an embedded job")

    monkeypatch.setattr(spark_module, "get_spark", no_spark)
    seen = []

    def body(engine, out):
        seen.append(engine)
        out["rows"] = 3

    rc = run_job("demo_job", body, engine=lambda: EmbeddedEngine("auto: small"))
    printed = capsys.readouterr().out.splitlines()
    assert rc == 0 and seen == [EmbeddedEngine("auto: small")]
    assert printed[0] == "demo_job: embedded engine (auto: small)"
    result = json.loads(printed[-1].removeprefix("DEMO_JOB_RESULT "))
    assert result["rows"] == 3 and result["engine"] == {"engine": "embedded", "reason": "auto: small"}

    def refuse():
        raise ConfigError("ML_PLATFORM_ENGINE_SCORING=embedded cannot run here: t uses deletion vectors")

    assert run_job("demo_job", body, engine=refuse) == 2
    assert "demo_job failed: ML_PLATFORM_ENGINE_SCORING=embedded cannot run here" in capsys.readouterr().err
    assert len(seen) == 1


def test_a_run_chooses_its_engines_reading_silvers_log_once(tmp_path, monkeypatch):
    """`data_plane_engine` chooses for ingest and the gate and for the snapshots, both over silver:
    one read of its log, not one per choice (on Azure Storage each read is requests)."""
    from ml_platform.lake import delta_log
    from ml_platform.pipelines.data_plane import data_plane_engine

    s = Settings(home=tmp_path)
    path = _silver(s, 30)
    real, reads = delta_log.snapshot, []
    monkeypatch.setattr(delta_log, "snapshot", lambda p, *a, **k: reads.append(str(p)) or real(p, *a, **k))
    choice = data_plane_engine("ingest,validate,features", s)
    assert choice.name == "embedded" and reads == [path], reads
