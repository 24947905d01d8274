"""Online and batch serving of the registered churn model.

routing.py   request/response models (pydantic), risk bands, the sticky A/B split (pure)
models.py    the models a worker holds and the alias poller that swaps them atomically
scorer.py    one /predict request without HTTP: features -> variant -> model -> spool
service.py   the BentoML service class (FastAPI mount, readiness, auth, body limit, metrics)
spool.py     the per-worker prediction spool and its MERGE loader -> monitoring.prediction_log
bento.py     `bentoml build` of the service, smoke test of a built Bento, serving confirmation
batch.py     Spark batch scoring of a feature snapshot -> gold.churn_scores

Layer 9 of the package layers in docs/ARCHITECTURE.md (held by import-linter).
"""

__all__: list[str] = []
