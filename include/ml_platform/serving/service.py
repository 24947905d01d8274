"""The churn BentoML service: `POST /predict` over the registered champion (and challenger).

    bentoml serve ml_platform.serving.service:ChurnService     (what `ml-platform serve` runs)

Each BentoML worker is its own process with its own models, alias poller, online-store client
and prediction-log spool segment (module state below is per worker). The HTTP surface is a
FastAPI app mounted on the service, so every error is JSON `{"error": ...}` with the right
status and BentoML's OpenAPI document (`/docs.json`) includes it. `/healthz`, `/livez` and
`/metrics` are BentoML's own; `/readyz` is answered by `Gate`: its status to anyone, and with the
bearer token (when one is set) what is loaded and the reasons when not ready; `Gate` also checks
the bearer token and the body size before a request reaches FastAPI.

BentoML's HTTP metrics label each series with the raw request path, so random paths would grow
every worker's metrics without bound: `_RoutedMetrics` (installed in place of BentoML's
middleware before the app is built) measures only the service's own paths and counts every
other request in one unlabelled counter.
"""

from __future__ import annotations

import hmac
import json
import os
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # an unreachable registry must not stall the poller
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")

import bentoml  # noqa: E402
from fastapi import FastAPI, Query, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import JSONResponse, Response  # noqa: E402
from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402

from ml_platform.config import get_settings  # noqa: E402
from ml_platform.serving.models import ModelHolder
from ml_platform.serving.routing import ErrorResponse, PredictRequest, PredictResponse, errors_text  # noqa: E402
from ml_platform.serving.scorer import ClientError, Scorer, Unavailable  # noqa: E402
from ml_platform.serving.spool import PredictionSpool

SETTINGS = get_settings()
WORKER: dict[str, Any] = {}  # this worker's Scorer and ModelHolder, set when the service instance starts

REQUESTS = bentoml.metrics.Counter(
    name="churn_predictions_total", documentation="Predictions returned, per variant", labelnames=["variant"]
)
LATENCY = bentoml.metrics.Histogram(
    name="churn_predict_seconds",
    documentation="/predict latency, per variant",
    labelnames=["variant"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
)
MISSES = bentoml.metrics.Counter(
    name="churn_feature_store_misses_total", documentation="Customer ids the online store did not hold"
)
UNROUTED = bentoml.metrics.Counter(
    name="churn_unrouted_requests_total", documentation="Requests for paths the service does not have"
)
# the paths whose requests BentoML's HTTP metrics label; anything else would be a new series per path
ROUTED = frozenset(
    {"/predict", "/readyz", "/healthz", "/livez", "/metrics", "/docs", "/docs.json", "/schema.json", "/"}
)


def _bound_http_metrics() -> None:
    """Replace BentoML's HTTP metrics middleware (looked up when the app is built) by one that
    labels only `ROUTED` paths."""
    from bentoml._internal.server.http import instruments

    base = instruments.RunnerTrafficMetricsMiddleware
    if getattr(base, "routed_only", False):
        return

    class _RoutedMetrics(base):  # type: ignore[misc, valid-type]
        routed_only = True

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"] not in ROUTED:
                UNROUTED.inc()
                return await self.app(scope, receive, send)
            return await super().__call__(scope, receive, send)

    instruments.RunnerTrafficMetricsMiddleware = _RoutedMetrics


_bound_http_metrics()


class _Metrics:
    def misses(self, n: int) -> None:
        MISSES.inc(n)

    def observe(self, groups: dict[str, list[Any]], seconds: float) -> None:
        for variant, items in groups.items():
            REQUESTS.labels(variant=variant).inc(len(items))
            LATENCY.labels(variant=variant).observe(seconds)


def readiness() -> tuple[bool, dict[str, Any]]:
    scorer, holder = WORKER.get("scorer"), WORKER.get("holder")
    if scorer is None:
        return False, {"ready": False, "reasons": ["the service is starting"]}
    loaded = holder.current
    reasons = []
    if loaded.champion is None:
        reasons.append(holder.registry_error or f"no @champion for {SETTINGS.model_name} in the registry yet")
    online = scorer.check_online()
    detail = {
        "champion": loaded.champion.version if loaded.champion else None,
        "challenger": loaded.challenger.version if loaded.challenger else None,
        "model_name": SETTINGS.model_name,
        "registry": holder.registry_error or "ok",
        "online_store": online or "ok",
        "challenger_share": SETTINGS.serving_challenger_share,
        "shadow": SETTINGS.serving_shadow,
        "pid": os.getpid(),
        "workers": SETTINGS.serving_workers,
    }
    if online:
        reasons.append(online)
    return not reasons, {"ready": not reasons, "reasons": reasons, **detail}


class Gate:
    """ASGI middleware: `/readyz` with reasons, bearer auth and a body size limit on `/predict`."""

    def __init__(self, app: Any, token: str = "", max_body: int = 1_048_576) -> None:
        self.app, self.token, self.max_body = app, token, max_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path != "/readyz" and not path.startswith("/predict"):
            return await self.app(scope, receive, send)
        # HTTP header bytes are ISO-8859-1 (RFC 9110): latin-1 decodes any of them, so a non-UTF-8
        # header is a wrong value (401, 413) at worst, never a 500
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        authorised = not self.token or hmac.compare_digest(
            headers.get("authorization", "").encode("latin-1"), f"Bearer {self.token}".encode()
        )
        if path == "/readyz":  # the status for anyone (probes); what is loaded and what failed behind the token
            import anyio

            ok, detail = await anyio.to_thread.run_sync(readiness)
            return await _json(send, 200 if ok else 503, detail if authorised else {"ready": ok})
        if not authorised:
            return await _json(
                send,
                401,
                {"error": "missing or wrong bearer token (Authorization: Bearer ...)"},
                extra=[(b"www-authenticate", b"Bearer")],
            )
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return await _json(send, 413, {"error": f"request body of {length} bytes exceeds {self.max_body}"})
        if length is None:  # chunked: read it here, within the limit
            body, more = b"", True
            while more:
                msg = await receive()
                body += msg.get("body", b"")
                more = msg.get("more_body", False)
                if len(body) > self.max_body:
                    return await _json(send, 413, {"error": f"request body exceeds {self.max_body} bytes"})
            sent = False

            async def replay() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    return await receive()
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            return await self.app(scope, replay, send)
        return await self.app(scope, receive, send)


async def _json(send: Any, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None) -> None:
    data = json.dumps(body, default=str).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


app = FastAPI(
    title="churn prediction",
    version="1",
    docs_url=None,
    redoc_url=None,
    description="Churn probability and risk band per customer, from the champion model.",
)


@app.get("/docs", include_in_schema=False)
def _docs() -> Response:
    """Swagger UI over the OpenAPI document, from the assets BentoML serves itself: FastAPI's own
    page loads them from a public CDN and renders blank on a machine without internet."""
    from fastapi.openapi.docs import get_swagger_ui_html

    return get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title="churn prediction API",
        swagger_js_url="/static_content/swagger-ui-bundle.js",
        swagger_css_url="/static_content/swagger-ui.css",
        swagger_favicon_url="/static_content/favicon-light-32x32.png",
    )


