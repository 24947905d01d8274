"""Landing a delivery: day folders of the landing layout copied into the landing zone, a day range at a
time, each file whole (`ml-platform data land`, `data.landing`)."""

from __future__ import annotations

from datetime import date

import pytest

from ml_platform import cli
from ml_platform.data.landing import land, land_range, source_days
from ml_platform.errors import ConfigError
from ml_platform.lake.paths import landing_dir

pytestmark = pytest.mark.unit


def _delivery(root):
    for table, days in (("customers", ["2025-01-01"]), ("transactions", ["2025-01-01", "2025-01-02", "2025-01-03"])):
        for d in days:
            (root / table / d).mkdir(parents=True)
            (root / table / d / f"{table}.csv").write_text(f"{table},{d}\n")
    (root / "transactions" / "notes").mkdir()  # not a day folder: ignored
    (root / "transactions" / "2025-01-03" / "late.csv.tmp").write_text("half")  # a file still being written


def test_land_range_copies_the_days_asked_for_and_skips_temporary_files(tmp_path):
    src, dest = tmp_path / "incoming", tmp_path / "landing"
    _delivery(src)
    assert source_days(src, "transactions") == [date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 3)]
    assert land_range(src, dest, end=date(2025, 1, 2)) == {"customers": 1, "transactions": 2}
    landed = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert landed == [
        "customers/2025-01-01/customers.csv",
        "transactions/2025-01-01/transactions.csv",
        "transactions/2025-01-02/transactions.csv",
    ]
    assert land(src, dest, "transactions", [date(2025, 1, 3)]) == 1  # the next delivery, whole files only
    assert not list(dest.rglob("*.tmp"))
    assert (dest / "transactions" / "2025-01-03" / "transactions.csv").read_text() == "transactions,2025-01-03\n"


def test_land_cli_refuses_a_folder_without_the_layout(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ML_PLATFORM_HOME", str(tmp_path / "home"))
    from ml_platform.config import get_settings

    get_settings.cache_clear()
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "transactions.csv").write_text("x\n")
    with pytest.raises(ConfigError, match="no <table>/<YYYY-MM-DD>/ folders"):
        land_range(tmp_path / "flat", tmp_path / "landing")
    assert cli.main(["data", "land", "--source", str(tmp_path / "flat")]) == 2
    assert "no <table>/<YYYY-MM-DD>/ folders" in capsys.readouterr().err
    _delivery(tmp_path / "incoming")
    assert cli.main(["data", "land", "--source", str(tmp_path / "incoming"), "--start", "2025-01-02"]) == 0
    assert sorted(p.name for p in (landing_dir() / "transactions").iterdir()) == [
        "2025-01-02",
        "2025-01-03",
    ]
    get_settings.cache_clear()
