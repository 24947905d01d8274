"""Links from a task in the Airflow UI to what it produced (reports, MLflow pages, the service's docs).

`ResultLink` is an operator extra link whose URL comes from the task's own result (its return
value in XCom, or its rendered arguments). The worker computes it when the task ends and Airflow
stores it beside the task, so the UI shows a button on exactly the tasks that carry one. DAG files
attach them with `link_results(task, *links)`. Report files are served behind the UI's login by
`platform_results.py`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from airflow.sdk import BaseOperatorLink

#: A result -> URL function: gets the task's return value and the (rendered) operator.
UrlOf = Callable[[Any, Any], "str | None"]


class ResultLink(BaseOperatorLink):
    """A button named `name` on a task; `url_of(result, operator)` gives its target (None: no button target)."""

    def __init__(self, name: str, url_of: UrlOf) -> None:
        self._name, self.url_of = name, url_of

    @property
    def name(self) -> str:
        return self._name

    @property
    def xcom_key(self) -> str:  # one per link name: a task may carry several ResultLinks
        return "_link_" + re.sub(r"\W+", "_", self._name).strip("_").lower()

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from airflow.sdk.bases.xcom import BaseXCom

        result = BaseXCom.get_value(ti_key=ti_key, key="return_value")
        return self.url_of(result, operator) or ""


def link_results(task: Any, *links: ResultLink) -> Any:
    """Attach links to a task (a classic operator or the XComArg a `@task` call returns)."""
    operator = getattr(task, "operator", task)
    operator.operator_extra_links = (*operator.operator_extra_links, *links)
    return task


def _base_url() -> str:
    """The api-server's path prefix (from `[api] base_url`): report links are relative to the UI's own
    origin, so they keep working when Airflow moves to another host or port."""
    from urllib.parse import urlsplit

    from airflow.configuration import conf

    return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


def report(key: str | None = None) -> UrlOf:
    """The served URL of a report path: the result itself (a str) or `result[key]`."""

    def url_of(result: Any, _operator: Any) -> str | None:
        from ml_platform.links import report_url

        path = result if key is None else (result or {}).get(key) if isinstance(result, dict) else None
        return report_url(path, _base_url())

    return url_of


def _arg(operator: Any, flag: str) -> str | None:
    args = list(getattr(operator, "application_args", None) or [])
    return args[args.index(flag) + 1] if flag in args[:-1] else None


def _gate_file(path_function: str) -> UrlOf:
    """A report of a data-plane job's gate: `ml_platform.pipelines.data_plane.<path_function>(start, end)`, with
    start and end from the job's rendered `--start`/`--end` arguments."""

    def url_of(_result: Any, operator: Any) -> str | None:
        from datetime import date

        from ml_platform.links import report_url
        from ml_platform.pipelines import data_plane as plane

        start, end = _arg(operator, "--start"), _arg(operator, "--end")
        if not start or not end:
            return None
        path = getattr(plane, path_function)(date.fromisoformat(start), date.fromisoformat(end))
        return report_url(path, _base_url()) if path.exists() else None

    return url_of


def gate_result() -> UrlOf:
    """The gate's JSON result of the job's interval."""
    return _gate_file("gate_result_path")


def data_docs() -> UrlOf:
    """The Great Expectations data docs page of the job's gate run (the site's index if none)."""
    return _gate_file("data_docs_page")


def mlflow_run() -> UrlOf:
    def url_of(result: Any, _operator: Any) -> str | None:
        from ml_platform.links import mlflow_run_url

        r = result if isinstance(result, dict) else {}
        return mlflow_run_url(r.get("experiment_id"), r.get("run_id"))

    return url_of


def model_version(version_key: str = "version") -> UrlOf:
    def url_of(result: Any, _operator: Any) -> str | None:
        from ml_platform.links import model_version_url

        r = result if isinstance(result, dict) else {}
        return model_version_url(r.get("model_name"), r.get(version_key))

    return url_of


def service_docs() -> UrlOf:
    def url_of(_result: Any, _operator: Any) -> str | None:
        from ml_platform.links import service_docs_url

        return service_docs_url()

    return url_of
