from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from pydantic import ValidationError

from ml_platform.config import Settings
from ml_platform.features.customer_features import snapshot_dates
from ml_platform.pipelines.data_plane import days_in, end_of, run_interval

pytestmark = pytest.mark.unit


def test_end_of_day_is_next_midnight_utc():
    assert end_of(date(2025, 3, 1)) == datetime(2025, 3, 2, tzinfo=timezone.utc)


def test_days_in_is_half_open():
    assert days_in(date(2025, 1, 1), date(2025, 1, 3)) == [date(2025, 1, 1), date(2025, 1, 2)]
    assert days_in(date(2025, 1, 1), date(2025, 1, 1)) == []


def test_run_interval_keeps_real_intervals_and_widens_empty_manual_ones():
    s = datetime(2025, 1, 5, tzinfo=timezone.utc)
    assert run_interval(s, datetime(2025, 1, 6, tzinfo=timezone.utc), "daily") == (date(2025, 1, 5), date(2025, 1, 6))
    assert run_interval(s, s, "daily") == (date(2025, 1, 5), date(2025, 1, 6))
    assert run_interval(s, s, "weekly") == (date(2025, 1, 5), date(2025, 1, 12))


def test_snapshot_dates_daily_and_weekly():
    assert len(snapshot_dates(date(2025, 1, 1), date(2025, 1, 31), "daily")) == 31
    weekly = snapshot_dates(date(2025, 1, 1), date(2025, 1, 31), "weekly")
    assert weekly == [date(2025, 1, 4), date(2025, 1, 11), date(2025, 1, 18), date(2025, 1, 25)]
    assert all(d.weekday() == 5 for d in weekly)
    with pytest.raises(ValueError, match="cadence"):
        snapshot_dates(date(2025, 1, 1), date(2025, 1, 2), "hourly")


def test_settings_reject_unknown_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("ML_PLATFORM_HOEM", str(tmp_path))
    with pytest.raises(ValidationError, match="HOEM|hoem"):
        Settings()


def test_settings_derive_lake_from_home(tmp_path):
    s = Settings(home=tmp_path)
    assert s.lake_uri == str(tmp_path / "lake")
    assert Settings(home=tmp_path, lake_uri="abfss://data@acct.dfs.core.windows.net/lake").lake_uri.startswith(
        "abfss://"
    )


def test_delta_sql_quotes_paths_and_spark_connect_client_passes_exit_code_and_output(tmp_path):
    import sys

    from ml_platform.lake.delta_sql import ident
    from ml_platform.lake.spark import run_python_job

    assert ident("/lake/odd`name") == "delta.`/lake/odd``name`"
    job = tmp_path / "job.py"
    job.write_text("import os, sys\nprint('arg', sys.argv[1], os.environ['JOB_FLAG'])\nsys.exit(int(sys.argv[2]))\n")
    lines: list[str] = []
    assert run_python_job(str(job), ["x", "0"], {"JOB_FLAG": "on"}, lines.append) == 0
    assert lines[0] == f"{sys.executable} {job} x 0: a Spark Connect client (ML_PLATFORM_SPARK_REMOTE), no spark-submit"
    assert lines[1:] == ["arg x on"]
    assert run_python_job(str(job), ["y", "3"], {"JOB_FLAG": "off"}, lines.append) == 3
    assert lines[-1] == "arg y off"


def test_spark_connect_server_command_carries_the_lake_conf_and_keeps_loopback_only_for_a_local_master(
    tmp_path, monkeypatch, capsys
):
    import sys

    from ml_platform.config import Settings
    from ml_platform.lake.connect_server import SERVER_CLASS, main, server_command

    def conf(cmd: list[str]) -> dict[str, str]:
        return dict(cmd[i + 1].split("=", 1) for i, a in enumerate(cmd) if a == "--conf")

    local = server_command("127.0.0.1", 15999, Settings(home=tmp_path))
    assert local[0].endswith("/bin/spark-submit") and local[-1] == "spark-internal"
    assert local[local.index("--master") + 1] == "local[*]" and local[local.index("--class") + 1] == SERVER_CLASS
    c = conf(local)
    assert c["spark.connect.grpc.binding.address"] == "127.0.0.1" and c["spark.connect.grpc.binding.port"] == "15999"
    assert c["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension" and "delta-spark_" in c["spark.jars"]
    assert c["spark.pyspark.python"] == sys.executable and c["spark.driver.host"] == "127.0.0.1"
    cluster = conf(server_command("0.0.0.0", None, Settings(home=tmp_path, spark_master="spark://spark-master:7077")))
    assert cluster["spark.connect.grpc.binding.port"] == "15002"  # the setting's default
    assert "spark.driver.host" not in cluster and "spark.driver.bindAddress" not in cluster  # executors reach it
    # set-up has not fetched the jars: a clear error and exit 2, nothing started
    from ml_platform.config import get_settings

    monkeypatch.setenv("ML_PLATFORM_SPARK_JARS_DIR", str(tmp_path / "none"))
    get_settings.cache_clear()
    try:
        assert main(["--print"]) == 2
        assert "no Delta jars" in capsys.readouterr().err
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert main(["--print"]) == 0 and SERVER_CLASS in capsys.readouterr().out


def test_get_settings_names_a_bad_or_unknown_variable_without_a_traceback(monkeypatch, capsys):
    from ml_platform.cli import main
    from ml_platform.config import get_settings
    from ml_platform.errors import ConfigError

    monkeypatch.setenv("ML_PLATFORM_SPARK_CONNECT_PORT", "abc")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"ML_PLATFORM_SPARK_CONNECT_PORT='abc': Input should be a valid integer"):
            get_settings()
        assert main(["tables"]) == 2
        assert "ml-platform: error: bad settings: ML_PLATFORM_SPARK_CONNECT_PORT='abc'" in capsys.readouterr().err
        monkeypatch.delenv("ML_PLATFORM_SPARK_CONNECT_PORT")
        monkeypatch.setenv("ML_PLATFORM_HOEM", "/tmp")
        get_settings.cache_clear()
        with pytest.raises(ConfigError, match="unknown setting.*ML_PLATFORM_HOEM"):
            get_settings()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_one_retry_delay_setting_overrides_every_dags_own(monkeypatch):
    """`ML_PLATFORM_TASK_RETRY_DELAY_SECONDS` replaces each DAG's retry delay; unset, a DAG keeps its own."""
    from datetime import timedelta

    from ml_platform.config import get_settings
    from platform_dags import task_defaults

    monkeypatch.delenv("ML_PLATFORM_TASK_RETRY_DELAY_SECONDS", raising=False)
    get_settings.cache_clear()
    assert task_defaults(retry_delay=timedelta(minutes=1))["retry_delay"] == timedelta(minutes=1)
    monkeypatch.setenv("ML_PLATFORM_TASK_RETRY_DELAY_SECONDS", "5")
    get_settings.cache_clear()
    try:
        assert task_defaults(retry_delay=timedelta(minutes=1))["retry_delay"] == timedelta(seconds=5)
    finally:
        get_settings.cache_clear()
