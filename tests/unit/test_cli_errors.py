"""Bad flags and inputs: one clear line, exit 2, no traceback, no JVM started."""

from __future__ import annotations

import sys

import pytest

from ml_platform import cli

pytestmark = pytest.mark.unit


def test_end_before_start_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["data", "generate", "--start", "2025-01-05", "--end", "2025-01-01"])
    assert e.value.code == 2
    assert "--end 2025-01-01 is before --start 2025-01-05" in capsys.readouterr().err


def test_bad_date_names_the_value(capsys):
    with pytest.raises(SystemExit):
        cli.main(["features", "build", "--start", "2025-13-01", "--end", "2025-01-01"])
    assert "not a date (YYYY-MM-DD): '2025-13-01'" in capsys.readouterr().err


def test_missing_input_file_is_reported_before_spark(capsys, tmp_path):
    rc = cli.main(["ingest", "--transactions", str(tmp_path / "nope.csv")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "nope.csv does not exist" in err
    assert "Traceback" not in err


def test_every_command_has_help(capsys):
    for argv in (
        ["--help"],
        ["data", "generate", "--help"],
        ["ingest", "--help"],
        ["validate", "--help"],
        ["features", "build", "--help"],
        ["run", "--help"],
        ["tables", "--help"],
        ["features", "list", "--help"],
        ["features", "describe", "--help"],
        ["features", "training-set", "--help"],
        ["features", "publish", "--help"],
        ["features", "get", "--help"],
        ["features", "skew", "--help"],
        ["train", "--help"],
        ["backtest", "--help"],
    ):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 0
        assert "usage: ml-platform" in capsys.readouterr().out


def test_unknown_feature_table_is_a_clear_error(capsys):
    rc = cli.main(["features", "describe", "features.nope"])
    err = capsys.readouterr().err
    assert rc == 2 and "feature table 'features.nope' is not registered" in err and "Traceback" not in err
    assert cli.main(["features", "get", "features.nope", "C1"]) == 2


def test_bad_cutoff_names_the_value(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["features", "training-set", "--cutoffs", "2025-01-04,2025-02-30"])
    assert e.value.code == 2 and "'2025-02-30'" in capsys.readouterr().err


def test_unknown_model_family_is_a_clear_error(capsys):
    assert cli.main(["train", "--families", "xgboost,lightgbm", "--cutoffs", "2025-01-04"]) == 2
    assert "unknown model families ['lightgbm']" in capsys.readouterr().err


def test_backtest_refuses_cutoffs_whose_labels_are_not_known_at_the_test_cutoff(capsys, tmp_path):
    tx = tmp_path / "tx.csv"
    tx.write_text("customer_id,transaction_id,transaction_ts,amount,quantity,product_category,channel\n")
    base = ["backtest", "--transactions", str(tx), "--test-cutoff", "2025-03-30", "--horizon-days", "14"]
    assert cli.main([*base, "--train-cutoffs", "2025-03-09,2025-03-23"]) == 2
    err = capsys.readouterr().err
    assert (
        "2025-03-23" in err and "still open at the test cutoff 2025-03-30" in err and "on or before 2025-03-16" in err
    )
    assert cli.main([*base, "--train-cutoffs", "2025-03-09"]) == 2
    assert "at least 2 dates" in capsys.readouterr().err
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "old").write_text("x")
    assert cli.main([*base, "--train-cutoffs", "2025-03-02,2025-03-09", "--workspace", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err
    assert "is not empty" in err and "Traceback" not in err
    assert (
        cli.main([*base, "--train-cutoffs", "2025-03-02,2025-03-09", "--transactions", str(tmp_path / "no.csv")]) == 2
    )
    assert "no.csv does not exist" in capsys.readouterr().err


def test_backtest_data_end_ignores_a_sparse_tail():
    from datetime import date, timedelta

    from ml_platform.pipelines.backtest import observed_end

    days = {date(2025, 1, 1) + timedelta(days=i): 100 for i in range(30)}
    days |= {date(2025, 1, 31): 3, date(2025, 2, 6): 1}  # stray future-dated rows after the log ends
    assert observed_end(days, 0.2) == date(2025, 1, 30)
    assert observed_end({date(2025, 1, 1): 5}, 0.2) == date(2025, 1, 1)


def test_serve_finds_bentoml_beside_the_interpreter_without_path(monkeypatch):
    """`.venv/bin/ml-platform serve` with the venv's bin not on PATH (the README's form) still finds
    `bentoml`; a name found nowhere is a clear error, not a traceback."""
    from pathlib import Path

    from ml_platform.errors import ConfigError
    from ml_platform.serving.bento import sibling_executable

    monkeypatch.setenv("PATH", "/nonexistent")
    found = sibling_executable("bentoml")
    assert Path(found).parent == Path(sys.executable).parent
    with pytest.raises(ConfigError, match="no-such-tool"):
        sibling_executable("no-such-tool")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "serving.internal"])
def test_serve_refuses_a_non_loopback_address_without_a_token(host, capsys, monkeypatch):
    """Open by default no more (issue 20, finding 2): a token, or 127.0.0.1."""
    from ml_platform.config import get_settings

    monkeypatch.delenv("ML_PLATFORM_API_TOKEN", raising=False)
    get_settings.cache_clear()
    try:
        rc = cli.main(["serve", "--host", host])
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert rc == 2 and f"refusing to serve on {host} without a token" in err and "Traceback" not in err


def test_serve_on_loopback_needs_no_token(monkeypatch):
    from ml_platform.cli.serving import _loopback

    assert _loopback("127.0.0.1") and _loopback("::1") and _loopback("localhost") and _loopback("127.0.0.2")
    assert not _loopback("0.0.0.0") and not _loopback("192.168.0.1")


@pytest.mark.parametrize("value", ["0001-01-01", "9999-12-31", "2262-04-12"])
def test_a_date_outside_the_modelled_range_is_named(capsys, value):
    """Valid ISO dates that pandas' timestamps or date arithmetic cannot hold: refused at the flag."""
    with pytest.raises(SystemExit) as e:
        cli.main(["features", "build", "--start", value, "--end", value])
    assert e.value.code == 2 and f"'{value}' is outside 1900-01-01..2199-12-31" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(["features", "training-set", "--cutoffs", f"2025-01-04,{value}"])
    assert e.value.code == 2 and f"'{value}' is outside" in capsys.readouterr().err


def test_run_starts_spark_when_the_snapshots_need_it_though_the_plane_does_not(monkeypatch, tmp_path):
    """`ml-platform run` with ML_PLATFORM_ENGINE_FEATURES=spark on a one-machine lake: ingest and the
    gate may run embedded, but the run also builds the snapshots, so it must start its Spark session
    (it failed with "no SparkSession was given" after the embedded gate). The session factory and
    the run itself are stand-ins: what is checked is the command's engine choice."""
    import argparse
    from datetime import date

    from ml_platform.cli import data
    from ml_platform.config import get_settings

    monkeypatch.setenv("ML_PLATFORM_HOME", str(tmp_path))
    monkeypatch.setenv("ML_PLATFORM_ENGINE_FEATURES", "spark")
    get_settings.cache_clear()
    started, given = [], []
    monkeypatch.setattr(data, "on_engine", lambda engine, app: started.append((engine.name, app)) or engine)
    monkeypatch.setattr(data.data_plane, "run_days", lambda engine, *a, **k: given.append(engine.name) or {})
    try:
        day = date(2025, 1, 1)
        data.run(argparse.Namespace(start=day, end=day, cadence=None, batch_days=7, publish=False))
        assert given == ["spark"] and started == [("spark", "run")]
        engine = data._plane_engine("ingest")  # ingest alone stays embedded: no JVM
        assert engine.name == "embedded" and not engine.starts_jvm and started[-1] == ("embedded", "ingest")
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--file", "/no/such/events.jsonl"], "--file /no/such/events.jsonl: No such file or directory"),
        (["--generate", "5", "--rate", "-1"], "not a rate (events per second, 0 or more): '-1'"),
        (["--generate", "5", "--rate", "nan"], "not a rate"),
        (["--generate", "5", "--rate", "inf"], "not a rate"),
    ],
)
def test_stream_send_names_a_bad_file_or_rate_before_any_broker(capsys, args, named):
    try:
        code = cli.main(["stream", "send", *args])
    except SystemExit as e:  # argparse's type check of --rate
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and named in err and "Traceback" not in err
