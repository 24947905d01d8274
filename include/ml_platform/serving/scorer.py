"""One /predict request, without HTTP: features -> variant -> model -> spool -> response.

The BentoML service (`serving.service`) is a thin HTTP shell over `Scorer.predict`, so the rules
here are tested without a server. Client mistakes raise `ClientError` (HTTP 400), conditions of
the service that a client cannot fix raise `Unavailable` (HTTP 503); both carry the reason.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
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
        """Answer one request: its items (online features or the rows sent), each routed to the
        champion or the challenger, scored (and explained) per model, the shadow's scores logged
        beside them; every answer is in the prediction spool before the response leaves."""
        t0 = time.perf_counter()
        self._check_size(req, explain)
        loaded: Loaded = self.holder.current  # this request uses this snapshot to the end
        champion, challenger = self._champion(loaded), loaded.challenger
        request_id, now = uuid.uuid4().hex, datetime.now(timezone.utc)
        items = self._items(req, champion)
        self._route(items, champion, challenger)
        groups = self._score_groups([it for it in items if it.found], explain)
        records = self._shadow_records(request_id, now, items, challenger)
        out = []
        for it in items:
            if it.served is not None and it.probability is not None:
                records.append(self._record(request_id, now, it, it.served, it.probability, returned=True))
            out.append(self._prediction(it))
        self._log(records)
        if self.metrics:
            self.metrics.observe(groups, time.perf_counter() - t0)
        return PredictResponse(request_id=request_id, predictions=out)

    def _check_size(self, req: PredictRequest, explain: bool) -> None:
        if req.size > self.settings.serving_max_rows:
            raise ClientError(f"{req.size} items in one request; the limit is {self.settings.serving_max_rows}")
        if explain and req.size > self.settings.serving_max_explain_rows:
            raise ClientError(
                f"{req.size} items with explain=true; the limit is {self.settings.serving_max_explain_rows} "
                "(explanations cost far more than scores: split the request, or ask without explain)"
            )

    def _champion(self, loaded: Loaded) -> Served:
        if loaded.champion is None:
            raise Unavailable(
                self.holder.registry_error
                or f"no model has alias @champion in {self.settings.model_name} yet: "
                "train one and promote it (ml-platform registry promote)"
            )
        return loaded.champion

    def _items(self, req: PredictRequest, champion: Served) -> list[_Item]:
        """The request's items in order: looked up in the online store by customer id, or the rows sent."""
        if req.customer_ids is not None:
            items = [
                _Item(
                    i,
                    cid,
                    row.found,
                    row.feature_timestamp,
                    {f: row.values.get(f) for f in champion.features} if row.found else None,
                )
                for i, (cid, row) in enumerate(zip(req.customer_ids, self._lookup(req.customer_ids)))
            ]
            misses = sum(not it.found for it in items)
            if self.metrics and misses:
                self.metrics.misses(misses)
            return items
        rows = req.rows or []
        self._check_rows(rows, champion)
        return [
            _Item(i, row.get("customer_id"), True, None, {f: row[f] for f in champion.features})
            for i, row in enumerate(rows)
        ]

    def _route(self, items: list[_Item], champion: Served, challenger: Served | None) -> None:
        """The A/B split: a customer's share of the challenger is stable (a hash of the id); rows
        without an id go to the champion."""
        share = self.settings.serving_challenger_share if challenger is not None else 0.0
        for it in items:
            in_bucket = it.customer_id is not None and in_challenger_bucket(it.customer_id, share)
            it.served = challenger if in_bucket and challenger is not None else champion

    def _score_groups(self, scored: list[_Item], explain: bool) -> dict[str, list[_Item]]:
        """Score (and explain) the found items, one call per model; the items by variant."""
        import pandas as pd

        groups: dict[str, list[_Item]] = {}
        for it in scored:
            assert it.served is not None
            groups.setdefault(it.served.alias, []).append(it)
        for group in groups.values():
            served = group[0].served
            assert served is not None
            try:
                probs = self._score(served, [it.features or {} for it in group])
            except ValueError as exc:  # a value the model cannot take (e.g. a number for a category)
                raise ClientError(f"cannot score the rows: {exc}") from None
            for it, p in zip(group, probs):
                it.probability = p
            if explain:
                frame = pd.DataFrame([it.features for it in group], columns=list(served.features))
                contrib = served.python_model.explain(frame, top_k=self.settings.explain_top_k)
                for it, c in zip(group, contrib):
                    it.explanation = [Contribution(**x) for x in c]
        return groups

    def _shadow_records(
        self, request_id: str, now: datetime, items: list[_Item], challenger: Served | None
    ) -> list[dict[str, Any]]:
        """In shadow mode the challenger scores every found item too: logged, never returned."""
        scored = [it for it in items if it.found]
        if not (self.settings.serving_shadow and challenger is not None and scored):
            return []
        probs = self._score(challenger, [{f: (it.features or {}).get(f) for f in challenger.features} for it in scored])
        return [
            self._record(request_id, now, it, challenger, p, returned=False, variant="shadow")
            for it, p in zip(scored, probs)
        ]

    def _prediction(self, it: _Item) -> Prediction:
        if not it.found or it.served is None or it.probability is None:
            return Prediction(customer_id=it.customer_id, found=False, detail="not found in the online store")
        return Prediction(
            customer_id=it.customer_id,
            found=True,
            churn_probability=it.probability,
            risk_band=risk_band(it.probability, self.bands),
            model_name=it.served.name,
            model_version=it.served.version,
            variant=it.served.alias,
            feature_timestamp=it.feature_ts.isoformat() if it.feature_ts else None,
            explanation=it.explanation,
        )

    def _log(self, records: list[dict[str, Any]]) -> None:
        if self.spool is None:
            return
        try:
            self.spool.append(records)  # before the response leaves: an answer is always logged
        except MlPlatformError as e:  # SpoolUnavailable (a full disk): refuse rather than serve unlogged
            raise Unavailable(str(e)) from None

    @staticmethod
    def _record(
        request_id: str,
        now: datetime,
        it: _Item,
        served: Served,
        p: float,
        *,
        returned: bool,
        variant: str | None = None,
    ) -> dict[str, Any]:
        variant = variant or served.alias
        return {
            "prediction_id": f"{request_id}:{it.index}:{variant}",
            "request_id": request_id,
            "event_time": now.isoformat(),
            "customer_id": it.customer_id,
            "model_name": served.name,
            "model_version": served.version,
            "variant": variant,
            "returned": returned,
            "churn_probability": p,
            "feature_timestamp": it.feature_ts.isoformat() if it.feature_ts else None,
            "features_json": _features_json(it.features or {}),
        }


@dataclass
class _Item:
    """One requested item on its way through `Scorer.predict`."""

    index: int  # its position in the request (part of its prediction id)
    customer_id: str | None
    found: bool  # in the online store (rows sent are always found)
    feature_ts: datetime | None  # when the online features were computed; None for rows sent
    features: dict[str, Any] | None  # the champion's features; None when not found
    served: Served | None = None  # the model routed to
    probability: float | None = None
    explanation: list[Contribution] | None = None


def _features_json(features: dict[str, Any]) -> str:
    import json

    return json.dumps(
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in features.items()},
        sort_keys=True,
        default=str,
    )
