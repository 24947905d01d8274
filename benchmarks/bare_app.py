"""The peer of benchmarks/serving_latency.py: a bare Starlette app (uvicorn, one process) with
the same model, the same Redis lookup and the same scoring call as the BentoML service, and
nothing else (no validation models, routing, spool, metrics or auth).

    BARE_MODEL_URI=models:/churn_model/1 uvicorn benchmarks.bare_app:app --port N
"""

from __future__ import annotations

import json
import os

import mlflow.pyfunc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ml_platform.config import get_settings
from ml_platform.features.online import open_online_store
from ml_platform.features.registry import Registry
from ml_platform.lake.paths import catalog_dir
from ml_platform.model.scoring import feature_names

_s = get_settings()
_model = mlflow.pyfunc.load_model(os.environ["BARE_MODEL_URI"])
_names = feature_names(_model)
_python_model = _model.unwrap_python_model()
_table = Registry(catalog_dir(_s)).get("features.customer_features")
_store = open_online_store(_s)


def _predict(ids: list[str]) -> list[dict]:
    rows = _store.get(_table, ids)
    found = [r for r in rows if r.found]
    probs = _python_model.predict_records([{n: r.values.get(n) for n in _names} for r in found]) if found else []
    return [{"customer_id": r.key, "churn_probability": float(p)} for r, p in zip(found, probs)]


async def predict(request: Request) -> JSONResponse:
    import anyio

    body = json.loads(await request.body())
    return JSONResponse({"predictions": await anyio.to_thread.run_sync(_predict, body["customer_ids"])})


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
