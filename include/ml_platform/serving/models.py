"""The models a serving worker holds, and the alias poller that swaps them.

A worker keeps one immutable `Loaded` snapshot (champion, and challenger when A/B or shadow is
on). A request reads the reference once and uses that snapshot to the end, so a swap (one
attribute assignment) never changes a model under a request in flight. The poller asks MLflow
which versions the aliases point at; only a changed version is loaded, and it is loaded beside
the old one before the swap. When MLflow cannot be reached the loaded models keep serving and
`registry_error` says why (readiness detail).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from typing import Any

from ml_platform.errors import redact
from ml_platform.model.scoring import feature_names, input_types
from ml_platform.registry.evaluate import alias_version, client

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    name: str
    version: str
    alias: str  # champion | challenger | pinned
    model: Any  # mlflow pyfunc
    python_model: Any  # the ChurnModel inside (explanations)
    features: tuple[str, ...]
    types: dict[str, str]


@dataclass(frozen=True)
class Loaded:
    champion: Served | None
    challenger: Served | None


def load_version(name: str, version: str, alias: str) -> Served:
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    return Served(
        name, str(version), alias, model, model.unwrap_python_model(), tuple(feature_names(model)), input_types(model)
    )


class ModelHolder:
    def __init__(self, settings: Any, want_challenger: bool) -> None:
        self.settings = settings
        self.want_challenger = want_challenger
        self.current = Loaded(None, None)
        self.registry_error: str | None = None
        self.last_poll_ok: float | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one refresh at a time (the poller and an explicit call)

    def _versions(self) -> tuple[str | None, str | None]:
        s = self.settings
        client(s)  # points MLflow's global tracking + registry URIs (used by `models:/` loads) at ours
        if s.serving_pinned_version:
            return s.serving_pinned_version, None
        champion = alias_version("champion", s)
        challenger = alias_version("challenger", s) if self.want_challenger else None
        return champion, challenger

    def refresh(self) -> bool:
        """Load what the aliases point at now; True if anything changed."""
        import time

        with self._lock:
            try:
                champion_v, challenger_v = self._versions()
                cur = self.current
                name = self.settings.model_name

                def pick(old: Served | None, version: str | None, alias: str) -> Served | None:
                    if version is None:
                        return None
                    if old is not None and old.version == version:
                        return old if old.alias == alias else replace(old, alias=alias)
                    return load_version(name, version, alias)

                champion_alias = "pinned" if self.settings.serving_pinned_version else "champion"
                new = Loaded(
                    pick(cur.champion, champion_v, champion_alias),
                    pick(cur.challenger, challenger_v if challenger_v != champion_v else None, "challenger"),
                )
                self.registry_error = None
                self.last_poll_ok = time.time()
            except Exception as exc:  # noqa: BLE001 - any registry failure: keep serving what we have
                self.registry_error = (
                    f"model registry unreachable ({type(exc).__name__}: {redact(str(exc))[:200]}); "
                    f"serving the models loaded before"
                )
                log.warning(self.registry_error)
                return False
            changed = (_v(new.champion), _v(new.challenger)) != (_v(cur.champion), _v(cur.challenger))
            self.current = new  # the swap: one reference assignment
            if changed:
                log.info("serving champion v%s, challenger v%s", _v(new.champion), _v(new.challenger))
            return changed

    def start(self) -> None:
        threading.Thread(target=self._poll, daemon=True, name="alias-poller").start()

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.serving_poll_seconds):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()


def _v(s: Served | None) -> str | None:
    return s.version if s else None