@app.exception_handler(RequestValidationError)
async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"error": errors_text(list(exc.errors()))}, status_code=400)


@app.exception_handler(StarletteHTTPException)
async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    """FastAPI's own 4xx (e.g. a body nested too deeply to parse) in the service's `{"error": ...}` form."""
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    if exc.status_code == 400 and "parsing the body" in detail:
        detail = "the body is not JSON the service can read (malformed, or nested too deeply)"
    return JSONResponse({"error": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Bad payload (named in `error`)"},
    401: {"model": ErrorResponse, "description": "Token configured and missing or wrong"},
    413: {"model": ErrorResponse, "description": "Body too large"},
    503: {"model": ErrorResponse, "description": "No champion model, or the online store is down"},
}


@bentoml.service(name="churn_service", workers=SETTINGS.serving_workers, traffic={"timeout": 30})
@bentoml.asgi_app(app, path="/")
class ChurnService:
    def __init__(self) -> None:
        holder = ModelHolder(SETTINGS, want_challenger=SETTINGS.serving_challenger_share > 0 or SETTINGS.serving_shadow)
        holder.refresh()
        holder.start()
        spool = PredictionSpool(SETTINGS.home / "serving" / "spool")
        scorer = Scorer(SETTINGS, holder, spool=spool, metrics=_Metrics())
        scorer.check_online()  # opens the store client now, not on the first request
        WORKER.update(holder=holder, spool=spool, scorer=scorer)

    @app.post("/predict", response_model=PredictResponse, responses=_ERRORS)
    def predict(
        self, body: PredictRequest, explain: bool = Query(False, description="add top-k SHAP contributions")
    ) -> Any:
        try:
            out = WORKER["scorer"].predict(body, explain=explain)
            # serialised by pydantic in one step; `response_model` above still documents the schema
            # (FastAPI's own response validation + jsonable_encoder cost more than the model)
            return Response(out.model_dump_json(), media_type="application/json")
        except (ClientError, Unavailable) as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @bentoml.on_shutdown
    def _close(self) -> None:
        if "holder" in WORKER:
            WORKER["holder"].stop()
            WORKER["spool"].close()


ChurnService.add_asgi_middleware(Gate, token=SETTINGS.api_token, max_body=SETTINGS.serving_max_body_bytes)
