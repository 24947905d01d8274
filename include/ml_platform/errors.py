"""One exception hierarchy for the platform; every error carries a message a user can act on."""

from __future__ import annotations

from typing import Any


class MlPlatformError(Exception):
    """Base class of every error the platform raises on purpose."""


class ConfigError(MlPlatformError):
    """A setting is missing or invalid (environment variable, jar folder, path)."""


class DataContractError(MlPlatformError):
    """An input file breaks the raw data contract (missing column, unreadable type)."""


class ValidationFailed(MlPlatformError):
    """The Great Expectations gate failed; `result` is the JSON-serialisable gate result."""

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result or {}
