"""Where data lives, as text: a local path or an Azure Storage location (ABFS), parsed and spelled
one way. No settings and no I/O, so that `config` (which normalises the lake and landing locations)
and `lake` (which opens them) both build on it without importing each other."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ml_platform.errors import ConfigError

_ABFS = re.compile(
    r"^(abfss?)://(?P<container>[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})@"
    r"(?P<account>[a-z0-9]{3,24})\.dfs\.core\.windows\.net(?:/(?P<path>.*))?$"
)
_BLOB_URL = re.compile(
    r"^https://(?P<account>[a-z0-9]{3,24})\.blob\.core\.windows\.net/"
    r"(?P<container>[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})(?:/(?P<path>.*))?$"
)
#: What to write instead of a URI this module cannot use.
FORMS = ("a local path", "abfss://<container>@<account>.dfs.core.windows.net/<path>")


@dataclass(frozen=True)
class AzureLocation:
    """A folder or file in an Azure Storage container."""

    account: str
    container: str
    path: str  # inside the container, no leading or trailing slash
    scheme: str = "abfss"  # TLS; `abfs` (plain HTTP) only against an emulator

    @property
    def uri(self) -> str:
        """The ABFS URI Spark and delta-rs both read."""
        return f"{self.scheme}://{self.container}@{self.account}.dfs.core.windows.net/{self.path}".rstrip("/")


def is_remote(uri: str | Path) -> bool:
    """True for a URI of a storage service, False for a local path or `file:` URI."""
    text = str(uri)
    return "://" in text and not text.startswith("file:")


def parse(uri: str | Path) -> Path | AzureLocation:
    """A local path, or the Azure location of `uri`; a `ConfigError` naming it otherwise."""
    text = str(uri)
    if not is_remote(text):
        return Path(text.removeprefix("file://").removeprefix("file:")).expanduser().absolute()
    m = _ABFS.match(text) or _BLOB_URL.match(text)
    if not m:
        scheme = text.split("://", 1)[0]
        why = (
            "a container name is 3-63 lowercase letters, digits or single hyphens; an account name 3-24 "
            "lowercase letters or digits"
            if scheme in ("abfs", "abfss", "https")
            else f"unknown scheme {scheme!r}"
        )
        raise ConfigError(f"cannot use storage location {text!r}: {why}; write {' or '.join(FORMS)}")
    path = (m.group("path") or "").strip("/")
    if ".." in path.split("/"):
        raise ConfigError(f"cannot use storage location {text!r}: '..' is not allowed in a path")
    return AzureLocation(m.group("account"), m.group("container"), path)


def normalize(uri: str | Path, emulator: bool = False) -> str:
    """The one spelling of a location: an absolute local path, or an `abfss://` URI (`abfs://`
    against an emulator, which speaks plain HTTP: Hadoop's `abfss` would wait on a TLS handshake)."""
    loc = parse(uri)
    if isinstance(loc, Path):
        return str(loc)
    return AzureLocation(loc.account, loc.container, loc.path, "abfs" if emulator else "abfss").uri
