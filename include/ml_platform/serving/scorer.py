"""One /predict request, without HTTP: features -> variant -> model -> spool -> response.

The BentoML service (`serving.service`) is a thin HTTP shell over `Scorer.predict`, so the rules
here are tested without a server. Client mistakes raise `ClientError` (HTTP 400), conditions of
the service that a client cannot fix raise `Unavailable` (HTTP 503); both carry the reason.
"""

from __future__ import annotations

import math
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from ml_platform.errors import MlPlatformError, redact
from ml_platform.features.online import open_online_store
from ml_platform.features.registry import Registry
from ml_platform.lake.paths import catalog_dir
from ml_platform.serving.models import Loaded, ModelHolder, Served
from ml_platform.serving.routing import (
    Contribution,
    Prediction,
    PredictRequest,
    PredictResponse,
    in_challenger_bucket,
    parse_bands,
    risk_band,
)

FEATURE_TABLE = "features.customer_features"


class ClientError(MlPlatformError):
    """A request the service cannot serve as sent (HTTP 400)."""

    status = 400


class Unavailable(MlPlatformError):
    """The service cannot answer now: no model, no online store (HTTP 503)."""

    status = 503


class Scorer:
    def __init__(
        self,
        settings: Any,
        holder: ModelHolder,
        spool: Any = None,
        metrics: Any = None,
        online: Any = None,
        table: Any = None,
    ) -> None:
        self.settings = settings
        self.holder = holder
        self.spool = spool
        self.metrics = metrics
        self.bands = parse_bands(settings.risk_bands)
        self._online, self._table = online, table
        self.online_error: str | None = None

    # ---------------------------------------------------------------- online store
    def _store(self) -> tuple[Any, Any]:
        if self._online is None:
            self._table = Registry(catalog_dir(self.settings)).get(FEATURE_TABLE)
            self._online = open_online_store(self.settings)
        return self._online, self._table

    def _where(self) -> str:
        s = self.settings
        return f"redis at {redact(s.redis_url)}" if s.online_store == "redis" else f"sqlite at {s.online_sqlite_path}"

    def check_online(self) -> str | None:
        """None when the online store answers, else why not (for readiness)."""
        try:
            store, table = self._store()
            store.current(table.name)
        except Exception as exc:  # noqa: BLE001 - any store failure is a readiness reason
            self.online_error = (
                f"online store ({self._where()}) unavailable: {type(exc).__name__}: {redact(str(exc))[:200]}"
            )
            return self.online_error
        self.online_error = None
        return None

    def _lookup(self, ids: list[str]) -> list[Any]:
        try:
            store, table = self._store()
            rows = store.get(table, ids)
        except KeyError as exc:
            raise Unavailable(f"online store has no feature table: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - redis.ConnectionError, sqlite3.Error, ...
            self.online_error = (
                f"online store ({self._where()}) unavailable: {type(exc).__name__}: {redact(str(exc))[:200]}"
            )
            raise Unavailable(self.online_error) from None
        self.online_error = None
        return rows

    # ---------------------------------------------------------------- rows
    @staticmethod
    def _check_rows(rows: list[dict[str, Any]], served: Served) -> None:
        known = set(served.features) | {"customer_id"}
        for i, row in enumerate(rows):
            unknown = sorted(set(row) - known)
            if unknown:
                raise ClientError(f"rows[{i}]: unknown field(s) {unknown}; the model takes {sorted(served.features)}")
            missing = [f for f in served.features if f not in row]
            if missing:
                raise ClientError(f"rows[{i}]: missing feature(s) {missing} (send null for an unknown value)")
            for f in served.features:
                v = row[f]
                if "double" in served.types.get(f, "double"):
                    if isinstance(v, bool) or (v is not None and not isinstance(v, (int, float))):
                        raise ClientError(f"rows[{i}].{f}: must be a number or null, got {v!r}")
                    if isinstance(v, float) and math.isinf(v):
                        raise ClientError(f"rows[{i}].{f}: must be finite")
            cid = row.get("customer_id")
            if cid is not None and not isinstance(cid, str):
                raise ClientError(f"rows[{i}].customer_id: must be a string, got {cid!r}")

    @staticmethod
    def _score(served: Served, records: list[dict[str, Any]]) -> list[float]:
        # the rows were checked against the signature (or come from the feature store's spec), so
        # the model is called directly, without MLflow's per-call schema enforcement (~4 ms a call)
        return served.python_model.predict_records(records).tolist()

    # ---------------------------------------------------------------- request
    def predict(self, req: PredictRequest, explain: bool = False) -> PredictResponse:
        import pandas as pd

        t0 = time.perf_counter()
        if req.size > self.settings.serving_max_rows:
            raise ClientError(f"{req.size} items in one request; the limit is {self.settings.serving_max_rows}")
        if explain and req.size > self.settings.serving_max_explain_rows:
            raise ClientError(
                f"{req.size} items with explain=true; the limit is {self.settings.serving_max_explain_rows} "
                "(explanations cost far more than scores: split the request, or ask without explain)"
            )
        loaded: Loaded = self.holder.current  # this request uses this snapshot to the end
        champion, challenger = loaded.champion, loaded.challenger
        if champion is None:
            why = self.holder.registry_error or (
                f"no model has alias @champion in {self.settings.model_name} yet: "
                f"train one and promote it (ml-platform registry promote)"
            )
            raise Unavailable(why)
        request_id = uuid.uuid4().hex
        now = datetime.now(timezone.utc)
        items: list[dict[str, Any]] = []  # per requested item: id, found, features, feature_ts
        if req.customer_ids is not None:
            for cid, row in zip(req.customer_ids, self._lookup(req.customer_ids)):
                items.append(
                    {
                        "customer_id": cid,
                        "found": row.found,
                        "ts": row.feature_timestamp,
                        "features": {f: row.values.get(f) for f in champion.features} if row.found else None,
                    }
                )
            if self.metrics:
                misses = sum(not it["found"] for it in items)
                if misses:
                    self.metrics.misses(misses)
        else:
            self._check_rows(req.rows or [], champion)
            for row in req.rows or []:
                items.append(
                    {
                        "customer_id": row.get("customer_id"),
                        "found": True,
                        "ts": None,
                        "features": {f: row[f] for f in champion.features},
                    }
                )
        for i, it in enumerate(items):
            it["i"] = i
        share = self.settings.serving_challenger_share if challenger is not None else 0.0
        for it in items:
            cid = it["customer_id"]
            it["variant"] = challenger if cid is not None and in_challenger_bucket(cid, share) else champion
        scored = [it for it in items if it["found"]]
        groups: dict[str, list[dict[str, Any]]] = {}
        for it in scored:
            groups.setdefault(it["variant"].alias, []).append(it)
        for group in groups.values():
            served = group[0]["variant"]
            try:
                probs = self._score(served, [it["features"] for it in group])
            except ValueError as exc:  # a value the model cannot take (e.g. a number for a category)
                raise ClientError(f"cannot score the rows: {exc}") from None
            for it, p in zip(group, probs):
                it["p"] = p
            if explain:
                frame = pd.DataFrame([it["features"] for it in group], columns=list(served.features))
                contrib = served.python_model.explain(frame, top_k=self.settings.explain_top_k)
                for it, c in zip(group, contrib):
                    it["explain"] = [Contribution(**x) for x in c]
        records = []
        shadow = challenger if self.settings.serving_shadow and challenger is not None else None
        if shadow is not None and scored:
            for it, p in zip(
                scored, self._score(shadow, [{f: it["features"].get(f) for f in shadow.features} for it in scored])
            ):
                records.append(self._record(request_id, now, it, shadow, p, returned=False, variant="shadow"))
        out = []
        for it in items:
            if not it["found"]:
                out.append(
                    Prediction(customer_id=it["customer_id"], found=False, detail="not found in the online store")
                )
                continue
            served: Served = it["variant"]
            records.append(self._record(request_id, now, it, served, it["p"], returned=True, variant=served.alias))
            out.append(
                Prediction(
                    customer_id=it["customer_id"],
                    found=True,
                    churn_probability=it["p"],
                    risk_band=risk_band(it["p"], self.bands),
                    model_name=served.name,
                    model_version=served.version,
                    variant=served.alias,
                    feature_timestamp=it["ts"].isoformat() if it["ts"] else None,
                    explanation=it.get("explain"),
                )
            )
        if self.spool is not None:
            try:
                self.spool.append(records)  # before the response leaves: an answer is always logged
            except MlPlatformError as e:  # SpoolUnavailable (a full disk): refuse rather than serve unlogged
                raise Unavailable(str(e)) from None
        if self.metrics:
            self.metrics.observe(groups, time.perf_counter() - t0)
        return PredictResponse(request_id=request_id, predictions=out)

    @staticmethod
    def _record(
        request_id: str, now: datetime, it: dict[str, Any], served: Served, p: float, *, returned: bool, variant: str
    ) -> dict[str, Any]:
        return {
            "prediction_id": f"{request_id}:{it['i']}:{variant}",
            "request_id": request_id,
            "event_time": now.isoformat(),
            "customer_id": it["customer_id"],
            "model_name": served.name,
            "model_version": served.version,
            "variant": variant,
            "returned": returned,
            "churn_probability": p,
            "feature_timestamp": it["ts"].isoformat() if it["ts"] else None,
            "features_json": _features_json(it["features"]),
        }


def _features_json(features: dict[str, Any]) -> str:
    import json

    return json.dumps(
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in features.items()},
        sort_keys=True,
        default=str,
    )
