"""Where a person opens what a run produced: URLs of reports, MLflow pages and the service's docs.

Reports are files under `<home>/reports/` (evaluation reports, drift reports, gate results, GE
data docs). The Airflow plugin `plugins/platform_results.py` serves them behind the Airflow UI's
login at `<Airflow base URL>/ml-platform/files/<path under reports>`; `resolve_report` is the one
rule for which files that may be, so no URL can reach outside the reports folder. MLflow pages
are on the tracking server when the tracking URI is HTTP, else on the MLflow UI the demo starts
on 127.0.0.1 (`ML_PLATFORM_MLFLOW_PORT`). Pure functions: no Airflow, no I/O beyond `stat`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from ml_platform.config import Settings, get_settings

#: URL prefix of the Airflow plugin that serves report files (under the Airflow api-server).
RESULTS_PREFIX = "/ml-platform"


def report_url(path: str | Path | None, base_url: str = "", settings: Settings | None = None) -> str | None:
    """The served URL of a report file, or None when there is none (no path, or outside the reports)."""
    if not path:
        return None
    reports = (settings or get_settings()).reports_dir.resolve()
    try:
        rel = Path(path).resolve().relative_to(reports)
    except ValueError:
        return None
    return f"{base_url.rstrip('/')}{RESULTS_PREFIX}/files/{quote(rel.as_posix())}"


def resolve_report(rel: str, settings: Settings | None = None) -> Path:
    """The file under `<home>/reports` that a served URL names.

    Raises:
        FileNotFoundError: the path leaves the reports folder (`..`, an absolute path, a symlink
            pointing out) or names no regular file. One error for all, so a probe learns nothing.
    """
    reports = (settings or get_settings()).reports_dir.resolve()
    if not rel or "\x00" in rel or Path(rel).is_absolute():
        raise FileNotFoundError(rel)
    target = (reports / rel).resolve()
    if not target.is_relative_to(reports) or not target.is_file():
        raise FileNotFoundError(rel)
    return target


def mlflow_ui(settings: Settings | None = None) -> str:
    """Base URL of the MLflow UI: the tracking server itself, or the local UI on `mlflow_port`."""
    s = settings or get_settings()
    if s.mlflow_tracking_uri.startswith(("http://", "https://")):
        return s.mlflow_tracking_uri.rstrip("/")
    return f"http://127.0.0.1:{s.mlflow_port}"


def mlflow_run_url(experiment_id: str | None, run_id: str | None, settings: Settings | None = None) -> str | None:
    if not experiment_id or not run_id:
        return None
    return f"{mlflow_ui(settings)}/#/experiments/{quote(str(experiment_id))}/runs/{quote(str(run_id))}"


def model_version_url(name: str | None, version: str | int | None, settings: Settings | None = None) -> str | None:
    if not name or version in (None, ""):
        return None
    return f"{mlflow_ui(settings)}/#/models/{quote(str(name))}/versions/{quote(str(version))}"


def service_docs_url(settings: Settings | None = None) -> str:
    """The OpenAPI page of `ml-platform serve` on this machine."""
    return f"http://127.0.0.1:{(settings or get_settings()).serving_port}/docs"


__all__ = [
    "RESULTS_PREFIX",
    "mlflow_run_url",
    "mlflow_ui",
    "model_version_url",
    "report_url",
    "resolve_report",
    "service_docs_url",
]
