"""One exception hierarchy for the platform; every error carries a message a user can act on."""

from __future__ import annotations

import re
from typing import Any

_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*):[^@\s]*@")
_KEY_VALUE = re.compile(r"(?i)\b(?P<key>password|passwd|pwd|sig|accountkey|secret|token|access_token)=[^&;\s]+")


def redact(text: str) -> str:
    """`text` with the passwords of URLs (`redis://:pw@host`, `postgresql://u:pw@host`) and secret
    key=value pairs (`password=`, a SAS `sig=`, `AccountKey=`, `token=`) replaced by `***`: for every
    message that can reach an answer, a log or a report."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:***@", text)
    return _KEY_VALUE.sub(lambda m: f"{m['key']}=***", text)


class MlPlatformError(Exception):
    """Base class of every error the platform raises on purpose."""


class ConfigError(MlPlatformError):
    """A setting is missing or invalid (environment variable, jar folder, path)."""


class InvalidName(MlPlatformError, ValueError):
    """A table name or an id that would leave its folder or its SQL literal (`lake.paths.check_id`)."""


class DataContractError(MlPlatformError):
    """An input file breaks the raw data contract (missing column, unreadable type)."""


class ValidationFailed(MlPlatformError):
    """The Great Expectations gate failed; `result` is the JSON-serialisable gate result."""

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result or {}
