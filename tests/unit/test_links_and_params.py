"""Result links and the DAG params' rules, without Airflow: which files a URL may reach, the
MLflow and service URLs, cutoff parsing and the retrain policy's JSON schema."""

from __future__ import annotations

import jsonschema
import pytest

from ml_platform.config import Settings
from ml_platform.errors import MlPlatformError
from ml_platform.links import mlflow_run_url, model_version_url, report_url, resolve_report, service_docs_url
from ml_platform.monitoring.policy import RetrainPolicy
from ml_platform.training.labels import parse_cutoffs

pytestmark = pytest.mark.unit


@pytest.fixture()
def home(tmp_path):
    s = Settings(home=tmp_path / "home")
    (s.reports_dir / "drift").mkdir(parents=True)
    (s.reports_dir / "drift" / "drift 2025-03-29.html").write_text("<html></html>")
    (s.home / "airflow").mkdir(parents=True)
    (s.home / "airflow" / "airflow.db").write_text("secret")
    (s.reports_dir / "escape").symlink_to(s.home / "airflow" / "airflow.db")
    return s


def test_a_report_url_names_the_file_under_the_reports_folder_quoted(home):
    path = home.reports_dir / "drift" / "drift 2025-03-29.html"
    assert (
        report_url(path, "http://127.0.0.1:8080/", home)
        == "http://127.0.0.1:8080/ml-platform/files/drift/drift%202025-03-29.html"
    )
    assert resolve_report("drift/drift 2025-03-29.html", home) == path.resolve()
    assert report_url(home.home / "airflow" / "airflow.db", "", home) is None  # outside: no link
    assert report_url(None, "", home) is None and report_url("", "", home) is None


@pytest.mark.parametrize(
    "rel",
    [
        "../airflow/airflow.db",
        "drift/../../airflow/airflow.db",
        "/etc/passwd",
        "escape",
        "drift",
        "",
        "nope.html",
        "drift/\x00.html",
    ],
)
def test_no_served_path_leaves_the_reports_folder_or_names_a_folder(home, rel):
    with pytest.raises(FileNotFoundError):
        resolve_report(rel, home)


def test_mlflow_and_service_urls(tmp_path):
    local = Settings(home=tmp_path, mlflow_port=25001, serving_port=23001)
    assert mlflow_run_url("1", "abc", local) == "http://127.0.0.1:25001/#/experiments/1/runs/abc"
    assert model_version_url("churn_model", 3, local) == "http://127.0.0.1:25001/#/models/churn_model/versions/3"
    assert mlflow_run_url(None, "abc", local) is None and model_version_url("m", None, local) is None
    server = Settings(home=tmp_path, mlflow_tracking_uri="http://mlflow.internal:5000/")
    assert model_version_url("m", "1", server) == "http://mlflow.internal:5000/#/models/m/versions/1"
    assert service_docs_url(local) == "http://127.0.0.1:23001/docs"


def test_cutoffs_parse_or_name_the_bad_value():
    assert [d.isoformat() for d in parse_cutoffs(" 2025-02-01, 2025-02-08 ,")] == ["2025-02-01", "2025-02-08"]
    assert parse_cutoffs("") == []
    with pytest.raises(MlPlatformError, match=r"not a date \(YYYY-MM-DD\): '2025-02-30'"):
        parse_cutoffs("2025-02-01,2025-02-30")


def test_the_policy_schema_accepts_what_the_policy_accepts_and_refuses_unknown_keys():
    schema = RetrainPolicy.json_schema()
    jsonschema.validate({}, schema)
    jsonschema.validate({"cooldown_days": 7, "auc_drop": 0.1}, schema)
    RetrainPolicy.from_mapping({"cooldown_days": 7, "auc_drop": 0.1})
    for bad in ({"cooldown": 7}, {"cooldown_days": -1}, {"cooldown_days": 1.5}, {"auc_drop": "x"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_the_gate_links_name_the_intervals_own_result_and_newest_data_docs_page(tmp_path):
    from datetime import date

    from ml_platform.pipelines.data_plane import data_docs_page, gate_result_path

    s = Settings(home=tmp_path)
    start, end = date(2025, 3, 9), date(2025, 3, 16)
    assert gate_result_path(start, end, s) == s.reports_dir / "validation" / "transactions_2025-03-09_2025-03-16.json"
    site = s.reports_dir / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site"
    assert data_docs_page(start, end, s) == site / "index.html"  # no run yet: the site's index
    for run_time in ("20261129T130416Z", "20261129T140000Z"):
        page = site / "validations" / "suite" / "transactions_2025-03-09_2025-03-16" / run_time / "batch.html"
        page.parent.mkdir(parents=True)
        page.write_text("<html></html>")
    other = site / "validations" / "suite" / "transactions_2025-03-16_2025-03-23" / "20261129T150000Z" / "b.html"
    other.parent.mkdir(parents=True)
    other.write_text("")
    assert data_docs_page(start, end, s).parent.name == "20261129T140000Z"
