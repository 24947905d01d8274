"""An Airflow plugin that serves the report files under `<home>/reports/` (evaluation and drift
reports, gate results, Great Expectations data docs) at `/ml-platform/files/<path>` of the Airflow
api-server: to logged-in users only (the UI's own session cookie, or a bearer token), and never
outside the reports folder (`ml_platform.links.resolve_report`). The task buttons that point here
are in `platform_links.py`.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from ml_platform.links import RESULTS_PREFIX


def _results_app() -> Any:
    from airflow.api_fastapi.core_api.security import requires_authenticated
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import FileResponse

    app = FastAPI(title="ML platform results", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/files/{rel:path}", dependencies=[Depends(requires_authenticated())])
    def served_file(rel: str) -> FileResponse:
        """A report file under `<home>/reports/` (404 for anything else, including paths that leave it)."""
        from ml_platform.links import resolve_report

        try:
            path = resolve_report(rel)
        except FileNotFoundError:
            raise HTTPException(status_code=404, detail=f"no report {rel!r}") from None
        return FileResponse(path)

    return app


class MlPlatformResultsPlugin(AirflowPlugin):
    name = "ml_platform_results"
    fastapi_apps = [{"app": _results_app(), "url_prefix": RESULTS_PREFIX, "name": "ML platform results"}]
